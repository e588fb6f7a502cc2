//! SQL Server values ↔ [`Value`]: TDS column data read exactly (decimals, money, the legacy
//! `datetime` ticks, `datetimeoffset` as the UTC instant), and values bound as parameters.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Utc};
use tiberius::numeric::Numeric;
use tiberius::{ColumnData, ColumnType, IntoSql};

use crate::erp::ReadRow;
use crate::model::{Decimal, Value};

pub(crate) fn null_or<T>(
    value: &Option<T>,
    convert: impl FnOnce(&T) -> Result<Value, String>,
) -> Result<Value, String> {
    match value {
        None => Ok(Value::Null),
        Some(v) => convert(v),
    }
}

pub(crate) fn numeric_to_decimal(n: Numeric) -> Result<Decimal, String> {
    Decimal::new(n.value(), n.scale())
        .map_err(|_| format!("decimal {}e-{} has more than 38 digits", n.value(), n.scale()))
}

/// Days since 0001-01-01, as `date`, `datetime2` and `datetimeoffset` count them.
pub(crate) fn date_from_days(days: u32) -> Result<NaiveDate, String> {
    i32::try_from(days)
        .ok()
        .and_then(|d| d.checked_add(1))
        .and_then(NaiveDate::from_num_days_from_ce_opt)
        .ok_or_else(|| format!("date {days} days after 0001-01-01 is out of range"))
}

/// `increments` units of 10^-scale seconds since midnight, as `time` and `datetime2` count them.
pub(crate) fn time_from_increments(increments: u64, scale: u8) -> Result<NaiveTime, String> {
    let out_of_range = || format!("time {increments}e-{scale} s after midnight is out of range");
    if scale > 9 {
        return Err(out_of_range());
    }
    let nanos = increments.checked_mul(10u64.pow(9 - u32::from(scale))).ok_or_else(out_of_range)?;
    let secs = u32::try_from(nanos / 1_000_000_000).map_err(|_| out_of_range())?;
    let nano = u32::try_from(nanos % 1_000_000_000).map_err(|_| out_of_range())?;
    if secs >= 86_400 {
        return Err(out_of_range());
    }
    NaiveTime::from_num_seconds_from_midnight_opt(secs, nano).ok_or_else(out_of_range)
}

pub(crate) fn day_1900(days: i64) -> Result<NaiveDate, String> {
    NaiveDate::from_ymd_opt(1900, 1, 1)
        .zip(TimeDelta::try_days(days))
        .and_then(|(base, delta)| base.checked_add_signed(delta))
        .ok_or_else(|| format!("date {days} days from 1900-01-01 is out of range"))
}

/// `datetime`: days from 1900-01-01 and 1/300 s ticks since midnight.
///
/// The ticks are rounded to 100 ns, which is what SQL Server 2016 and later compute when they
/// compare a `datetime` with a `datetime2(7)` (`.007` is stored as 2/300 s, compared as
/// `.0066667`). A timestamp read here and bound back as a parameter (which tiberius sends as
/// `datetime2(7)`) therefore equals the stored value, so watermarks neither skip nor repeat it.
pub(crate) fn datetime_from_ticks(days: i32, ticks: u32) -> Result<NaiveDateTime, String> {
    if ticks >= 300 * 86_400 {
        return Err(format!("datetime time of day {ticks}/300 s is out of range"));
    }
    let date = day_1900(i64::from(days))?;
    let hundred_ns = (u64::from(ticks) * 100_000 + 1) / 3;
    Ok(date.and_time(time_from_increments(hundred_ns, 7)?))
}

/// Money arrives from tiberius as an `f64` (value / 10^4). For |scaled value| < 2^51 the
/// division and the multiplication back are each within half an ulp, so rounding recovers the
/// exact four-decimal amount. Larger amounts (over 225 billion) may have lost digits already, and
/// are refused rather than passed on slightly wrong.
pub(crate) fn money_to_decimal(amount: f64) -> Result<Decimal, String> {
    const EXACT_LIMIT: f64 = 2_251_799_813_685_248.0; // 2^51
    let scaled = (amount * 10_000.0).round();
    if !scaled.is_finite() || scaled.abs() >= EXACT_LIMIT {
        return Err(format!(
            "money value {amount} is too large to read exactly (the driver decodes money as a 64-bit float); \
             select the column as CAST(… AS DECIMAL(19,4))"
        ));
    }
    Decimal::new(scaled as i128, 4).map_err(|e| e.to_string())
}

