//! `millrace tail`: print committed row changes as they stream, without applying them.
//!
//! The slot advances only with `--ack`, and then only past transactions whose lines have been
//! written out, so a `tail --ack` that is killed prints those transactions again next time rather
//! than losing them.
//!
//! Nothing is skipped: every value goes out exactly (a value without a closer type as its
//! PostgreSQL text), and a row that cannot be written at all (text that is not UTF-8) stops the
//! command with an error naming the table, column and value, before its transaction is
//! acknowledged. A key change goes out as a delete of the old key and a create of the new row.

use std::io::{self, BufWriter, Write};

use anyhow::Context;
use chrono::Utc;
use tokio::signal::unix::{signal, SignalKind};

use super::envelope;
use crate::config::OdooConfig;
use crate::source::odoo::{OdooStream, OdooStreamConfig, StreamItem};

#[derive(Debug, Clone, Copy, Default)]
pub struct TailOptions {
    /// One JSON object per line (the Debezium envelope); otherwise a short human-readable line.
    pub json: bool,
    /// Advance the slot past what has been printed.
    pub ack: bool,
    /// Stop once everything committed before the start has been printed.
    pub until_caught_up: bool,
}

/// What a tail run did, for its closing log line.
#[derive(Debug, Default, Clone, Copy)]
pub struct TailSummary {
    pub changes: u64,
    pub transactions: u64,
    pub bad_rows: u64,
}

pub async fn run(odoo: &OdooConfig, options: TailOptions) -> anyhow::Result<TailSummary> {
    let mut stream_config = OdooStreamConfig::new(odoo.conn.clone(), &odoo.slot, &odoo.publication);
    stream_config.streaming = odoo.streaming;
    // The Debezium forms: a key change as delete + create, an old-key image without the columns
    // PostgreSQL did not send.
    stream_config.split_key_changes = true;
    stream_config.unsent_as_unchanged = true;
    let mut stream = match OdooStream::open(stream_config).await {
        Ok(stream) => stream,
        Err(error) => {
            let hint = if error.is_missing_slot() { " (run `millrace setup` first)" } else { "" };
            return Err(anyhow::Error::new(error).context(format!("cannot stream from slot {}{hint}", odoo.slot)));
        }
    };
    tracing::info!(target_lsn = %stream.caught_up_target(), until_caught_up = options.until_caught_up, ack = options.ack, "tailing");

    let mut terminate = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(256 * 1024, stdout.lock());
    let mut summary = TailSummary::default();
    let mut envelope_writer = envelope::EnvelopeWriter::new();
    let mut failure = None;

    loop {
        let item = tokio::select! {
            item = stream.next() => item?,
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        };
        let written = match item {
            StreamItem::Change(change) => {
                summary.changes += 1;
                if options.json {
                    envelope_writer.write(&mut out, &change, Utc::now())
                } else {
                    write_text_line(&mut out, &change)
                }
            }
            StreamItem::BadRow(bad) => {
                // Never skipped: the command stops, and what was printed of the transaction stays
                // unacknowledged, so the next run starts over at that transaction.
                summary.bad_rows += 1;
                tracing::error!(table = %bad.table, lsn = %bad.lsn, xid = ?bad.xid, reason = %bad.reason, "row cannot be emitted; stopping before acknowledging its transaction");
                failure = Some(anyhow::anyhow!(
                    "cannot emit a change of {} in the transaction committed at {} (xid {}): {}; \
                     the slot was not advanced past it",
                    bad.table,
                    bad.lsn,
                    bad.xid.map_or_else(|| "unknown".to_string(), |x| x.to_string()),
                    bad.reason
                ));
                break;
            }
            StreamItem::Commit { end_lsn, .. } => {
                summary.transactions += 1;
                // Acknowledge only what has reached stdout.
                let flushed = out.flush();
                if flushed.is_ok() && options.ack {
                    stream.ack(end_lsn);
                }
                flushed
            }
            StreamItem::CaughtUp => {
                if options.until_caught_up {
                    break;
                }
                Ok(())
            }
        };
        match written {
            Ok(()) => {}
            // The reader went away (`| head`): stop quietly, acknowledging nothing more.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => break,
            Err(e) => return Err(e).context("writing to stdout"),
        }
    }
    match out.flush() {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        Err(e) => return Err(e).context("writing to stdout"),
    }
    // Reports the acknowledged position (never past a row that was not printed) and disconnects.
    let closed = stream.close().await;
    if let Some(failure) = failure {
        return Err(failure);
    }
    closed?;
    tracing::info!(
        changes = summary.changes,
        transactions = summary.transactions,
        bad_rows = summary.bad_rows,
        "tail stopped"
    );
    Ok(summary)
}

fn write_text_line(out: &mut impl Write, change: &crate::model::RowChange) -> io::Result<()> {
    write!(out, "{} {} {} ", change.position, change.op.letter(), change.table)?;
    let row = change.after.as_ref().or(change.before.as_ref());
    if let Some(row) = row {
        let mut first = true;
        for (column, value) in row.iter() {
            if value.is_null() || matches!(value, crate::model::Value::Unchanged) {
                continue;
            }
            if !first {
                out.write_all(b" ")?;
            }
            first = false;
            write!(out, "{column}=")?;
            envelope::write_value(out, value)?;
        }
    }
    out.write_all(b"\n")
}
