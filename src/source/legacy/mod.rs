//! The legacy ERP source: polling tables through ODBC (or SQL Server's own protocol) without
//! missing a change.
//!
//! Legacy ERPs rarely offer a change stream, so each table is polled with the strategy it
//! allows (`timestamp`, `hashdiff`, and on SQL Server `rowversion` and `change_tracking`).
//! `odbc.rs` owns the connection and reads rows; `convert.rs` turns driver text into
//! [`Value`]s (pure); each strategy decides what changed; `poller.rs` runs them and produces
//! the checkpoint that `state` saves once the changes are handled.

pub mod convert;
pub mod hashdiff;
pub mod mssql;
pub mod odbc;
pub mod poller;
pub mod reader;
pub mod row_hash;
pub mod timestamp;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::model::Value;

/// Which SQL dialect the legacy database speaks: identifier quoting and paging differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// MariaDB and MySQL: backtick quotes, `LIMIT`.
    MySql,
    /// SQL Server: bracket quotes, `TOP`/`OFFSET FETCH`, no row-value comparison.
    MsSql,
    /// PostgreSQL through ODBC: double quotes, `LIMIT`.
    Postgres,
    /// Anything else: ANSI double quotes and `FETCH FIRST`.
    Ansi,
}

impl Dialect {
    /// From ODBC's `SQL_DBMS_NAME`.
    pub fn from_dbms_name(name: &str) -> Dialect {
        let lower = name.to_ascii_lowercase();
        if lower.contains("mariadb") || lower.contains("mysql") {
            Dialect::MySql
        } else if lower.contains("sql server") {
            Dialect::MsSql
        } else if lower.contains("postgres") {
            Dialect::Postgres
        } else {
            Dialect::Ansi
        }
    }

    /// Quotes one identifier (a column, or one part of a table name).
    pub fn quote(self, ident: &str) -> String {
        match self {
            Dialect::MySql => format!("`{}`", ident.replace('`', "``")),
            Dialect::MsSql => format!("[{}]", ident.replace(']', "]]")),
            Dialect::Postgres | Dialect::Ansi => format!("\"{}\"", ident.replace('"', "\"\"")),
        }
    }

    /// Quotes a possibly qualified table name, part by part (`LEGACY.ITEM_MASTER`).
    pub fn quote_table(self, table: &str) -> String {
        table.split('.').map(|part| self.quote(part)).collect::<Vec<_>>().join(".")
    }

    /// The select list of `columns`, quoted; `*` when empty (every column).
    pub fn select_list(self, columns: &[String]) -> String {
        if columns.is_empty() {
            return "*".into();
        }
        columns.iter().map(|c| self.quote(c)).collect::<Vec<_>>().join(", ")
    }

    /// `SELECT … ORDER BY … ` limited to `n` rows.
    pub fn limit(self, select_body: &str, order_by: &str, n: usize) -> String {
        match self {
            Dialect::MySql | Dialect::Postgres => format!("SELECT {select_body} ORDER BY {order_by} LIMIT {n}"),
            Dialect::MsSql => format!("SELECT TOP ({n}) {select_body} ORDER BY {order_by}"),
            Dialect::Ansi => format!("SELECT {select_body} ORDER BY {order_by} FETCH FIRST {n} ROWS ONLY"),
        }
    }

    /// `(k1, k2) > (?, ?)` written so that every dialect understands it (SQL Server has no
    /// row-value comparison): `k1 > ? OR (k1 = ? AND k2 > ?)`. Returns the clause and how many
    /// times each key value must be bound, in order.
    pub fn keys_after(self, quoted_keys: &[String]) -> (String, Vec<usize>) {
        let mut terms = Vec::new();
        let mut binds = Vec::new();
        for i in 0..quoted_keys.len() {
            let mut parts = Vec::new();
            for (j, key) in quoted_keys.iter().enumerate().take(i) {
                parts.push(format!("{key} = ?"));
                binds.push(j);
            }
            parts.push(format!("{} > ?", quoted_keys[i]));
            binds.push(i);
            terms.push(format!("({})", parts.join(" AND ")));
        }
        (terms.join(" OR "), binds)
    }
}

