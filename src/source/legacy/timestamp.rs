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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Strategy;
    use crate::erp::RowBatch;
    use crate::source::legacy::fake_erp::*;
    use crate::source::legacy::fake_state::*;

    const TABLE: &str = "ERP.ITEM";
    const COLUMNS: [&str; 3] = ["ITEM_NO", "DESCRIPTION", "MODIFIED_AT"];
    const WINDOW: Duration = Duration::from_secs(60);

    fn item_table() -> LegacyTable {
        LegacyTable {
            table: TABLE.into(),
            key: strings(&["ITEM_NO"]),
            strategy: Strategy::Timestamp { column: "MODIFIED_AT".into(), safety_window: WINDOW },
            delete_scan_interval: None,
            chunk_size: 1000,
            columns: strings(&COLUMNS),
        }
    }

    /// 2024-05-01 at `hms` ("10:04:30").
    fn at(hms: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(&format!("2024-05-01 {hms}"), "%Y-%m-%d %H:%M:%S").unwrap()
    }

    fn version(hms: &str) -> String {
        format!("2024-05-01 {hms}.000000")
    }

    fn row(key: &str, description: &str, stamp: Option<&str>) -> Vec<Value> {
        vec![text(key), text(description), stamp.map_or(Value::Null, |s| Value::Timestamp(at(s)))]
    }

    fn key(k: &str) -> String {
        format!("[\"{k}\"]")
    }

    fn fingerprint(k: &str, row: &[Value], stamp: &str) -> (String, i64, Option<String>) {
        (key(k), row_hash_i64(row), Some(version(stamp)))
    }

    async fn poll_with(conn: FakeConnection, state: &FakeState) -> (SaveOutcome, Vec<LegacyItem>) {
        let mut items = Vec::new();
        let (outcome, _conn) =
            poll(Box::new(conn), state, &item_table(), "MODIFIED_AT", WINDOW, &mut |item: LegacyItem| {
                items.push(item);
                Ok(())
            })
            .await
            .unwrap();
        (outcome, items)
    }

    fn upserts(outcome: &SaveOutcome) -> Vec<(String, i64, Option<String>)> {
        outcome.upserts.iter().map(|(k, h, v)| (k.to_string(), h, v.map(str::to_string))).collect()
    }

    #[tokio::test]
    async fn a_first_poll_emits_every_row_as_a_snapshot_and_saves_the_newest_stamp() {
        let conn = FakeConnection::new().on("IS NULL", &COLUMNS, vec![row("N1", "never stamped", None)]).on(
            "IS NOT NULL",
            &COLUMNS,
            vec![row("A", "a", Some("10:00:00")), row("B", "b", Some("10:04:30")), row("C", "c", Some("10:05:00"))],
        );
        let calls = conn.log();
        let state = FakeState::new();
        let (outcome, items) = poll_with(conn, &state).await;

        // Rows without a stamp first, by key; then the stamped ones by (stamp, key).
        let calls = calls.lock().unwrap();
        let sql: Vec<&str> = calls.iter().map(|(_, sql, _)| sql.as_str()).collect();
        assert_eq!(
            sql,
            vec![
                "SELECT TOP (1000) [ITEM_NO], [DESCRIPTION], [MODIFIED_AT] FROM [ERP].[ITEM] \
                 WHERE [MODIFIED_AT] IS NULL ORDER BY [ITEM_NO]",
                "SELECT TOP (1000) [ITEM_NO], [DESCRIPTION], [MODIFIED_AT] FROM [ERP].[ITEM] \
                 WHERE [MODIFIED_AT] IS NOT NULL ORDER BY [MODIFIED_AT], [ITEM_NO]",
            ]
        );
        assert!(calls.iter().all(|(table, _, params)| table == TABLE && params.is_empty()));

        let (changes, bad) = emitted(&items);
        assert!(bad.is_empty());
        assert_eq!(
            changes,
            vec![
                (Op::Snapshot, key("N1"), String::new()),
                (Op::Snapshot, key("A"), version("10:00:00")),
                (Op::Snapshot, key("B"), version("10:04:30")),
                (Op::Snapshot, key("C"), version("10:05:00")),
            ]
        );
        let after = after_of(&items, &key("B")).unwrap();
        assert_eq!(&*after.columns, &strings(&COLUMNS)[..]);
        assert_eq!(after.values, row("B", "b", Some("10:04:30")));

        // The newest stamp is the watermark; only fingerprints inside the next poll's window
        // (one minute behind it) are kept, and older ones pruned.
        assert_eq!(outcome.watermark, Some(version("10:05:00")));
        assert_eq!(outcome.prune_before_version, Some(version("10:04:00")));
        assert_eq!(
            upserts(&outcome),
            vec![
                fingerprint("B", &row("B", "b", Some("10:04:30")), "10:04:30"),
                fingerprint("C", &row("C", "c", Some("10:05:00")), "10:05:00"),
            ]
        );
        assert!(outcome.deletes.is_empty() && outcome.scanned_at.is_none());
    }

    #[tokio::test]
    async fn a_later_poll_rereads_the_window_and_emits_only_rows_not_seen_as_they_are() {
        // What the first poll above saved once acknowledged.
        let state = FakeState::new()
            .with_checkpoint(TABLE, "timestamp", Some(&version("10:05:00")))
            .with_hash(
                TABLE,
                "timestamp",
                &key("B"),
                row_hash_i64(&row("B", "b", Some("10:04:30"))),
                Some(&version("10:04:30")),
            )
            .with_hash(
                TABLE,
                "timestamp",
                &key("C"),
                row_hash_i64(&row("C", "c", Some("10:05:00"))),
                Some(&version("10:05:00")),
            );
        let conn = FakeConnection::new().on(
            ">= ?",
            &COLUMNS,
            vec![
                // Seen by the last poll, unchanged: not emitted again.
                row("B", "b", Some("10:04:30")),
                // Stamped before the watermark by a transaction that committed after that poll.
                row("D", "late", Some("10:04:50")),
                // Changed within the same second as before (its stamp did not move).
                row("C", "c v2", Some("10:05:00")),
                row("E", "new", Some("10:07:00")),
            ],
        );
        let calls = conn.log();
        let (outcome, items) = poll_with(conn, &state).await;

        let calls = calls.lock().unwrap();
        assert_eq!(calls.len(), 1);
        assert_eq!(
            calls[0].1,
            "SELECT TOP (1000) [ITEM_NO], [DESCRIPTION], [MODIFIED_AT] FROM [ERP].[ITEM] \
             WHERE [MODIFIED_AT] >= ? ORDER BY [MODIFIED_AT], [ITEM_NO]"
        );
        assert_eq!(calls[0].2, vec![Value::Timestamp(at("10:04:00"))], "the window behind the watermark is read again");

        let (changes, bad) = emitted(&items);
        assert!(bad.is_empty());
        assert_eq!(
            changes,
            vec![
                (Op::Update, key("D"), version("10:04:50")),
                (Op::Update, key("C"), version("10:05:00")),
                (Op::Update, key("E"), version("10:07:00")),
            ]
        );
        assert_eq!(after_of(&items, &key("C")).unwrap().values, row("C", "c v2", Some("10:05:00")));

        assert_eq!(outcome.watermark, Some(version("10:07:00")));
        assert_eq!(outcome.prune_before_version, Some(version("10:06:00")));
        assert_eq!(upserts(&outcome), vec![fingerprint("E", &row("E", "new", Some("10:07:00")), "10:07:00")]);
    }

    #[tokio::test]
    async fn polls_in_a_row_emit_each_change_once() {
        let mut state = FakeState::new();
        let first = FakeConnection::new().on("IS NULL", &COLUMNS, vec![]).on(
            "IS NOT NULL",
            &COLUMNS,
            vec![row("A", "a", Some("10:00:00")), row("B", "b", Some("10:00:20"))],
        );
        let (outcome, items) = poll_with(first, &state).await;
        assert_eq!(emitted(&items).0.len(), 2);
        state.save(TABLE, "timestamp", &outcome);

        // Nothing changed: the window is read again and nothing is emitted; the watermark stays.
        let same = || {
            FakeConnection::new().on(
                ">= ?",
                &COLUMNS,
                vec![row("A", "a", Some("10:00:00")), row("B", "b", Some("10:00:20"))],
            )
        };
        let (outcome, items) = poll_with(same(), &state).await;
        assert!(items.is_empty(), "{items:?}");
        assert_eq!(outcome.watermark, Some(version("10:00:20")));
        state.save(TABLE, "timestamp", &outcome);
        let (_, items) = poll_with(same(), &state).await;
        assert!(items.is_empty(), "{items:?}");

        // A changes: only A, and only once.
        let changed = || {
            FakeConnection::new().on(
                ">= ?",
                &COLUMNS,
                vec![row("B", "b", Some("10:00:20")), row("A", "a v2", Some("10:00:40"))],
            )
        };
        let (outcome, items) = poll_with(changed(), &state).await;
        assert_eq!(emitted(&items).0, vec![(Op::Update, key("A"), version("10:00:40"))]);
        state.save(TABLE, "timestamp", &outcome);
        let (_, items) = poll_with(changed(), &state).await;
        assert!(items.is_empty(), "{items:?}");
        assert_eq!(
            state.stored(TABLE, "timestamp"),
            vec![
                fingerprint("A", &row("A", "a v2", Some("10:00:40")), "10:00:40"),
                fingerprint("B", &row("B", "b", Some("10:00:20")), "10:00:20"),
            ]
        );
    }

    #[tokio::test]
    async fn a_row_that_cannot_be_read_is_set_apart_and_the_others_flow() {
        let conn = FakeConnection::new().on("IS NULL", &COLUMNS, vec![]).on_batches(
            "IS NOT NULL",
            vec![RowBatch {
                columns: strings(&COLUMNS).into(),
                rows: vec![
                    ReadRow::Ok(row("A", "a", Some("10:00:00"))),
                    ReadRow::Bad {
                        values: vec![text("X  "), Value::Null, Value::Timestamp(at("10:00:10"))],
                        column: 1,
                        raw: "0xFF".into(),
                        reason: "not UTF-8".into(),
                    },
                    ReadRow::Ok(row("B", "b", Some("10:00:20"))),
                ],
            }],
        );
        let (outcome, items) = poll_with(conn, &FakeState::new()).await;
        let (changes, bad) = emitted(&items);
        assert_eq!(
            changes,
            vec![(Op::Snapshot, key("A"), version("10:00:00")), (Op::Snapshot, key("B"), version("10:00:20"))]
        );
        assert_eq!(
            bad,
            vec![BadLegacyRow {
                table: TABLE.into(),
                key: key("X"),
                column: "DESCRIPTION".into(),
                value: "0xFF".into(),
                reason: "not UTF-8".into(),
            }]
        );
        // The unreadable row leaves no fingerprint: it is read again (and set apart again) while
        // inside the window.
        assert_eq!(outcome.watermark, Some(version("10:00:20")));
        assert_eq!(upserts(&outcome).into_iter().map(|u| u.0).collect::<Vec<_>>(), vec![key("A"), key("B")]);
    }
}
