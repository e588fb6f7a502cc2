//! The map stage: source row changes → entity changes, through the mappings.
//!
//! Odoo: every row change of a transaction names the main rows it affects (a template rename
//! affects each of its variants); those are read once, whole, at the end of the transaction.
//! Legacy: a polled row is converted directly, with lookups through the batch's code tables.

use std::collections::{BTreeMap, BTreeSet};

use super::{BadInput, Change, ChangeOp, Engine, Input, SyncError};
use crate::mapping::legacy::record_from_row;
use crate::mapping::odoo::{affected_ids_many, affects, int_of, read_by_ids, Affects};
use crate::mapping::transform::to_canonical;
use crate::mapping::{Mapping, System};
use crate::model::value_text;
use crate::model::{Op, RowChange, TableName, Value};
use crate::source::legacy::LegacyItem;

fn odoo_unavailable(e: tokio_postgres::Error) -> SyncError {
    SyncError::Unavailable { system: "odoo", message: crate::pg::error_text(&e) }
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
    engine: &mut Engine,
    changes: &[RowChange],
    position: &str,
    origin: &str,
) -> Result<OdooInputs, SyncError> {
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
                    by_integration_user: false,
                    source_id: id,
                    dead_letter: None,
                }));
            }
        }
        return Ok(OdooInputs { inputs, rows: Vec::new() });
    }
    // Everything below reads Odoo's current rows: never before the transaction is visible.
    if let Some(xid) = engine.batch.xid.or_else(|| changes.iter().find_map(|c| c.xid)) {
        crate::pg::wait_visible(&engine.odoo_read, xid)
            .await
            .map_err(|message| SyncError::Unavailable { system: "odoo", message })?;
    }
    let mut ids: Vec<BTreeSet<i64>> = vec![BTreeSet::new(); engine.mappings.entities.len()];
    // Rows of parent and looked-up tables, gathered per (mapping, query): the main rows they
    // affect are found in one query each, not one per changed row.
    let mut related: BTreeMap<(usize, String, String), Vec<Value>> = BTreeMap::new();
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
                        by_integration_user: false,
                        source_id: Some(id.to_string()),
                        dead_letter: None,
                    }));
                }
                _ => {
                    let Some(row) = change.after.as_ref().or(change.before.as_ref()) else { continue };
                    for how in affects(m, &change.table) {
                        match how {
                            Affects::Main => {
                                if let Some(id) = row.get(&m.odoo.id_column).and_then(int_of) {
                                    ids[index].insert(id);
                                }
                            }
                            Affects::Query { sql, sql_any, column } => match row.get(&column) {
                                None | Some(Value::Null) | Some(Value::Unchanged) => {}
                                Some(value) => related.entry((index, sql, sql_any)).or_default().push(value.clone()),
                            },
                        }
                    }
                }
            }
        }
    }
    for ((index, sql, sql_any), mut values) in related {
        values.sort_by_key(value_text);
        values.dedup();
        let found = affected_ids_many(&engine.odoo_read, &sql, &sql_any, &values).await.map_err(odoo_unavailable)?;
        ids[index].extend(found);
    }
    let rows = ids
        .into_iter()
        .enumerate()
        .filter(|(_, ids)| !ids.is_empty())
        .map(|(i, ids)| (i, ids.into_iter().collect()))
        .collect();
    Ok(OdooInputs { inputs, rows })
}

/// What a batch of Odoo row changes leads to: changes known without reading (deletes, echoes),
/// and per mapping the ids of the main rows to read through ([`odoo_read_inputs`]), which can
/// be many (a renamed product re-emits every record that looks it up).
pub struct OdooInputs {
    pub inputs: Vec<Input>,
    pub rows: Vec<(usize, Vec<i64>)>,
}

