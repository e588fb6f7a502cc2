//! The passes of a reconcile over live databases: an engine of its own (its own connections, so
//! `run` reconciles on a schedule without stopping replication), the ERP read in key order, Odoo
//! in one snapshot, differing records read again by key, and with `--repair` the owner's version
//! of each difference decided and applied through the engine.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context;

use super::{self as rc, ErpSide, Finding, Keyless, Kind, Options, Repair, Repaired, Report, Summary};
use crate::config::Config;
use crate::erp::reader::{self, ReadPlan};
use crate::erp::ReadRow;
use crate::mapping::{ChangeOp, Mapping, Mappings, Record, System};
use crate::model::{Op, Row, RowChange};
use crate::sink::erp_db::LegacyDb;
use crate::source::legacy::LegacyItem;
use crate::state::StateStore;
use crate::sync::{map, BatchMeta, Change, Engine, Input};

/// Odoo rows read per query, and ERP records read again per query to name their differences.
const CHUNK: i64 = 5_000;
const DETAIL_BATCH: usize = 500;

/// The entities `selected` (indices into `mappings`) in the order they are compared: each after
/// the entities its mapping refers to, so that a repair of items (an Odoo product getting the
/// ERP's item number) is seen by the BOMs that name them.
pub fn in_dependency_order(mappings: &Mappings, selected: &[usize]) -> Vec<usize> {
    match crate::mapping::order::backfill_order(mappings) {
        Ok(order) => order.into_iter().filter(|i| selected.contains(i)).collect(),
        Err(_) => selected.to_vec(),
    }
}

/// Compares the entities `selected` (indices into `mappings`); with `options.bind`, records the
/// match rules' one-to-one pairs; with `options.repair`, applies (or plans) the owner's version of
/// each difference. Each entity's report is kept in the control state for the operator page.
pub async fn reconcile(
    config: &Config,
    mappings: Arc<Mappings>,
    legacy_config: &crate::config::LegacyConfig,
    selected: &[usize],
    options: &Options,
) -> anyhow::Result<Report> {
    let odoo = config.odoo()?;
    let mut engine = open_engine(config, mappings.clone(), legacy_config, options.repair).await?;
    let reader = crate::pg::connect(&odoo.conn).await.context("connecting to Odoo's database")?;
    let mut report = Report::default();
    for index in in_dependency_order(&mappings, selected) {
        let m = mappings.entities[index].clone();
        let Some(table) = mappings.legacy_tables().into_iter().find(|t| t.table.eq_ignore_ascii_case(&m.legacy.table))
        else {
            tracing::warn!(entity = %m.entity, table = %m.legacy.table, "not compared: the ERP's table is not polled by any mapping");
            continue;
        };
        let started = std::time::Instant::now();
        let mut pass = Pass { engine: &mut engine, m: &m, index, options, report: Report::default() };
        let summary = pass.entity(&reader, legacy_config, table).await?;
        let found = std::mem::take(&mut pass.report);
        save_report(&engine, &summary, &found, options, started.elapsed()).await;
        report.summaries.push(summary);
        report.findings.extend(found.findings);
        report.repairs.extend(found.repairs);
    }
    if let Some(archive) = engine.archive.as_mut() {
        archive.flush().await.context("writing the archive")?;
    }
    Ok(report)
}

/// An engine of the reconcile's own; with a repair to apply, one that writes (Odoo through its
/// API) and archives.
async fn open_engine(
    config: &Config,
    mappings: Arc<Mappings>,
    legacy_config: &crate::config::LegacyConfig,
    repair: Repair,
) -> anyhow::Result<Engine> {
    let odoo = config.odoo()?;
    let state = StateStore::connect(config.state()?).await.context("opening the control state")?;
    let target = match repair {
        Repair::Apply => crate::sink::OdooTarget::connect(odoo).await.context("connecting the Odoo writer")?,
        Repair::Off | Repair::DryRun => crate::sink::OdooTarget::NotConfigured,
    };
    let mut engine = Engine::new(
        mappings,
        state,
        crate::pg::connect(&odoo.conn).await.context("connecting to Odoo's database")?,
        target,
        LegacyDb::new(legacy_config).map_err(anyhow::Error::msg)?,
        Arc::new(crate::ops::metrics::Metrics::default()),
    );
    if repair == Repair::Apply {
        engine
            .open_archive(config.archive.as_ref(), "reconcile")
            .context("opening the archive directory ([archive] dir)")?;
    }
    Ok(engine)
}

