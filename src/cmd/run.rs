//! `millrace run`: the always-on service, both directions at once.
//!
//! Two reader tasks feed one engine loop: the Odoo stream (one batch per committed
//! transaction) and the legacy poller (one batch per poll). The loop decides and applies one
//! batch at a time, so a key's changes from the two sides never race, and acknowledges a batch
//! (slot flush position, legacy watermarks) only after its outcome is saved. A side that is
//! down makes the loop retry that batch with backoff; SIGTERM or SIGINT stops it between
//! batches (or during a backoff) and it exits 0, having acknowledged only what was done.
//!
//! `capture` runs the same loop with another [`Deliver`]: the mapped changes are published to
//! the bus instead of decided and applied, and acknowledged once the bus holds them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::mpsc;

use super::service::{
    connect_engine, ensure_connected, note_success, retrying, settle, spawn_http, spawn_legacy_poller,
    spawn_odoo_reader, stop_on_signal, Conns, HeldAcks, LegacyPoll, OdooMessage,
};
use crate::config::Config;
use crate::mapping::{Mappings, System};
use crate::model::{Lsn, RowChange};
use crate::ops::metrics::Metrics;
use crate::source::legacy::LegacyItem;
use crate::source::odoo::{OdooStream, OdooStreamConfig, StreamItem};
use crate::sync::{map, BadInput, BatchMeta, Engine, Input};

/// 2000-01-01 00:00:00 UTC in Unix microseconds: PostgreSQL's zero timestamp.
const PG_EPOCH_UNIX_MICROS: i64 = 946_684_800_000_000;

/// How often parked changes are re-decided when nothing was applied meanwhile.
const PARKED_RECHECK: Duration = Duration::from_secs(10);

/// What becomes of the changes the sources yield: `run` decides and applies them ([`Apply`]),
/// `capture` publishes them to the bus. A batch is acknowledged to its source once `deliver`
/// returned for all of it (and the archive, if any, holds it).
pub(crate) trait Deliver {
    /// `run`: decides and applies, archives, retries parked changes and dead letters, serves
    /// reconcile. `capture`: none of that.
    const APPLIES: bool;

    /// Some of a batch's inputs (all of it, or a slice of a large one); `end`: this is the
    /// batch's last delivery. The engine's [`BatchMeta`] describes the batch. Returns how many
    /// were applied (or published).
    async fn deliver(
        &mut self,
        engine: &mut Engine,
        system: System,
        inputs: Vec<Input>,
        position: Option<String>,
        end: bool,
    ) -> anyhow::Result<u64>;
}

/// `run`'s delivery: the engine decides and applies.
pub(crate) struct Apply;

impl Deliver for Apply {
    const APPLIES: bool = true;

    async fn deliver(
        &mut self,
        engine: &mut Engine,
        system: System,
        inputs: Vec<Input>,
        position: Option<String>,
        _end: bool,
    ) -> anyhow::Result<u64> {
        Ok(engine.process(system, inputs, position).await?.applied)
    }
}

pub async fn run(config: &Config) -> anyhow::Result<()> {
    let shutdown = stop_on_signal()?;
    let metrics = Arc::new(Metrics::default());
    tokio::task::LocalSet::new().run_until(serve(config, &mut Apply, shutdown, metrics, "run")).await
}

