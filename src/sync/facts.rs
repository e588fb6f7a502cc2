//! Gathering what [`decide::decide`] rules on: the batch's prefetched control state, and the
//! rows the rules ask for, read when (and only when) they ask.

use super::decide::{self, Facts, Row, Step, TargetRow};
use super::{Change, Engine, Planned, SyncError};
use crate::mapping::{Mapping, Record, System};
use crate::sink::odoo_rows::KeySearch;

impl Engine {
    /// Decides one change: the rules over the batch's prefetched control state (read for the
    /// whole batch before deciding: [`Engine::process`]), with the target's row, or the ERP's
    /// row as it is now, read when the rules ask for it.
    pub(crate) async fn decide(&mut self, change: Change) -> Result<Planned, SyncError> {
        let mappings = self.mappings.clone();
        let m = &mappings.entities[change.entity];
        let source = change.source;
        let target = source.other();
        let mut facts = Facts::default();
        // millrace's own changes are echoes whatever is known: their keys were not prefetched.
        if !change.ours {
            let id = |system: System| (m.entity.clone(), change.key.clone(), system.as_str().to_string());
            // A repair compares with the target as it is now, not with what millrace last knew
            // (which is how the two sides came to differ unnoticed).
            if !self.batch.repair {
                facts.known_source = self.prefetched.known.get(&id(source));
                facts.known_target = self.prefetched.known.get(&id(target));
            }
            facts.xref_target = self.prefetched.xref.get(&id(target)).map(String::as_str);
        }
        let repair_fields: Option<Vec<usize>> = self
            .batch
            .repair_fields
            .as_ref()
            .map(|names| names.iter().filter_map(|n| m.fields.iter().position(|f| &f.name == n)).collect());
        facts.repair = self.batch.repair;
        facts.repair_fields = repair_fields.as_deref();
        loop {
            match decide::decide(m, &change, &facts) {
                Step::Decided(verdict) => return Ok(verdict.plan(change)),
                Step::NeedTargetRow if matches!(facts.target, Row::Unread) => {
                    let record = change.record.as_ref().expect("upserts carry a record");
                    let found = match target {
                        System::Odoo => read_odoo_row(self, m, &change.key, record, facts.xref_target)
                            .await?
                            .and_then(|(id, r)| Some(TargetRow { id: Some(id.to_string()), record: r.ok()? })),
                        System::Legacy => {
                            let row = match self.legacy_rows.get(&(m.entity.clone(), change.key.clone())) {
                                Some(row) => row.clone(),
                                None => self.legacy.read_by_key(m, &change.key).await?.and_then(Result::ok),
                            };
                            row.map(|record| TargetRow { id: None, record })
                        }
                    };
                    facts.target = found.map_or(Row::Absent, Row::Found);
                }
                Step::NeedCurrentLegacyRow if matches!(facts.current_legacy, Row::Unread) => {
                    let current = self.legacy.read_by_key(m, &change.key).await?.and_then(Result::ok);
                    facts.current_legacy = current.map_or(Row::Absent, Row::Found);
                }
                // The rules ask only for a row not read yet; asking again would loop.
                Step::NeedTargetRow | Step::NeedCurrentLegacyRow => {
                    unreachable!("decide asked again for a row it was given")
                }
            }
        }
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
            let search = KeySearch { client: &engine.odoo_read, resolved: None };
            match search.find_by_key(m, key, record).await {
                Ok(id) => id,
                Err(crate::sink::ApplyError::Transient(e)) => return Err(unavailable(e)),
                Err(_) => None,
            }
        }
    };
    let Some(id) = id else { return Ok(None) };
    let rows = crate::mapping::odoo::read_by_ids(&engine.odoo_read, m, &[id])
        .await
        .map_err(|e| unavailable(crate::pg::error_text(&e)))?;
    // Key fields Odoo does not store are the key's (the row was found for it). A repair sees
    // the row as Odoo holds it: a record bound without its key (a product without internal
    // reference) gets the owner's key written.
    let repair = engine.batch.repair;
    Ok(rows.into_iter().next().map(|(id, row)| {
        (
            id,
            row.map(|mut r| {
                if repair {
                    super::map::pin_bound_key(m, &mut r, key);
                } else {
                    super::map::pin_key(m, &mut r, key);
                }
                r
            }),
        )
    }))
}