/// The owner's version of the records of one entity with these keys (the conflicts the operator
/// page groups), applied to the other side; `options.repair_fields` limits it to those fields.
/// Keys neither side holds are skipped.
pub async fn repair_keys(
    config: &Config,
    mappings: Arc<Mappings>,
    legacy_config: &crate::config::LegacyConfig,
    index: usize,
    keys: &[String],
    options: &Options,
) -> anyhow::Result<Report> {
    let m = mappings.entities[index].clone();
    let mut engine = open_engine(config, mappings.clone(), legacy_config, options.repair).await?;
    let mut pass = Pass { engine: &mut engine, m: &m, index, options, report: Report::default() };
    let mut summary = Summary { entity: m.entity.clone(), ..Summary::default() };
    for chunk in keys.chunks(DETAIL_BATCH) {
        let erp = pass.engine.legacy.read_by_keys(&m, chunk).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut candidates = Vec::new();
        for key in chunk {
            let erp_record = erp.get(key).cloned();
            let odoo = pass.odoo_of(key, erp_record.as_ref()).await?;
            if odoo.is_some() || erp_record.is_some() {
                candidates.push(Candidate { key: key.clone(), odoo, erp: erp_record });
            }
        }
        pass.repair(candidates, &mut summary).await?;
    }
    let mut report = std::mem::take(&mut pass.report);
    if let Some(archive) = engine.archive.as_mut() {
        archive.flush().await.context("writing the archive")?;
    }
    report.summaries.push(summary);
    Ok(report)
}

/// Keeps the entity's report in the control state (a failure to is logged: the report itself
/// is the command's output).
async fn save_report(engine: &Engine, summary: &Summary, found: &Report, options: &Options, took: std::time::Duration) {
    let findings: Vec<serde_json::Value> = found
        .findings
        .iter()
        .take(crate::state::reconcile::REPORT_FINDINGS)
        .map(|f| {
            serde_json::json!({"entity": f.entity, "kind": f.kind.as_str(), "key": f.key, "odoo_id": f.odoo_id,
                               "field": f.field, "owner": f.owner, "odoo_value": f.odoo_value,
                               "erp_value": f.erp_value, "detail": f.detail})
        })
        .collect();
    let counts = serde_json::to_value(summary).unwrap_or_default();
    if let Err(error) = engine
        .state
        .save_reconcile_report(
            &summary.entity,
            took.as_secs_f64(),
            options.via,
            options.repair == Repair::Apply,
            &counts,
            &serde_json::Value::Array(findings),
            found.findings.len() as i64,
        )
        .await
    {
        tracing::warn!(entity = %summary.entity, %error, "the reconcile report was not kept in the control state");
    }
}

/// A record to repair: its key, and each side's version (absent: only the other side has it).
struct Candidate {
    key: String,
    odoo: Option<(i64, Record)>,
    erp: Option<Record>,
}

/// One entity's reconcile.
struct Pass<'a> {
    engine: &'a mut Engine,
    m: &'a Mapping,
    index: usize,
    options: &'a Options,
    report: Report,
}

