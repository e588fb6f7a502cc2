//! The sync engine: turns source row changes into entity changes ([`map`]), decides what to do
//! with each (DESIGN §6), applies the accepted ones to the other side, and records every
//! decision in the control state.
//!
//! A batch is one Odoo transaction or one legacy poll. It is decided, written to its target in
//! one transaction (a savepoint per change), and its outcome saved in one state transaction;
//! only then may the caller acknowledge the source position. Before the target commits, the
//! fingerprints of the writes are recorded as pending, so that their echo is recognised even if
//! millrace dies between the target's commit and the state's.

pub mod decide;
mod facts;
pub mod map;
pub mod retry;

use std::sync::Arc;

use chrono::Utc;

use crate::archive::ArchiveRow;
pub use crate::mapping::ChangeOp;
use crate::mapping::{Mapping, Mappings, Record, System};
use crate::sink::erp_db::LegacyDb;
use crate::sink::postgres::OdooSink;
use crate::sink::{ApplyError, Sink, SinkError, Write};
use crate::state::sync::{DeadLetter, KnownWrite, NewConflict, Parked, StateWrites, XrefWrite};
use crate::state::{StateError, StateStore};
pub use decide::Decision;

/// A change to one entity, from one side.
#[derive(Debug, Clone)]
pub struct Change {
    /// Index into [`Mappings::entities`].
    pub entity: usize,
    pub source: System,
    pub op: ChangeOp,
    pub key: String,
    /// The entity as the source now holds it; `None` for deletes.
    pub record: Option<Record>,
    pub position: String,
    /// Written by millrace itself (Odoo: the transaction carries millrace's replication origin).
    pub ours: bool,
    /// The source row's id (Odoo), for the cross-reference.
    pub source_id: Option<String>,
    /// Set when the change re-runs a dead letter.
    pub dead_letter: Option<i64>,
}

/// A source row that could not be turned into a change: dead-lettered as it is.
#[derive(Debug, Clone)]
pub struct BadInput {
    pub entity: String,
    pub source: System,
    pub key: String,
    pub position: String,
    pub field: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone)]
pub enum Input {
    Change(Change),
    Bad(BadInput),
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    State(#[from] StateError),
    /// A side is unreachable: the batch is retried as a whole later.
    #[error("{system} is unavailable: {message}")]
    Unavailable { system: &'static str, message: String },
}

impl From<SinkError> for SyncError {
    fn from(error: SinkError) -> Self {
        match error {
            SinkError::Unavailable { system, message } => SyncError::Unavailable { system, message },
        }
    }
}

/// Counts of one batch's decisions, for logs and tests.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct BatchSummary {
    pub applied: u64,
    pub echoes: u64,
    pub stale: u64,
    pub conflicts: u64,
    pub parked: u64,
    pub dead_lettered: u64,
    pub filtered: u64,
}

pub struct Engine {
    pub mappings: Arc<Mappings>,
    pub state: StateStore,
    /// Reads Odoo rows (read-through of changes, target reads); outside the sink's transaction.
    pub odoo_read: tokio_postgres::Client,
    pub odoo: OdooSink,
    pub legacy: LegacyDb,
    /// Control state of the batch being decided.
    pub(crate) prefetched: crate::state::sync::Prefetched,
    /// Legacy rows of the batch's keys that millrace knows nothing of yet, read in bulk:
    /// (entity, key) → the row's record, or `None` when there is no row.
    pub(crate) legacy_rows: std::collections::HashMap<(String, String), Option<Record>>,
    pub metrics: Arc<crate::ops::metrics::Metrics>,
    /// Where every decided change is written, when `[archive]` is configured.
    pub archive: Option<crate::archive::Archive>,
    /// What the caller knows of the batch being processed, for the archive.
    pub batch: BatchMeta,
}

/// The source transaction (or read) a batch comes from.
#[derive(Debug, Clone, Default)]
pub struct BatchMeta {
    pub commit_ts: Option<chrono::DateTime<Utc>>,
    pub xid: Option<u32>,
    /// Rows read by a backfill, not changes.
    pub snapshot: bool,
    /// Read from a source that replays after a crash (the Odoo stream, a legacy poll), as
    /// opposed to a retry of parked changes or dead letters.
    pub replayable: bool,
    /// A part of a large Odoo transaction: how many of its row changes are handled once this
    /// part is (see [`crate::archive::ArchiveRow::txn_part`]).
    pub txn_part: Option<u64>,
}

/// The planned effect of one decided change on its target.
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    change: Change,
    decision: Decision,
    /// Fields to write (upsert) on the target.
    fields: Vec<usize>,
    /// Whether a missing target row may be created.
    create: bool,
    /// The target was searched for the key while deciding and has no row.
    target_absent: bool,
    /// The target row id when known (Odoo).
    target_id: Option<String>,
    /// What the target will hold after the write, for echo recognition.
    expected: Option<Record>,
    conflict_fields: Vec<usize>,
}

