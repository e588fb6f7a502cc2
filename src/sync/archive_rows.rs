//! The archive's row of each decided change (and of each source row that could not be read).

use chrono::Utc;

use super::{BadInput, ChangeOp, Decision, Engine, Planned};
use crate::archive::ArchiveRow;
use crate::mapping::Record;
use crate::sink::ApplyError;

impl Engine {
    /// The archive's record of one decided change.
    pub(super) fn archive_row(&self, plan: &Planned, outcome: &Result<Option<String>, ApplyError>) -> ArchiveRow {
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
                Some(format!(
                    "{} does not own {}: not applied{}",
                    source.as_str(),
                    field_names(&plan.conflict_fields),
                    written_back(plan)
                )),
            ),
            Decision::Apply => match outcome {
                Ok(_) if self.batch.repair => {
                    ("repair", Some(format!("the owner's {} written over the other side's", field_names(&plan.fields))))
                }
                Ok(_) if plan.conflict_fields.is_empty() => ("apply", None),
                // Policies `reject` and `revert`: only the source's own fields were written
                // (`plan.fields`).
                Ok(_) if m.conflict != crate::mapping::ConflictPolicy::Accept => (
                    "apply",
                    Some(format!(
                        "applied {}; {} does not own {}: not applied{}",
                        field_names(&plan.fields),
                        source.as_str(),
                        field_names(&plan.conflict_fields),
                        written_back(plan)
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
                Err(ApplyError::Park(reason) | ApplyError::InFlight(reason)) => ("parked", Some(reason.clone())),
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
    pub(super) fn archive_bad(&self, bad: &BadInput) -> Option<ArchiveRow> {
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

/// Policy `revert`: the archive says the owner's values went back over the edit.
fn written_back(plan: &Planned) -> &'static str {
    if plan.revert.is_some() {
        ", the owner's value written back"
    } else {
        ""
    }
}
