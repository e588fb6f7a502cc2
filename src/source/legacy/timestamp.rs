//! The `timestamp` strategy: a modified-at column, the key as tie-breaker, and a safety window.
//!
//! A plain `modified_at > last_seen` poll loses rows: a transaction stamps its row when it
//! writes it but may commit later, after a poll has already moved the watermark past that stamp.
//! So every poll re-reads `safety_window` behind the watermark, and rows seen before are
//! recognised by their fingerprint (kept for rows inside the window) and not emitted twice.

use std::collections::VecDeque;
use std::time::Duration;

use chrono::NaiveDateTime;

use super::BadLegacyRow;
use crate::config::LegacyTable;
use crate::erp::reader::{self, PagedScan, ReadPlan};
use crate::erp::{LegacyConnection, LegacyError, ReadRow};
use crate::model::key_text;
use crate::model::row_hash_i64;
use crate::model::value_text;
use crate::model::{Op, Row, RowChange, Value};
use crate::state::{Fingerprints, PollState, SaveOutcome};

use super::{LegacyItem, PollError};

const VERSION_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.6f";

pub fn format_version(ts: &NaiveDateTime) -> String {
    ts.format(VERSION_FORMAT).to_string()
}

fn parse_version(text: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(text, VERSION_FORMAT).ok()
}

/// The reads of one poll: everything from `since` on, oldest first (by the timestamp, then the
/// key), or on a first poll the whole table (rows without a timestamp first, by key). Read in
/// pages of the table's `chunk_size`, so a first poll of a large table never sits in the driver.
pub fn poll_scans(
    conn: &dyn LegacyConnection,
    table: &LegacyTable,
    column: &str,
    since: Option<Value>,
) -> Vec<PagedScan> {
    let quoted = conn.dialect().quote(column);
    let by_version: Vec<String> = std::iter::once(column.to_string()).chain(table.key.iter().cloned()).collect();
    match since {
        Some(since) => {
            vec![PagedScan { filter: Some(format!("{quoted} >= ?")), params: vec![since], order: by_version }]
        }
        None => vec![
            PagedScan { filter: Some(format!("{quoted} IS NULL")), params: Vec::new(), order: table.key.clone() },
            PagedScan { filter: Some(format!("{quoted} IS NOT NULL")), params: Vec::new(), order: by_version },
        ],
    }
}

/// One poll. Emits changed rows through `emit`; returns what acknowledging the poll saves.
pub async fn poll(
    conn: Box<dyn LegacyConnection>,
    store: &impl PollState,
    table: &LegacyTable,
    column: &str,
    safety_window: Duration,
    emit: &mut (dyn FnMut(LegacyItem) -> std::io::Result<()> + Send),
) -> Result<(SaveOutcome, Box<dyn LegacyConnection>), PollError> {
    let strategy = "timestamp";
    let checkpoint = store.checkpoint(&table.table, strategy).await?;
    let watermark = checkpoint.watermark.as_deref().and_then(parse_version);
    let recent = store.recent_hashes(&table.table, strategy).await?;
    let window = chrono::Duration::from_std(safety_window).unwrap_or_else(|_| chrono::Duration::days(1));
    let since = watermark.map(|w| w - window);
    let scans = poll_scans(conn.as_ref(), table, column, since.map(Value::Timestamp));
    let (mut rx, handle) = reader::spawn(conn, ReadPlan::Paged { table: table.clone(), scans });

    let first_poll = !checkpoint.exists;
    let mut newest = watermark;
    // Fingerprints of emitted rows still inside the re-read window. Rows arrive oldest first, so
    // those that fall out of the window leave from the front: a first read of a large table does
    // not hold a fingerprint per row.
    let mut emitted = Fingerprints::default();
    // The stamps of `emitted`, oldest first, each with how many rows in a row carry it.
    let mut stamps: VecDeque<(NaiveDateTime, usize)> = VecDeque::new();
    let mut failure = None;
    while let Some(batch) = rx.recv().await {
        let batch = match batch {
            Ok(batch) => batch,
            Err(e) => {
                failure = Some(e);
                break;
            }
        };
        let find = |name: &str| batch.columns.iter().position(|c| c.eq_ignore_ascii_case(name));
        let Some(ts_at) = find(column) else {
            failure =
                Some(LegacyError::Other(format!("{}: column {column} (the timestamp column) not found", table.table)));
            break;
        };
        let key_at: Vec<usize> = table.key.iter().filter_map(|k| find(k)).collect();
        if key_at.len() != table.key.len() {
            failure =
                Some(LegacyError::Other(format!("{}: key column(s) {} not found", table.table, table.key.join(", "))));
            break;
        }
        for row in batch.rows {
            let values = match row {
                ReadRow::Ok(values) => values,
                ReadRow::Bad { values, column, raw, reason } => {
                    let key = key_text(&key_at.iter().map(|&i| &values[i]).collect::<Vec<_>>());
                    emit(LegacyItem::Bad(BadLegacyRow {
                        table: table.table.clone(),
                        key,
                        column: batch.columns[column].clone(),
                        value: raw,
                        reason,
                    }))?;
                    continue;
                }
            };
            let key = key_text(&key_at.iter().map(|&i| &values[i]).collect::<Vec<_>>());
            let hash = row_hash_i64(&values);
            if recent.matches(&key, hash) {
                continue;
            }
            let stamp = match &values[ts_at] {
                Value::Timestamp(ts) => Some(*ts),
                Value::Date(d) => d.and_hms_opt(0, 0, 0),
                _ => None,
            };
            if let Some(ts) = stamp {
                newest = Some(newest.map_or(ts, |n| n.max(ts)));
            }
            let version = stamp.map(|ts| format_version(&ts)).unwrap_or_else(|| value_text(&values[ts_at]));
            if let (Some(ts), Some(newest)) = (stamp, newest) {
                emitted.push(&key, hash, Some(&version));
                match stamps.back_mut() {
                    Some((at, rows)) if *at == ts => *rows += 1,
                    _ => stamps.push_back((ts, 1)),
                }
                while let Some(&(_, rows)) = stamps.front().filter(|(at, _)| *at < newest - window) {
                    emitted.drop_front(rows);
                    stamps.pop_front();
                }
            }
            emit(LegacyItem::Change(RowChange::legacy(
                &table.table,
                if first_poll { Op::Snapshot } else { Op::Update },
                None,
                Some(Row { columns: batch.columns.clone(), values }),
                version,
                key,
            )))?;
        }
    }
    drop(rx);
    let conn = handle.await.map_err(|e| PollError::Legacy(LegacyError::Other(format!("reader thread: {e}"))))?;
    if let Some(error) = failure {
        return Err(PollError::Legacy(error));
    }
    // Only fingerprints inside the next poll's re-read window are worth keeping.
    let keep_from = newest.map(|n| format_version(&(n - window)));
    let outcome = SaveOutcome {
        watermark: newest.map(|n| format_version(&n)),
        upserts: emitted,
        deletes: Vec::new(),
        prune_before_version: keep_from,
        scanned_at: None,
    };
    Ok((outcome, conn))
}
