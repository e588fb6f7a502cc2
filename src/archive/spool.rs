//! The archive's write-ahead spool: buffered changes appended as JSON lines to
//! `<dir>/_spool/<run|backfill>/<seq>.jsonl` and fsynced once per batch, so a source position can be
//! acknowledged as soon as its changes are in the spool, without waiting for a Parquet file to
//! rotate. A flush writes the Parquet files, then deletes the spool files it covered; a start
//! reads back whatever spool a crash left (a torn last line is cut off) and archives it.
//! (`_spool` starts with an underscore: pyarrow and Spark skip it, and it holds no `.parquet`.)

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde_json::{json, Value as Json};

use super::ArchiveRow;
use crate::mapping::{Mappings, Record, System};

const OPS: [&str; 4] = ["c", "u", "d", "r"];
const DECISIONS: [&str; 8] = ["apply", "echo", "stale", "conflict", "filtered", "parked", "dead_letter", "failed"];

/// Each kind of process (`run`, `backfill`) has a spool of its own, so both may archive into
/// one directory at once.
pub fn spool_dir(archive: &Path, owner: &str) -> PathBuf {
    archive.join("_spool").join(owner)
}

/// Holds the spool directory for this process: a second process of the same kind on the same
/// archive would interleave and delete this one's spool.
pub fn lock(dir: &Path) -> std::io::Result<Result<File, String>> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(".lock");
    let file = OpenOptions::new().create(true).truncate(false).write(true).open(&path)?;
    match file.try_lock() {
        Ok(()) => Ok(Ok(file)),
        Err(std::fs::TryLockError::WouldBlock) => {
            Ok(Err(format!("{} is locked by another millrace process using the same archive", path.display())))
        }
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// The spool files in `dir`, oldest first, with their sequence numbers.
pub fn spool_files(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(files) };
    for entry in entries {
        let path = entry?.path();
        let seq = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".jsonl"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(seq) = seq {
            files.push((seq, path));
        }
    }
    files.sort();
    Ok(files)
}

/// One row as a spool line.
pub fn to_line(mappings: &Mappings, row: &ArchiveRow) -> String {
    let m = &mappings.entities[row.entity];
    let micros = |t: &DateTime<Utc>| t.timestamp_micros();
    let line = json!({
        "entity": m.entity,
        "key": row.key,
        "source": row.source.as_str(),
        "source_table": row.source_table,
        "op": row.op,
        "decision": row.decision,
        "reason": row.reason,
        "position": row.position,
        "commit_ts": row.commit_ts.as_ref().map(micros),
        "xid": row.xid,
        "captured_at": micros(&row.captured_at),
        "after": row.after.as_ref().map(|r| r.to_json(m)),
        "before": row.before.as_ref().map(|r| r.to_json(m)),
        "replayable": row.replayable,
        "txn_part": row.txn_part,
    });
    let mut text = line.to_string();
    text.push('\n');
    text
}

/// A spool line back as a row; `Err` names what is wrong with it.
pub fn from_line(mappings: &Mappings, line: &str) -> Result<ArchiveRow, String> {
    let v: Json = serde_json::from_str(line).map_err(|e| e.to_string())?;
    let text = |name: &str| v.get(name).and_then(Json::as_str).ok_or_else(|| format!("no {name}"));
    let entity_name = text("entity")?;
    let entity = mappings
        .entities
        .iter()
        .position(|m| m.entity == entity_name)
        .ok_or_else(|| format!("entity {entity_name} is no longer mapped"))?;
    let m = &mappings.entities[entity];
    let record = |name: &str| -> Result<Option<Record>, String> {
        match v.get(name) {
            None | Some(Json::Null) => Ok(None),
            Some(json) => Record::from_json(m, json).map(Some).map_err(|e| format!("{name}: {e}")),
        }
    };
    let time = |name: &str| v.get(name).and_then(Json::as_i64).and_then(DateTime::from_timestamp_micros);
    let op = text("op")?;
    let decision = text("decision")?;
    Ok(ArchiveRow {
        entity,
        key: text("key")?.to_string(),
        source: System::parse(text("source")?).ok_or("unknown source")?,
        source_table: text("source_table")?.to_string(),
        op: OPS.iter().find(|o| **o == op).ok_or_else(|| format!("unknown op {op}"))?,
        decision: DECISIONS.iter().find(|d| **d == decision).ok_or_else(|| format!("unknown decision {decision}"))?,
        reason: v.get("reason").and_then(Json::as_str).map(str::to_string),
        position: text("position")?.to_string(),
        commit_ts: time("commit_ts"),
        xid: v.get("xid").and_then(Json::as_u64).and_then(|x| u32::try_from(x).ok()),
        captured_at: time("captured_at").ok_or("no captured_at")?,
        after: record("after")?,
        before: record("before")?,
        replayable: v.get("replayable").and_then(Json::as_bool).unwrap_or(false),
        txn_part: v.get("txn_part").and_then(Json::as_u64),
    })
}

