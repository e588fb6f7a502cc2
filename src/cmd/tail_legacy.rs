//! `millrace tail --source legacy`: poll the legacy tables and print what changed.
//!
//! Watermarks and fingerprints are saved only with `--ack`, and only after the poll's lines have
//! been written out: without it the next run sees the same changes again.

use std::io::{self, BufWriter, Write};

use anyhow::Context;
use chrono::Utc;
use tokio::signal::unix::{signal, SignalKind};

use super::envelope::EnvelopeWriter;
use super::tail::{TailOptions, TailSummary};
use crate::config::LegacyConfig;
use crate::config::PgConnInfo;
use crate::source::legacy::poller::LegacyPoller;
use crate::source::legacy::LegacyItem;

pub async fn run(legacy: &LegacyConfig, state: &PgConnInfo, options: TailOptions) -> anyhow::Result<TailSummary> {
    let mut poller = LegacyPoller::open(legacy, state).await.context("opening the control state")?;
    let mut terminate = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut out = BufWriter::with_capacity(256 * 1024, io::stdout());
    let mut envelope = EnvelopeWriter::new();
    let mut summary = TailSummary::default();
    tracing::info!(
        tables = legacy.tables.len(),
        until_caught_up = options.until_caught_up,
        ack = options.ack,
        "polling the legacy database"
    );
    loop {
        let mut emit = |item: LegacyItem| -> io::Result<()> {
            match item {
                LegacyItem::Change(change) => {
                    summary.changes += 1;
                    if options.json {
                        envelope.write(&mut out, &change, Utc::now())
                    } else {
                        writeln!(out, "{} {} {}", change.position, change.op.letter(), change.table.name)
                    }
                }
                LegacyItem::Bad(bad) => {
                    summary.bad_rows += 1;
                    tracing::error!(table = %bad.table, key = %bad.key, column = %bad.column, value = %bad.value, reason = %bad.reason, "row could not be read; kept out of the stream");
                    Ok(())
                }
            }
        };
        let saves = tokio::select! {
            saves = poller.poll_once(&mut emit) => saves,
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        };
        let saves = match saves {
            Ok(saves) => saves,
            Err(crate::source::legacy::PollError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => break,
            Err(e) => return Err(e.into()),
        };
        summary.transactions += 1;
        match out.flush() {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => break,
            Err(e) => return Err(e).context("writing to stdout"),
        }
        if options.ack {
            poller.save(&saves).await.context("saving legacy watermarks")?;
        }
        if options.until_caught_up {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(legacy.poll_interval) => {}
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        }
    }
    let _ = out.flush();
    tracing::info!(
        changes = summary.changes,
        polls = summary.transactions,
        bad_rows = summary.bad_rows,
        "tail stopped"
    );
    Ok(summary)
}
