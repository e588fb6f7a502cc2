//! Canonical field values → typed Arrow columns, one builder per mapping field.
//!
//! The column types come from the mapping, not from the values, so that every file of an
//! entity has the same schema and readers can scan a whole partition tree as one table:
//! text → Utf8, int → Int64, bool → Boolean, date → Date32, timestamp → Timestamp(µs, UTC)
//! (Odoo stores UTC). A decimal field is Decimal128(38, s) when every column of it rounds to at
//! most s places (so every value fits exactly), and otherwise Utf8 holding each value's exact
//! decimal text: a value is never stored as null beside a note of what it was.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, TimeUnit};
use chrono::NaiveDate;

use crate::mapping::{Field as MappingField, FieldType, Mapping};
use crate::model::value_text;
use crate::model::{Decimal, Value};

/// Fractional digits a table export's undeclared `numeric` column is tried at (ten places hold
/// any quantity or amount an ERP stores and leave 28 integer digits; a column holding a value
/// with more is exported as text).
pub const DECIMAL_SCALE: i8 = 10;
pub const DECIMAL_PRECISION: u8 = 38;

/// The Arrow type of a mapping field.
pub fn data_type(field: &MappingField) -> DataType {
    match (field.ty, field.decimal_scale) {
        (FieldType::Text, _) | (FieldType::Decimal, None) => DataType::Utf8,
        (FieldType::Int, _) => DataType::Int64,
        (FieldType::Decimal, Some(scale)) => DataType::Decimal128(DECIMAL_PRECISION, scale as i8),
        (FieldType::Bool, _) => DataType::Boolean,
        (FieldType::Date, _) => DataType::Date32,
        (FieldType::Timestamp, _) => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
    }
}

/// The mapping's fields as Arrow fields (all nullable: a delete has no after image).
pub fn entity_fields(m: &Mapping) -> Vec<Field> {
    m.fields.iter().map(|f| Field::new(&f.name, data_type(f), true)).collect()
}

/// Builds one column of one canonical type.
pub enum ColumnBuilder {
    Text(StringBuilder),
    Int(Int64Builder),
    Decimal(Decimal128Builder, u8),
    Bool(BooleanBuilder),
    Date(Date32Builder),
    Timestamp(TimestampMicrosecondBuilder),
}

impl ColumnBuilder {
    pub fn new(field: &MappingField, capacity: usize) -> ColumnBuilder {
        match (field.ty, field.decimal_scale) {
            (FieldType::Text, _) | (FieldType::Decimal, None) => {
                ColumnBuilder::Text(StringBuilder::with_capacity(capacity, capacity * 16))
            }
            (FieldType::Int, _) => ColumnBuilder::Int(Int64Builder::with_capacity(capacity)),
            (FieldType::Decimal, Some(scale)) => ColumnBuilder::Decimal(
                Decimal128Builder::with_capacity(capacity)
                    .with_precision_and_scale(DECIMAL_PRECISION, scale as i8)
                    .unwrap_or_else(|_| Decimal128Builder::with_capacity(capacity)),
                scale,
            ),
            (FieldType::Bool, _) => ColumnBuilder::Bool(BooleanBuilder::with_capacity(capacity)),
            (FieldType::Date, _) => ColumnBuilder::Date(Date32Builder::with_capacity(capacity)),
            (FieldType::Timestamp, _) => {
                ColumnBuilder::Timestamp(TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone("UTC"))
            }
        }
    }

    pub fn append_null(&mut self) {
        match self {
            ColumnBuilder::Text(b) => b.append_null(),
            ColumnBuilder::Int(b) => b.append_null(),
            ColumnBuilder::Decimal(b, _) => b.append_null(),
            ColumnBuilder::Bool(b) => b.append_null(),
            ColumnBuilder::Date(b) => b.append_null(),
            ColumnBuilder::Timestamp(b) => b.append_null(),
        }
    }

