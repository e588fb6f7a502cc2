//! The archive: every decided change, with its decision, as Hive-partitioned zstd Parquet
//! (DESIGN §8): `<dir>/entity=<entity>/date=<YYYY-MM-DD>/<system>-<first>-<last>.parquet`.
//!
//! Changes are buffered per (entity, day, source) and written when a buffer reaches
//! `rotate_rows` or the oldest buffered change is `rotate_after` old. Meanwhile each batch's
//! changes are appended to a spool ([`spool`]) and fsynced: the caller acknowledges a source
//! position once [`Archive::sync`] returned, so nothing acknowledged can be lost and no source
//! waits for a file to rotate. A start archives what the spool holds. What is already archived
//! or spooled is not archived twice when the source replays it after a crash: an Odoo change at
//! or below the highest LSN archived for its entity is skipped, and a legacy change whose key
//! and position are in the entity's spool or newest legacy file is skipped too.
//!
//! Operator actions on dead letters are archived beside the changes, in files of their own
//! ([`operator`]).

pub mod columns;
pub mod file;
pub mod operator;
pub mod schema;
pub mod spool;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, NaiveDate, Utc};

use crate::config::ArchiveSettings;
use crate::mapping::{Mappings, Record, System};
use crate::model::Lsn;
pub use file::FileError;

/// One decided change, as the archive stores it.
#[derive(Debug, Clone)]
pub struct ArchiveRow {
    /// Index into [`Mappings::entities`].
    pub entity: usize,
    pub key: String,
    pub source: System,
    pub source_table: String,
    /// The Debezium letter: c, u, d, or r for a snapshot (backfill) read.
    pub op: &'static str,
    pub decision: &'static str,
    pub reason: Option<String>,
    pub position: String,
    pub commit_ts: Option<DateTime<Utc>>,
    pub xid: Option<u32>,
    pub captured_at: DateTime<Utc>,
    pub after: Option<Record>,
    /// What millrace knew of the entity on the source side before this change.
    pub before: Option<Record>,
    /// Read from a source stream that replays after a crash (not a retry of a parked change
    /// or dead letter, which the archive must record every time).
    pub replayable: bool,
    /// Of an Odoo transaction applied in parts (a large one): how many of its row changes were
    /// handled up to the end of this row's part. `None`: the transaction was handled whole.
    /// The replay rule orders an Odoo row by (commit LSN, part), so that the parts after a
    /// crash are archived while those before it are not archived twice.
    pub txn_part: Option<u64>,
}

/// Where an Odoo row sits in the replay order: its commit LSN, then its part of the transaction
/// (a whole transaction after all of its parts).
fn odoo_order(lsn: u64, txn_part: Option<u64>) -> (u64, u64) {
    (lsn, txn_part.unwrap_or(u64::MAX))
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("archive {dir}: {source}")]
    Io { dir: PathBuf, source: std::io::Error },
    #[error(transparent)]
    File(#[from] FileError),
    #[error("archive file {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("archive: {0}")]
    Schema(String),
}

/// What a flush wrote.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Flushed {
    pub files: Vec<PathBuf>,
    pub rows: u64,
}

type BufferKey = (usize, NaiveDate, System);

/// The buffered changes' text size at which the archive writes its files, whatever the row
/// count: about as much again in Arrow builders.
const ROTATE_BYTES: usize = 16 << 20;

pub struct Archive {
    settings: ArchiveSettings,
    mappings: Arc<Mappings>,
    buffers: BTreeMap<BufferKey, Buffer>,
    /// Buffers finished into batches whose files a failed flush did not write yet.
    ready: Vec<Ready>,
    buffered: usize,
    /// The spool text of the buffered changes: what their Arrow builders hold, roughly.
    buffered_bytes: usize,
    oldest: Option<Instant>,
    /// Entity → the highest (commit LSN, part) in its Odoo files or the spool.
    odoo_archived: HashMap<String, (u64, u64)>,
    /// Entity → (key, position) of every change in its newest legacy file or the spool.
    legacy_last: HashMap<String, HashSet<(String, String)>>,
    skipped: u64,
    /// The spool file being appended to (taken while a write is in flight).
    spool: Option<spool::SpoolFile>,
    /// Spool lines of changes pushed since the last sync.
    unsynced: Vec<u8>,
    /// (entity, source, key, position) of those changes: what the skip rules learn at sync.
    unsynced_marks: Vec<(usize, System, String, String, Option<u64>)>,
    spool_dir: PathBuf,
    /// Held while open (see [`spool::lock`]).
    _lock: std::fs::File,
    /// Operator actions of this process are archived here while it is open.
    _operator: operator::Registration,
}

