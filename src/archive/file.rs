//! One Parquet file written atomically: to a hidden temporary name beside its final one, then
//! fsynced, renamed and the directory fsynced. A reader sees the whole file or none of it, and
//! a crash leaves at most a temporary file, which the next start removes.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

/// Why a Parquet file could not be written; names the file.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Parquet { path: PathBuf, source: parquet::errors::ParquetError },
}

/// The marker of a temporary file: hidden (readers skip names starting with a dot) and
/// recognisable, so a later start can clean up after a crash.
pub const TEMP_SUFFIX: &str = ".millrace-tmp";

/// Rows per row group: large enough for good compression and few footer entries, small
/// enough that a reader can skip by statistics.
const ROW_GROUP_ROWS: usize = 64 * 1024;

pub struct ParquetFile {
    path: PathBuf,
    temp: PathBuf,
    writer: Option<ArrowWriter<File>>,
    rows: u64,
}

impl ParquetFile {
    /// Starts `path` (its directory is created), zstd-compressed.
    pub fn create(path: &Path, schema: SchemaRef) -> Result<ParquetFile, FileError> {
        let io = |source| FileError::Io { path: path.to_path_buf(), source };
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io)?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let temp = dir.join(format!(".{name}.{}{TEMP_SUFFIX}", std::process::id()));
        let file = File::create(&temp).map_err(io)?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).unwrap_or_default()))
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_created_by(format!("millrace {}", env!("CARGO_PKG_VERSION")))
            .build();
        let writer = ArrowWriter::try_new(file, schema, Some(props))
            .map_err(|source| FileError::Parquet { path: path.to_path_buf(), source })?;
        Ok(ParquetFile { path: path.to_path_buf(), temp, writer: Some(writer), rows: 0 })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), FileError> {
        let Some(writer) = self.writer.as_mut() else { return Ok(()) };
        self.rows += batch.num_rows() as u64;
        writer.write(batch).map_err(|source| FileError::Parquet { path: self.path.clone(), source })
    }

    /// Finishes the file and makes it durable under its final name; returns the rows written.
    pub fn commit(mut self) -> Result<u64, FileError> {
        let path = self.path.clone();
        let io = |source| FileError::Io { path: path.clone(), source };
        let Some(writer) = self.writer.take() else { return Ok(self.rows) };
        let file = writer.into_inner().map_err(|source| FileError::Parquet { path: path.clone(), source })?;
        file.sync_all().map_err(io)?;
        drop(file);
        std::fs::rename(&self.temp, &self.path).map_err(io)?;
        sync_dir(self.path.parent().unwrap_or(Path::new("."))).map_err(io)?;
        Ok(self.rows)
    }
}

impl Drop for ParquetFile {
    fn drop(&mut self) {
        if self.writer.is_some() {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// Makes a rename in `dir` durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Whether the process that is writing this temporary file (its pid is in the name) still
/// runs: another millrace process (a backfill beside the service) may share the archive.
fn writer_alive(path: &Path) -> bool {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let pid = name.strip_suffix(TEMP_SUFFIX).and_then(|n| n.rsplit('.').next()).and_then(|p| p.parse::<u32>().ok());
    match pid {
        Some(pid) if pid != std::process::id() => Path::new(&format!("/proc/{pid}")).exists(),
        _ => false,
    }
}

/// Removes the temporary files a crash left under `dir` (recursively); returns how many.
pub fn remove_temporaries(dir: &Path) -> std::io::Result<usize> {
    let mut removed = 0;
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(0) };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            removed += remove_temporaries(&path)?;
        } else if path.to_string_lossy().ends_with(TEMP_SUFFIX) && !writer_alive(&path) {
            std::fs::remove_file(&path)?;
            removed += 1;
        }
    }
    Ok(removed)
}
