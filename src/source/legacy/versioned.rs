//! Polling by versions SQL Server keeps (`rowversion` and change tracking): what the two
//! strategies share, and the poll that runs either with its saved version and hands out changes.

use super::change_tracking::{change_tracking_start, check_version, ChangeTrackingCheck, ChangeTrackingStart};
use super::row_image::{polled_columns, Decoded};
use super::rowversion::{rowversion_bound, RowversionDecoder};
use super::{LegacyItem, PendingSave, PollError};
use crate::config::{LegacyTable, Strategy};
use crate::erp::reader::{self, ReadPlan};
use crate::erp::{LegacyConnection, LegacyError, RowBatch};
use crate::model::Value;
use crate::state::{PollState, SaveOutcome};

pub(crate) type Emit<'e> = &'e mut (dyn FnMut(LegacyItem) -> std::io::Result<()> + Send);

/// Runs `work` on the connection on a blocking thread (the connection blocks), handing the
/// connection back.
pub(crate) async fn on_blocking_thread<T: Send + 'static>(
    mut conn: Box<dyn LegacyConnection>,
    work: impl FnOnce(&mut dyn LegacyConnection) -> Result<T, LegacyError> + Send + 'static,
) -> Result<(T, Box<dyn LegacyConnection>), PollError> {
    let (result, conn) = tokio::task::spawn_blocking(move || {
        let result = work(conn.as_mut());
        (result, conn)
    })
    .await
    .map_err(|e| LegacyError::Other(format!("legacy connection thread: {e}")))?;
    Ok((result?, conn))
}

/// Runs a change query through the reader (rows stream through a bounded channel, so a first
/// read of a large table never sits in memory) and emits what `decode` makes of each batch.
pub(crate) async fn stream_changes(
    conn: Box<dyn LegacyConnection>,
    table: &str,
    sql: String,
    params: Vec<Value>,
    mut decode: impl FnMut(RowBatch) -> Result<Decoded, LegacyError>,
    emit: Emit<'_>,
) -> Result<Box<dyn LegacyConnection>, PollError> {
    let (mut rx, handle) = reader::spawn(conn, ReadPlan::Query { table: table.to_string(), sql, params });
    let mut failure = None;
    while let Some(batch) = rx.recv().await {
        match batch.and_then(&mut decode) {
            Ok((changes, bad)) => {
                for item in bad {
                    emit(LegacyItem::Bad(item))?;
                }
                for change in changes {
                    emit(LegacyItem::Change(change))?;
                }
            }
            Err(error) => {
                failure = Some(error);
                break;
            }
        }
    }
    drop(rx);
    let conn = handle.await.map_err(|e| LegacyError::Other(format!("reader thread: {e}")))?;
    match failure {
        Some(error) => Err(error.into()),
        None => Ok(conn),
    }
}

