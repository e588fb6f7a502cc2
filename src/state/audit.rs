//! The audit trail of operator actions (`millrace.audit`): who retried or discarded which dead
//! letters, how (the CLI or the HTTP endpoint), from where, with which token (its name, never its
//! value), and what came of it. An action and its audit row are written in one transaction, so
//! neither exists without the other. Each row is also written to the archive once
//! (`archived_at`), by whoever acts next if writing it failed the first time.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::report::Stamp;
use super::{sql, StateError, StateStore};

/// The control table of the audit trail (created with the schema).
pub(super) const DDL: &str = "
CREATE TABLE IF NOT EXISTS millrace.audit (
    id           bigserial PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    -- 'retry' | 'discard' (and what operators may do later, such as 'repair')
    action       text NOT NULL,
    -- 'cli' | 'http'
    via          text NOT NULL,
    -- the HTTP client's address, or the OS user and host of the CLI
    client       text NOT NULL,
    -- the name of the token the action came with (HTTP); never its value
    token        text,
    -- what it touched: the dead letters' ids, and each one's entity, key and source
    dead_letters bigint[] NOT NULL DEFAULT '{}',
    touched      jsonb NOT NULL DEFAULT '[]',
    -- 'done' | 'refused', and what that means in words
    outcome      text NOT NULL,
    detail       text NOT NULL,
    -- when its records were written to the archive (NULL: not yet, or no archive)
    archived_at  timestamptz
);
CREATE INDEX IF NOT EXISTS audit_to_archive ON millrace.audit (id) WHERE archived_at IS NULL AND outcome = 'done';
";

/// What an operator did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Marked dead letters for the running service to retry.
    Retry,
    /// Closed a dead letter without applying it.
    Discard,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Retry => "retry",
            Action::Discard => "discard",
        }
    }

    pub const ALL: [Action; 2] = [Action::Retry, Action::Discard];

    pub fn parse(text: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == text)
    }

    /// The archive's `_decision` of a record this action touched.
    pub fn decision(self) -> &'static str {
        match self {
            Action::Retry => "operator:retry",
            Action::Discard => "operator:discard",
        }
    }

    /// The dead letter status it sets.
    fn status(self) -> &'static str {
        match self {
            Action::Retry => "retry",
            Action::Discard => "discarded",
        }
    }
}

/// How an action reached millrace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Cli,
    Http,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Cli => "cli",
            Via::Http => "http",
        }
    }
}

/// Who acted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub via: Via,
    /// The HTTP client's address (`127.0.0.1:51234`), or `user@host` for the CLI.
    pub client: String,
    /// The name of the token the action came with.
    pub token: Option<String>,
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.token {
            Some(token) => write!(f, "token {token:?} via {} from {}", self.via.as_str(), self.client),
            None => write!(f, "{} via {}", self.client, self.via.as_str()),
        }
    }
}

/// Which dead letters an action is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    One(i64),
    /// Every one open or marked for retry.
    AllOpen,
}

/// A dead letter an action touched.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Touched {
    pub dead_letter: i64,
    pub entity: String,
    pub key: String,
    pub source: String,
}

/// Why an action on one dead letter did nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No dead letter has that id.
    Missing,
    /// It is closed: its status (`resolved`, `superseded`, `discarded`) and resolution.
    Closed { status: String, resolution: Option<String> },
}

/// What an action did, as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionOutcome {
    pub audit_id: i64,
    pub at: DateTime<Utc>,
    pub touched: Vec<Touched>,
    pub refused: Option<Refusal>,
}

/// One row of the audit trail; `T` is how its time is read (see [`Stamp`]).
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry<T> {
    pub id: i64,
    pub at: T,
    pub action: String,
    pub via: String,
    pub client: String,
    pub token: Option<String>,
    pub dead_letters: Vec<i64>,
    pub touched: Vec<Touched>,
    pub outcome: String,
    pub detail: String,
    pub archived: bool,
}

/// An audit row whose records are still to be archived, with each dead letter it touched as
/// the queue holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToArchive {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub action: Action,
    pub actor: Actor,
    pub letters: Vec<ArchivedLetter>,
}

/// A touched dead letter as the archive records it.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchivedLetter {
    pub touched: Touched,
    /// `upsert` or `delete` (`None` if the letter is gone from the queue).
    pub op: Option<String>,
    pub position: Option<String>,
    pub record: Option<serde_json::Value>,
    pub reason: Option<String>,
}

fn noun(n: usize) -> &'static str {
    if n == 1 {
        "dead letter"
    } else {
        "dead letters"
    }
}

