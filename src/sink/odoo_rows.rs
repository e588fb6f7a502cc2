//! Reading Odoo's rows while writing: finding a record's row by its key columns, its parent
//! row, and the id a looked-up value names. Reads only; shared by the sinks and by deciding.

use std::collections::HashMap;

use tokio_postgres::types::ToSql;
use tokio_postgres::GenericClient;

use super::ApplyError;
use crate::mapping::transform::to_stored;
use crate::mapping::{Column, ColumnTable, Mapping, Record};
use crate::model::value_text;
use crate::model::{quote_ident, TableName, Value};

/// A database error as the outcome of a change.
pub(crate) fn from_pg(what: &str, error: &tokio_postgres::Error) -> ApplyError {
    match error.as_db_error() {
        Some(db) => {
            let code = db.code().code();
            if ["08", "40", "53", "57", "58"].iter().any(|c| code.starts_with(c)) {
                ApplyError::Transient(format!("{what}: {}", db.message()))
            } else {
                let mut reason = format!("{what}: {} (SQLSTATE {code})", db.message());
                if let Some(detail) = db.detail() {
                    reason.push_str(&format!("; {detail}"));
                }
                ApplyError::Dead { field: db.column().map(str::to_string), reason }
            }
        }
        // No server error: a lost connection is an outage; anything else (a value the
        // client cannot encode) is this change's own fault.
        None if error.is_closed() || std::error::Error::source(error).is_some_and(|s| s.is::<std::io::Error>()) => {
            ApplyError::Transient(format!("{what}: {error}"))
        }
        None => ApplyError::Dead { field: None, reason: format!("{what}: {error}") },
    }
}

/// SQL parameters, all text.
#[derive(Default)]
pub(crate) struct Params(Vec<Option<String>>);

impl Params {
    pub(crate) fn push(&mut self, v: Option<String>) -> String {
        self.0.push(v);
        format!("${}", self.0.len())
    }
    pub(crate) fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.0.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
    }
}

/// One column assignment: the column, the stored value, and the translation language if the
/// column is a translated jsonb.
#[derive(Debug, Clone)]
pub struct Assignment {
    pub table: ColumnTable,
    pub column: String,
    /// The model's field written through Odoo's API (`None`: not written there).
    pub orm_field: Option<String>,
    pub value: Option<String>,
    pub translate: Option<String>,
}

pub(crate) fn default_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::Bool(b) => Some(b.to_string()),
        other => Some(value_text(other)),
    }
}

/// Finds a mapping's Odoo rows by their key columns: the writer's search before it inserts, and
/// the read of a decision's target row (outside any transaction; it needs no column types).
pub struct KeySearch<'a, C: GenericClient + Sync> {
    pub client: &'a C,
    /// As [`OdooWriter::resolved`].
    pub resolved: Option<&'a std::cell::RefCell<HashMap<String, String>>>,
}