/// Reads both sources and hands their changes to `deliver` until `shutdown` is set.
pub(crate) async fn serve<D: Deliver>(
    config: &Config,
    deliver: &mut D,
    shutdown: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
    role: &str,
) -> anyhow::Result<()> {
    let mappings = Arc::new(
        Mappings::load_dir(&config.sync.mappings)
            .with_context(|| format!("loading mappings from {}", config.sync.mappings.display()))?,
    );
    let odoo = super::setup::odoo_with_mapped_tables(config)?;
    let legacy = super::setup::legacy_config(config, &mappings)?;
    let legacy_tables: Vec<String> = legacy.tables.iter().map(|t| t.table.clone()).collect();
    let Some(mut engine) = connect_engine(config, mappings.clone(), &shutdown, metrics.clone()).await? else {
        return Ok(());
    };
    metrics.side("odoo", None);
    metrics.side("state", None);
    let mut reconcile_jobs = None;
    if D::APPLIES {
        engine.open_archive(config.archive.as_ref(), role).context("opening the archive directory ([archive] dir)")?;
        // Reconcile on a schedule and the page's reconcile actions: one task, on connections of its own.
        let (sender, jobs) = tokio::sync::mpsc::channel(8);
        crate::reconcile::service::spawn(
            config.clone(),
            mappings.clone(),
            legacy.clone(),
            config.reconcile_every,
            jobs,
            metrics.clone(),
            shutdown.clone(),
        );
        reconcile_jobs = Some(sender);
    }
    if D::APPLIES {
        // (`capture` serves its endpoint itself, standby or active.)
        spawn_http(config, metrics.clone(), reconcile_jobs, shutdown.clone()).await?;
    }
    let mut stream_config = OdooStreamConfig::new(odoo.conn.clone(), &odoo.slot, &odoo.publication);
    stream_config.streaming = odoo.streaming;
    stream_config.status_interval = Duration::from_secs(1);
    {
        let metrics = metrics.clone();
        stream_config.on_reconnect = crate::source::odoo::stream::OnReconnect::new(move || metrics.reconnect("odoo"));
    }
    let stream = match retrying!(
        "Odoo replication",
        shutdown,
        metrics,
        OdooStream::open(stream_config.clone()).await.map_err(|e| {
            let hint = if e.is_missing_slot() { " (run `millrace setup` first)" } else { "" };
            anyhow::anyhow!("{e}{hint}")
        })
    ) {
        Some(s) => s,
        None => return Ok(()),
    };
    let acked: Arc<AtomicU64> = stream.ack_handle();
    let (odoo_tx, mut odoo_rx) = mpsc::channel(1024);
    spawn_odoo_reader(stream, odoo_tx);
    let (legacy_tx, mut legacy_rx) = mpsc::channel(1);
    spawn_legacy_poller(legacy, config.state()?.clone(), legacy_tx, metrics.clone());
    tracing::info!(entities = mappings.entities.len(), slot = %odoo.slot, "running");

    let mut txn = OpenTxn::default();
    // A large transaction a previous run handled in part: its parts already done are skipped.
    let mut resume = match retrying!(
        "control state",
        shutdown,
        metrics,
        engine.state.odoo_txn_progress(&odoo.slot).await.map_err(anyhow::Error::from)
    ) {
        Some(progress) => progress,
        None => return Ok(()),
    };
    let part_changes = config.sync.part_changes;
    let mut retry_tick = tokio::time::interval(config.sync.retry_interval);
    let mut archive_tick = tokio::time::interval(Duration::from_millis(500));
    let mut held = HeldAcks::default();
    let mut applied_since_retry = true;
    let mut last_parked_retry = std::time::Instant::now();
    let conns = Conns {
        odoo: odoo.conn.clone(),
        odoo_config: odoo.clone(),
        state: config.state()?.clone(),
        origin: config.origin(),
    };
    while !shutdown.load(Ordering::SeqCst) {
        metrics.queued("odoo", odoo_rx.len() as u64);
        metrics.queued("legacy", legacy_rx.len() as u64);
        tokio::select! {
            message = odoo_rx.recv() => match message {
                Some(OdooMessage::Item(item @ (StreamItem::Change(_) | StreamItem::BadRow(_)))) => {
                    let lsn = match &item {
                        StreamItem::Change(change) => match change.position {
                            crate::model::Position::Lsn(lsn) => lsn,
                            _ => Lsn::ZERO,
                        },
                        StreamItem::BadRow(row) => row.lsn,
                        _ => Lsn::ZERO,
                    };
                    txn.commit_lsn = Some(lsn);
                    txn.seen += 1;
                    if resume.as_ref().is_some_and(|(at, done)| *at == lsn.to_string() && txn.seen <= *done) {
                        // Handled by a previous run before it stopped.
                        txn.handled = txn.seen;
                        continue;
                    }
                    match item {
                        StreamItem::Change(change) => txn.changes.push(change),
                        StreamItem::BadRow(row) => txn.bad.push(bad_row_input(row)),
                        _ => {}
                    }
                    if txn.changes.len() + txn.bad.len() >= part_changes {
                        // A large transaction: this part is applied, recorded and archived now,
                        // and the point reached saved, so memory stays bounded and a restart
                        // resumes after it. The slot is acknowledged at the commit only.
                        let started = std::time::Instant::now();
                        let part = txn.take_part();
                        metrics.odoo_in_flight(part.commit_ts.map(|t| t.timestamp_micros() as f64 / 1e6));
                        metrics.read("odoo", (part.changes.len() + part.bad.len()) as u64);
                        let done = retrying!("applying part of an Odoo transaction", shutdown, metrics, odoo_part(&mut engine, deliver, &part, &conns, &shutdown).await);
                        let Some(Some(applied)) = done else { break };
                        applied_since_retry |= applied > 0;
                        metrics.batch_took("odoo", started.elapsed());
                        metrics.odoo_txn_progress(Some(txn.seen));
                        if !settle(&mut engine, &mut held, &acked, false, &shutdown, &metrics).await {
                            break;
                        }
                        let saved = retrying!("saving the progress of a large Odoo transaction", shutdown, metrics,
                            engine.state.save_odoo_txn_progress(&odoo.slot, &part.commit_lsn.to_string(), part.txn_part).await.map_err(anyhow::Error::from));
                        if saved.is_none() {
                            break;
                        }
                        tracing::info!(commit_lsn = %part.commit_lsn, changes_done = part.txn_part, "part of a large Odoo transaction handled");
                    }
                }
                Some(OdooMessage::Item(StreamItem::Commit { xid, commit_lsn, end_lsn, commit_ts })) => {
                    let in_parts = txn.handled > 0;
                    let mut part = txn.take_part();
                    txn = OpenTxn::default();
                    part.commit_lsn = commit_lsn;
                    part.xid = xid.or(part.xid);
                    // A transaction written under a replication origin (millrace's own writes)
                    // reports the origin's timestamp, which millrace does not set: zero, that is
                    // 2000-01-01. Its commit time is unknown, not 26 years ago.
                    part.commit_ts = (commit_ts.timestamp_micros() != PG_EPOCH_UNIX_MICROS).then_some(commit_ts);
                    part.in_parts = in_parts;
                    metrics.read("odoo", (part.changes.len() + part.bad.len()) as u64);
                    metrics.odoo_in_flight(part.commit_ts.map(|t| t.timestamp_micros() as f64 / 1e6));
                    let started = std::time::Instant::now();
                    let done = retrying!("applying an Odoo transaction", shutdown, metrics, odoo_part(&mut engine, deliver, &part, &conns, &shutdown).await);
                    match done {
                        Some(Some(applied)) => {
                            applied_since_retry |= applied > 0;
                            held.odoo = held.odoo.max(Some(end_lsn.0));
                            resume = None;
                            metrics.odoo_in_flight(None);
                            metrics.odoo_txn_progress(None);
                            metrics.batch_took("odoo", started.elapsed());
                            note_success(&metrics);
                        }
                        _ => break,
                    }
                    if !settle(&mut engine, &mut held, &acked, false, &shutdown, &metrics).await {
                        break;
                    }
                }
                Some(OdooMessage::Item(StreamItem::CaughtUp)) => {}
                Some(OdooMessage::Failed(error)) => anyhow::bail!("the Odoo stream failed: {error}"),
                None => anyhow::bail!("the Odoo stream ended"),
            },
            poll = legacy_rx.recv() => {
                let Some(LegacyPoll { items, done }) = poll else { anyhow::bail!("the legacy poller stopped") };
                metrics.read("legacy", items.len() as u64);
                let started = std::time::Instant::now();
                engine.batch = BatchMeta { replayable: true, ..BatchMeta::default() };
                let outcome = retrying!("applying a legacy poll", shutdown, metrics, legacy_batch(&mut engine, deliver, &items, &conns).await);
                engine.batch = BatchMeta::default();
                match outcome {
                    Some(applied) => {
                        applied_since_retry |= applied > 0;
                        metrics.batch_took("legacy", started.elapsed());
                        if let Some(done) = done {
                            held.legacy.push(done);
                            metrics.legacy_polled(&legacy_tables);
                        }
                        note_success(&metrics);
                    }
                    None => break,
                }
                if !settle(&mut engine, &mut held, &acked, false, &shutdown, &metrics).await {
                    break;
                }
            },
            _ = archive_tick.tick() => {
                if !settle(&mut engine, &mut held, &acked, false, &shutdown, &metrics).await {
                    break;
                }
            },
            _ = retry_tick.tick(), if D::APPLIES => {
                // Parked changes wait for what is applied (their dependency), and some for time
                // (a write of theirs sent before a restart that may still land): re-decided
                // after something was applied, and every PARKED_RECHECK anyway.
                let parked = if applied_since_retry || last_parked_retry.elapsed() >= PARKED_RECHECK {
                    applied_since_retry = false;
                    last_parked_retry = std::time::Instant::now();
                    retrying!("retrying parked changes", shutdown, metrics, async {
                        ensure_connected(&mut engine, &conns).await?;
                        Ok(engine.retry_parked().await?)
                    }.await)
                } else { None };
                if let Some(s) = parked {
                    applied_since_retry |= s.applied > 0;
                }
                if let Some(s) = retrying!("retrying dead letters", shutdown, metrics, async {
                    ensure_connected(&mut engine, &conns).await?;
                    Ok(engine.retry_dead_letters().await?)
                }.await) {
                    applied_since_retry |= s.applied > 0;
                }
            },
        }
    }
    // What was decided is archived and acknowledged before stopping; a flush that cannot be
    // made now leaves it unacknowledged, to be read and archived again by the next run.
    shutdown.store(false, Ordering::SeqCst);
    let flush_deadline = tokio::time::sleep(Duration::from_secs(10));
    tokio::select! {
        _ = settle(&mut engine, &mut held, &acked, true, &shutdown, &metrics) => {}
        _ = flush_deadline => tracing::warn!("the archive could not be written while stopping; the next run archives what was left"),
    }
    tracing::info!(acknowledged = %Lsn(acked.load(Ordering::SeqCst)), "stopped");
    // Give the stream task a moment to report the final acknowledgement.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    Ok(())
}