impl StateStore {
    /// Retries or discards dead letters and records the action in the audit trail, in one
    /// transaction. A refused action (the letter does not exist or is closed) changes nothing
    /// and is recorded as refused.
    pub async fn act_on_dead_letters(
        &mut self,
        action: Action,
        target: Target,
        actor: &Actor,
    ) -> Result<ActionOutcome, StateError> {
        let tx = self.client.transaction().await.map_err(sql("starting an operator action"))?;
        let resolution = (action == Action::Discard).then_some("discarded by an operator");
        let mut refused = None;
        let rows = match target {
            Target::One(id) => {
                let current = tx
                    .query_opt("SELECT status, resolution FROM millrace.dlq WHERE id = $1 FOR UPDATE", &[&id])
                    .await
                    .map_err(sql("reading a dead letter"))?;
                match current {
                    None => {
                        refused = Some(Refusal::Missing);
                        Vec::new()
                    }
                    Some(row) if !matches!(row.get::<_, &str>(0), "open" | "retry") => {
                        refused = Some(Refusal::Closed { status: row.get(0), resolution: row.get(1) });
                        Vec::new()
                    }
                    Some(_) => tx
                        .query(
                            "UPDATE millrace.dlq SET status = $2, resolution = $3,
                                    resolved_at = CASE WHEN $2 = 'discarded' THEN now() END
                              WHERE id = $1 RETURNING id, entity, key, source",
                            &[&id, &action.status(), &resolution],
                        )
                        .await
                        .map_err(sql("updating a dead letter"))?,
                }
            }
            Target::AllOpen => tx
                .query(
                    "UPDATE millrace.dlq SET status = $1, resolution = $2,
                            resolved_at = CASE WHEN $1 = 'discarded' THEN now() END
                      WHERE status IN ('open', 'retry') RETURNING id, entity, key, source",
                    &[&action.status(), &resolution],
                )
                .await
                .map_err(sql("updating dead letters"))?,
        };
        let mut touched: Vec<Touched> = rows
            .iter()
            .map(|r| Touched { dead_letter: r.get(0), entity: r.get(1), key: r.get(2), source: r.get(3) })
            .collect();
        touched.sort_by_key(|t| t.dead_letter);
        let ids: Vec<i64> = touched.iter().map(|t| t.dead_letter).collect();
        let (outcome, detail) = match (&refused, target) {
            (Some(Refusal::Missing), Target::One(id)) => ("refused", format!("dead letter {id} does not exist")),
            (Some(Refusal::Closed { status, resolution }), Target::One(id)) => {
                let how = resolution.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
                ("refused", format!("dead letter {id} is {status}{how}"))
            }
            _ => match action {
                Action::Retry => ("done", format!("{} {} marked for retry", ids.len(), noun(ids.len()))),
                Action::Discard => ("done", format!("{} {} discarded", ids.len(), noun(ids.len()))),
            },
        };
        let touched_json = serde_json::to_value(&touched).unwrap_or_else(|_| json!([]));
        let row = tx
            .query_one(
                "INSERT INTO millrace.audit (action, via, client, token, dead_letters, touched, outcome, detail)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id, at",
                &[
                    &action.as_str(),
                    &actor.via.as_str(),
                    &actor.client,
                    &actor.token,
                    &ids,
                    &touched_json,
                    &outcome,
                    &detail,
                ],
            )
            .await
            .map_err(sql("recording an operator action"))?;
        tx.commit().await.map_err(sql("committing an operator action"))?;
        Ok(ActionOutcome { audit_id: row.get(0), at: row.get(1), touched, refused })
    }

    /// Audit rows whose records are not in the archive yet (oldest first, at most `limit`).
    pub async fn audit_to_archive(&self, limit: i64) -> Result<Vec<ToArchive>, StateError> {
        let rows = self
            .client
            .query(
                "SELECT a.id, a.at, a.action, a.via, a.client, a.token,
                        t.dead_letter, t.entity, t.key, t.source, d.op, d.position, d.record, d.reason
                   FROM (SELECT * FROM millrace.audit
                          WHERE archived_at IS NULL AND outcome = 'done' AND action = ANY($2)
                          ORDER BY id LIMIT $1) a
                  CROSS JOIN LATERAL jsonb_to_recordset(a.touched)
                        AS t(dead_letter bigint, entity text, key text, source text)
                   LEFT JOIN millrace.dlq d ON d.id = t.dead_letter
                  ORDER BY a.id, t.dead_letter",
                &[&limit, &Action::ALL.map(Action::as_str).to_vec()],
            )
            .await
            .map_err(sql("reading operator actions to archive"))?;
        let mut out: Vec<ToArchive> = Vec::new();
        for r in rows {
            let id: i64 = r.get(0);
            if out.last().is_none_or(|last| last.id != id) {
                let Some(action) = Action::parse(r.get(2)) else { continue };
                let via = if r.get::<_, &str>(3) == "http" { Via::Http } else { Via::Cli };
                out.push(ToArchive {
                    id,
                    at: r.get(1),
                    action,
                    actor: Actor { via, client: r.get(4), token: r.get(5) },
                    letters: Vec::new(),
                });
            }
            if let Some(last) = out.last_mut().filter(|last| last.id == id) {
                last.letters.push(ArchivedLetter {
                    touched: Touched { dead_letter: r.get(6), entity: r.get(7), key: r.get(8), source: r.get(9) },
                    op: r.get(10),
                    position: r.get(11),
                    record: r.get(12),
                    reason: r.get(13),
                });
            }
        }
        Ok(out)
    }

    /// Notes that an audit row's records are in the archive.
    pub async fn audit_archived(&self, id: i64) -> Result<(), StateError> {
        self.client
            .execute("UPDATE millrace.audit SET archived_at = now() WHERE id = $1", &[&id])
            .await
            .map_err(sql("noting an archived operator action"))?;
        Ok(())
    }
}

/// The latest `limit` operator actions, newest first (for `status` and the operator page).
pub async fn recent_actions<T: Stamp>(
    client: &tokio_postgres::Client,
    limit: i64,
) -> Result<Vec<AuditEntry<T>>, StateError> {
    let statement = format!(
        "SELECT id, at{}, action, via, client, token, dead_letters, touched, outcome, detail, archived_at IS NOT NULL
           FROM millrace.audit ORDER BY id DESC LIMIT $1",
        T::CAST
    );
    let rows = client.query(&statement, &[&limit]).await.map_err(sql("reading millrace.audit"))?;
    Ok(rows
        .iter()
        .map(|r| AuditEntry {
            id: r.get(0),
            at: r.get(1),
            action: r.get(2),
            via: r.get(3),
            client: r.get(4),
            token: r.get(5),
            dead_letters: r.get(6),
            touched: serde_json::from_value(r.get(7)).unwrap_or_default(),
            outcome: r.get(8),
            detail: r.get(9),
            archived: r.get(10),
        })
        .collect())
}
