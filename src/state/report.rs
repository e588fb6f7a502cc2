//! What `millrace status` and the HTTP endpoint (`/metrics`, `/api/overview`) read from the
//! control state, as typed rows. Read-only, and over a bare client: the endpoint reads with a
//! short-lived connection of its own, which does not run the migrations that
//! [`StateStore::connect`](super::StateStore::connect) runs (`status` passes its store's client).

use chrono::{DateTime, Utc};
use tokio_postgres::types::FromSql;
use tokio_postgres::Client;

use super::{sql, StateError};

/// How a query hands back a timestamp column: as a time (`DateTime<Utc>`: `status` formats it
/// itself), or as the server's own text of it (`String`: the operator page shows it as it is).
pub trait Stamp: for<'a> FromSql<'a> {
    /// What follows the column in the select list.
    const CAST: &'static str;
}

impl Stamp for DateTime<Utc> {
    const CAST: &'static str = "";
}

impl Stamp for String {
    const CAST: &'static str = "::text";
}

/// Where a source stands (`millrace.source_status`): its last acknowledged position, last
/// batch and last error.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceStatus {
    pub source: String,
    pub position: Option<String>,
    pub last_batch: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub error_at: Option<DateTime<Utc>>,
}

/// Every source's status, by source name.
pub async fn source_statuses(client: &Client) -> Result<Vec<SourceStatus>, StateError> {
    let rows = client
        .query(
            "SELECT source, position, last_batch, last_error, error_at FROM millrace.source_status ORDER BY source",
            &[],
        )
        .await
        .map_err(sql("reading millrace.source_status"))?;
    Ok(rows
        .iter()
        .map(|r| SourceStatus {
            source: r.get(0),
            position: r.get(1),
            last_batch: r.get(2),
            last_error: r.get(3),
            error_at: r.get(4),
        })
        .collect())
}

/// A legacy table's checkpoint (`millrace.legacy_checkpoint`) as `status` lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct LegacyCheckpointRow {
    pub table: String,
    pub strategy: String,
    pub watermark: Option<String>,
    pub last_delete_scan: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// Every legacy checkpoint, by table and strategy.
pub async fn legacy_checkpoints(client: &Client) -> Result<Vec<LegacyCheckpointRow>, StateError> {
    let rows = client
        .query(
            "SELECT table_name, strategy, watermark, last_delete_scan, updated_at
               FROM millrace.legacy_checkpoint ORDER BY table_name, strategy",
            &[],
        )
        .await
        .map_err(sql("reading millrace.legacy_checkpoint"))?;
    Ok(rows
        .iter()
        .map(|r| LegacyCheckpointRow {
            table: r.get(0),
            strategy: r.get(1),
            watermark: r.get(2),
            last_delete_scan: r.get(3),
            updated_at: r.get(4),
        })
        .collect())
}

/// How many changes of an entity from a source were decided one way (`millrace.decision_count`),
/// and when the last was.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionCount<T> {
    pub entity: String,
    pub source: String,
    pub decision: String,
    pub n: i64,
    pub last_at: T,
}

/// Every decision count, by entity, source and decision.
pub async fn decision_counts<T: Stamp>(client: &Client) -> Result<Vec<DecisionCount<T>>, StateError> {
    let statement = format!(
        "SELECT entity, source, decision, n, last_at{} FROM millrace.decision_count ORDER BY entity, source, decision",
        T::CAST
    );
    let rows = client.query(&statement, &[]).await.map_err(sql("reading millrace.decision_count"))?;
    Ok(rows
        .iter()
        .map(|r| DecisionCount {
            entity: r.get(0),
            source: r.get(1),
            decision: r.get(2),
            n: r.get(3),
            last_at: r.get(4),
        })
        .collect())
}

/// How many changes wait parked, and since when the oldest does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParkedSummary {
    pub count: i64,
    pub oldest: Option<DateTime<Utc>>,
}

pub async fn parked_summary(client: &Client) -> Result<ParkedSummary, StateError> {
    let row = client
        .query_one("SELECT count(*), min(parked_at) FROM millrace.parked", &[])
        .await
        .map_err(sql("reading millrace.parked"))?;
    Ok(ParkedSummary { count: row.get(0), oldest: row.get(1) })
}

/// Dead letters still to be dealt with: open, and marked for retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadLetterCounts {
    pub open: i64,
    pub retry: i64,
}