/// Converts one cell as tiberius decoded it. `NULL` of any type is [`Value::Null`]; CHAR padding
/// is kept (keys are trimmed by [`key_text`]); `datetime*` are naive local times as the ERP wrote
/// them; `datetimeoffset` is the UTC instant. Money columns need their column type to be told
/// from `float`: use [`typed_column_to_value`].
pub fn column_to_value(data: &ColumnData<'_>) -> Result<Value, String> {
    match data {
        ColumnData::U8(v) => null_or(v, |n| Ok(Value::Int(i64::from(*n)))),
        ColumnData::I16(v) => null_or(v, |n| Ok(Value::Int(i64::from(*n)))),
        ColumnData::I32(v) => null_or(v, |n| Ok(Value::Int(i64::from(*n)))),
        ColumnData::I64(v) => null_or(v, |n| Ok(Value::Int(*n))),
        ColumnData::F32(v) => null_or(v, |f| Ok(Value::Float(f64::from(*f)))),
        ColumnData::F64(v) => null_or(v, |f| Ok(Value::Float(*f))),
        ColumnData::Bit(v) => null_or(v, |b| Ok(Value::Bool(*b))),
        ColumnData::String(v) => null_or(v, |s| Ok(Value::Text(s.to_string()))),
        // SQL Server prints uniqueidentifiers in upper case; keys read here must match keys read
        // through ODBC or typed by a user.
        ColumnData::Guid(v) => null_or(v, |g| Ok(Value::Text(g.to_string().to_ascii_uppercase()))),
        ColumnData::Binary(v) => null_or(v, |b| Ok(Value::Bytes(b.to_vec()))),
        ColumnData::Numeric(v) => null_or(v, |n| numeric_to_decimal(*n).map(Value::Decimal)),
        ColumnData::Xml(v) => null_or(v, |x| Ok(Value::Text(AsRef::<str>::as_ref(x.as_ref()).to_string()))),
        ColumnData::DateTime(v) => {
            null_or(v, |dt| datetime_from_ticks(dt.days(), dt.seconds_fragments()).map(Value::Timestamp))
        }
        ColumnData::SmallDateTime(v) => null_or(v, |dt| {
            let minutes = dt.seconds_fragments();
            if minutes >= 1440 {
                return Err(format!("smalldatetime minute of day {minutes} is out of range"));
            }
            let time = time_from_increments(u64::from(minutes) * 60, 0)?;
            Ok(Value::Timestamp(day_1900(i64::from(dt.days()))?.and_time(time)))
        }),
        ColumnData::Time(v) => null_or(v, |t| time_from_increments(t.increments(), t.scale()).map(Value::Time)),
        ColumnData::Date(v) => null_or(v, |d| date_from_days(d.days()).map(Value::Date)),
        ColumnData::DateTime2(v) => null_or(v, |dt| {
            let time = dt.time();
            Ok(Value::Timestamp(
                date_from_days(dt.date().days())?.and_time(time_from_increments(time.increments(), time.scale())?),
            ))
        }),
        // On the wire (MS-TDS 2.2.5.5.1.9) a datetimeoffset's date and time are the UTC instant;
        // the offset only says how the writer displayed it. (tiberius's own chrono conversion
        // subtracts the offset again, which is why this reads the parts itself.)
        ColumnData::DateTimeOffset(v) => null_or(v, |dto| {
            let dt = dto.datetime2();
            let time = dt.time();
            let naive =
                date_from_days(dt.date().days())?.and_time(time_from_increments(time.increments(), time.scale())?);
            Ok(Value::TimestampTz(DateTime::<Utc>::from_naive_utc_and_offset(naive, Utc)))
        }),
    }
}

/// [`column_to_value`] knowing the column's type: `money` and `smallmoney` (which tiberius
/// decodes as `f64`) become exact four-decimal [`Decimal`]s, everything else is converted by value.
pub fn typed_column_to_value(column_type: ColumnType, data: &ColumnData<'_>) -> Result<Value, String> {
    match (column_type, data) {
        (ColumnType::Money | ColumnType::Money4, ColumnData::F64(Some(amount))) => {
            money_to_decimal(*amount).map(Value::Decimal)
        }
        _ => column_to_value(data),
    }
}