    /// Appends a value; one that does not fit the column's type is stored as null and the
    /// reason returned, so the caller can record it beside the row instead of losing the row.
    pub fn append(&mut self, value: &Value) -> Result<(), String> {
        if matches!(value, Value::Null | Value::Unchanged) {
            self.append_null();
            return Ok(());
        }
        let result = match self {
            ColumnBuilder::Text(b) => {
                match value {
                    Value::Text(s) | Value::Json(s) => b.append_value(s),
                    other => b.append_value(value_text(other)),
                }
                return Ok(());
            }
            ColumnBuilder::Int(b) => match value {
                Value::Int(n) => {
                    b.append_value(*n);
                    return Ok(());
                }
                Value::Bool(v) => {
                    b.append_value(i64::from(*v));
                    return Ok(());
                }
                _ => Err(()),
            },
            ColumnBuilder::Decimal(b, scale) => match decimal_at_scale(value, *scale) {
                Some(n) => {
                    b.append_value(n);
                    return Ok(());
                }
                None => Err(()),
            },
            ColumnBuilder::Bool(b) => match value {
                Value::Bool(v) => {
                    b.append_value(*v);
                    return Ok(());
                }
                _ => Err(()),
            },
            ColumnBuilder::Date(b) => {
                let date = match value {
                    Value::Date(d) => Some(*d),
                    Value::Timestamp(t) => Some(t.date()),
                    Value::TimestampTz(t) => Some(t.date_naive()),
                    _ => None,
                };
                match date {
                    Some(d) => {
                        b.append_value(days_since_epoch(d));
                        return Ok(());
                    }
                    None => Err(()),
                }
            }
            ColumnBuilder::Timestamp(b) => {
                let micros = match value {
                    Value::Timestamp(t) => Some(t.and_utc().timestamp_micros()),
                    Value::TimestampTz(t) => Some(t.timestamp_micros()),
                    Value::Date(d) => d.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp_micros()),
                    _ => None,
                };
                match micros {
                    Some(m) => {
                        b.append_value(m);
                        return Ok(());
                    }
                    None => Err(()),
                }
            }
        };
        result.map_err(|()| {
            self.append_null();
            match (value, &*self) {
                (Value::Decimal(d), ColumnBuilder::Decimal(_, scale)) => {
                    format!("{d} has more than {scale} fractional digits or {} integer digits", 38 - scale)
                }
                (other, _) => format!("{} value {:?} does not fit the column", other.kind(), value_text(other)),
            }
        })
    }

    pub fn finish(&mut self) -> ArrayRef {
        match self {
            ColumnBuilder::Text(b) => Arc::new(b.finish()),
            ColumnBuilder::Int(b) => Arc::new(b.finish()),
            ColumnBuilder::Decimal(b, _) => Arc::new(b.finish()),
            ColumnBuilder::Bool(b) => Arc::new(b.finish()),
            ColumnBuilder::Date(b) => Arc::new(b.finish()),
            ColumnBuilder::Timestamp(b) => Arc::new(b.finish()),
        }
    }
}

pub fn days_since_epoch(date: NaiveDate) -> i32 {
    (date - NaiveDate::default()).num_days() as i32
}

/// The value as an i128 at `target` fractional digits, exactly, or `None` when it cannot be.
fn decimal_at_scale(value: &Value, target: u8) -> Option<i128> {
    let decimal = match value {
        Value::Decimal(d) => d.normalized(),
        Value::Int(n) => Decimal::new(i128::from(*n), 0).ok()?,
        Value::Float(f) => f.to_string().parse::<Decimal>().ok()?.normalized(),
        Value::Text(s) => s.trim().parse::<Decimal>().ok()?.normalized(),
        _ => return None,
    };
    let scale = i32::from(decimal.scale());
    let target = i32::from(target);
    if scale > target {
        return None;
    }
    let n = decimal.mantissa().checked_mul(10i128.checked_pow((target - scale) as u32)?)?;
    (n.unsigned_abs() < 10u128.pow(u32::from(DECIMAL_PRECISION))).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, Decimal128Array};

    fn decimal_field(decimal_scale: Option<u8>) -> MappingField {
        MappingField { name: "qty".into(), ty: FieldType::Decimal, owner: None, decimal_scale }
    }

    #[test]
    fn decimals_are_exact_at_the_column_scale() {
        let field = decimal_field(Some(4));
        assert_eq!(data_type(&field), DataType::Decimal128(38, 4));
        let mut b = ColumnBuilder::new(&field, 4);
        b.append(&Value::Decimal("12.5000".parse().unwrap())).unwrap();
        b.append(&Value::Int(-3)).unwrap();
        let err = b.append(&Value::Decimal("0.00001".parse().unwrap())).unwrap_err();
        assert!(err.contains("0.00001"), "{err}");
        let array = b.finish();
        let array = array.as_any().downcast_ref::<Decimal128Array>().unwrap();
        assert_eq!(array.value_as_string(0), "12.5000");
        assert_eq!(array.value_as_string(1), "-3.0000");
        assert!(array.is_null(2));
    }

    #[test]
    fn decimals_of_any_scale_are_kept_as_their_exact_text() {
        let field = decimal_field(None);
        assert_eq!(data_type(&field), DataType::Utf8);
        let mut b = ColumnBuilder::new(&field, 4);
        let long = "12345678901234567890.123456789012345678";
        b.append(&Value::Decimal(long.parse().unwrap())).unwrap();
        b.append(&Value::Decimal("0.000000000001".parse().unwrap())).unwrap();
        b.append(&Value::Null).unwrap();
        let array = b.finish();
        let array = array.as_any().downcast_ref::<arrow::array::StringArray>().unwrap();
        assert_eq!(array.value(0), long);
        assert_eq!(array.value(1), "0.000000000001");
        assert!(array.is_null(2));
    }

    #[test]
    fn dates_count_days_from_1970() {
        assert_eq!(days_since_epoch(NaiveDate::from_ymd_opt(1970, 1, 2).unwrap()), 1);
        assert_eq!(days_since_epoch(NaiveDate::from_ymd_opt(1969, 12, 31).unwrap()), -1);
    }
}
