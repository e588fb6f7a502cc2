//! ODBC driver text → [`Value`]. Pure functions: ODBC hands every cell over as text (the columnar
//! text buffers are the fastest path through most drivers), and the column's declared SQL type
//! says how to read it.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

use crate::model::{Decimal, Value};

/// How a column's text is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    Int,
    Decimal,
    Float,
    Bool,
    Text,
    /// Binary columns arrive as hex text.
    Bytes,
    Date,
    Time,
    Timestamp,
}

impl ColumnKind {
    pub fn from_odbc(data_type: &odbc_api::DataType) -> ColumnKind {
        use odbc_api::DataType as D;
        match data_type {
            D::Integer | D::SmallInt | D::BigInt | D::TinyInt => ColumnKind::Int,
            D::Numeric { .. } | D::Decimal { .. } => ColumnKind::Decimal,
            D::Float { .. } | D::Real | D::Double => ColumnKind::Float,
            D::Bit => ColumnKind::Bool,
            D::Date => ColumnKind::Date,
            D::Time { .. } => ColumnKind::Time,
            D::Timestamp { .. } => ColumnKind::Timestamp,
            D::Binary { .. } | D::Varbinary { .. } | D::LongVarbinary { .. } => ColumnKind::Bytes,
            _ => ColumnKind::Text,
        }
    }

    fn name(self) -> &'static str {
        match self {
            ColumnKind::Int => "integer",
            ColumnKind::Decimal => "decimal",
            ColumnKind::Float => "float",
            ColumnKind::Bool => "bit",
            ColumnKind::Text => "text",
            ColumnKind::Bytes => "binary",
            ColumnKind::Date => "date",
            ColumnKind::Time => "time",
            ColumnKind::Timestamp => "datetime",
        }
    }
}

/// Reads one cell. The error says what was wrong with the value, for the dead-letter queue.
pub fn convert(kind: ColumnKind, raw: &[u8]) -> Result<Value, String> {
    let text = std::str::from_utf8(raw).map_err(|e| format!("not valid UTF-8 (byte {} is not)", e.valid_up_to()))?;
    let invalid = |why: &str| format!("cannot read as {}: {why}", kind.name());
    Ok(match kind {
        ColumnKind::Text => Value::Text(text.to_owned()),
        ColumnKind::Int => Value::Int(text.trim().parse().map_err(|_| invalid("not an integer"))?),
        ColumnKind::Decimal => Value::Decimal(text.trim().parse::<Decimal>().map_err(|e| invalid(&e.to_string()))?),
        ColumnKind::Float => Value::Float(text.trim().parse().map_err(|_| invalid("not a number"))?),
        ColumnKind::Bool => match text.trim() {
            "1" | "t" | "true" | "T" | "TRUE" | "Y" => Value::Bool(true),
            "0" | "f" | "false" | "F" | "FALSE" | "N" => Value::Bool(false),
            _ => return Err(invalid("not a bit")),
        },
        ColumnKind::Bytes => Value::Bytes(parse_hex(text.trim()).ok_or_else(|| invalid("not hex"))?),
        ColumnKind::Date => Value::Date(parse_date(text.trim()).ok_or_else(|| invalid("not a valid date"))?),
        ColumnKind::Time => {
            Value::Time(NaiveTime::parse_from_str(text.trim(), "%H:%M:%S%.f").map_err(|_| invalid("not a valid time"))?)
        }
        ColumnKind::Timestamp => {
            Value::Timestamp(parse_timestamp(text.trim()).ok_or_else(|| invalid("not a valid date and time"))?)
        }
    })
}

/// `YYYY-MM-DD`; MariaDB's `0000-00-00` and other impossible dates are refused, not guessed.
fn parse_date(text: &str) -> Option<NaiveDate> {
    let date = text.get(..10)?;
    NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()
}

fn parse_timestamp(text: &str) -> Option<NaiveDateTime> {
    if text.len() == 10 {
        return parse_date(text)?.and_hms_opt(0, 0, 0);
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f"))
        .ok()
}

fn parse_hex(text: &str) -> Option<Vec<u8>> {
    let text = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")).unwrap_or(text);
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_legacy_types() {
        assert_eq!(convert(ColumnKind::Int, b" 42").unwrap(), Value::Int(42));
        assert_eq!(convert(ColumnKind::Decimal, b"12.5000").unwrap().kind(), "decimal");
        assert_eq!(crate::model::value_text(&convert(ColumnKind::Decimal, b"-0.0100").unwrap()), "-0.0100");
        assert_eq!(
            convert(ColumnKind::Timestamp, b"2024-02-29 13:45:00.250000").unwrap(),
            Value::Timestamp(NaiveDate::from_ymd_opt(2024, 2, 29).unwrap().and_hms_milli_opt(13, 45, 0, 250).unwrap())
        );
        assert_eq!(convert(ColumnKind::Bytes, b"00FF10").unwrap(), Value::Bytes(vec![0, 255, 16]));
        assert_eq!(convert(ColumnKind::Bool, b"1").unwrap(), Value::Bool(true));
        assert_eq!(convert(ColumnKind::Text, b"A100  ").unwrap(), Value::Text("A100  ".into()));
    }

    #[test]
    fn bad_legacy_values_say_what_is_wrong() {
        assert_eq!(convert(ColumnKind::Date, b"0000-00-00").unwrap_err(), "cannot read as date: not a valid date");
        assert_eq!(
            convert(ColumnKind::Timestamp, b"0000-00-00 00:00:00").unwrap_err(),
            "cannot read as datetime: not a valid date and time"
        );
        assert_eq!(convert(ColumnKind::Text, b"caf\xe9").unwrap_err(), "not valid UTF-8 (byte 3 is not)");
        assert_eq!(
            convert(ColumnKind::Decimal, "1".repeat(40).as_bytes()).unwrap_err(),
            "cannot read as decimal: more than 38 significant digits"
        );
    }
}
