//! `millrace backfill`: copies entities from their system of record to the other side (and into
//! the archive as snapshot records), in key-ordered chunks through the sync engine, so a
//! backfilled row is decided, applied and remembered exactly as a streamed change would be.
//!
//! Each chunk is one target transaction followed by a checkpoint (`millrace.backfill`), so a
//! killed backfill resumes after its last chunk; re-applying a chunk is harmless (the engine
//! sees content it already knows).
//!
//! Hand-off to streaming: when the replication slot does not exist yet, backfill creates it and
//! reads Odoo from the snapshot the slot exports, so every change after that snapshot — rows
//! written while the backfill runs included — comes through the stream, and nothing before it
//! does. When the slot exists (a resumed backfill, or one run beside the service), Odoo is
//! read as it is now and the stream re-delivers whatever changed since the slot's position,
//! which lands on top. Either way nothing is lost or doubled.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::config::{Config, ConfigError};
use crate::erp::reader::{self, ReadPlan};
use crate::erp::ReadRow;
use crate::mapping::{Mapping, Mappings, System};
use crate::model::{quote_ident, Lsn, Op, Row, RowChange, Value};
use crate::sink::erp_db::LegacyDb;
use crate::source::legacy::BadLegacyRow;
use crate::source::legacy::LegacyItem;
use crate::source::odoo::replication::ReplicationConnection;
use crate::source::odoo::setup::{self, SetupStep};
use crate::state::backfill::BackfillCheckpoint;
use crate::state::{pg_error_text, StateStore};
use crate::sync::{map, BatchMeta, Engine, Input};

pub struct BackfillOptions {
    pub entities: Vec<String>,
    pub chunk: usize,
    pub restart: bool,
}

/// An exported snapshot, valid while the connection that created the slot stays open.
struct Snapshot {
    _connection: ReplicationConnection,
    name: String,
}

