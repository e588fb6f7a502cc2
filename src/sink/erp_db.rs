//! The engine's own connection to the legacy database (separate from the poller's): lookups,
//! reads of the current row of a key, and the sink's writes. ODBC calls block, so each runs on
//! the blocking pool with the connection moved there and back.

use std::collections::HashMap;
use std::sync::Arc;

use super::erp_sql::{apply_batch, ChangeFailure, LegacyWrite};
use super::SinkError;
use crate::config::LegacyConfig;
use crate::erp::LegacyWriter;
use crate::erp::{Dialect, LegacyError, ReadRow};
use crate::mapping::legacy::{lookup_id, lookup_sql, record_from_row, LookupCache, LookupTable};
use crate::mapping::odoo::FieldError;
use crate::mapping::transform::to_stored;
use crate::mapping::{Mapping, Mappings, Record};
use crate::model::value_text;
use crate::model::{Row, Value};

pub struct LegacyDb {
    config: LegacyConfig,
    conn: Option<Box<dyn LegacyWriter>>,
    dialect: Dialect,
    cache: LookupCache,
    /// Whether `cache` was read during the current batch.
    cache_fresh: bool,
    /// Text columns' maximum lengths in characters, per table (upper-case column names); read
    /// once per table and connection.
    limits: HashMap<String, HashMap<String, usize>>,
}

fn unavailable(message: String) -> SinkError {
    SinkError::Unavailable { system: "legacy", message }
}

