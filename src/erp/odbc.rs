//! Legacy tables through ODBC: any database with a driver (MariaDB/MySQL, Progress, DB2,
//! Pervasive, Oracle, PostgreSQL …).
//!
//! Rows are fetched in columnar blocks of text (one round trip per block, no per-cell calls),
//! then converted by the column's declared type. A cell that cannot be read marks its row bad
//! (for the dead-letter queue) without stopping the fetch.

use std::sync::{Arc, OnceLock};

use odbc_api::buffers::TextRowSet;
use odbc_api::{Connection, ConnectionOptions, Cursor, Environment, IntoParameter, ResultSetMetadata};

use super::text_cells::{convert, ColumnKind};
use super::{Dialect, LegacyConnection, LegacyError, ReadRow, RowBatch};
use crate::config::Secret;
use crate::model::{value_text, Value};

/// Rows per fetched block: large enough to amortise driver round trips, small enough that a
/// block of a wide table stays a few megabytes.
const BATCH_ROWS: usize = 5000;
/// Upper bound for one text cell of a block. A query with a longer column (long text, binary,
/// or no declared length) is fetched row by row instead, each value read in parts however long
/// it is; a value longer than its declared length is refused (the truncation check) rather
/// than silently cut.
const MAX_TEXT_BYTES: usize = 8192;
/// Rows handed on at a time when fetching row by row.
const ROW_WISE_BATCH: usize = 500;

/// The ODBC environment lives as long as the process; connections borrow it.
fn environment() -> Result<&'static Environment, LegacyError> {
    static ENV: OnceLock<Environment> = OnceLock::new();
    if let Some(env) = ENV.get() {
        return Ok(env);
    }
    let env = Environment::new().map_err(|e| LegacyError::Other(format!("cannot start ODBC: {e}")))?;
    Ok(ENV.get_or_init(|| env))
}

pub struct OdbcConnection {
    connection: Connection<'static>,
    dialect: Dialect,
    /// The connection string without its password, for messages.
    shown: String,
}

/// Bytes to reserve for one cell's text. Drivers under-report some display sizes (MariaDB's
/// for `DATETIME(6)` leaves out the fraction), so fixed-format types get room for their longest
/// text; character data gets its declared UTF-8 length. `None`: the column may hold more than
/// [`MAX_TEXT_BYTES`] (or declares no length), so it is read in parts.
fn text_buffer_len(kind: ColumnKind, data_type: &odbc_api::DataType) -> Option<usize> {
    let len = match kind {
        ColumnKind::Int | ColumnKind::Bool => 24,
        ColumnKind::Float => 40,
        ColumnKind::Date => 16,
        ColumnKind::Time => 24,
        ColumnKind::Timestamp => 40,
        ColumnKind::Decimal => data_type.column_size().map_or(80, |p| p.get() + 3),
        // Drivers disagree on binary data as text (hexadecimal, or the raw bytes as MariaDB's
        // does): it is read as binary, row by row.
        ColumnKind::Bytes => return None,
        ColumnKind::Text => data_type.utf8_len()?.get(),
    };
    (len <= MAX_TEXT_BYTES).then_some(len)
}

/// Converts one fetched cell into `values`; the first cell that does not convert makes the row
/// bad (column, raw text, reason).
fn push_cell(
    kind: ColumnKind,
    col: usize,
    raw: Option<&[u8]>,
    values: &mut Vec<Value>,
    bad: &mut Option<(usize, String, String)>,
) {
    match raw {
        None => values.push(Value::Null),
        Some(raw) => match convert(kind, raw) {
            Ok(value) => values.push(value),
            Err(reason) => {
                values.push(Value::Null);
                if bad.is_none() {
                    *bad = Some((col, String::from_utf8_lossy(raw).into_owned(), reason));
                }
            }
        },
    }
}

fn read_row(values: Vec<Value>, bad: Option<(usize, String, String)>) -> ReadRow {
    match bad {
        None => ReadRow::Ok(values),
        Some((column, raw, reason)) => ReadRow::Bad { values, column, raw, reason },
    }
}

/// Hides `PWD=…`/`Password=…` values in a connection string.
pub fn redact(connection_string: &str) -> String {
    connection_string
        .split(';')
        .map(|part| match part.split_once('=') {
            Some((k, _)) if k.trim().eq_ignore_ascii_case("pwd") || k.trim().eq_ignore_ascii_case("password") => {
                format!("{k}=***")
            }
            _ => part.to_string(),
        })
        .collect::<Vec<_>>()
        .join(";")
}

