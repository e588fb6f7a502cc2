//! What the `rowversion` and `change_tracking` strategies share: the columns a poll reads, where
//! the key sits in a result row, and reading one row's cells or one scalar answer.

use super::BadLegacyRow;
use crate::config::{push_column_once, LegacyTable};
use crate::erp::{LegacyConnection, LegacyError, ReadRow};
use crate::model::{key_text, RowChange, Value};

/// The column the rowversion query adds: the row's version as a `BIGINT`.
pub(crate) const VERSION_COLUMN: &str = "__mr_version";

/// The column the change-tracking query adds: 1 when the changed row still exists.
pub(crate) const ROW_EXISTS_COLUMN: &str = "__mr_row_exists";

/// `columns`, then any key column they lack: every change needs its key, whatever the caller
/// selected. SQL Server matches identifiers case-insensitively under the usual `_CI_` collations,
/// so `item_no` already covers `ITEM_NO`.
pub(crate) fn with_key_columns(columns: &[String], key: &[String]) -> Vec<String> {
    let mut all = columns.to_vec();
    key.iter().for_each(|k| push_column_once(&mut all, k));
    all
}

pub(crate) fn column_position(columns: &[String], name: &str) -> Option<usize> {
    columns.iter().position(|c| c == name).or_else(|| columns.iter().position(|c| c.eq_ignore_ascii_case(name)))
}

pub(crate) fn is_key_column(key: &[String], column: &str) -> bool {
    key.iter().any(|k| k.eq_ignore_ascii_case(column))
}

/// The columns a poll of `table` reads: the mapped ones, or every column (`sys.columns`) when
/// the table names none.
pub(crate) fn polled_columns(conn: &mut dyn LegacyConnection, table: &LegacyTable) -> Result<Vec<String>, LegacyError> {
    if table.columns.is_empty() {
        crate::erp::mssql::table_columns(conn, &table.table)
    } else {
        Ok(table.columns.clone())
    }
}

pub(crate) fn split_row(row: ReadRow) -> (Vec<Value>, Option<(usize, String, String)>) {
    match row {
        ReadRow::Ok(values) => (values, None),
        ReadRow::Bad { values, column, raw, reason } => (values, Some((column, raw, reason))),
    }
}

pub(crate) fn key_of(values: &[Value], positions: &[usize]) -> String {
    let key: Vec<&Value> = positions.iter().map(|&i| values.get(i).unwrap_or(&Value::Null)).collect();
    key_text(&key)
}

pub(crate) fn no_key(table: &LegacyTable) -> LegacyError {
    LegacyError::Other(format!("{}: no key columns configured", table.table))
}

/// Changes and unreadable rows decoded from one batch.
pub(crate) type Decoded = (Vec<RowChange>, Vec<BadLegacyRow>);

/// The first row of a one-row query.
pub(crate) fn single_row(
    conn: &mut dyn LegacyConnection,
    table: &str,
    sql: &str,
    params: &[Value],
) -> Result<Vec<Value>, LegacyError> {
    let mut first = None;
    conn.select(table, sql, params, &mut |batch| {
        if first.is_none() {
            first = batch.rows.into_iter().next();
        }
        Ok(())
    })?;
    match first {
        Some(ReadRow::Ok(values)) => Ok(values),
        Some(ReadRow::Bad { reason, .. }) => Err(LegacyError::Other(format!("{table}: `{sql}`: {reason}"))),
        None => Err(LegacyError::Other(format!("{table}: `{sql}` returned no row"))),
    }
}

pub(crate) fn optional_int(value: Option<&Value>, what: &str, table: &str) -> Result<Option<i64>, LegacyError> {
    match value {
        Some(Value::Int(n)) => Ok(Some(*n)),
        Some(Value::Null) | None => Ok(None),
        Some(other) => Err(LegacyError::Other(format!("{table}: {what} came back as {other:?}, not a number"))),
    }
}

/// Runs a change query and collects what `decode` makes of each batch (the blocking form of a
/// poll, for callers that want the whole result).
pub(crate) fn select_decoded(
    conn: &mut dyn LegacyConnection,
    table: &str,
    sql: &str,
    params: &[Value],
    mut decode: impl FnMut(crate::erp::RowBatch) -> Result<Decoded, LegacyError>,
) -> Result<Decoded, LegacyError> {
    let mut changes = Vec::new();
    let mut bad = Vec::new();
    conn.select(table, sql, params, &mut |batch| {
        let (c, b) = decode(batch)?;
        changes.extend(c);
        bad.extend(b);
        Ok(())
    })?;
    Ok((changes, bad))
}
