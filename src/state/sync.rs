//! The sync engine's control state: cross-references, what each side is known to hold, parked
//! changes, dead letters, conflicts and decision counts. A batch's outcome is written in one
//! transaction ([`StateStore::commit_writes`]), after the target committed and before the
//! source position is acknowledged.

use std::collections::BTreeMap;

use super::{last_per_key, sql, StateError, StateStore};

/// What millrace believes one side holds for one key.
#[derive(Debug, Clone, PartialEq)]
pub struct Known {
    pub record: Option<serde_json::Value>,
    pub fingerprint: Option<i64>,
    pub position: Option<String>,
    pub written: bool,
    pub pending_fingerprint: Option<i64>,
    /// What a write in flight would leave on this side (see `pending_fingerprint`).
    pub pending_record: Option<serde_json::Value>,
    /// How long ago the write in flight was first sent (none in flight: `None`). A write whose
    /// outcome was never recorded (a restart, a failed batch) may still be committed by the
    /// target after it.
    pub pending_for: Option<std::time::Duration>,
    /// Fingerprints of millrace's latest writes here, when the last was at most
    /// [`RECENT_WRITES_WINDOW`] ago (empty otherwise).
    pub recent_written: Vec<i64>,
}

/// How long millrace's own earlier writes of a key are recognised when they are read back: a poll
/// comes within seconds; a user restoring an old state minutes later is a change.
pub const RECENT_WRITES_WINDOW: &str = "5 minutes";

#[derive(Debug, Clone)]
pub struct KnownWrite {
    pub entity: String,
    pub key: String,
    pub system: &'static str,
    /// `None` forgets the key (deleted on that side).
    pub record: Option<(serde_json::Value, i64)>,
    pub position: String,
    pub written: bool,
}

#[derive(Debug, Clone)]
pub struct XrefWrite {
    pub entity: String,
    pub key: String,
    pub system: &'static str,
    /// `None` removes the cross-reference.
    pub id: Option<String>,
}

/// A change waiting for a dependency.
#[derive(Debug, Clone, PartialEq)]
pub struct Parked {
    pub entity: String,
    pub key: String,
    pub source: String,
    pub op: String,
    pub record: Option<serde_json::Value>,
    pub position: String,
    pub reason: String,
    pub parked_at: chrono::DateTime<chrono::Utc>,
    pub attempts: i32,
}

/// A change that could not be applied.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub id: i64,
    pub entity: String,
    pub key: String,
    pub source: String,
    pub op: String,
    pub record: Option<serde_json::Value>,
    pub position: String,
    pub field: Option<String>,
    pub reason: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub status: String,
    pub resolution: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewConflict {
    pub entity: String,
    pub key: String,
    pub source: &'static str,
    pub fields: Vec<String>,
    pub policy: &'static str,
    pub record: Option<serde_json::Value>,
    pub position: String,
}

