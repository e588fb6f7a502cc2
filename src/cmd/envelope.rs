//! The JSON form of a row change, in the Debezium envelope existing CDC consumers read:
//! `{"op","before","after","source":{…},"ts_ms"}`.
//!
//! Written by hand rather than through serde derive: it is the hot path of `tail`, and a row's
//! columns are written straight from the shared column names without building a map.

use std::io::{self, Write};

use chrono::{DateTime, Utc};

use crate::model::{Position, Row, RowChange, Value};

/// Writes one change as a JSON line.
pub fn write_json_line(out: &mut impl Write, change: &RowChange, now: DateTime<Utc>) -> io::Result<()> {
    out.write_all(b"{\"op\":\"")?;
    out.write_all(change.op.letter().as_bytes())?;
    out.write_all(b"\",\"before\":")?;
    write_row(out, change.before.as_ref())?;
    out.write_all(b",\"after\":")?;
    write_row(out, change.after.as_ref())?;
    let unchanged: Vec<&str> = change
        .after
        .iter()
        .flat_map(|row| row.iter())
        .filter(|(_, v)| matches!(v, Value::Unchanged))
        .map(|(c, _)| c)
        .collect();
    if !unchanged.is_empty() {
        // TOASTed columns the update did not touch: the source did not send them, so they are
        // named here instead of being given a made-up value.
        out.write_all(b",\"unchanged\":[")?;
        for (i, column) in unchanged.iter().enumerate() {
            if i > 0 {
                out.write_all(b",")?;
            }
            write_str(out, column)?;
        }
        out.write_all(b"]")?;
    }
    out.write_all(b",\"source\":{\"connector\":\"millrace\",\"system\":\"")?;
    out.write_all(change.system().as_str().as_bytes())?;
    match &change.position {
        Position::Lsn(lsn) => write!(out, "\",\"lsn\":\"{lsn}\"")?,
        Position::Legacy { version, key } => {
            out.write_all(b"\",\"version\":")?;
            write_str(out, version)?;
            out.write_all(b",\"key\":")?;
            write_str(out, key)?;
        }
    }
    out.write_all(b",\"xid\":")?;
    match change.xid {
        Some(xid) => write!(out, "{xid}")?,
        None => out.write_all(b"null")?,
    }
    out.write_all(b",\"commit_ts\":")?;
    match change.commit_ts {
        Some(ts) => write!(out, "\"{}\"", ts.format("%Y-%m-%dT%H:%M:%S%.6fZ"))?,
        None => out.write_all(b"null")?,
    }
    out.write_all(b",\"schema\":")?;
    write_str(out, &change.table.schema)?;
    out.write_all(b",\"table\":")?;
    write_str(out, &change.table.name)?;
    if let Some(origin) = &change.origin {
        out.write_all(b",\"origin\":")?;
        write_str(out, origin)?;
    }
    writeln!(out, "}},\"ts_ms\":{}}}", now.timestamp_millis())
}

fn write_row(out: &mut impl Write, row: Option<&Row>) -> io::Result<()> {
    let Some(row) = row else {
        return out.write_all(b"null");
    };
    out.write_all(b"{")?;
    let mut first = true;
    for (column, value) in row.iter() {
        if matches!(value, Value::Unchanged) {
            continue;
        }
        if !first {
            out.write_all(b",")?;
        }
        first = false;
        write_str(out, column)?;
        out.write_all(b":")?;
        write_value(out, value)?;
    }
    out.write_all(b"}")
}

/// Values as JSON: exact decimals as strings (a JSON number would be read as a float), bytes as
/// PostgreSQL's hex text, times in ISO 8601.
pub fn write_value(out: &mut impl Write, value: &Value) -> io::Result<()> {
    match value {
        Value::Null | Value::Unchanged => out.write_all(b"null"),
        Value::Bool(b) => out.write_all(if *b { b"true" } else { b"false" }),
        Value::Int(i) => write!(out, "{i}"),
        // serde_json prints the shortest round-trip form, with an exponent where it is shorter.
        Value::Float(f) if f.is_finite() => serde_json::to_writer(&mut *out, f).map_err(io::Error::other),
        Value::Float(f) => write!(
            out,
            "\"{}\"",
            if f.is_nan() {
                "NaN"
            } else if *f > 0.0 {
                "Infinity"
            } else {
                "-Infinity"
            }
        ),
        Value::Decimal(d) => write!(out, "\"{d}\""),
        Value::Text(s) => write_str(out, s),
        Value::Bytes(bytes) => {
            out.write_all(b"\"\\\\x")?;
            for b in bytes {
                write!(out, "{b:02x}")?;
            }
            out.write_all(b"\"")
        }
        Value::Date(d) => write!(out, "\"{}\"", d.format("%Y-%m-%d")),
        Value::Time(t) => write!(out, "\"{}\"", t.format("%H:%M:%S%.f")),
        Value::Timestamp(t) => write!(out, "\"{}\"", t.format("%Y-%m-%dT%H:%M:%S%.f")),
        Value::TimestampTz(t) => write!(out, "\"{}\"", t.format("%Y-%m-%dT%H:%M:%S%.fZ")),
        // Embedded as is: the source validated it, and re-encoding would round big numbers.
        Value::Json(text) => out.write_all(text.as_bytes()),
    }
}

fn write_str(out: &mut impl Write, s: &str) -> io::Result<()> {
    // Fast path: most column names and values need no escaping.
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.write_all(b"\"")?;
        out.write_all(s.as_bytes())?;
        return out.write_all(b"\"");
    }
    serde_json::to_writer(&mut *out, s).map_err(io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Decimal, Lsn, Op, Position, TableName};
    use std::sync::Arc;

    #[test]
    fn envelope_is_valid_json_with_exact_decimals_and_unchanged_named() {
        let columns: Arc<[String]> = vec!["id".to_string(), "qty".into(), "note".into(), "blob".into()].into();
        let change = RowChange {
            table: TableName::new("public", "stock_move"),
            op: Op::Update,
            before: None,
            after: Some(Row {
                columns,
                values: vec![
                    Value::Int(7),
                    Value::Decimal("12.500".parse::<Decimal>().unwrap()),
                    Value::Text("a \"quoted\"\nline".into()),
                    Value::Unchanged,
                ],
            }),
            position: Position::Lsn(Lsn(0x1_0000_00FF)),
            commit_ts: None,
            xid: Some(42),
            origin: None,
        };
        let mut out = Vec::new();
        write_json_line(&mut out, &change, Utc::now()).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["op"], "u");
        assert_eq!(v["after"]["qty"], "12.500");
        assert_eq!(v["after"]["note"], "a \"quoted\"\nline");
        assert!(v["after"].get("blob").is_none());
        assert_eq!(v["unchanged"][0], "blob");
        assert_eq!(v["source"]["lsn"], "1/FF");
        assert_eq!(v["source"]["table"], "stock_move");
        assert!(out.ends_with(b"\n"));
    }
}