pub async fn dead_letter_counts(client: &Client) -> Result<DeadLetterCounts, StateError> {
    let row = client
        .query_one(
            "SELECT count(*) FILTER (WHERE status = 'open'), count(*) FILTER (WHERE status = 'retry') FROM millrace.dlq",
            &[],
        )
        .await
        .map_err(sql("reading millrace.dlq"))?;
    Ok(DeadLetterCounts { open: row.get(0), retry: row.get(1) })
}

/// The queue depths `/metrics` reports, read in one statement: parked changes, and dead letters
/// open or marked for retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueDepths {
    pub parked: i64,
    pub dead_letters: i64,
}

pub async fn queue_depths(client: &Client) -> Result<QueueDepths, StateError> {
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM millrace.parked), (SELECT count(*) FROM millrace.dlq WHERE status IN ('open', 'retry'))",
            &[],
        )
        .await
        .map_err(sql("reading the parked changes and dead letters"))?;
    Ok(QueueDepths { parked: row.get(0), dead_letters: row.get(1) })
}

/// A recorded ownership conflict (`millrace.conflict`), without its record.
#[derive(Debug, Clone, PartialEq)]
pub struct RecentConflict<T> {
    pub id: i64,
    pub entity: String,
    pub key: String,
    pub source: String,
    pub fields: Vec<String>,
    pub policy: String,
    pub position: String,
    pub at: T,
}

/// The latest `limit` conflicts, newest first.
pub async fn recent_conflicts<T: Stamp>(client: &Client, limit: i64) -> Result<Vec<RecentConflict<T>>, StateError> {
    let statement = format!(
        "SELECT id, entity, key, source, fields, policy, position, at{} FROM millrace.conflict ORDER BY id DESC LIMIT $1",
        T::CAST
    );
    let rows = client.query(&statement, &[&limit]).await.map_err(sql("reading millrace.conflict"))?;
    Ok(rows
        .iter()
        .map(|r| RecentConflict {
            id: r.get(0),
            entity: r.get(1),
            key: r.get(2),
            source: r.get(3),
            fields: r.get(4),
            policy: r.get(5),
            position: r.get(6),
            at: r.get(7),
        })
        .collect())
}

/// The conflicts still outstanding, one row per (conflict, field it names): a conflict naming
/// no field (none is recorded so, but the table allows it) counts as the whole record, field
/// NULL.
///
/// The rule for "dealt with": a conflict is no longer outstanding once an operator action that
/// covers it finished after it was recorded — an audit row (`millrace.audit`, outcome `done`)
/// written later than the conflict (`at`), whose `touched` names its entity and that is
///  - a `repair` of the entity (`touched.entity`, or one of `touched.entities`: every difference
///    of the entity was compared and the owner's version applied, whatever the keys), or
///  - an `apply_owner` of the entity whose `field` is the conflict's field or null (every field),
///    and whose `keys` hold the conflict's key (or that names no keys: all of them).
///
/// A conflict raised again afterwards (the other side changed the field once more) is newer than
/// the action and outstanding again. Nothing is deleted: `millrace.conflict` stays the record of
/// what happened.
const OUTSTANDING_CONFLICTS: &str = "
WITH dealt AS (
    SELECT at, action, touched->>'entity' AS entity, touched->'entities' AS entities,
           touched->>'field' AS field, touched->'keys' AS keys
      FROM millrace.audit
     WHERE action IN ('repair', 'apply_owner') AND outcome = 'done' AND jsonb_typeof(touched) = 'object'
)
SELECT c.entity, f.field, c.key, c.source, c.at
  FROM millrace.conflict c
 CROSS JOIN LATERAL unnest(CASE WHEN cardinality(c.fields) = 0 THEN ARRAY[NULL::text] ELSE c.fields END) AS f(field)
 WHERE NOT EXISTS (
        SELECT 1 FROM dealt d
         WHERE d.at > c.at
           AND ((d.action = 'repair' AND (d.entity = c.entity OR (jsonb_typeof(d.entities) = 'array' AND d.entities ? c.entity)))
                OR (d.action = 'apply_owner' AND d.entity = c.entity AND (d.field IS NULL OR d.field = f.field)
                    AND (jsonb_typeof(d.keys) IS DISTINCT FROM 'array' OR d.keys ? c.key))))
";