/// Everything a batch changes in the control state.
#[derive(Debug, Default)]
pub struct StateWrites {
    pub known: Vec<KnownWrite>,
    pub xref: Vec<XrefWrite>,
    pub park: Vec<Parked>,
    /// (entity, key, source) of parked changes that are settled.
    pub unpark: Vec<(String, String, String)>,
    pub dead_letters: Vec<DeadLetter>,
    /// Dead letters settled: id and how.
    pub resolved: Vec<(i64, String)>,
    /// Keys a change was applied for: their open dead letters are settled by it (entity, key,
    /// and the dead letter the change re-ran, if any).
    pub settle: Vec<(String, String, Option<i64>)>,
    /// Retried dead letters that failed again, with the new reason.
    pub reopen: Vec<(i64, String)>,
    pub conflicts: Vec<NewConflict>,
    pub counts: BTreeMap<(String, &'static str, &'static str), i64>,
    pub source_position: Option<(&'static str, String)>,
    /// (entity, key, system) of writes not made (parked for a dependency, dead-lettered): no
    /// write of them is in flight any more.
    pub not_sent: Vec<(String, String, &'static str)>,
}

impl StateWrites {
    pub fn count(&mut self, entity: &str, source: &'static str, decision: &'static str) {
        *self.counts.entry((entity.to_string(), source, decision)).or_default() += 1;
    }

    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
            && self.xref.is_empty()
            && self.park.is_empty()
            && self.unpark.is_empty()
            && self.dead_letters.is_empty()
            && self.resolved.is_empty()
            && self.settle.is_empty()
            && self.reopen.is_empty()
            && self.conflicts.is_empty()
            && self.counts.is_empty()
            && self.source_position.is_none()
            && self.not_sent.is_empty()
    }
}

fn dead_letter_from_row(r: &tokio_postgres::Row) -> DeadLetter {
    DeadLetter {
        id: r.get("id"),
        entity: r.get("entity"),
        key: r.get("key"),
        source: r.get("source"),
        op: r.get("op"),
        record: r.get("record"),
        position: r.get("position"),
        field: r.get("field"),
        reason: r.get("reason"),
        created_at: r.get("created_at"),
        status: r.get("status"),
        resolution: r.get("resolution"),
    }
}

/// A transaction-scoped advisory lock on one (entity, key, source) of the dead-letter queue: the
/// two-key form (a key space no single-key lock shares), class 28004 ("md"), the key's hash.
const DLQ_KEY_LOCK: &str =
    "SELECT pg_advisory_xact_lock(28004, hashtext($1::text || chr(31) || $2::text || chr(31) || $3::text))";

const DLQ_COLUMNS: &str =
    "id, entity, key, source, op, record, position, field, reason, created_at, status, resolution";

/// Known records and cross-references of a batch's keys, read in two queries.
#[derive(Debug, Default)]
pub struct Prefetched {
    /// (entity, key, system) → known.
    pub known: std::collections::HashMap<(String, String, String), Known>,
    /// (entity, key, system) → id.
    pub xref: std::collections::HashMap<(String, String, String), String>,
    /// (entity, key) → why: ERP records reconcile could not tell apart (`millrace.ambiguous`);
    /// a create of one is dead-lettered instead of copying what Odoo may hold.
    pub ambiguous: std::collections::HashMap<(String, String), String>,
}

/// The `system` the prefetch's cross-reference query gives an ambiguous key's row.
const AMBIGUOUS: &str = "~ambiguous";

impl StateStore {
    /// What is known about these (entity, key) pairs on both sides.
    pub async fn prefetch(&self, keys: &[(String, String)]) -> Result<Prefetched, StateError> {
        let mut out = Prefetched::default();
        if keys.is_empty() {
            return Ok(out);
        }
        let entities: Vec<&str> = keys.iter().map(|k| k.0.as_str()).collect();
        let key_texts: Vec<&str> = keys.iter().map(|k| k.1.as_str()).collect();
        let rows = self
            .client
            .query(
                "SELECT k.entity, k.key, k.system, k.record, k.fingerprint, k.position, k.written, k.pending_fingerprint, k.pending_record,
                        CASE WHEN k.recent_at > now() - interval '5 minutes' THEN k.recent_written END,
                        CASE WHEN k.pending_fingerprint IS NOT NULL
                             THEN extract(epoch FROM now() - k.pending_at)::float8 END
                   FROM millrace.known k JOIN (SELECT DISTINCT * FROM unnest($1::text[], $2::text[])) AS u(entity, key)
                     ON k.entity = u.entity AND k.key = u.key",
                &[&entities, &key_texts],
            )
            .await
            .map_err(sql("reading known records"))?;
        for r in rows {
            out.known.insert(
                (r.get(0), r.get(1), r.get(2)),
                Known {
                    record: r.get(3),
                    fingerprint: r.get(4),
                    position: r.get(5),
                    written: r.get(6),
                    pending_fingerprint: r.get(7),
                    pending_record: r.get(8),
                    recent_written: r.get::<_, Option<Vec<i64>>>(9).unwrap_or_default(),
                    pending_for: r
                        .get::<_, Option<f64>>(10)
                        .filter(|s| s.is_finite())
                        .map(|s| std::time::Duration::from_secs_f64(s.max(0.0))),
                },
            );
        }
        let rows = self
            .client
            .query(
                // One round trip for both: the ambiguous keys are few, and usually none.
                "WITH u AS (SELECT DISTINCT * FROM unnest($1::text[], $2::text[]) AS u(entity, key))
                 SELECT x.entity, x.key, x.system, x.id
                   FROM millrace.xref x JOIN u ON x.entity = u.entity AND x.key = u.key
                 UNION ALL
                 SELECT a.entity, a.key, $3, a.detail
                   FROM millrace.ambiguous a JOIN u ON a.entity = u.entity AND a.key = u.key",
                &[&entities, &key_texts, &AMBIGUOUS],
            )
            .await
            .map_err(sql("reading cross-references"))?;
        for r in rows {
            let system: String = r.get(2);
            if system == AMBIGUOUS {
                out.ambiguous.insert((r.get(0), r.get(1)), r.get(3));
            } else {
                out.xref.insert((r.get(0), r.get(1), system), r.get(3));
            }
        }
        Ok(out)
    }