impl<C: GenericClient + Sync> KeySearch<'_, C> {
    async fn reverse_lookup(&self, m: &Mapping, key: &str, c: &Column, value: &str) -> Result<String, ApplyError> {
        let l = c.lookup.as_ref().expect("called for lookup columns");
        let filters: Vec<String> = l.filter.iter().map(|(c, v)| format!("{c}={}", value_text(v))).collect();
        let cache_key = format!("{}|{}|{}|{:?}|{}|{value}", l.table, l.key, l.value, l.translate, filters.join(","));
        if let Some(hit) = self.resolved.and_then(|r| r.borrow().get(&cache_key).cloned()) {
            return Ok(hit);
        }
        let mut params = Params::default();
        let v = params.push(Some(value.to_string()));
        let mut value_col = format!("l.{}", quote_ident(&l.value));
        if let Some(lang) = &l.translate {
            let p = params.push(Some(lang.clone()));
            value_col = format!("({value_col} ->> {p})");
        }
        let mut conditions = vec![format!("{value_col}::text = {v}")];
        for (column, fv) in &l.filter {
            let p = params.push(Some(value_text(fv)));
            conditions.push(format!("l.{}::text = {p}", quote_ident(column)));
        }
        let sql = format!(
            "SELECT l.{}::text FROM {} l WHERE {} ORDER BY 1 LIMIT 1",
            quote_ident(&l.key),
            TableName::parse(&l.table).quoted(),
            conditions.join(" AND ")
        );
        let row = self
            .client
            .query_opt(&sql, &params.refs())
            .await
            .map_err(|e| from_pg(&format!("looking up {} in {}", value, l.table), &e))?;
        match row {
            Some(r) => {
                let key: String = r.get(0);
                if let Some(resolved) = self.resolved {
                    resolved.borrow_mut().insert(cache_key, key.clone());
                }
                Ok(key)
            }
            None => {
                let field = &m.fields[c.field].name;
                let reason = format!(
                    "{} {key}: field {field} = {value:?}: no row of {} has {} = this value",
                    m.entity, l.table, l.value
                );
                if l.park_when_missing {
                    Err(ApplyError::Park(reason))
                } else {
                    Err(ApplyError::Dead { field: Some(field.clone()), reason })
                }
            }
        }
    }

    /// The stored values of `fields`' columns; `searching` includes read-only columns (a key
    /// made from Odoo's id is searched for, never written).
    pub async fn column_values(
        &self,
        m: &Mapping,
        key: &str,
        record: &Record,
        fields: &[usize],
        searching: bool,
    ) -> Result<Vec<Assignment>, ApplyError> {
        let mut out = Vec::new();
        for c in &m.odoo.columns {
            // An expression has no column: it is only written through Odoo's API, to its field.
            if (c.read_only && !searching)
                || (c.expr.is_some() && (searching || c.orm_field.is_none()))
                || !fields.contains(&c.field)
            {
                continue;
            }
            let stored = to_stored(c, None, &record.values[c.field]).map_err(|reason| ApplyError::Dead {
                field: Some(m.fields[c.field].name.clone()),
                reason: format!("{} {key}: field {}: {reason}", m.entity, m.fields[c.field].name),
            })?;
            let value = match (&c.lookup, stored.is_null()) {
                (_, true) => None,
                (Some(_), false) => Some(self.reverse_lookup(m, key, c, &value_text(&stored)).await?),
                (None, false) => default_text(&stored),
            };
            for column in std::iter::once(&c.column).chain(c.also.iter()) {
                out.push(Assignment {
                    table: c.table,
                    column: column.clone(),
                    // `also` columns are fields of the model of the same name.
                    orm_field: c
                        .orm_field
                        .as_ref()
                        .map(|f| if column == &c.column { f.clone() } else { column.clone() }),
                    value: value.clone(),
                    translate: c.translate.clone(),
                });
            }
        }
        Ok(out)
    }

    /// Finds the main row by the record's key columns (for rows millrace has no cross-reference
    /// of yet: created before millrace ran, or written just before a crash).
    pub async fn find_by_key(&self, m: &Mapping, key: &str, record: &Record) -> Result<Option<i64>, ApplyError> {
        // A key Odoo does not store (a unit's ERP code) is found by the mapping's match fields
        // until the cross-reference binds it.
        let by_match = m.key.iter().any(|k| m.odoo.column_of(*k).is_none());
        let fields = if by_match { &m.odoo.match_fields } else { &m.key };
        let assignments = self.column_values(m, key, record, fields, true).await.or_else(|e| match e {
            // A key value that has no referenced row cannot match an existing row.
            ApplyError::Park(_) => Ok(Vec::new()),
            other => Err(other),
        })?;
        if assignments.is_empty() || fields.iter().any(|k| m.odoo.column_of(*k).is_none()) {
            return Ok(None);
        }
        let mut params = Params::default();
        let mut conditions = Vec::new();
        for a in &assignments {
            let alias = if a.table == ColumnTable::Main { "m" } else { "p" };
            let column = format!("{alias}.{}", quote_ident(&a.column));
            let column = match &a.translate {
                Some(lang) => format!("({column} ->> {})", params.push(Some(lang.clone()))),
                None => format!("{column}::text"),
            };
            match &a.value {
                Some(v) => conditions.push(format!("{column} = {}", params.push(Some(v.clone())))),
                None => conditions.push(format!("{column} IS NULL")),
            }
        }
        let sql = format!(
            "SELECT m.{}::bigint {} WHERE {} ORDER BY 1 LIMIT 2",
            quote_ident(&m.odoo.id_column),
            crate::mapping::odoo::from_clause(m),
            conditions.join(" AND ")
        );
        let rows = self
            .client
            .query(&sql, &params.refs())
            .await
            .map_err(|e| from_pg(&format!("finding {} {key} in {}", m.entity, m.odoo.table), &e))?;
        if by_match && rows.len() > 1 {
            let names: Vec<&str> = fields.iter().map(|f| m.fields[*f].name.as_str()).collect();
            return Err(ApplyError::Dead {
                field: None,
                reason: format!(
                    "{} {key}: several rows of {} have its {}; bind one (an existing cross-reference) or rename the others",
                    m.entity,
                    m.odoo.table,
                    names.join(", ")
                ),
            });
        }
        Ok(rows.first().map(|r| r.get(0)))
    }

    pub async fn find_parent(&self, m: &Mapping, key: &str, assignments: &[&Assignment]) -> Result<i64, ApplyError> {
        let Some(parent) = m.odoo.parent.as_ref() else {
            return Err(ApplyError::Dead {
                field: None,
                reason: format!("{} {key}: the mapping has no parent table", m.entity),
            });
        };
        let key_columns: Vec<&&Assignment> = assignments
            .iter()
            .filter(|a| {
                m.key.iter().any(|k| {
                    m.odoo.column_of(*k).is_some_and(|c| c.column == a.column && c.table == ColumnTable::Parent)
                })
            })
            .collect();
        if key_columns.is_empty() {
            return Err(ApplyError::Dead {
                field: None,
                reason: format!(
                    "{} {key}: no key field is stored in {} to find the parent row by",
                    m.entity, parent.table
                ),
            });
        }
        let mut params = Params::default();
        let conditions: Vec<String> = key_columns
            .iter()
            .map(|a| match &a.value {
                Some(v) => format!("{}::text = {}", quote_ident(&a.column), params.push(Some(v.clone()))),
                None => format!("{} IS NULL", quote_ident(&a.column)),
            })
            .collect();
        let sql = format!(
            "SELECT \"id\"::bigint FROM {} WHERE {} ORDER BY 1 LIMIT 1",
            TableName::parse(&parent.table).quoted(),
            conditions.join(" AND ")
        );
        let row = self
            .client
            .query_opt(&sql, &params.refs())
            .await
            .map_err(|e| from_pg(&format!("finding the {} row", parent.table), &e))?;
        row.map(|r| r.get(0))
            .ok_or_else(|| ApplyError::Park(format!("{} {key}: its {} row does not exist yet", m.entity, parent.table)))
    }
}
