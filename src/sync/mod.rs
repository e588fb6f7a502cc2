//! The sync engine: turns source row changes into entity changes ([`map`]), decides what to do
//! with each (DESIGN §6), applies the accepted ones to the other side, and records every
//! decision in the control state.
//!
//! A batch is one Odoo transaction or one legacy poll. It is decided, written to its target in
//! one transaction (a savepoint per change), and its outcome saved in one state transaction;
//! only then may the caller acknowledge the source position. Before the target commits, the
//! fingerprints of the writes are recorded as pending, so that their echo is recognised even if
//! millrace dies between the target's commit and the state's.

mod archive_rows;
pub mod decide;
mod facts;
pub mod map;
mod record;
pub mod retry;

use std::sync::Arc;

use chrono::Utc;

use crate::archive::ArchiveRow;
pub use crate::mapping::ChangeOp;
use crate::mapping::{Mapping, Mappings, Record, System};
use crate::sink::erp_db::LegacyDb;
use crate::sink::{OdooTarget, Sink, SinkError, Write};
use crate::state::sync::{DeadLetter, StateWrites};
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
    /// Odoo: the row was last written by millrace's integration user (`write_uid`), through
    /// Odoo's API.
    pub by_integration_user: bool,
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
    /// Of the parked: waiting for an earlier write of theirs that may still land.
    pub in_flight: u64,
    pub dead_lettered: u64,
    pub filtered: u64,
}

pub struct Engine {
    pub mappings: Arc<Mappings>,
    pub state: StateStore,
    /// Reads Odoo rows (read-through of changes, target reads); outside the sink's transaction.
    pub odoo_read: tokio_postgres::Client,
    pub odoo: OdooTarget,
    pub legacy: LegacyDb,
    /// The Odoo user millrace writes as through Odoo's API (its rows' `write_uid`).
    pub integration_uid: Option<i64>,
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
    /// With [`BatchMeta::repair`]: what became of each change of the batch, as the archive
    /// records it (the caller reports it record by record).
    pub repair_log: Vec<RepairLogEntry>,
}

/// What a repair did with one record.
#[derive(Debug, Clone, PartialEq)]
pub struct RepairLogEntry {
    pub key: String,
    pub source: System,
    /// The archive's decision: `repair`, `stale` (nothing of the source's to write), `parked`,
    /// `dead_letter`, …
    pub decision: &'static str,
    pub reason: Option<String>,
    /// The fields written (or, in a dry run, that would be).
    pub fields: Vec<String>,
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
    /// `millrace reconcile --repair` (or the page's repair): the owner's version of records the
    /// two sides hold differently, decided against the target as it is now, whatever millrace
    /// last knew of either side; only owned fields are written, nothing is a conflict, and the
    /// archive records the decision as `repair`.
    pub repair: bool,
    /// With `repair`: only these fields (by name) are written (`None`: every owned field).
    pub repair_fields: Option<Vec<String>>,
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
    /// Policy `revert`: the values to write back over the source's edit.
    revert: Option<Record>,
}