pub async fn run(config: &Config, options: BackfillOptions) -> Result<(), super::CommandError> {
    let mappings = Arc::new(
        Mappings::load_dir(&config.sync.mappings)
            .with_context(|| format!("loading mappings from {}", config.sync.mappings.display()))?,
    );
    let selected = select(config, &mappings, &options.entities)?;
    let odoo = super::setup::odoo_with_mapped_tables(config)?;
    let legacy_config = super::setup::legacy_config(config, &mappings)?;
    let client = crate::pg::connect(&odoo.conn).await.context("connecting to Odoo's database")?;

    // Setup first (publication, control schema): streaming must be able to start
    // right where the backfill's snapshot ends.
    let steps = setup::plan(&client, &odoo).await.context("checking the publication and slot")?;
    let create_slot = steps.iter().any(|s| matches!(s, SetupStep::CreateSlot { .. }));
    let other: Vec<SetupStep> = steps.into_iter().filter(|s| !matches!(s, SetupStep::CreateSlot { .. })).collect();
    setup::apply(&client, &other).await.context("creating the publication")?;
    let state = StateStore::connect(config.state()?).await.context("opening the control state")?;
    if options.restart {
        let names: Vec<String> = selected.iter().map(|i| mappings.entities[*i].entity.clone()).collect();
        state.forget_backfills(&names).await.map_err(anyhow::Error::from)?;
    }

    let (snapshot, position) = if create_slot {
        let mut connection =
            ReplicationConnection::connect(&odoo.conn).await.context("opening a replication connection")?;
        let rows = connection
            .simple_query(&format!(
                "CREATE_REPLICATION_SLOT {} LOGICAL pgoutput (SNAPSHOT 'export')",
                quote_ident(&odoo.slot)
            ))
            .await
            .with_context(|| format!("creating replication slot {}", odoo.slot))?;
        let row = rows.first().context("CREATE_REPLICATION_SLOT returned no row")?;
        let lsn = row.get(1).cloned().flatten().context("no consistent point")?;
        let name = row.get(2).cloned().flatten().context("no exported snapshot")?;
        if !name.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            return Err(anyhow::anyhow!("unexpected snapshot name {name:?} from the server").into());
        }
        tracing::info!(slot = %odoo.slot, consistent_point = %lsn, snapshot = %name, "created the replication slot; reading Odoo from its snapshot");
        (Some(Snapshot { _connection: connection, name }), lsn)
    } else {
        let row = client
            .query_opt("SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", &[&odoo.slot])
            .await
            .map_err(pg_failed("reading the replication slot's position"))?;
        let lsn: Option<String> = row.and_then(|r| r.get(0));
        let lsn = lsn.unwrap_or_else(|| Lsn::ZERO.to_string());
        tracing::info!(slot = %odoo.slot, position = %lsn, "the slot exists; reading Odoo as it is now (the stream re-delivers later changes)");
        (None, lsn)
    };

    let mut engine = Engine::new(
        mappings.clone(),
        state,
        crate::pg::connect(&odoo.conn).await.context("connecting to Odoo's database")?,
        crate::sink::OdooTarget::connect(&odoo).await.context("connecting the Odoo writer")?,
        LegacyDb::new(&legacy_config).map_err(anyhow::Error::msg)?,
        Arc::new(crate::ops::metrics::Metrics::default()),
    );
    engine.batch = BatchMeta { snapshot: true, ..BatchMeta::default() };
    engine
        .open_archive(config.archive.as_ref(), "backfill")
        .context("opening the archive directory ([archive] dir)")?;
    let reader = crate::pg::connect(&odoo.conn).await.context("connecting to Odoo's database")?;
    let mut out = std::io::stdout().lock();
    // One entity failing does not stop the others: each failure is recorded and reported at the
    // end, and the backfill then exits non-zero.
    let mut failures: Vec<EntityFailure> = Vec::new();
    let entities = selected.len();
    for index in selected {
        let m = mappings.entities[index].clone();
        if !m.side(m.owner).backfill {
            // History the other side already holds in its own form (the ERP's ledger of past
            // moves): copying it would count every row twice. Changes from now on stream.
            writeln!(
                out,
                "{}: not backfilled ([{}] backfill = false: the other side holds its history); changes from now on stream",
                m.entity,
                m.owner.as_str()
            )
            .context("writing to stdout")?;
            continue;
        }
        let progress = Progress::new(&m.entity, m.owner);
        let result = match m.owner {
            System::Odoo => {
                odoo_entity(&mut engine, &reader, &m, index, snapshot.as_ref(), &position, options.chunk, progress)
                    .await
            }
            System::Legacy => legacy_entity(&mut engine, &legacy_config, &m, options.chunk, progress).await,
        };
        let done = match result {
            Ok(done) => done,
            Err(error) => {
                let failure = EntityFailure {
                    entity: m.entity.clone(),
                    source: m.owner.as_str(),
                    keys: error.keys,
                    message: format!("{:#}", error.error),
                };
                tracing::error!(entity = %failure.entity, source = failure.source, keys = ?failure.keys, error = %failure.message, "backfill of this entity failed; going on with the next");
                recover(&mut engine, &reader, &m, &failure.message).await;
                writeln!(out, "{}", failure.line()).context("writing to stdout")?;
                failures.push(failure);
                continue;
            }
        };
        match done {
            Outcome::AlreadyDone(rows) => writeln!(
                out,
                "{}: backfilled earlier ({rows} rows); --restart copies it again",
                m.entity
            )
            .context("writing to stdout")?,
            Outcome::Copied { rows, resumed, summary } => writeln!(
                out,
                "{}: {rows} rows from {}{} — applied {}, already there {}, conflicts {}, parked {}, dead-lettered {}, filtered {}",
                m.entity,
                m.owner.as_str(),
                if resumed { " (resumed)" } else { "" },
                summary.applied,
                summary.stale + summary.echoes,
                summary.conflicts,
                summary.parked,
                summary.dead_lettered,
                summary.filtered
            )
            .context("writing to stdout")?,
        }
    }
    // Rows whose create a killed run had sent may still be committed by Odoo: parked, looked for
    // again until found or until that create must be over (then made), so the backfill ends
    // with each of them once.
    let mut waited = 0;
    engine.batch = BatchMeta::default();
    while in_flight_parked(&mut engine).await? > 0 {
        if waited == 0 {
            writeln!(out, "waiting for creates a stopped run sent to Odoo to land or to be over")
                .context("writing to stdout")?;
        }
        waited += 1;
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
    if snapshot.is_some() {
        writeln!(out, "replication slot {} created at {position}: `millrace run` streams from there", odoo.slot)
            .context("writing to stdout")?;
    }
    if failures.is_empty() {
        return Ok(());
    }
    let lines: Vec<String> = failures.iter().map(|f| format!("  {}", f.line())).collect();
    Err(anyhow::anyhow!(
        "backfill failed for {} of {entities} entities (the others went on; `millrace status` shows each one's \
         progress, and `millrace backfill` resumes the failed ones once the cause is fixed):\n{}",
        failures.len(),
        lines.join("\n")
    )
    .into())
}

