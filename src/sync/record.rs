//! A batch's outcomes as control-state writes: what becomes known of each side, the
//! cross-references, conflicts, parked changes and dead letters, and the decision counts.

use chrono::Utc;

use super::map;
use super::{BatchSummary, ChangeOp, Decision, Engine, Planned};
use crate::mapping::System;
use crate::sink::ApplyError;
use crate::state::sync::{DeadLetter, KnownWrite, NewConflict, Parked, StateWrites, XrefWrite};

impl Engine {
    pub(super) fn record(
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
                crate::mapping::ConflictPolicy::Revert => "revert",
            },
            record: record_json.clone(),
            position: change.position.clone(),
        };
        // A parked change re-decided as anything but a write that parks it again is settled:
        // nothing is left to wait for. (The stream's and the polls' changes, replayable, and a
        // backfill's rows are decided fresh; only a retry of parked changes can be one.)
        let retried_park =
            !self.batch.replayable && !self.batch.snapshot && !self.batch.repair && change.dead_letter.is_none();
        if retried_park && plan.decision != Decision::Apply {
            w.unpark.push((entity.clone(), key.clone(), source.to_string()));
            // Whatever it waited for is over: no write of it is in flight.
            w.not_sent.push((entity.clone(), key.clone(), target));
        }
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
                // The target's row was found holding the change already (by its key, or by the
                // mapping's match fields): bound now, so a later rename on either side still
                // finds it.
                let bound = self.prefetched.xref.contains_key(&(entity.clone(), key.clone(), target.to_string()));
                if let (Some(id), Some(_), false) = (&plan.target_id, &change.record, bound) {
                    w.xref.push(XrefWrite {
                        entity: entity.clone(),
                        key: key.clone(),
                        system: target,
                        id: Some(id.clone()),
                    });
                }
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
                    w.count(&entity, source, if self.batch.repair { "repair" } else { "apply" });
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
                Err(error @ (ApplyError::Park(_) | ApplyError::InFlight(_))) => {
                    let (reason, waits_for) = match error {
                        ApplyError::InFlight(reason) => {
                            // A write of it may still land: what says so stays until it is found.
                            s.in_flight += 1;
                            (reason, "an earlier write of it to be found or over")
                        }
                        ApplyError::Park(reason) | ApplyError::Dead { reason, .. } | ApplyError::Transient(reason) => {
                            // Not sent: no write of it is in flight.
                            w.not_sent.push((entity.clone(), key.clone(), target));
                            (reason, "its dependency")
                        }
                    };
                    s.parked += 1;
                    w.count(&entity, source, "parked");
                    tracing::info!(entity = %entity, key = %key, source, position = %change.position, reason = %reason, waits_for, "parked");
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
                    // Refused or never sent: no write of it is in flight.
                    w.not_sent.push((entity.clone(), key.clone(), target));
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

    /// A revert's outcome: written, the source now holds its record with the owner's values
    /// of `fields` (so the same edit made again is a change again, and the revert's own echo
    /// is recognised); refused, a dead letter saying so.
    pub(super) fn record_revert(
        &self,
        change: &super::Change,
        fields: &[usize],
        owner: &crate::mapping::Record,
        outcome: Result<Option<String>, ApplyError>,
        w: &mut StateWrites,
    ) {
        let m = &self.mappings.entities[change.entity];
        let names: Vec<&str> = fields.iter().map(|f| m.fields[*f].name.as_str()).collect();
        let Some(plan_record) = change.record.as_ref() else { return };
        match outcome {
            Ok(_) => {
                let mut reverted = plan_record.clone();
                for f in fields {
                    reverted.values[*f] = owner.values[*f].clone();
                }
                tracing::info!(entity = %m.entity, key = %change.key, source = change.source.as_str(), fields = ?names, "ownership conflict: the owner's values written back");
                w.known.push(KnownWrite {
                    entity: m.entity.clone(),
                    key: change.key.clone(),
                    system: change.source.as_str(),
                    record: Some((reverted.to_json(m), reverted.fingerprint())),
                    position: change.position.clone(),
                    written: true,
                });
            }
            Err(ApplyError::Transient(_)) => {}
            Err(ApplyError::Park(reason) | ApplyError::InFlight(reason) | ApplyError::Dead { reason, .. }) => {
                tracing::error!(entity = %m.entity, key = %change.key, fields = ?names, reason = %reason, "ownership conflict: writing the owner's values back failed");
                w.dead_letters.push(DeadLetter {
                    id: 0,
                    entity: m.entity.clone(),
                    key: change.key.clone(),
                    source: change.source.as_str().into(),
                    // Retried, the edit is decided again, and reverted again.
                    op: "upsert".into(),
                    record: Some(plan_record.to_json(m)),
                    position: change.position.clone(),
                    field: fields.first().map(|f| m.fields[*f].name.clone()),
                    reason: format!("reverting {} to the owner's values: {reason}", names.join(", ")),
                    created_at: Utc::now(),
                    status: "open".into(),
                    resolution: None,
                });
            }
        }
    }
}