impl Engine {
    /// An engine over open connections, with no archive and no batch in progress.
    pub fn new(
        mappings: Arc<Mappings>,
        state: StateStore,
        odoo_read: tokio_postgres::Client,
        odoo: OdooTarget,
        legacy: LegacyDb,
        metrics: Arc<crate::ops::metrics::Metrics>,
    ) -> Engine {
        Engine {
            mappings,
            state,
            odoo_read,
            integration_uid: odoo.integration_uid(),
            odoo,
            legacy,
            prefetched: Default::default(),
            legacy_rows: Default::default(),
            metrics,
            archive: None,
            batch: BatchMeta::default(),
            repair_log: Vec::new(),
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
                    "apply" | "repair" => self.metrics.applied(entity, direction),
                    "dead_letter" => self.metrics.apply_failed(entity, direction),
                    _ => {}
                }
            }
        }
        Ok(summary)
    }

    /// A repair's dry run: decides `changes` as [`Engine::process`] would, against the targets
    /// as they are now, and writes nothing: each change's key, source, decision and the fields
    /// it would write.
    pub async fn plan_repair(&mut self, changes: Vec<Change>) -> Result<Vec<RepairLogEntry>, SyncError> {
        let keys: Vec<(String, String)> =
            changes.iter().map(|c| (self.mappings.entities[c.entity].entity.clone(), c.key.clone())).collect();
        self.prefetched = self.state.prefetch(&keys).await?;
        self.legacy.new_batch();
        self.legacy_rows.clear();
        let mut out = Vec::with_capacity(changes.len());
        for change in changes {
            let plan = self.decide(change).await?;
            let m = self.mapping(&plan.change);
            out.push(RepairLogEntry {
                key: plan.change.key.clone(),
                source: plan.change.source,
                decision: if plan.decision == Decision::Apply { "repair" } else { plan.decision.as_str() },
                reason: None,
                fields: plan.fields.iter().map(|f| m.fields[*f].name.clone()).collect(),
            });
        }
        Ok(out)
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
        // A create of a record reconcile could not tell apart from others the target holds is
        // not written: it would copy one of them. Dead-lettered instead, naming the candidates.
        let held: Vec<Option<String>> = planned
            .iter()
            .map(|p| {
                let entity = &self.mappings.entities[p.change.entity].entity;
                (p.decision == Decision::Apply && p.create && p.change.op == ChangeOp::Upsert)
                    .then(|| self.prefetched.ambiguous.get(&(entity.clone(), p.change.key.clone())).cloned())
                    .flatten()
            })
            .collect();
        // Echo recognition must survive a crash between the target's commit and the state's.
        let pending: Vec<(String, String, &'static str, i64, serde_json::Value)> = planned
            .iter()
            .zip(&held)
            .filter(|(p, held)| p.decision == Decision::Apply && held.is_none())
            .map(|(p, _)| p)
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
            .zip(&held)
            .map(|(p, held)| {
                (p.decision == Decision::Apply && held.is_none()).then(|| Write {
                    mapping: &mappings.entities[p.change.entity],
                    op: p.change.op,
                    key: &p.change.key,
                    record: p.change.record.as_ref(),
                    fields: &p.fields,
                    create: p.create,
                    target_absent: p.target_absent,
                    target_id: p.target_id.as_deref(),
                    // Only Odoo finishes a write whose sender stopped (the ERP's transaction dies
                    // with its connection).
                    in_flight_for: (target == System::Odoo)
                        .then(|| {
                            let id = (
                                mappings.entities[p.change.entity].entity.clone(),
                                p.change.key.clone(),
                                target.as_str().to_string(),
                            );
                            self.prefetched.known.get(&id).and_then(|k| k.pending_for)
                        })
                        .flatten(),
                })
            })
            .collect();
        let mut outcomes = match target {
            System::Odoo => self.odoo.apply(&mappings, &changes).await?,
            System::Legacy => self.legacy.apply(&mappings, &changes).await?,
        };
        drop(changes);
        for (outcome, held) in outcomes.iter_mut().zip(held) {
            if let Some(why) = held {
                *outcome = Err(crate::sink::ApplyError::Dead {
                    field: None,
                    reason: format!(
                        "not created in {}: reconcile found it ambiguous ({why}); bind it and write the ERP's version with `millrace reconcile --pair ENTITY:KEY=ODOO_ID --repair --apply`",
                        target.as_str()
                    ),
                });
            }
        }
        let reverted = self.revert(source, &planned).await?;
        for ((plan, outcome), reverted) in planned.into_iter().zip(outcomes).zip(reverted) {
            if self.archive.is_some() || self.batch.repair {
                let row = self.archive_row(&plan, &outcome);
                if self.batch.repair {
                    let m = self.mapping(&plan.change);
                    self.repair_log.push(RepairLogEntry {
                        key: row.key.clone(),
                        source: row.source,
                        decision: row.decision,
                        reason: row.reason.clone(),
                        fields: plan.fields.iter().map(|f| m.fields[*f].name.clone()).collect(),
                    });
                }
                if self.archive.is_some() {
                    archived.push(row);
                }
            }
            let revert = reverted
                .map(|outcome| (plan.change.clone(), plan.conflict_fields.clone(), plan.revert.clone(), outcome));
            self.record(plan, outcome, writes, summary);
            if let Some((change, fields, Some(owner), outcome)) = revert {
                self.record_revert(&change, &fields, &owner, outcome, writes);
            }
        }
        Ok(())
    }

    /// Policy `revert`: writes the owner's values of the fields a source changed without
    /// owning them back to that source. Each planned change's outcome: `None` when it has
    /// nothing to revert.
    async fn revert(
        &mut self,
        source: System,
        planned: &[Planned],
    ) -> Result<Vec<Option<crate::sink::Outcome>>, SyncError> {
        if planned.iter().all(|p| p.revert.is_none()) {
            return Ok(vec![None; planned.len()]);
        }
        let mappings = self.mappings.clone();
        let reverts: Vec<Option<Write>> = planned
            .iter()
            .map(|p| {
                p.revert.as_ref().map(|owner| Write {
                    mapping: &mappings.entities[p.change.entity],
                    op: ChangeOp::Upsert,
                    key: &p.change.key,
                    record: Some(owner),
                    fields: &p.conflict_fields,
                    create: false,
                    target_absent: false,
                    target_id: p.change.source_id.as_deref(),
                    in_flight_for: None,
                })
            })
            .collect();
        let outcomes = match source {
            System::Odoo => self.odoo.apply(&mappings, &reverts).await?,
            System::Legacy => self.legacy.apply(&mappings, &reverts).await?,
        };
        Ok(reverts.iter().zip(outcomes).map(|(w, outcome)| w.as_ref().map(|_| outcome)).collect())
    }
}
