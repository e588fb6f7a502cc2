//! `millrace export`: the current state of tables or entities as Parquet, for BI.
//!
//! A table from Odoo travels by binary COPY straight into Arrow builders ([`pg_binary`]); a
//! table from the legacy side by arrow-odbc's bulk fetch. An entity is read through its
//! mapping (canonical fields, typed as in the archive) from the side named, in key order.
//! Reading and Parquet encoding overlap: batches are encoded on a thread of their own.

pub mod pg_binary;

use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use arrow::array::{ArrayRef, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use futures_util::{pin_mut, StreamExt};

use crate::archive::columns::{entity_fields, ColumnBuilder};
use crate::archive::file::{FileError, ParquetFile};
use crate::config::{LegacyConfig, LegacyKind};
use crate::erp::reader::{self, ReadPlan};
use crate::erp::{LegacyError, ReadRow};
use crate::mapping::{Mapping, Mappings, Record, System};
use crate::model::TableName;
use pg_binary::{CopyDecoder, PgColumn, PgKind};

/// Rows per Arrow batch.
const BATCH_ROWS: usize = 32 * 1024;
/// Rows per key-ordered chunk of an entity read.
const ENTITY_CHUNK: i64 = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("table {table}: {message}")]
    Odoo { table: String, message: String },
    #[error("table {table}: {source}")]
    Decode { table: String, source: pg_binary::DecodeError },
    #[error(transparent)]
    Legacy(#[from] LegacyError),
    #[error("legacy table {table}: {message}")]
    Odbc { table: String, message: String },
    #[error(transparent)]
    File(#[from] FileError),
    #[error("{0}")]
    Other(String),
}

/// What the writer thread of a [`ParquetSink`] receives.
enum SinkMessage {
    Batch(RecordBatch),
    /// Every batch was sent: the file may replace the old one.
    Commit,
}

/// Encodes batches into one Parquet file on its own thread.
struct ParquetSink {
    tx: Option<SyncSender<SinkMessage>>,
    thread: Option<JoinHandle<Result<u64, FileError>>>,
}

impl ParquetSink {
    fn start(path: &Path, schema: SchemaRef) -> Result<ParquetSink, FileError> {
        let mut file = ParquetFile::create(path, schema)?;
        let (tx, rx) = sync_channel::<SinkMessage>(1);
        let thread = std::thread::spawn(move || {
            for message in rx {
                match message {
                    SinkMessage::Batch(batch) => file.write(&batch)?,
                    SinkMessage::Commit => return file.commit(),
                }
            }
            // Abandoned before the last batch: dropping the file removes its temporary file, and
            // the previous export stays in place.
            Ok(0)
        });
        Ok(ParquetSink { tx: Some(tx), thread: Some(thread) })
    }

    /// False when the writer thread stopped (its error comes from [`ParquetSink::finish`]).
    fn send(&self, batch: RecordBatch) -> bool {
        self.tx.as_ref().is_some_and(|tx| tx.send(SinkMessage::Batch(batch)).is_ok())
    }

    fn finish(mut self) -> Result<u64, ExportError> {
        if let Some(tx) = self.tx.take() {
            // A send that fails means the thread stopped on an error, which join returns.
            let _ = tx.send(SinkMessage::Commit);
        }
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => Ok(result?),
            _ => Err(ExportError::Other("the Parquet writer thread failed".into())),
        }
    }
}

