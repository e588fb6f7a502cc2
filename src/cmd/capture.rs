//! `millrace capture`: reads both sources as `run` does, maps each row change to its canonical
//! change, and publishes it to the bus (`[bus]`) instead of applying it. A source position is
//! acknowledged (the slot's flush position, a poll's watermarks) only once JetStream has
//! acknowledged every message before it: capture holds nothing a crash would lose, and Odoo's
//! WAL is released as soon as the bus holds the changes, whether `apply` runs or not.
//!
//! Two capture processes of one pipeline may run; the one holding the lease
//! `<pipeline>.capture` works, the other waits to take over.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;

use super::run::{serve, Deliver};
use super::service::{bus_config, retrying, spawn_http, stop_on_signal, with_lease};
use crate::bus::{lease, message, Bus};
use crate::config::Config;
use crate::mapping::System;
use crate::ops::metrics::Metrics;
use crate::sync::{Engine, Input, SyncError};

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
