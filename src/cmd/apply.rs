//! `millrace apply`: reads the canonical changes `capture` published (the pipeline's durable
//! pull consumer), decides and applies them as `run` does — parking, dead letters, the archive
//! and metrics included — and acknowledges a message only once the target writes, the control
//! state and the archive's spool hold its outcome. A message delivered again (after a crash,
//! a takeover, a lost acknowledgement) is decided against what is known and found already
//! applied (`stale`), never applied twice.
//!
//! Messages are decided in stream order, a source batch (an Odoo transaction, a poll part)
//! together; one acknowledgement covers every message before it (AckPolicy::All).
//!
//! Two apply processes of one pipeline may run; the one holding the lease `<pipeline>.apply`
//! works, the other waits to take over.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream;
use futures_util::StreamExt;

use super::service::{
    bus_config, connect_engine, ensure_connected, note_success, retrying, settle, spawn_http, stop_on_signal,
    with_lease, Conns, HeldAcks,
};
use crate::bus::message::{decode, Incoming};
use crate::bus::Bus;
use crate::config::Config;
use crate::mapping::{Mappings, System};
use crate::ops::metrics::Metrics;
use crate::sync::Engine;

/// Inputs decided at a time, at most: a large source batch is decided in slices, as `run`
/// decides the read-through of a large Odoo transaction.
const SLICE: usize = 5_000;

pub async fn run(config: &Config) -> anyhow::Result<()> {
    let bus_config = bus_config(config, "apply")?;
    let stop = stop_on_signal()?;
    let metrics = Arc::new(Metrics::default());
    spawn_http(config, metrics.clone(), None, stop.clone()).await?;
    tokio::task::LocalSet::new()
        .run_until(with_lease(&bus_config, "apply", stop, metrics.clone(), |bus, term| {
            let metrics = metrics.clone();
            async move { consume(config, bus, term, metrics).await }
        }))
        .await
}

/// Consumes until `term` (a signal, or the lease lost).
async fn consume(config: &Config, bus: Bus, term: Arc<AtomicBool>, metrics: Arc<Metrics>) -> anyhow::Result<()> {
    let mappings = Arc::new(
        Mappings::load_dir(&config.sync.mappings)
            .with_context(|| format!("loading mappings from {}", config.sync.mappings.display()))?,
    );
    let Some(mut engine) = connect_engine(config, mappings.clone(), &term, metrics.clone()).await? else {
        return Ok(());
    };
    engine.open_archive(config.archive.as_ref(), "apply").context("opening the archive directory ([archive] dir)")?;
    let odoo = super::setup::odoo_with_mapped_tables(config)?;
    let conns = Conns {
        odoo: odoo.conn.clone(),
        odoo_config: odoo.clone(),
        state: config.state()?.clone(),
        origin: config.origin(),
    };
    // Taking the role: what a previous holder left unacknowledged comes first.
    let Some(consumer) = retrying!(
        "the bus's apply consumer",
        term,
        metrics,
        bus.apply_consumer(true).await.map_err(anyhow::Error::from)
    ) else {
        return Ok(());
    };
    let consumer_name = bus.config.apply_consumer();
    tracing::info!(consumer = %consumer_name, stream = %bus.config.stream, "applying from the bus");
    let mut pending: Vec<(jetstream::Message, Incoming)> = Vec::new();
    let mut retry_at = Instant::now() + config.sync.retry_interval;
    let mut pending_at = Instant::now();
    let mut held = HeldAcks::default();
    let acked = AtomicU64::new(0);
    while !term.load(Ordering::SeqCst) {
        let fetch_started = Instant::now();
        let fetched = fetch(&consumer, &mappings, bus.config.fetch, &mut pending, &metrics).await;
        if fetched.is_some_and(|n| n > 0) {
            tracing::debug!(
                fetched,
                pending = pending.len(),
                took_ms = fetch_started.elapsed().as_millis() as u64,
                "fetched"
            );
        }
        let idle = fetched == Some(0);
        let ready = ready_len(&pending, idle);
        // A lease lost while fetching: the next holder decides these (they are not acknowledged).
        if ready > 0 && !term.load(Ordering::SeqCst) {
            let batch: Vec<(jetstream::Message, Incoming)> = pending.drain(..ready).collect();
            if !decide(&mut engine, &batch, &conns, &term, &metrics).await {
                // Stopped mid-retry: nothing of it acknowledged, it is delivered again.
                break;
            }
            if !settle(&mut engine, &mut held, &acked, false, &term, &metrics).await {
                break;
            }
            // One acknowledgement covers the batch and everything before it.
            if let Some((last, _)) = batch.last() {
                let done = retrying!(
                    "acknowledging to the bus",
                    term,
                    metrics,
                    last.double_ack().await.map_err(|e| anyhow::anyhow!("{e}"))
                );
                if done.is_none() {
                    break;
                }
            }
            metrics.bus_consumed(batch.len() as u64);
            note_success(&metrics);
            metrics.side("bus", None);
        }
        if pending_at.elapsed() >= Duration::from_secs(5) {
            pending_at = Instant::now();
            let mut consumer = consumer.clone();
            if let Ok(info) = consumer.info().await {
                metrics.bus_pending(&consumer_name, info.num_pending + info.num_ack_pending as u64);
            }
        }
        if Instant::now() >= retry_at {
            retry_at = Instant::now() + config.sync.retry_interval;
            // Parked changes wait for their dependency; dead letters for a fix.
            retrying!(
                "retrying parked changes",
                term,
                metrics,
                async {
                    ensure_connected(&mut engine, &conns).await?;
                    Ok(engine.retry_parked().await?)
                }
                .await
            );
            retrying!(
                "retrying dead letters",
                term,
                metrics,
                async {
                    ensure_connected(&mut engine, &conns).await?;
                    Ok(engine.retry_dead_letters().await?)
                }
                .await
            );
        }
    }
    // What was decided is archived before stopping; unacknowledged messages come again.
    term.store(false, Ordering::SeqCst);
    let flush = settle(&mut engine, &mut held, &acked, true, &term, &metrics);
    if tokio::time::timeout(Duration::from_secs(10), flush).await.is_err() {
        tracing::warn!("the archive could not be written while stopping; the messages are delivered again");
    }
    tracing::info!("apply stopped");
    Ok(())
}

