//! `millrace status`: lag, positions, decisions, parked changes, dead letters and the latest
//! operator actions.
//!
//! Everything comes from the control state (`[state] url`) and, for the replication slot's lag,
//! from Odoo's database. Odoo being unreachable is reported, not fatal: the control state may
//! live elsewhere and still says where each source stands.

use std::io::Write;

use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value as Json};
use tokio_postgres::Client;

use super::CommandError;
use crate::config::{Config, OdooConfig};
use crate::state::audit::{self, AuditEntry};
use crate::state::report::{self, BackfillProgress, DecisionCount, LegacyCheckpointRow, RecentConflict, SourceStatus};

/// How many of the latest operator actions `status` shows.
const ACTIONS_SHOWN: i64 = 5;
use crate::state::StateStore;

/// The replication slot as Odoo's server reports it.
#[derive(Debug, Default)]
struct SlotStatus {
    name: String,
    exists: bool,
    active: bool,
    /// Bytes of WAL written since the slot's confirmed flush position.
    lag_bytes: Option<i64>,
    confirmed_flush_lsn: Option<String>,
    current_wal_lsn: Option<String>,
    wal_status: Option<String>,
    /// Why the slot could not be read (Odoo unreachable, …).
    error: Option<String>,
}

#[derive(Debug)]
struct Status {
    slot: Option<SlotStatus>,
    sources: Vec<SourceStatus>,
    checkpoints: Vec<LegacyCheckpointRow>,
    decisions: Vec<DecisionCount<DateTime<Utc>>>,
    parked: i64,
    oldest_parked: Option<DateTime<Utc>>,
    dead_letters_open: i64,
    dead_letters_retry: i64,
    conflicts: Vec<RecentConflict<DateTime<Utc>>>,
    backfills: Vec<BackfillProgress>,
    /// The latest operator actions (`millrace.audit`), newest first.
    actions: Vec<AuditEntry<DateTime<Utc>>>,
    /// `[archive]`: its directory and what it holds, or why it cannot be read.
    archive: Option<(String, Result<crate::archive::DirSummary, String>)>,
}

pub async fn run(config: &Config, json: bool) -> Result<(), CommandError> {
    let state = config.state()?;
    let store = StateStore::connect(state).await.with_context(|| format!("opening the control state at {state}"))?;
    let slot = match config.odoo() {
        Ok(odoo) => Some(slot_status(odoo).await),
        Err(_) => None,
    };
    let mut status = read_state(store.client(), slot).await?;
    status.archive = config
        .archive
        .as_ref()
        .map(|a| (a.dir.display().to_string(), crate::archive::summarize(&a.dir).map_err(|e| e.to_string())));
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", to_json(&status)).context("writing the status")?;
    } else {
        write_text(&mut out, &status).context("writing the status")?;
    }
    Ok(())
}

async fn slot_status(odoo: &OdooConfig) -> SlotStatus {
    let mut status = SlotStatus { name: odoo.slot.clone(), ..SlotStatus::default() };
    let client = match crate::pg::connect(&odoo.conn).await {
        Ok(client) => client,
        Err(error) => {
            status.error = Some(error.to_string());
            return status;
        }
    };
    // pg_current_wal_lsn() fails on a standby, where the slot's own columns are still worth
    // showing; wal_status (PostgreSQL 13+) is read through to_jsonb so that 12 answers too.
    let row = client
        .query_opt(
            "SELECT active, confirmed_flush_lsn::text, to_jsonb(s) ->> 'wal_status',
                    CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END,
                    CASE WHEN pg_is_in_recovery() THEN NULL
                         ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint END
               FROM pg_replication_slots s WHERE slot_name = $1",
            &[&odoo.slot],
        )
        .await;
    match row {
        Ok(Some(r)) => {
            status.exists = true;
            status.active = r.get(0);
            status.confirmed_flush_lsn = r.get(1);
            status.wal_status = r.get(2);
            status.current_wal_lsn = r.get(3);
            status.lag_bytes = r.get(4);
        }
        Ok(None) => {}
        Err(error) => status.error = Some(format!("reading pg_replication_slots: {error}")),
    }
    status
}

