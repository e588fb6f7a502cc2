//! Value transforms between a stored column value and a canonical field value: trimming, value
//! maps, reciprocal factors, zero-padded codes, time zones, and conversion to the field's type.

use std::str::FromStr;

use chrono::{NaiveDate, NaiveDateTime, TimeZone, Timelike};

use super::{Column, FieldType};
use crate::model::value_text;
use crate::model::{Decimal, Value, MAX_DIGITS};

/// A TOML value from a mapping file as a canonical value of type `ty`.
pub fn toml_to_value(value: &toml::Value, ty: FieldType) -> Result<Value, String> {
    let raw = match value {
        toml::Value::String(s) => Value::Text(s.clone()),
        toml::Value::Integer(n) => Value::Int(*n),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Float(f) => Value::Float(*f),
        toml::Value::Datetime(d) => Value::Text(d.to_string()),
        other => return Err(format!("unsupported value {other}")),
    };
    coerce(raw, ty)
}

/// Converts a value to a field type's canonical form: decimals without trailing zeros,
/// timestamps naive UTC, booleans from 0/1.
pub fn coerce(value: Value, ty: FieldType) -> Result<Value, String> {
    let fail = |v: &Value| format!("{} value {:?} is not a {}", v.kind(), value_text(v), type_name(ty));
    Ok(match (ty, value) {
        (_, Value::Null) => Value::Null,
        (_, Value::Unchanged) => Value::Unchanged,
        (FieldType::Text, Value::Text(s)) => Value::Text(s),
        (
            FieldType::Text,
            v @ (Value::Int(_) | Value::Decimal(_) | Value::Json(_) | Value::Array(_) | Value::Raw { .. }),
        ) => Value::Text(value_text(&v)),
        (FieldType::Int, Value::Int(n)) => Value::Int(n),
        (FieldType::Int, v @ Value::Decimal(d)) => {
            let d = d.normalized();
            if d.scale() != 0 {
                return Err(fail(&v));
            }
            Value::Int(i64::try_from(d.mantissa()).map_err(|_| fail(&v))?)
        }
        (FieldType::Int, v @ Value::Text(_)) => Value::Int(value_text(&v).trim().parse::<i64>().map_err(|_| fail(&v))?),
        (FieldType::Decimal, Value::Decimal(d)) => Value::Decimal(d.normalized()),
        (FieldType::Decimal, v @ Value::Int(_)) => {
            Value::Decimal(Decimal::from_str(&value_text(&v)).map_err(|_| fail(&v))?.normalized())
        }
        (FieldType::Decimal, v @ Value::Float(f)) => {
            if !f.is_finite() {
                return Err(fail(&v));
            }
            // Shortest text that reads back as the same float: 0.1 stays 0.1.
            Value::Decimal(Decimal::from_str(&format!("{f}")).map_err(|_| fail(&v))?.normalized())
        }
        (FieldType::Decimal, v @ Value::Text(_)) => {
            Value::Decimal(Decimal::from_str(&value_text(&v)).map_err(|_| fail(&v))?.normalized())
        }
        (FieldType::Bool, Value::Bool(b)) => Value::Bool(b),
        (FieldType::Bool, v @ Value::Int(_)) | (FieldType::Bool, v @ Value::Text(_)) => {
            match value_text(&v).trim().to_ascii_lowercase().as_str() {
                "1" | "t" | "true" | "y" => Value::Bool(true),
                "0" | "f" | "false" | "n" => Value::Bool(false),
                _ => return Err(fail(&v)),
            }
        }
        (FieldType::Date, Value::Date(d)) => Value::Date(d),
        (FieldType::Date, Value::Timestamp(t)) => Value::Date(t.date()),
        (FieldType::Date, v @ Value::Text(_)) => {
            let text = value_text(&v);
            Value::Date(NaiveDate::parse_from_str(text.get(..10).unwrap_or(&text), "%Y-%m-%d").map_err(|_| fail(&v))?)
        }
        (FieldType::Timestamp, Value::Timestamp(t)) => Value::Timestamp(t),
        (FieldType::Timestamp, Value::TimestampTz(t)) => Value::Timestamp(t.naive_utc()),
        (FieldType::Timestamp, Value::Date(d)) => Value::Timestamp(d.and_hms_opt(0, 0, 0).expect("midnight exists")),
        (FieldType::Timestamp, v @ Value::Text(_)) => {
            let text = value_text(&v);
            let parsed = NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%d %H:%M:%S%.f")
                .or_else(|_| NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%dT%H:%M:%S%.f"))
                .map_err(|_| fail(&v))?;
            Value::Timestamp(parsed)
        }
        (_, v) => return Err(fail(&v)),
    })
}

pub fn type_name(ty: FieldType) -> &'static str {
    match ty {
        FieldType::Text => "text",
        FieldType::Int => "integer",
        FieldType::Decimal => "decimal",
        FieldType::Bool => "boolean",
        FieldType::Date => "date",
        FieldType::Timestamp => "timestamp",
    }
}