/// The outstanding conflicts of one entity and field (see `OUTSTANDING_CONFLICTS`: the rule), grouped.
#[derive(Debug, Clone, PartialEq)]
pub struct ConflictGroup<T> {
    pub entity: String,
    /// `None`: conflicts that name no field (the whole record).
    pub field: Option<String>,
    /// Conflicts recorded (a key can have several).
    pub conflicts: i64,
    /// Distinct keys in conflict.
    pub key_count: i64,
    /// The distinct keys, in key order, at most the limit asked for.
    pub keys: Vec<String>,
    /// The systems whose changes raised them (`odoo`, `legacy`).
    pub sources: Vec<String>,
    pub first_at: T,
    pub last_at: T,
}

/// The outstanding conflicts grouped by entity and field, the most recently raised group first,
/// with at most `keys_per_group` of each group's keys. Reads the whole conflict table (the
/// grouping cannot be bounded by recency: an old conflict is as outstanding as a new one).
pub async fn conflict_groups<T: Stamp>(
    client: &Client,
    keys_per_group: i32,
) -> Result<Vec<ConflictGroup<T>>, StateError> {
    let statement = format!(
        "SELECT entity, field, count(*), count(DISTINCT key), (array_agg(DISTINCT key))[1:$1::int],
                array_agg(DISTINCT source), min(at){cast}, max(at){cast}
           FROM ({OUTSTANDING_CONFLICTS}) o
          GROUP BY entity, field ORDER BY max(at) DESC, entity, field",
        cast = T::CAST
    );
    let rows = client.query(&statement, &[&keys_per_group]).await.map_err(sql("grouping millrace.conflict"))?;
    Ok(rows
        .iter()
        .map(|r| ConflictGroup {
            entity: r.get(0),
            field: r.get(1),
            conflicts: r.get(2),
            key_count: r.get(3),
            keys: r.get(4),
            sources: r.get(5),
            first_at: r.get(6),
            last_at: r.get(7),
        })
        .collect())
}

/// The distinct keys of one group of outstanding conflicts (`field` `None`: the conflicts that
/// name no field), in key order, at most `limit`: what "apply the owner's value" is asked for.
pub async fn outstanding_conflict_keys(
    client: &Client,
    entity: &str,
    field: Option<&str>,
    limit: i64,
) -> Result<Vec<String>, StateError> {
    let statement = format!(
        "SELECT DISTINCT key FROM ({OUTSTANDING_CONFLICTS}) o
          WHERE entity = $1 AND field IS NOT DISTINCT FROM $2 ORDER BY key LIMIT $3"
    );
    let rows = client.query(&statement, &[&entity, &field, &limit]).await.map_err(sql("reading millrace.conflict"))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// A dead letter still to be dealt with (open, or marked for retry), as the operator page
/// lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenDeadLetter<T> {
    pub id: i64,
    pub entity: String,
    pub key: String,
    pub source: String,
    pub op: String,
    pub record: Option<serde_json::Value>,
    pub position: String,
    pub field: Option<String>,
    pub reason: String,
    pub created_at: T,
    pub status: String,
}

/// The first `limit` dead letters open or marked for retry, oldest first.
pub async fn open_dead_letters<T: Stamp>(client: &Client, limit: i64) -> Result<Vec<OpenDeadLetter<T>>, StateError> {
    let statement = format!(
        "SELECT id, entity, key, source, op, record, position, field, reason, created_at{}, status
           FROM millrace.dlq WHERE status IN ('open', 'retry') ORDER BY id LIMIT $1",
        T::CAST
    );
    let rows = client.query(&statement, &[&limit]).await.map_err(sql("reading millrace.dlq"))?;
    Ok(rows
        .iter()
        .map(|r| OpenDeadLetter {
            id: r.get(0),
            entity: r.get(1),
            key: r.get(2),
            source: r.get(3),
            op: r.get(4),
            record: r.get(5),
            position: r.get(6),
            field: r.get(7),
            reason: r.get(8),
            created_at: r.get(9),
            status: r.get(10),
        })
        .collect())
}

/// One entity's backfill (`millrace.backfill`) as `status` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct BackfillProgress {
    pub entity: String,
    pub source: String,
    pub rows: i64,
    pub finished_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// Every entity's backfill, by entity.
pub async fn backfill_progress(client: &Client) -> Result<Vec<BackfillProgress>, StateError> {
    let rows = client
        .query("SELECT entity, source, rows_done, finished_at, updated_at FROM millrace.backfill ORDER BY entity", &[])
        .await
        .map_err(sql("reading millrace.backfill"))?;
    Ok(rows
        .iter()
        .map(|r| BackfillProgress {
            entity: r.get(0),
            source: r.get(1),
            rows: r.get(2),
            finished_at: r.get(3),
            updated_at: r.get(4),
        })
        .collect())
}
