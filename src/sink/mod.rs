//! Sinks: applying decided changes to a target system, idempotently, in batched transactions.
//!
//! Every sink implements [`Sink`]: it takes the changes `sync` decided to apply and returns each
//! one's outcome (written, parked until a dependency arrives, or dead-lettered with a reason);
//! it never decides whether a change should be applied. `postgres` writes into Odoo's database;
//! `erp` into the legacy database, through `erp_db` (the engine's connection there: lookups,
//! reads by key, the batch transaction) and `erp_sql` (the statements each dialect needs).

pub mod erp;
pub mod erp_db;
pub mod erp_sql;
pub mod odoo_actions;
pub mod odoo_rows;
pub mod orm;

use std::sync::Arc;

use crate::mapping::{ChangeOp, Mapping, Mappings, Record, System};

/// One accepted change, as its sink writes it.
#[derive(Debug, Clone, Copy)]
pub struct Write<'a> {
    pub mapping: &'a Mapping,
    pub op: ChangeOp,
    /// The entity's canonical key.
    pub key: &'a str,
    /// The entity as the source holds it (upserts).
    pub record: Option<&'a Record>,
    /// The fields to write on an existing target row.
    pub fields: &'a [usize],
    /// Whether a missing target row may be created.
    pub create: bool,
    /// The target was searched for the key while deciding and has no row.
    pub target_absent: bool,
    /// The target row's id when known (Odoo).
    pub target_id: Option<&'a str>,
    /// How long ago a write of this key was first sent without its outcome being recorded (a
    /// restart or a failed batch came between): the target may still commit it.
    pub in_flight_for: Option<std::time::Duration>,
}

/// Why a change could not be written.
#[derive(Debug, Clone, PartialEq)]
pub enum ApplyError {
    /// A referenced row is not there yet: park the change.
    Park(String),
    /// A write of the record sent earlier (before a restart or a failed batch) may still be
    /// committed by the target: park the change and look for the record again later.
    InFlight(String),
    /// The change can never be written as it is: dead-letter it.
    Dead { field: Option<String>, reason: String },
    /// The database is unreachable or busy: retry the batch.
    Transient(String),
}

/// A change's outcome: written (with the target row's id when the sink learnt it), or not.
pub type Outcome = Result<Option<String>, ApplyError>;

/// The target cannot be written at all: nothing of the batch is committed, and it is retried
/// whole.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SinkError {
    #[error("{system} is unavailable: {message}")]
    Unavailable { system: &'static str, message: String },
}

/// A target system changes are applied to.
#[allow(async_fn_in_trait)]
pub trait Sink {
    /// Writes the batch's changes (`None`: a change not to apply, whose outcome is `Ok(None)`) in
    /// one transaction and returns each one's outcome, in order.
    async fn apply(
        &mut self,
        mappings: &Arc<Mappings>,
        changes: &[Option<Write<'_>>],
    ) -> Result<Vec<Outcome>, SinkError>;
}

/// Where writes into Odoo go: its API ([`orm::OrmSink`]), as the integration user `[odoo.api]`
/// names. Nothing writes Odoo's tables with SQL: a row written that way skips everything Odoo's
/// logic does beside it (valuation, computed fields, stock). Without `[odoo.api]` nothing is
/// written into Odoo, and each change bound there is dead-lettered saying so.
pub enum OdooTarget {
    Api(Box<orm::OrmSink>),
    NotConfigured,
}

impl OdooTarget {
    /// Connects the writer the configuration names.
    pub async fn connect(config: &crate::config::OdooConfig) -> Result<OdooTarget, SinkError> {
        match &config.api {
            Some(api) => Ok(OdooTarget::Api(Box::new(orm::OrmSink::connect(api, &config.conn).await?))),
            None => Ok(OdooTarget::NotConfigured),
        }
    }

    pub fn is_closed(&self) -> bool {
        match self {
            OdooTarget::Api(sink) => sink.is_closed(),
            OdooTarget::NotConfigured => false,
        }
    }

    /// The Odoo user millrace writes as (`write_uid` of its writes).
    pub fn integration_uid(&self) -> Option<i64> {
        match self {
            OdooTarget::Api(sink) => Some(sink.uid()),
            OdooTarget::NotConfigured => None,
        }
    }
}

impl Sink for OdooTarget {
    async fn apply(
        &mut self,
        mappings: &Arc<Mappings>,
        changes: &[Option<Write<'_>>],
    ) -> Result<Vec<Outcome>, SinkError> {
        match self {
            OdooTarget::Api(sink) => sink.apply(mappings, changes).await,
            OdooTarget::NotConfigured => Ok(changes
                .iter()
                .map(|w| match w {
                    None => Ok(None),
                    Some(w) => Err(ApplyError::Dead {
                        field: None,
                        reason: format!(
                            "{} {}: not written into Odoo: millrace writes there only through Odoo's API, and the \
                             configuration has no [odoo.api] (add it, then `millrace dlq retry`)",
                            w.mapping.entity, w.key
                        ),
                    }),
                })
                .collect()),
        }
    }
}

/// A dead letter's reason, led by the record it is about (`item ["A1"]: …`) unless it already is.
pub fn about_record(m: &Mapping, key: &str, reason: String) -> String {
    if reason.starts_with(&m.entity) {
        reason
    } else {
        format!("{} {key}: {reason}", m.entity)
    }
}

/// The field whose column a database message names (`column 'ITEM_NO'`, `"default_code"`).
pub fn field_named_in(m: &Mapping, system: System, message: &str) -> Option<String> {
    let lower = message.to_ascii_lowercase();
    m.side(system).columns.iter().find_map(|c| {
        let column = c.column.to_ascii_lowercase();
        let quoted = [format!("'{column}'"), format!("\"{column}\""), format!("`{column}`")];
        quoted.iter().any(|q| lower.contains(q.as_str())).then(|| m.fields[c.field].name.clone())
    })
}