/// A stored value (after any lookup) as the canonical value of its field.
pub fn to_canonical(
    column: &Column,
    ty: FieldType,
    timezone: Option<chrono_tz::Tz>,
    stored: Value,
) -> Result<Value, String> {
    let mut value = stored;
    if value.is_null() {
        return Ok(column.null_as.clone().unwrap_or(Value::Null));
    }
    if column.trim || column.lookup.as_ref().is_some_and(|l| l.trim) {
        if let Value::Text(s) = &mut value {
            s.truncate(s.trim_end_matches(' ').len());
        }
    }
    if !column.map.is_empty() {
        let text = value_text(&value);
        return match column.map.iter().find(|(stored, _)| *stored == text) {
            Some((_, canonical)) => Ok(canonical.clone()),
            None => Err(format!("value {text:?} has no entry in the value map of column {}", column.column)),
        };
    }
    if column.reciprocal {
        let d = match coerce(value.clone(), FieldType::Decimal)? {
            Value::Decimal(d) => d,
            other => return Err(format!("{} is not a number", value_text(&other))),
        };
        value = Value::Decimal(reciprocal(&d)?);
    }
    if column.pad.is_some() || column.prefix.is_some() {
        let n = match coerce(value.clone(), FieldType::Int)? {
            Value::Int(n) => n,
            other => return Err(format!("{} is not an integer", value_text(&other))),
        };
        value = Value::Text(format!(
            "{}{:0width$}",
            column.prefix.as_deref().unwrap_or(""),
            n,
            width = column.pad.unwrap_or(0)
        ));
    }
    if let (Some(tz), FieldType::Timestamp) = (timezone, ty) {
        if let Value::Timestamp(local) = coerce(value.clone(), FieldType::Timestamp)? {
            let utc = tz
                .from_local_datetime(&local)
                .earliest()
                .ok_or_else(|| format!("{local} does not exist in time zone {tz}"))?
                .naive_utc();
            value = Value::Timestamp(utc);
        }
    }
    let value = coerce(value, ty)?;
    Ok(match (value, column.round) {
        (Value::Decimal(d), Some(places)) => {
            let rounded = d.round_to(places).normalized();
            // The archive stores a rounded field as Decimal128(38, places): the integer digits
            // must leave room for them.
            let integer_digits = rounded.integer_digits();
            if integer_digits + u32::from(places) > MAX_DIGITS {
                return Err(format!(
                    "{d} has {integer_digits} integer digits; a value rounded to {places} places keeps at most {}",
                    MAX_DIGITS - u32::from(places)
                ));
            }
            Value::Decimal(rounded)
        }
        // Business timestamps compare to the second: legacy DATETIME columns keep no fraction,
        // so a fraction from Odoo would never come back equal.
        (Value::Timestamp(t), _) => Value::Timestamp(t.with_nanosecond(0).unwrap_or(t)),
        (v, _) => v,
    })
}

/// A canonical value as the value to store in the column (before a lookup turns it into a
/// reference).
pub fn to_stored(column: &Column, timezone: Option<chrono_tz::Tz>, canonical: &Value) -> Result<Value, String> {
    if canonical.is_null() {
        return Ok(Value::Null);
    }
    if !column.map.is_empty() {
        return match column.map.iter().find(|(_, c)| c == canonical) {
            Some((stored, _)) => Ok(Value::Text(stored.clone())),
            None => Err(format!("{} has no entry in the value map of column {}", value_text(canonical), column.column)),
        };
    }
    let mut value = canonical.clone();
    if column.pad.is_some() || column.prefix.is_some() {
        let text = value_text(&value);
        let digits = text.strip_prefix(column.prefix.as_deref().unwrap_or("")).unwrap_or(&text);
        value = Value::Int(
            digits.parse::<i64>().map_err(|_| format!("{text:?} is not a code of the form the column stores"))?,
        );
    }
    if column.reciprocal {
        if let Value::Decimal(d) = coerce(value.clone(), FieldType::Decimal)? {
            value = Value::Decimal(reciprocal(&d)?);
        }
    }
    if let (Some(tz), Value::Timestamp(utc)) = (timezone, &value) {
        value = Value::Timestamp(tz.from_utc_datetime(utc).naive_local());
    }
    Ok(value)
}

/// 1 / d, to 8 significant fractional places beyond the integer part (unit factors).
fn reciprocal(d: &Decimal) -> Result<Decimal, String> {
    if d.mantissa() == 0 {
        return Err("0 has no reciprocal".into());
    }
    let f = 1.0 / d.to_f64();
    Decimal::from_str(&format!("{f:.8}")).map(|d| d.normalized()).map_err(|e| e.to_string())
}

