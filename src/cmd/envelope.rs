//! The JSON form of a row change, in the Debezium envelope existing CDC consumers read:
//! `{"op","before","after","source":{…},"ts_ms"}`.
//!
//! Written by hand rather than through serde derive: it is the hot path of `tail`, and a row's
//! columns are written straight from the shared column names without building a map.

use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};

use crate::model::to_pg_text;
use crate::model::{Position, Row, RowChange, Value, DECIMAL_TEXT_MAX};

/// A column list and its pre-written `"name":` keys.
type ColumnKeys = (Arc<[String]>, Vec<Vec<u8>>);

/// Writes changes as JSON lines. Keeps what repeats from one change to the next: the escaped
/// `"column":` keys of each table, and the commit timestamp of the current transaction.
#[derive(Default)]
pub struct EnvelopeWriter {
    /// Per column list (shared by every row of a relation): the pre-written `"name":` keys. The
    /// `Arc` is kept so its address, the map key, cannot be reused by another list.
    keys: HashMap<usize, ColumnKeys>,
    commit_ts: Option<(DateTime<Utc>, Vec<u8>)>,
}

impl EnvelopeWriter {
    pub fn new() -> Self {
        EnvelopeWriter::default()
    }

    /// Writes one change as a JSON line.
    pub fn write(&mut self, out: &mut impl Write, change: &RowChange, now: DateTime<Utc>) -> io::Result<()> {
        out.write_all(b"{\"op\":\"")?;
        out.write_all(change.op.letter().as_bytes())?;
        out.write_all(b"\",\"before\":")?;
        self.write_row(out, change.before.as_ref())?;
        out.write_all(b",\"after\":")?;
        self.write_row(out, change.after.as_ref())?;
        if let Some(row) = &change.after {
            if row.values.iter().any(|v| matches!(v, Value::Unchanged)) {
                // TOASTed columns the update did not touch: the source did not send them, so they
                // are named here instead of being given a made-up value.
                out.write_all(b",\"unchanged\":[")?;
                let mut first = true;
                for (column, _) in row.iter().filter(|(_, v)| matches!(v, Value::Unchanged)) {
                    if !first {
                        out.write_all(b",")?;
                    }
                    first = false;
                    write_str(out, column)?;
                }
                out.write_all(b"]")?;
            }
        }
        out.write_all(b",\"source\":{\"connector\":\"millrace\",\"system\":\"")?;
        out.write_all(change.system().as_str().as_bytes())?;
        match &change.position {
            Position::Lsn(lsn) => {
                out.write_all(b"\",\"lsn\":\"")?;
                out.write_all(lsn.format(&mut [0; 17]).as_bytes())?;
                out.write_all(b"\"")?;
            }
            Position::Legacy { version, key } => {
                out.write_all(b"\",\"version\":")?;
                write_str(out, version)?;
                out.write_all(b",\"key\":")?;
                write_str(out, key)?;
            }
        }
        out.write_all(b",\"xid\":")?;
        match change.xid {
            Some(xid) => write_int(out, i64::from(xid))?,
            None => out.write_all(b"null")?,
        }
        out.write_all(b",\"commit_ts\":")?;
        match change.commit_ts {
            Some(ts) => {
                let cached = match &self.commit_ts {
                    Some((at, _)) => *at == ts,
                    None => false,
                };
                if !cached {
                    let mut text = Vec::with_capacity(32);
                    text.push(b'"');
                    write_datetime(&mut text, &ts.naive_utc())?;
                    text.extend_from_slice(b"Z\"");
                    self.commit_ts = Some((ts, text));
                }
                if let Some((_, text)) = &self.commit_ts {
                    out.write_all(text)?;
                }
            }
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
        out.write_all(b"},\"ts_ms\":")?;
        write_int(out, now.timestamp_millis())?;
        out.write_all(b"}\n")
    }

    fn write_row(&mut self, out: &mut impl Write, row: Option<&Row>) -> io::Result<()> {
        let Some(row) = row else {
            return out.write_all(b"null");
        };
        let id = Arc::as_ptr(&row.columns) as *const u8 as usize;
        let keys = &self
            .keys
            .entry(id)
            .or_insert_with(|| {
                let keys = row
                    .columns
                    .iter()
                    .map(|c| {
                        let mut key = Vec::with_capacity(c.len() + 3);
                        let _ = write_str(&mut key, c);
                        key.push(b':');
                        key
                    })
                    .collect();
                (row.columns.clone(), keys)
            })
            .1;
        out.write_all(b"{")?;
        let mut first = true;
        for (key, value) in keys.iter().zip(&row.values) {
            if matches!(value, Value::Unchanged) {
                continue;
            }
            if !first {
                out.write_all(b",")?;
            }
            first = false;
            out.write_all(key)?;
            write_value(out, value)?;
        }
        out.write_all(b"}")
    }
}

/// Writes one change as a JSON line (without the caches of [`EnvelopeWriter`]).
pub fn write_json_line(out: &mut impl Write, change: &RowChange, now: DateTime<Utc>) -> io::Result<()> {
    EnvelopeWriter::new().write(out, change, now)
}

/// Values as JSON: exact decimals as strings (a JSON number would be read as a float), bytes as
/// PostgreSQL's hex text, times in ISO 8601, `json`/`jsonb` as a string holding the JSON text (as
/// Debezium does: the document `null` is `"null"`, SQL NULL is `null`), arrays as JSON arrays,
/// values without an exact variant ([`Value::Raw`]: numeric `NaN`, `infinity`, …) as their
/// PostgreSQL text.
pub fn write_value(out: &mut impl Write, value: &Value) -> io::Result<()> {
    match value {
        Value::Null | Value::Unchanged => out.write_all(b"null"),
        Value::Bool(b) => out.write_all(if *b { b"true" } else { b"false" }),
        Value::Int(i) => write_int(out, *i),
        // serde_json prints the shortest round-trip form, with an exponent where it is shorter.
        Value::Float(f) if f.is_finite() => serde_json::to_writer(&mut *out, f).map_err(io::Error::other),
        Value::Float(f) => {
            write!(
                out,
                "\"{}\"",
                if f.is_nan() {
                    "NaN"
                } else if *f > 0.0 {
                    "Infinity"
                } else {
                    "-Infinity"
                }
            )
        }
        Value::Decimal(d) => {
            out.write_all(b"\"")?;
            out.write_all(d.format(&mut [0; DECIMAL_TEXT_MAX]).as_bytes())?;
            out.write_all(b"\"")
        }
        Value::Text(s) => write_str(out, s),
        Value::Bytes(bytes) => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.write_all(b"\"\\\\x")?;
            let mut hex = Vec::with_capacity(bytes.len() * 2 + 1);
            for b in bytes {
                hex.push(HEX[usize::from(b >> 4)]);
                hex.push(HEX[usize::from(b & 15)]);
            }
            hex.push(b'"');
            out.write_all(&hex)
        }
        Value::Date(d) => {
            out.write_all(b"\"")?;
            write_date(out, d)?;
            out.write_all(b"\"")
        }
        Value::Time(t) => {
            out.write_all(b"\"")?;
            write_time(out, t)?;
            out.write_all(b"\"")
        }
        Value::Timestamp(t) if iso_year(t.year()) => {
            out.write_all(b"\"")?;
            write_datetime(out, t)?;
            out.write_all(b"\"")
        }
        Value::TimestampTz(t) if iso_year(t.year()) => {
            out.write_all(b"\"")?;
            write_datetime(out, &t.naive_utc())?;
            out.write_all(b"Z\"")
        }
        // Years before 1 or after 9999: PostgreSQL's own text (`0044-03-15 12:00:00 BC`,
        // `10000-01-01 00:00:00+00`), which ISO 8601 has no agreed form for.
        Value::Timestamp(_) | Value::TimestampTz(_) => write_str(out, &to_pg_text(value).unwrap_or_default()),
        // A string holding the JSON text exactly as the source sent it, as Debezium does.
        Value::Json(text) => write_str(out, text),
        Value::Array(items) => {
            out.write_all(b"[")?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.write_all(b",")?;
                }
                write_value(out, item)?;
            }
            out.write_all(b"]")
        }
        Value::Raw { text, .. } => write_str(out, text),
    }
}