/// The changes of these main rows of mapping `index`, read through now.
pub async fn odoo_read_inputs(
    engine: &mut Engine,
    index: usize,
    ids: &[i64],
    position: &str,
) -> Result<Vec<Input>, SyncError> {
    let m = &engine.mappings.entities[index];
    let started = std::time::Instant::now();
    // Rows the integration user wrote last (Odoo's API leaves no replication origin: its
    // `write_uid` is what marks millrace's writes), read before the rows themselves, so a
    // user's write in between shows in the row and is not taken for millrace's.
    let by_integration_user = match engine.integration_uid {
        Some(uid) => written_by(&engine.odoo_read, m, ids, uid).await.map_err(odoo_unavailable)?,
        None => BTreeSet::new(),
    };
    let rows = read_by_ids(&engine.odoo_read, m, ids).await.map_err(odoo_unavailable)?;
    tracing::debug!(entity = %m.entity, rows = rows.len(), took_ms = started.elapsed().as_millis() as u64, "Odoo rows read");
    odoo_rows_to_inputs(engine, index, rows, position, false, &by_integration_user).await
}

/// The changes of Odoo rows read whole (by the stream's read-through, or by a backfill): each
/// keyed by the key its Odoo id is bound to, else by its natural key, else numbered by the ERP
/// (`assign`), else dead-lettered for want of a key; rows that cannot be read are dead letters.
pub async fn odoo_row_inputs(
    engine: &mut Engine,
    index: usize,
    rows: Vec<(i64, Result<crate::mapping::Record, crate::mapping::odoo::PartialRecord>)>,
    position: &str,
    ours: bool,
) -> Result<Vec<Input>, SyncError> {
    odoo_rows_to_inputs(engine, index, rows, position, ours, &BTreeSet::new()).await
}