impl Archive {
    /// Opens the archive directory: removes what a crash left half-written and learns what is
    /// already archived.
    /// `owner` names the process's spool (`run`, `backfill`).
    pub fn open(settings: ArchiveSettings, mappings: Arc<Mappings>, owner: &str) -> Result<Archive, ArchiveError> {
        let spool_dir = spool::spool_dir(&settings.dir, owner);
        let lock = spool::lock(&spool_dir)
            .map_err(|source| ArchiveError::Io { dir: spool_dir.clone(), source })?
            .map_err(ArchiveError::Schema)?;
        let io = |source| ArchiveError::Io { dir: settings.dir.clone(), source };
        std::fs::create_dir_all(&settings.dir).map_err(io)?;
        let removed = file::remove_temporaries(&settings.dir).map_err(io)?;
        if removed > 0 {
            tracing::info!(dir = %settings.dir.display(), removed, "removed archive files a crash left unfinished");
        }
        let registration = operator::register(&settings.dir, mappings.clone());
        let mut archive = Archive {
            settings,
            mappings,
            buffers: BTreeMap::new(),
            ready: Vec::new(),
            buffered: 0,
            buffered_bytes: 0,
            oldest: None,
            odoo_archived: HashMap::new(),
            legacy_last: HashMap::new(),
            skipped: 0,
            spool: None,
            unsynced: Vec::new(),
            unsynced_marks: Vec::new(),
            spool_dir,
            _lock: lock,
            _operator: registration,
        };
        archive.learn_existing()?;
        archive.recover_spool()?;
        Ok(archive)
    }

    /// Takes back what the spool of an earlier run holds, skipping what a flush cut short by a
    /// crash had already written, and starts a fresh spool holding it.
    fn recover_spool(&mut self) -> Result<(), ArchiveError> {
        let dir = self.spool_dir.clone();
        let io = |source| ArchiveError::Io { dir: dir.clone(), source };
        let old = spool::spool_files(&dir).map_err(io)?;
        let mut recovered = 0usize;
        for (_, path) in &old {
            for row in spool::read(&self.mappings, path).map_err(io)? {
                if self.push(row) {
                    recovered += 1;
                }
            }
        }
        let seq = old.last().map(|(seq, _)| seq + 1).unwrap_or(1);
        self.spool = Some(spool::SpoolFile::create(&dir, seq).map_err(io)?);
        self.sync_now().map_err(io)?;
        for (_, path) in &old {
            std::fs::remove_file(path).map_err(io)?;
        }
        if recovered > 0 {
            tracing::info!(
                changes = recovered,
                skipped = self.skipped,
                "archive: took back the spool of the previous run"
            );
        }
        Ok(())
    }

    /// Appends what was pushed since the last sync to the spool, durably (blocking; for the start).
    fn sync_now(&mut self) -> std::io::Result<()> {
        if let Some(spool) = self.spool.as_mut() {
            spool.append(&self.unsynced)?;
        }
        self.unsynced.clear();
        self.learn_synced();
        Ok(())
    }

    /// The skip rules now cover the changes just made durable.
    fn learn_synced(&mut self) {
        for (entity, source, key, position, txn_part) in self.unsynced_marks.drain(..) {
            let name = self.mappings.entities[entity].entity.clone();
            match source {
                System::Odoo => {
                    if let Ok(lsn) = position.parse::<Lsn>() {
                        let hwm = self.odoo_archived.entry(name).or_default();
                        *hwm = (*hwm).max(odoo_order(lsn.0, txn_part));
                    }
                }
                System::Legacy => {
                    self.legacy_last.entry(name).or_default().insert((key, position));
                }
            }
        }
    }

    /// Makes every change pushed so far durable in the spool: after this, their source
    /// positions may be acknowledged.
    pub async fn sync(&mut self) -> Result<(), ArchiveError> {
        if self.unsynced.is_empty() {
            return Ok(());
        }
        let dir = self.spool_dir.clone();
        let Some(mut file) = self.spool.take() else {
            return Err(ArchiveError::Schema("the archive spool is not open".into()));
        };
        let bytes = std::mem::take(&mut self.unsynced);
        let (file, bytes, result) = tokio::task::spawn_blocking(move || {
            let result = file.append(&bytes);
            (file, bytes, result)
        })
        .await
        .map_err(|e| ArchiveError::Schema(format!("archive spool thread: {e}")))?;
        self.spool = Some(file);
        if let Err(source) = result {
            // Nothing is acknowledged; the next sync writes it again (a torn tail is dropped
            // when the spool is read back).
            self.unsynced = bytes;
            return Err(ArchiveError::Io { dir, source });
        }
        self.learn_synced();
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.settings.dir
    }