/// Re-decides the parked changes; how many still wait for a write in flight.
async fn in_flight_parked(engine: &mut crate::sync::Engine) -> anyhow::Result<u64> {
    let summary = engine.retry_parked().await.map_err(|e| anyhow::anyhow!("retrying parked changes: {e}"))?;
    Ok(summary.in_flight)
}

/// A failed statement on Odoo's database, with the server's own message (the driver's error
/// alone says only "db error").
fn pg_failed(what: &'static str) -> impl FnOnce(tokio_postgres::Error) -> anyhow::Error {
    move |e| anyhow::anyhow!("{what}: {}", pg_error_text(&e))
}

/// An entity whose backfill failed: where, and the error in full (the databases' own messages).
struct EntityFailure {
    entity: String,
    source: &'static str,
    /// The keys of the chunk that failed, when the failure came from one.
    keys: Option<String>,
    message: String,
}

impl EntityFailure {
    fn line(&self) -> String {
        let keys = self.keys.as_deref().map(|k| format!(" at {k}")).unwrap_or_default();
        // One line per entity, whatever the driver's message holds (ODBC's span several).
        let message: String = self.message.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        format!("{}: FAILED from {}{keys}: {message}", self.entity, self.source)
    }
}

/// Why one entity's backfill stopped: the error, and the keys of the chunk it stopped at.
struct EntityError {
    keys: Option<String>,
    error: anyhow::Error,
}

impl From<anyhow::Error> for EntityError {
    fn from(error: anyhow::Error) -> EntityError {
        EntityError { keys: None, error }
    }
}

impl From<crate::sync::SyncError> for EntityError {
    fn from(error: crate::sync::SyncError) -> EntityError {
        EntityError { keys: None, error: error.into() }
    }
}

impl From<crate::erp::LegacyError> for EntityError {
    fn from(error: crate::erp::LegacyError) -> EntityError {
        EntityError { keys: None, error: error.into() }
    }
}

/// The keys of a chunk, for an error message: "key K" when its rows share one, else "keys
/// FIRST … LAST" and how many.
fn chunk_keys(inputs: &[Input]) -> Option<String> {
    let key = |input: &Input| match input {
        Input::Change(c) => c.key.clone(),
        Input::Bad(b) => b.key.clone(),
    };
    let (first, last) = (inputs.first().map(key)?, inputs.last().map(key)?);
    if inputs.iter().all(|i| key(i) == first) {
        return Some(format!("key {first}"));
    }
    Some(format!("keys {first} … {last} (a chunk of {} rows)", inputs.len()))
}

/// After an entity failed: ends the reader's transaction if one is open, records the failure in
/// the entity's progress (so `status` shows its backfill unfinished), and writes what the archive
/// holds. Best effort: what fails here is logged, the next entity goes on.
async fn recover(engine: &mut Engine, reader: &tokio_postgres::Client, m: &Mapping, message: &str) {
    if m.owner == System::Odoo {
        if let Err(e) = reader.batch_execute("ROLLBACK").await {
            tracing::warn!(error = %pg_error_text(&e), "ending the snapshot read after a failure");
        }
    }
    if let Err(e) = engine.state.record_backfill_failure(&m.entity, m.owner.as_str(), message).await {
        tracing::warn!(entity = %m.entity, error = %e, "recording the backfill's failure");
    }
    if let Err(e) = flush_archive(engine).await {
        tracing::warn!(error = %format!("{e:#}"), "writing the archive after a failure");
    }
}

