//! `millrace run`: the always-on service, both directions at once.
//!
//! Two reader tasks feed one engine loop: the Odoo stream (one batch per committed
//! transaction) and the legacy poller (one batch per poll). The loop decides and applies one
//! batch at a time, so a key's changes from the two sides never race, and acknowledges a batch
//! (slot flush position, legacy watermarks) only after its outcome is saved. A side that is
//! down makes the loop retry that batch with backoff; SIGTERM or SIGINT stops it between
//! batches (or during a backoff) and it exits 0, having acknowledged only what was done.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, oneshot};

use crate::config::PgConnInfo;
use crate::config::{Config, LegacyConfig};
use crate::mapping::{Mappings, System};
use crate::model::{Lsn, RowChange};
use crate::ops::metrics::Metrics;
use crate::sink::erp_db::LegacyDb;
use crate::sink::OdooTarget;
use crate::source::legacy::poller::LegacyPoller;
use crate::source::legacy::{LegacyItem, PendingSave};
use crate::source::odoo::{OdooStream, OdooStreamConfig, StreamItem};
use crate::state::StateStore;
use crate::sync::{map, BadInput, BatchMeta, Engine, Input, SyncError};

/// 2000-01-01 00:00:00 UTC in Unix microseconds: PostgreSQL's zero timestamp.
const PG_EPOCH_UNIX_MICROS: i64 = 946_684_800_000_000;

enum OdooMessage {
    Item(StreamItem),
    Failed(String),
}

/// Part of a legacy poll, handed over as it is read: a first poll of a large table never sits
/// in memory whole. The last part carries `done`, answered once every part is handled; only
/// then are the poll's watermarks saved.
struct LegacyPoll {
    items: Vec<LegacyItem>,
    done: Option<oneshot::Sender<bool>>,
}

/// Changes of a legacy poll handed over at a time.
const LEGACY_PART_ITEMS: usize = 5_000;

/// Evaluates an async expression until it succeeds, backing off between attempts; `None` when
/// a shutdown was requested meanwhile.
macro_rules! retrying {
    ($what:expr, $shutdown:expr, $metrics:expr, $attempt:expr) => {{
        let mut delay = Duration::from_millis(250);
        loop {
            let result: anyhow::Result<_> = $attempt;
            match result {
                Ok(v) => break Some(v),
                Err(error) => {
                    note_failure(&$metrics, &error);
                    if $shutdown.load(Ordering::SeqCst) {
                        break None;
                    }
                    tracing::warn!(
                        what = $what,
                        error = format!("{error:#}"),
                        retry_in_ms = delay.as_millis() as u64,
                        "unavailable; retrying"
                    );
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            }
        }
    }};
}

/// Marks the side a failed batch could not reach as down (for /ready and `millrace_up`).
fn note_failure(metrics: &Metrics, error: &anyhow::Error) {
    let system = match error.downcast_ref::<SyncError>() {
        Some(SyncError::Unavailable { system, .. }) => system,
        Some(SyncError::State(_)) => "state",
        None if format!("{error:#}").contains("control state") => "state",
        None => "odoo",
    };
    metrics.side(system, Some(&format!("{error:#}")));
    metrics.reconnect(system);
}

/// Every side answered.
fn note_success(metrics: &Metrics) {
    for system in ["odoo", "legacy", "state"] {
        metrics.side(system, None);
    }
}

async fn connect_engine(
    config: &Config,
    mappings: Arc<Mappings>,
    shutdown: &AtomicBool,
    metrics: Arc<Metrics>,
) -> anyhow::Result<Option<Engine>> {
    let odoo_config = config.odoo()?.clone();
    let odoo = odoo_config.conn.clone();
    let state_info = config.state()?.clone();
    let legacy = LegacyDb::new(&super::setup::legacy_config(config, &mappings)?).map_err(anyhow::Error::msg)?;
    let parts = retrying!(
        "control state and Odoo",
        shutdown,
        metrics,
        async {
            let state = StateStore::connect(&state_info).await?;
            let odoo_read = crate::pg::connect(&odoo).await?;
            let sink = OdooTarget::connect(&odoo_config).await?;
            Ok((state, odoo_read, sink))
        }
        .await
    );
    Ok(parts.map(|(state, odoo_read, odoo)| Engine::new(mappings, state, odoo_read, odoo, legacy, metrics)))
}

fn spawn_odoo_reader(mut stream: OdooStream, tx: mpsc::Sender<OdooMessage>) {
    tokio::spawn(async move {
        loop {
            match stream.next().await {
                Ok(item) => {
                    // While the engine is busy with a long batch the queue stays full; the
                    // server is still answered meanwhile, or it would drop the connection
                    // after `wal_sender_timeout` and send everything again.
                    let permit = loop {
                        tokio::select! {
                            permit = tx.reserve() => break permit,
                            _ = tokio::time::sleep(stream.status_interval()) => {
                                if let Err(error) = stream.keep_alive().await {
                                    tracing::debug!(%error, "status update while the engine is busy failed; the stream reconnects when read");
                                }
                            }
                        }
                    };
                    let Ok(permit) = permit else { break };
                    permit.send(OdooMessage::Item(item));
                }
                Err(error) => {
                    let _ = tx.send(OdooMessage::Failed(format!("{error}"))).await;
                    break;
                }
            }
        }
        let _ = stream.close().await;
    });
}

/// Polls the legacy tables on a thread of its own: reading blocks there, not the engine, while
/// the engine works through what was handed over so far.
fn spawn_legacy_poller(legacy: LegacyConfig, state: PgConnInfo, tx: mpsc::Sender<LegacyPoll>, metrics: Arc<Metrics>) {
    // The poller hands parts over from inside its own runtime, where a tokio channel cannot be
    // waited on synchronously: a plain channel carries them to a thread that forwards them.
    let (part_tx, part_rx) = std::sync::mpsc::sync_channel::<LegacyPoll>(1);
    let forward = std::thread::Builder::new().name("millrace-legacy-handover".into()).spawn(move || {
        while let Ok(part) = part_rx.recv() {
            if tx.blocking_send(part).is_err() {
                break;
            }
        }
    });
    let poll = forward.and_then(|_| {
        std::thread::Builder::new().name("millrace-legacy-poller".into()).spawn(move || {
            match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime.block_on(poll_legacy(legacy, state, part_tx, metrics)),
                Err(error) => tracing::error!(%error, "cannot start the legacy poller's runtime"),
            }
        })
    });
    if let Err(error) = poll {
        // The engine sees the poller gone and stops with an error.
        tracing::error!(%error, "cannot start the legacy poller's thread");
    }
}