impl Drop for ParquetSink {
    fn drop(&mut self) {
        // An abandoned export: let the thread end (it removes its temporary file).
        drop(self.tx.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Columns of an Odoo table, with how each travels.
pub async fn pg_columns(client: &tokio_postgres::Client, table: &TableName) -> Result<Vec<PgColumn>, ExportError> {
    let err = |message: String| ExportError::Odoo { table: table.to_string(), message };
    let rows = client
        .query(
            // A domain travels as its base type (COPY sends the base type's binary form).
            "SELECT a.attname::text,
                    CASE WHEN t.typtype = 'd' THEN b.typname ELSE t.typname END::text,
                    CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END
               FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
               LEFT JOIN pg_type b ON b.oid = t.typbasetype
              WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped
              ORDER BY a.attnum",
            &[&table.quoted()],
        )
        .await
        .map_err(|e| err(format!("{e} (does the table exist, and may this user read it?)")))?;
    if rows.is_empty() {
        return Err(err("has no columns".into()));
    }
    Ok(rows
        .iter()
        .map(|r| {
            let type_name: String = r.get(1);
            let kind = PgKind::of(&type_name, r.get(2));
            PgColumn { name: r.get(0), type_name, kind }
        })
        .collect())
}

/// Writes an Odoo table to `path`; returns the rows written.
///
/// Each column keeps its type where every value fits it exactly (numeric as decimal, dates,
/// timestamps, times); a column holding a value that does not (numeric `NaN` or digits beyond
/// the decimal's, `infinity` dates and timestamps, `24:00:00`) is written as PostgreSQL's text of
/// each value instead, so the file's schema says which form a column has and no value is lost.
/// Finding such a value restarts the export with that column as text: a table is read at most
/// once more per such column, and the file is only replaced once complete.
pub async fn export_pg_table(client: &tokio_postgres::Client, table: &str, path: &Path) -> Result<u64, ExportError> {
    let table = TableName::parse(table);
    let mut columns = pg_columns(client, &table).await?;
    loop {
        match export_pg_columns(client, &table, &columns, path).await {
            Err(ExportError::Decode { source, .. }) if source.misfit => {
                let Some(column) = columns.iter_mut().find(|c| c.name == source.column && c.kind != PgKind::AsText)
                else {
                    return Err(ExportError::Decode { table: table.to_string(), source });
                };
                tracing::info!(
                    table = %table, column = %column.name, r#type = %column.type_name, row = source.row, reason = %source.message,
                    "a value has no exact form in the column's Parquet type; exporting the column as text"
                );
                column.kind = PgKind::AsText;
            }
            other => return other,
        }
    }
}

async fn export_pg_columns(
    client: &tokio_postgres::Client,
    table: &TableName,
    columns: &[PgColumn],
    path: &Path,
) -> Result<u64, ExportError> {
    let sql = pg_binary::copy_sql(&table.quoted(), columns);
    let err = |e: tokio_postgres::Error| ExportError::Odoo { table: table.to_string(), message: e.to_string() };
    let mut decoder = CopyDecoder::new(columns.to_vec(), BATCH_ROWS);
    let sink = ParquetSink::start(path, decoder.schema())?;
    let stream = client.copy_out(sql.as_str()).await.map_err(err)?;
    pin_mut!(stream);
    let mut stopped = false;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(err)?;
        decoder
            .push(&chunk, &mut |batch| stopped |= !sink.send(batch))
            .map_err(|source| ExportError::Decode { table: table.to_string(), source })?;
        if stopped {
            break;
        }
    }
    let rows = decoder.rows();
    if let Some(batch) = decoder.finish().map_err(|source| ExportError::Decode { table: table.to_string(), source })? {
        sink.send(batch);
    }
    let written = sink.finish()?;
    if written != rows {
        return Err(ExportError::Other(format!("{table}: read {rows} rows but wrote {written}")));
    }
    Ok(written)
}

/// Writes a legacy table to `path` through arrow-odbc; returns the rows written.
pub async fn export_odbc_table(legacy: &LegacyConfig, table: &str, path: &Path) -> Result<u64, ExportError> {
    if legacy.kind != LegacyKind::Odbc {
        return Err(ExportError::Other(format!(
            "exporting legacy table {table} as a table needs [legacy] kind = \"odbc\"; with SQL Server's own protocol, export the entity instead (--entity)"
        )));
    }
    let (connection_string, password) = (legacy.connection_string.clone(), legacy.password.clone());
    let (table, path) = (table.to_string(), path.to_path_buf());
    tokio::task::spawn_blocking(move || -> Result<u64, ExportError> {
        let conn = crate::erp::odbc::OdbcConnection::connect(&connection_string, password.as_ref())?;
        let odbc = |message: String| ExportError::Odbc { table: table.clone(), message };
        let quoted = crate::erp::LegacyConnection::dialect(&conn).quote_table(&table);
        let sql = format!("SELECT * FROM {quoted}");
        let cursor = conn
            .raw()
            .execute(&sql, (), None)
            .map_err(|e| odbc(e.to_string()))?
            .ok_or_else(|| odbc("the query returned no result set".into()))?;
        let reader = arrow_odbc::OdbcReaderBuilder::new()
            .with_max_num_rows_per_batch(BATCH_ROWS)
            .with_max_bytes_per_batch(256 * 1024 * 1024)
            .build(cursor)
            .map_err(|e| odbc(e.to_string()))?;
        let sink = ParquetSink::start(&path, arrow::record_batch::RecordBatchReader::schema(&reader))?;
        for batch in reader {
            let batch = batch.map_err(|e| odbc(e.to_string()))?;
            if !sink.send(batch) {
                break;
            }
        }
        sink.finish()
    })
    .await
    .map_err(|e| ExportError::Other(format!("export thread: {e}")))?
}

/// The schema of an entity export: its key, then its fields, typed as in the archive.
pub fn entity_schema(m: &Mapping) -> SchemaRef {
    let mut fields = vec![Field::new("_key", DataType::Utf8, false)];
    fields.extend(entity_fields(m));
    Arc::new(Schema::new(fields))
}

/// Accumulates entity records into batches.
pub struct EntityBatches {
    schema: SchemaRef,
    key: StringBuilder,
    columns: Vec<ColumnBuilder>,
    rows: usize,
    /// Values that did not fit their column (written as null), as "key field: reason".
    pub misfits: Vec<String>,
}

impl EntityBatches {
    pub fn new(m: &Mapping) -> EntityBatches {
        EntityBatches {
            schema: entity_schema(m),
            key: StringBuilder::new(),
            columns: m.fields.iter().map(|f| ColumnBuilder::new(f, 1024)).collect(),
            rows: 0,
            misfits: Vec::new(),
        }
    }

    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    pub fn push(&mut self, m: &Mapping, key: &str, record: &Record) {
        self.key.append_value(key);
        for ((b, value), field) in self.columns.iter_mut().zip(&record.values).zip(&m.fields) {
            if let Err(reason) = b.append(value) {
                self.misfits.push(format!("{key} {}: {reason}", field.name));
            }
        }
        self.rows += 1;
    }

    pub fn take(&mut self) -> Result<RecordBatch, ExportError> {
        let mut arrays: Vec<ArrayRef> = vec![Arc::new(self.key.finish())];
        arrays.extend(self.columns.iter_mut().map(ColumnBuilder::finish));
        self.rows = 0;
        RecordBatch::try_new(self.schema.clone(), arrays).map_err(|e| ExportError::Other(e.to_string()))
    }
}

/// What an entity export wrote.
#[derive(Debug, Default)]
pub struct EntityExport {
    pub rows: u64,
    /// Rows of the side that could not be read as the entity (named with the reason).
    pub unreadable: Vec<String>,
    pub misfits: Vec<String>,
}

/// Writes an entity as the Odoo side holds it.
pub async fn export_odoo_entity(
    client: &tokio_postgres::Client,
    m: &Mapping,
    path: &Path,
) -> Result<EntityExport, ExportError> {
    let mut batches = EntityBatches::new(m);
    let sink = ParquetSink::start(path, batches.schema())?;
    let mut out = EntityExport::default();
    let mut after = i64::MIN;
    loop {
        let chunk = crate::mapping::odoo::read_after(client, m, after, ENTITY_CHUNK)
            .await
            .map_err(|e| ExportError::Odoo { table: m.odoo.table.clone(), message: e.to_string() })?;
        let Some((last, _)) = chunk.last() else { break };
        after = *last;
        let n = chunk.len();
        for (id, result) in chunk {
            match result {
                Ok(record) if m.passes_filter(System::Odoo, &record) => {
                    batches.push(m, &m.key_text(&record), &record);
                }
                Ok(_) => {}
                Err(partial) => out.unreadable.push(format!("{} id {id}: {}", m.odoo.table, partial.error)),
            }
        }
        if batches.len() >= BATCH_ROWS {
            sink.send(batches.take()?);
        }
        if (n as i64) < ENTITY_CHUNK {
            break;
        }
    }
    if !batches.is_empty() {
        sink.send(batches.take()?);
    }
    out.misfits = std::mem::take(&mut batches.misfits);
    out.rows = sink.finish()?;
    Ok(out)
}

/// Writes an entity as the legacy side holds it.
pub async fn export_legacy_entity(
    legacy: &LegacyConfig,
    mappings: &Arc<Mappings>,
    m: &Mapping,
    path: &Path,
) -> Result<EntityExport, ExportError> {
    let mut db = crate::sink::erp_db::LegacyDb::new(legacy).map_err(ExportError::Other)?;
    db.ensure_lookups(mappings).await.map_err(|e| ExportError::Other(e.to_string()))?;
    let table = mappings
        .legacy_tables()
        .into_iter()
        .find(|t| t.table.eq_ignore_ascii_case(&m.legacy.table))
        .ok_or_else(|| ExportError::Other(format!("{}: no legacy table {}", m.entity, m.legacy.table)))?;
    let conn = crate::erp::connect(legacy).await?;
    let (mut rx, handle) = reader::spawn(conn, ReadPlan::KeysetScan { table, after: None });
    let mut batches = EntityBatches::new(m);
    let sink = ParquetSink::start(path, batches.schema())?;
    let mut out = EntityExport::default();
    while let Some(batch) = rx.recv().await {
        let batch = batch?;
        for read in batch.rows {
            let values = match read {
                ReadRow::Ok(values) => values,
                ReadRow::Bad { column, raw, reason, .. } => {
                    let name = batch.columns.get(column).cloned().unwrap_or_default();
                    out.unreadable.push(format!("{} column {name} value {raw:?}: {reason}", m.legacy.table));
                    continue;
                }
            };
            let row = crate::model::Row { columns: batch.columns.clone(), values };
            match crate::mapping::legacy::record_from_row(m, &row, db.cache()) {
                Ok(record) if m.passes_filter(System::Legacy, &record) => {
                    batches.push(m, &m.key_text(&record), &record)
                }
                Ok(_) => {}
                Err(error) => out.unreadable.push(format!("{}: {error}", m.legacy.table)),
            }
        }
        if batches.len() >= BATCH_ROWS {
            sink.send(batches.take()?);
        }
    }
    let _ = handle.await;
    if !batches.is_empty() {
        sink.send(batches.take()?);
    }
    out.misfits = std::mem::take(&mut batches.misfits);
    out.rows = sink.finish()?;
    Ok(out)
}

/// `DIR/<name>.parquet`, the name made safe for a file.
pub fn output_path(dir: &Path, name: &str) -> PathBuf {
    let safe: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
    dir.join(format!("{safe}.parquet"))
}
