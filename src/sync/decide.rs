//! Deciding one change (DESIGN §6): echo, stale, filtered, ownership conflict, or apply (which
//! the sink may still turn into parked or dead-lettered).
//!
//! The change is compared with what millrace last knew the source to hold for the key (or,
//! the first time a key is seen, with what the target holds now): only fields that differ are
//! candidates, only fields the source owns are written, and a create is only accepted from the
//! entity's system of record.
//!
//! [`decide`] is the rules alone: a pure function of the change, what is known of its key and
//! the mapping's ownership rules. What it needs read from a database (the target's row, the
//! ERP's row as it is now) it asks for ([`Step`]); the engine reads it and asks again
//! (`Engine::decide`, in `facts.rs`).

use super::{Change, ChangeOp, Planned};
use crate::mapping::{ConflictPolicy, Mapping, Record, System};
use crate::model::Value;
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

fn known_record(m: &Mapping, known: Option<&Known>) -> Option<Record> {
    known.and_then(|k| k.record.as_ref()).and_then(|json| Record::from_json(m, json).ok())
}

/// Fields stored on both sides (the only ones that can flow).
fn shared_fields(m: &Mapping) -> Vec<usize> {
    (0..m.fields.len()).filter(|f| m.odoo.column_of(*f).is_some() && m.legacy.column_of(*f).is_some()).collect()
}

/// Whether an Odoo row last written by millrace's integration user is millrace's own write (or
/// what Odoo did because of it: the stock moves of a production it recorded), not to be applied
/// back. Not when a field only Odoo owns differs from what millrace last knew of the row: only
/// a user's edit changes those, and the row was read after millrace wrote it again.
fn written_by_millrace(m: &Mapping, change: &Change, known: Option<&Known>) -> bool {
    let (Some(record), Some(known)) = (change.record.as_ref(), known_record(m, known)) else {
        return true;
    };
    !shared_fields(m).into_iter().any(|f| {
        m.may_change(f, record, System::Odoo)
            && !m.may_change(f, record, System::Legacy)
            && record.values[f] != known.values[f]
    })
}

/// A row the rules may need read from a database while deciding.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Row<T> {
    /// Not read (yet): the rules ask for it when they need it.
    #[default]
    Unread,
    /// Read: there is no such row (or it cannot be read whole).
    Absent,
    Found(T),
}

/// The target's row of a key.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetRow {
    /// Odoo's row id; `None` for an ERP row.
    pub id: Option<String>,
    pub record: Record,
}

/// What is known of a change's key when the rules are applied: the batch's prefetched control
/// state, and the rows read while deciding (once the rules asked for them).
#[derive(Debug, Clone, Default)]
pub struct Facts<'a> {
    /// What millrace last knew the source to hold for the key.
    pub known_source: Option<&'a Known>,
    /// What millrace last knew (or wrote) the target to hold for the key.
    pub known_target: Option<&'a Known>,
    /// The target row's id in the cross-reference.
    pub xref_target: Option<&'a str>,
    /// The target's row as it is now: read when nothing usable is known of the target
    /// ([`Step::NeedTargetRow`]).
    pub target: Row<TargetRow>,
    /// The source's row as the ERP holds it now, for a legacy change that touches fields the
    /// ERP does not own ([`Step::NeedCurrentLegacyRow`]).
    pub current_legacy: Row<Record>,
    /// A repair (`millrace reconcile --repair`): only the source's owned fields that differ from
    /// the target are written, and nothing is a conflict (the other side's owned fields are its
    /// own repair's).
    pub repair: bool,
    /// With `repair`: only these fields (`None`: every owned field).
    pub repair_fields: Option<&'a [usize]>,
}

/// What the rules decided for one change: everything [`Planned`] holds but the change itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub decision: Decision,
    /// Fields to write (upsert) on the target.
    pub fields: Vec<usize>,
    /// Whether a missing target row may be created.
    pub create: bool,
    /// The target was searched for the key while deciding and has no row.
    pub target_absent: bool,
    /// The target row id when known (Odoo).
    pub target_id: Option<String>,
    /// What the target will hold after the write, for echo recognition.
    pub expected: Option<Record>,
    /// Fields the source changed but does not own.
    pub conflict_fields: Vec<usize>,
    /// Policy `revert`: the target's values of the conflicting fields, to write back over the
    /// source's edit.
    pub revert: Option<Record>,
}

impl Verdict {
    fn new(decision: Decision) -> Verdict {
        Verdict {
            decision,
            fields: Vec::new(),
            create: false,
            target_absent: false,
            target_id: None,
            expected: None,
            conflict_fields: Vec::new(),
            revert: None,
        }
    }