/// [`odoo_row_inputs`], knowing which rows millrace's integration user wrote last.
async fn odoo_rows_to_inputs(
    engine: &mut Engine,
    index: usize,
    rows: Vec<(i64, Result<crate::mapping::Record, crate::mapping::odoo::PartialRecord>)>,
    position: &str,
    ours: bool,
    by_integration_user: &BTreeSet<i64>,
) -> Result<Vec<Input>, SyncError> {
    let mappings = engine.mappings.clone();
    let m = &mappings.entities[index];
    let mut inputs = Vec::with_capacity(rows.len());
    {
        let id_texts: Vec<String> = rows.iter().map(|(id, _)| id.to_string()).collect();
        // A record's key is the one it was first replicated under (its Odoo id stays bound to
        // it), whatever Odoo renames later.
        let mut bound = engine.state.xref_keys(&m.entity, "odoo", &id_texts).await?;
        if let Some((field, column)) = m.assigned_key() {
            let new: Vec<String> = rows
                .iter()
                .filter_map(|(id, r)| match r {
                    Ok(record)
                        if record.values[field].is_null()
                            && !bound.contains_key(&id.to_string())
                            && m.passes_filter(System::Odoo, record) =>
                    {
                        Some(id.to_string())
                    }
                    _ => None,
                })
                .collect();
            if !new.is_empty() {
                let floor = engine.legacy.max_int(&m.legacy.table, &column.column).await?.unwrap_or(0) + 1;
                bound.extend(engine.state.allocate_keys(&m.entity, &new, floor).await?);
            }
        }
        for (id, result) in rows {
            let id_text = id.to_string();
            match result {
                Ok(mut record) => {
                    let key = match bound.get(&id_text) {
                        Some(key) => {
                            pin_key(m, &mut record, key);
                            key.clone()
                        }
                        None => match key_of(m, &record) {
                            Some(key) => key,
                            // Not replicated anyway: nothing to say.
                            None if !m.passes_filter(System::Odoo, &record) => continue,
                            None => {
                                inputs.push(Input::Bad(no_key(m, id, &record, position)));
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
                        by_integration_user: by_integration_user.contains(&id),
                        source_id: Some(id_text),
                        dead_letter: None,
                    }));
                }
                Err(crate::mapping::odoo::PartialRecord { error, partial }) => {
                    // millrace's own writes, and rows this side does not replicate anyway, are
                    // no one's problem.
                    if ours || !m.passes_filter(System::Odoo, &partial) {
                        continue;
                    }
                    let key = match bound.get(&id_text) {
                        Some(key) => key.clone(),
                        None => key_of(m, &partial).unwrap_or_else(|| odoo_row_key(m, id)),
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

/// Which of these main rows were last written by Odoo user `uid`.
async fn written_by(
    client: &tokio_postgres::Client,
    m: &Mapping,
    ids: &[i64],
    uid: i64,
) -> Result<BTreeSet<i64>, tokio_postgres::Error> {
    let sql = format!(
        "SELECT m.{id}::bigint FROM {} m WHERE m.{id}::bigint = ANY($1) AND m.\"write_uid\"::bigint = $2",
        TableName::parse(&m.odoo.table).quoted(),
        id = crate::model::quote_ident(&m.odoo.id_column),
    );
    let rows = client.query(&sql, &[&ids, &uid]).await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The stand-in key of an Odoo row that has no natural key (`mrp_bom.id=12`).
pub fn odoo_row_key(m: &Mapping, id: i64) -> String {
    format!("{}.id={id}", m.odoo.table)
}

/// Puts the bound key's values into the record's key fields: those Odoo does not store (a
/// number the ERP gave), and those Odoo owns (a name Odoo changed after the record was
/// replicated under it). A key field the other side owns keeps Odoo's value, so that an edit
/// of it in Odoo shows as the ownership conflict it is.
pub(crate) fn pin_key(m: &Mapping, record: &mut crate::mapping::Record, key: &str) {
    let values = crate::model::key_values(key);
    for (field, value) in m.key.iter().zip(values) {
        let value = crate::mapping::transform::coerce(value.clone(), m.fields[*field].ty).unwrap_or(value);
        let stored_here = m.odoo.column_of(*field).is_some();
        if !stored_here || record.values[*field].is_null() || m.may_change(*field, record, System::Odoo) {
            record.values[*field] = value;
        }
    }
}

/// The key an Odoo record is bound to, as a repair or a reconcile compares it: key fields Odoo
/// does not store, or owns, take the key's values (the binding is what names the record; an
/// Odoo-owned key is not written to the ERP from an empty Odoo field); a key field the ERP owns
/// keeps what Odoo holds, so that an empty one (a product bound without its internal reference)
/// shows as the difference a repair writes.
pub fn pin_bound_key(m: &Mapping, record: &mut crate::mapping::Record, key: &str) {
    let values = crate::model::key_values(key);
    for (field, value) in m.key.iter().zip(values) {
        if m.odoo.column_of(*field).is_none() || m.may_change(*field, record, System::Odoo) {
            record.values[*field] =
                crate::mapping::transform::coerce(value.clone(), m.fields[*field].ty).unwrap_or(value);
        }
    }
}

/// The dead letter of an Odoo row that would be replicated but has no natural key.
fn no_key(m: &Mapping, id: i64, record: &crate::mapping::Record, position: &str) -> BadInput {
    let empty: Vec<String> = m
        .key
        .iter()
        .filter(|k| record.values[**k].is_null())
        .map(|k| match m.odoo.column_of(*k) {
            Some(c) if c.expr.is_none() => format!("{} (column {}.{})", m.fields[*k].name, m.odoo.table, c.column),
            _ => m.fields[*k].name.clone(),
        })
        .collect();
    BadInput {
        entity: m.entity.clone(),
        source: System::Odoo,
        key: odoo_row_key(m, id),
        position: position.to_string(),
        field: m.key.iter().find(|k| record.values[**k].is_null()).map(|k| m.fields[*k].name.clone()),
        reason: format!(
            "{} in {} (id {id}): no natural key: {} empty; fill it in Odoo and the record is replicated",
            m.entity,
            m.odoo.table,
            empty.join(", ")
        ),
    }
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
    Ok(crate::model::key_text(&refs))
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
                            by_integration_user: false,
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
                            by_integration_user: false,
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
        // A lookup row seen for the first time (a first poll) changed nothing its dependents
        // were read with: they are read whole by their own first poll. Re-reading them here
        // would read every row of a large table at once, and decide each twice.
        if change.op == Op::Snapshot {
            continue;
        }
        let Some(row) = change.after.as_ref().or(change.before.as_ref()) else { continue };
        // A table millrace writes but does not poll (`strategy = "none"`) is no source: its
        // rows are not re-emitted either.
        for (index, m) in mappings.entities.iter().enumerate().filter(|(_, m)| m.legacy.poll.is_some()) {
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
                            by_integration_user: false,
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