async fn read_state(client: &Client, slot: Option<SlotStatus>) -> anyhow::Result<Status> {
    let sources = report::source_statuses(client).await?;
    let checkpoints = report::legacy_checkpoints(client).await?;
    let decisions = report::decision_counts(client).await?;
    let parked = report::parked_summary(client).await?;
    let dead_letters = report::dead_letter_counts(client).await?;
    let conflicts = report::recent_conflicts(client, 10).await?;
    let backfills = report::backfill_progress(client).await?;
    let actions = audit::recent_actions(client, ACTIONS_SHOWN).await?;
    Ok(Status {
        slot,
        sources,
        checkpoints,
        decisions,
        parked: parked.count,
        oldest_parked: parked.oldest,
        dead_letters_open: dead_letters.open,
        dead_letters_retry: dead_letters.retry,
        conflicts,
        backfills,
        actions,
        archive: None,
    })
}

fn ts(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn ts_opt(t: &Option<DateTime<Utc>>) -> Json {
    t.as_ref().map(|t| Json::String(ts(t))).unwrap_or(Json::Null)
}

fn to_json(s: &Status) -> Json {
    let slot = s.slot.as_ref().map(|slot| {
        json!({
            "name": slot.name,
            "exists": slot.exists,
            "active": slot.active,
            "lag_bytes": slot.lag_bytes,
            "confirmed_flush_lsn": slot.confirmed_flush_lsn,
            "current_wal_lsn": slot.current_wal_lsn,
            "wal_status": slot.wal_status,
            "error": slot.error,
        })
    });
    let archive = s.archive.as_ref().map(|(dir, summary)| match summary {
        Ok(a) => json!({
            "dir": dir,
            "files": a.files,
            "bytes": a.bytes,
            "newest_file": a.newest.as_ref().map(|(p, _)| p.display().to_string()),
            "newest_at": a.newest.as_ref().map(|(_, t)| ts(t)),
            "spooled": a.spooled,
        }),
        Err(error) => json!({ "dir": dir, "error": error }),
    });
    json!({
        "odoo_slot": slot,
        "archive": archive,
        "backfill": s.backfills.iter().map(|b| json!({
            "entity": b.entity,
            "source": b.source,
            "rows": b.rows,
            "finished_at": ts_opt(&b.finished_at),
            "updated_at": ts(&b.updated_at),
        })).collect::<Vec<_>>(),
        "sources": s.sources.iter().map(|r| json!({
            "source": r.source,
            "position": r.position,
            "last_batch": ts_opt(&r.last_batch),
            "last_error": r.last_error,
            "error_at": ts_opt(&r.error_at),
        })).collect::<Vec<_>>(),
        "legacy_checkpoints": s.checkpoints.iter().map(|r| json!({
            "table": r.table,
            "strategy": r.strategy,
            "watermark": r.watermark,
            "last_delete_scan": ts_opt(&r.last_delete_scan),
            "updated_at": ts(&r.updated_at),
        })).collect::<Vec<_>>(),
        "decisions": s.decisions.iter().map(|r| json!({
            "entity": r.entity,
            "source": r.source,
            "decision": r.decision,
            "count": r.n,
            "last_at": ts(&r.last_at),
        })).collect::<Vec<_>>(),
        "parked": { "count": s.parked, "oldest": ts_opt(&s.oldest_parked) },
        "dead_letters": { "open": s.dead_letters_open, "retry": s.dead_letters_retry },
        "recent_conflicts": s.conflicts.iter().map(|c| json!({
            "id": c.id,
            "entity": c.entity,
            "key": c.key,
            "source": c.source,
            "fields": c.fields,
            "policy": c.policy,
            "position": c.position,
            "at": ts(&c.at),
        })).collect::<Vec<_>>(),
        "operator_actions": s.actions.iter().map(|a| json!({
            "id": a.id,
            "at": ts(&a.at),
            "action": a.action,
            "via": a.via,
            "client": a.client,
            "token": a.token,
            "dead_letters": a.dead_letters,
            "touched": a.touched.iter().map(|t| json!({
                "dead_letter": t.dead_letter, "entity": t.entity, "key": t.key, "source": t.source,
            })).collect::<Vec<_>>(),
            "outcome": a.outcome,
            "detail": a.detail,
            "archived": a.archived,
        })).collect::<Vec<_>>(),
    })
}

/// The dead letters an action touched, short: `42`, `42 43 44`, `42 43 44 … (12)`.
fn letter_list(ids: &[i64]) -> String {
    if ids.is_empty() {
        return "-".into();
    }
    let shown: Vec<String> = ids.iter().take(3).map(i64::to_string).collect();
    if ids.len() > 3 {
        format!("{} … ({})", shown.join(" "), ids.len())
    } else {
        shown.join(" ")
    }
}

/// Bytes for people: `1.5 MiB`.
fn bytes(n: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value.abs() >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn or_dash(text: &Option<String>) -> String {
    text.as_deref().map(one_line).unwrap_or_else(|| "-".into())
}

fn one_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

fn ts_text(t: &Option<DateTime<Utc>>) -> String {
    t.as_ref().map(ts).unwrap_or_else(|| "-".into())
}

/// Rows of cells padded into columns, each line indented by two spaces.
fn table(out: &mut impl Write, rows: &[Vec<String>]) -> std::io::Result<()> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; columns];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    for row in rows {
        let mut line = String::from(" ");
        for (i, cell) in row.iter().enumerate() {
            line.push(' ');
            line.push_str(cell);
            if i + 1 < row.len() {
                line.push_str(&" ".repeat(widths[i] - cell.chars().count() + 1));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

fn write_text(out: &mut impl Write, s: &Status) -> std::io::Result<()> {
    match &s.slot {
        None => writeln!(out, "odoo slot: not configured ([odoo] url)")?,
        Some(slot) => match (&slot.error, slot.exists) {
            (Some(error), _) => writeln!(out, "odoo slot {}: unavailable: {}", slot.name, one_line(error))?,
            (None, false) => writeln!(out, "odoo slot {}: does not exist (run `millrace setup`)", slot.name)?,
            (None, true) => writeln!(
                out,
                "odoo slot {}: {}, lag {} (confirmed flush {}, current WAL {}{})",
                slot.name,
                if slot.active { "active" } else { "inactive" },
                slot.lag_bytes.map(bytes).unwrap_or_else(|| "unknown".into()),
                or_dash(&slot.confirmed_flush_lsn),
                or_dash(&slot.current_wal_lsn),
                slot.wal_status.as_deref().map(|w| format!(", WAL {w}")).unwrap_or_default(),
            )?,
        },
    }

    writeln!(out, "\nsources:")?;
    if s.sources.is_empty() {
        writeln!(out, "  none yet (`millrace run` records each batch)")?;
    } else {
        let mut rows = vec![["SOURCE", "POSITION", "LAST BATCH", "LAST ERROR"].map(String::from).to_vec()];
        for r in &s.sources {
            let error = match (&r.last_error, &r.error_at) {
                (Some(e), Some(at)) => format!("{} ({})", one_line(e), ts(at)),
                (Some(e), None) => one_line(e),
                _ => "-".into(),
            };
            rows.push(vec![r.source.clone(), or_dash(&r.position), ts_text(&r.last_batch), error]);
        }
        table(out, &rows)?;
    }

    writeln!(out, "\nlegacy checkpoints:")?;
    if s.checkpoints.is_empty() {
        writeln!(out, "  none yet")?;
    } else {
        let mut rows =
            vec![["TABLE", "STRATEGY", "WATERMARK", "LAST DELETE SCAN", "UPDATED"].map(String::from).to_vec()];
        for r in &s.checkpoints {
            rows.push(vec![
                r.table.clone(),
                r.strategy.clone(),
                or_dash(&r.watermark),
                ts_text(&r.last_delete_scan),
                ts(&r.updated_at),
            ]);
        }
        table(out, &rows)?;
    }

    writeln!(out, "\ndecisions:")?;
    if s.decisions.is_empty() {
        writeln!(out, "  none yet")?;
    } else {
        let mut rows = vec![["ENTITY", "SOURCE", "DECISION", "COUNT", "LAST"].map(String::from).to_vec()];
        for r in &s.decisions {
            rows.push(vec![r.entity.clone(), r.source.clone(), r.decision.clone(), r.n.to_string(), ts(&r.last_at)]);
        }
        table(out, &rows)?;
    }

    let oldest = s.oldest_parked.as_ref().map(|t| format!(" (oldest parked at {})", ts(t))).unwrap_or_default();
    writeln!(out, "\nparked: {}{oldest}", s.parked)?;
    writeln!(
        out,
        "dead letters: {} open, {} marked for retry{}",
        s.dead_letters_open,
        s.dead_letters_retry,
        if s.dead_letters_open + s.dead_letters_retry > 0 { " (`millrace dlq list`)" } else { "" }
    )?;

    if !s.backfills.is_empty() {
        writeln!(out, "\nbackfill:")?;
        let mut rows = vec![vec!["entity".into(), "from".into(), "rows".into(), "state".into()]];
        for b in &s.backfills {
            let state = match &b.finished_at {
                Some(t) => format!("done {}", ts(t)),
                None => {
                    format!("interrupted or running (last chunk {}); `millrace backfill` resumes", ts(&b.updated_at))
                }
            };
            rows.push(vec![b.entity.clone(), b.source.clone(), b.rows.to_string(), state]);
        }
        table(out, &rows)?;
    }
    match &s.archive {
        None => {}
        Some((dir, Err(error))) => writeln!(out, "\narchive {dir}: cannot be read: {}", one_line(error))?,
        Some((dir, Ok(a))) => {
            let newest =
                a.newest.as_ref().map(|(p, t)| format!(", newest {} at {}", p.display(), ts(t))).unwrap_or_default();
            writeln!(
                out,
                "\narchive {dir}: {} files ({}){newest}; {} changes spooled, waiting for their file",
                a.files,
                bytes(a.bytes as i64),
                a.spooled
            )?;
        }
    }

    writeln!(out, "\nrecent conflicts:")?;
    if s.conflicts.is_empty() {
        writeln!(out, "  none")?;
    } else {
        let mut rows = vec![["ID", "AT", "ENTITY", "KEY", "SOURCE", "POLICY", "FIELDS"].map(String::from).to_vec()];
        for c in &s.conflicts {
            rows.push(vec![
                c.id.to_string(),
                ts(&c.at),
                c.entity.clone(),
                one_line(&c.key),
                c.source.clone(),
                c.policy.clone(),
                c.fields.join(","),
            ]);
        }
        table(out, &rows)?;
    }

    writeln!(out, "\noperator actions (latest {ACTIONS_SHOWN}):")?;
    if s.actions.is_empty() {
        writeln!(out, "  none")?;
    } else {
        let mut rows = vec![["ID", "AT", "ACTION", "VIA", "CLIENT", "TOKEN", "DEAD LETTERS", "OUTCOME"]
            .map(String::from)
            .to_vec()];
        for a in &s.actions {
            rows.push(vec![
                a.id.to_string(),
                ts(&a.at),
                a.action.clone(),
                a.via.clone(),
                one_line(&a.client),
                or_dash(&a.token),
                letter_list(&a.dead_letters),
                format!("{}: {}", a.outcome, one_line(&a.detail)),
            ]);
        }
        table(out, &rows)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_read_naturally() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }

    #[test]
    fn long_lists_of_dead_letters_are_cut_short() {
        assert_eq!(letter_list(&[]), "-");
        assert_eq!(letter_list(&[42]), "42");
        assert_eq!(letter_list(&[1, 2, 3, 4, 5]), "1 2 3 … (5)");
    }

    #[test]
    fn text_tables_line_up() {
        let mut out = Vec::new();
        table(&mut out, &[vec!["A".into(), "BB".into(), "C".into()], vec!["long".into(), "x".into(), "y".into()]])
            .unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "  A     BB  C\n  long  x   y\n");
    }
}