/// The entities to copy, in the order they are copied: those named on the command line, in
/// the order named; by default every entity, each after the entities its mapping refers to
/// ([`crate::mapping::order`]), so fewer rows wait parked for a dependency still to come.
/// Mappings that refer to each other in a cycle are refused either way, before anything runs,
/// with the message `millrace check` gives.
fn select(config: &Config, mappings: &Mappings, names: &[String]) -> Result<Vec<usize>, ConfigError> {
    let order = crate::mapping::order::backfill_order(mappings)
        .map_err(|cycle| ConfigError::Invalid { field: "sync.mappings", message: cycle.to_string() })?;
    Ok(super::entity_indices(config, mappings, names)?.unwrap_or(order))
}

enum Outcome {
    AlreadyDone(i64),
    Copied { rows: u64, resumed: bool, summary: crate::sync::BatchSummary },
}

async fn load_checkpoint(engine: &Engine, m: &Mapping) -> anyhow::Result<Option<BackfillCheckpoint>> {
    Ok(engine.state.backfill_checkpoint(&m.entity).await?)
}

async fn save_checkpoint(
    engine: &Engine,
    m: &Mapping,
    last_key: &serde_json::Value,
    rows: i64,
    position: &str,
    finished: bool,
) -> anyhow::Result<()> {
    engine.state.save_backfill_checkpoint(&m.entity, m.owner.as_str(), last_key, rows, position, finished).await?;
    Ok(())
}

/// Decides and applies one chunk and makes its archive records durable (the spool; a Parquet
/// file when one is due), so the checkpoint after it may pass it.
async fn commit_chunk(
    engine: &mut Engine,
    source: System,
    inputs: Vec<Input>,
    total: &mut crate::sync::BatchSummary,
) -> anyhow::Result<()> {
    if !inputs.is_empty() {
        let summary = engine.process(source, inputs, None).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        add(total, &summary);
    }
    if let Some(archive) = engine.archive.as_mut() {
        archive.sync().await.context("writing the archive spool")?;
        if archive.due() {
            archive.flush().await.context("writing the archive")?;
        }
    }
    Ok(())
}

/// Writes what the archive holds (at the end of an entity).
async fn flush_archive(engine: &mut Engine) -> anyhow::Result<()> {
    if let Some(archive) = engine.archive.as_mut() {
        archive.flush().await.context("writing the archive")?;
    }
    Ok(())
}

fn add(total: &mut crate::sync::BatchSummary, summary: &crate::sync::BatchSummary) {
    total.applied += summary.applied;
    total.echoes += summary.echoes;
    total.stale += summary.stale;
    total.conflicts += summary.conflicts;
    total.parked += summary.parked;
    total.in_flight += summary.in_flight;
    total.dead_lettered += summary.dead_lettered;
    total.filtered += summary.filtered;
}

#[allow(clippy::too_many_arguments)]
async fn odoo_entity(
    engine: &mut Engine,
    reader: &tokio_postgres::Client,
    m: &Mapping,
    index: usize,
    snapshot: Option<&Snapshot>,
    position: &str,
    chunk: usize,
    mut progress: Progress,
) -> Result<Outcome, EntityError> {
    let checkpoint = load_checkpoint(engine, m).await?;
    if let Some(c) = checkpoint.as_ref().filter(|c| c.finished) {
        return Ok(Outcome::AlreadyDone(c.rows));
    }
    let resumed = checkpoint.is_some();
    let mut after: i64 = checkpoint.as_ref().and_then(|c| c.last_key.as_ref()?.get("id")?.as_i64()).unwrap_or(i64::MIN);
    let mut rows = checkpoint.as_ref().map(|c| c.rows).unwrap_or(0);
    let mut total = crate::sync::BatchSummary::default();
    // Reads run in a repeatable-read transaction on the exported snapshot when there is one.
    let begin = |snapshot: Option<&Snapshot>| match snapshot {
        Some(s) => format!("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET TRANSACTION SNAPSHOT '{}'", s.name),
        None => "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY".to_string(),
    };
    reader.batch_execute(&begin(snapshot)).await.map_err(pg_failed("starting the snapshot read"))?;
    let count = reader
        .query_one(&format!("SELECT count(*) {}", crate::mapping::odoo::from_clause(m)), &[])
        .await
        .map_err(pg_failed("counting rows"))?;
    reader.batch_execute("COMMIT").await.map_err(pg_failed("ending the snapshot read"))?;
    progress.total = Some(count.get::<_, i64>(0) as u64);
    progress.done = rows as u64;
    loop {
        reader.batch_execute(&begin(snapshot)).await.map_err(pg_failed("starting the snapshot read"))?;
        let records = crate::mapping::odoo::read_after(reader, m, after, chunk as i64)
            .await
            .map_err(pg_failed("reading a chunk"))?;
        reader.batch_execute("COMMIT").await.map_err(pg_failed("ending the snapshot read"))?;
        let Some((last, _)) = records.last() else { break };
        let last = *last;
        let n = records.len();
        // Keyed as the stream keys them: bound keys, natural keys, ERP numbers; a row without a
        // key is a dead letter, not a record under an empty key.
        let inputs = crate::sync::map::odoo_row_inputs(engine, index, records, position, false).await?;
        let keys = chunk_keys(&inputs);
        commit_chunk(engine, System::Odoo, inputs, &mut total).await.map_err(|error| EntityError { keys, error })?;
        rows += n as i64;
        after = last;
        save_checkpoint(engine, m, &serde_json::json!({ "id": after }), rows, position, false).await?;
        progress.advance(n as u64);
        if n < chunk {
            break;
        }
    }
    flush_archive(engine).await?;
    save_checkpoint(engine, m, &serde_json::json!({ "id": after }), rows, position, true).await?;
    progress.finish();
    Ok(Outcome::Copied { rows: rows as u64, resumed, summary: total })
}

