//! The passes of a reconcile over live databases: an engine of its own (its own connections, so
//! `run` reconciles on a schedule without stopping replication), the ERP read in key order, Odoo
//! in one snapshot, differing records read again by key.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context;

use super::{self as rc, ErpSide, Finding, Keyless, Kind, Summary};
use crate::config::Config;
use crate::erp::reader::{self, ReadPlan};
use crate::erp::ReadRow;
use crate::mapping::{Mapping, Mappings, Record, System};
use crate::model::{Op, Row, RowChange};
use crate::sink::erp_db::LegacyDb;
use crate::source::legacy::LegacyItem;
use crate::state::StateStore;
use crate::sync::{map, Engine, Input};

/// Odoo rows read per query, and ERP records read again per query to name their differences.
const CHUNK: i64 = 5_000;
const DETAIL_BATCH: usize = 500;

/// Compares the entities `selected` (indices into `mappings`); with `bind`, records the match
/// rules' one-to-one pairs. `tty`: a progress line on stderr.
pub async fn reconcile(
    config: &Config,
    mappings: Arc<Mappings>,
    legacy_config: &crate::config::LegacyConfig,
    selected: &[usize],
    bind: bool,
    tty: bool,
) -> anyhow::Result<(Vec<Summary>, Vec<Finding>)> {
    let odoo = config.odoo()?;
    let state = StateStore::connect(config.state()?).await.context("opening the control state")?;
    let mut engine = Engine::new(
        mappings.clone(),
        state,
        crate::pg::connect(&odoo.conn).await.context("connecting to Odoo's database")?,
        crate::sink::OdooTarget::NotConfigured,
        LegacyDb::new(legacy_config).map_err(anyhow::Error::msg)?,
        Arc::new(crate::ops::metrics::Metrics::default()),
    );
    let reader = crate::pg::connect(&odoo.conn).await.context("connecting to Odoo's database")?;
    let mut summaries = Vec::new();
    let mut findings = Vec::new();
    for &index in selected {
        let m = mappings.entities[index].clone();
        let Some(table) = mappings.legacy_tables().into_iter().find(|t| t.table.eq_ignore_ascii_case(&m.legacy.table))
        else {
            tracing::warn!(entity = %m.entity, table = %m.legacy.table, "not compared: the ERP's table is not polled by any mapping");
            continue;
        };
        let (summary, mut found) = entity(&mut engine, &reader, legacy_config, &m, index, table, bind, tty).await?;
        summaries.push(summary);
        findings.append(&mut found);
    }
    Ok((summaries, findings))
}

