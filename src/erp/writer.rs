//! Writing through an ERP connection: the statements and transaction control the legacy sink
//! needs, the same over ODBC and SQL Server.

use super::mssql::{with_change_tracking_context, MssqlConnection};
use super::odbc::OdbcConnection;
pub use super::odbc::WriteError;
use super::{LegacyConnection, LegacyError};
use crate::model::Value;

/// A legacy connection the sink can write through: ODBC, or SQL Server's own protocol.
pub trait LegacyWriter: LegacyConnection {
    /// A statement with `?` placeholders and text parameters; the rows it changed, if known.
    fn execute_write(&mut self, sql: &str, params: &[Option<String>]) -> Result<Option<usize>, WriteError>;
    /// Fixed SQL without parameters (savepoints).
    fn execute_fixed(&mut self, sql: &str) -> Result<(), WriteError>;
    fn begin(&mut self) -> Result<(), WriteError>;
    fn commit(&mut self) -> Result<(), WriteError>;
    fn rollback(&mut self) -> Result<(), WriteError>;
}

impl LegacyWriter for OdbcConnection {
    fn execute_write(&mut self, sql: &str, params: &[Option<String>]) -> Result<Option<usize>, WriteError> {
        OdbcConnection::execute_write(self, sql, params)
    }
    fn execute_fixed(&mut self, sql: &str) -> Result<(), WriteError> {
        OdbcConnection::execute_write(self, sql, &[]).map(|_| ())
    }
    fn begin(&mut self) -> Result<(), WriteError> {
        self.set_autocommit(false)
    }
    fn commit(&mut self) -> Result<(), WriteError> {
        let committed = OdbcConnection::commit(self);
        let restored = self.set_autocommit(true);
        committed.and(restored)
    }
    fn rollback(&mut self) -> Result<(), WriteError> {
        let rolled_back = OdbcConnection::rollback(self);
        let restored = self.set_autocommit(true);
        rolled_back.and(restored)
    }
}

fn mssql_error(error: LegacyError) -> WriteError {
    WriteError { state: String::new(), transient: error.is_transient(), message: error.to_string() }
}

impl LegacyWriter for MssqlConnection {
    /// Every write carries millrace's `CHANGE_TRACKING_CONTEXT`, so the change-tracking poller
    /// skips its echo without comparing content.
    fn execute_write(&mut self, sql: &str, params: &[Option<String>]) -> Result<Option<usize>, WriteError> {
        let values: Vec<Value> = params.iter().map(|p| p.clone().map(Value::Text).unwrap_or(Value::Null)).collect();
        self.execute(&with_change_tracking_context(sql), &values).map(|n| Some(n as usize)).map_err(mssql_error)
    }
    fn execute_fixed(&mut self, sql: &str) -> Result<(), WriteError> {
        self.execute_batch(sql).map_err(mssql_error)
    }
    fn begin(&mut self) -> Result<(), WriteError> {
        self.execute_batch("BEGIN TRANSACTION").map_err(mssql_error)
    }
    fn commit(&mut self) -> Result<(), WriteError> {
        self.execute_batch("COMMIT TRANSACTION").map_err(mssql_error)
    }
    fn rollback(&mut self) -> Result<(), WriteError> {
        self.execute_batch("IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION").map_err(mssql_error)
    }
}
