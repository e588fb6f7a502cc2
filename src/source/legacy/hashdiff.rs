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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Strategy;
    use crate::erp::RowBatch;
    use crate::model::Value;
    use crate::source::legacy::fake_erp::*;
    use crate::source::legacy::fake_state::*;

    const TABLE: &str = "ERP.ITEM";
    const COLUMNS: [&str; 2] = ["ITEM_NO", "DESCRIPTION"];

    fn item_table() -> LegacyTable {
        LegacyTable {
            table: TABLE.into(),
            key: strings(&["ITEM_NO"]),
            strategy: Strategy::Hashdiff { chunk_size: 1000 },
            delete_scan_interval: None,
            chunk_size: 1000,
            columns: strings(&COLUMNS),
        }
    }

    fn row(key: &str, description: &str) -> Vec<Value> {
        vec![text(key), text(description)]
    }

    fn key(k: &str) -> String {
        format!("[\"{k}\"]")
    }

    fn scan(rows: Vec<Vec<Value>>) -> FakeConnection {
        FakeConnection::new().on("FROM [ERP].[ITEM]", &COLUMNS, rows)
    }

    async fn pass_with(conn: FakeConnection, state: &FakeState, mode: HashdiffMode) -> (SaveOutcome, Vec<LegacyItem>) {
        let mut items = Vec::new();
        let (outcome, _conn) = pass(Box::new(conn), state, &item_table(), mode, &mut |item: LegacyItem| {
            items.push(item);
            Ok(())
        })
        .await
        .unwrap();
        (outcome, items)
    }

    fn upserts(outcome: &SaveOutcome) -> Vec<(String, i64)> {
        outcome
            .upserts
            .iter()
            .map(|(k, h, v)| {
                assert_eq!(v, None, "hashdiff fingerprints carry no version");
                (k.to_string(), h)
            })
            .collect()
    }

    /// Ops and keys, in the order emitted.
    fn ops(items: &[LegacyItem]) -> Vec<(Op, String)> {
        emitted(items).0.into_iter().map(|(op, key, _)| (op, key)).collect()
    }

    /// The state after a first pass over A, B and C.
    async fn after_a_first_pass() -> FakeState {
        let mut state = FakeState::new();
        let (outcome, _) =
            pass_with(scan(vec![row("A", "a"), row("B", "b"), row("C", "c")]), &state, HashdiffMode::All).await;
        state.save(TABLE, "hashdiff", &outcome);
        state
    }

    /// A kept, B changed, C gone, D new.
    fn second_scan() -> FakeConnection {
        scan(vec![row("A", "a"), row("B", "b v2"), row("D", "d")])
    }

    #[tokio::test]
    async fn a_first_pass_emits_every_row_as_a_snapshot() {
        let conn = scan(vec![row("A", "a"), row("B", "b"), row("C", "c")]);
        let calls = conn.log();
        let (outcome, items) = pass_with(conn, &FakeState::new(), HashdiffMode::All).await;

        let calls = calls.lock().unwrap();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].1, "SELECT TOP (1000) [ITEM_NO], [DESCRIPTION] FROM [ERP].[ITEM] ORDER BY [ITEM_NO]");

        let (changes, bad) = emitted(&items);
        assert!(bad.is_empty());
        assert_eq!(ops(&items), vec![(Op::Snapshot, key("A")), (Op::Snapshot, key("B")), (Op::Snapshot, key("C"))]);
        // Every change of a pass carries the time it started, which is saved as the scan's time.
        let started = outcome.scanned_at.expect("a pass records when it scanned");
        let version = started.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
        assert!(changes.iter().all(|(_, _, v)| *v == version), "{changes:?} at {version}");
        assert_eq!(after_of(&items, &key("B")).unwrap().values, row("B", "b"));

        assert_eq!(
            upserts(&outcome),
            vec![
                (key("A"), row_hash_i64(&row("A", "a"))),
                (key("B"), row_hash_i64(&row("B", "b"))),
                (key("C"), row_hash_i64(&row("C", "c"))),
            ]
        );
        assert!(outcome.deletes.is_empty());
        assert_eq!((outcome.watermark, outcome.prune_before_version), (None, None));
    }

    #[tokio::test]
    async fn a_later_pass_emits_changed_rows_new_rows_and_deletes_for_keys_gone() {
        let mut state = after_a_first_pass().await;
        let (outcome, items) = pass_with(second_scan(), &state, HashdiffMode::All).await;

        assert_eq!(ops(&items), vec![(Op::Update, key("B")), (Op::Insert, key("D")), (Op::Delete, key("C"))]);
        assert_eq!(after_of(&items, &key("B")).unwrap().values, row("B", "b v2"));
        let LegacyItem::Change(delete) = &items[2] else { panic!("{items:?}") };
        assert_eq!(delete.after, None);
        let before = delete.before.as_ref().expect("a delete carries the key it removes");
        assert_eq!((&*before.columns, &before.values), (&strings(&["ITEM_NO"])[..], &vec![text("C")]));

        assert_eq!(
            upserts(&outcome),
            vec![(key("B"), row_hash_i64(&row("B", "b v2"))), (key("D"), row_hash_i64(&row("D", "d")))]
        );
        assert_eq!(outcome.deletes, vec![key("C")]);

        // Acknowledged, the next pass over the same rows finds nothing.
        state.save(TABLE, "hashdiff", &outcome);
        assert_eq!(
            state.stored(TABLE, "hashdiff").into_iter().map(|s| s.0).collect::<Vec<_>>(),
            [key("A"), key("B"), key("D")]
        );
        let (outcome, items) = pass_with(second_scan(), &state, HashdiffMode::All).await;
        assert!(items.is_empty(), "{items:?}");
        assert!(outcome.upserts.is_empty() && outcome.deletes.is_empty());
    }

    #[tokio::test]
    async fn a_deletes_only_pass_emits_only_deletes_but_stores_what_it_saw() {
        let state = after_a_first_pass().await;
        let (outcome, items) = pass_with(second_scan(), &state, HashdiffMode::DeletesOnly).await;

        assert_eq!(ops(&items), vec![(Op::Delete, key("C"))]);
        assert_eq!(outcome.deletes, vec![key("C")]);
        // The fingerprints are still brought up to date, so the next pass compares with what is
        // in the table now.
        assert_eq!(
            upserts(&outcome),
            vec![(key("B"), row_hash_i64(&row("B", "b v2"))), (key("D"), row_hash_i64(&row("D", "d")))]
        );
        assert!(outcome.scanned_at.is_some(), "the scan's time decides when the next is due");
    }

    #[tokio::test]
    async fn a_row_that_cannot_be_read_is_set_apart_and_not_taken_for_a_delete() {
        let state = after_a_first_pass().await;
        let conn = FakeConnection::new().on_batches(
            "FROM [ERP].[ITEM]",
            vec![RowBatch {
                columns: strings(&COLUMNS).into(),
                rows: vec![
                    ReadRow::Ok(row("A", "a v2")),
                    ReadRow::Bad {
                        values: vec![text("B"), Value::Null],
                        column: 1,
                        raw: "0xFF".into(),
                        reason: "not UTF-8".into(),
                    },
                    ReadRow::Ok(row("C", "c")),
                ],
            }],
        );
        let (outcome, items) = pass_with(conn, &state, HashdiffMode::All).await;
        let (_, bad) = emitted(&items);
        assert_eq!(ops(&items), vec![(Op::Update, key("A"))]);
        assert_eq!(
            bad,
            vec![BadLegacyRow {
                table: TABLE.into(),
                key: key("B"),
                column: "DESCRIPTION".into(),
                value: "0xFF".into(),
                reason: "not UTF-8".into(),
            }]
        );
        assert!(outcome.deletes.is_empty());
        assert_eq!(upserts(&outcome), vec![(key("A"), row_hash_i64(&row("A", "a v2")))]);
    }
}