async fn legacy_entity(
    engine: &mut Engine,
    legacy: &crate::config::LegacyConfig,
    m: &Mapping,
    chunk: usize,
    mut progress: Progress,
) -> Result<Outcome, EntityError> {
    let checkpoint = load_checkpoint(engine, m).await?;
    if let Some(c) = checkpoint.as_ref().filter(|c| c.finished) {
        return Ok(Outcome::AlreadyDone(c.rows));
    }
    let resumed = checkpoint.is_some();
    let after: Option<Vec<Value>> = checkpoint
        .as_ref()
        .and_then(|c| c.last_key.as_ref()?.as_array().cloned())
        .map(|keys| keys.iter().map(|k| k.as_str().map(|s| Value::Text(s.into())).unwrap_or(Value::Null)).collect());
    let mut rows = checkpoint.as_ref().map(|c| c.rows).unwrap_or(0);
    let mut table = engine
        .mappings
        .legacy_tables()
        .into_iter()
        .find(|t| t.table.eq_ignore_ascii_case(&m.legacy.table))
        .with_context(|| format!("no legacy table {}", m.legacy.table))?;
    table.chunk_size = chunk;
    let mappings = engine.mappings.clone();
    let conn = crate::erp::connect(legacy).await?;
    let (mut rx, handle) = reader::spawn(conn, ReadPlan::KeysetScan { table: table.clone(), after });
    progress.done = rows as u64;
    let mut total = crate::sync::BatchSummary::default();
    let mut last_key = serde_json::Value::Null;
    while let Some(batch) = rx.recv().await {
        let batch = batch?;
        let key_positions: Vec<usize> =
            table.key.iter().filter_map(|k| batch.columns.iter().position(|c| c.eq_ignore_ascii_case(k))).collect();
        let mut items = Vec::with_capacity(batch.rows.len());
        for read in &batch.rows {
            let values = match read {
                ReadRow::Ok(values) | ReadRow::Bad { values, .. } => values,
            };
            let key_values: Vec<&Value> = key_positions.iter().map(|p| &values[*p]).collect();
            let key = crate::model::key_text(&key_values);
            last_key = serde_json::Value::Array(
                key_values.iter().map(|v| serde_json::Value::String(crate::model::value_text(v))).collect(),
            );
            items.push(match read {
                ReadRow::Ok(values) => LegacyItem::Change(RowChange::legacy(
                    &table.table,
                    Op::Snapshot,
                    None,
                    Some(Row { columns: batch.columns.clone(), values: values.clone() }),
                    "snapshot".into(),
                    key,
                )),
                ReadRow::Bad { column, raw, reason, .. } => LegacyItem::Bad(BadLegacyRow {
                    table: table.table.clone(),
                    key,
                    column: batch.columns.get(*column).cloned().unwrap_or_default(),
                    value: raw.clone(),
                    reason: reason.clone(),
                }),
            });
        }
        engine.legacy.refresh_lookups(&mappings).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let inputs = map::legacy_inputs(engine, &items);
        let n = items.len();
        let keys = chunk_keys(&inputs);
        commit_chunk(engine, System::Legacy, inputs, &mut total).await.map_err(|error| EntityError { keys, error })?;
        rows += n as i64;
        save_checkpoint(engine, m, &last_key, rows, "snapshot", false).await?;
        progress.advance(n as u64);
    }
    let _ = handle.await;
    flush_archive(engine).await?;
    save_checkpoint(engine, m, &last_key, rows, "snapshot", true).await?;
    progress.finish();
    Ok(Outcome::Copied { rows: rows as u64, resumed, summary: total })
}