/// The row changes of an Odoo transaction not yet handled: all of it, or, for a large one, its
/// next part.
#[derive(Default)]
struct OpenTxn {
    changes: Vec<RowChange>,
    bad: Vec<BadInput>,
    commit_lsn: Option<Lsn>,
    /// Row changes of the transaction received so far (rows that could not be decoded
    /// included): their order is the same on every delivery, so a count is a resume point.
    seen: u64,
    /// Row changes handled in earlier parts (in this run or before a restart).
    handled: u64,
}

/// Row changes of one Odoo transaction to handle as one batch.
struct TxnPart {
    changes: Vec<RowChange>,
    bad: Vec<BadInput>,
    commit_lsn: Lsn,
    xid: Option<u32>,
    commit_ts: Option<chrono::DateTime<chrono::Utc>>,
    /// Row changes of the transaction handled once this part is.
    txn_part: u64,
    /// The transaction is handled in parts (else this is all of it).
    in_parts: bool,
}

impl OpenTxn {
    fn take_part(&mut self) -> TxnPart {
        let changes = std::mem::take(&mut self.changes);
        let xid = changes.iter().find_map(|c| c.xid);
        let commit_ts = changes.iter().find_map(|c| c.commit_ts);
        self.handled = self.seen;
        TxnPart {
            changes,
            bad: std::mem::take(&mut self.bad),
            commit_lsn: self.commit_lsn.unwrap_or(Lsn::ZERO),
            xid,
            commit_ts,
            txn_part: self.seen,
            in_parts: true,
        }
    }
}