impl Engine {
    /// An engine over open connections, with no archive and no batch in progress.
    pub fn new(
        mappings: Arc<Mappings>,
        state: StateStore,
        odoo_read: tokio_postgres::Client,
        odoo: OdooSink,
        legacy: LegacyDb,
        metrics: Arc<crate::ops::metrics::Metrics>,
    ) -> Engine {
        Engine {
            mappings,
            state,
            odoo_read,
            odoo,
            legacy,
            prefetched: Default::default(),
            legacy_rows: Default::default(),
            metrics,
            archive: None,
            batch: BatchMeta::default(),
        }
    }

    /// Opens `[archive]`, when configured, under this process kind's spool (`run`, `backfill`).
    pub fn open_archive(
        &mut self,
        settings: Option<&crate::config::ArchiveSettings>,
        owner: &str,
    ) -> Result<(), crate::archive::ArchiveError> {
        if let Some(settings) = settings {
            self.archive = Some(crate::archive::Archive::open(settings.clone(), self.mappings.clone(), owner)?);
            tracing::info!(dir = %settings.dir.display(), rotate_rows = settings.rotate_rows, rotate_after_s = settings.rotate_after.as_secs_f64(), "archiving every decided change");
        }
        Ok(())
    }

    pub fn mapping(&self, change: &Change) -> &Mapping {
        &self.mappings.entities[change.entity]
    }

