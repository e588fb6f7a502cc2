//! `Value`: one column's value, independent of the system it came from.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};

use super::Decimal;

/// A column value as the pipeline carries it.
///
/// `Unchanged` is not a value: PostgreSQL did not send a TOASTed column the update left untouched.
/// It must never be written to a sink as if it were one.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// Exact decimal; Odoo's `numeric` columns carry no declared scale.
    Decimal(Decimal),
    Text(String),
    Bytes(Vec<u8>),
    Date(NaiveDate),
    Time(NaiveTime),
    /// A timestamp without zone. Odoo stores UTC in these.
    Timestamp(NaiveDateTime),
    TimestampTz(DateTime<Utc>),
    /// JSON text exactly as the source stored it: `json` keeps its formatting, duplicate keys and
    /// number precision, `jsonb` is PostgreSQL's canonical text. Parsed only where a mapping
    /// needs a part of it, so nothing is lost on the way through.
    Json(String),
    /// A TOASTed value the source did not send because the change left it as it was.
    Unchanged,
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// A short name of the variant, for error messages and type checks.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Decimal(_) => "decimal",
            Value::Text(_) => "text",
            Value::Bytes(_) => "bytes",
            Value::Date(_) => "date",
            Value::Time(_) => "time",
            Value::Timestamp(_) => "timestamp",
            Value::TimestampTz(_) => "timestamptz",
            Value::Json(_) => "json",
            Value::Unchanged => "unchanged",
        }
    }
}
