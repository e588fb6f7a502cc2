//! The ERP client: connections to the legacy database (ODBC, or SQL Server's own protocol), the
//! SQL dialect each speaks, and the conversion of its values. Used by the legacy source (polls,
//! reads by key) and the legacy sink (writes); it knows nothing of mappings or change detection.
//!
//! Connections are blocking (ODBC drivers are): callers run them on a thread of their own
//! (`spawn_blocking`).

pub mod mssql;
pub mod odbc;
pub mod reader;
pub mod text_cells;
mod writer;

use std::sync::Arc;

use crate::config::{LegacyConfig, LegacyKind};
use crate::model::Value;
pub use writer::{LegacyWriter, WriteError};

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

/// Opens a connection to the legacy database, blocking (call it from a blocking thread). A
/// password from a file is read as it is now (and, for SQL Server, again at each reconnect).
pub fn connect_blocking(config: &LegacyConfig) -> Result<Box<dyn LegacyWriter>, LegacyError> {
    Ok(match config.kind {
        LegacyKind::Odbc => {
            Box::new(odbc::OdbcConnection::connect(&config.connection_string, config.password.as_ref())?)
        }
        LegacyKind::Mssql => {
            Box::new(mssql::MssqlConnection::connect(&config.connection_string, config.password.as_ref())?)
        }
    })
}

/// Opens a connection to the legacy database on the blocking pool (drivers block).
pub async fn connect(config: &LegacyConfig) -> Result<Box<dyn LegacyWriter>, LegacyError> {
    let config = config.clone();
    tokio::task::spawn_blocking(move || connect_blocking(&config))
        .await
        .map_err(|e| LegacyError::Other(format!("connect thread: {e}")))?
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
}
