//! The legacy ERP as a [`Sink`]: each accepted change becomes the row writes its mapping says
//! (key, owned columns, defaults for new rows, a ledger row written once), checked before they
//! are sent (a value longer than its column, a reference the ERP does not hold), and the batch is
//! written in one transaction through [`LegacyDb`].

use std::sync::Arc;

use chrono::Utc;

use super::erp_db::LegacyDb;
use super::erp_sql::{ChangeFailure, LegacyWrite};
use super::{field_named_in, ApplyError, Outcome, Sink, SinkError, Write};
use crate::mapping::legacy::{stored_value, LookupCache, WriteValueError};
use crate::mapping::{ChangeOp, Mapping, Mappings, Record, System};
use crate::model::{value_text, Value};

impl Sink for LegacyDb {
    async fn apply(
        &mut self,
        mappings: &Arc<Mappings>,
        changes: &[Option<Write<'_>>],
    ) -> Result<Vec<Outcome>, SinkError> {
        if changes.iter().all(Option::is_none) {
            return Ok(changes.iter().map(|_| Ok(None)).collect());
        }
        self.ensure_lookups(mappings).await?;
        let present = self.referenced_values(changes).await?;
        let tables: Vec<String> = changes
            .iter()
            .flatten()
            .map(|w| w.mapping.legacy.table.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        self.ensure_limits(&tables).await?;
        let cache = self.cache();
        let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(changes.len());
        let mut batch: Vec<Vec<LegacyWrite>> = Vec::new();
        let mut batch_index = Vec::new();
        for (i, w) in changes.iter().enumerate() {
            let Some(w) = w else {
                outcomes.push(Some(Ok(None)));
                continue;
            };
            let m = w.mapping;
            let side = &m.legacy;
            let key_record = match w.record {
                Some(r) => r.clone(),
                None => Record::from_key(m, w.key),
            };
            let value = |c: &crate::mapping::Column| stored_value(m, c, &key_record, cache);
            let key: Result<Vec<(String, Option<String>)>, WriteValueError> = m
                .key
                .iter()
                .filter_map(|k| side.column_of(*k))
                .map(|c| value(c).map(|v| (c.column.clone(), v)))
                .collect();
            let writes = match (w.op, key) {
                (_, Err(e)) => Err(e),
                (ChangeOp::Delete, Ok(key)) => Ok(vec![LegacyWrite::Delete { table: side.table.clone(), key }]),
                (ChangeOp::Upsert, Ok(key)) => {
                    let Some(record) = w.record else {
                        outcomes.push(Some(Err(ApplyError::Dead {
                            field: None,
                            reason: format!("{} {}: an upsert without a record", m.entity, w.key),
                        })));
                        continue;
                    };
                    if let Some(missing) = missing_reference(m, w.key, record, cache, &present) {
                        outcomes.push(Some(Err(missing)));
                        continue;
                    }
                    let row = |fields: Option<&[usize]>| -> Result<Vec<(String, Option<String>)>, WriteValueError> {
                        let mut out = Vec::new();
                        for c in side.columns.iter().filter(|c| !c.read_only) {
                            if fields.is_some_and(|f| !f.contains(&c.field)) {
                                continue;
                            }
                            let v = stored_value(m, c, record, cache)?;
                            for column in std::iter::once(&c.column).chain(c.also.iter()) {
                                out.push((column.clone(), v.clone()));
                            }
                        }
                        Ok(out)
                    };
                    match (row(None), row(Some(w.fields))) {
                        (Ok(mut insert), Ok(update)) => {
                            for (column, value) in &side.defaults {
                                if !insert.iter().any(|(c, _)| c == column) {
                                    insert.push((column.clone(), legacy_default(value)));
                                }
                            }
                            let update = update.into_iter().filter(|(c, _)| !key.iter().any(|(k, _)| k == c)).collect();
                            if side.insert_only {
                                // A ledger row is written once; a number already taken is refused
                                // by the database (a dead letter), never overwritten.
                                Ok(vec![LegacyWrite::Insert { table: side.table.clone(), insert }])
                            } else {
                                Ok(vec![LegacyWrite::Upsert {
                                    table: side.table.clone(),
                                    key,
                                    insert,
                                    update,
                                    update_only: !w.create,
                                }])
                            }
                        }
                        (Err(e), _) | (_, Err(e)) => Err(e),
                    }
                }
            };
            let writes = writes.and_then(|rows| too_long(m, self.limits(&side.table), &rows).map_or(Ok(rows), Err));
            match writes {
                Ok(rows) => {
                    outcomes.push(None);
                    batch_index.push(i);
                    batch.push(rows);
                }
                Err(WriteValueError::Park(reason)) => {
                    outcomes.push(Some(Err(ApplyError::Park(format!("{} {}: {reason}", m.entity, w.key)))))
                }
                Err(WriteValueError::Dead { field, reason }) => outcomes.push(Some(Err(ApplyError::Dead {
                    reason: format!("{} {}: field {field}: {reason}", m.entity, w.key),
                    field: Some(field),
                }))),
            }
        }
        let rows = batch.len();
        let started = std::time::Instant::now();
        let results = self.write_batch(batch).await?;
        tracing::debug!(rows, took_us = started.elapsed().as_micros() as u64, "ERP writes committed");
        for (i, failure) in batch_index.into_iter().zip(results) {
            let Some(w) = &changes[i] else { continue };
            let m = w.mapping;
            outcomes[i] = Some(match failure {
                None => Ok(None),
                Some(ChangeFailure::Data(message)) => {
                    let field = field_named_in(m, System::Legacy, &message);
                    Err(ApplyError::Dead {
                        reason: format!(
                            "{} {}: {}{} refused the write: {message}",
                            m.entity,
                            w.key,
                            m.legacy.table,
                            field.as_ref().map(|f| format!(" (field {f})")).unwrap_or_default()
                        ),
                        field,
                    })
                }
                Some(ChangeFailure::Missing(message)) => {
                    Err(ApplyError::Dead { field: None, reason: format!("{} {}: {message}", m.entity, w.key) })
                }
            });
        }
        Ok(outcomes.into_iter().map(|o| o.unwrap_or(Ok(None))).collect())
    }
}

impl LegacyDb {
    /// The values the batch's applied upserts write into `references` columns that the ERP
    /// holds, per (table, column), read in bulk.
    async fn referenced_values(&mut self, changes: &[Option<Write<'_>>]) -> Result<ReferencedValues, SinkError> {
        let mut wanted: std::collections::BTreeMap<(String, String), std::collections::BTreeSet<String>> =
            Default::default();
        for w in changes.iter().flatten().filter(|w| w.op == ChangeOp::Upsert) {
            let m = w.mapping;
            let Some(record) = w.record else { continue };
            for c in &m.legacy.columns {
                let Some(r) = &c.references else { continue };
                if let Ok(Some(v)) = stored_value(m, c, record, self.cache()) {
                    wanted.entry((r.table.clone(), r.column.clone())).or_default().insert(v);
                }
            }
        }
        let mut present = ReferencedValues::new();
        for ((table, column), values) in wanted {
            let values: Vec<String> = values.into_iter().collect();
            let found = self.existing_values(&table, &column, &values).await?;
            present.insert((table, column), found);
        }
        Ok(present)
    }
}

/// The first value of the writes that its column cannot hold (the ERP would refuse it, or worse,
/// cut it), as the reason to dead-letter the change: field, column, value and limit.
fn too_long(
    m: &Mapping,
    limits: Option<&std::collections::HashMap<String, usize>>,
    writes: &[LegacyWrite],
) -> Option<WriteValueError> {
    use LegacyWrite;
    let limits = limits?;
    for write in writes {
        let (table, columns) = match write {
            LegacyWrite::Upsert { table, insert, update, .. } => (table, insert.iter().chain(update.iter())),
            LegacyWrite::Insert { table, insert } => (table, insert.iter().chain([].iter())),
            LegacyWrite::Delete { .. } => continue,
        };
        for (column, value) in columns {
            let Some(value) = value else { continue };
            let Some(limit) = limits.get(&column.to_ascii_uppercase()) else { continue };
            let length = value.trim_end_matches(' ').chars().count();
            if length > *limit {
                let field = field_named_in(m, System::Legacy, &format!("'{column}'")).unwrap_or_else(|| column.clone());
                return Some(WriteValueError::Dead {
                    reason: format!("{value:?} is {length} characters; {table}.{column} holds at most {limit}"),
                    field,
                });
            }
        }
    }
    None
}

/// Values present in referenced ERP tables: (table, column) → values.
type ReferencedValues = std::collections::HashMap<(String, String), std::collections::HashSet<String>>;

/// The first `references` column of `record` whose value the ERP does not hold: the change
/// waits for it (park) or is dead-lettered, naming the reference; it is never written.
fn missing_reference(
    m: &Mapping,
    key: &str,
    record: &Record,
    cache: &LookupCache,
    present: &ReferencedValues,
) -> Option<ApplyError> {
    for c in &m.legacy.columns {
        let Some(r) = &c.references else { continue };
        let Ok(Some(value)) = stored_value(m, c, record, cache) else { continue };
        let held = present.get(&(r.table.clone(), r.column.clone())).is_some_and(|v| v.contains(value.trim_end()));
        if held {
            continue;
        }
        let field = m.fields[c.field].name.clone();
        let reason = format!(
            "{} {key}: field {field} = {value:?}: the ERP has no {}.{} = this value",
            m.entity, r.table, r.column
        );
        return Some(if r.park_when_missing {
            ApplyError::Park(reason)
        } else {
            ApplyError::Dead { field: Some(field), reason }
        });
    }
    None
}

fn legacy_default(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::Text(s) if s == "$now" => Some(Utc::now().naive_utc().format("%Y-%m-%d %H:%M:%S").to_string()),
        other => Some(value_text(other)),
    }
}
