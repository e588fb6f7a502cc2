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