    /// Decides, applies and records one batch of inputs from one source.
    pub async fn process(
        &mut self,
        source: System,
        inputs: Vec<Input>,
        position: Option<String>,
    ) -> Result<BatchSummary, SyncError> {
        let started = std::time::Instant::now();
        let n_inputs = inputs.len();
        let mut writes = StateWrites::default();
        let mut summary = BatchSummary::default();
        let mut planned = Vec::new();
        let mut archived: Vec<ArchiveRow> = Vec::new();
        let keys: Vec<(String, String)> = inputs
            .iter()
            .filter_map(|i| match i {
                Input::Change(c) if !c.ours => Some((self.mappings.entities[c.entity].entity.clone(), c.key.clone())),
                Input::Change(_) => None,
                Input::Bad(_) => None,
            })
            .collect();
        self.prefetched = self.state.prefetch(&keys).await?;
        // Lookup tables are read at most once per batch, by whichever step needs them first.
        self.legacy.new_batch();
        self.legacy_rows.clear();
        if source == System::Odoo {
            self.prefetch_legacy_rows(&inputs).await?;
        }
        for input in inputs {
            match input {
                Input::Bad(bad) => {
                    if let Some(row) = self.archive_bad(&bad) {
                        archived.push(row);
                    }
                    summary.dead_lettered += 1;
                    tracing::error!(entity = %bad.entity, key = %bad.key, source = bad.source.as_str(), position = %bad.position, field = ?bad.field, reason = %bad.reason, "dead-lettered: the source row cannot be read");
                    writes.count(&bad.entity, bad.source.as_str(), "dead_letter");
                    writes.dead_letters.push(DeadLetter {
                        id: 0,
                        entity: bad.entity,
                        key: bad.key,
                        source: bad.source.as_str().into(),
                        op: "upsert".into(),
                        record: None,
                        position: bad.position,
                        field: bad.field,
                        reason: bad.reason,
                        created_at: Utc::now(),
                        status: "open".into(),
                        resolution: None,
                    });
                }
                Input::Change(change) => {
                    let plan = self.decide(change).await?;
                    planned.push(plan);
                }
            }
        }
        let decided = started.elapsed();
        self.apply(source, planned, &mut writes, &mut summary, &mut archived).await?;
        let applied = started.elapsed();
        if let Some(position) = position {
            writes.source_position = Some((source.as_str(), position));
        }
        self.state.commit_writes(&writes).await?;
        // Where a batch's time goes (prefetch and decide; write the target; record the outcome).
        tracing::debug!(
            source = source.as_str(),
            inputs = n_inputs,
            applied = summary.applied,
            decide_ms = decided.as_millis() as u64,
            apply_ms = (applied - decided).as_millis() as u64,
            record_ms = (started.elapsed() - applied).as_millis() as u64,
            "batch processed"
        );
        // Only now: a batch that failed before its outcome was saved runs again whole.
        if let Some(archive) = self.archive.as_mut() {
            for row in archived {
                archive.push(row);
            }
        }
        for ((entity, source, decision), n) in &writes.counts {
            let direction = if *source == "legacy" { "legacy_to_odoo" } else { "odoo_to_legacy" };
            for _ in 0..*n {
                self.metrics.decision(entity, source, decision);
                match *decision {
                    "apply" => self.metrics.applied(entity, direction),
                    "dead_letter" => self.metrics.apply_failed(entity, direction),
                    _ => {}
                }
            }
        }
        Ok(summary)
    }

    /// Reads in bulk the legacy rows of the keys the batch will need a target read for (those
    /// with nothing known on the legacy side).
    async fn prefetch_legacy_rows(&mut self, inputs: &[Input]) -> Result<(), SyncError> {
        let mut wanted: std::collections::BTreeMap<usize, Vec<String>> = std::collections::BTreeMap::new();
        for input in inputs {
            let Input::Change(c) = input else { continue };
            let entity = &self.mappings.entities[c.entity].entity;
            let id = (entity.clone(), c.key.clone(), "legacy".to_string());
            if c.op == ChangeOp::Upsert && !c.ours && self.prefetched.known.get(&id).is_none_or(|k| k.record.is_none())
            {
                wanted.entry(c.entity).or_default().push(c.key.clone());
            }
        }
        if wanted.is_empty() {
            return Ok(());
        }
        self.legacy.ensure_lookups(&self.mappings.clone()).await?;
        for (index, keys) in wanted {
            let m = self.mappings.entities[index].clone();
            let mut found = self.legacy.read_by_keys(&m, &keys).await?;
            for key in keys {
                let row = found.remove(&key);
                self.legacy_rows.insert((m.entity.clone(), key), row);
            }
        }
        Ok(())
    }

