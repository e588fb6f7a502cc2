//! The legacy tables millrace polls, as configured (or derived from the mappings): the table,
//! its key, the change-detection strategy and the columns a poll reads.

use std::time::Duration;

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