/// One poll of a `rowversion` or `change_tracking` table for [`super::poller::LegacyPoller`]:
/// reads the stored version (`legacy_checkpoint.watermark`, the version as a decimal), emits
/// the changes, and returns the version to save once they are handled.
///
/// A change-tracking table whose stored version is too old is an error (not transient) that
/// says a re-snapshot (`millrace backfill`) is needed; a backfill must clear the table's
/// `change_tracking` checkpoint before copying rows, so the next poll starts from the version
/// current before the copy.
pub async fn poll_with_state(
    conn: Box<dyn LegacyConnection>,
    store: &impl PollState,
    table: &LegacyTable,
    emit: Emit<'_>,
) -> Result<(PendingSave, Box<dyn LegacyConnection>), PollError> {
    let strategy = table.strategy.name();
    let checkpoint = store.checkpoint(&table.table, strategy).await?;
    let last = match checkpoint.watermark.as_deref() {
        None => None,
        Some(text) => Some(text.trim().parse::<i64>().map_err(|_| {
            LegacyError::Other(format!("{}: the stored {strategy} version {text:?} is not a number", table.table))
        })?),
    };
    let (version, conn) = match &table.strategy {
        Strategy::Rowversion { .. } => {
            let name = table.table.clone();
            let polled = table.clone();
            let ((columns, bound), conn) = on_blocking_thread(conn, move |c| {
                let columns = polled_columns(c, &polled)?;
                // The bound last, just before the rows are read.
                Ok((columns, rowversion_bound(c, &name)?))
            })
            .await?;
            let (mut decoder, sql, params) = RowversionDecoder::new(table, &columns, last, bound)?;
            let conn = stream_changes(conn, &table.table, sql, params, |batch| decoder.decode(batch), emit).await?;
            (decoder.newest, conn)
        }
        Strategy::ChangeTracking => {
            let owned = table.clone();
            let (start, conn) = on_blocking_thread(conn, move |c| change_tracking_start(c, &owned, last)).await?;
            match start {
                ChangeTrackingStart::Done(poll) if poll.resnapshot_needed() => {
                    return Err(LegacyError::Other(format!("{}: {}", table.table, poll.check)).into());
                }
                ChangeTrackingStart::Done(poll) => {
                    tracing::info!(
                        table = %table.table,
                        version = poll.version,
                        "change tracking starts at the current version; the existing rows come from `millrace backfill`"
                    );
                    (poll.version, conn)
                }
                ChangeTrackingStart::Read { decoder, sql, params, last, current } => {
                    let conn =
                        stream_changes(conn, &table.table, sql, params, |batch| decoder.decode(batch), emit).await?;
                    let name = table.table.clone();
                    let (check, conn) = on_blocking_thread(conn, move |c| check_version(c, &name, last)).await?;
                    if check != ChangeTrackingCheck::Ok {
                        return Err(LegacyError::Other(format!("{}: {check}", table.table)).into());
                    }
                    (current, conn)
                }
            }
        }
        other => {
            return Err(
                LegacyError::Other(format!("{}: `{}` is not a SQL Server strategy", table.table, other.name())).into()
            )
        }
    };
    let outcome = SaveOutcome { watermark: Some(version.to_string()), ..SaveOutcome::default() };
    Ok((PendingSave { table: table.table.clone(), strategy, outcome }, conn))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Op;
    use crate::source::legacy::fake_erp::*;
    use crate::source::legacy::fake_state::*;

    const TABLE: &str = "dbo.ITEM_MASTER";

    fn key(k: &str) -> String {
        format!("[\"{k}\"]")
    }

    /// A rowversion table whose rows A100 (version 2010) and B200 (2012) are below the bound 3000.
    fn rowversion_erp() -> FakeConnection {
        bounded(item_columns(FakeConnection::new()), 3000).on(
            "__mr_version",
            &RV_COLUMNS,
            vec![
                vec![text("A100"), text("Widget"), rv(2010), Value::Int(2010)],
                vec![text("B200"), text("Gadget"), rv(2012), Value::Int(2012)],
            ],
        )
    }

    async fn poll_with(
        conn: FakeConnection,
        state: &FakeState,
        table: &LegacyTable,
    ) -> Result<(PendingSave, Vec<LegacyItem>), PollError> {
        let mut items = Vec::new();
        let (save, _conn) = poll_with_state(Box::new(conn), state, table, &mut |item: LegacyItem| {
            items.push(item);
            Ok(())
        })
        .await?;
        Ok((save, items))
    }

    fn only_the_version(save: &PendingSave) -> Option<&str> {
        let outcome = &save.outcome;
        assert!(outcome.upserts.is_empty() && outcome.deletes.is_empty(), "{outcome:?}");
        assert_eq!((&outcome.prune_before_version, &outcome.scanned_at), (&None, &None));
        outcome.watermark.as_deref()
    }

    #[tokio::test]
    async fn rowversion_starts_after_the_stored_version() {
        let state = FakeState::new().with_checkpoint(TABLE, "rowversion", Some("2005"));
        let conn = rowversion_erp();
        let calls = conn.log();
        let (save, items) = poll_with(conn, &state, &rowversion_table()).await.unwrap();

        let calls = calls.lock().unwrap();
        assert_eq!(calls.len(), 3);
        assert!(calls[0].1.contains("sys.columns") && calls[1].1.contains("MIN_ACTIVE_ROWVERSION"));
        assert!(calls[2].1.contains("[RV] > CAST(? AS BINARY(8)) AND [RV] < CAST(? AS BINARY(8))"), "{}", calls[2].1);
        assert_eq!(calls[2].2, vec![rv(2005), rv(3000)], "after the stored version, below the bound");

        let (changes, bad) = emitted(&items);
        assert!(bad.is_empty());
        assert_eq!(
            changes,
            vec![(Op::Update, key("A100"), "2010".to_string()), (Op::Update, key("B200"), "2012".to_string())]
        );
        assert_eq!((save.table.as_str(), save.strategy), (TABLE, "rowversion"));
        assert_eq!(only_the_version(&save), Some("2012"));
    }

    #[tokio::test]
    async fn rowversion_without_its_checkpoint_reads_every_row_as_a_snapshot() {
        // Another strategy's checkpoint of the table is not this one's.
        let state = FakeState::new().with_checkpoint(TABLE, "hashdiff", None);
        let conn = rowversion_erp();
        let calls = conn.log();
        let (save, items) = poll_with(conn, &state, &rowversion_table()).await.unwrap();

        assert_eq!(calls.lock().unwrap()[2].2, vec![Value::Bytes(vec![0; 8]), rv(3000)]);
        let ops: Vec<Op> = emitted(&items).0.into_iter().map(|c| c.0).collect();
        assert_eq!(ops, vec![Op::Snapshot, Op::Snapshot]);
        assert_eq!(only_the_version(&save), Some("2012"));
    }

    #[tokio::test]
    async fn rowversion_with_nothing_new_keeps_the_stored_version() {
        let state = FakeState::new().with_checkpoint(TABLE, "rowversion", Some("2012"));
        let conn = bounded(item_columns(FakeConnection::new()), 3000).on("__mr_version", &RV_COLUMNS, vec![]);
        let (save, items) = poll_with(conn, &state, &rowversion_table()).await.unwrap();
        assert!(items.is_empty());
        assert_eq!(only_the_version(&save), Some("2012"));
    }

    #[tokio::test]
    async fn a_stored_version_that_is_not_a_number_stops_the_poll_before_reading() {
        let state = FakeState::new().with_checkpoint(TABLE, "rowversion", Some("0x00000000000007D5"));
        let conn = rowversion_erp();
        let calls = conn.log();
        let error = poll_with(conn, &state, &rowversion_table()).await.unwrap_err().to_string();
        assert!(error.contains("dbo.ITEM_MASTER") && error.contains("is not a number"), "{error}");
        assert!(calls.lock().unwrap().is_empty());
    }

    fn tracked(min_valid: i64) -> FakeConnection {
        item_columns(FakeConnection::new())
            .on("CHANGE_TRACKING_CURRENT_VERSION", &["current_version"], vec![vec![Value::Int(120)]])
            .on(
                "CHANGE_TRACKING_MIN_VALID_VERSION",
                &["object_id", "min_valid"],
                vec![vec![Value::Int(5), Value::Int(min_valid)]],
            )
            .on(
                "CHANGETABLE",
                &CT_COLUMNS,
                vec![vec![Value::Int(101), text("I"), Value::Null, text("A100"), text("Widget"), rv(9), Value::Int(1)]],
            )
    }

    #[tokio::test]
    async fn change_tracking_reads_changes_after_the_stored_version_up_to_the_current_one() {
        let state = FakeState::new().with_checkpoint(TABLE, "change_tracking", Some("100"));
        let conn = tracked(100);
        let calls = conn.log();
        let (save, items) = poll_with(conn, &state, &change_tracking_table()).await.unwrap();

        let calls = calls.lock().unwrap();
        let read = calls.iter().find(|c| c.1.contains("CHANGETABLE")).expect("the changes are read");
        assert_eq!(read.2, vec![Value::Int(100), Value::Int(120)]);
        assert_eq!(emitted(&items).0, vec![(Op::Insert, key("A100"), "101".to_string())]);
        assert_eq!((save.table.as_str(), save.strategy), (TABLE, "change_tracking"));
        assert_eq!(only_the_version(&save), Some("120"));
    }

    #[tokio::test]
    async fn change_tracking_with_a_stored_version_too_old_asks_for_a_resnapshot() {
        let state = FakeState::new().with_checkpoint(TABLE, "change_tracking", Some("100"));
        let conn = tracked(110);
        let calls = conn.log();
        let error = poll_with(conn, &state, &change_tracking_table()).await.unwrap_err().to_string();
        assert!(error.contains("re-snapshot") && error.contains("millrace backfill"), "{error}");
        assert!(!calls.lock().unwrap().iter().any(|c| c.1.contains("CHANGETABLE")));
    }
}