    async fn apply(
        &mut self,
        source: System,
        planned: Vec<Planned>,
        writes: &mut StateWrites,
        summary: &mut BatchSummary,
        archived: &mut Vec<ArchiveRow>,
    ) -> Result<(), SyncError> {
        let target = source.other();
        // Echo recognition must survive a crash between the target's commit and the state's.
        let pending: Vec<(String, String, &'static str, i64, serde_json::Value)> = planned
            .iter()
            .filter(|p| p.decision == Decision::Apply)
            .filter_map(|p| {
                let m = self.mapping(&p.change);
                p.expected
                    .as_ref()
                    .map(|e| (m.entity.clone(), p.change.key.clone(), target.as_str(), e.fingerprint(), e.to_json(m)))
            })
            .collect();
        self.state.set_pending(&pending).await?;
        let mappings = self.mappings.clone();
        let changes: Vec<Option<Write>> = planned
            .iter()
            .map(|p| {
                (p.decision == Decision::Apply).then(|| Write {
                    mapping: &mappings.entities[p.change.entity],
                    op: p.change.op,
                    key: &p.change.key,
                    record: p.change.record.as_ref(),
                    fields: &p.fields,
                    create: p.create,
                    target_absent: p.target_absent,
                    target_id: p.target_id.as_deref(),
                })
            })
            .collect();
        let outcomes = match target {
            System::Odoo => self.odoo.apply(&mappings, &changes).await?,
            System::Legacy => self.legacy.apply(&mappings, &changes).await?,
        };
        drop(changes);
        for (plan, outcome) in planned.into_iter().zip(outcomes) {
            if self.archive.is_some() {
                archived.push(self.archive_row(&plan, &outcome));
            }
            self.record(plan, outcome, writes, summary);
        }
        Ok(())
    }

    fn record(
        &self,
        plan: Planned,
        outcome: Result<Option<String>, ApplyError>,
        w: &mut StateWrites,
        s: &mut BatchSummary,
    ) {
        let m = &self.mappings.entities[plan.change.entity];
        let change = &plan.change;
        let source = change.source.as_str();
        let target = change.source.other().as_str();
        let entity = m.entity.clone();
        let key = change.key.clone();
        let record_json = change.record.as_ref().map(|r| r.to_json(m));
        let known_source = |written: bool| KnownWrite {
            entity: entity.clone(),
            key: key.clone(),
            system: source,
            record: change.record.as_ref().map(|r| (r.to_json(m), r.fingerprint())),
            position: change.position.clone(),
            written,
        };
        let conflict = |fields: &[usize]| NewConflict {
            entity: entity.clone(),
            key: key.clone(),
            source,
            fields: fields.iter().map(|f| m.fields[*f].name.clone()).collect(),
            policy: match m.conflict {
                crate::mapping::ConflictPolicy::Reject => "reject",
                crate::mapping::ConflictPolicy::Accept => "accept",
            },
            record: record_json.clone(),
            position: change.position.clone(),
        };
        match plan.decision {
            Decision::Echo => {
                s.echoes += 1;
                w.count(&entity, source, "echo");
                let latest = self
                    .prefetched
                    .known
                    .get(&(entity.clone(), key.clone(), source.to_string()))
                    .and_then(|k| k.fingerprint)
                    .zip(change.record.as_ref().map(|r| r.fingerprint()))
                    .is_some_and(|(known, seen)| known == seen);
                if change.source == System::Legacy && latest {
                    // The echo of the latest write is seen once: the same content again later is
                    // someone's edit of an unmapped column, `stale`, not millrace's write. (The
                    // echo of an earlier write changes nothing that is known.)
                    w.known.push(known_source(false));
                }
            }
            Decision::Stale => {
                s.stale += 1;
                w.count(&entity, source, "stale");
                if let Some(id) = change.dead_letter {
                    w.resolved.push((id, "nothing left to apply: the other side already holds it".into()));
                }
            }
            Decision::Filtered => {
                s.filtered += 1;
                w.count(&entity, source, "filtered");
            }
            Decision::Conflict => {
                s.conflicts += 1;
                w.count(&entity, source, "conflict");
                tracing::warn!(entity = %entity, key = %key, source, position = %change.position, fields = ?plan.conflict_fields.iter().map(|f| &m.fields[*f].name).collect::<Vec<_>>(), "ownership conflict: not applied");
                w.conflicts.push(conflict(&plan.conflict_fields));
                if change.record.is_some() {
                    w.known.push(known_source(false));
                }
            }
            Decision::Apply => match outcome {
                Ok(target_id) => {
                    s.applied += 1;
                    w.count(&entity, source, "apply");
                    tracing::info!(entity = %entity, key = %key, source, position = %change.position, op = change.op.as_str(), "applied");
                    if !plan.conflict_fields.is_empty() {
                        s.conflicts += 1;
                        w.count(&entity, source, "conflict");
                        w.conflicts.push(conflict(&plan.conflict_fields));
                    }
                    w.unpark.push((entity.clone(), key.clone(), source.to_string()));
                    w.settle.push((entity.clone(), key.clone(), change.dead_letter));
                    if let (System::Odoo, Some(id)) = (change.source, change.source_id.as_deref()) {
                        // A dead letter the row had while it had no natural key.
                        let stand_in = id.parse().map(|id| map::odoo_row_key(m, id));
                        if let Ok(stand_in) = stand_in {
                            w.settle.push((entity.clone(), stand_in, None));
                        }
                    }
                    match change.op {
                        ChangeOp::Upsert => {
                            w.known.push(known_source(false));
                            if let Some(expected) = &plan.expected {
                                w.known.push(KnownWrite {
                                    entity: entity.clone(),
                                    key: key.clone(),
                                    system: target,
                                    record: Some((expected.to_json(m), expected.fingerprint())),
                                    position: change.position.clone(),
                                    written: true,
                                });
                            }
                            if let Some(id) = target_id.or(plan.target_id.clone()) {
                                w.xref.push(XrefWrite {
                                    entity: entity.clone(),
                                    key: key.clone(),
                                    system: target,
                                    id: Some(id),
                                });
                            }
                            if let Some(id) = &change.source_id {
                                w.xref.push(XrefWrite {
                                    entity: entity.clone(),
                                    key: key.clone(),
                                    system: source,
                                    id: Some(id.clone()),
                                });
                            }
                        }
                        ChangeOp::Delete => {
                            for system in [source, target] {
                                w.known.push(KnownWrite {
                                    entity: entity.clone(),
                                    key: key.clone(),
                                    system,
                                    record: None,
                                    position: change.position.clone(),
                                    written: false,
                                });
                                w.xref.push(XrefWrite { entity: entity.clone(), key: key.clone(), system, id: None });
                            }
                        }
                    }
                }
                Err(ApplyError::Park(reason)) => {
                    s.parked += 1;
                    w.count(&entity, source, "parked");
                    tracing::info!(entity = %entity, key = %key, source, position = %change.position, reason = %reason, "parked until its dependency arrives");
                    w.park.push(Parked {
                        entity: entity.clone(),
                        key: key.clone(),
                        source: source.to_string(),
                        op: change.op.as_str().into(),
                        record: record_json.clone(),
                        position: change.position.clone(),
                        reason,
                        parked_at: Utc::now(),
                        attempts: 0,
                    });
                }
                Err(ApplyError::Dead { field, reason }) => {
                    s.dead_lettered += 1;
                    w.count(&entity, source, "dead_letter");
                    tracing::error!(entity = %entity, key = %key, source, position = %change.position, field = ?field, reason = %reason, "dead-lettered");
                    w.unpark.push((entity.clone(), key.clone(), source.to_string()));
                    match change.dead_letter {
                        Some(id) => w.reopen.push((id, reason)),
                        None => w.dead_letters.push(DeadLetter {
                            id: 0,
                            entity: entity.clone(),
                            key: key.clone(),
                            source: source.into(),
                            op: change.op.as_str().into(),
                            record: record_json.clone(),
                            position: change.position.clone(),
                            field,
                            reason,
                            created_at: Utc::now(),
                            status: "open".into(),
                            resolution: None,
                        }),
                    }
                }
                Err(ApplyError::Transient(reason)) => {
                    // Not reached: a transient fault aborts the batch before recording.
                    tracing::warn!(entity = %entity, key = %key, reason = %reason, "transient fault while recording");
                }
            },
        }
    }
}

impl Engine {
    /// The archive's record of one decided change.
    fn archive_row(&self, plan: &Planned, outcome: &Result<Option<String>, ApplyError>) -> ArchiveRow {
        let m = &self.mappings.entities[plan.change.entity];
        let change = &plan.change;
        let source = change.source;
        let known = self.prefetched.known.get(&(m.entity.clone(), change.key.clone(), source.as_str().to_string()));
        let before = known.and_then(|k| k.record.as_ref()).and_then(|json| Record::from_json(m, json).ok());
        let field_names =
            |fields: &[usize]| fields.iter().map(|f| m.fields[*f].name.as_str()).collect::<Vec<_>>().join(", ");
        let (decision, reason) = match plan.decision {
            Decision::Echo => ("echo", Some("millrace's own write coming back".to_string())),
            Decision::Stale => ("stale", Some("nothing new: already known or already on the other side".to_string())),
            Decision::Filtered => ("filtered", Some(format!("outside what {} replicates", source.as_str()))),
            Decision::Conflict => (
                "conflict",
                Some(format!("{} does not own {}: not applied", source.as_str(), field_names(&plan.conflict_fields))),
            ),
            Decision::Apply => match outcome {
                Ok(_) if plan.conflict_fields.is_empty() => ("apply", None),
                // Policy `reject`: only the source's own fields were written (`plan.fields`).
                Ok(_) if m.conflict == crate::mapping::ConflictPolicy::Reject => (
                    "apply",
                    Some(format!(
                        "applied {}; {} does not own {}: not applied",
                        field_names(&plan.fields),
                        source.as_str(),
                        field_names(&plan.conflict_fields)
                    )),
                ),
                Ok(_) => (
                    "apply",
                    Some(format!(
                        "conflict accepted: {} does not own {}",
                        source.as_str(),
                        field_names(&plan.conflict_fields)
                    )),
                ),
                Err(ApplyError::Park(reason)) => ("parked", Some(reason.clone())),
                Err(ApplyError::Dead { reason, .. }) => ("dead_letter", Some(reason.clone())),
                Err(ApplyError::Transient(reason)) => ("failed", Some(reason.clone())),
            },
        };
        let op = match (self.batch.snapshot, change.op, &before) {
            (true, _, _) => "r",
            (false, ChangeOp::Delete, _) => "d",
            (false, ChangeOp::Upsert, Some(_)) => "u",
            (false, ChangeOp::Upsert, None) => "c",
        };
        ArchiveRow {
            entity: change.entity,
            key: change.key.clone(),
            source,
            source_table: m.side(source).table.clone(),
            op,
            decision,
            reason,
            position: change.position.clone(),
            commit_ts: self.batch.commit_ts,
            xid: self.batch.xid,
            captured_at: Utc::now(),
            after: change.record.clone(),
            before,
            replayable: self.batch.replayable && change.dead_letter.is_none(),
            txn_part: self.batch.txn_part,
        }
    }

    /// The archive's record of a source row that could not be read (when it names an entity).
    fn archive_bad(&self, bad: &BadInput) -> Option<ArchiveRow> {
        self.archive.as_ref()?;
        let entity = self.mappings.entities.iter().position(|m| m.entity == bad.entity)?;
        let m = &self.mappings.entities[entity];
        Some(ArchiveRow {
            entity,
            key: bad.key.clone(),
            source: bad.source,
            source_table: m.side(bad.source).table.clone(),
            op: if self.batch.snapshot { "r" } else { "u" },
            decision: "dead_letter",
            reason: Some(bad.reason.clone()),
            position: bad.position.clone(),
            commit_ts: self.batch.commit_ts,
            xid: self.batch.xid,
            captured_at: Utc::now(),
            after: None,
            before: None,
            replayable: self.batch.replayable,
            txn_part: self.batch.txn_part,
        })
    }
}
