//! `millrace capture`: reads both sources as `run` does, maps each row change to its canonical
//! change, and publishes it to the bus (`[bus]`) instead of applying it. A source position is
//! acknowledged (the slot's flush position, a poll's watermarks) only once JetStream has
//! acknowledged every message before it: capture holds nothing a crash would lose, and Odoo's
//! WAL is released as soon as the bus holds the changes, whether `apply` runs or not.
//!
//! Two capture processes of one pipeline may run; the one holding the lease
//! `<pipeline>.capture` works, the other waits to take over.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;

use super::run::{serve, Deliver};
use super::service::{retrying, spawn_http, stop_on_signal};
use crate::bus::{lease, message, Bus};
use crate::config::{BusConfig, Config, ConfigError};
use crate::mapping::System;
use crate::ops::metrics::Metrics;
use crate::sync::{Engine, Input, SyncError};

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

pub async fn run(config: &Config) -> anyhow::Result<()> {
    let bus_config = bus_config(config, "capture")?;
    let stop = stop_on_signal()?;
    let metrics = Arc::new(Metrics::default());
    spawn_http(config, metrics.clone(), None, stop.clone()).await?;
    tokio::task::LocalSet::new()
        .run_until(with_lease(&bus_config, "capture", stop, metrics.clone(), |bus, term| {
            let metrics = metrics.clone();
            async move {
                // The stream exists before anything is published to it.
                if retrying!("the bus's stream", term, metrics, bus.stream().await.map_err(anyhow::Error::from))
                    .is_none()
                {
                    return Ok(());
                }
                let mut publisher = Publisher { bus, metrics: metrics.clone(), batches: AtomicU64::new(0) };
                serve(config, &mut publisher, term, metrics, "capture").await
            }
        }))
        .await
}

/// `capture`'s delivery: every input of a batch published, then every acknowledgement awaited.
struct Publisher {
    bus: Bus,
    metrics: Arc<Metrics>,
    /// Numbers the legacy batches of this process (an Odoo batch is named by its position).
    batches: AtomicU64,
}

impl Deliver for Publisher {
    const APPLIES: bool = false;

    async fn deliver(
        &mut self,
        engine: &mut Engine,
        system: System,
        inputs: Vec<Input>,
        position: Option<String>,
        end: bool,
    ) -> anyhow::Result<u64> {
        let meta = engine.batch.clone();
        let batch = match (system, &position) {
            (System::Odoo, Some(lsn)) => format!("odoo:{lsn}+{}", meta.txn_part.unwrap_or(0)),
            _ => format!(
                "legacy:{}:{}:{}",
                lease::holder_name(),
                chrono::Utc::now().timestamp_millis(),
                self.batches.fetch_add(1, Ordering::SeqCst)
            ),
        };
        let started = std::time::Instant::now();
        let unavailable = |message: String| SyncError::Unavailable { system: "bus", message };
        let bus = &self.bus;
        let mut acks = Vec::with_capacity(inputs.len());
        let last = inputs.len().saturating_sub(1);
        for (n, input) in inputs.iter().enumerate() {
            let out = message::encode(
                &engine.mappings,
                |system, entity| bus.config.subject(system, entity),
                input,
                &meta,
                &batch,
                end && n == last,
            );
            let mut headers = HeaderMap::new();
            headers.insert(async_nats::header::NATS_MESSAGE_ID, out.msg_id.as_str());
            let ack = bus
                .js
                .publish_with_headers(out.subject, headers, out.payload.into())
                .await
                .map_err(|e| unavailable(format!("publishing: {e}")))?;
            acks.push(ack);
        }
        let sent_ms = started.elapsed().as_millis() as u64;
        let mut published = 0;
        for ack in acks {
            let ack = ack.await.map_err(|e| unavailable(format!("waiting for JetStream's acknowledgement: {e}")))?;
            if !ack.duplicate {
                published += 1;
            }
        }
        tracing::debug!(messages = inputs.len(), %batch, end, sent_ms, acked_ms = started.elapsed().as_millis() as u64, "published");
        self.metrics.side("bus", None);
        self.metrics.bus_published(system.as_str(), inputs.len() as u64, inputs.len() as u64 - published);
        Ok(inputs.len() as u64)
    }
}
