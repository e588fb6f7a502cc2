//! The map stage: source row changes → entity changes, through the mappings.
//!
//! Odoo: every row change of a transaction names the main rows it affects (a template rename
//! affects each of its variants); those are read once, whole, at the end of the transaction.
//! Legacy: a polled row is converted directly, with lookups through the batch's code tables.

use std::collections::BTreeSet;

use super::{BadInput, Change, ChangeOp, Engine, Input, SyncError};
use crate::mapping::legacy::record_from_row;
use crate::mapping::odoo::{affected_ids, int_of, read_by_ids};
use crate::mapping::transform::to_canonical;
use crate::mapping::{Mapping, System};
use crate::model::{Op, RowChange, TableName, Value};
use crate::source::legacy::convert::value_text;
use crate::source::legacy::poller::LegacyItem;

fn odoo_unavailable(e: tokio_postgres::Error) -> SyncError {
    SyncError::Unavailable { system: "odoo", message: e.to_string() }
}

/// The canonical key of a record, when every key field has a value.
fn key_of(m: &Mapping, record: &crate::mapping::Record) -> Option<String> {
    if m.key.iter().any(|k| record.values[*k].is_null()) {
        return None;
    }
    Some(m.key_text(record))
}

/// The entity changes of one committed Odoo transaction.
pub async fn odoo_inputs(
    engine: &Engine,
    changes: &[RowChange],
    position: &str,
    origin: &str,
) -> Result<Vec<Input>, SyncError> {
    let ours = changes.iter().any(|c| c.origin.as_deref() == Some(origin));
    let mut inputs = Vec::new();
    if ours {
        // millrace's own transaction coming back: each of its main-table rows is an echo, to be
        // counted and nothing else, so nothing is read (a large write would otherwise cost a
        // read-through per row for nothing).
        for change in changes {
            for (index, m) in engine.mappings.entities.iter().enumerate() {
                if TableName::parse(&m.odoo.table) != change.table {
                    continue;
                }
                let id = change
                    .after
                    .as_ref()
                    .or(change.before.as_ref())
                    .and_then(|r| r.get(&m.odoo.id_column))
                    .and_then(int_of)
                    .map(|id| id.to_string());
                inputs.push(Input::Change(Change {
                    entity: index,
                    source: System::Odoo,
                    op: if change.op == Op::Delete { ChangeOp::Delete } else { ChangeOp::Upsert },
                    key: format!("{}.id={}", m.odoo.table, id.as_deref().unwrap_or("?")),
                    record: None,
                    position: position.to_string(),
                    ours: true,
                    source_id: id,
                    dead_letter: None,
                }));
            }
        }
        return Ok(inputs);
    }
    let mut ids: Vec<BTreeSet<i64>> = vec![BTreeSet::new(); engine.mappings.entities.len()];
    for change in changes {
        for (index, m) in engine.mappings.entities.iter().enumerate() {
            let main = TableName::parse(&m.odoo.table) == change.table;
            match change.op {
                Op::Truncate => {
                    if main {
                        tracing::warn!(entity = %m.entity, table = %change.table, position, "TRUNCATE of a mapped table is not replicated; run a backfill or delete on the other side by hand");
                    }
                }
                Op::Delete if main => {
                    let Some(id) = change.before.as_ref().and_then(|r| r.get(&m.odoo.id_column)).and_then(int_of)
                    else {
                        continue;
                    };
                    let Some(key) = engine.state.xref_key(&m.entity, "odoo", &id.to_string()).await? else {
                        continue;
                    };
                    inputs.push(Input::Change(Change {
                        entity: index,
                        source: System::Odoo,
                        op: ChangeOp::Delete,
                        key,
                        record: None,
                        position: position.to_string(),
                        ours,
                        source_id: Some(id.to_string()),
                        dead_letter: None,
                    }));
                }
                _ => {
                    let Some(row) = change.after.as_ref().or(change.before.as_ref()) else { continue };
                    for id in affected_ids(&engine.odoo_read, m, &change.table, row).await.map_err(odoo_unavailable)? {
                        ids[index].insert(id);
                    }
                }
            }
        }
    }
    for (index, ids) in ids.into_iter().enumerate() {
        if ids.is_empty() {
            continue;
        }
        let m = &engine.mappings.entities[index];
        let ids: Vec<i64> = ids.into_iter().collect();
        for (id, result) in read_by_ids(&engine.odoo_read, m, &ids).await.map_err(odoo_unavailable)? {
            let id_text = id.to_string();
            let xref_key = || engine.state.xref_key(&m.entity, "odoo", &id_text);
            match result {
                Ok(record) => {
                    let key = match key_of(m, &record) {
                        Some(key) => key,
                        None => match xref_key().await? {
                            Some(key) => key,
                            None => {
                                tracing::debug!(entity = %m.entity, id, "Odoo row without a natural key; not replicated");
                                continue;
                            }
                        },
                    };
                    inputs.push(Input::Change(Change {
                        entity: index,
                        source: System::Odoo,
                        op: ChangeOp::Upsert,
                        key,
                        record: Some(record),
                        position: position.to_string(),
                        ours,
                        source_id: Some(id.to_string()),
                        dead_letter: None,
                    }));
                }
                Err(crate::mapping::odoo::PartialRecord { error, partial }) => {
                    // millrace's own writes, and rows this side does not replicate anyway, are
                    // no one's problem.
                    if ours || !m.passes_filter(System::Odoo, &partial) {
                        continue;
                    }
                    let key = match key_of(m, &partial) {
                        Some(key) => key,
                        None => xref_key().await?.unwrap_or_else(|| format!("{}.id={id}", m.odoo.table)),
                    };
                    inputs.push(Input::Bad(BadInput {
                        entity: m.entity.clone(),
                        source: System::Odoo,
                        key,
                        position: position.to_string(),
                        field: Some(error.field.clone()),
                        reason: format!("{} in {}: {error}", m.entity, m.odoo.table),
                    }));
                }
            }
        }
    }
    Ok(inputs)
}

