//! Operator actions in the archive: a retry or discard of a dead letter is archived as a row of
//! the dead letter's entity, in the entity's own schema (so each entity folder stays one table to
//! a reader), told apart by its `_decision` (`operator:retry`, `operator:discard`) with who did
//! it in `_reason`. The entity's fields hold the dead-lettered record the action was about.
//!
//! Each action is one small file per entity and day, written at once and atomically:
//! `entity=<entity>/date=<YYYY-MM-DD>/operator-<audit id>.parquet`. Named by the audit row, a
//! file written twice (a retry after a failure) replaces itself; the replay rules of the
//! change files (`odoo-…`, `legacy-…`) never read these.
//!
//! The HTTP endpoint runs inside `millrace run`, whose archive it writes to: [`Archive::open`]
//! registers the archive of the process ([`register`]), and the endpoint finds it there
//! ([`opened`]).
//!
//! [`Archive::open`]: super::Archive::open

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDate, Utc};

use super::{file, schema, ArchiveError, ArchiveRow};
use crate::mapping::{Mappings, Record, System};

/// One dead letter an operator action touched, as archived.
#[derive(Debug, Clone)]
pub struct OperatorRecord {
    pub entity: String,
    pub key: String,
    /// The side the dead-lettered change came from.
    pub source: System,
    /// `u`, or `d` for a dead-lettered delete.
    pub op: &'static str,
    pub position: String,
    /// The dead-lettered record (canonical JSON), if it had one.
    pub record: Option<serde_json::Value>,
    /// `operator:retry`, `operator:discard`.
    pub decision: &'static str,
    /// Who did what, and why the change had been dead-lettered.
    pub reason: String,
    /// When the action was taken.
    pub at: DateTime<Utc>,
}

/// Writes an action's records, one file per entity and day; returns the files. A record of an
/// entity no longer mapped is left out (and reported).
pub fn write(
    dir: &Path,
    mappings: &Mappings,
    audit_id: i64,
    records: &[OperatorRecord],
) -> Result<Vec<PathBuf>, ArchiveError> {
    let mut groups: BTreeMap<(usize, NaiveDate), Vec<ArchiveRow>> = BTreeMap::new();
    for r in records {
        let Some(entity) = mappings.entities.iter().position(|m| m.entity == r.entity) else {
            tracing::warn!(entity = %r.entity, key = %r.key, audit = audit_id, "operator action on an entity no longer mapped: not archived");
            continue;
        };
        let m = &mappings.entities[entity];
        let after = r.record.as_ref().and_then(|json| Record::from_json(m, json).ok());
        groups.entry((entity, r.at.date_naive())).or_default().push(ArchiveRow {
            entity,
            key: r.key.clone(),
            source: r.source,
            source_table: m.side(r.source).table.clone(),
            op: r.op,
            decision: r.decision,
            reason: Some(r.reason.clone()),
            position: r.position.clone(),
            commit_ts: None,
            xid: None,
            captured_at: r.at,
            after,
            before: None,
            replayable: false,
            txn_part: None,
        });
    }
    let mut written = Vec::new();
    for ((entity, day), rows) in groups {
        let m = &mappings.entities[entity];
        let mut builder = schema::RowsBuilder::new(m);
        for row in &rows {
            builder.push(m, row);
        }
        let batch = builder.finish(m)?;
        let path = dir
            .join(format!("entity={}", m.entity))
            .join(format!("date={}", day.format("%Y-%m-%d")))
            .join(format!("operator-{audit_id:016}.parquet"));
        let mut out = file::ParquetFile::create(&path, batch.schema())?;
        out.write(&batch)?;
        out.commit()?;
        written.push(path);
    }
    Ok(written)
}

/// The archive this process has open: its directory and mappings.
static OPENED: Mutex<Option<(u64, PathBuf, Arc<Mappings>)>> = Mutex::new(None);
static GENERATION: AtomicU64 = AtomicU64::new(1);

/// Held by an open [`Archive`](super::Archive): while it lives, [`opened`] names that archive.
#[derive(Debug)]
pub struct Registration(u64);

impl Drop for Registration {
    fn drop(&mut self) {
        let mut opened = OPENED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if opened.as_ref().is_some_and(|(generation, _, _)| *generation == self.0) {
            *opened = None;
        }
    }
}

/// Makes `dir` the archive operator actions of this process are written to.
pub fn register(dir: &Path, mappings: Arc<Mappings>) -> Registration {
    let generation = GENERATION.fetch_add(1, Ordering::SeqCst);
    let mut opened = OPENED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    *opened = Some((generation, dir.to_path_buf(), mappings));
    Registration(generation)
}

/// The archive this process has open, if any.
pub fn opened() -> Option<(PathBuf, Arc<Mappings>)> {
    let opened = OPENED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    opened.as_ref().map(|(_, dir, mappings)| (dir.clone(), mappings.clone()))
}