/// The raw cell for a dead-letter entry.
pub(crate) fn raw_text(data: &ColumnData<'_>) -> String {
    match data {
        ColumnData::Numeric(Some(n)) => format!("{}e-{}", n.value(), n.scale()),
        ColumnData::F64(Some(f)) => f.to_string(),
        other => format!("{other:?}"),
    }
}

/// One row's cells converted; a cell that cannot be converted makes the row [`ReadRow::Bad`]
/// (the first such cell is reported, every other cell is still converted, failures as `Null`).
pub fn read_cells<'r, 'd: 'r>(cells: impl IntoIterator<Item = (ColumnType, &'r ColumnData<'d>)>) -> ReadRow {
    let mut values = Vec::new();
    let mut failure = None;
    for (i, (column_type, data)) in cells.into_iter().enumerate() {
        match typed_column_to_value(column_type, data) {
            Ok(value) => values.push(value),
            Err(reason) => {
                values.push(Value::Null);
                if failure.is_none() {
                    failure = Some((i, raw_text(data), reason));
                }
            }
        }
    }
    match failure {
        None => ReadRow::Ok(values),
        Some((column, raw, reason)) => ReadRow::Bad { values, column, raw, reason },
    }
}

pub(crate) fn check_year(year: i32) -> Result<(), String> {
    if (1..=9999).contains(&year) {
        Ok(())
    } else {
        Err(format!("year {year} is outside SQL Server's 1..9999"))
    }
}