/// A progress bar on a terminal; otherwise a plain line every few seconds.
struct Progress {
    entity: String,
    source: &'static str,
    tty: bool,
    total: Option<u64>,
    done: u64,
    started: Instant,
    start_done: Option<u64>,
    last_shown: Option<Instant>,
}

impl Progress {
    fn new(entity: &str, source: System) -> Progress {
        Progress {
            entity: entity.to_string(),
            source: source.as_str(),
            tty: std::io::stderr().is_terminal(),
            total: None,
            done: 0,
            started: Instant::now(),
            start_done: None,
            last_shown: None,
        }
    }

    fn advance(&mut self, n: u64) {
        self.start_done.get_or_insert(self.done);
        self.done += n;
        let every = if self.tty { Duration::from_millis(100) } else { Duration::from_secs(5) };
        if self.last_shown.is_none_or(|t| t.elapsed() >= every) {
            self.show(false);
        }
    }

    fn finish(&mut self) {
        self.show(true);
    }

    fn show(&mut self, last: bool) {
        self.last_shown = Some(Instant::now());
        let elapsed = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = (self.done - self.start_done.unwrap_or(self.done)) as f64 / elapsed;
        let share = self.total.filter(|t| *t > 0).map(|t| (self.done as f64 / t as f64).min(1.0));
        let total = self.total.map(|t| format!("/{t}")).unwrap_or_default();
        let mut err = std::io::stderr().lock();
        if self.tty {
            let bar = match share {
                Some(s) => {
                    let filled = (s * 30.0).round() as usize;
                    format!("[{}{}] {:>3.0}% ", "#".repeat(filled), " ".repeat(30 - filled), s * 100.0)
                }
                None => String::new(),
            };
            let _ = write!(
                err,
                "\r{} from {}: {bar}{}{total} rows, {rate:.0} rows/s  ",
                self.entity, self.source, self.done
            );
            if last {
                let _ = writeln!(err);
            }
        } else {
            let pct = share.map(|s| format!(" ({:.0}%)", s * 100.0)).unwrap_or_default();
            let _ = writeln!(
                err,
                "backfill {} from {}: {}{total} rows{pct}, {rate:.0} rows/s{}",
                self.entity,
                self.source,
                self.done,
                if last { ", done" } else { "" }
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::BadInput;

    fn bad(key: &str) -> Input {
        Input::Bad(BadInput {
            entity: "work_center".into(),
            source: System::Odoo,
            key: key.into(),
            position: "0/0".into(),
            field: None,
            reason: "unreadable".into(),
        })
    }

    #[test]
    fn a_failed_chunk_is_named_by_its_keys() {
        assert_eq!(chunk_keys(&[]), None);
        assert_eq!(chunk_keys(&[bad(r#"["WC-DUP"]"#), bad(r#"["WC-DUP"]"#)]).as_deref(), Some(r#"key ["WC-DUP"]"#));
        assert_eq!(
            chunk_keys(&[bad(r#"["A"]"#), bad(r#"["B"]"#), bad(r#"["C"]"#)]).as_deref(),
            Some(r#"keys ["A"] … ["C"] (a chunk of 3 rows)"#)
        );
        let failure = EntityFailure {
            entity: "work_center".into(),
            source: "odoo",
            keys: Some(r#"key ["WC-DUP"]"#.into()),
            message: "control state (saving known records):\nboom".into(),
        };
        assert_eq!(
            failure.line(),
            r#"work_center: FAILED from odoo at key ["WC-DUP"]: control state (saving known records): boom"#
        );
    }
}
