//! `Value`: one column's value, independent of the system it came from.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};

use super::Decimal;

/// A column value as the pipeline carries it.
///
/// `Unchanged` is not a value: PostgreSQL did not send it (a TOASTed column the update left
/// untouched). It must never be written to a sink as if it were one.
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
    /// needs a part of it, so nothing is lost on the way through. The JSON document `null` is
    /// `Json("null")`, never [`Value::Null`] (SQL NULL).
    Json(String),
    /// A value the source did not send: a TOASTed value the change left as it was, or (where the
    /// Odoo stream is asked to say so, as `tail` does) a column outside the key of an old-key
    /// image. Not NULL: its value is unknown here.
    Unchanged,
    /// An array, elements in order, each a value of the element type ([`Value::Null`] for a NULL
    /// element). A multi-dimensional array is an array of arrays; `{}` is an empty array.
    Array(Vec<Value>),
    /// A value no other variant holds exactly, carried as the source's own text with the name of
    /// its type: PostgreSQL's numeric `NaN`, `Infinity` and `-Infinity` and numerics beyond 38
    /// digits, `infinity`/`-infinity` and dates or timestamps outside chrono's range, time
    /// `24:00:00`, an array with explicit bounds (`[0:1]={5,6}`). It is not a number, date or
    /// time to any later stage: a conversion to one must fail and name it.
    Raw {
        /// The type's SQL name as PostgreSQL spells it (`numeric`, `date`, `timestamptz`, `integer[]`).
        type_name: Arc<str>,
        /// The value in the type's text output format, exactly as sent.
        text: String,
    },
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// A [`Value::Raw`] of `type_name`.
    pub fn raw(type_name: impl Into<Arc<str>>, text: impl Into<String>) -> Value {
        Value::Raw { type_name: type_name.into(), text: text.into() }
    }

    /// A short name of the variant, for error messages and type checks. A [`Value::Raw`] is named
    /// by its type where that is one of the date, time and number types (`numeric`, `date`, …),
    /// so that "numeric value "NaN" is not a decimal" says what went wrong; `raw` otherwise.
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
            Value::Array(_) => "array",
            Value::Raw { type_name, .. } => match &**type_name {
                "numeric" => "numeric",
                "date" => "date",
                "time" => "time",
                "timestamp" => "timestamp",
                "timestamptz" => "timestamptz",
                name if name.ends_with("[]") => "array",
                _ => "raw",
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_values_are_named_by_their_type() {
        assert_eq!(Value::raw("numeric", "NaN").kind(), "numeric");
        assert_eq!(Value::raw("date", "infinity").kind(), "date");
        assert_eq!(Value::raw("integer[]", "[0:1]={5,6}").kind(), "array");
        assert_eq!(Value::raw("public.mood", "x").kind(), "raw");
        assert_eq!(Value::Array(vec![]).kind(), "array");
        assert_ne!(Value::Json("null".into()), Value::Null);
    }
}