/// A [`Value`] as a bound parameter. Text is sent as `nvarchar`, integers as `bigint`, decimals
/// as `numeric` with their own scale, timestamps as `datetime2(7)`, bytes as `varbinary`.
/// `Null` goes as an `nvarchar` NULL, which SQL Server converts to the other side's type.
pub fn value_to_param(value: &Value) -> Result<ColumnData<'static>, String> {
    Ok(match value {
        Value::Null => ColumnData::String(None),
        Value::Bool(b) => ColumnData::Bit(Some(*b)),
        Value::Int(n) => ColumnData::I64(Some(*n)),
        Value::Float(f) => ColumnData::F64(Some(*f)),
        Value::Decimal(d) => {
            if d.scale() > Numeric::MAX_NUMERIC_SCALE {
                return Err(format!("decimal {d} has a scale above 38"));
            }
            ColumnData::Numeric(Some(Numeric::new_with_scale(d.mantissa(), d.scale())))
        }
        Value::Text(s) | Value::Json(s) => ColumnData::String(Some(Cow::Owned(s.clone()))),
        Value::Bytes(b) => ColumnData::Binary(Some(Cow::Owned(b.clone()))),
        Value::Date(d) => {
            check_year(chrono::Datelike::year(d))?;
            d.into_sql()
        }
        Value::Time(t) => t.into_sql(),
        Value::Timestamp(ts) => {
            check_year(chrono::Datelike::year(ts))?;
            ts.into_sql()
        }
        Value::TimestampTz(ts) => {
            check_year(chrono::Datelike::year(ts))?;
            ts.into_sql()
        }
        Value::Unchanged => return Err("an unchanged-TOAST marker is not a value and cannot be bound".to_string()),
        Value::Array(_) => return Err("an array cannot be bound as a SQL Server parameter".to_string()),
        Value::Raw { type_name, text } => {
            return Err(format!("{type_name} value {text:?} has no SQL Server form"));
        }
    })
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone};
    use tiberius::time::{Date, DateTime as TdsDateTime, DateTime2, DateTimeOffset, SmallDateTime, Time};
    use tiberius::xml::XmlData;
    use tiberius::Uuid;

    use super::*;

    fn text(s: &str) -> Value {
        Value::Text(s.to_string())
    }

    fn ts(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, nano: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d).unwrap().and_hms_nano_opt(h, mi, s, nano).unwrap()
    }

    // ---- placeholders ----

    #[test]
    fn integers_bits_and_floats() {
        assert_eq!(column_to_value(&ColumnData::U8(Some(255))), Ok(Value::Int(255)));
        assert_eq!(column_to_value(&ColumnData::I16(Some(-7))), Ok(Value::Int(-7)));
        assert_eq!(column_to_value(&ColumnData::I32(Some(i32::MIN))), Ok(Value::Int(i64::from(i32::MIN))));
        assert_eq!(column_to_value(&ColumnData::I64(Some(i64::MAX))), Ok(Value::Int(i64::MAX)));
        assert_eq!(column_to_value(&ColumnData::Bit(Some(true))), Ok(Value::Bool(true)));
        assert_eq!(column_to_value(&ColumnData::F32(Some(1.5))), Ok(Value::Float(1.5)));
        assert_eq!(column_to_value(&ColumnData::F64(Some(-2.25))), Ok(Value::Float(-2.25)));
    }

    #[test]
    fn strings_keep_char_padding_and_guids_are_upper_case() {
        assert_eq!(column_to_value(&ColumnData::String(Some("A100    ".into()))), Ok(text("A100    ")));
        assert_eq!(column_to_value(&ColumnData::String(Some("Größe ½".into()))), Ok(text("Größe ½")));
        let guid = Uuid::parse_str("6f9619ff-8b86-d011-b42d-00c04fc964ff").unwrap();
        assert_eq!(column_to_value(&ColumnData::Guid(Some(guid))), Ok(text("6F9619FF-8B86-D011-B42D-00C04FC964FF")));
        let xml = XmlData::new("<a b=\"1\"/>");
        assert_eq!(column_to_value(&ColumnData::Xml(Some(Cow::Owned(xml)))), Ok(text("<a b=\"1\"/>")));
    }

    #[test]
    fn binary_and_rowversion_are_bytes() {
        let rv = [0u8, 0, 0, 0, 0, 0, 0x07, 0xD1];
        assert_eq!(column_to_value(&ColumnData::Binary(Some(Cow::Borrowed(&rv[..])))), Ok(Value::Bytes(rv.to_vec())));
    }

    #[test]
    fn numerics_are_exact_decimals() {
        let n = Numeric::new_with_scale(-123_456_789_012_345_678_901_234_567_890_123_456, 4);
        assert_eq!(
            column_to_value(&ColumnData::Numeric(Some(n))),
            Ok(Value::Decimal("-12345678901234567890123456789012.3456".parse().unwrap()))
        );
        let n = Numeric::new_with_scale(150, 2);
        assert_eq!(column_to_value(&ColumnData::Numeric(Some(n))).unwrap(), Value::Decimal("1.50".parse().unwrap()));
        // 39 digits: a server can send them (17 bytes hold more than 10^38), a Decimal cannot hold them.
        let too_wide = Numeric::new_with_scale(10i128.pow(38), 0);
        let error = column_to_value(&ColumnData::Numeric(Some(too_wide))).unwrap_err();
        assert!(error.contains("38 digits"), "{error}");
    }

    #[test]
    fn money_is_an_exact_decimal_when_the_type_is_known() {
        let read = |ty, amount: f64| typed_column_to_value(ty, &ColumnData::F64(Some(amount)));
        assert_eq!(read(ColumnType::Money, 1234.5678), Ok(Value::Decimal("1234.5678".parse().unwrap())));
        assert_eq!(read(ColumnType::Money, 0.1), Ok(Value::Decimal("0.1000".parse().unwrap())));
        assert_eq!(read(ColumnType::Money4, -214_748.364_8), Ok(Value::Decimal("-214748.3648".parse().unwrap())));
        // The largest amounts tiberius's f64 still carries exactly, and the first it may not.
        assert_eq!(
            read(ColumnType::Money, 225_179_981_368.524_7),
            Ok(Value::Decimal("225179981368.5247".parse().unwrap()))
        );
        assert!(read(ColumnType::Money, 922_337_203_685_477.5).unwrap_err().contains("DECIMAL(19,4)"));
        // A float column stays a float.
        assert_eq!(read(ColumnType::Float8, 0.1), Ok(Value::Float(0.1)));
        assert_eq!(typed_column_to_value(ColumnType::Money, &ColumnData::F64(None)), Ok(Value::Null));
    }

    #[test]
    fn dates_and_times() {
        // 2024-03-15 is day 738_959 after 0001-01-01.
        let days = NaiveDate::from_ymd_opt(2024, 3, 15)
            .unwrap()
            .signed_duration_since(NaiveDate::from_ymd_opt(1, 1, 1).unwrap())
            .num_days() as u32;
        assert_eq!(
            column_to_value(&ColumnData::Date(Some(Date::new(days)))),
            Ok(Value::Date(NaiveDate::from_ymd_opt(2024, 3, 15).unwrap()))
        );
        assert_eq!(
            column_to_value(&ColumnData::Date(Some(Date::new(0)))),
            Ok(Value::Date(NaiveDate::from_ymd_opt(1, 1, 1).unwrap()))
        );

        // time(7): 13:45:30.1234567
        let increments = (13 * 3600 + 45 * 60 + 30) * 10_000_000u64 + 1_234_567;
        assert_eq!(
            column_to_value(&ColumnData::Time(Some(Time::new(increments, 7)))),
            Ok(Value::Time(NaiveTime::from_hms_nano_opt(13, 45, 30, 123_456_700).unwrap()))
        );
        // time(0)
        assert_eq!(
            column_to_value(&ColumnData::Time(Some(Time::new(86_399, 0)))),
            Ok(Value::Time(NaiveTime::from_hms_opt(23, 59, 59).unwrap()))
        );
        assert!(column_to_value(&ColumnData::Time(Some(Time::new(86_400, 0)))).is_err());

        // datetime2(6), as the demo schema's LAST_UPD
        let dt2 = DateTime2::new(Date::new(days), Time::new((8 * 3600) * 1_000_000 + 5, 6));
        assert_eq!(
            column_to_value(&ColumnData::DateTime2(Some(dt2))),
            Ok(Value::Timestamp(ts(2024, 3, 15, 8, 0, 0, 5_000)))
        );
    }

    #[test]
    fn legacy_datetime_ticks_round_to_what_sql_server_compares() {
        // 1900-01-01 + 45_000 days = 2023-03-17; 12:00:00 + 2/300 s (shown as .007, compared as .0066667).
        let ticks = 12 * 3600 * 300 + 2;
        assert_eq!(
            column_to_value(&ColumnData::DateTime(Some(TdsDateTime::new(45_000, ticks)))),
            Ok(Value::Timestamp(ts(2023, 3, 17, 12, 0, 0, 6_666_700)))
        );
        // Before 1900 (days are negative down to 1753).
        assert_eq!(
            column_to_value(&ColumnData::DateTime(Some(TdsDateTime::new(-53_690, 0)))),
            Ok(Value::Timestamp(ts(1753, 1, 1, 0, 0, 0, 0)))
        );
        // The last tick of a day stays on that day.
        assert_eq!(
            column_to_value(&ColumnData::DateTime(Some(TdsDateTime::new(0, 300 * 86_400 - 1)))),
            Ok(Value::Timestamp(ts(1900, 1, 1, 23, 59, 59, 996_666_700)))
        );
        assert!(column_to_value(&ColumnData::DateTime(Some(TdsDateTime::new(0, 300 * 86_400)))).is_err());
        // smalldatetime: days and minutes
        assert_eq!(
            column_to_value(&ColumnData::SmallDateTime(Some(SmallDateTime::new(45_000, 61)))),
            Ok(Value::Timestamp(ts(2023, 3, 17, 1, 1, 0, 0)))
        );
        assert!(column_to_value(&ColumnData::SmallDateTime(Some(SmallDateTime::new(0, 1440)))).is_err());
    }

    #[test]
    fn datetimeoffset_is_the_utc_instant() {
        // 2024-03-15T10:00:00Z written as 12:00+02:00: the wire carries 10:00 and +120.
        let days = NaiveDate::from_ymd_opt(2024, 3, 15)
            .unwrap()
            .signed_duration_since(NaiveDate::from_ymd_opt(1, 1, 1).unwrap())
            .num_days() as u32;
        let dto = DateTimeOffset::new(DateTime2::new(Date::new(days), Time::new(10 * 3600 * 10_000_000, 7)), 120);
        assert_eq!(
            column_to_value(&ColumnData::DateTimeOffset(Some(dto))),
            Ok(Value::TimestampTz(Utc.with_ymd_and_hms(2024, 3, 15, 10, 0, 0).unwrap()))
        );
    }

    #[test]
    fn null_of_any_type_is_null() {
        let nulls = [
            ColumnData::U8(None),
            ColumnData::I16(None),
            ColumnData::I32(None),
            ColumnData::I64(None),
            ColumnData::F32(None),
            ColumnData::F64(None),
            ColumnData::Bit(None),
            ColumnData::String(None),
            ColumnData::Guid(None),
            ColumnData::Binary(None),
            ColumnData::Numeric(None),
            ColumnData::Xml(None),
            ColumnData::DateTime(None),
            ColumnData::SmallDateTime(None),
            ColumnData::Time(None),
            ColumnData::Date(None),
            ColumnData::DateTime2(None),
            ColumnData::DateTimeOffset(None),
        ];
        for null in &nulls {
            assert_eq!(column_to_value(null), Ok(Value::Null), "{null:?}");
        }
    }

    #[test]
    fn a_bad_cell_makes_a_bad_row_with_the_other_cells_read() {
        let cells = [
            ColumnData::String(Some("A100  ".into())),
            ColumnData::Numeric(Some(Numeric::new_with_scale(10i128.pow(38), 0))),
            ColumnData::I32(Some(7)),
        ];
        let types = [ColumnType::BigChar, ColumnType::Numericn, ColumnType::Int4];
        let row = read_cells(types.iter().copied().zip(cells.iter()));
        match row {
            ReadRow::Bad { values, column, raw, reason } => {
                assert_eq!(values, vec![text("A100  "), Value::Null, Value::Int(7)]);
                assert_eq!(column, 1);
                assert_eq!(raw, "100000000000000000000000000000000000000e-0");
                assert!(reason.contains("38 digits"), "{reason}");
            }
            other => panic!("expected a bad row, got {other:?}"),
        }
        let ok = read_cells([(ColumnType::Int4, &ColumnData::I32(Some(1)))]);
        assert_eq!(ok, ReadRow::Ok(vec![Value::Int(1)]));
    }

    // ---- values bound ----

    #[test]
    fn values_become_parameters() {
        assert_eq!(value_to_param(&Value::Int(5)), Ok(ColumnData::I64(Some(5))));
        assert_eq!(value_to_param(&Value::Bool(false)), Ok(ColumnData::Bit(Some(false))));
        assert_eq!(value_to_param(&Value::Float(0.5)), Ok(ColumnData::F64(Some(0.5))));
        assert_eq!(value_to_param(&text("A100")), Ok(ColumnData::String(Some("A100".into()))));
        assert_eq!(value_to_param(&Value::Json("{}".into())), Ok(ColumnData::String(Some("{}".into()))));
        assert_eq!(value_to_param(&Value::Null), Ok(ColumnData::String(None)));
        assert_eq!(
            value_to_param(&Value::Bytes(2001i64.to_be_bytes().to_vec())),
            Ok(ColumnData::Binary(Some(vec![0, 0, 0, 0, 0, 0, 0x07, 0xD1].into())))
        );
        match value_to_param(&Value::Decimal("-12.3400".parse().unwrap())) {
            Ok(ColumnData::Numeric(Some(n))) => assert_eq!((n.value(), n.scale()), (-123_400, 4)),
            other => panic!("{other:?}"),
        }
        let t = ts(2024, 3, 15, 8, 30, 0, 123_456_700);
        match value_to_param(&Value::Timestamp(t)) {
            Ok(ColumnData::DateTime2(Some(dt2))) => {
                assert_eq!(column_to_value(&ColumnData::DateTime2(Some(dt2))), Ok(Value::Timestamp(t)));
            }
            other => panic!("{other:?}"),
        }
        let tz = Utc.with_ymd_and_hms(2024, 3, 15, 8, 30, 0).unwrap();
        assert!(matches!(value_to_param(&Value::TimestampTz(tz)), Ok(ColumnData::DateTime2(Some(_)))));
        let d = NaiveDate::from_ymd_opt(2024, 3, 15).unwrap();
        match value_to_param(&Value::Date(d)) {
            Ok(date @ ColumnData::Date(Some(_))) => assert_eq!(column_to_value(&date), Ok(Value::Date(d))),
            other => panic!("{other:?}"),
        }
        let time = NaiveTime::from_hms_opt(23, 59, 59).unwrap();
        match value_to_param(&Value::Time(time)) {
            Ok(param @ ColumnData::Time(Some(_))) => assert_eq!(column_to_value(&param), Ok(Value::Time(time))),
            other => panic!("{other:?}"),
        }
        assert!(value_to_param(&Value::Unchanged).is_err());
        assert!(value_to_param(&Value::Date(NaiveDate::from_ymd_opt(-5, 1, 1).unwrap())).is_err());
    }

    // ---- batching ----
}