fn bad_row_input(row: crate::source::odoo::BadRow) -> BadInput {
    BadInput {
        entity: row.table.to_string(),
        source: System::Odoo,
        key: format!("{} at {}", row.table, row.lsn),
        position: row.lsn.to_string(),
        field: None,
        reason: format!("undecodable row of {}: {}", row.table, row.reason),
    }
}

/// Maps, decides, applies and records one Odoo transaction, or one part of a large one.
async fn odoo_part<D: Deliver>(
    engine: &mut Engine,
    deliver: &mut D,
    part: &TxnPart,
    conns: &Conns,
    shutdown: &AtomicBool,
) -> anyhow::Result<Option<u64>> {
    engine.batch = BatchMeta {
        commit_ts: part.commit_ts,
        xid: part.xid,
        snapshot: false,
        replayable: true,
        txn_part: part.in_parts.then_some(part.txn_part),
        ..BatchMeta::default()
    };
    let result = odoo_batch(engine, deliver, &part.changes, &part.bad, part.commit_lsn, conns, shutdown).await;
    engine.batch = BatchMeta::default();
    result
}

/// Main rows read through and decided at a time: a change to a looked-up row (a renamed
/// product) can re-emit very many records, and they go through in slices of this many.
const READ_SLICE: usize = 5_000;