/// The canonical key of a legacy row from its key columns.
fn legacy_key(m: &Mapping, row: &crate::model::Row) -> Result<String, String> {
    let mut values = Vec::new();
    for k in &m.key {
        let c = m.legacy.column_of(*k).ok_or("key field without a column")?;
        let raw = row.get(&c.column).cloned().unwrap_or(Value::Null);
        let value = if c.lookup.is_some() {
            Value::Text(value_text(&raw).trim_end_matches(' ').to_string())
        } else {
            to_canonical(c, m.fields[*k].ty, m.legacy.timezone, raw)?
        };
        values.push(value);
    }
    let refs: Vec<&Value> = values.iter().collect();
    Ok(crate::source::legacy::key_text(&refs))
}

/// The entity changes of one legacy poll. Lookup tables must be fresh in `engine.legacy`.
pub fn legacy_inputs(engine: &Engine, items: &[LegacyItem]) -> Vec<Input> {
    let mut inputs = Vec::new();
    for item in items {
        match item {
            LegacyItem::Change(change) => {
                for (index, m) in engine.mappings.entities.iter().enumerate() {
                    if !m.legacy.table.eq_ignore_ascii_case(&change.table.name) {
                        continue;
                    }
                    let position = change.position.to_string();
                    let row = match (&change.after, &change.before) {
                        (Some(row), _) | (None, Some(row)) => row,
                        (None, None) => continue,
                    };
                    let key = match legacy_key(m, row) {
                        Ok(key) => key,
                        Err(reason) => {
                            inputs.push(Input::Bad(BadInput {
                                entity: m.entity.clone(),
                                source: System::Legacy,
                                key: change.position.to_string(),
                                position,
                                field: None,
                                reason: format!("{} in {}: key: {reason}", m.entity, m.legacy.table),
                            }));
                            continue;
                        }
                    };
                    if change.op == Op::Delete {
                        inputs.push(Input::Change(Change {
                            entity: index,
                            source: System::Legacy,
                            op: ChangeOp::Delete,
                            key,
                            record: None,
                            position,
                            ours: false,
                            source_id: None,
                            dead_letter: None,
                        }));
                        continue;
                    }
                    match record_from_row(m, row, engine.legacy.cache()) {
                        Ok(record) => inputs.push(Input::Change(Change {
                            entity: index,
                            source: System::Legacy,
                            op: ChangeOp::Upsert,
                            key,
                            record: Some(record),
                            position,
                            ours: false,
                            source_id: None,
                            dead_letter: None,
                        })),
                        Err(error) => inputs.push(Input::Bad(BadInput {
                            entity: m.entity.clone(),
                            source: System::Legacy,
                            key,
                            position,
                            field: Some(error.field.clone()),
                            reason: format!("{} in {}: {error}", m.entity, m.legacy.table),
                        })),
                    }
                }
            }
            LegacyItem::Bad(bad) => {
                for m in engine.mappings.entities.iter().filter(|m| m.legacy.table.eq_ignore_ascii_case(&bad.table)) {
                    let field = m
                        .legacy
                        .columns
                        .iter()
                        .find(|c| c.column == bad.column)
                        .map(|c| m.fields[c.field].name.clone());
                    inputs.push(Input::Bad(BadInput {
                        entity: m.entity.clone(),
                        source: System::Legacy,
                        key: bad.key.clone(),
                        position: bad.key.clone(),
                        field,
                        reason: format!("{} in {}: {bad}", m.entity, m.legacy.table),
                    }));
                }
            }
        }
    }
    inputs
}

