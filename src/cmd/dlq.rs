//! `millrace dlq`: list, show, retry and discard dead-lettered changes.
//!
//! Dead letters live in the control state (`millrace.dlq`). Retrying only marks them: the
//! running service (`millrace run`) picks them up within its retry interval, re-reads each
//! key's source row as it is now and decides it again. Every retry and discard is recorded in
//! the audit trail (`millrace.audit`, with the OS user and host) in the same transaction, and
//! archived when `[archive]` is configured.

use std::io::Write;

use anyhow::{anyhow, Context};
use chrono::{DateTime, SecondsFormat, Utc};
use clap::ArgGroup;

use super::CommandError;
use crate::config::Config;
use crate::state::audit::{Action, ActionOutcome, Actor, Refusal, Target, Via};
use crate::state::sync::DeadLetter;
use crate::state::StateStore;

#[derive(Debug, Clone, clap::Subcommand)]
pub enum DlqAction {
    /// List dead letters still open (or marked for retry): id, entity, key, source, when,
    /// field and reason, one per line. A key has at most one open dead letter: a newer failure
    /// of the same key supersedes the older one.
    ///
    /// Example: millrace dlq list --all --json
    List {
        /// Also the resolved, superseded and discarded ones, with their status and resolution.
        #[arg(long)]
        all: bool,
        /// A JSON array of objects (with the records) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Show one dead letter whole, with its record.
    ///
    /// Example: millrace dlq show 42
    Show {
        /// The dead letter's id (first column of `dlq list`).
        id: i64,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Mark dead letters for retry: the running service re-reads each key's source row and
    /// applies it again within its retry interval.
    ///
    /// Example: millrace dlq retry 42    (or: millrace dlq retry --all)
    #[command(group(ArgGroup::new("which").required(true).args(["id", "all"])))]
    Retry {
        /// The dead letter to retry.
        id: Option<i64>,
        /// Every open dead letter.
        #[arg(long, conflicts_with = "id")]
        all: bool,
    },
    /// Discard a dead letter: it is closed without being applied.
    ///
    /// Example: millrace dlq discard 42
    Discard {
        /// The dead letter to discard.
        id: i64,
    },
}

pub async fn run(config: &Config, action: DlqAction) -> Result<(), CommandError> {
    let state = config.state()?;
    let mut store =
        StateStore::connect(state).await.with_context(|| format!("opening the control state at {state}"))?;
    match action {
        DlqAction::List { all, json } => list(&store, all, json).await?,
        DlqAction::Show { id, json } => show(&store, id, json).await?,
        DlqAction::Retry { id, all: _ } => retry(&mut store, id, config).await?,
        DlqAction::Discard { id } => discard(&mut store, id, config).await?,
    }
    Ok(())
}

fn timestamp(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// One line of text: newlines and tabs of free text (reasons, keys) become spaces.
fn one_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// A dead letter as a JSON object, every column included.
pub fn dead_letter_json(d: &DeadLetter) -> serde_json::Value {
    serde_json::json!({
        "id": d.id,
        "entity": d.entity,
        "key": d.key,
        "source": d.source,
        "op": d.op,
        "position": d.position,
        "field": d.field,
        "reason": d.reason,
        "created_at": timestamp(&d.created_at),
        "status": d.status,
        "resolution": d.resolution,
        "record": d.record,
    })
}

/// Rows of text cells, padded so that columns line up (the last column is not padded).
fn aligned(rows: &[Vec<String>]) -> Vec<String> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; columns];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    rows.iter()
        .map(|row| {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    line.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
                }
            }
            line.trim_end().to_string()
        })
        .collect()
}