#[allow(clippy::too_many_arguments)]
async fn entity(
    engine: &mut Engine,
    reader: &tokio_postgres::Client,
    legacy: &crate::config::LegacyConfig,
    m: &Mapping,
    index: usize,
    mut table: crate::config::LegacyTable,
    bind: bool,
    tty: bool,
) -> anyhow::Result<(Summary, Vec<Finding>)> {
    let fields = rc::compared_fields(m);
    let mut summary = Summary { entity: m.entity.clone(), ..Summary::default() };
    let mut findings = Vec::new();
    let mut erp = ErpSide::default();

    // The ERP in key order, kept as key → hash.
    table.chunk_size = CHUNK as usize;
    let conn = crate::erp::connect(legacy).await.context("connecting to the ERP")?;
    let (mut rx, handle) = reader::spawn(conn, ReadPlan::KeysetScan { table: table.clone(), after: None });
    let mut read = 0u64;
    while let Some(batch) = rx.recv().await {
        let batch = batch.with_context(|| format!("reading {} from the ERP", table.table))?;
        let key_positions: Vec<usize> =
            table.key.iter().filter_map(|k| batch.columns.iter().position(|c| c.eq_ignore_ascii_case(k))).collect();
        let mut items = Vec::with_capacity(batch.rows.len());
        for row in &batch.rows {
            let values = match row {
                ReadRow::Ok(values) | ReadRow::Bad { values, .. } => values,
            };
            let key_values: Vec<&crate::model::Value> = key_positions.iter().map(|p| &values[*p]).collect();
            let key = crate::model::key_text(&key_values);
            match row {
                ReadRow::Ok(values) => items.push(LegacyItem::Change(RowChange::legacy(
                    &table.table,
                    Op::Snapshot,
                    None,
                    Some(Row { columns: batch.columns.clone(), values: values.clone() }),
                    "reconcile".into(),
                    key,
                ))),
                ReadRow::Bad { column, raw, reason, .. } => findings.push(unreadable(
                    m,
                    key,
                    None,
                    format!(
                        "ERP row unreadable: {}.{} = {raw:?}: {reason}",
                        table.table,
                        batch.columns.get(*column).map(String::as_str).unwrap_or("?")
                    ),
                )),
            }
        }
        let mappings = engine.mappings.clone();
        engine.legacy.refresh_lookups(&mappings).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        for input in map::legacy_inputs(engine, &items) {
            match input {
                Input::Change(c) if c.entity == index => {
                    if let Some(record) = c.record.as_ref().filter(|r| m.passes_filter(System::Legacy, r)) {
                        erp.add(m, &fields, c.key, record);
                    }
                }
                Input::Bad(bad) if bad.entity == m.entity => {
                    findings.push(unreadable(m, bad.key, None, format!("ERP row: {}", bad.reason)))
                }
                _ => {}
            }
        }
        read += batch.rows.len() as u64;
        progress(tty, &m.entity, "ERP", read);
    }
    let _ = handle.await;

    // Odoo in id order, in one snapshot.
    let mut keyless = Keyless::default();
    let mut pending: Vec<(String, i64, Record)> = Vec::new();
    reader
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .await
        .context("starting the snapshot read of Odoo")?;
    let mut after = i64::MIN;
    let mut read = 0u64;
    loop {
        let rows = crate::mapping::odoo::read_after(reader, m, after, CHUNK)
            .await
            .map_err(|e| anyhow::anyhow!("reading {} from Odoo: {}", m.odoo.table, crate::pg::error_text(&e)))?;
        let Some((last, _)) = rows.last() else { break };
        after = *last;
        let n = rows.len();
        let ids: Vec<String> = rows.iter().map(|(id, _)| id.to_string()).collect();
        let bound: HashMap<String, String> = engine.state.xref_keys(&m.entity, "odoo", &ids).await?;
        for (id, result) in rows {
            let record = match result {
                Ok(record) => record,
                Err(partial) => {
                    if m.passes_filter(System::Odoo, &partial.partial) {
                        let key = bound.get(&id.to_string()).cloned().unwrap_or_else(|| map::odoo_row_key(m, id));
                        findings.push(unreadable(m, key, Some(id), format!("Odoo row unreadable: {}", partial.error)));
                    }
                    continue;
                }
            };
            if !m.passes_filter(System::Odoo, &record) {
                continue;
            }
            let key = bound
                .get(&id.to_string())
                .cloned()
                .or_else(|| (!m.key.iter().any(|k| record.values[*k].is_null())).then(|| m.key_text(&record)));
            let Some(key) = key else {
                match rc::match_text(m, &record) {
                    Some(text) => keyless.by_match.entry(text).or_default().push(id),
                    None => keyless.unmatchable.push(id),
                }
                continue;
            };
            match erp.entries.get_mut(&key) {
                None => {
                    summary.only_in_odoo += 1;
                    findings.push(Finding {
                        entity: m.entity.clone(),
                        kind: Kind::OnlyOdoo,
                        key,
                        odoo_id: Some(id),
                        field: None,
                        owner: None,
                        odoo_value: None,
                        erp_value: None,
                        detail: format!("Odoo record {id} has no ERP record with this key"),
                    });
                }
                Some(entry) => {
                    entry.seen = true;
                    if entry.hash == rc::content_hash(&record, &fields) {
                        summary.equal += 1;
                    } else {
                        pending.push((key, id, record));
                        if pending.len() >= DETAIL_BATCH {
                            details(engine, m, &mut pending, &mut summary, &mut findings).await?;
                        }
                    }
                }
            }
        }
        read += n as u64;
        progress(tty, &m.entity, "Odoo", read);
        if (n as i64) < CHUNK {
            break;
        }
    }
    reader.batch_execute("COMMIT").await.context("ending the snapshot read of Odoo")?;
    details(engine, m, &mut pending, &mut summary, &mut findings).await?;

    // Match rules for Odoo records without a key; then what only the ERP holds.
    let (pairs, matched) = rc::match_keyless(m, &mut erp, &keyless);
    for f in &matched {
        match f.kind {
            Kind::Matched => summary.matched_by_rule += 1,
            Kind::Ambiguous => summary.ambiguous += 1,
            Kind::OnlyOdoo => summary.only_in_odoo += 1,
            _ => {}
        }
    }
    findings.extend(matched);
    if bind && !pairs.is_empty() {
        summary.bound = engine.state.bind_odoo_ids(&m.entity, &pairs).await?;
    }
    let mut only_erp: Vec<&String> = erp.entries.iter().filter(|(_, e)| !e.seen).map(|(k, _)| k).collect();
    only_erp.sort();
    summary.only_in_erp = only_erp.len() as u64;
    for key in only_erp {
        findings.push(Finding {
            entity: m.entity.clone(),
            kind: Kind::OnlyErp,
            key: key.clone(),
            odoo_id: None,
            field: None,
            owner: None,
            odoo_value: None,
            erp_value: None,
            detail: "no Odoo record with this key".into(),
        });
    }
    summary.unreadable = findings.iter().filter(|f| f.kind == Kind::Unreadable).count() as u64;
    if tty {
        eprintln!();
    }
    Ok((summary, findings))
}

/// The differing records of `pending`, read again whole from the ERP, field by field.
async fn details(
    engine: &mut Engine,
    m: &Mapping,
    pending: &mut Vec<(String, i64, Record)>,
    summary: &mut Summary,
    findings: &mut Vec<Finding>,
) -> anyhow::Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let keys: Vec<String> = pending.iter().map(|(k, _, _)| k.clone()).collect();
    let erp = engine.legacy.read_by_keys(m, &keys).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    for (key, id, odoo) in pending.drain(..) {
        match erp.get(&key) {
            Some(erp_record) => {
                let found = rc::field_findings(m, &key, id, &odoo, erp_record);
                if found.is_empty() {
                    // Changed between the two reads, and now the same.
                    summary.equal += 1;
                } else {
                    summary.different += 1;
                    findings.extend(found);
                }
            }
            None => {
                summary.different += 1;
                findings.push(unreadable(m, key, Some(id), "the ERP row went away during the comparison".into()));
            }
        }
    }
    Ok(())
}

fn unreadable(m: &Mapping, key: String, odoo_id: Option<i64>, detail: String) -> Finding {
    Finding {
        entity: m.entity.clone(),
        kind: Kind::Unreadable,
        key,
        odoo_id,
        field: None,
        owner: None,
        odoo_value: None,
        erp_value: None,
        detail,
    }
}

/// A progress line on a terminal (stderr), rewritten in place.
fn progress(tty: bool, entity: &str, side: &str, rows: u64) {
    if tty {
        eprint!("\rreconcile {entity}: {side} {rows} rows read   ");
    }
}