/// `None` when a shutdown was asked for between two slices (nothing of this batch is
/// acknowledged: it runs again, and what was done is then known).
async fn odoo_batch<D: Deliver>(
    engine: &mut Engine,
    deliver: &mut D,
    changes: &[RowChange],
    bad: &[BadInput],
    commit_lsn: Lsn,
    conns: &Conns,
    shutdown: &AtomicBool,
) -> anyhow::Result<Option<u64>> {
    ensure_connected(engine, conns).await?;
    let origin = conns.origin.as_str();
    let position = commit_lsn.to_string();
    let started = std::time::Instant::now();
    let planned = map::odoo_inputs(engine, changes, &position, origin).await?;
    tracing::debug!(changes = changes.len(), took_ms = started.elapsed().as_millis() as u64, "Odoo changes mapped");
    let mut inputs = planned.inputs;
    inputs.extend(bad.iter().cloned().map(Input::Bad));
    let slices: Vec<(usize, &[i64])> =
        planned.rows.iter().flat_map(|(index, ids)| ids.chunks(READ_SLICE).map(move |slice| (*index, slice))).collect();
    let mut applied = 0;
    let mut done = 0u64;
    for (n, (index, ids)) in slices.iter().enumerate() {
        if n > 0 && shutdown.load(Ordering::SeqCst) {
            engine.metrics.odoo_batch_progress(None);
            return Ok(None);
        }
        let started = std::time::Instant::now();
        inputs.extend(map::odoo_read_inputs(engine, *index, ids, &position).await?);
        tracing::debug!(rows = ids.len(), took_ms = started.elapsed().as_millis() as u64, "Odoo rows read through");
        // A slice at a time; the last goes below, with whatever needed no reading.
        if n + 1 < slices.len() {
            done += inputs.len() as u64;
            applied += deliver
                .deliver(engine, System::Odoo, std::mem::take(&mut inputs), Some(position.clone()), false)
                .await?;
            engine.metrics.odoo_batch_progress(Some(done));
        }
    }
    if !inputs.is_empty() {
        applied += deliver.deliver(engine, System::Odoo, inputs, Some(position), true).await?;
    }
    engine.metrics.odoo_batch_progress(None);
    Ok(Some(applied))
}

async fn legacy_batch<D: Deliver>(
    engine: &mut Engine,
    deliver: &mut D,
    items: &[LegacyItem],
    conns: &Conns,
) -> anyhow::Result<u64> {
    ensure_connected(engine, conns).await?;
    engine.legacy.refresh_lookups(&engine.mappings.clone()).await?;
    // Borrowed, not taken: a retry after an outage maps the same items again.
    let mut inputs = map::legacy_inputs(engine, items);
    let dependents = map::legacy_dependents(engine, items, &inputs).await?;
    inputs.extend(dependents);
    if inputs.is_empty() {
        return Ok(0);
    }
    deliver.deliver(engine, System::Legacy, inputs, None, true).await
}