/// SQLSTATEs worth retrying: connection failures (08…), timeouts (HYT0…), deadlocks and
/// serialization failures (40001, 40P01).
fn transient_state(error: &odbc_api::Error) -> bool {
    match error {
        odbc_api::Error::Diagnostics { record, .. } => {
            let state = record.state.as_str();
            // MariaDB/MySQL report a lost or refused connection as HY000 with these native
            // codes (2002/2003 cannot connect, 2006 gone away, 2013 lost during a query, 2055
            // lost at handshake, 1927 killed, 1205 lock wait timeout, 1213 deadlock).
            let mysql_outage = matches!(record.native_error, 2002 | 2003 | 2006 | 2013 | 2055 | 1927 | 1205 | 1213);
            state.starts_with("08") || state.starts_with("HYT") || state == "40001" || state == "40P01" || mysql_outage
        }
        _ => false,
    }
}

impl OdbcConnection {
    /// Connects; `password` (from the config, never from the string itself) is appended as
    /// `PWD={…}`, as it is now: a password file rewritten since the last connection rotates it.
    pub fn connect(connection_string: &str, password: Option<&Secret>) -> Result<OdbcConnection, LegacyError> {
        let shown = redact(connection_string);
        let mut full = connection_string.trim_end_matches(';').to_string();
        if let Some(password) = password {
            // Braces let the password hold ';' and '='; a '}' inside is doubled.
            full.push_str(&format!(";PWD={{{}}}", password.current().expose().replace('}', "}}")));
        }
        // End on a separator: MariaDB Connector/ODBC 3.1 reads past the end of a last attribute
        // that has none (seen as garbage appended to the database name).
        full.push(';');
        let connection =
            environment()?.connect_with_connection_string(&full, ConnectionOptions::default()).map_err(|e| {
                LegacyError::Connect {
                    target: shown.clone(),
                    transient: transient_state(&e),
                    message: e.to_string().replace(&full, &shown),
                }
            })?;
        let dialect =
            connection.database_management_system_name().map(|n| Dialect::from_dbms_name(&n)).unwrap_or(Dialect::Ansi);
        Ok(OdbcConnection { connection, dialect, shown })
    }

    /// The driver connection, for readers that fetch on their own (arrow-odbc's bulk reader).
    pub fn raw(&self) -> &Connection<'static> {
        &self.connection
    }

    /// The connection string, password hidden.
    pub fn target(&self) -> &str {
        &self.shown
    }

    /// Runs a statement that returns no rows, with text parameters; the number of rows it
    /// changed when the driver tells.
    pub fn execute_write(&mut self, sql: &str, params: &[Option<String>]) -> Result<Option<usize>, WriteError> {
        let bound: Vec<_> = params.iter().map(|p| p.as_deref().into_parameter()).collect();
        let mut statement = self.connection.preallocate().map_err(WriteError::from_odbc)?;
        statement.execute(sql, &bound[..]).map_err(WriteError::from_odbc)?;
        statement.row_count().map_err(WriteError::from_odbc)
    }

    /// Starts (false) or ends (true) manual transaction mode.
    pub fn set_autocommit(&mut self, enabled: bool) -> Result<(), WriteError> {
        self.connection.set_autocommit(enabled).map_err(WriteError::from_odbc)
    }

    pub fn commit(&mut self) -> Result<(), WriteError> {
        self.connection.commit().map_err(WriteError::from_odbc)
    }

    pub fn rollback(&mut self) -> Result<(), WriteError> {
        self.connection.rollback().map_err(WriteError::from_odbc)
    }
}

/// A failed write, with the driver's SQLSTATE so the caller can tell bad data from an outage.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct WriteError {
    /// Five-character SQLSTATE, or empty when the driver gave none.
    pub state: String,
    pub message: String,
    pub transient: bool,
}

impl WriteError {
    fn from_odbc(error: odbc_api::Error) -> WriteError {
        let transient = transient_state(&error);
        let state = match &error {
            odbc_api::Error::Diagnostics { record, .. } => record.state.as_str().to_string(),
            _ => String::new(),
        };
        WriteError { state, message: error.to_string(), transient }
    }
}

impl LegacyConnection for OdbcConnection {
    fn dialect(&self) -> Dialect {
        self.dialect
    }