/// Entities that draw on a changed legacy row through a lookup (a unit renamed in UOM re-emits
/// every item of that unit), as changes at the changed row's position. Keys already changed
/// in the same poll are left out: their own change carries the same current state.
pub async fn legacy_dependents(
    engine: &mut Engine,
    items: &[LegacyItem],
    direct: &[Input],
) -> Result<Vec<Input>, SyncError> {
    let mut seen: BTreeSet<(usize, String)> = direct
        .iter()
        .filter_map(|i| match i {
            Input::Change(c) => Some((c.entity, c.key.clone())),
            Input::Bad(_) => None,
        })
        .collect();
    let mut inputs = Vec::new();
    let mappings = engine.mappings.clone();
    for item in items {
        let LegacyItem::Change(change) = item else { continue };
        let Some(row) = change.after.as_ref().or(change.before.as_ref()) else { continue };
        for (index, m) in mappings.entities.iter().enumerate() {
            for c in &m.legacy.columns {
                let Some(l) = &c.lookup else { continue };
                if !l.table.eq_ignore_ascii_case(&change.table.name) {
                    continue;
                }
                let Some(value) = row.get(&l.key) else { continue };
                let value = value_text(value).trim_end_matches(' ').to_string();
                let position = change.position.to_string();
                for dependent in engine.legacy.rows_where(m, &c.column, &value).await? {
                    let Ok(key) = legacy_key(m, &dependent) else { continue };
                    if !seen.insert((index, key.clone())) {
                        continue;
                    }
                    inputs.push(match record_from_row(m, &dependent, engine.legacy.cache()) {
                        Ok(record) => Input::Change(Change {
                            entity: index,
                            source: System::Legacy,
                            op: ChangeOp::Upsert,
                            key,
                            record: Some(record),
                            position: position.clone(),
                            ours: false,
                            source_id: None,
                            dead_letter: None,
                        }),
                        Err(error) => Input::Bad(BadInput {
                            entity: m.entity.clone(),
                            source: System::Legacy,
                            key,
                            position: position.clone(),
                            field: Some(error.field.clone()),
                            reason: format!("{} in {}: {error}", m.entity, m.legacy.table),
                        }),
                    });
                }
            }
        }
    }
    Ok(inputs)
}
