//! The legacy ERP source: polling tables through the ERP client ([`crate::erp`]) without missing
//! a change.
//!
//! Legacy ERPs rarely offer a change stream, so each table is polled with the strategy it
//! allows: `timestamp` and `hashdiff` on any database, `rowversion` and `change_tracking` on
//! SQL Server (`versioned.rs` runs those two). Each strategy decides what changed; `poller.rs`
//! runs them and hands back what acknowledging the poll saves, which the caller saves once the
//! changes are handled.

pub mod change_tracking;
#[cfg(test)]
mod fake_erp;
#[cfg(test)]
mod fake_state;
pub mod hashdiff;
pub mod poller;
mod row_image;
pub mod rowversion;
pub mod timestamp;
pub mod versioned;

use std::fmt;

use crate::erp::LegacyError;
use crate::model::RowChange;
use crate::state::{SaveOutcome, StateError};

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

/// What a poll hands out, one at a time.
#[derive(Debug)]
pub enum LegacyItem {
    Change(RowChange),
    Bad(BadLegacyRow),
}

#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error(transparent)]
    Legacy(#[from] LegacyError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),
}

/// One table's outcome, to save on acknowledgement.
#[derive(Debug, Clone)]
pub struct PendingSave {
    pub table: String,
    pub strategy: &'static str,
    pub outcome: SaveOutcome,
}