    fn learn_existing(&mut self) -> Result<(), ArchiveError> {
        let io = |source| ArchiveError::Io { dir: self.settings.dir.clone(), source };
        for m in &self.mappings.entities {
            let entity_dir = self.settings.dir.join(format!("entity={}", m.entity));
            let Ok(days) = std::fs::read_dir(&entity_dir) else { continue };
            let mut newest_legacy: Option<(std::time::SystemTime, PathBuf)> = None;
            for day in days {
                let day = day.map_err(io)?.path();
                let Ok(files) = std::fs::read_dir(&day) else { continue };
                for f in files {
                    let f = f.map_err(io)?;
                    let name = f.file_name().to_string_lossy().into_owned();
                    if let Some(last) = odoo_file_last(&name) {
                        let hwm = self.odoo_archived.entry(m.entity.clone()).or_default();
                        *hwm = (*hwm).max(last);
                    } else if name.starts_with("legacy-")
                        && name.ends_with(".parquet")
                        // A backfill's snapshot files are not polls: never replayed by the poller.
                        && !name.starts_with("legacy-snapshot")
                    {
                        let modified = f.metadata().and_then(|md| md.modified()).map_err(io)?;
                        if newest_legacy.as_ref().is_none_or(|(t, _)| modified > *t) {
                            newest_legacy = Some((modified, f.path()));
                        }
                    }
                }
            }
            if let Some((_, path)) = newest_legacy {
                let positions = schema::read_keys_and_positions(&path)?;
                self.legacy_last.insert(m.entity.clone(), positions.into_iter().collect());
            }
        }
        Ok(())
    }

    /// Buffers a decided change (durable after the next [`Archive::sync`]); a replayed one
    /// already archived or spooled is skipped (false).
    pub fn push(&mut self, row: ArchiveRow) -> bool {
        let entity = &self.mappings.entities[row.entity].entity;
        if row.replayable {
            let already = match row.source {
                System::Odoo => match (row.position.parse::<Lsn>(), self.odoo_archived.get(entity)) {
                    (Ok(lsn), Some(hwm)) => odoo_order(lsn.0, row.txn_part) <= *hwm,
                    _ => false,
                },
                System::Legacy => self
                    .legacy_last
                    .get(entity)
                    .is_some_and(|seen| seen.contains(&(row.key.clone(), row.position.clone()))),
            };
            if already {
                self.skipped += 1;
                return false;
            }
            self.unsynced_marks.push((row.entity, row.source, row.key.clone(), row.position.clone(), row.txn_part));
        }
        let line = spool::to_line(&self.mappings, &row);
        self.buffered_bytes += line.len();
        self.unsynced.extend_from_slice(line.as_bytes());
        let day = row.commit_ts.unwrap_or(row.captured_at).date_naive();
        let m = &self.mappings.entities[row.entity];
        self.buffers.entry((row.entity, day, row.source)).or_insert_with(|| Buffer::new(m)).push(m, &row);
        self.buffered += 1;
        self.oldest.get_or_insert_with(Instant::now);
        true
    }

    /// Changes buffered and not yet durable.
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// A buffer is full, the buffers hold [`ROTATE_BYTES`] of changes between them (wide rows
    /// or many entities: memory stays bounded whatever `rotate_rows` says), or the oldest
    /// buffered change waited long enough.
    pub fn due(&self) -> bool {
        self.buffers.values().any(|b| b.rows >= self.settings.rotate_rows)
            || self.buffered_bytes >= ROTATE_BYTES
            || self.oldest.is_some_and(|t| t.elapsed() >= self.settings.rotate_after)
    }