    pub async fn xref_id(&self, entity: &str, key: &str, system: &str) -> Result<Option<String>, StateError> {
        let row = self
            .client
            .query_opt(
                "SELECT id FROM millrace.xref WHERE entity = $1 AND key = $2 AND system = $3",
                &[&entity, &key, &system],
            )
            .await
            .map_err(sql("reading a cross-reference"))?;
        Ok(row.map(|r| r.get(0)))
    }

    pub async fn xref_key(&self, entity: &str, system: &str, id: &str) -> Result<Option<String>, StateError> {
        let row = self
            .client
            .query_opt(
                "SELECT key FROM millrace.xref WHERE entity = $1 AND system = $2 AND id = $3 LIMIT 1",
                &[&entity, &system, &id],
            )
            .await
            .map_err(sql("reading a cross-reference"))?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Records the writes about to be committed on a target (what they leave there, and its
    /// fingerprint), so that their echo is recognised, and a later change of the key is compared
    /// with them, even if millrace stops before [`StateStore::commit_writes`].
    pub async fn set_pending(
        &self,
        pending: &[(String, String, &'static str, i64, serde_json::Value)],
    ) -> Result<(), StateError> {
        if pending.is_empty() {
            return Ok(());
        }
        // A batch may hold several changes of one key (rows that map to the same key): the last
        // one's write is what the target will hold.
        let pending = last_per_key(pending, |p| (p.0.as_str(), p.1.as_str(), p.2));
        let entities: Vec<&str> = pending.iter().map(|p| p.0.as_str()).collect();
        let keys: Vec<&str> = pending.iter().map(|p| p.1.as_str()).collect();
        let systems: Vec<&str> = pending.iter().map(|p| p.2).collect();
        let fingerprints: Vec<i64> = pending.iter().map(|p| p.3).collect();
        let records: Vec<&serde_json::Value> = pending.iter().map(|p| &p.4).collect();
        self.client
            .execute(
                "INSERT INTO millrace.known (entity, key, system, pending_fingerprint, pending_record, pending_at)
                 SELECT *, now() FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::jsonb[])
                 ON CONFLICT (entity, key, system) DO UPDATE SET pending_fingerprint = EXCLUDED.pending_fingerprint,
                    pending_record = EXCLUDED.pending_record,
                    -- A write sent again while an earlier one may still be in flight keeps the first
                    -- one's time: it is the one that may still land.
                    pending_at = CASE WHEN millrace.known.pending_fingerprint IS NULL
                                        OR millrace.known.pending_at IS NULL
                                        OR millrace.known.pending_at < now() - interval '1 hour'
                                      THEN now() ELSE millrace.known.pending_at END",
                &[&entities, &keys, &systems, &fingerprints, &records],
            )
            .await
            .map_err(sql("recording writes in flight"))?;
        Ok(())
    }

    /// Writes a batch's outcome in one transaction.
    pub async fn commit_writes(&mut self, w: &StateWrites) -> Result<(), StateError> {
        if w.is_empty() {
            return Ok(());
        }
        let tx = self.client.transaction().await.map_err(sql("starting a state transaction"))?;
        if !w.not_sent.is_empty() {
            let entities: Vec<&str> = w.not_sent.iter().map(|n| n.0.as_str()).collect();
            let keys: Vec<&str> = w.not_sent.iter().map(|n| n.1.as_str()).collect();
            let systems: Vec<&str> = w.not_sent.iter().map(|n| n.2).collect();
            tx.execute(
                "UPDATE millrace.known k SET pending_fingerprint = NULL, pending_record = NULL, pending_at = NULL
                   FROM unnest($1::text[], $2::text[], $3::text[]) AS u(entity, key, system)
                  WHERE k.entity = u.entity AND k.key = u.key AND k.system = u.system",
                &[&entities, &keys, &systems],
            )
            .await
            .map_err(sql("clearing writes not made"))?;
        }
        // One statement per kind (a batch can hold thousands of writes); a later write of the
        // same key in the batch wins, as it would statement by statement.
        let mut upserts: std::collections::HashMap<(&str, &str, &str), &KnownWrite> = std::collections::HashMap::new();
        let mut forget: Vec<&KnownWrite> = Vec::new();
        for k in &w.known {
            let id = (k.entity.as_str(), k.key.as_str(), k.system);
            match &k.record {
                Some(_) => {
                    forget.retain(|f| (f.entity.as_str(), f.key.as_str(), f.system) != id);
                    upserts.insert(id, k);
                }
                None => {
                    upserts.remove(&id);
                    forget.push(k);
                }
            }
        }
        if !upserts.is_empty() {
            let list: Vec<&KnownWrite> = upserts.into_values().collect();
            let entities: Vec<&str> = list.iter().map(|k| k.entity.as_str()).collect();
            let keys: Vec<&str> = list.iter().map(|k| k.key.as_str()).collect();
            let systems: Vec<&str> = list.iter().map(|k| k.system).collect();
            let records: Vec<Option<&serde_json::Value>> =
                list.iter().map(|k| k.record.as_ref().map(|r| &r.0)).collect();
            let fingerprints: Vec<Option<i64>> = list.iter().map(|k| k.record.as_ref().map(|r| r.1)).collect();
            let positions: Vec<&str> = list.iter().map(|k| k.position.as_str()).collect();
            let written: Vec<bool> = list.iter().map(|k| k.written).collect();
            tx.execute(
                "INSERT INTO millrace.known (entity, key, system, record, fingerprint, position, written, pending_fingerprint,
                                             updated_at, recent_written, recent_at)
                 SELECT e, k, s, r, f, p, w, NULL, now(), CASE WHEN w THEN ARRAY[f] END, CASE WHEN w THEN now() END
                   FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::bigint[], $6::text[], $7::bool[])
                        AS u(e, k, s, r, f, p, w)
                 ON CONFLICT (entity, key, system) DO UPDATE SET record = EXCLUDED.record,
                    fingerprint = EXCLUDED.fingerprint, position = EXCLUDED.position,
                    written = EXCLUDED.written, pending_fingerprint = NULL, pending_record = NULL, pending_at = NULL,
                    updated_at = now(),
                    recent_written = CASE WHEN EXCLUDED.written
                        THEN (array_append(coalesce(millrace.known.recent_written, '{}'), EXCLUDED.fingerprint))[
                             greatest(1, coalesce(cardinality(millrace.known.recent_written), 0) - 6):]
                        ELSE millrace.known.recent_written END,
                    recent_at = CASE WHEN EXCLUDED.written THEN now() ELSE millrace.known.recent_at END",
                &[&entities, &keys, &systems, &records, &fingerprints, &positions, &written],
            )
            .await
            .map_err(sql("saving known records"))?;
        }
        for k in forget {
            tx.execute(
                "DELETE FROM millrace.known WHERE entity = $1 AND key = $2 AND system = $3",
                &[&k.entity, &k.key, &k.system],
            )
            .await
            .map_err(sql("forgetting known records"))?;
        }
        let (set, unset): (Vec<&XrefWrite>, Vec<&XrefWrite>) = w.xref.iter().partition(|x| x.id.is_some());
        if !set.is_empty() {
            let mut latest: std::collections::HashMap<(&str, &str, &str), &str> = std::collections::HashMap::new();
            for x in &set {
                latest.insert((x.entity.as_str(), x.key.as_str(), x.system), x.id.as_deref().unwrap_or_default());
            }
            let entities: Vec<&str> = latest.keys().map(|k| k.0).collect();
            let keys: Vec<&str> = latest.keys().map(|k| k.1).collect();
            let systems: Vec<&str> = latest.keys().map(|k| k.2).collect();
            let ids: Vec<&str> = latest.values().copied().collect();
            tx.execute(
                "INSERT INTO millrace.xref (entity, key, system, id)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
                 ON CONFLICT (entity, key, system) DO UPDATE SET id = EXCLUDED.id, updated_at = now()",
                &[&entities, &keys, &systems, &ids],
            )
            .await
            .map_err(sql("saving cross-references"))?;
        }
        for x in unset {
            tx.execute(
                "DELETE FROM millrace.xref WHERE entity = $1 AND key = $2 AND system = $3",
                &[&x.entity, &x.key, &x.system],
            )
            .await
            .map_err(sql("removing cross-references"))?;
        }
        if !w.unpark.is_empty() {
            let entities: Vec<&str> = w.unpark.iter().map(|u| u.0.as_str()).collect();
            let keys: Vec<&str> = w.unpark.iter().map(|u| u.1.as_str()).collect();
            let sources: Vec<&str> = w.unpark.iter().map(|u| u.2.as_str()).collect();
            tx.execute(
                "DELETE FROM millrace.parked p USING unnest($1::text[], $2::text[], $3::text[]) AS u(e, k, s)
                  WHERE p.entity = u.e AND p.key = u.k AND p.source = u.s",
                &[&entities, &keys, &sources],
            )
            .await
            .map_err(sql("unparking"))?;
        }
        for p in &w.park {
            tx.execute(
                "INSERT INTO millrace.parked (entity, key, source, op, record, position, reason, parked_at, attempts)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (entity, key, source) DO UPDATE SET op = EXCLUDED.op, record = EXCLUDED.record,
                    position = EXCLUDED.position, reason = EXCLUDED.reason, attempts = millrace.parked.attempts + 1",
                &[&p.entity, &p.key, &p.source, &p.op, &p.record, &p.position, &p.reason, &p.parked_at, &p.attempts],
            )
            .await
            .map_err(sql("parking"))?;
        }
        if !w.dead_letters.is_empty() {
            // At most one open dead letter per (entity, key, source): a newer failure replaces the
            // older letter, which is kept, closed as superseded and naming its successor. The keys
            // are locked first, in one order, so that two processes dead-lettering the same key
            // (a backfill beside the service) cannot both leave an open letter, nor deadlock.
            let mut locks: Vec<(&str, &str, &str)> =
                w.dead_letters.iter().map(|d| (d.entity.as_str(), d.key.as_str(), d.source.as_str())).collect();
            locks.sort_unstable();
            locks.dedup();
            for (entity, key, source) in locks {
                tx.execute(DLQ_KEY_LOCK, &[&entity, &key, &source]).await.map_err(sql("locking dead letters"))?;
            }
        }
        for d in &w.dead_letters {
            let row = tx
                .query_one(
                    "INSERT INTO millrace.dlq (entity, key, source, op, record, position, field, reason)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                    &[&d.entity, &d.key, &d.source, &d.op, &d.record, &d.position, &d.field, &d.reason],
                )
                .await
                .map_err(sql("dead-lettering"))?;
            let id: i64 = row.get(0);
            tx.execute(
                "UPDATE millrace.dlq SET status = 'superseded', resolved_at = now(),
                        resolution = 'replaced by dead letter ' || $4::bigint || ', a newer failure of this key'
                  WHERE entity = $1 AND key = $2 AND source = $3 AND id <> $4 AND status IN ('open', 'retry')",
                &[&d.entity, &d.key, &d.source, &id],
            )
            .await
            .map_err(sql("superseding older dead letters"))?;
        }
        for (id, resolution) in &w.resolved {
            tx.execute(
                "UPDATE millrace.dlq SET status = 'resolved', resolved_at = now(), resolution = $2
                  WHERE id = $1 AND status IN ('open', 'retry')",
                &[id, resolution],
            )
            .await
            .map_err(sql("resolving dead letters"))?;
        }
        for (entity, key, id) in w.settle.iter().filter(|s| s.2.is_some()) {
            tx.execute(
                "UPDATE millrace.dlq SET status = 'resolved', resolved_at = now(),
                        resolution = CASE WHEN id = $3 THEN 'applied on retry'
                                          ELSE 'superseded: a later change of this key was applied' END
                  WHERE entity = $1 AND key = $2 AND status IN ('open', 'retry')",
                &[entity, key, &id.unwrap_or(-1)],
            )
            .await
            .map_err(sql("settling dead letters"))?;
        }
        let plain: Vec<&(String, String, Option<i64>)> = w.settle.iter().filter(|s| s.2.is_none()).collect();
        if !plain.is_empty() {
            let entities: Vec<&str> = plain.iter().map(|s| s.0.as_str()).collect();
            let keys: Vec<&str> = plain.iter().map(|s| s.1.as_str()).collect();
            tx.execute(
                "UPDATE millrace.dlq d SET status = 'resolved', resolved_at = now(),
                        resolution = 'superseded: a later change of this key was applied'
                   FROM unnest($1::text[], $2::text[]) AS u(e, k)
                  WHERE d.entity = u.e AND d.key = u.k AND d.status IN ('open', 'retry')",
                &[&entities, &keys],
            )
            .await
            .map_err(sql("settling dead letters"))?;
        }
        for (id, reason) in &w.reopen {
            // Only a letter still open: one superseded (or discarded) meanwhile stays closed.
            tx.execute(
                "UPDATE millrace.dlq SET status = 'open', reason = $2 WHERE id = $1 AND status IN ('open', 'retry')",
                &[id, reason],
            )
            .await
            .map_err(sql("reopening dead letters"))?;
        }
        for c in &w.conflicts {
            tx.execute(
                "INSERT INTO millrace.conflict (entity, key, source, fields, policy, record, position)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[&c.entity, &c.key, &c.source, &c.fields, &c.policy, &c.record, &c.position],
            )
            .await
            .map_err(sql("recording conflicts"))?;
        }
        for ((entity, source, decision), n) in &w.counts {
            tx.execute(
                "INSERT INTO millrace.decision_count (entity, source, decision, n) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (entity, source, decision) DO UPDATE SET n = millrace.decision_count.n + EXCLUDED.n, last_at = now()",
                &[entity, source, decision, n],
            )
            .await
            .map_err(sql("counting decisions"))?;
        }
        if let Some((source, position)) = &w.source_position {
            tx.execute(
                "INSERT INTO millrace.source_status (source, position, last_batch) VALUES ($1, $2, now())
                 ON CONFLICT (source) DO UPDATE SET position = EXCLUDED.position, last_batch = now(), updated_at = now()",
                &[source, position],
            )
            .await
            .map_err(sql("saving source status"))?;
        }
        tx.commit().await.map_err(sql("committing state"))
    }

    pub async fn parked(&self) -> Result<Vec<Parked>, StateError> {
        let rows = self
            .client
            .query(
                "SELECT entity, key, source, op, record, position, reason, parked_at, attempts
                   FROM millrace.parked ORDER BY parked_at, entity, key",
                &[],
            )
            .await
            .map_err(sql("reading parked changes"))?;
        Ok(rows
            .iter()
            .map(|r| Parked {
                entity: r.get(0),
                key: r.get(1),
                source: r.get(2),
                op: r.get(3),
                record: r.get(4),
                position: r.get(5),
                reason: r.get(6),
                parked_at: r.get(7),
                attempts: r.get(8),
            })
            .collect())
    }

    pub async fn dead_letters(&self, all: bool) -> Result<Vec<DeadLetter>, StateError> {
        let filter = if all { "" } else { "WHERE status IN ('open', 'retry')" };
        let rows = self
            .client
            .query(&format!("SELECT {DLQ_COLUMNS} FROM millrace.dlq {filter} ORDER BY id"), &[])
            .await
            .map_err(sql("listing dead letters"))?;
        Ok(rows.iter().map(dead_letter_from_row).collect())
    }

    pub async fn dead_letter(&self, id: i64) -> Result<Option<DeadLetter>, StateError> {
        let row = self
            .client
            .query_opt(&format!("SELECT {DLQ_COLUMNS} FROM millrace.dlq WHERE id = $1"), &[&id])
            .await
            .map_err(sql("reading a dead letter"))?;
        Ok(row.as_ref().map(dead_letter_from_row))
    }

    /// Marks dead letters for the running service to retry, or discards them. Returns how many
    /// changed.
    pub async fn set_dead_letter_status(&self, ids: Option<&[i64]>, status: &str) -> Result<u64, StateError> {
        let resolution = if status == "discarded" { Some("discarded by an operator") } else { None };
        let n = match ids {
            Some(ids) => {
                self.client
                    .execute(
                        "UPDATE millrace.dlq SET status = $2, resolution = $3,
                            resolved_at = CASE WHEN $2 = 'discarded' THEN now() END
                      WHERE id = ANY($1) AND status IN ('open', 'retry')",
                        &[&ids, &status, &resolution],
                    )
                    .await
            }
            None => {
                self.client
                    .execute(
                        "UPDATE millrace.dlq SET status = $1, resolution = $2,
                            resolved_at = CASE WHEN $1 = 'discarded' THEN now() END
                      WHERE status IN ('open', 'retry')",
                        &[&status, &resolution],
                    )
                    .await
            }
        };
        n.map_err(sql("updating dead letters"))
    }

    pub async fn dead_letters_to_retry(&self) -> Result<Vec<DeadLetter>, StateError> {
        let rows = self
            .client
            .query(&format!("SELECT {DLQ_COLUMNS} FROM millrace.dlq WHERE status = 'retry' ORDER BY id"), &[])
            .await
            .map_err(sql("reading dead letters to retry"))?;
        Ok(rows.iter().map(dead_letter_from_row).collect())
    }

    /// Puts a retried dead letter back to `open` with the reason it failed again.
    pub async fn reopen_dead_letter(&self, id: i64, reason: &str) -> Result<(), StateError> {
        self.client
            .execute(
                "UPDATE millrace.dlq SET status = 'open', reason = $2 WHERE id = $1 AND status IN ('open', 'retry')",
                &[&id, &reason],
            )
            .await
            .map_err(sql("reopening a dead letter"))?;
        Ok(())
    }
}
