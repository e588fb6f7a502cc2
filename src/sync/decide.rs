//! Deciding one change (DESIGN §6): echo, stale, filtered, ownership conflict, or apply (which
//! the sink may still turn into parked or dead-lettered).
//!
//! The change is compared with what millrace last knew the source to hold for the key (or,
//! the first time a key is seen, with what the target holds now): only fields that differ are
//! candidates, only fields the source owns are written, and a create is only accepted from the
//! entity's system of record.

use super::{Change, ChangeOp, Engine, Planned, SyncError};
use crate::mapping::{ConflictPolicy, Mapping, Record, System};
use crate::model::Value;
use crate::sink::postgres::OdooWriter;
use crate::state::sync::Known;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Apply,
    /// millrace's own write coming back.
    Echo,
    /// Nothing new: the content is what is already known or already on the other side.
    Stale,
    /// A change the source does not own: recorded, not applied.
    Conflict,
    /// The source side's `only` filter excludes it, or the target ignores deletes.
    Filtered,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Apply => "apply",
            Decision::Echo => "echo",
            Decision::Stale => "stale",
            Decision::Conflict => "conflict",
            Decision::Filtered => "filtered",
        }
    }
}

/// A record holding only the key fields of a key text (for deletes).
pub fn key_record(m: &Mapping, key: &str) -> Record {
    let mut values = vec![Value::Null; m.fields.len()];
    for (field, value) in m.key.iter().zip(crate::model::key_values(key)) {
        values[*field] = crate::mapping::transform::coerce(value.clone(), m.fields[*field].ty).unwrap_or(value);
    }
    Record { values }
}

fn known_record(m: &Mapping, known: &Option<Known>) -> Option<Record> {
    known.as_ref().and_then(|k| k.record.as_ref()).and_then(|json| Record::from_json(m, json).ok())
}

/// Fields stored on both sides (the only ones that can flow).
fn shared_fields(m: &Mapping) -> Vec<usize> {
    (0..m.fields.len()).filter(|f| m.odoo.column_of(*f).is_some() && m.legacy.column_of(*f).is_some()).collect()
}

fn plan(change: Change, decision: Decision) -> Planned {
    Planned {
        change,
        decision,
        fields: Vec::new(),
        create: false,
        target_absent: false,
        target_id: None,
        expected: None,
        conflict_fields: Vec::new(),
    }
}

/// The Odoo row of a key, by its cross-reference or else by the key's columns: its id and its
/// record (or the field that could not be read). `None` when Odoo has no such row.
pub(crate) async fn read_odoo_row(
    engine: &Engine,
    m: &Mapping,
    key: &str,
    record: &Record,
    xref: Option<&str>,
) -> Result<Option<(i64, Result<Record, crate::mapping::odoo::PartialRecord>)>, SyncError> {
    let unavailable = |e: String| SyncError::Unavailable { system: "odoo", message: e };
    let id = match xref.and_then(|x| x.parse::<i64>().ok()) {
        Some(id) => Some(id),
        None => {
            let catalog = crate::sink::postgres::Catalog::default();
            let writer = OdooWriter { catalog: &catalog, tx: &engine.odoo_read, resolved: None };
            match writer.find_by_key(m, key, record).await {
                Ok(id) => id,
                Err(crate::sink::ApplyError::Transient(e)) => return Err(unavailable(e)),
                Err(_) => None,
            }
        }
    };
    let Some(id) = id else { return Ok(None) };
    let rows =
        crate::mapping::odoo::read_by_ids(&engine.odoo_read, m, &[id]).await.map_err(|e| unavailable(e.to_string()))?;
    Ok(rows.into_iter().next())
}