/// Fetches what the bus has (waiting half a second at most) onto `pending`; the count fetched,
/// `None` when the bus could not be reached.
async fn fetch(
    consumer: &jetstream::consumer::PullConsumer,
    mappings: &Mappings,
    max: usize,
    pending: &mut Vec<(jetstream::Message, Incoming)>,
    metrics: &Metrics,
) -> Option<usize> {
    let batch = consumer.fetch().max_messages(max).expires(Duration::from_millis(500)).messages().await;
    let mut batch = match batch {
        Ok(batch) => batch,
        Err(error) => {
            metrics.side("bus", Some(&format!("fetching from the bus: {error}")));
            tokio::time::sleep(Duration::from_millis(500)).await;
            return None;
        }
    };
    let mut n = 0;
    while let Some(message) = batch.next().await {
        let message = match message {
            Ok(m) => m,
            Err(error) => {
                tracing::debug!(%error, "fetch ended early");
                break;
            }
        };
        let sequence = message.info().map(|i| i.stream_sequence).unwrap_or(0);
        let incoming = decode(mappings, message.subject.as_str(), sequence, &message.payload);
        pending.push((message, incoming));
        n += 1;
    }
    Some(n)
}

/// How many of `pending` can be decided now: every whole source batch (its end seen, or a
/// later batch begun); the unfinished last one too when the bus has nothing more for now
/// (`idle`) or it is large, as `run` decides a large transaction in slices.
fn ready_len(pending: &[(jetstream::Message, Incoming)], idle: bool) -> usize {
    let Some((_, last)) = pending.last() else { return 0 };
    if last.batch_end || idle || pending.len() >= SLICE {
        return pending.len();
    }
    // Up to the start of the last (unfinished) batch.
    pending.iter().rposition(|(_, i)| i.batch != last.batch).map(|p| p + 1).unwrap_or(0)
}

/// Decides and applies `batch` in its order, one engine batch per source batch (and slice);
/// false when stopped while retrying an outage.
async fn decide(
    engine: &mut Engine,
    batch: &[(jetstream::Message, Incoming)],
    conns: &Conns,
    term: &AtomicBool,
    metrics: &Metrics,
) -> bool {
    let mut start = 0;
    while start < batch.len() {
        if term.load(Ordering::SeqCst) {
            // Stopping, or the lease lost: what is left goes to the next holder, unacknowledged.
            return false;
        }
        let first = &batch[start].1;
        let len = batch[start..]
            .iter()
            .take(SLICE)
            .take_while(|(_, i)| i.batch == first.batch && i.system == first.system)
            .count();
        let group = &batch[start..start + len];
        let system = first.system;
        let started = Instant::now();
        let done = retrying!(
            "applying changes from the bus",
            term,
            metrics,
            async {
                ensure_connected(engine, conns).await?;
                engine.batch = first.meta.clone();
                let inputs = group.iter().map(|(_, i)| i.input.clone()).collect();
                let position = (system == System::Odoo).then(|| first.position.clone());
                let result = engine.process(system, inputs, position).await;
                engine.batch = Default::default();
                Ok(result?)
            }
            .await
        );
        if done.is_none() {
            return false;
        }
        metrics.read(system.as_str(), len as u64);
        metrics.batch_took(system.as_str(), started.elapsed());
        tracing::debug!(
            messages = len,
            batch = %first.batch,
            took_ms = started.elapsed().as_millis() as u64,
            "decided from the bus"
        );
        start += len;
    }
    true
}
