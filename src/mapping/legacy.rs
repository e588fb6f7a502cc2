//! The legacy side of a mapping: a polled row becomes a canonical record, and a record becomes
//! the column values to write. Lookups (ITEM_MASTER.UOM_CODE → UOM.DESCRIPTION) go through
//! [`LookupCache`], which holds small code tables read once per batch.

use std::collections::HashMap;

use super::odoo::FieldError;
use super::transform::{to_canonical, to_stored};
use super::{Column, Lookup, Mapping, Record};
use crate::erp::Dialect;
use crate::model::value_text;
use crate::model::{Row, Value};

/// A lookup table's rows as key text → value text (both trimmed of trailing spaces).
#[derive(Debug, Default, Clone)]
pub struct LookupTable {
    pub by_key: HashMap<String, String>,
}

impl LookupTable {
    pub fn key_of(&self, value: &str) -> Option<&str> {
        let mut keys: Vec<&str> =
            self.by_key.iter().filter(|(_, v)| v.as_str() == value).map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        keys.first().copied()
    }
}

/// The identity of a lookup: table, key and value columns, filters.
pub fn lookup_id(l: &Lookup) -> String {
    let filters: Vec<String> = l.filter.iter().map(|(c, v)| format!("{c}={}", value_text(v))).collect();
    format!("{}|{}|{}|{}", l.table, l.key, l.value, filters.join(","))
}

/// The query reading a lookup table whole, and its parameters.
pub fn lookup_sql(dialect: Dialect, l: &Lookup) -> (String, Vec<Value>) {
    let mut sql =
        format!("SELECT {}, {} FROM {}", dialect.quote(&l.key), dialect.quote(&l.value), dialect.quote_table(&l.table));
    let mut params = Vec::new();
    for (i, (column, value)) in l.filter.iter().enumerate() {
        sql.push_str(if i == 0 { " WHERE " } else { " AND " });
        sql.push_str(&format!("{} = ?", dialect.quote(column)));
        params.push(value.clone());
    }
    (sql, params)
}

/// Lookup tables read in this batch.
#[derive(Debug, Default)]
pub struct LookupCache {
    pub tables: HashMap<String, LookupTable>,
}

impl LookupCache {
    pub fn get(&self, l: &Lookup) -> Option<&LookupTable> {
        self.tables.get(&lookup_id(l))
    }
}

/// The lookups a mapping's legacy side needs.
pub fn lookups(m: &Mapping) -> impl Iterator<Item = &Lookup> {
    m.legacy.columns.iter().filter_map(|c| c.lookup.as_ref())
}

/// A polled row as a canonical record.
pub fn record_from_row(m: &Mapping, row: &Row, cache: &LookupCache) -> Result<Record, FieldError> {
    let mut values = vec![Value::Null; m.fields.len()];
    for c in &m.legacy.columns {
        let field = &m.fields[c.field];
        let error = |value: String, reason: String| FieldError {
            field: field.name.clone(),
            column: c.column.clone(),
            value,
            reason,
        };
        let Some(stored) = row.get(&c.column) else {
            return Err(error(String::new(), format!("column {} is not in table {}", c.column, m.legacy.table)));
        };
        let mut stored = stored.clone();
        if let (Some(l), false) = (&c.lookup, stored.is_null()) {
            let key = value_text(&stored).trim_end_matches(' ').to_string();
            let table =
                cache.get(l).ok_or_else(|| error(key.clone(), format!("lookup table {} not loaded", l.table)))?;
            match table.by_key.get(&key) {
                Some(v) => stored = Value::Text(v.clone()),
                None => {
                    return Err(error(key, format!("no row of {} has {} = this value", l.table, l.key)));
                }
            }
        }
        let shown = value_text(&stored);
        values[c.field] =
            to_canonical(c, field.ty, m.legacy.timezone, stored).map_err(|reason| error(shown, reason))?;
    }
    Ok(Record { values })
}

/// Why a value cannot be written.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteValueError {
    /// The referenced row is not there yet: wait for it.
    Park(String),
    /// The value can never be written as it is.
    Dead { field: String, reason: String },
}

/// The stored value for one column, with lookups reversed through the cache.
pub fn stored_value(
    m: &Mapping,
    c: &Column,
    record: &Record,
    cache: &LookupCache,
) -> Result<Option<String>, WriteValueError> {
    let field = &m.fields[c.field];
    let canonical = &record.values[c.field];
    let stored = to_stored(c, m.legacy.timezone, canonical)
        .map_err(|reason| WriteValueError::Dead { field: field.name.clone(), reason })?;
    if stored.is_null() {
        return Ok(None);
    }
    let text = value_text(&stored);
    match &c.lookup {
        None => Ok(Some(text)),
        Some(l) => {
            let table = cache.get(l).ok_or_else(|| WriteValueError::Dead {
                field: field.name.clone(),
                reason: format!("lookup table {} not loaded", l.table),
            })?;
            match table.key_of(&text) {
                Some(key) => Ok(Some(key.to_string())),
                None => {
                    let reason =
                        format!("{} = {text:?}: no row of {} has {} = this value", field.name, l.table, l.value);
                    if l.park_when_missing {
                        Err(WriteValueError::Park(reason))
                    } else {
                        Err(WriteValueError::Dead { field: field.name.clone(), reason })
                    }
                }
            }
        }
    }
}