/// Which change-detection strategy a table is polled with.
#[derive(Debug, Clone, PartialEq)]
pub enum Strategy {
    /// A modified-at column; re-reads `safety_window` behind the watermark so rows of
    /// transactions that commit late are still found.
    Timestamp { column: String, safety_window: Duration },
    /// Chunked key-ordered scans compared with stored row hashes.
    Hashdiff { chunk_size: usize },
    /// SQL Server `rowversion` column.
    Rowversion { column: String },
    /// SQL Server change tracking.
    ChangeTracking,
}

impl Strategy {
    /// The column the strategy reads versions from, if it has one.
    pub fn column(&self) -> Option<&str> {
        match self {
            Strategy::Timestamp { column, .. } | Strategy::Rowversion { column } => Some(column),
            Strategy::Hashdiff { .. } | Strategy::ChangeTracking => None,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Strategy::Timestamp { .. } => "timestamp",
            Strategy::Hashdiff { .. } => "hashdiff",
            Strategy::Rowversion { .. } => "rowversion",
            Strategy::ChangeTracking => "change_tracking",
        }
    }
}

/// One polled table.
#[derive(Debug, Clone, PartialEq)]
pub struct LegacyTable {
    /// As the database names it, possibly qualified (`ERP.ITEM_MASTER`).
    pub table: String,
    /// Key columns, in order.
    pub key: Vec<String>,
    pub strategy: Strategy,
    /// A `hashdiff` pass on this schedule beside `timestamp`/`rowversion`, to find deletes.
    pub delete_scan_interval: Option<Duration>,
    /// Rows per chunk of a key-ordered scan.
    pub chunk_size: usize,
    /// The columns a poll reads: those the mappings use (their columns, lookups' keys, values
    /// and filters, the strategy's column). Empty: every column (`tail-legacy` of a configured
    /// table). Columns nothing maps are never read, so their types and sizes cannot fail a poll.
    pub columns: Vec<String>,
}

impl LegacyTable {
    /// Reads only `mapped` (the columns mappings use), with the table's own key and version
    /// column; every column when no mapping reads the table (`mapped` empty).
    pub fn read_only(&mut self, mut mapped: Vec<String>) {
        if !mapped.is_empty() {
            for c in self.key.iter().map(String::as_str).chain(self.strategy.column()) {
                push_column_once(&mut mapped, c);
            }
        }
        self.columns = mapped;
    }
}

/// Appends `column` unless `columns` holds it already (compared as the ERP does, ignoring case).
pub fn push_column_once(columns: &mut Vec<String>, column: &str) {
    if !column.is_empty() && !columns.iter().any(|c| c.eq_ignore_ascii_case(column)) {
        columns.push(column.to_string());
    }
}

/// A row that could not be read: it goes to the dead-letter queue with this reason; the other
/// rows flow.
#[derive(Debug, Clone, PartialEq)]
pub struct BadLegacyRow {
    pub table: String,
    /// The row's key as read (possibly partial if the key itself could not be read).
    pub key: String,
    pub column: String,
    /// The offending value, as the driver sent it (lossy if it was not UTF-8).
    pub value: String,
    pub reason: String,
}

impl fmt::Display for BadLegacyRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} key {} column {}: {} (value {:?})", self.table, self.key, self.column, self.reason, self.value)
    }
}

/// A failure talking to the legacy database. Transient ones (lost connection, timeout,
/// deadlock) are retried by the caller; the rest stop the poll with this message.
#[derive(Debug, thiserror::Error)]
pub enum LegacyError {
    #[error("cannot connect to the legacy database ({target}): {message}")]
    Connect { target: String, message: String, transient: bool },
    #[error("query on {table} failed: {message} [SQL: {sql}]")]
    Query { table: String, sql: String, message: String, transient: bool },
    #[error("{0}")]
    Other(String),
}

impl LegacyError {
    pub fn is_transient(&self) -> bool {
        match self {
            LegacyError::Connect { transient, .. } | LegacyError::Query { transient, .. } => *transient,
            LegacyError::Other(_) => false,
        }
    }
}