/// A canonical value as JSON (decimals as strings, so they stay exact).
pub fn value_to_json(value: &Value) -> serde_json::Value {
    match value {
        Value::Null | Value::Unchanged => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Int(n) => serde_json::Value::from(*n),
        other => serde_json::Value::String(value_text(other)),
    }
}

pub fn json_to_value(json: &serde_json::Value, ty: FieldType) -> Result<Value, String> {
    let raw = match json {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Text(n.to_string()),
        },
        serde_json::Value::String(s) => Value::Text(s.clone()),
        other => return Err(format!("unexpected JSON {other}")),
    };
    coerce(raw, ty)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::ColumnTable;

    fn column() -> Column {
        Column {
            field: 0,
            table: ColumnTable::Main,
            column: "C".into(),
            trim: false,
            map: vec![],
            lookup: None,
            translate: None,
            reciprocal: false,
            pad: None,
            prefix: None,
            round: None,
            also: vec![],
            read_only: false,
            expr: None,
            null_as: None,
            references: None,
            assign: None,
            orm_field: None,
        }
    }

    #[test]
    fn decimals_from_both_sides_compare_equal() {
        let legacy = coerce(Value::Text("12.5000".into()), FieldType::Decimal).unwrap();
        let odoo = coerce(Value::Decimal("12.5".parse().unwrap()), FieldType::Decimal).unwrap();
        assert_eq!(legacy, odoo);
        assert_eq!(
            coerce(Value::Int(3), FieldType::Decimal).unwrap(),
            coerce(Value::Text("3.00".into()), FieldType::Decimal).unwrap()
        );
    }

    #[test]
    fn value_maps_work_both_ways_and_name_unknown_codes() {
        let mut c = column();
        c.column = "STATUS".into();
        c.map = vec![("A".into(), Value::Bool(true)), ("I".into(), Value::Bool(false))];
        assert_eq!(to_canonical(&c, FieldType::Bool, None, Value::Text("I".into())).unwrap(), Value::Bool(false));
        assert_eq!(to_stored(&c, None, &Value::Bool(true)).unwrap(), Value::Text("A".into()));
        let err = to_canonical(&c, FieldType::Bool, None, Value::Text("Z".into())).unwrap_err();
        assert!(err.contains("\"Z\"") && err.contains("STATUS"), "{err}");
    }

    #[test]
    fn padded_codes_and_time_zones_round_trip() {
        let mut c = column();
        c.pad = Some(5);
        c.prefix = Some("C".into());
        assert_eq!(to_canonical(&c, FieldType::Text, None, Value::Int(12)).unwrap(), Value::Text("C00012".into()));
        assert_eq!(to_stored(&c, None, &Value::Text("C00012".into())).unwrap(), Value::Int(12));

        let tz: chrono_tz::Tz = "Europe/Brussels".parse().unwrap();
        let local = NaiveDate::from_ymd_opt(2026, 11, 27).unwrap().and_hms_opt(0, 59, 11).unwrap();
        let utc = to_canonical(&column(), FieldType::Timestamp, Some(tz), Value::Timestamp(local)).unwrap();
        assert_eq!(
            utc,
            Value::Timestamp(NaiveDate::from_ymd_opt(2026, 11, 26).unwrap().and_hms_opt(23, 59, 11).unwrap())
        );
        assert_eq!(to_stored(&column(), Some(tz), &utc).unwrap(), Value::Timestamp(local));
    }

    #[test]
    fn trimmed_keys_and_reciprocal_factors() {
        let mut c = column();
        c.trim = true;
        assert_eq!(
            to_canonical(&c, FieldType::Text, None, Value::Text("A100   ".into())).unwrap(),
            Value::Text("A100".into())
        );
        let mut r = column();
        r.reciprocal = true;
        r.round = Some(5);
        let v = to_canonical(&r, FieldType::Decimal, None, Value::Text("0.125".into())).unwrap();
        assert_eq!(v, Value::Decimal("8".parse().unwrap()));
    }

    #[test]
    fn a_mapping_refuses_raw_values_with_a_clear_error() {
        assert_eq!(
            coerce(Value::raw("numeric", "NaN"), FieldType::Decimal),
            Err(r#"numeric value "NaN" is not a decimal"#.to_string())
        );
        assert_eq!(
            coerce(Value::raw("date", "infinity"), FieldType::Date),
            Err(r#"date value "infinity" is not a date"#.to_string())
        );
        assert!(coerce(Value::Array(vec![Value::Int(1)]), FieldType::Int).is_err());
    }
}
