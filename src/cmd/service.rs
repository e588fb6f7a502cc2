//! What the long-running commands share (`run`, `capture`, `apply`): the source readers, the
//! engine's connections and their reconnection, retrying through outages, the archive's
//! settlement before acknowledging, stopping on a signal, the HTTP endpoint, and (`capture`,
//! `apply`) the bus's connection and the active/standby lease.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, oneshot};

use crate::bus::{lease, Bus};
use crate::config::PgConnInfo;
use crate::config::{BusConfig, Config, ConfigError, LegacyConfig};
use crate::mapping::Mappings;
use crate::ops::metrics::Metrics;
use crate::sink::erp_db::LegacyDb;
use crate::sink::OdooTarget;
use crate::source::legacy::poller::LegacyPoller;
use crate::source::legacy::{LegacyItem, PendingSave};
use crate::source::odoo::{OdooStream, StreamItem};
use crate::state::StateStore;
use crate::sync::{Engine, SyncError};

pub(crate) enum OdooMessage {
    Item(StreamItem),
    Failed(String),
}

/// Part of a legacy poll, handed over as it is read: a first poll of a large table never sits
/// in memory whole. The last part carries `done`, answered once every part is handled; only
/// then are the poll's watermarks saved.
pub(crate) struct LegacyPoll {
    pub(crate) items: Vec<LegacyItem>,
    pub(crate) done: Option<oneshot::Sender<bool>>,
}

/// Changes of a legacy poll handed over at a time.
pub(crate) const LEGACY_PART_ITEMS: usize = 5_000;

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
                    $crate::cmd::service::note_failure(&$metrics, &error);
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
pub(crate) use retrying;