/// Years ISO 8601 writes without an expanded, signed year.
fn iso_year(year: i32) -> bool {
    (1..=9999).contains(&year)
}

fn write_int(out: &mut impl Write, n: i64) -> io::Result<()> {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut rest = n.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        out.write_all(b"-")?;
    }
    out.write_all(&buf[i..])
}

fn two(out: &mut [u8], at: usize, n: u32) {
    out[at] = b'0' + (n / 10) as u8;
    out[at + 1] = b'0' + (n % 10) as u8;
}

/// `YYYY-MM-DD`, by hand for the hot path. Years outside 1..=9999 as PostgreSQL writes them
/// (`0044-03-15 BC`, `10000-01-01`): a date is PostgreSQL's text in every case.
fn write_date(out: &mut impl Write, d: &NaiveDate) -> io::Result<()> {
    let year = d.year();
    if !iso_year(year) {
        return out.write_all(to_pg_text(&Value::Date(*d)).unwrap_or_default().as_bytes());
    }
    let mut buf = *b"0000-00-00";
    two(&mut buf, 0, year as u32 / 100);
    two(&mut buf, 2, year as u32 % 100);
    two(&mut buf, 5, d.month());
    two(&mut buf, 8, d.day());
    out.write_all(&buf)
}

/// `HH:MM:SS` and the fraction, if any, in 3, 6 or 9 digits (as chrono's `%.f`).
fn write_time(out: &mut impl Write, t: &NaiveTime) -> io::Result<()> {
    let mut buf = [0u8; 18];
    two(&mut buf, 0, t.hour());
    buf[2] = b':';
    two(&mut buf, 3, t.minute());
    buf[5] = b':';
    two(&mut buf, 6, t.second());
    let nanos = t.nanosecond() % 1_000_000_000;
    let (digits, mut value) = if nanos == 0 {
        (0, 0)
    } else if nanos.is_multiple_of(1_000_000) {
        (3, nanos / 1_000_000)
    } else if nanos.is_multiple_of(1000) {
        (6, nanos / 1000)
    } else {
        (9, nanos)
    };
    let mut len = 8;
    if digits > 0 {
        buf[8] = b'.';
        for i in (0..digits).rev() {
            buf[9 + i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
        len = 9 + digits;
    }
    out.write_all(&buf[..len])
}

fn write_datetime(out: &mut impl Write, t: &NaiveDateTime) -> io::Result<()> {
    write_date(out, &t.date())?;
    out.write_all(b"T")?;
    write_time(out, &t.time())
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

    fn json_of(value: &Value) -> String {
        let mut out = Vec::new();
        write_value(&mut out, value).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn values_without_a_typed_variant_and_json_and_arrays() {
        // json/jsonb: a string holding the exact text; the document null is not SQL NULL.
        assert_eq!(json_of(&Value::Json("null".into())), r#""null""#);
        assert_eq!(json_of(&Value::Null), "null");
        assert_eq!(json_of(&Value::Json(r#"{"a": "\n"}"#.into())), r#""{\"a\": \"\\n\"}""#);
        // Raw values as their PostgreSQL text.
        assert_eq!(json_of(&Value::raw("numeric", "NaN")), r#""NaN""#);
        assert_eq!(json_of(&Value::raw("date", "5874897-12-31")), r#""5874897-12-31""#);
        assert_eq!(json_of(&Value::raw("time", "24:00:00")), r#""24:00:00""#);
        // Arrays of their element type, nested for more dimensions.
        let array = Value::Array(vec![
            Value::Array(vec![Value::Int(1), Value::Null]),
            Value::Array(vec![Value::Decimal("1.50".parse().unwrap()), Value::Text("a\"b".into())]),
        ]);
        assert_eq!(json_of(&array), r#"[[1,null],["1.50","a\"b"]]"#);
        assert_eq!(json_of(&Value::Array(vec![])), "[]");
        // Years outside 1..=9999: PostgreSQL's text; inside, ISO 8601 as before.
        let bc = NaiveDate::from_ymd_opt(-4712, 1, 1).unwrap();
        assert_eq!(json_of(&Value::Date(bc)), r#""4713-01-01 BC""#);
        assert_eq!(json_of(&Value::Timestamp(bc.and_hms_opt(0, 0, 0).unwrap())), r#""4713-01-01 00:00:00 BC""#);
        let far = NaiveDate::from_ymd_opt(10000, 1, 1).unwrap().and_hms_opt(0, 0, 0).unwrap();
        assert_eq!(json_of(&Value::TimestampTz(far.and_utc())), r#""10000-01-01 00:00:00+00""#);
        let now = NaiveDate::from_ymd_opt(2024, 2, 29).unwrap().and_hms_opt(13, 45, 0).unwrap();
        assert_eq!(json_of(&Value::Timestamp(now)), r#""2024-02-29T13:45:00""#);
        assert_eq!(json_of(&Value::TimestampTz(now.and_utc())), r#""2024-02-29T13:45:00Z""#);
    }

    #[test]
    fn hand_written_times_match_chrono() {
        let dates = [
            "2024-02-29T13:45:00",
            "0001-01-01T00:00:00.5",
            "2024-01-02T03:04:05.123456",
            "1999-12-31T23:59:59.000000001",
        ];
        for text in dates {
            let t: NaiveDateTime = text.parse().unwrap();
            let mut out = Vec::new();
            write_datetime(&mut out, &t).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), t.format("%Y-%m-%dT%H:%M:%S%.f").to_string());
        }
        let bc = NaiveDate::from_ymd_opt(-43, 3, 15).unwrap();
        let mut out = Vec::new();
        write_date(&mut out, &bc).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "0044-03-15 BC", "PostgreSQL's text outside years 1..=9999");
        for n in [0i64, 7, -7, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            write_int(&mut out, n).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), n.to_string());
        }
    }
}