impl LegacyDb {
    pub fn new(config: &LegacyConfig) -> Result<LegacyDb, String> {
        Ok(LegacyDb {
            config: config.clone(),
            conn: None,
            dialect: Dialect::Ansi,
            cache: LookupCache::default(),
            cache_fresh: false,
            limits: HashMap::new(),
        })
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub fn cache(&self) -> &LookupCache {
        &self.cache
    }

    /// Runs `f` with the connection on the blocking pool, connecting first if needed. A
    /// transient failure reported by `f` should be followed by [`LegacyDb::reset`].
    async fn run<R: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut dyn LegacyWriter) -> R + Send + 'static,
    ) -> Result<R, SinkError> {
        let existing = self.conn.take();
        let config = self.config.clone();
        let (conn, result) = tokio::task::spawn_blocking(move || -> Result<(Box<dyn LegacyWriter>, R), LegacyError> {
            let mut conn: Box<dyn LegacyWriter> = match existing {
                Some(c) => c,
                None => crate::erp::connect_blocking(&config)?,
            };
            let r = f(conn.as_mut());
            Ok((conn, r))
        })
        .await
        .map_err(|e| unavailable(format!("legacy connection thread: {e}")))?
        .map_err(|e| unavailable(e.to_string()))?;
        self.dialect = conn.dialect();
        self.conn = Some(conn);
        Ok(result)
    }

    pub fn reset(&mut self) {
        self.conn = None;
        self.limits.clear();
    }

    /// The maximum length of each text column of `table`, as the database declares it (empty
    /// where the dialect has no catalog we read).
    pub fn limits(&self, table: &str) -> Option<&HashMap<String, usize>> {
        self.limits.get(table)
    }

    /// Reads the column lengths of the tables not read yet.
    pub async fn ensure_limits(&mut self, tables: &[String]) -> Result<(), SinkError> {
        if self.conn.is_none() {
            self.run(|_| ()).await?;
        }
        for table in tables {
            if self.limits.contains_key(table) {
                continue;
            }
            let name = table.rsplit('.').next().unwrap_or(table).to_string();
            let scope = match self.dialect {
                crate::erp::Dialect::MySql => "TABLE_SCHEMA = DATABASE()",
                crate::erp::Dialect::MsSql => "TABLE_CATALOG = DB_NAME()",
                crate::erp::Dialect::Postgres => "table_schema = current_schema()",
                crate::erp::Dialect::Ansi => {
                    self.limits.insert(table.clone(), HashMap::new());
                    continue;
                }
            };
            let sql = format!(
                "SELECT COLUMN_NAME, CHARACTER_MAXIMUM_LENGTH FROM INFORMATION_SCHEMA.COLUMNS \
                 WHERE {scope} AND TABLE_NAME = ? AND CHARACTER_MAXIMUM_LENGTH > 0"
            );
            let rows = self.select_rows(table.clone(), sql, vec![Value::Text(name)]).await?;
            let mut limits = HashMap::new();
            for row in rows {
                let column = value_text(&row.values[0]).to_ascii_uppercase();
                if let Ok(n) = value_text(&row.values[1]).trim().parse::<f64>() {
                    limits.insert(column, n as usize);
                }
            }
            self.limits.insert(table.clone(), limits);
        }
        Ok(())
    }

    async fn select_rows(&mut self, table: String, sql: String, params: Vec<Value>) -> Result<Vec<Row>, SinkError> {
        let result = self
            .run(move |conn| {
                let mut rows = Vec::new();
                conn.select(&table, &sql, &params, &mut |batch| {
                    for r in batch.rows {
                        let values = match r {
                            ReadRow::Ok(v) => v,
                            ReadRow::Bad { values, .. } => values,
                        };
                        rows.push(Row { columns: batch.columns.clone(), values });
                    }
                    Ok(())
                })
                .map(|_| rows)
            })
            .await?;
        result.map_err(|e| {
            if e.is_transient() {
                self.reset();
            }
            unavailable(e.to_string())
        })
    }

    /// Reads the lookup tables unless this batch already did.
    pub async fn ensure_lookups(&mut self, mappings: &Arc<Mappings>) -> Result<(), SinkError> {
        if self.cache_fresh {
            return Ok(());
        }
        self.refresh_lookups(mappings).await
    }

    /// A new batch: the lookup tables are read again when next needed.
    pub fn new_batch(&mut self) {
        self.cache_fresh = false;
    }

    /// Re-reads every lookup table the mappings use (small code tables).
    pub async fn refresh_lookups(&mut self, mappings: &Arc<Mappings>) -> Result<(), SinkError> {
        if self.conn.is_none() {
            // Learn the dialect before building SQL.
            self.run(|_| ()).await?;
        }
        let mut cache = LookupCache::default();
        for m in &mappings.entities {
            for l in crate::mapping::legacy::lookups(m) {
                let id = lookup_id(l);
                if cache.tables.contains_key(&id) {
                    continue;
                }
                let (sql, params) = lookup_sql(self.dialect, l);
                let rows = self.select_rows(l.table.clone(), sql, params).await?;
                let mut table = LookupTable::default();
                for row in rows {
                    let key = value_text(&row.values[0]).trim_end_matches(' ').to_string();
                    let value = value_text(&row.values[1]).trim_end_matches(' ').to_string();
                    table.by_key.insert(key, value);
                }
                cache.tables.insert(id, table);
            }
        }
        self.cache = cache;
        self.cache_fresh = true;
        Ok(())
    }

    /// The row a key names, as a record (`None` when there is no such row).
    pub async fn read_by_key(
        &mut self,
        m: &Mapping,
        key: &str,
    ) -> Result<Option<Result<Record, FieldError>>, SinkError> {
        if self.conn.is_none() {
            self.run(|_| ()).await?;
        }
        let key_record = Record::from_key(m, key);
        let mut conditions = Vec::new();
        let mut params = Vec::new();
        for k in &m.key {
            let Some(c) = m.legacy.column_of(*k) else { return Ok(None) };
            let stored = match to_stored(c, m.legacy.timezone, &key_record.values[*k]) {
                Ok(stored) => stored,
                // Bad data (a key the ERP's column cannot hold), not an outage: this change
                // is dead-lettered naming it and the batch goes on.
                Err(reason) => {
                    return Ok(Some(Err(FieldError {
                        field: m.fields[*k].name.clone(),
                        column: c.column.clone(),
                        value: key.to_string(),
                        reason: format!("the key cannot be written to {}.{}: {reason}", m.legacy.table, c.column),
                    })))
                }
            };
            conditions.push(format!("{} = ?", self.dialect.quote(&c.column)));
            params.push(stored);
        }
        let sql = format!(
            "SELECT {} FROM {} WHERE {}",
            self.dialect.select_list(&m.legacy.read_columns),
            self.dialect.quote_table(&m.legacy.table),
            conditions.join(" AND ")
        );
        let rows = self.select_rows(m.legacy.table.clone(), sql, params).await?;
        if rows.is_empty() {
            return Ok(None);
        }
        if crate::mapping::legacy::lookups(m).any(|l| self.cache.get(l).is_none()) {
            let all = Arc::new(Mappings { entities: vec![m.clone()] });
            let mut extra = std::mem::take(&mut self.cache);
            self.refresh_lookups(&all).await?;
            extra.tables.extend(std::mem::take(&mut self.cache).tables);
            self.cache = extra;
        }
        Ok(Some(record_from_row(m, &rows[0], &self.cache)))
    }

    /// The rows of a mapping's table whose `column` holds `value` (the dependents of a looked-up
    /// row).
    pub async fn rows_where(&mut self, m: &Mapping, column: &str, value: &str) -> Result<Vec<Row>, SinkError> {
        if self.conn.is_none() {
            self.run(|_| ()).await?;
        }
        let sql = format!(
            "SELECT {} FROM {} WHERE {} = ?",
            self.dialect.select_list(&m.legacy.read_columns),
            self.dialect.quote_table(&m.legacy.table),
            self.dialect.quote(column)
        );
        self.select_rows(m.legacy.table.clone(), sql, vec![Value::Text(value.to_string())]).await
    }

    /// The rows of many keys of one mapping, read in a few queries: key text → record. Keys
    /// with no row are absent; rows that cannot be read are left out (the caller reads them one
    /// by one, which reports why).
    pub async fn read_by_keys(&mut self, m: &Mapping, keys: &[String]) -> Result<HashMap<String, Record>, SinkError> {
        let mut out = HashMap::new();
        if keys.is_empty() {
            return Ok(out);
        }
        if self.conn.is_none() {
            self.run(|_| ()).await?;
        }
        let mut columns = Vec::new();
        for k in &m.key {
            let Some(c) = m.legacy.column_of(*k) else { return Ok(out) };
            columns.push(c);
        }
        let chunk = if columns.len() == 1 { 500 } else { 100 };
        for part in keys.chunks(chunk) {
            let mut params = Vec::new();
            let mut terms = Vec::new();
            for key in part {
                let key_record = Record::from_key(m, key);
                let stored: Result<Vec<_>, _> = m
                    .key
                    .iter()
                    .zip(&columns)
                    .map(|(k, c)| to_stored(c, m.legacy.timezone, &key_record.values[*k]))
                    .collect();
                // A key the ERP's columns cannot hold is left out: read alone, it is reported.
                let Ok(stored) = stored else { continue };
                let conditions: Vec<String> =
                    columns.iter().map(|c| format!("{} = ?", self.dialect.quote(&c.column))).collect();
                params.extend(stored);
                terms.push(format!("({})", conditions.join(" AND ")));
            }
            if terms.is_empty() {
                continue;
            }
            let sql = format!(
                "SELECT {} FROM {} WHERE {}",
                self.dialect.select_list(&m.legacy.read_columns),
                self.dialect.quote_table(&m.legacy.table),
                terms.join(" OR ")
            );
            for row in self.select_rows(m.legacy.table.clone(), sql, params).await? {
                if let Ok(record) = record_from_row(m, &row, &self.cache) {
                    out.insert(m.key_text(&record), record);
                }
            }
        }
        Ok(out)
    }

    /// Which of `values` some row of `table` holds in `column` (compared the database's way;
    /// returned trimmed of trailing spaces, as CHAR codes are read).
    pub async fn existing_values(
        &mut self,
        table: &str,
        column: &str,
        values: &[String],
    ) -> Result<std::collections::HashSet<String>, SinkError> {
        let mut out = std::collections::HashSet::new();
        if values.is_empty() {
            return Ok(out);
        }
        if self.conn.is_none() {
            self.run(|_| ()).await?;
        }
        for part in values.chunks(500) {
            let marks = vec!["?"; part.len()].join(", ");
            let sql = format!(
                "SELECT {0} FROM {1} WHERE {0} IN ({marks})",
                self.dialect.quote(column),
                self.dialect.quote_table(table)
            );
            let params = part.iter().map(|v| Value::Text(v.clone())).collect();
            for row in self.select_rows(table.to_string(), sql, params).await? {
                if let Some(v) = row.values.first() {
                    out.insert(value_text(v).trim_end_matches(' ').to_string());
                }
            }
        }
        Ok(out)
    }

    /// The highest integer in `table.column` (`None` for an empty table).
    pub async fn max_int(&mut self, table: &str, column: &str) -> Result<Option<i64>, SinkError> {
        if self.conn.is_none() {
            self.run(|_| ()).await?;
        }
        let sql = format!("SELECT MAX({}) FROM {}", self.dialect.quote(column), self.dialect.quote_table(table));
        let rows = self.select_rows(table.to_string(), sql, Vec::new()).await?;
        let value = rows.first().and_then(|r| r.values.first()).cloned().unwrap_or(Value::Null);
        match value {
            Value::Null => Ok(None),
            other => value_text(&other)
                .trim()
                .parse::<f64>()
                .map(|n| Some(n as i64))
                .map_err(|_| unavailable(format!("{table}.{column}: the highest value {other:?} is not a number"))),
        }
    }

    /// Applies one batch of writes in one transaction.
    pub async fn write_batch(&mut self, batch: Vec<Vec<LegacyWrite>>) -> Result<Vec<Option<ChangeFailure>>, SinkError> {
        if batch.iter().all(Vec::is_empty) {
            return Ok(batch.iter().map(|_| None).collect());
        }
        let dialect = self.dialect;
        let result = self.run(move |conn| apply_batch(conn, dialect, &batch)).await?;
        result.map_err(|e| {
            self.reset();
            unavailable(format!("writing to the legacy database: {e}"))
        })
    }
}