async fn poll_legacy(
    legacy: LegacyConfig,
    state: PgConnInfo,
    tx: std::sync::mpsc::SyncSender<LegacyPoll>,
    metrics: Arc<Metrics>,
) {
    let mut delay = Duration::from_millis(250);
    let mut poller = loop {
        match LegacyPoller::open(&legacy, &state).await {
            Ok(p) => break p,
            Err(error) => {
                tracing::warn!(%error, "cannot open the legacy poller's state; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    };
    let mut counted = (0, 0);
    let mut failing = legacy.poll_interval;
    loop {
        // The poller's reconnections since the last poll, for millrace_reconnects_total.
        for _ in counted.0..poller.reconnects() {
            metrics.reconnect("legacy");
        }
        for _ in counted.1..poller.state_reconnects() {
            metrics.reconnect("state");
        }
        counted = (poller.reconnects(), poller.state_reconnects());
        let mut items = Vec::new();
        let mut collect = |item: LegacyItem| -> std::io::Result<()> {
            items.push(item);
            if items.len() >= LEGACY_PART_ITEMS {
                tx.send(LegacyPoll { items: std::mem::take(&mut items), done: None })
                    .map_err(|_| std::io::Error::other("the engine stopped"))?;
            }
            Ok(())
        };
        match poller.poll_each(&mut collect).await {
            Ok((saves, failures)) => {
                for table in &legacy.tables {
                    let failure = failures.iter().find(|(t, _)| *t == table.table);
                    let side = format!("legacy table {}", table.table);
                    match failure {
                        Some((_, error)) => {
                            tracing::error!(table = %table.table, %error, "cannot poll this legacy table; the other tables go on");
                            metrics.side(&side, Some(&error.to_string()));
                        }
                        None => metrics.forget_side(&side),
                    }
                }
                let (done, handled) = oneshot::channel();
                if tx.send(LegacyPoll { items, done: Some(done) }).is_err() {
                    return;
                }
                if handled.await == Ok(true) {
                    save_with_retry(&mut poller, &saves).await;
                } else {
                    return;
                }
            }
            Err(error) => {
                // The control state unreachable (or refusing the password, mid-rotation): wait
                // longer each time rather than fail every poll interval.
                tracing::error!(%error, retry_in_ms = failing.as_millis() as u64, "legacy poll failed; polling again");
                tokio::time::sleep(failing).await;
                failing = (failing * 2).min(Duration::from_secs(10).max(legacy.poll_interval));
                continue;
            }
        }
        failing = legacy.poll_interval;
        tokio::time::sleep(legacy.poll_interval).await;
    }
}

async fn save_with_retry(poller: &mut LegacyPoller, saves: &[PendingSave]) {
    let mut delay = Duration::from_millis(250);
    while let Err(error) = poller.save(saves).await {
        tracing::warn!(%error, "saving legacy watermarks failed; retrying");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(10));
    }
}

/// How often parked changes are re-decided when nothing was applied meanwhile.
const PARKED_RECHECK: Duration = Duration::from_secs(10);

pub async fn run(config: &Config) -> anyhow::Result<()> {
    tokio::task::LocalSet::new().run_until(serve(config)).await
}

async fn serve(config: &Config) -> anyhow::Result<()> {
    let mappings = Arc::new(
        Mappings::load_dir(&config.sync.mappings)
            .with_context(|| format!("loading mappings from {}", config.sync.mappings.display()))?,
    );
    let odoo = super::setup::odoo_with_mapped_tables(config)?;
    let legacy = super::setup::legacy_config(config, &mappings)?;
    let legacy_tables: Vec<String> = legacy.tables.iter().map(|t| t.table.clone()).collect();
    let shutdown = Arc::new(AtomicBool::new(false));
    {
        let shutdown = shutdown.clone();
        let mut terminate = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        tokio::spawn(async move {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
            tracing::info!("stopping: finishing the current batch");
            shutdown.store(true, Ordering::SeqCst);
        });
    }
    let metrics = Arc::new(Metrics::default());
    let Some(mut engine) = connect_engine(config, mappings.clone(), &shutdown, metrics.clone()).await? else {
        return Ok(());
    };
    engine.open_archive(config.archive.as_ref(), "run").context("opening the archive directory ([archive] dir)")?;
    metrics.side("odoo", None);
    metrics.side("state", None);
    // Reconcile on a schedule and the page's reconcile actions: one task, on connections of its own.
    let (reconcile_jobs, jobs) = tokio::sync::mpsc::channel(8);
    crate::reconcile::service::spawn(
        config.clone(),
        mappings.clone(),
        legacy.clone(),
        config.reconcile_every,
        jobs,
        metrics.clone(),
        shutdown.clone(),
    );
    if let Some(http) = &config.http {
        let listener = tokio::net::TcpListener::bind(http.listen)
            .await
            .with_context(|| format!("cannot listen on {} ([http] listen)", http.listen))?;
        let address = listener.local_addr().context("reading the listening address")?;
        let context = Arc::new(crate::ops::http::HttpContext {
            metrics: metrics.clone(),
            state: config.state()?.clone(),
            odoo: odoo.conn.clone(),
            slot: odoo.slot.clone(),
            token: http.token.clone(),
            legacy_stale_after: (legacy.poll_interval * 10).max(Duration::from_secs(10)),
            reconcile: Some(reconcile_jobs.clone()),
        });
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let stopped = async move {
                while !stop.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            };
            if let Err(error) = crate::ops::http::serve(listener, context, stopped).await {
                tracing::error!(%error, "the HTTP endpoint stopped");
            }
        });
        tracing::info!(%address, token = http.token.is_some(), "HTTP endpoint listening (/metrics, /health, /ready, operator page at /)");
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
    let mut resume =
        match retrying!("control state", shutdown, metrics, Ok(engine.state.odoo_txn_progress(&odoo.slot).await?)) {
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
                        let done = retrying!("applying part of an Odoo transaction", shutdown, metrics, odoo_part(&mut engine, &part, &conns, &shutdown).await);
                        let Some(Some(applied)) = done else { break };
                        applied_since_retry |= applied > 0;
                        metrics.batch_took("odoo", started.elapsed());
                        metrics.odoo_txn_progress(Some(txn.seen));
                        if !settle(&mut engine, &mut held, &acked, false, &shutdown, &metrics).await {
                            break;
                        }
                        let saved = retrying!("saving the progress of a large Odoo transaction", shutdown, metrics,
                            Ok(engine.state.save_odoo_txn_progress(&odoo.slot, &part.commit_lsn.to_string(), part.txn_part).await?));
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
                    let done = retrying!("applying an Odoo transaction", shutdown, metrics, odoo_part(&mut engine, &part, &conns, &shutdown).await);
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
                let outcome = retrying!("applying a legacy poll", shutdown, metrics, legacy_batch(&mut engine, &items, &conns).await);
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
            _ = retry_tick.tick() => {
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

/// Source positions handled but not yet acknowledged: they wait for their changes to be
/// durable in the archive's spool.
#[derive(Default)]
struct HeldAcks {
    odoo: Option<u64>,
    legacy: Vec<oneshot::Sender<bool>>,
}

/// Makes the archive durable (the spool at once; Parquet files when due, or `force`), then
/// acknowledges what it holds. False when stopping mid-retry.
async fn settle(
    engine: &mut Engine,
    held: &mut HeldAcks,
    acked: &AtomicU64,
    force: bool,
    shutdown: &AtomicBool,
    metrics: &Metrics,
) -> bool {
    if let Some(archive) = engine.archive.as_mut() {
        let failed = |e: crate::archive::ArchiveError| {
            metrics.side("archive", Some(&e.to_string()));
            anyhow::Error::new(e)
        };
        if retrying!("writing the archive spool", shutdown, metrics, archive.sync().await.map_err(failed)).is_none() {
            return false;
        }
        if archive.buffered() > 0 && (force || archive.due()) {
            let started = std::time::Instant::now();
            let rows = archive.buffered();
            let flushed = retrying!("writing the archive", shutdown, metrics, archive.flush().await.map_err(failed));
            let Some(flushed) = flushed else { return false };
            metrics.archived(flushed.files.len() as u64, flushed.rows);
            tracing::info!(
                files = flushed.files.len(),
                rows,
                took_ms = started.elapsed().as_millis() as u64,
                "archive files written"
            );
        }
        metrics.side("archive", None);
    }
    if let Some(lsn) = held.odoo.take() {
        acked.fetch_max(lsn, Ordering::SeqCst);
    }
    for done in held.legacy.drain(..) {
        let _ = done.send(true);
    }
    true
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
async fn odoo_part(
    engine: &mut Engine,
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
    let result = odoo_batch(engine, &part.changes, &part.bad, part.commit_lsn, conns, shutdown).await;
    engine.batch = BatchMeta::default();
    result
}

/// Main rows read through and decided at a time: a change to a looked-up row (a renamed
/// product) can re-emit very many records, and they go through in slices of this many.
const READ_SLICE: usize = 5_000;

/// `None` when a shutdown was asked for between two slices (nothing of this batch is
/// acknowledged: it runs again, and what was done is then known).
async fn odoo_batch(
    engine: &mut Engine,
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
            applied += engine.process(System::Odoo, std::mem::take(&mut inputs), Some(position.clone())).await?.applied;
            engine.metrics.odoo_batch_progress(Some(done));
        }
    }
    if !inputs.is_empty() {
        applied += engine.process(System::Odoo, inputs, Some(position)).await?.applied;
    }
    engine.metrics.odoo_batch_progress(None);
    Ok(Some(applied))
}

async fn legacy_batch(engine: &mut Engine, items: &[LegacyItem], conns: &Conns) -> anyhow::Result<u64> {
    ensure_connected(engine, conns).await?;
    engine.legacy.refresh_lookups(&engine.mappings.clone()).await?;
    // Borrowed, not taken: a retry after an outage maps the same items again.
    let mut inputs = map::legacy_inputs(engine, items);
    let dependents = map::legacy_dependents(engine, items, &inputs).await?;
    inputs.extend(dependents);
    if inputs.is_empty() {
        return Ok(0);
    }
    let summary = engine.process(System::Legacy, inputs, None).await?;
    Ok(summary.applied)
}

/// Where the engine's PostgreSQL connections go, to reopen them after an outage.
#[derive(Clone)]
struct Conns {
    odoo: PgConnInfo,
    odoo_config: crate::config::OdooConfig,
    state: PgConnInfo,
    origin: String,
}

/// Reopens connections that an outage closed (or a terminated backend: a password rotation
/// ends the sessions of the old password). Each connection reads a password file again, so a
/// rotated password is used.
async fn ensure_connected(engine: &mut Engine, conns: &Conns) -> anyhow::Result<()> {
    if engine.state.client().is_closed() {
        engine.state = StateStore::connect(&conns.state).await?;
        engine.metrics.reconnect("state");
    }
    if engine.odoo_read.is_closed() {
        engine.odoo_read = crate::pg::connect(&conns.odoo).await?;
        engine.metrics.reconnect("odoo");
    }
    if engine.odoo.is_closed() {
        engine.odoo = OdooTarget::connect(&conns.odoo_config).await?;
        engine.integration_uid = engine.odoo.integration_uid();
        engine.metrics.reconnect("odoo");
    }
    Ok(())
}
