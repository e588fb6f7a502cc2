//! The `hashdiff` strategy, for tables with no usable change column: a key-ordered scan in
//! chunks, each row's fingerprint compared with the stored one. New keys are inserts, changed
//! fingerprints updates, stored keys the scan did not see deletes. Beside `timestamp` or
//! `rowversion` it runs on a slower schedule only to find deletes.

use std::collections::HashSet;

use super::BadLegacyRow;
use crate::config::LegacyTable;
use crate::erp::reader::{self, ReadPlan};
use crate::erp::{LegacyConnection, LegacyError, ReadRow};
use crate::model::{key_text, key_values};
use crate::model::{row_hash, row_hash_i64};
use crate::model::{Op, Row, RowChange};
use crate::state::{Fingerprints, PollState, SaveOutcome};

use super::{LegacyItem, PollError};

/// What a pass reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashdiffMode {
    /// Inserts, updates and deletes: the table's only strategy.
    All,
    /// Deletes only: another strategy reports inserts and updates.
    DeletesOnly,
}

pub async fn pass(
    conn: Box<dyn LegacyConnection>,
    store: &impl PollState,
    table: &LegacyTable,
    mode: HashdiffMode,
    emit: &mut (dyn FnMut(LegacyItem) -> std::io::Result<()> + Send),
) -> Result<(SaveOutcome, Box<dyn LegacyConnection>), PollError> {
    let strategy = "hashdiff";
    let started = chrono::Utc::now();
    let version = started.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
    let first_pass = !store.checkpoint(&table.table, strategy).await?.exists;
    let (mut rx, handle) = reader::spawn(conn, ReadPlan::KeysetScan { table: table.clone(), after: None });
    // Keys seen by this pass, as 64-bit fingerprints: 8 bytes a row however wide the key.
    let mut seen: HashSet<u64> = HashSet::new();
    let mut upserts = Fingerprints::default();
    let mut failure = None;
    while let Some(batch) = rx.recv().await {
        let batch = match batch {
            Ok(batch) => batch,
            Err(e) => {
                failure = Some(e);
                break;
            }
        };
        let key_at: Vec<usize> =
            table.key.iter().filter_map(|k| batch.columns.iter().position(|c| c.eq_ignore_ascii_case(k))).collect();
        if key_at.len() != table.key.len() {
            failure =
                Some(LegacyError::Other(format!("{}: key column(s) {} not found", table.table, table.key.join(", "))));
            break;
        }
        let keys: Vec<String> = batch
            .rows
            .iter()
            .map(|row| {
                let values = match row {
                    ReadRow::Ok(values) | ReadRow::Bad { values, .. } => values,
                };
                key_text(&key_at.iter().map(|&i| &values[i]).collect::<Vec<_>>())
            })
            .collect();
        let stored = store.hashes_of(&table.table, strategy, &keys).await?;
        for (row, key) in batch.rows.into_iter().zip(keys) {
            // A row that exists but cannot be read is not a delete.
            seen.insert(row_hash(&[crate::model::Value::Text(key.clone())]));
            let values = match row {
                ReadRow::Ok(values) => values,
                ReadRow::Bad { column, raw, reason, .. } => {
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
            let hash = row_hash_i64(&values);
            let op = match stored.get(&key) {
                Some(h) if *h == hash => continue,
                Some(_) => Op::Update,
                None if first_pass => Op::Snapshot,
                None => Op::Insert,
            };
            upserts.push(&key, hash, None);
            if mode == HashdiffMode::All {
                let after = Some(Row { columns: batch.columns.clone(), values });
                emit(LegacyItem::Change(RowChange::legacy(&table.table, op, None, after, version.clone(), key)))?;
            }
        }
    }
    drop(rx);
    let conn = handle.await.map_err(|e| PollError::Legacy(LegacyError::Other(format!("reader thread: {e}"))))?;
    if let Some(error) = failure {
        return Err(PollError::Legacy(error));
    }

    let mut gone = Vec::new();
    store
        .stored_keys(&table.table, strategy, |key| {
            if !seen.contains(&row_hash(&[crate::model::Value::Text(key.clone())])) {
                gone.push(key);
            }
        })
        .await?;
    let key_columns: std::sync::Arc<[String]> = table.key.clone().into();
    for key in &gone {
        let before = Some(Row { columns: key_columns.clone(), values: key_values(key) });
        emit(LegacyItem::Change(RowChange::legacy(
            &table.table,
            Op::Delete,
            before,
            None,
            version.clone(),
            key.clone(),
        )))?;
    }
    let outcome =
        SaveOutcome { watermark: None, upserts, deletes: gone, prune_before_version: None, scanned_at: Some(started) };
    Ok((outcome, conn))
}