impl Pass<'_> {
    async fn entity(
        &mut self,
        reader: &tokio_postgres::Client,
        legacy: &crate::config::LegacyConfig,
        table: crate::config::LegacyTable,
    ) -> anyhow::Result<Summary> {
        let m = self.m;
        let fields = rc::compared_fields(m);
        let mut summary = Summary { entity: m.entity.clone(), ..Summary::default() };
        let erp = self.read_erp(legacy, table, &fields).await?;
        let mut erp = erp;

        // Odoo in id order, in one snapshot.
        let mut keyless = Keyless::default();
        let mut pending: Vec<(String, i64, Record)> = Vec::new();
        reader
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await
            .context("starting the snapshot read of Odoo")?;
        let mut after = i64::MIN;
        let mut read = 0u64;
        let rematch = !m.odoo.match_fields.is_empty();
        loop {
            let rows = crate::mapping::odoo::read_after(reader, m, after, CHUNK)
                .await
                .map_err(|e| anyhow::anyhow!("reading {} from Odoo: {}", m.odoo.table, crate::pg::error_text(&e)))?;
            let Some((last, _)) = rows.last() else { break };
            after = *last;
            let n = rows.len();
            let ids: Vec<String> = rows.iter().map(|(id, _)| id.to_string()).collect();
            let bound: HashMap<String, String> = self.engine.state.xref_keys(&m.entity, "odoo", &ids).await?;
            for (id, result) in rows {
                let record = match result {
                    Ok(record) => record,
                    Err(partial) => {
                        if m.passes_filter(System::Odoo, &partial.partial) {
                            let key = bound.get(&id.to_string()).cloned().unwrap_or_else(|| map::odoo_row_key(m, id));
                            self.report.findings.push(unreadable(
                                m,
                                key,
                                Some(id),
                                format!("Odoo row unreadable: {}", partial.error),
                            ));
                        }
                        continue;
                    }
                };
                if !m.passes_filter(System::Odoo, &record) {
                    continue;
                }
                let bound_key = bound.get(&id.to_string()).cloned();
                let is_bound = bound_key.is_some();
                let mut record = record;
                if let Some(key) = &bound_key {
                    map::pin_bound_key(m, &mut record, key);
                }
                let key = bound_key
                    .or_else(|| (!m.key.iter().any(|k| record.values[*k].is_null())).then(|| m.key_text(&record)));
                let Some(key) = key else {
                    keyless.add(m, &fields, id, &record, None);
                    continue;
                };
                match erp.entries.get_mut(&key) {
                    None => {
                        // A natural key the ERP does not hold may be the same record numbered
                        // differently (a BOM's sequence): the match rules get a say.
                        if rematch && !is_bound && rc::match_text(m, &record).is_some() {
                            keyless.add(m, &fields, id, &record, Some(key));
                            continue;
                        }
                        summary.only_in_odoo += 1;
                        self.report.findings.push(only_in_odoo(m, key, id));
                    }
                    Some(entry) => {
                        entry.seen = true;
                        if entry.hash == rc::content_hash(&record, &fields) {
                            summary.equal += 1;
                        } else {
                            pending.push((key, id, record));
                            if pending.len() >= DETAIL_BATCH {
                                self.details(&mut pending, &mut summary).await?;
                            }
                        }
                    }
                }
            }
            read += n as u64;
            progress(self.options.tty, &m.entity, "Odoo", read);
            if (n as i64) < CHUNK {
                break;
            }
        }
        reader.batch_execute("COMMIT").await.context("ending the snapshot read of Odoo")?;
        self.details(&mut pending, &mut summary).await?;

        // Match rules for Odoo records without a key (or with one the ERP does not hold).
        let rc::Matches { pairs, findings: matched, ambiguous } = rc::match_keyless(m, &mut erp, &keyless);
        // What `run` must not create a copy of, until bound.
        self.engine.state.save_ambiguous(&m.entity, &ambiguous).await?;
        let mut only_odoo_ids = Vec::new();
        for f in &matched {
            match f.kind {
                Kind::Matched => summary.matched_by_rule += 1,
                Kind::Ambiguous => summary.ambiguous += 1,
                Kind::OnlyOdoo => summary.only_in_odoo += 1,
                _ => {}
            }
        }
        self.report.findings.extend(matched);
        if self.options.bind && !pairs.is_empty() {
            summary.bound = self.engine.state.bind_odoo_ids(&m.entity, &pairs).await?;
            // Bound, a pair is one record: its differences are named (and repaired) like any.
            for chunk in pairs.chunks(DETAIL_BATCH) {
                let ids: Vec<i64> = chunk.iter().map(|(_, id)| *id).collect();
                let odoo: HashMap<i64, Record> = crate::mapping::odoo::read_by_ids(&self.engine.odoo_read, m, &ids)
                    .await
                    .map_err(|e| anyhow::anyhow!("reading {} from Odoo: {}", m.odoo.table, crate::pg::error_text(&e)))?
                    .into_iter()
                    .filter_map(|(id, r)| Some((id, r.ok()?)))
                    .collect();
                let mut bound_pending: Vec<(String, i64, Record)> = chunk
                    .iter()
                    .filter_map(|(key, id)| {
                        let mut record = odoo.get(id)?.clone();
                        map::pin_bound_key(m, &mut record, key);
                        Some((key.clone(), *id, record))
                    })
                    .collect();
                self.details(&mut bound_pending, &mut summary).await?;
            }
        }
        only_odoo_ids
            .extend(self.report.findings.iter().filter(|f| f.kind == Kind::OnlyOdoo).filter_map(|f| f.odoo_id));

        // What only the ERP holds.
        let mut only_erp: Vec<String> = erp.entries.iter().filter(|(_, e)| !e.seen).map(|(k, _)| k.clone()).collect();
        drop(erp);
        only_erp.sort();
        summary.only_in_erp = only_erp.len() as u64;
        for key in &only_erp {
            self.report.findings.push(Finding {
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
        summary.unreadable = self.report.findings.iter().filter(|f| f.kind == Kind::Unreadable).count() as u64;

        // A record only its owner holds is created on the other side; one only the other side
        // holds is left as it is (reported): deleting a record is not a repair's to decide.
        if self.options.repair != Repair::Off {
            match m.owner {
                System::Legacy => {
                    for keys in only_erp.chunks(DETAIL_BATCH) {
                        let found =
                            self.engine.legacy.read_by_keys(m, keys).await.map_err(|e| anyhow::anyhow!("{e}"))?;
                        let candidates = keys
                            .iter()
                            .filter_map(|k| {
                                found.get(k).map(|r| Candidate { key: k.clone(), odoo: None, erp: Some(r.clone()) })
                            })
                            .collect();
                        self.repair(candidates, &mut summary).await?;
                    }
                }
                System::Odoo => {
                    only_odoo_ids.sort_unstable();
                    only_odoo_ids.dedup();
                    for ids in only_odoo_ids.chunks(DETAIL_BATCH) {
                        let rows =
                            crate::mapping::odoo::read_by_ids(&self.engine.odoo_read, m, ids).await.map_err(|e| {
                                anyhow::anyhow!("reading {} from Odoo: {}", m.odoo.table, crate::pg::error_text(&e))
                            })?;
                        let candidates = rows
                            .into_iter()
                            .filter_map(|(id, r)| {
                                let record = r.ok()?;
                                let key = if m.key.iter().any(|k| record.values[*k].is_null()) {
                                    map::odoo_row_key(m, id)
                                } else {
                                    m.key_text(&record)
                                };
                                Some(Candidate { key, odoo: Some((id, record)), erp: None })
                            })
                            .collect();
                        self.repair(candidates, &mut summary).await?;
                    }
                }
            }
        }
        if self.options.tty {
            eprintln!();
        }
        Ok(summary)
    }

    /// The ERP in key order, kept as key → hash.
    async fn read_erp(
        &mut self,
        legacy: &crate::config::LegacyConfig,
        mut table: crate::config::LegacyTable,
        fields: &[usize],
    ) -> anyhow::Result<ErpSide> {
        let m = self.m;
        let mut erp = ErpSide::default();
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
                    ReadRow::Bad { column, raw, reason, .. } => self.report.findings.push(unreadable(
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
            let mappings = self.engine.mappings.clone();
            self.engine.legacy.refresh_lookups(&mappings).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            for input in map::legacy_inputs(self.engine, &items) {
                match input {
                    Input::Change(c) if c.entity == self.index => {
                        if let Some(record) = c.record.as_ref().filter(|r| m.passes_filter(System::Legacy, r)) {
                            erp.add(m, fields, c.key, record);
                        }
                    }
                    Input::Bad(bad) if bad.entity == m.entity => {
                        self.report.findings.push(unreadable(m, bad.key, None, format!("ERP row: {}", bad.reason)))
                    }
                    _ => {}
                }
            }
            read += batch.rows.len() as u64;
            progress(self.options.tty, &m.entity, "ERP", read);
        }
        let _ = handle.await;
        Ok(erp)
    }

    /// The differing records of `pending`, read again whole from the ERP, field by field; with
    /// `--repair`, the owner's version of each applied (or planned).
    async fn details(&mut self, pending: &mut Vec<(String, i64, Record)>, summary: &mut Summary) -> anyhow::Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        let m = self.m;
        let keys: Vec<String> = pending.iter().map(|(k, _, _)| k.clone()).collect();
        let erp = self.engine.legacy.read_by_keys(m, &keys).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut candidates = Vec::new();
        for (key, id, odoo) in pending.drain(..) {
            match erp.get(&key) {
                Some(erp_record) => {
                    let found = rc::field_findings(m, &key, id, &odoo, erp_record);
                    if found.is_empty() {
                        // Changed between the two reads, and now the same.
                        summary.equal += 1;
                    } else {
                        summary.different += 1;
                        self.report.findings.extend(found);
                        if self.options.repair != Repair::Off {
                            candidates.push(Candidate { key, odoo: Some((id, odoo)), erp: Some(erp_record.clone()) });
                        }
                    }
                }
                None => {
                    summary.different += 1;
                    self.report.findings.push(unreadable(
                        m,
                        key,
                        Some(id),
                        "the ERP row went away during the comparison".into(),
                    ));
                }
            }
        }
        self.repair(candidates, summary).await
    }

    /// The owner's version of each candidate, through the engine: the ERP's record as a change
    /// from the ERP (written to Odoo where the ERP owns what differs), Odoo's as a change from
    /// Odoo (written to the ERP where Odoo owns it). The engine decides each against the target
    /// as it is now and writes only owned fields; a dry run only decides.
    async fn repair(&mut self, candidates: Vec<Candidate>, summary: &mut Summary) -> anyhow::Result<()> {
        if candidates.is_empty() || self.options.repair == Repair::Off {
            return Ok(());
        }
        let m = self.m;
        let entity = self.index;
        let change = |source: System, key: &str, record: &Record, id: Option<i64>| Change {
            entity,
            source,
            op: ChangeOp::Upsert,
            key: key.to_string(),
            record: Some(record.clone()),
            position: "reconcile:repair".into(),
            ours: false,
            by_integration_user: false,
            source_id: id.map(|i| i.to_string()),
            dead_letter: None,
        };
        let (mut from_erp, mut from_odoo) = (Vec::new(), Vec::new());
        for c in &candidates {
            let differing = |erp: &Record, odoo: &Record| -> (bool, bool) {
                let mut owners = (false, false);
                for f in rc::compared_fields(m) {
                    if erp.values[f] != odoo.values[f] {
                        match m.owner_of(f, erp) {
                            System::Legacy => owners.0 = true,
                            System::Odoo => owners.1 = true,
                        }
                    }
                }
                owners
            };
            let (erp_owns, odoo_owns) = match (&c.erp, &c.odoo) {
                (Some(erp), Some((_, odoo))) => differing(erp, odoo),
                (Some(_), None) => (m.owner == System::Legacy, false),
                (None, Some(_)) => (false, m.owner == System::Odoo),
                (None, None) => (false, false),
            };
            if let (true, Some(erp)) = (erp_owns, &c.erp) {
                from_erp.push(change(System::Legacy, &c.key, erp, None));
            }
            if let (true, Some((id, odoo))) = (odoo_owns, &c.odoo) {
                from_odoo.push(change(System::Odoo, &c.key, odoo, Some(*id)));
            }
        }
        for (source, changes) in [(System::Legacy, from_erp), (System::Odoo, from_odoo)] {
            if changes.is_empty() {
                continue;
            }
            self.engine.batch =
                BatchMeta { repair: true, repair_fields: self.options.repair_fields.clone(), ..BatchMeta::default() };
            self.engine.repair_log.clear();
            let log = match self.options.repair {
                Repair::DryRun => self.engine.plan_repair(changes).await,
                Repair::Apply => {
                    let inputs = changes.into_iter().map(Input::Change).collect();
                    self.engine.process(source, inputs, None).await.map(|_| std::mem::take(&mut self.engine.repair_log))
                }
                Repair::Off => Ok(Vec::new()),
            };
            self.engine.batch = BatchMeta::default();
            let log = log.map_err(|e| anyhow::anyhow!("repairing {}: {e}", m.entity))?;
            if let Some(archive) = self.engine.archive.as_mut() {
                archive.sync().await.context("writing the archive spool")?;
            }
            let direction = if source == System::Legacy { "erp_to_odoo" } else { "odoo_to_erp" };
            for entry in log {
                match entry.decision {
                    "repair" => summary.repaired += 1,
                    // Nothing of this side's to write (the other side's repair writes the rest).
                    "stale" | "filtered" => continue,
                    _ => summary.repair_failed += 1,
                }
                self.report.repairs.push(Repaired {
                    entity: m.entity.clone(),
                    key: entry.key,
                    direction,
                    outcome: entry.decision,
                    fields: entry.fields,
                    detail: entry.reason,
                });
            }
        }
        Ok(())
    }
}

impl Pass<'_> {
    /// The Odoo record of a key: by its cross-reference, or else by the key's columns.
    async fn odoo_of(&mut self, key: &str, erp: Option<&Record>) -> anyhow::Result<Option<(i64, Record)>> {
        let m = self.m;
        let bound = self.engine.state.xref_ids(&m.entity, "odoo", &[key.to_string()]).await?;
        let id = match bound.get(key).and_then(|id| id.parse::<i64>().ok()) {
            Some(id) => Some(id),
            None => match erp {
                Some(record) => {
                    let search = crate::sink::odoo_rows::KeySearch { client: &self.engine.odoo_read, resolved: None };
                    search
                        .find_by_key(m, key, record)
                        .await
                        .map_err(|e| anyhow::anyhow!("finding {key} in Odoo: {e:?}"))?
                }
                None => None,
            },
        };
        let Some(id) = id else { return Ok(None) };
        let rows = crate::mapping::odoo::read_by_ids(&self.engine.odoo_read, m, &[id])
            .await
            .map_err(|e| anyhow::anyhow!("reading {} from Odoo: {}", m.odoo.table, crate::pg::error_text(&e)))?;
        Ok(rows.into_iter().next().and_then(|(id, r)| {
            let mut record = r.ok()?;
            map::pin_bound_key(m, &mut record, key);
            Some((id, record))
        }))
    }
}

fn only_in_odoo(m: &Mapping, key: String, id: i64) -> Finding {
    Finding {
        entity: m.entity.clone(),
        kind: Kind::OnlyOdoo,
        key,
        odoo_id: Some(id),
        field: None,
        owner: None,
        odoo_value: None,
        erp_value: None,
        detail: format!("Odoo record {id} has no ERP record with this key"),
    }
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