    /// Writes every buffer as a durable file. On failure nothing is lost: what was not written
    /// is kept and the next flush writes it (the spool still holds it too).
    pub async fn flush(&mut self) -> Result<Flushed, ArchiveError> {
        self.sync().await?;
        if self.buffers.is_empty() && self.ready.is_empty() {
            self.oldest = None;
            return Ok(Flushed::default());
        }
        // Changes pushed from now on go to a new spool file; the older ones are deleted once
        // the Parquet files holding their changes are durable.
        let spool_dir = self.spool_dir.clone();
        let next = self.spool.as_ref().map(|s| s.seq + 1).unwrap_or(1);
        let io = |source| ArchiveError::Io { dir: spool_dir.clone(), source };
        self.spool = Some(spool::SpoolFile::create(&spool_dir, next).map_err(io)?);
        for ((entity, day, source), mut buffer) in std::mem::take(&mut self.buffers) {
            let m = &self.mappings.entities[entity];
            let folder =
                self.settings.dir.join(format!("entity={}", m.entity)).join(format!("date={}", day.format("%Y-%m-%d")));
            self.ready.push(Ready {
                entity: m.entity.clone(),
                folder,
                stem: buffer.stem(source),
                batch: buffer.builder.finish(m)?,
                legacy: std::mem::take(&mut buffer.legacy),
            });
        }
        let ready = std::mem::take(&mut self.ready);
        let (result, unwritten, written) = tokio::task::spawn_blocking(move || write_ready(ready))
            .await
            .map_err(|e| ArchiveError::Schema(format!("archive writer thread: {e}")))?;
        // Of legacy changes, only the newest file's need remembering: a crash can cut off the
        // watermark save of the last poll only.
        let mut flushed = Flushed::default();
        let mut legacy_flushed: HashMap<String, HashSet<(String, String)>> = HashMap::new();
        for (ready, path) in written {
            flushed.rows += ready.batch.num_rows() as u64;
            flushed.files.push(path);
            if !ready.legacy.is_empty() {
                legacy_flushed.entry(ready.entity).or_default().extend(ready.legacy);
            }
        }
        self.legacy_last.extend(legacy_flushed);
        self.ready = unwritten;
        result?;
        for (seq, path) in spool::spool_files(&spool_dir).map_err(io)? {
            if seq < next {
                std::fs::remove_file(&path).map_err(io)?;
            }
        }
        self.buffered = 0;
        self.buffered_bytes = 0;
        self.oldest = None;
        Ok(flushed)
    }
}

/// One (entity, day, source) buffer: its changes in Arrow builders, and what its file name
/// and the replay rules need.
struct Buffer {
    builder: schema::RowsBuilder,
    rows: usize,
    first_lsn: u64,
    /// The highest (commit LSN, part) of its Odoo rows.
    last_odoo: (u64, u64),
    first_position: String,
    last_position: String,
    digest: u64,
    /// Legacy changes' (key, position).
    legacy: Vec<(String, String)>,
}

impl Buffer {
    fn new(m: &crate::mapping::Mapping) -> Buffer {
        Buffer {
            builder: schema::RowsBuilder::new(m),
            rows: 0,
            first_lsn: u64::MAX,
            last_odoo: (0, 0),
            first_position: String::new(),
            last_position: String::new(),
            digest: 0xcbf2_9ce4_8422_2325,
            legacy: Vec::new(),
        }
    }

    fn push(&mut self, m: &crate::mapping::Mapping, row: &ArchiveRow) {
        self.builder.push(m, row);
        self.rows += 1;
        match row.source {
            System::Odoo => {
                if let Ok(lsn) = row.position.parse::<Lsn>() {
                    self.first_lsn = self.first_lsn.min(lsn.0);
                    self.last_odoo = self.last_odoo.max(odoo_order(lsn.0, row.txn_part));
                }
            }
            System::Legacy => {
                if self.first_position.is_empty() {
                    self.first_position = row.position.clone();
                }
                self.last_position.clone_from(&row.position);
                for b in row.key.bytes().chain([0]).chain(row.position.bytes()).chain([0]) {
                    self.digest = (self.digest ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
                }
                self.legacy.push((row.key.clone(), row.position.clone()));
            }
        }
    }

    /// `odoo-<first LSN>-<last LSN>` (16 hex digits each, so names sort by position), followed
    /// by `-p<part>` when the last row belongs to a part of a transaction handled in parts, or
    /// `legacy-<first>-<last>-<digest>` (a legacy position is a version and a key, made safe
    /// for a file name; the digest tells apart polls that begin and end alike).
    fn stem(&self, source: System) -> String {
        match source {
            System::Odoo => {
                let first = if self.first_lsn == u64::MAX { 0 } else { self.first_lsn };
                let (last, part) = self.last_odoo;
                if part == u64::MAX {
                    format!("odoo-{first:016X}-{last:016X}")
                } else {
                    format!("odoo-{first:016X}-{last:016X}-p{part:016X}")
                }
            }
            System::Legacy => format!(
                "legacy-{}-{}-{:08x}",
                safe(&self.first_position),
                safe(&self.last_position),
                self.digest as u32
            ),
        }
    }
}

/// A finished buffer waiting for its file.
struct Ready {
    entity: String,
    folder: PathBuf,
    stem: String,
    batch: arrow::record_batch::RecordBatch,
    legacy: Vec<(String, String)>,
}

/// Writes each file; returns the first failure, what was not written, and what was (with its
/// path), so a retry writes only the rest.
#[allow(clippy::type_complexity)]
fn write_ready(ready: Vec<Ready>) -> (Result<(), ArchiveError>, Vec<Ready>, Vec<(Ready, PathBuf)>) {
    let mut written = Vec::new();
    let mut rest = ready.into_iter();
    while let Some(r) = rest.next() {
        let path = unused_name(&r.folder, &r.stem);
        let result = file::ParquetFile::create(&path, r.batch.schema()).and_then(|mut out| {
            out.write(&r.batch)?;
            out.commit()
        });
        match result {
            Ok(_) => written.push((r, path)),
            Err(error) => {
                let mut unwritten = vec![r];
                unwritten.extend(rest);
                return (Err(error.into()), unwritten, written);
            }
        }
    }
    (Ok(()), Vec::new(), written)
}

/// The stem's `.parquet` name in `folder`; an Odoo name already taken (retried changes keep
/// their original position) gets a `~N` suffix rather than replacing an earlier file.
fn unused_name(folder: &Path, stem: &str) -> PathBuf {
    let path = folder.join(format!("{stem}.parquet"));
    if stem.starts_with("legacy-") || !path.exists() {
        return path;
    }
    (2..).map(|n| folder.join(format!("{stem}~{n}.parquet"))).find(|p| !p.exists()).unwrap_or(path)
}

fn safe(position: &str) -> String {
    let mut out: String =
        position.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '_' }).take(40).collect();
    while out.ends_with('_') {
        out.pop();
    }
    out
}

