//! SQL Server over its own protocol (TDS, through tiberius): the connection string, the
//! connection, the conversion of SQL Server's types into [`crate::model::Value`]s and back, and the
//! SQL helpers the connection needs (placeholders, quoting). The `rowversion` and
//! `change_tracking` strategies that poll through it live in `source::legacy`.
//!
//! No SQL Server runs on millrace's dev and CI machines, so everything but [`MssqlConnection`]
//! is pure and unit-tested; the connection is tested against a live server when
//! `MILLRACE_TEST_MSSQL` holds a connection string (`tests/legacy_mssql.rs`).

mod conn_string;
mod connection;
mod convert;
mod sql;

use std::time::Duration;

use crate::erp::{LegacyConnection, LegacyError, ReadRow};
use crate::model::Value;

pub use connection::MssqlConnection;
pub use convert::{column_to_value, read_cells, typed_column_to_value, value_to_param};
pub use sql::{quote, quote_table, table_columns_query, translate_placeholders, with_change_tracking_context};

/// The `CHANGE_TRACKING_CONTEXT` millrace's own writes into SQL Server carry (`0x6d696c6c72616365`),
/// so that the change-tracking poller skips them instead of echoing them back to Odoo.
pub const MILLRACE_CT_CONTEXT: &[u8] = b"millrace";

/// Rows handed to the `select` callback at a time: large enough to amortise the callback, small
/// enough that a table's first read never sits in memory twice.
pub const BATCH_ROWS: usize = 2000;

/// The command timeout millrace uses unless the connection string sets `Command Timeout`.
///
/// tiberius 0.13 applies its command timeout to each wait for the server's next
/// response token, not to the whole result, so a long streaming read never trips it while rows
/// flow. What it bounds is the wait for the first row (a sort, a lock held by an ERP batch job)
/// and a stalled server. ADO.NET's 30 s default is too short for the first read of a large table
/// behind a busy ERP; ten minutes still catches a server that has gone away.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(600);

/// TCP connect plus TDS/TLS/login handshake, unless the connection string sets `Connect Timeout`
/// (ADO.NET's default, too).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// A table's column names in table order (`sys.columns`), for callers that poll every column.
pub fn table_columns(conn: &mut dyn LegacyConnection, table: &str) -> Result<Vec<String>, LegacyError> {
    let (sql, params) = table_columns_query(table);
    let mut names = Vec::new();
    conn.select(table, &sql, &params, &mut |batch| {
        for row in batch.rows {
            match row {
                ReadRow::Ok(values) => match values.into_iter().next() {
                    Some(Value::Text(name)) => names.push(name),
                    other => {
                        return Err(LegacyError::Other(format!(
                            "{table}: sys.columns returned {other:?} as a column name"
                        )))
                    }
                },
                ReadRow::Bad { reason, .. } => {
                    return Err(LegacyError::Other(format!("{table}: cannot read a column name: {reason}")))
                }
            }
        }
        Ok(())
    })?;
    if names.is_empty() {
        return Err(LegacyError::Other(format!(
            "table {table} not found in the legacy database (or the login cannot see its columns)"
        )));
    }
    Ok(names)
}