    fn select(
        &mut self,
        table: &str,
        sql: &str,
        params: &[Value],
        on_batch: &mut dyn FnMut(RowBatch) -> Result<(), LegacyError>,
    ) -> Result<(), LegacyError> {
        let query_error = |e: odbc_api::Error| LegacyError::Query {
            table: table.to_string(),
            sql: sql.to_string(),
            transient: transient_state(&e),
            message: e.to_string(),
        };
        // Bound as text: every driver converts text to the column's type for comparison, and
        // the values never become part of the SQL.
        let bound: Vec<_> =
            params.iter().map(|v| if v.is_null() { None } else { Some(value_text(v)) }.into_parameter()).collect();
        let Some(mut cursor) = self.connection.execute(sql, &bound[..], None).map_err(query_error)? else {
            return Ok(());
        };
        let count = cursor.num_result_cols().map_err(query_error)?;
        let mut names = Vec::with_capacity(count as usize);
        let mut kinds = Vec::with_capacity(count as usize);
        let mut lengths = Vec::with_capacity(count as usize);
        for i in 1..=count as u16 {
            names.push(cursor.col_name(i).map_err(query_error)?);
            let data_type = cursor.col_data_type(i).map_err(query_error)?;
            let kind = ColumnKind::from_odbc(&data_type);
            kinds.push(kind);
            lengths.push(text_buffer_len(kind, &data_type));
        }
        let columns: Arc<[String]> = names.into();
        let lengths: Option<Vec<usize>> = lengths.into_iter().collect();
        let Some(lengths) = lengths else {
            // A long column: row by row, each value read whole in as many parts as it takes.
            let mut buf = Vec::new();
            let mut rows = Vec::with_capacity(ROW_WISE_BATCH);
            while let Some(mut row) = cursor.next_row().map_err(query_error)? {
                let mut values = Vec::with_capacity(kinds.len());
                let mut bad = None;
                for (col, kind) in kinds.iter().enumerate() {
                    let number = col as u16 + 1;
                    if *kind == ColumnKind::Bytes {
                        let present = row.get_binary(number, &mut buf).map_err(query_error)?;
                        values.push(if present { Value::Bytes(buf.clone()) } else { Value::Null });
                        continue;
                    }
                    let present = row.get_text(number, &mut buf).map_err(query_error)?;
                    push_cell(*kind, col, present.then_some(buf.as_slice()), &mut values, &mut bad);
                }
                rows.push(read_row(values, bad));
                if rows.len() == ROW_WISE_BATCH {
                    on_batch(RowBatch { columns: columns.clone(), rows: std::mem::take(&mut rows) })?;
                }
            }
            if !rows.is_empty() {
                on_batch(RowBatch { columns, rows })?;
            }
            return Ok(());
        };
        let buffer = TextRowSet::from_max_str_lens(BATCH_ROWS, lengths).map_err(query_error)?;
        let mut block = cursor.bind_buffer(buffer).map_err(query_error)?;
        while let Some(batch) = block.fetch_with_truncation_check(true).map_err(query_error)? {
            let mut rows = Vec::with_capacity(batch.num_rows());
            for row in 0..batch.num_rows() {
                let mut values = Vec::with_capacity(kinds.len());
                let mut bad = None;
                for (col, kind) in kinds.iter().enumerate() {
                    push_cell(*kind, col, batch.at(col, row), &mut values, &mut bad);
                }
                rows.push(read_row(values, bad));
            }
            on_batch(RowBatch { columns: columns.clone(), rows })?;
        }
        Ok(())
    }
}

impl OdbcConnection {
    /// The names of the columns a query returns, as the driver reports them, without fetching a
    /// row: `SELECT * FROM T WHERE 1=0` tells which columns a table has (`millrace check`).
    /// `table` names the table in errors.
    pub fn result_columns(&mut self, table: &str, sql: &str) -> Result<Vec<String>, LegacyError> {
        let query_error = |e: odbc_api::Error| LegacyError::Query {
            table: table.to_string(),
            sql: sql.to_string(),
            transient: transient_state(&e),
            message: e.to_string(),
        };
        let Some(mut cursor) = self.connection.execute(sql, (), None).map_err(query_error)? else {
            return Ok(Vec::new());
        };
        let count = cursor.num_result_cols().map_err(query_error)?;
        (1..=count.max(0) as u16).map(|i| cursor.col_name(i).map_err(query_error)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            redact("Driver={MariaDB Unicode};Server=h;PWD=hunter2;User=u"),
            "Driver={MariaDB Unicode};Server=h;PWD=***;User=u"
        );
        assert_eq!(redact("Password=x;"), "Password=***;");
    }
}
