//! A fake ERP connection returning canned result sets, for the strategies' unit tests.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use crate::config::{LegacyTable, Strategy};
use crate::erp::{Dialect, LegacyConnection, LegacyError, ReadRow, RowBatch};
use crate::model::Value;

/// Canned results by a piece of the SQL (successive calls take successive results; the last
/// one repeats), recording every call (in `calls`, and in [`FakeConnection::log`] for a test
/// whose connection is moved into a poll). A fake is the only way to drive the polls here: no SQL
/// Server runs on millrace's machines (`tests/legacy_mssql.rs` runs them against a real one).
pub(crate) struct FakeConnection {
    pub(crate) responses: Vec<(&'static str, VecDeque<Vec<RowBatch>>)>,
    pub(crate) calls: Vec<Call>,
    log: Arc<Mutex<Vec<Call>>>,
}

/// One `select`: table, SQL, parameters.
pub(crate) type Call = (String, String, Vec<Value>);

impl FakeConnection {
    pub(crate) fn new() -> Self {
        FakeConnection { responses: Vec::new(), calls: Vec::new(), log: Arc::default() }
    }

    pub(crate) fn on(self, sql_part: &'static str, columns: &[&str], rows: Vec<Vec<Value>>) -> Self {
        self.on_batches(sql_part, vec![batch(columns, rows)])
    }

    pub(crate) fn on_batches(mut self, sql_part: &'static str, batches: Vec<RowBatch>) -> Self {
        match self.responses.iter_mut().find(|(part, _)| *part == sql_part) {
            Some((_, results)) => results.push_back(batches),
            None => self.responses.push((sql_part, VecDeque::from([batches]))),
        }
        self
    }

    /// The calls made, shared: still readable once the connection is boxed and handed to a poll.
    pub(crate) fn log(&self) -> Arc<Mutex<Vec<Call>>> {
        self.log.clone()
    }

    pub(crate) fn sql_of_calls(&self) -> Vec<&str> {
        self.calls.iter().map(|(_, sql, _)| sql.as_str()).collect()
    }
}

pub(crate) fn batch(columns: &[&str], rows: Vec<Vec<Value>>) -> RowBatch {
    RowBatch { columns: strings(columns).into(), rows: rows.into_iter().map(ReadRow::Ok).collect() }
}

impl LegacyConnection for FakeConnection {
    fn dialect(&self) -> Dialect {
        Dialect::MsSql
    }

    fn select(
        &mut self,
        table: &str,
        sql: &str,
        params: &[Value],
        on_batch: &mut dyn FnMut(RowBatch) -> Result<(), LegacyError>,
    ) -> Result<(), LegacyError> {
        self.calls.push((table.to_string(), sql.to_string(), params.to_vec()));
        self.log.lock().unwrap().push((table.to_string(), sql.to_string(), params.to_vec()));
        let Some((_, results)) = self.responses.iter_mut().find(|(part, _)| sql.contains(part)) else {
            return Err(LegacyError::Other(format!("fake: unexpected SQL {sql}")));
        };
        let batches = if results.len() > 1 { results.pop_front().unwrap() } else { results[0].clone() };
        for batch in batches {
            on_batch(batch)?;
        }
        Ok(())
    }
}

pub(crate) fn rowversion_table() -> LegacyTable {
    LegacyTable {
        table: "dbo.ITEM_MASTER".into(),
        key: strings(&["ITEM_NO"]),
        strategy: Strategy::Rowversion { column: "RV".into() },
        delete_scan_interval: None,
        chunk_size: 1000,
        columns: Vec::new(),
    }
}

pub(crate) fn change_tracking_table() -> LegacyTable {
    LegacyTable { strategy: Strategy::ChangeTracking, ..rowversion_table() }
}

pub(crate) fn rv(n: i64) -> Value {
    Value::Bytes(n.to_be_bytes().to_vec())
}

pub(crate) fn bounded(conn: FakeConnection, bound: i64) -> FakeConnection {
    conn.on("MIN_ACTIVE_ROWVERSION", &["min_active_rowversion"], vec![vec![Value::Int(bound)]])
}

pub(crate) fn item_columns(conn: FakeConnection) -> FakeConnection {
    conn.on("sys.columns", &["name"], vec![vec![text("ITEM_NO")], vec![text("DESCRIPTION")], vec![text("RV")]])
}

pub(crate) fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

pub(crate) fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

/// The columns the rowversion query of [`rowversion_table`] returns.
pub(crate) const RV_COLUMNS: [&str; 4] = ["ITEM_NO", "DESCRIPTION", "RV", "__mr_version"];

/// The columns the change-tracking query of [`change_tracking_table`] returns.
pub(crate) const CT_COLUMNS: [&str; 7] = [
    "SYS_CHANGE_VERSION",
    "SYS_CHANGE_OPERATION",
    "SYS_CHANGE_CONTEXT",
    "ITEM_NO",
    "DESCRIPTION",
    "RV",
    "__mr_row_exists",
];