/// One row as read: its values in column order, or why one of its cells could not be read.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadRow {
    Ok(Vec<Value>),
    /// The other cells are still read (`Null` where they failed), so the key can be reported.
    Bad {
        values: Vec<Value>,
        column: usize,
        raw: String,
        reason: String,
    },
}

/// Rows read by one fetch, sharing their column names.
#[derive(Debug, Clone)]
pub struct RowBatch {
    pub columns: Arc<[String]>,
    pub rows: Vec<ReadRow>,
}

/// A connection to the legacy database, ODBC or SQL Server. Blocking: pollers run it on a
/// thread of their own.
pub trait LegacyConnection: Send {
    fn dialect(&self) -> Dialect;

    /// Runs a `SELECT` with `?` placeholders bound to `params` (text, integers, timestamps) and
    /// hands the rows over in batches. `table` names the table in errors.
    fn select(
        &mut self,
        table: &str,
        sql: &str,
        params: &[Value],
        on_batch: &mut dyn FnMut(RowBatch) -> Result<(), LegacyError>,
    ) -> Result<(), LegacyError>;
}

/// The canonical text of a row key: a JSON array of the key values, CHAR padding trimmed, so
/// `'A100    '` and `'A100'` are the same item.
pub fn key_text(values: &[&Value]) -> String {
    let mut out = String::from("[");
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match value {
            Value::Int(n) => out.push_str(&n.to_string()),
            Value::Text(s) => out.push_str(&serde_json::Value::String(s.trim_end_matches(' ').to_string()).to_string()),
            Value::Null => out.push_str("null"),
            other => {
                let text = crate::source::legacy::convert::value_text(other);
                out.push_str(&serde_json::Value::String(text).to_string());
            }
        }
    }
    out.push(']');
    out
}

/// The key values back from [`key_text`] (numbers as `Int`, everything else as `Text`).
pub fn key_values(text: &str) -> Vec<Value> {
    match serde_json::from_str::<Vec<serde_json::Value>>(text) {
        Ok(values) => values
            .into_iter()
            .map(|v| match v {
                serde_json::Value::Number(n) => {
                    n.as_i64().map(Value::Int).unwrap_or_else(|| Value::Text(n.to_string()))
                }
                serde_json::Value::String(s) => Value::Text(s),
                serde_json::Value::Null => Value::Null,
                other => Value::Text(other.to_string()),
            })
            .collect(),
        Err(_) => vec![Value::Text(text.to_string())],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_per_dialect() {
        assert_eq!(Dialect::MySql.quote_table("ERP.ITEM`X"), "`ERP`.`ITEM``X`");
        assert_eq!(Dialect::MsSql.quote("ITEM]NO"), "[ITEM]]NO]");
        assert_eq!(Dialect::Ansi.quote("A\"B"), "\"A\"\"B\"");
    }

    #[test]
    fn keyset_paging_without_row_values() {
        let keys = vec!["[A]".to_string(), "[B]".to_string(), "[C]".to_string()];
        let (clause, binds) = Dialect::MsSql.keys_after(&keys);
        assert_eq!(clause, "([A] > ?) OR ([A] = ? AND [B] > ?) OR ([A] = ? AND [B] = ? AND [C] > ?)");
        assert_eq!(binds, vec![0, 0, 1, 0, 1, 2]);
        assert_eq!(Dialect::MsSql.limit("* FROM [T]", "[A]", 10), "SELECT TOP (10) * FROM [T] ORDER BY [A]");
        assert_eq!(Dialect::MySql.limit("* FROM `T`", "`A`", 10), "SELECT * FROM `T` ORDER BY `A` LIMIT 10");
    }

    #[test]
    fn keys_are_trimmed_and_round_trip() {
        let text = key_text(&[&Value::Text("A100    ".into()), &Value::Int(7)]);
        assert_eq!(text, r#"["A100",7]"#);
        assert_eq!(key_values(&text), vec![Value::Text("A100".into()), Value::Int(7)]);
    }
}