async fn list(store: &StateStore, all: bool, json: bool) -> anyhow::Result<()> {
    let letters = store.dead_letters(all).await.context("listing dead letters")?;
    let mut out = std::io::stdout().lock();
    if json {
        let array: Vec<serde_json::Value> = letters.iter().map(dead_letter_json).collect();
        writeln!(out, "{}", serde_json::Value::Array(array))?;
        return Ok(());
    }
    if letters.is_empty() {
        writeln!(out, "{}", if all { "no dead letters" } else { "no open dead letters" })?;
        return Ok(());
    }
    let mut rows = vec![];
    let mut header: Vec<String> = ["ID", "ENTITY", "KEY", "SOURCE", "CREATED_AT", "FIELD"].map(String::from).to_vec();
    if all {
        header.push("STATUS".into());
        header.push("RESOLUTION".into());
    }
    header.push("REASON".into());
    rows.push(header);
    for d in &letters {
        let mut row = vec![
            d.id.to_string(),
            one_line(&d.entity),
            one_line(&d.key),
            one_line(&d.source),
            timestamp(&d.created_at),
            d.field.as_deref().map(one_line).unwrap_or_else(|| "-".into()),
        ];
        if all {
            row.push(d.status.clone());
            row.push(d.resolution.as_deref().map(one_line).unwrap_or_else(|| "-".into()));
        }
        row.push(one_line(&d.reason));
        rows.push(row);
    }
    for line in aligned(&rows) {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

async fn find(store: &StateStore, id: i64) -> anyhow::Result<DeadLetter> {
    store
        .dead_letter(id)
        .await
        .with_context(|| format!("reading dead letter {id}"))?
        .ok_or_else(|| anyhow!("dead letter {id} does not exist (see `millrace dlq list --all`)"))
}

async fn show(store: &StateStore, id: i64, json: bool) -> anyhow::Result<()> {
    let d = find(store, id).await?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", dead_letter_json(&d))?;
        return Ok(());
    }
    let record = match &d.record {
        Some(record) => serde_json::to_string_pretty(record).context("formatting the record")?,
        None => "(none: a delete carries only its key)".into(),
    };
    let fields = [
        ("entity", d.entity.clone()),
        ("key", d.key.clone()),
        ("source", d.source.clone()),
        ("op", d.op.clone()),
        ("position", d.position.clone()),
        ("field", d.field.clone().unwrap_or_else(|| "-".into())),
        ("reason", d.reason.clone()),
        ("created_at", timestamp(&d.created_at)),
        ("status", d.status.clone()),
        ("resolution", d.resolution.clone().unwrap_or_else(|| "-".into())),
    ];
    writeln!(out, "dead letter {}", d.id)?;
    for (name, value) in fields {
        writeln!(out, "  {:<11} {}", format!("{name}:"), value)?;
    }
    writeln!(out, "  record:")?;
    for line in record.lines() {
        writeln!(out, "    {line}")?;
    }
    Ok(())
}

/// Takes an operator action, recorded in the audit trail as this OS user's, then archives it
/// (and any earlier action not archived yet). A refused action (no such dead letter, or a
/// closed one) is an error naming why, recorded too.
async fn act(store: &mut StateStore, action: Action, target: Target, config: &Config) -> anyhow::Result<ActionOutcome> {
    let actor = Actor { via: Via::Cli, client: os_user(), token: None };
    let outcome = store
        .act_on_dead_letters(action, target, &actor)
        .await
        .with_context(|| format!("{} of dead letters", action.as_str()))?;
    tracing::info!(action = action.as_str(), client = %actor.client, audit = outcome.audit_id, dead_letters = outcome.touched.len(), "operator action from the command line");
    archive(store, config, outcome.audit_id).await;
    if let (Some(refusal), Target::One(id)) = (&outcome.refused, target) {
        let verb = match action {
            Action::Retry => "retried",
            Action::Discard => "discarded",
        };
        return Err(match refusal {
            Refusal::Missing => anyhow!("dead letter {id} does not exist (see `millrace dlq list --all`)"),
            Refusal::Closed { status, resolution } => {
                let how = resolution.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
                anyhow!("dead letter {id} is {status}{how}; only open dead letters can be {verb}")
            }
        });
    }
    Ok(outcome)
}

/// Writes the audit trail's records not archived yet into `[archive]`, when configured. The
/// action itself is done either way: a failure here is reported, and the next action archives it.
async fn archive(store: &StateStore, config: &Config, audit: i64) {
    let Some(settings) = &config.archive else { return };
    let mappings = match crate::mapping::Mappings::load_dir(&config.sync.mappings) {
        Ok(mappings) => std::sync::Arc::new(mappings),
        Err(error) => {
            tracing::error!(%error, audit, "the operator action is recorded in millrace.audit, but cannot be archived without the mappings; the next action archives it");
            return;
        }
    };
    if let Err(error) = crate::ops::audit::archive_pending(store, &settings.dir, mappings).await {
        tracing::error!(%error, audit, "the operator action is recorded in millrace.audit but not in the archive yet; the next action archives it");
    }
}

/// Who runs this command: the OS user of the process (by its uid, as /etc/passwd names it; the
/// environment's `USER` where that cannot be read) and the host, `alice@plant-7`.
pub(super) fn os_user() -> String {
    let uid = std::fs::read_to_string("/proc/self/status").ok().and_then(|status| {
        status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().next().map(str::to_string))
    });
    let by_uid = uid.as_ref().and_then(|uid| {
        let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
        passwd.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.len() > 2 && fields[2] == uid).then(|| fields[0].to_string())
        })
    });
    let user = by_uid
        .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
        .or_else(|| uid.map(|uid| format!("uid {uid}")))
        .unwrap_or_else(|| "unknown".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    if host.is_empty() {
        user
    } else {
        format!("{user}@{host}")
    }
}

async fn retry(store: &mut StateStore, id: Option<i64>, config: &Config) -> anyhow::Result<()> {
    let target = id.map_or(Target::AllOpen, Target::One);
    let marked = act(store, Action::Retry, target, config).await?.touched.len();
    let mut out = std::io::stdout().lock();
    let interval = config.sync.retry_interval;
    let noun = if marked == 1 { "dead letter" } else { "dead letters" };
    writeln!(out, "{marked} {noun} marked for retry")?;
    if marked > 0 {
        writeln!(
            out,
            "the running service (`millrace run`) re-reads the source row of each and applies it within its retry interval ({}); \
             `millrace dlq list --all` shows the outcome",
            humanize(interval)
        )?;
    }
    Ok(())
}

async fn discard(store: &mut StateStore, id: i64, config: &Config) -> anyhow::Result<()> {
    act(store, Action::Discard, Target::One(id), config).await?;
    writeln!(std::io::stdout().lock(), "dead letter {id} discarded")?;
    Ok(())
}

fn humanize(d: std::time::Duration) -> String {
    if d.subsec_millis() != 0 || d.as_secs() == 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_and_the_last_is_not_padded() {
        let rows = vec![
            vec!["ID".to_string(), "ENTITY".into(), "REASON".into()],
            vec!["12".to_string(), "bom".into(), "too long\tfor one line".into()],
        ];
        let lines = aligned(&rows);
        assert_eq!(lines[0], "ID  ENTITY  REASON");
        assert_eq!(lines[1], "12  bom     too long\tfor one line");
        assert_eq!(one_line("a\nb\tc"), "a b c");
    }

    #[test]
    fn intervals_read_naturally() {
        assert_eq!(humanize(std::time::Duration::from_secs(2)), "2s");
        assert_eq!(humanize(std::time::Duration::from_millis(1500)), "1500ms");
    }
}