/// Marks the side a failed batch could not reach as down (for /ready and `millrace_up`).
pub(crate) fn note_failure(metrics: &Metrics, error: &anyhow::Error) {
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
pub(crate) fn note_success(metrics: &Metrics) {
    for system in ["odoo", "legacy", "state"] {
        metrics.side(system, None);
    }
}

pub(crate) async fn connect_engine(
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

pub(crate) fn spawn_odoo_reader(mut stream: OdooStream, tx: mpsc::Sender<OdooMessage>) {
    tokio::spawn(async move {
        loop {
            // The engine loop gone (its end, or `capture` losing its lease): the slot is let go
            // now, not at the next change, so that whoever takes over can use it.
            let next = tokio::select! {
                next = stream.next() => next,
                _ = tx.closed() => break,
            };
            match next {
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
        if tokio::time::timeout(Duration::from_secs(5), stream.close()).await.is_err() {
            tracing::warn!("the replication connection did not close in 5 s; dropped");
        }
    });
}

/// Polls the legacy tables on a thread of its own: reading blocks there, not the engine, while
/// the engine works through what was handed over so far.
pub(crate) fn spawn_legacy_poller(
    legacy: LegacyConfig,
    state: PgConnInfo,
    tx: mpsc::Sender<LegacyPoll>,
    metrics: Arc<Metrics>,
) {
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

/// Source positions handled but not yet acknowledged: they wait for their changes to be
/// durable in the archive's spool.
#[derive(Default)]
pub(crate) struct HeldAcks {
    pub(crate) odoo: Option<u64>,
    pub(crate) legacy: Vec<oneshot::Sender<bool>>,
}

/// Makes the archive durable (the spool at once; Parquet files when due, or `force`), then
/// acknowledges what it holds. False when stopping mid-retry.
pub(crate) async fn settle(
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

/// Where the engine's PostgreSQL connections go, to reopen them after an outage.
#[derive(Clone)]
pub(crate) struct Conns {
    pub(crate) odoo: PgConnInfo,
    pub(crate) odoo_config: crate::config::OdooConfig,
    pub(crate) state: PgConnInfo,
    pub(crate) origin: String,
}

/// Reopens connections that an outage closed (or a terminated backend: a password rotation
/// ends the sessions of the old password). Each connection reads a password file again, so a
/// rotated password is used.
pub(crate) async fn ensure_connected(engine: &mut Engine, conns: &Conns) -> anyhow::Result<()> {
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

/// A flag set by SIGTERM or SIGINT: the command finishes what it is doing and stops.
pub(crate) fn stop_on_signal() -> anyhow::Result<Arc<AtomicBool>> {
    let shutdown = Arc::new(AtomicBool::new(false));
    let flag = shutdown.clone();
    let mut terminate = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    tokio::spawn(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        tracing::info!("stopping: finishing the current batch");
        flag.store(true, Ordering::SeqCst);
    });
    Ok(shutdown)
}

/// Serves `[http]` (metrics, health, readiness, the operator page) until `shutdown` is set;
/// nothing when `[http]` is not configured.
pub(crate) async fn spawn_http(
    config: &Config,
    metrics: Arc<Metrics>,
    reconcile: Option<crate::ops::actions::ReconcileJobs>,
    shutdown: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let Some(http) = &config.http else { return Ok(()) };
    let odoo = super::setup::odoo_with_mapped_tables(config)?;
    let legacy_poll = config.legacy().ok().map(|l| l.poll_interval).unwrap_or(Duration::from_secs(1));
    let listener = tokio::net::TcpListener::bind(http.listen)
        .await
        .with_context(|| format!("cannot listen on {} ([http] listen)", http.listen))?;
    let address = listener.local_addr().context("reading the listening address")?;
    let context = Arc::new(crate::ops::http::HttpContext {
        metrics,
        state: config.state()?.clone(),
        odoo: odoo.conn.clone(),
        slot: odoo.slot.clone(),
        token: http.token.clone(),
        legacy_stale_after: (legacy_poll * 10).max(Duration::from_secs(10)),
        reconcile,
    });
    tokio::spawn(async move {
        let stopped = async move {
            while !shutdown.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        };
        if let Err(error) = crate::ops::http::serve(listener, context, stopped).await {
            tracing::error!(%error, "the HTTP endpoint stopped");
        }
    });
    tracing::info!(%address, token = http.token.is_some(), "HTTP endpoint listening (/metrics, /health, /ready, operator page at /)");
    Ok(())
}

/// The `[bus]` section a bus role needs.
pub(crate) fn bus_config(config: &Config, role: &str) -> Result<BusConfig, ConfigError> {
    config.bus.clone().ok_or_else(|| ConfigError::Invalid {
        field: "bus",
        message: format!(
            "`millrace {role}` needs a [bus] section (kind = \"nats\", urls = [...]) or MILLRACE_BUS_URLS"
        ),
    })
}

/// Connects to the bus, retrying until it answers; `None` when stopped meanwhile.
pub(crate) async fn connect_bus(config: &BusConfig, role: &str, stop: &AtomicBool, metrics: &Metrics) -> Option<Bus> {
    let mut delay = Duration::from_millis(250);
    loop {
        if stop.load(Ordering::SeqCst) {
            return None;
        }
        match Bus::connect(config, &format!("millrace {role} {}", config.pipeline)).await {
            Ok(bus) => {
                metrics.side("bus", None);
                return Some(bus);
            }
            Err(error) => {
                metrics.side("bus", Some(&error.to_string()));
                tracing::warn!(%error, retry_in_ms = delay.as_millis() as u64, "cannot reach the bus; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Runs `work` each time this process holds the lease of `role`, until `stop`: a lost lease
/// ends the work (its flag is set) and this process waits as a standby again.
pub(crate) async fn with_lease<F, Fut>(
    bus_config: &BusConfig,
    role: &str,
    stop: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
    mut work: F,
) -> anyhow::Result<()>
where
    F: FnMut(Bus, Arc<AtomicBool>) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let key = role.to_string();
    loop {
        metrics.bus_role(role, false);
        let Some(bus) = connect_bus(bus_config, role, &stop, &metrics).await else { return Ok(()) };
        let acquired = lease::acquire(&bus, &key, &stop, |_| {}).await;
        let lease = match acquired {
            Ok(Some(lease)) => lease,
            Ok(None) => return Ok(()),
            Err(error) => {
                metrics.side("bus", Some(&error.to_string()));
                tracing::warn!(%error, "cannot take part in the lease; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        metrics.bus_role(role, true);
        // The work stops on a signal or when the lease is lost, whichever comes first.
        let term = Arc::new(AtomicBool::new(false));
        let watcher = {
            let (term, stop, lost) = (term.clone(), stop.clone(), lease.lost_flag());
            tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) && !lost.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                term.store(true, Ordering::SeqCst);
            })
        };
        let result = work(bus.clone(), term).await;
        watcher.abort();
        metrics.bus_role(role, false);
        if lease.is_lost() {
            tracing::warn!(role, "the lease was lost: this process is a standby again");
            continue;
        }
        lease::release(&bus, &key, lease).await;
        return result;
    }
}