/// The last (LSN, part) of an `odoo-<first>-<last>[-p<part>][~N].parquet` name.
fn odoo_file_last(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_prefix("odoo-")?.strip_suffix(".parquet")?;
    let stem = stem.split('~').next()?;
    let mut parts = stem.split('-');
    let _first = parts.next()?;
    let last = u64::from_str_radix(parts.next()?, 16).ok()?;
    let part = match parts.next() {
        None => None,
        Some(p) => Some(u64::from_str_radix(p.strip_prefix('p')?, 16).ok()?),
    };
    Some(odoo_order(last, part))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odoo_names_carry_the_lsn_range() {
        let whole = Some((0x10000A8, u64::MAX));
        assert_eq!(odoo_file_last("odoo-0000000001000000-00000000010000A8.parquet"), whole);
        assert_eq!(odoo_file_last("odoo-0000000001000000-00000000010000A8~2.parquet"), whole);
        // A file ending in the middle of a transaction handled in parts: the parts after it
        // are still to be archived, the transaction's later whole replay is not.
        let part = odoo_file_last("odoo-0000000001000000-00000000010000A8-p0000000000001388~3.parquet");
        assert_eq!(part, Some((0x10000A8, 5000)));
        assert!(part < Some(odoo_order(0x10000A8, Some(5001))));
        assert!(part >= Some(odoo_order(0x10000A8, Some(5000))));
        assert_eq!(odoo_file_last("legacy-1-2-abcd.parquet"), None);
        assert_eq!(safe("2026-11-27 10:00:00.5 ITEM/1"), "2026_11_27_10_00_00.5_ITEM_1");
    }
}

/// What an archive directory holds, for `millrace status` (read from the files alone).
#[derive(Debug, Default, Clone)]
pub struct DirSummary {
    pub files: u64,
    pub bytes: u64,
    /// The most recently written file and when.
    pub newest: Option<(PathBuf, chrono::DateTime<chrono::Utc>)>,
    /// Changes in spools, waiting for their file (or for the next start, after a crash).
    pub spooled: u64,
}

pub fn summarize(dir: &Path) -> std::io::Result<DirSummary> {
    fn walk(dir: &Path, out: &mut DirSummary) -> std::io::Result<()> {
        let Ok(entries) = std::fs::read_dir(dir) else { return Ok(()) };
        for entry in entries {
            let entry = entry?;
            let path = entry.path();
            let meta = entry.metadata()?;
            if meta.is_dir() {
                walk(&path, out)?;
            } else if path.extension().is_some_and(|e| e == "parquet") {
                out.files += 1;
                out.bytes += meta.len();
                let modified: chrono::DateTime<chrono::Utc> = meta.modified()?.into();
                if out.newest.as_ref().is_none_or(|(_, t)| modified > *t) {
                    out.newest = Some((path, modified));
                }
            } else if path.extension().is_some_and(|e| e == "jsonl") {
                let text = std::fs::read(&path)?;
                out.spooled += text.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count() as u64;
            }
        }
        Ok(())
    }
    let mut out = DirSummary::default();
    walk(dir, &mut out)?;
    Ok(out)
}