/// Reads a spool file's whole lines; a line a crash cut short (the last one) is dropped, and
/// a line that no longer reads (an entity unmapped since) is reported and skipped.
pub fn read(mappings: &Mappings, path: &Path) -> std::io::Result<Vec<ArchiveRow>> {
    let mut rows = Vec::new();
    let reader = BufReader::new(File::open(path)?);
    for (n, line) in reader.split(b'\n').enumerate() {
        let line = line?;
        let Ok(text) = std::str::from_utf8(&line) else { continue };
        if text.trim().is_empty() {
            continue;
        }
        match from_line(mappings, text) {
            Ok(row) => rows.push(row),
            Err(reason) => {
                tracing::warn!(file = %path.display(), line = n + 1, %reason, "archive spool line not read (a write cut short by a crash, or an entity no longer mapped)")
            }
        }
    }
    Ok(rows)
}

/// The spool file being appended to.
pub struct SpoolFile {
    pub seq: u64,
    pub path: PathBuf,
    file: File,
}

impl SpoolFile {
    pub fn create(dir: &Path, seq: u64) -> std::io::Result<SpoolFile> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{seq:010}.jsonl"));
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        super::file::sync_dir(dir)?;
        Ok(SpoolFile { seq, path, file })
    }

    /// Appends and makes durable.
    pub fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.file.write_all(bytes)?;
        self.file.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_survives_the_spool() {
        let mapping = crate::mapping::Mapping::parse(
            Path::new("item.toml"),
            r#"entity = "item"
key = ["item_no"]
owner = "legacy"
[fields]
item_no = { type = "text" }
price = { type = "decimal" }
[odoo]
table = "product_product"
[odoo.columns]
item_no = "default_code"
[legacy]
table = "ITEM_MASTER"
strategy = "hashdiff"
[legacy.columns]
item_no = "ITEM_NO"
price = "LIST_PRICE"
"#,
        )
        .unwrap();
        let mappings = Mappings { entities: vec![mapping] };
        let record = Record {
            values: vec![
                crate::model::Value::Text("A-1".into()),
                crate::model::Value::Decimal("12.5000".parse().unwrap()),
            ],
        };
        let row = ArchiveRow {
            entity: 0,
            key: "[\"A-1\"]".into(),
            source: System::Legacy,
            source_table: "ITEM_MASTER".into(),
            op: "u",
            decision: "conflict",
            reason: Some("why".into()),
            position: "2026-11-27 10:00:00 [\"A-1\"]".into(),
            commit_ts: None,
            xid: None,
            captured_at: DateTime::from_timestamp_micros(1_795_000_000_123_456).unwrap(),
            after: Some(record.clone()),
            before: None,
            replayable: true,
            txn_part: Some(7),
        };
        let back = from_line(&mappings, to_line(&mappings, &row).trim_end()).unwrap();
        // The same number (trailing zeros are not kept; the archive column has a fixed scale).
        match &back.after.unwrap().values[1] {
            crate::model::Value::Decimal(d) => assert_eq!(d.to_string(), "12.5"),
            other => panic!("{other:?}"),
        }
        assert_eq!((back.op, back.decision, back.replayable, back.txn_part), ("u", "conflict", true, Some(7)));
        assert_eq!(back.captured_at, row.captured_at);
        assert!(from_line(&mappings, "{\"entity\":\"item\",\"key\":").is_err(), "a torn line is refused");
    }
}