pub(crate) async fn decide(engine: &mut Engine, change: Change) -> Result<Planned, SyncError> {
    let mappings = engine.mappings.clone();
    let m = &mappings.entities[change.entity];
    let source = change.source;
    let target = source.other();
    if change.ours {
        return Ok(plan(change, Decision::Echo));
    }
    // Read for the whole batch before deciding (Engine::process).
    let id = |system: System| (m.entity.clone(), change.key.clone(), system.as_str().to_string());
    let known_s = engine.prefetched.known.get(&id(source)).cloned();
    let known_t = engine.prefetched.known.get(&id(target)).cloned();
    let xref_t = engine.prefetched.xref.get(&id(target)).cloned();

    if change.op == ChangeOp::Delete {
        let known_anywhere = known_s.as_ref().is_some_and(|k| k.record.is_some())
            || known_t.as_ref().is_some_and(|k| k.record.is_some())
            || xref_t.is_some();
        if !known_anywhere && target == System::Odoo {
            return Ok(plan(change, Decision::Stale));
        }
        if m.side(target).on_delete == crate::mapping::OnDelete::Ignore {
            return Ok(plan(change, Decision::Filtered));
        }
        if source != m.owner && m.conflict == ConflictPolicy::Reject {
            let mut p = plan(change, Decision::Conflict);
            p.conflict_fields = m.key.clone();
            return Ok(p);
        }
        let mut p = plan(change, Decision::Apply);
        p.target_id = xref_t;
        return Ok(p);
    }

    let record = change.record.clone().expect("upserts carry a record");
    if !m.passes_filter(source, &record) {
        return Ok(plan(change, Decision::Filtered));
    }
    let fingerprint = record.fingerprint();
    if let Some(k) = &known_s {
        if k.pending_fingerprint == Some(fingerprint) {
            return Ok(plan(change, Decision::Echo));
        }
        if k.fingerprint == Some(fingerprint) {
            // The content millrace last wrote, seen again. From the ERP that is the write's own
            // echo (nothing marks the ERP's rows as millrace's but their content); from Odoo,
            // whose own writes carry millrace's origin and are recognised above, it is a user's
            // edit of something the mapping does not carry: nothing new.
            let decision = if k.written && source == System::Legacy { Decision::Echo } else { Decision::Stale };
            return Ok(plan(change, decision));
        }
        if source == System::Legacy && k.recent_written.contains(&fingerprint) {
            // A poll that read the row between two of millrace's writes: an earlier write of
            // its own, not a change made in the ERP (nothing is recorded: the latest write stays
            // what is known).
            return Ok(plan(change, Decision::Echo));
        }
    }
    let base_s = known_record(m, &known_s);
    let mut target_id = xref_t.clone();
    let mut base_t = known_record(m, &known_t);
    if base_t.is_none() {
        base_t = match target {
            System::Odoo => {
                let found = read_odoo_row(engine, m, &change.key, &record, xref_t.as_deref()).await?;
                found.and_then(|(id, r)| {
                    let r = r.ok()?;
                    if target_id.is_none() {
                        target_id = Some(id.to_string());
                    }
                    Some(r)
                })
            }
            System::Legacy => match engine.legacy_rows.get(&(m.entity.clone(), change.key.clone())) {
                Some(row) => row.clone(),
                None => engine.legacy.read_by_key(m, &change.key).await?.and_then(Result::ok),
            },
        };
    }
    let shared = shared_fields(m);
    let target_exists = base_t.is_some();
    let mut p = plan(change, Decision::Apply);
    // Odoo was just searched for the key (no cross-reference, nothing known) and has no row.
    p.target_absent = target == System::Odoo && !target_exists && target_id.is_none() && known_t.is_none();
    p.target_id = target_id;
    let base = base_s.as_ref().or(base_t.as_ref());
    match base {
        Some(base) if target_exists => {
            // A write of millrace's that may or may not have committed before it stopped: a field
            // holding either what was known or what was being written has not changed.
            let pending = known_s
                .as_ref()
                .and_then(|k| k.pending_record.as_ref())
                .and_then(|json| Record::from_json(m, json).ok());
            // A field is written when it differs from what the target holds and either it changed
            // since the source's last known state, or the source owns it: an owned value the
            // target lacks (a change refused earlier while the other side owned the field, as a
            // produced quantity reported in Odoo while the shop floor owned it, then the order
            // closed) is caught up with the next change of the record.
            let differs_from_target = |f: &usize| base_t.as_ref().is_none_or(|t| record.values[*f] != t.values[*f]);
            let changed: Vec<usize> = shared
                .iter()
                .copied()
                .filter(differs_from_target)
                .filter(|f| {
                    let moved = record.values[*f] != base.values[*f]
                        && pending.as_ref().is_none_or(|p| record.values[*f] != p.values[*f]);
                    moved || (base_t.is_some() && m.may_change(*f, &record, source))
                })
                .collect();
            if changed.is_empty() {
                p.decision = Decision::Stale;
                return Ok(p);
            }
            let (owned, foreign): (Vec<usize>, Vec<usize>) =
                changed.into_iter().partition(|f| m.may_change(*f, &record, source));
            if source == System::Legacy && !foreign.is_empty() {
                // A poll can read a row just before millrace's own write to it commits and be
                // decided just after: its old values of the fields millrace wrote then look like
                // the ERP's edit of them. The row as it is now tells: if those fields no longer
                // hold what this change says, a later version of the row exists, and the poll
                // that reads it decides it (the ERP's own changes in it flow then).
                if let Some(Ok(current)) = engine.legacy.read_by_key(m, &p.change.key).await? {
                    if foreign.iter().any(|f| current.values[*f] != record.values[*f]) {
                        p.decision = Decision::Stale;
                        return Ok(p);
                    }
                }
            }
            p.conflict_fields = foreign.clone();
            p.fields = match m.conflict {
                ConflictPolicy::Reject => owned,
                ConflictPolicy::Accept => owned.into_iter().chain(foreign).collect(),
            };
            if target == System::Legacy && m.legacy.insert_only {
                if known_t.as_ref().is_some_and(|k| k.written) {
                    // A ledger row millrace wrote is never rewritten: corrections are new rows.
                    p.decision = Decision::Filtered;
                    return Ok(p);
                }
                // The ERP holds another row under this number: the insert is refused by the
                // database and dead-lettered, never written over.
                p.create = true;
                p.fields = shared.clone();
                p.conflict_fields.clear();
            }
            if p.fields.is_empty() {
                p.decision = Decision::Conflict;
                return Ok(p);
            }
        }
        _ => {
            // No row on the target: only the system of record creates.
            if source != m.owner && m.conflict == ConflictPolicy::Reject {
                p.decision = Decision::Conflict;
                p.conflict_fields = shared.clone();
                return Ok(p);
            }
            p.create = true;
            p.fields = shared.clone();
        }
    }
    // What the target will hold: its current values, with the written fields replaced.
    let target_side = m.side(target);
    let mut expected = vec![Value::Null; m.fields.len()];
    for (f, slot) in expected.iter_mut().enumerate() {
        if target_side.column_of(f).is_none() {
            continue;
        }
        *slot = if p.fields.contains(&f) || p.create {
            record.values[f].clone()
        } else {
            base_t.as_ref().map(|t| t.values[f].clone()).unwrap_or(Value::Null)
        };
    }
    p.expected = Some(Record { values: expected });
    Ok(p)
}
