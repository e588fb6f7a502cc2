//! One canonical change as a bus message: a JSON object with the archive's fields, on subject
//! `millrace.<pipeline>.<system>.<entity>`, with a `Nats-Msg-Id` derived from its source
//! position and key. docs/DESIGN.md §11 documents the schema for other consumers.
//!
//! Messages of one source batch (an Odoo transaction, or a part of a large one; a part of a
//! legacy poll) carry the same `batch`, and its last one `batch_end`: `apply` decides a batch
//! together, as `run` does.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::mapping::{ChangeOp, Mappings, Record, System};
use crate::sync::{BadInput, BatchMeta, Change, Input};

/// The payload's version; a consumer rejects one it does not know.
pub const SCHEMA: u32 = 1;

/// The payload, as published.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Payload {
    pub schema: u32,
    /// `odoo` or `legacy`: the system the change was read from (the archive's `_source_system`).
    pub source_system: String,
    pub entity: String,
    /// `upsert` or `delete` (the archive's `_op`); a row that could not be read is `bad`.
    pub op: String,
    /// The canonical key (the archive's `_key`).
    pub key: String,
    /// The entity's fields as the source holds them now (decimals as exact strings, dates
    /// ISO 8601); `null` for a delete.
    pub record: Option<serde_json::Value>,
    /// Where the change sits in its source: the commit LSN (Odoo), or the change-detection
    /// version and row key (legacy) (`_position`).
    pub position: String,
    /// The Odoo row id, when the source is Odoo.
    pub source_id: Option<String>,
    /// Written by millrace itself (an echo of its own write, counted and not applied back).
    pub ours: bool,
    /// Odoo: last written by millrace's integration user through Odoo's API.
    pub by_integration_user: bool,
    /// Odoo: the transaction's commit time (`_commit_ts`) and id (`_xid`).
    pub commit_ts: Option<DateTime<Utc>>,
    pub xid: Option<u32>,
    /// Odoo: with a large transaction sent in parts, the row changes handled once this part is.
    pub txn_part: Option<u64>,
    /// When capture read it (`_captured_at`).
    pub captured_at: DateTime<Utc>,
    /// The source batch the change belongs to, and whether it is the batch's last message.
    pub batch: String,
    pub batch_end: bool,
    /// With op `bad`: the field at fault, if known, and why the row could not be read.
    pub bad_field: Option<String>,
    pub bad_reason: Option<String>,
}

/// A message ready to publish.
pub struct Outgoing {
    pub subject: String,
    pub msg_id: String,
    pub payload: Vec<u8>,
}

/// The message of one input of a batch.
pub fn encode(
    mappings: &Mappings,
    subject_of: impl Fn(&str, &str) -> String,
    input: &Input,
    meta: &BatchMeta,
    batch: &str,
    batch_end: bool,
) -> Outgoing {
    // What every message of the batch carries; the change's own fields below.
    let base = Payload {
        schema: SCHEMA,
        source_system: String::new(),
        entity: String::new(),
        op: String::new(),
        key: String::new(),
        record: None,
        position: String::new(),
        source_id: None,
        ours: false,
        by_integration_user: false,
        commit_ts: meta.commit_ts,
        xid: meta.xid,
        txn_part: meta.txn_part,
        captured_at: Utc::now(),
        batch: batch.into(),
        batch_end,
        bad_field: None,
        bad_reason: None,
    };
    let payload = match input {
        Input::Change(change) => {
            let m = &mappings.entities[change.entity];
            Payload {
                source_system: change.source.as_str().into(),
                entity: m.entity.clone(),
                op: change.op.as_str().into(),
                key: change.key.clone(),
                record: change.record.as_ref().map(|r| r.to_json(m)),
                position: change.position.clone(),
                source_id: change.source_id.clone(),
                ours: change.ours,
                by_integration_user: change.by_integration_user,
                ..base
            }
        }
        Input::Bad(bad) => Payload {
            source_system: bad.source.as_str().into(),
            entity: bad.entity.clone(),
            op: "bad".into(),
            key: bad.key.clone(),
            position: bad.position.clone(),
            bad_field: bad.field.clone(),
            bad_reason: Some(bad.reason.clone()),
            ..base
        },
    };
    let msg_id = msg_id(&payload, input);
    let subject = subject_of(&payload.source_system, &subject_token(&payload.entity));
    // A payload of plain strings, numbers and maps always serializes.
    let payload = serde_json::to_vec(&payload).unwrap_or_default();
    Outgoing { subject, msg_id, payload }
}