    /// The change with what to do with it.
    pub(crate) fn plan(self, change: Change) -> Planned {
        Planned {
            change,
            decision: self.decision,
            fields: self.fields,
            create: self.create,
            target_absent: self.target_absent,
            target_id: self.target_id,
            expected: self.expected,
            conflict_fields: self.conflict_fields,
            revert: self.revert,
        }
    }
}

/// The outcome of applying the rules to what is known so far.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Decided(Verdict),
    /// Nothing usable is known of the target: read its row ([`Facts::target`]) and decide again.
    NeedTargetRow,
    /// A legacy change touches fields the ERP does not own: read the ERP's row as it is now
    /// ([`Facts::current_legacy`]) and decide again.
    NeedCurrentLegacyRow,
}

fn decided(decision: Decision) -> Step {
    Step::Decided(Verdict::new(decision))
}

/// Applies the rules of DESIGN §6 to one change of `m`'s entity. A pure function: it reads
/// nothing but its arguments, and asks for a row it needs that `facts` has not read yet (each
/// at most once: a row it asked for is never asked for again once read).
pub fn decide(m: &Mapping, change: &Change, facts: &Facts<'_>) -> Step {
    let source = change.source;
    let target = source.other();
    if change.ours {
        return decided(Decision::Echo);
    }
    let known_s = facts.known_source;
    let known_t = facts.known_target;
    let xref_t = facts.xref_target;
    if change.by_integration_user {
        if known_record(m, known_s).is_some() || xref_t.is_some() || !m.odoo.integration_rows_are_new {
            if written_by_millrace(m, change, known_s) {
                return decided(Decision::Echo);
            }
        } else {
            // Nothing known of the row, of an entity whose rows Odoo makes by itself while
            // running millrace's actions (the backorder of a production marked done): millrace
            // created it if the ERP holds its record; otherwise it is new to the ERP and flows.
            match &facts.target {
                Row::Unread => return Step::NeedTargetRow,
                Row::Found(_) => return decided(Decision::Echo),
                Row::Absent => {}
            }
        }
    }

    if change.op == ChangeOp::Delete {
        let known_anywhere = known_s.is_some_and(|k| k.record.is_some())
            || known_t.is_some_and(|k| k.record.is_some())
            || xref_t.is_some();
        if !known_anywhere && target == System::Odoo {
            return decided(Decision::Stale);
        }
        if m.side(target).on_delete == crate::mapping::OnDelete::Ignore {
            return decided(Decision::Filtered);
        }
        if source != m.owner && m.conflict != ConflictPolicy::Accept {
            let mut v = Verdict::new(Decision::Conflict);
            v.conflict_fields = m.key.clone();
            return Step::Decided(v);
        }
        let mut v = Verdict::new(Decision::Apply);
        v.target_id = xref_t.map(str::to_string);
        return Step::Decided(v);
    }

    let record = change.record.as_ref().expect("upserts carry a record");
    if !m.passes_filter(source, record) {
        return decided(Decision::Filtered);
    }
    let fingerprint = record.fingerprint();
    if let Some(k) = known_s {
        if k.pending_fingerprint == Some(fingerprint) {
            return decided(Decision::Echo);
        }
        if k.fingerprint == Some(fingerprint) {
            // The content millrace last wrote, seen again. From the ERP that is the write's own
            // echo (nothing marks the ERP's rows as millrace's but their content); from Odoo,
            // whose own writes carry millrace's origin and are recognised above, it is a user's
            // edit of something the mapping does not carry: nothing new.
            let decision = if k.written && source == System::Legacy { Decision::Echo } else { Decision::Stale };
            return decided(decision);
        }
        if source == System::Legacy && k.recent_written.contains(&fingerprint) {
            // A poll that read the row between two of millrace's writes: an earlier write of
            // its own, not a change made in the ERP (nothing is recorded: the latest write stays
            // what is known).
            return decided(Decision::Echo);
        }
    }
    let mut target_id = xref_t.map(str::to_string);
    let known_t_record = known_record(m, known_t);
    // What the target holds: as last known, or else its row as read now (Odoo: by the
    // cross-reference or else by the key's columns).
    let base_t: Option<&Record> = match (&known_t_record, &facts.target) {
        (Some(known), _) => Some(known),
        (None, Row::Unread) => return Step::NeedTargetRow,
        (None, Row::Absent) => None,
        (None, Row::Found(row)) => {
            if target_id.is_none() {
                target_id.clone_from(&row.id);
            }
            Some(&row.record)
        }
    };
    let base_s = known_record(m, known_s);
    let shared = shared_fields(m);
    let target_exists = base_t.is_some();
    let mut v = Verdict::new(Decision::Apply);
    // Odoo was just searched for the key (no cross-reference, nothing known) and has no row.
    v.target_absent = target == System::Odoo && !target_exists && target_id.is_none() && known_t.is_none();
    v.target_id = target_id;
    let base = base_s.as_ref().or(base_t);
    match base {
        Some(base) if target_exists => {
            // A write of millrace's that may or may not have committed before it stopped: a field
            // holding either what was known or what was being written has not changed.
            let pending =
                known_s.and_then(|k| k.pending_record.as_ref()).and_then(|json| Record::from_json(m, json).ok());
            // A field is written when it differs from what the target holds and either it changed
            // since the source's last known state, or the source owns it: an owned value the
            // target lacks (a change refused earlier while the other side owned the field, as a
            // produced quantity reported in Odoo while the shop floor owned it, then the order
            // closed) is caught up with the next change of the record.
            let differs_from_target = |f: &usize| base_t.is_none_or(|t| record.values[*f] != t.values[*f]);
            let changed: Vec<usize> = shared
                .iter()
                .copied()
                .filter(differs_from_target)
                .filter(|f| {
                    let moved = record.values[*f] != base.values[*f]
                        && pending.as_ref().is_none_or(|p| record.values[*f] != p.values[*f]);
                    moved || (base_t.is_some() && m.may_change(*f, record, source))
                })
                .collect();
            if changed.is_empty() {
                v.decision = Decision::Stale;
                return Step::Decided(v);
            }
            let (mut owned, mut foreign): (Vec<usize>, Vec<usize>) =
                changed.into_iter().partition(|f| m.may_change(*f, record, source));
            if facts.repair {
                // The other side's fields are its own repair's; a ledger row is never rewritten.
                foreign.clear();
                if let Some(only) = facts.repair_fields {
                    owned.retain(|f| only.contains(f));
                }
                if owned.is_empty() {
                    v.decision = Decision::Stale;
                    return Step::Decided(v);
                }
                if target == System::Legacy && m.legacy.insert_only {
                    v.decision = Decision::Filtered;
                    return Step::Decided(v);
                }
            }
            if source == System::Legacy && !foreign.is_empty() {
                // A poll can read a row just before millrace's own write to it commits and be
                // decided just after: its old values of the fields millrace wrote then look like
                // the ERP's edit of them. The row as it is now tells: if those fields no longer
                // hold what this change says, a later version of the row exists, and the poll
                // that reads it decides it (the ERP's own changes in it flow then).
                match &facts.current_legacy {
                    Row::Unread => return Step::NeedCurrentLegacyRow,
                    Row::Absent => {}
                    Row::Found(current) => {
                        if foreign.iter().any(|f| current.values[*f] != record.values[*f]) {
                            v.decision = Decision::Stale;
                            return Step::Decided(v);
                        }
                    }
                }
            }
            v.conflict_fields = foreign.clone();
            if m.conflict == ConflictPolicy::Revert && !foreign.is_empty() {
                // The owner's values (the target's) go back over the edit.
                if let Some(t) = base_t {
                    v.revert = Some(t.clone());
                }
            }
            v.fields = match m.conflict {
                ConflictPolicy::Reject | ConflictPolicy::Revert => owned,
                ConflictPolicy::Accept => owned.into_iter().chain(foreign).collect(),
            };
            if target == System::Legacy && m.legacy.insert_only {
                if known_t.is_some_and(|k| k.written) {
                    // A ledger row millrace wrote is never rewritten: corrections are new rows.
                    v.decision = Decision::Filtered;
                    return Step::Decided(v);
                }
                // The ERP holds another row under this number: the insert is refused by the
                // database and dead-lettered, never written over.
                v.create = true;
                v.fields = shared.clone();
                v.conflict_fields.clear();
            }
            if v.fields.is_empty() {
                v.decision = Decision::Conflict;
                return Step::Decided(v);
            }
        }
        _ => {
            // No row on the target: only the system of record creates (`revert` has no value
            // to put back here: it rejects). A repair of the other side's record does nothing.
            if facts.repair && source != m.owner {
                return decided(Decision::Stale);
            }
            if source != m.owner && m.conflict != ConflictPolicy::Accept {
                v.decision = Decision::Conflict;
                v.conflict_fields = shared.clone();
                return Step::Decided(v);
            }
            v.create = true;
            v.fields = shared.clone();
        }
    }
    // What the target will hold: its current values, with the written fields replaced.
    let target_side = m.side(target);
    let mut expected = vec![Value::Null; m.fields.len()];
    for (f, slot) in expected.iter_mut().enumerate() {
        if target_side.column_of(f).is_none() {
            continue;
        }
        *slot = if v.fields.contains(&f) || v.create {
            record.values[f].clone()
        } else {
            base_t.map(|t| t.values[f].clone()).unwrap_or(Value::Null)
        };
    }
    v.expected = Some(Record { values: expected });
    Step::Decided(v)
}

#[cfg(test)]
mod tests;