/// An entity name as one subject token (NATS tokens cannot hold '.', ' ', '*' or '>').
fn subject_token(entity: &str) -> String {
    entity.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect()
}

/// The de-duplication id: the same change published again (capture restarted before its
/// position was acknowledged) has the same id and is dropped by JetStream. Odoo: the commit LSN
/// (and part), entity, key and operation. Legacy: the version and key the poll read, and the
/// content's fingerprint (a re-poll by hash finds the same version for changed content).
fn msg_id(payload: &Payload, input: &Input) -> String {
    let content = match input {
        Input::Change(Change { record: Some(record), .. }) if payload.source_system == "legacy" => {
            format!(":{:x}", record.fingerprint())
        }
        _ => String::new(),
    };
    let part = payload.txn_part.map(|p| format!("+{p}")).unwrap_or_default();
    format!(
        "{}:{}{part}:{}:{}:{}{content}",
        payload.source_system, payload.position, payload.entity, payload.op, payload.key
    )
}

/// A message that cannot be turned back into a change: dead-lettered with this reason.
#[derive(Debug, thiserror::Error)]
#[error("bus message {subject} (stream sequence {sequence}): {reason}")]
pub struct UndecodableMessage {
    pub subject: String,
    pub sequence: u64,
    pub reason: String,
}

/// A message read back: the input and what `apply` needs of its batch.
pub struct Incoming {
    pub input: Input,
    pub system: System,
    pub batch: String,
    pub batch_end: bool,
    pub meta: BatchMeta,
    pub position: String,
}

/// Reads a message back into the engine's input. A message that cannot be read (another
/// schema, an entity this side has no mapping for, a field of the wrong type) becomes a dead
/// letter naming the subject, sequence and reason: the pipeline goes on.
pub fn decode(mappings: &Mappings, subject: &str, sequence: u64, bytes: &[u8]) -> Incoming {
    let fail = |reason: String| UndecodableMessage { subject: subject.into(), sequence, reason };
    let parsed = serde_json::from_slice::<Payload>(bytes).map_err(|e| fail(format!("not a millrace change: {e}")));
    let payload = match parsed {
        Ok(p) if p.schema != SCHEMA => {
            Err((Some(p.clone()), fail(format!("schema {} (this millrace reads {SCHEMA})", p.schema))))
        }
        Ok(p) => Ok(p),
        Err(e) => Err((None, e)),
    };
    let meta_of = |p: &Payload| BatchMeta {
        commit_ts: p.commit_ts,
        xid: p.xid,
        replayable: true,
        txn_part: p.txn_part,
        ..BatchMeta::default()
    };
    let bad = |p: Option<&Payload>, error: UndecodableMessage| {
        let system = p.and_then(|p| System::parse(&p.source_system)).unwrap_or(System::Odoo);
        Incoming {
            input: Input::Bad(BadInput {
                entity: p.map(|p| p.entity.clone()).unwrap_or_else(|| subject.rsplit('.').next().unwrap_or("").into()),
                source: system,
                key: p.map(|p| p.key.clone()).unwrap_or_else(|| format!("{subject}#{sequence}")),
                position: p.map(|p| p.position.clone()).unwrap_or_else(|| sequence.to_string()),
                field: None,
                reason: error.to_string(),
            }),
            system,
            // Alone in a batch of its own: whatever it belonged to cannot be known.
            batch: p.map(|p| p.batch.clone()).unwrap_or_else(|| format!("undecodable#{sequence}")),
            batch_end: p.map(|p| p.batch_end).unwrap_or(true),
            meta: p.map(meta_of).unwrap_or_default(),
            position: p.map(|p| p.position.clone()).unwrap_or_default(),
        }
    };
    let p = match payload {
        Ok(p) => p,
        Err((p, error)) => return bad(p.as_ref(), error),
    };
    let Some(system) = System::parse(&p.source_system) else {
        return bad(Some(&p), fail(format!("unknown source system {:?}", p.source_system)));
    };
    let meta = meta_of(&p);
    if p.op == "bad" {
        return Incoming {
            input: Input::Bad(BadInput {
                entity: p.entity.clone(),
                source: system,
                key: p.key.clone(),
                position: p.position.clone(),
                field: p.bad_field.clone(),
                reason: p.bad_reason.clone().unwrap_or_default(),
            }),
            system,
            batch: p.batch.clone(),
            batch_end: p.batch_end,
            meta,
            position: p.position.clone(),
        };
    }
    let Some(index) = mappings.entities.iter().position(|m| m.entity == p.entity) else {
        return bad(Some(&p), fail(format!("no mapping for entity {:?} on this side", p.entity)));
    };
    let op = match p.op.as_str() {
        "upsert" => ChangeOp::Upsert,
        "delete" => ChangeOp::Delete,
        other => return bad(Some(&p), fail(format!("unknown op {other:?}"))),
    };
    let record = match &p.record {
        None => None,
        Some(json) => match Record::from_json(&mappings.entities[index], json) {
            Ok(record) => Some(record),
            Err(reason) => return bad(Some(&p), fail(format!("record of {}: {reason}", p.entity))),
        },
    };
    Incoming {
        input: Input::Change(Change {
            entity: index,
            source: system,
            op,
            key: p.key.clone(),
            record,
            position: p.position.clone(),
            ours: p.ours,
            by_integration_user: p.by_integration_user,
            source_id: p.source_id.clone(),
            dead_letter: None,
        }),
        system,
        batch: p.batch,
        batch_end: p.batch_end,
        meta,
        position: p.position,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Value;

    fn mappings() -> Mappings {
        Mappings::load_dir(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings"))
            .expect("shipped mappings")
    }

    fn subject(system: &str, entity: &str) -> String {
        format!("millrace.p.{system}.{entity}")
    }

    #[test]
    fn a_change_comes_back_as_it_went() {
        let mappings = mappings();
        let index = mappings.entities.iter().position(|m| m.entity == "production_order").expect("production_order");
        let m = &mappings.entities[index];
        let mut values = vec![Value::Null; m.fields.len()];
        values[m.key[0]] = Value::Text("MO00000042".into());
        let change = Change {
            entity: index,
            source: System::Odoo,
            op: ChangeOp::Upsert,
            key: "[\"MO00000042\"]".into(),
            record: Some(Record { values }),
            position: "0/16B3748".into(),
            ours: false,
            by_integration_user: true,
            source_id: Some("42".into()),
            dead_letter: None,
        };
        let meta = BatchMeta { xid: Some(77), txn_part: Some(3), ..BatchMeta::default() };
        let out = encode(&mappings, subject, &Input::Change(change.clone()), &meta, "odoo:0/16B3748+3", true);
        assert_eq!(out.subject, "millrace.p.odoo.production_order");
        assert_eq!(out.msg_id, "odoo:0/16B3748+3:production_order:upsert:[\"MO00000042\"]");
        let back = decode(&mappings, &out.subject, 9, &out.payload);
        assert_eq!(
            (back.batch.as_str(), back.batch_end, back.meta.xid, back.meta.txn_part),
            ("odoo:0/16B3748+3", true, Some(77), Some(3))
        );
        match back.input {
            Input::Change(c) => {
                assert_eq!(
                    (c.entity, c.key, c.position, c.source_id),
                    (index, change.key, change.position, change.source_id)
                );
                assert!(c.by_integration_user);
                assert_eq!(c.record.map(|r| r.values), change.record.map(|r| r.values));
            }
            Input::Bad(bad) => panic!("decoded as a bad input: {}", bad.reason),
        }
    }

    #[test]
    fn a_message_that_cannot_be_read_is_a_dead_letter_naming_it() {
        let mappings = mappings();
        for (payload, says) in
            [(b"not json".to_vec(), "not a millrace change"), (br#"{"schema": 1}"#.to_vec(), "not a millrace change")]
        {
            let back = decode(&mappings, "millrace.p.odoo.item", 12, &payload);
            match back.input {
                Input::Bad(bad) => {
                    assert!(bad.reason.contains("millrace.p.odoo.item") && bad.reason.contains("12"), "{}", bad.reason);
                    assert!(bad.reason.contains(says), "{}", bad.reason);
                }
                Input::Change(_) => panic!("{payload:?} decoded as a change"),
            }
        }
        let index = mappings.entities.iter().position(|m| m.entity == "production_order").expect("production_order");
        let change = Change {
            entity: index,
            source: System::Legacy,
            op: ChangeOp::Delete,
            key: "[\"MO1\"]".into(),
            record: None,
            position: "v1 k".into(),
            ours: false,
            by_integration_user: false,
            source_id: None,
            dead_letter: None,
        };
        let out = encode(&mappings, subject, &Input::Change(change), &BatchMeta::default(), "b", true);
        let text = String::from_utf8(out.payload).unwrap().replace("\"production_order\"", "\"no_such_entity\"");
        match decode(&mappings, &out.subject, 5, text.as_bytes()).input {
            Input::Bad(bad) => {
                assert!(bad.reason.contains("no mapping for entity \"no_such_entity\""), "{}", bad.reason)
            }
            Input::Change(_) => panic!("an unknown entity decoded"),
        }
    }
}
