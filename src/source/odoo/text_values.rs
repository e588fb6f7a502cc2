//! Turns column values in PostgreSQL's text output format, as pgoutput sends them, into [`Value`]s,
//! and (for tests and diagnostics) back.
//!
//! The replication session is assumed to run with `DateStyle=ISO`, `TimeZone=UTC`,
//! `IntervalStyle=postgres`, `extra_float_digits=3` and `bytea_output=hex`; the formats accepted
//! here are the ones PostgreSQL prints under those settings. This is the hot path of the Odoo
//! source (every column of every row goes through [`decode_text`]), so dates and timestamps are
//! read by a small byte-level parser instead of chrono's format-string parser, and nothing is
//! allocated beyond the resulting value unless there is an error.

use std::borrow::Cow;
use std::fmt;
use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Utc};

use super::types::{builtin_type_name, oid, ColumnType};
use crate::model::{Decimal, DecimalError, TableName, Value};

fn type_label(type_oid: u32) -> Cow<'static, str> {
    match builtin_type_name(type_oid) {
        Some(name) => Cow::Borrowed(name),
        None => Cow::Owned(format!("type {type_oid}")),
    }
}

/// How much of an offending value an error message shows.
const MAX_ERROR_TEXT_CHARS: usize = 80;

/// A column value that could not be read as its type. Shows as
/// `cannot read "12a" as numeric: not a decimal number`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read {} as {}: {reason}", Quoted(.text), type_label(*.type_oid))]
pub struct ValueError {
    pub type_oid: u32,
    /// The text as sent, cut to 80 characters (invalid UTF-8 replaced by U+FFFD).
    pub text: String,
    pub reason: ValueErrorReason,
}

impl ValueError {
    fn new(type_oid: u32, text: &[u8], reason: ValueErrorReason) -> Self {
        let lossy = String::from_utf8_lossy(text);
        let text = match lossy.char_indices().nth(MAX_ERROR_TEXT_CHARS) {
            Some((cut, _)) => format!("{}…", &lossy[..cut]),
            None => lossy.into_owned(),
        };
        ValueError { type_oid, text, reason }
    }
}

/// What was wrong with a value's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueErrorReason {
    #[error("not valid UTF-8")]
    InvalidUtf8,
    #[error("not a boolean (expected t or f)")]
    NotBool,
    #[error("not a 64-bit integer")]
    NotInt,
    #[error("not a floating-point number")]
    NotFloat,
    #[error(transparent)]
    Decimal(DecimalError),
    #[error("not in the form {0}")]
    Format(&'static str),
    #[error("no such {0}")]
    NoSuch(&'static str),
    #[error("year outside the supported range")]
    YearOutOfRange,
    #[error("infinity has no representation")]
    Infinite,
    #[error("24:00:00 has no representation")]
    EndOfDay,
    #[error("not hex-format bytea (expected \\x followed by pairs of hex digits)")]
    Bytea,
    #[error("not a UUID")]
    Uuid,
}

impl ValueErrorReason {
    /// The text is a valid value of its type that no [`Value`] variant of that type holds exactly;
    /// it is kept as [`Value::Raw`].
    pub fn is_unrepresentable(&self) -> bool {
        matches!(
            self,
            ValueErrorReason::YearOutOfRange
                | ValueErrorReason::Infinite
                | ValueErrorReason::EndOfDay
                | ValueErrorReason::Decimal(DecimalError::NotFinite | DecimalError::TooManyDigits)
        )
    }
}

/// Shows a value in double quotes, escaping quotes and control characters but not backslashes
/// (so bytea reads as `"\x0a"`, not `"\\x0a"`).
struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('"')?;
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                c if c.is_control() => write!(f, "{}", c.escape_debug())?,
                c => f.write_char(c)?,
            }
        }
        f.write_char('"')
    }
}

/// A column of a tuple that could not be turned into a [`Value`]. Shows as
/// `public.stock_move.product_qty: cannot read "abc" as numeric: not a decimal number`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ColumnError {
    #[error("{table}.{column}: {source}")]
    // Boxed to keep `Result<Row, ColumnError>` small on the hot path.
    Value { table: TableName, column: String, source: Box<ValueError> },
    /// The session asked for text format; a binary value means the stream is not what we set up.
    #[error("{table}.{column}: binary format not requested (value of {})", type_label(*.type_oid))]
    Binary { table: TableName, column: String, type_oid: u32 },
    #[error("{table}: tuple has {found} columns but relation {relation_oid} has {expected}")]
    ColumnCount { table: TableName, relation_oid: u32, expected: usize, found: usize },
}

/// Reads one column value of a built-in type from its text output.
///
/// Values the closest variant cannot hold exactly (numeric `NaN`, `Infinity`, `-Infinity` and
/// numbers beyond 38 digits; `infinity`, `-infinity` and years outside chrono's range in dates and
/// timestamps; time `24:00:00`) become [`Value::Raw`] with the exact text. Arrays of built-in
/// types become [`Value::Array`] (with explicit bounds, `[0:1]={5,6}`, [`Value::Raw`]). Types
/// without a closer variant (enums, interval, money, inet, custom types…) become [`Value::Text`]
/// of exactly what was sent. A domain arrives with the domain's own oid: [`decode_column`] with
/// the type the relation resolved reads it as its base type.
pub fn decode_text(type_oid: u32, text: &[u8]) -> Result<Value, ValueError> {
    decode_column(&ColumnType::builtin(type_oid), text)
}

/// Reads one column value as `ty` (see [`decode_text`]).
pub fn decode_column(ty: &ColumnType, text: &[u8]) -> Result<Value, ValueError> {
    let error = |reason| ValueError::new(ty.oid, text, reason);
    if let Some((element, delimiter)) = &ty.array {
        let s = utf8(text).map_err(error)?;
        return match parse_array(element, *delimiter, s).map_err(error)? {
            Some(items) => Ok(Value::Array(items)),
            None => Ok(Value::Raw { type_name: ty.name.clone(), text: s.to_owned() }),
        };
    }
    match decode(ty.oid, text) {
        Ok(value) => Ok(value),
        Err(reason) if reason.is_unrepresentable() => {
            Ok(Value::Raw { type_name: ty.name.clone(), text: utf8(text).map_err(error)?.to_owned() })
        }
        Err(reason) => Err(error(reason)),
    }
}

/// Like [`decode_column`], but text that does not read as `ty` (which PostgreSQL, under the
/// session settings above, never sends) is kept as [`Value::Raw`] rather than refused: only text
/// that is not UTF-8 has no lossless form.
pub fn decode_column_lossless(ty: &ColumnType, text: &[u8]) -> Result<Value, ValueError> {
    match decode_column(ty, text) {
        Ok(value) => Ok(value),
        Err(e) if e.reason == ValueErrorReason::InvalidUtf8 => Err(e),
        Err(_) => match std::str::from_utf8(text) {
            Ok(s) => Ok(Value::Raw { type_name: ty.name.clone(), text: s.to_owned() }),
            Err(_) => Err(ValueError::new(ty.oid, text, ValueErrorReason::InvalidUtf8)),
        },
    }
}

fn decode(type_oid: u32, text: &[u8]) -> Result<Value, ValueErrorReason> {
    use ValueErrorReason as R;
    Ok(match type_oid {
        oid::BOOL => match text {
            b"t" => Value::Bool(true),
            b"f" => Value::Bool(false),
            _ => return Err(R::NotBool),
        },
        oid::INT2 | oid::INT4 | oid::INT8 | oid::OID => Value::Int(parse_i64(text).ok_or(R::NotInt)?),
        // float4 is read from its shortest decimal text straight into f64, so `1.1` stays 1.1 rather
        // than becoming 1.100000023841858. Rust's parser also takes NaN, Infinity and -Infinity.
        oid::FLOAT4 | oid::FLOAT8 => Value::Float(utf8(text)?.parse().map_err(|_| R::NotFloat)?),
        oid::NUMERIC => Value::Decimal(parse_numeric(text)?),
        oid::DATE => Value::Date(parse_date(text)?),
        oid::TIME => Value::Time(parse_time(text)?),
        oid::TIMESTAMP => Value::Timestamp(parse_timestamp(text)?),
        oid::TIMESTAMPTZ => Value::TimestampTz(parse_timestamptz(text)?),
        // Kept as text: PostgreSQL has validated it, and parsing would round big numbers to f64.
        oid::JSON | oid::JSONB => Value::Json(utf8(text)?.to_owned()),
        oid::BYTEA => Value::Bytes(parse_bytea(text)?),
        oid::UUID => Value::Text(parse_uuid(text)?),
        // text, varchar, bpchar (padding kept), name, "char", and everything without a closer type.
        _ => Value::Text(utf8(text)?.to_owned()),
    })
}

fn utf8(text: &[u8]) -> Result<&str, ValueErrorReason> {
    std::str::from_utf8(text).map_err(|_| ValueErrorReason::InvalidUtf8)
}

/// Decimal digits with an optional `-`. Accumulates negatively so that `i64::MIN` fits.
fn parse_i64(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    if digits.is_empty() {
        return None;
    }
    let mut value: i64 = 0;
    for &b in digits {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        value = value.checked_mul(10)?.checked_sub(i64::from(digit))?;
    }
    if negative {
        Some(value)
    } else {
        value.checked_neg()
    }
}

fn parse_numeric(text: &[u8]) -> Result<Decimal, ValueErrorReason> {
    let s = utf8(text)?;
    // PostgreSQL prints numerics as plain digits, never with an exponent or spaces. Refusing
    // anything else here keeps `Decimal::from_str`'s exponent handling, which does not guard
    // against absurd exponents, off this path. NaN and the infinities go through so that the
    // error says why they are refused.
    let plain = text.iter().all(|&b| b.is_ascii_digit() || matches!(b, b'-' | b'.'));
    if !plain && !matches!(s, "NaN" | "Infinity" | "-Infinity") {
        return Err(ValueErrorReason::Decimal(DecimalError::Syntax));
    }
    s.parse().map_err(ValueErrorReason::Decimal)
}

fn parse_bytea(text: &[u8]) -> Result<Vec<u8>, ValueErrorReason> {
    let hex = text.strip_prefix(b"\\x").ok_or(ValueErrorReason::Bytea)?;
    if hex.len() % 2 != 0 {
        return Err(ValueErrorReason::Bytea);
    }
    let mut out = Vec::with_capacity(hex.len() / 2);
    for pair in hex.chunks_exact(2) {
        let &[hi, lo] = pair else { return Err(ValueErrorReason::Bytea) };
        match (hex_value(hi), hex_value(lo)) {
            (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
            _ => return Err(ValueErrorReason::Bytea),
        }
    }
    Ok(out)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn parse_uuid(text: &[u8]) -> Result<String, ValueErrorReason> {
    let well_formed = text.len() == 36
        && text.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    if !well_formed {
        return Err(ValueErrorReason::Uuid);
    }
    Ok(text.iter().map(|b| char::from(b.to_ascii_lowercase())).collect())
}

// ---- dates and times ----

const DATE_FORM: &str = "YYYY-MM-DD[ BC]";
const TIME_FORM: &str = "HH:MM:SS[.ffffff]";
const TIMESTAMP_FORM: &str = "YYYY-MM-DD HH:MM:SS[.ffffff][ BC]";
const TIMESTAMPTZ_FORM: &str = "YYYY-MM-DD HH:MM:SS[.ffffff]+HH[:MM[:SS]][ BC]";

/// A cursor over ASCII text for the date and time parsers.
struct Scan<'a> {
    s: &'a [u8],
    i: usize,
}

impl Scan<'_> {
    /// Between `min` and `max` (at most 9) decimal digits, as a number, and how many there were.
    fn digits(&mut self, min: usize, max: usize) -> Option<(u32, usize)> {
        let start = self.i;
        let mut value = 0u32;
        while self.i - start < max {
            match self.s.get(self.i) {
                Some(&b) if b.is_ascii_digit() => {
                    value = value * 10 + u32::from(b - b'0');
                    self.i += 1;
                }
                _ => break,
            }
        }
        let count = self.i - start;
        (count >= min).then_some((value, count))
    }

    fn number(&mut self, min: usize, max: usize) -> Option<u32> {
        self.digits(min, max).map(|(value, _)| value)
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.s.get(self.i) == Some(&b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, b: u8) -> Option<()> {
        self.eat(b).then_some(())
    }

    /// True and consumed if the rest of the text is exactly `suffix`.
    fn eat_suffix(&mut self, suffix: &[u8]) -> bool {
        if self.s.get(self.i..) == Some(suffix) {
            self.i = self.s.len();
            true
        } else {
            false
        }
    }

    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }

    /// `YYYY-MM-DD`; PostgreSQL prints at least four year digits and up to seven (year 5874897).
    fn date_fields(&mut self) -> Option<(u32, u32, u32)> {
        let year = self.number(4, 7)?;
        self.expect(b'-')?;
        let month = self.number(2, 2)?;
        self.expect(b'-')?;
        let day = self.number(2, 2)?;
        Some((year, month, day))
    }

    /// `HH:MM:SS[.f…]` with up to nine fraction digits, returned as nanoseconds.
    fn time_fields(&mut self) -> Option<(u32, u32, u32, u32)> {
        let hour = self.number(2, 2)?;
        self.expect(b':')?;
        let minute = self.number(2, 2)?;
        self.expect(b':')?;
        let second = self.number(2, 2)?;
        let mut nanos = 0;
        if self.eat(b'.') {
            let (fraction, count) = self.digits(1, 9)?;
            nanos = fraction * 10u32.pow(9 - count as u32);
        }
        Some((hour, minute, second, nanos))
    }

    /// A UTC offset `+HH`, `-HH:MM` or `+HH:MM:SS`, in seconds east of UTC.
    fn offset(&mut self) -> Option<i64> {
        let sign = if self.eat(b'+') {
            1
        } else if self.eat(b'-') {
            -1
        } else {
            return None;
        };
        let hours = self.number(2, 2)?;
        let minutes = if self.eat(b':') { self.number(2, 2)? } else { 0 };
        let seconds = if self.eat(b':') { self.number(2, 2)? } else { 0 };
        if minutes > 59 || seconds > 59 {
            return None;
        }
        Some(sign * i64::from(hours * 3600 + minutes * 60 + seconds))
    }
}

fn make_date((year, month, day): (u32, u32, u32), bc: bool) -> Result<NaiveDate, ValueErrorReason> {
    // There is no year 0: PostgreSQL prints 1 BC as `0001 BC`.
    if year == 0 {
        return Err(ValueErrorReason::NoSuch("year"));
    }
    let year = i32::try_from(year).map_err(|_| ValueErrorReason::YearOutOfRange)?;
    let year = if bc { 1 - year } else { year };
    NaiveDate::from_ymd_opt(year, month, day).ok_or_else(|| {
        if NaiveDate::from_ymd_opt(year, 1, 1).is_none() {
            ValueErrorReason::YearOutOfRange
        } else {
            ValueErrorReason::NoSuch("date")
        }
    })
}

fn make_time((hour, minute, second, nanos): (u32, u32, u32, u32)) -> Result<NaiveTime, ValueErrorReason> {
    if (hour, minute, second, nanos) == (24, 0, 0, 0) {
        return Err(ValueErrorReason::EndOfDay);
    }
    NaiveTime::from_hms_nano_opt(hour, minute, second, nanos).ok_or(ValueErrorReason::NoSuch("time of day"))
}

fn refuse_infinity(text: &[u8]) -> Result<(), ValueErrorReason> {
    match text {
        b"infinity" | b"-infinity" => Err(ValueErrorReason::Infinite),
        _ => Ok(()),
    }
}

fn parse_date(text: &[u8]) -> Result<NaiveDate, ValueErrorReason> {
    refuse_infinity(text)?;
    let mut scan = Scan { s: text, i: 0 };
    let fields = scan.date_fields().ok_or(ValueErrorReason::Format(DATE_FORM))?;
    let bc = scan.eat_suffix(b" BC");
    if !scan.at_end() {
        return Err(ValueErrorReason::Format(DATE_FORM));
    }
    make_date(fields, bc)
}

fn parse_time(text: &[u8]) -> Result<NaiveTime, ValueErrorReason> {
    let mut scan = Scan { s: text, i: 0 };
    let fields = scan.time_fields().ok_or(ValueErrorReason::Format(TIME_FORM))?;
    if !scan.at_end() {
        return Err(ValueErrorReason::Format(TIME_FORM));
    }
    make_time(fields)
}

fn parse_timestamp(text: &[u8]) -> Result<NaiveDateTime, ValueErrorReason> {
    refuse_infinity(text)?;
    let format = ValueErrorReason::Format(TIMESTAMP_FORM);
    let mut scan = Scan { s: text, i: 0 };
    let date = scan.date_fields().ok_or(format.clone())?;
    scan.expect(b' ').ok_or(format.clone())?;
    let time = scan.time_fields().ok_or(format.clone())?;
    let bc = scan.eat_suffix(b" BC");
    if !scan.at_end() {
        return Err(format);
    }
    Ok(make_date(date, bc)?.and_time(make_time(time)?))
}

/// Reads a timestamptz and converts it to UTC. With `TimeZone=UTC` the offset is always `+00`;
/// other offsets are honoured in case the session's zone differs (old timestamps in named zones
/// can have second-level offsets such as `+00:53:28`). PostgreSQL prints ` BC` after the offset.
fn parse_timestamptz(text: &[u8]) -> Result<DateTime<Utc>, ValueErrorReason> {
    refuse_infinity(text)?;
    let format = ValueErrorReason::Format(TIMESTAMPTZ_FORM);
    let mut scan = Scan { s: text, i: 0 };
    let date = scan.date_fields().ok_or(format.clone())?;
    scan.expect(b' ').ok_or(format.clone())?;
    let time = scan.time_fields().ok_or(format.clone())?;
    let offset = scan.offset().ok_or(format.clone())?;
    let bc = scan.eat_suffix(b" BC");
    if !scan.at_end() {
        return Err(format);
    }
    let local = make_date(date, bc)?.and_time(make_time(time)?);
    local
        .checked_sub_signed(TimeDelta::seconds(offset))
        .map(|utc| utc.and_utc())
        .ok_or(ValueErrorReason::YearOutOfRange)
}

// ---- tuples ----

// ---- arrays ------------------------------------------------------------------------------
//
// PostgreSQL's array text format (`array_out`), read into [`Value::Array`] and written back.
//
// `{1,2,NULL}`, `{{1,2},{3,4}}`, `{"a b",c,"q\"x",""}`, `{}`: elements separated by the element
// type's delimiter (`,` for every type but `box`), nested braces for each dimension, an element
// in double quotes (with `\` escaping `"` and `\`) when it is empty, is `NULL` spelt in any case,
// or holds a delimiter, brace, quote, backslash or white space. An unquoted `NULL` is SQL NULL.
// An array whose lower bounds are not all 1 is printed with its bounds first (`[0:1]={5,6}`);
// a JSON array cannot hold them, so [`parse_array`] leaves such a value to be kept as text.

const ARRAY_FORM: &str = "{element,…} (PostgreSQL array text)";

/// The elements of an array value of `element` type, or `None` for an array with explicit bounds.
fn parse_array(element: &ColumnType, delimiter: u8, text: &str) -> Result<Option<Vec<Value>>, ValueErrorReason> {
    if text.starts_with('[') {
        return Ok(None);
    }
    let mut parser = ArrayParser { s: text.as_bytes(), text, i: 0, element, delimiter };
    let items = parser.level(0)?;
    if parser.i != parser.s.len() {
        return Err(ValueErrorReason::Format(ARRAY_FORM));
    }
    Ok(Some(items))
}

struct ArrayParser<'a> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
    element: &'a ColumnType,
    delimiter: u8,
}

impl ArrayParser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    /// `{…}` at the cursor: its elements (or sub-arrays).
    fn level(&mut self, depth: usize) -> Result<Vec<Value>, ValueErrorReason> {
        // PostgreSQL allows at most 6 dimensions.
        if depth > 6 || self.peek() != Some(b'{') {
            return Err(ValueErrorReason::Format(ARRAY_FORM));
        }
        self.i += 1;
        let mut items = Vec::new();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(items);
        }
        loop {
            let item = match self.peek() {
                Some(b'{') => Value::Array(self.level(depth + 1)?),
                Some(b'"') => {
                    let text = self.quoted()?;
                    self.decode(text.as_bytes())?
                }
                Some(_) => {
                    let start = self.i;
                    while self.peek().is_some_and(|b| b != self.delimiter && b != b'}') {
                        self.i += 1;
                    }
                    let raw = &self.text[start..self.i];
                    if raw.is_empty() {
                        return Err(ValueErrorReason::Format(ARRAY_FORM));
                    }
                    if raw.eq_ignore_ascii_case("NULL") {
                        Value::Null
                    } else {
                        self.decode(raw.as_bytes())?
                    }
                }
                None => return Err(ValueErrorReason::Format(ARRAY_FORM)),
            };
            items.push(item);
            match self.peek() {
                Some(b'}') => {
                    self.i += 1;
                    return Ok(items);
                }
                Some(b) if b == self.delimiter => self.i += 1,
                _ => return Err(ValueErrorReason::Format(ARRAY_FORM)),
            }
        }
    }

    /// A double-quoted element at the cursor, unescaped.
    fn quoted(&mut self) -> Result<String, ValueErrorReason> {
        self.i += 1;
        let mut out = String::new();
        let mut start = self.i;
        loop {
            match self.peek() {
                Some(b'"') => {
                    out.push_str(&self.text[start..self.i]);
                    self.i += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    out.push_str(&self.text[start..self.i]);
                    self.i += 1;
                    // The escaped character may be multi-byte: take it whole.
                    let ch = self.text[self.i..].chars().next().ok_or(ValueErrorReason::Format(ARRAY_FORM))?;
                    out.push(ch);
                    self.i += ch.len_utf8();
                    start = self.i;
                }
                Some(_) => self.i += 1,
                None => return Err(ValueErrorReason::Format(ARRAY_FORM)),
            }
        }
    }

    fn decode(&self, text: &[u8]) -> Result<Value, ValueErrorReason> {
        decode_column_lossless(self.element, text).map_err(|e| e.reason)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;

    use super::*;
    use crate::model::to_pg_text;
    use crate::source::odoo::pgoutput::{Relation, RelationColumn, ReplicaIdentity};
    use crate::source::odoo::pgoutput::{RelationInfo, TupleValue};
    use crate::source::odoo::tuple::decode_tuple;

    fn ok(type_oid: u32, text: &str) -> Value {
        match decode_text(type_oid, text.as_bytes()) {
            Ok(value) => value,
            Err(e) => panic!("{text:?}: {e}"),
        }
    }

    fn err(type_oid: u32, text: &[u8]) -> ValueError {
        match decode_text(type_oid, text) {
            Ok(value) => panic!("{text:?} read as {value:?}"),
            Err(e) => e,
        }
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn datetime(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, micro: u32) -> NaiveDateTime {
        date(y, mo, d).and_hms_micro_opt(h, mi, s, micro).unwrap()
    }

    #[test]
    fn booleans() {
        assert_eq!(ok(oid::BOOL, "t"), Value::Bool(true));
        assert_eq!(ok(oid::BOOL, "f"), Value::Bool(false));
        assert_eq!(
            err(oid::BOOL, b"true").to_string(),
            r#"cannot read "true" as boolean: not a boolean (expected t or f)"#
        );
    }

    #[test]
    fn integers() {
        assert_eq!(ok(oid::INT2, "-32768"), Value::Int(-32768));
        assert_eq!(ok(oid::INT4, "2147483647"), Value::Int(2_147_483_647));
        assert_eq!(ok(oid::INT4, "0"), Value::Int(0));
        assert_eq!(ok(oid::INT8, "-9223372036854775808"), Value::Int(i64::MIN));
        assert_eq!(ok(oid::INT8, "9223372036854775807"), Value::Int(i64::MAX));
        assert_eq!(ok(oid::OID, "4294967295"), Value::Int(4_294_967_295));
        for bad in ["9223372036854775808", "-9223372036854775809", "", "-", "12a", " 1", "1.0"] {
            assert_eq!(err(oid::INT8, bad.as_bytes()).reason, ValueErrorReason::NotInt, "{bad:?}");
        }
    }

    #[test]
    fn floats() {
        assert_eq!(ok(oid::FLOAT8, "-1.5"), Value::Float(-1.5));
        assert_eq!(ok(oid::FLOAT8, "1e+100"), Value::Float(1e100));
        assert_eq!(ok(oid::FLOAT4, "1.1"), Value::Float(1.1));
        assert_eq!(ok(oid::FLOAT8, "Infinity"), Value::Float(f64::INFINITY));
        assert_eq!(ok(oid::FLOAT8, "-Infinity"), Value::Float(f64::NEG_INFINITY));
        assert!(matches!(ok(oid::FLOAT8, "NaN"), Value::Float(f) if f.is_nan()));
        assert_eq!(err(oid::FLOAT8, b"1,5").reason, ValueErrorReason::NotFloat);
    }

    #[test]
    fn numerics_keep_their_scale() {
        let Value::Decimal(d) = ok(oid::NUMERIC, "1.500") else { panic!("not a decimal") };
        assert_eq!((d.mantissa(), d.scale()), (1500, 3));
        assert_eq!(d.to_string(), "1.500");
        assert_eq!(ok(oid::NUMERIC, "-12.340"), Value::Decimal("-12.340".parse().unwrap()));
        assert_eq!(
            ok(oid::NUMERIC, "12345678901234567890123456789012345678"),
            Value::Decimal("12345678901234567890123456789012345678".parse().unwrap())
        );
        assert_eq!(err(oid::NUMERIC, b"12a").to_string(), r#"cannot read "12a" as numeric: not a decimal number"#);
        // What `Decimal` cannot hold exactly is kept as PostgreSQL's text.
        let scale_50 = format!("0.{}1", "0".repeat(49));
        for special in ["NaN", "Infinity", "-Infinity", &"1".repeat(39), &"9".repeat(1000), &scale_50] {
            assert_eq!(ok(oid::NUMERIC, special), Value::raw("numeric", special), "{special}");
        }
        // PostgreSQL never prints exponents; `Decimal` would accept them, this path does not.
        for bad in ["1e5", "0e2000000000", " 1", "", "-", "1.2.3"] {
            assert_eq!(
                err(oid::NUMERIC, bad.as_bytes()).reason,
                ValueErrorReason::Decimal(DecimalError::Syntax),
                "{bad}"
            );
        }
    }

    #[test]
    fn texts() {
        assert_eq!(ok(oid::TEXT, "héllo wörld"), Value::Text("héllo wörld".into()));
        assert_eq!(ok(oid::VARCHAR, ""), Value::Text(String::new()));
        assert_eq!(ok(oid::BPCHAR, "ab   "), Value::Text("ab   ".into()));
        assert_eq!(ok(oid::NAME, "stock_move"), Value::Text("stock_move".into()));
        assert_eq!(ok(oid::CHAR, "r"), Value::Text("r".into()));
        let e = err(oid::TEXT, b"caf\xe9");
        assert_eq!(e.reason, ValueErrorReason::InvalidUtf8);
        assert_eq!(e.to_string(), "cannot read \"caf\u{FFFD}\" as text: not valid UTF-8");
    }

    #[test]
    fn other_types_are_the_text_sent() {
        for (type_oid, text) in [
            (1186, "1 year 2 mons 3 days 04:05:06.5"),
            (790, "$1,000.00"),
            (869, "192.168.0.1/24"),
            (16390, "draft"),
            (1266, "13:45:00+02"),
        ] {
            assert_eq!(ok(type_oid, text), Value::Text(text.into()), "{type_oid}");
        }
        assert_eq!(err(16390, b"\xff").to_string(), "cannot read \"\u{FFFD}\" as type 16390: not valid UTF-8");
    }

    #[test]
    fn arrays_are_arrays_of_their_element_type() {
        assert_eq!(ok(1007, "{1,2,NULL}"), Value::Array(vec![Value::Int(1), Value::Int(2), Value::Null]));
        assert_eq!(ok(1009, r#"{"a b",c}"#), Value::Array(vec![Value::Text("a b".into()), Value::Text("c".into())]));
        assert_eq!(ok(1182, "{infinity}"), Value::Array(vec![Value::raw("date", "infinity")]));
        assert_eq!(ok(1007, "[0:1]={5,6}"), Value::raw("integer[]", "[0:1]={5,6}"));
        assert!(matches!(err(1007, b"{1,2").reason, ValueErrorReason::Format(_)));
    }

    #[test]
    fn lossless_decoding_keeps_unreadable_text_as_raw() {
        let ty = ColumnType::builtin(oid::DATE);
        assert_eq!(decode_column_lossless(&ty, b"2024-02-29").unwrap(), Value::Date(date(2024, 2, 29)));
        assert_eq!(decode_column_lossless(&ty, b"29.02.2024").unwrap(), Value::raw("date", "29.02.2024"));
        assert_eq!(decode_column_lossless(&ty, b"\xff").unwrap_err().reason, ValueErrorReason::InvalidUtf8);
    }

    #[test]
    fn dates() {
        assert_eq!(ok(oid::DATE, "2024-02-29"), Value::Date(date(2024, 2, 29)));
        assert_eq!(ok(oid::DATE, "0044-03-15 BC"), Value::Date(date(-43, 3, 15)));
        assert_eq!(ok(oid::DATE, "0001-01-01 BC"), Value::Date(date(0, 1, 1)));
        assert_eq!(ok(oid::DATE, "10000-01-01"), Value::Date(date(10000, 1, 1)));
        assert_eq!(err(oid::DATE, b"2023-02-29").to_string(), r#"cannot read "2023-02-29" as date: no such date"#);
        assert_eq!(err(oid::DATE, b"0000-01-01").reason, ValueErrorReason::NoSuch("year"));
        for special in ["5874897-12-31", "262143-01-01", "infinity", "-infinity"] {
            assert_eq!(ok(oid::DATE, special), Value::raw("date", special), "{special}");
        }
        assert_eq!(ok(oid::DATE, "4714-11-24 BC"), Value::Date(date(-4713, 11, 24)));
        for bad in ["2024-2-29", "24-02-29", "2024-02-29 AD", "2024-02-29 BC ", "2024/02/29", "", "2024-02-29x"] {
            assert_eq!(err(oid::DATE, bad.as_bytes()).reason, ValueErrorReason::Format(DATE_FORM), "{bad}");
        }
    }

    #[test]
    fn times() {
        assert_eq!(
            ok(oid::TIME, "13:45:00.123456"),
            Value::Time(NaiveTime::from_hms_micro_opt(13, 45, 0, 123_456).unwrap())
        );
        assert_eq!(ok(oid::TIME, "00:00:00"), Value::Time(NaiveTime::MIN));
        assert_eq!(ok(oid::TIME, "23:59:59.5"), Value::Time(NaiveTime::from_hms_milli_opt(23, 59, 59, 500).unwrap()));
        assert_eq!(ok(oid::TIME, "24:00:00"), Value::raw("time", "24:00:00"));
        assert_eq!(err(oid::TIME, b"25:00:00").reason, ValueErrorReason::NoSuch("time of day"));
        assert_eq!(err(oid::TIME, b"12:60:00").reason, ValueErrorReason::NoSuch("time of day"));
        for bad in ["13:45", "13:45:00.", "13:45:00.1234567890", "1:02:03", "13:45:00+00"] {
            assert_eq!(err(oid::TIME, bad.as_bytes()).reason, ValueErrorReason::Format(TIME_FORM), "{bad}");
        }
    }

    #[test]
    fn timestamps() {
        assert_eq!(
            ok(oid::TIMESTAMP, "2024-01-02 03:04:05.123456"),
            Value::Timestamp(datetime(2024, 1, 2, 3, 4, 5, 123_456))
        );
        assert_eq!(ok(oid::TIMESTAMP, "2024-01-02 03:04:05"), Value::Timestamp(datetime(2024, 1, 2, 3, 4, 5, 0)));
        assert_eq!(
            ok(oid::TIMESTAMP, "2024-02-29 23:59:59.5"),
            Value::Timestamp(datetime(2024, 2, 29, 23, 59, 59, 500_000))
        );
        assert_eq!(
            ok(oid::TIMESTAMP, "2024-01-02 03:04:05.000001"),
            Value::Timestamp(datetime(2024, 1, 2, 3, 4, 5, 1))
        );
        assert_eq!(ok(oid::TIMESTAMP, "0044-03-15 12:00:00 BC"), Value::Timestamp(datetime(-43, 3, 15, 12, 0, 0, 0)));
        for special in ["infinity", "-infinity", "294276-12-31 23:59:59.999999"] {
            assert_eq!(ok(oid::TIMESTAMP, special), Value::raw("timestamp", special), "{special}");
        }
        assert_eq!(err(oid::TIMESTAMP, b"2023-02-29 00:00:00").reason, ValueErrorReason::NoSuch("date"));
        for bad in ["2024-01-02T03:04:05", "2024-01-02 03:04", "2024-01-02", "2024-01-02 03:04:05+00"] {
            assert_eq!(err(oid::TIMESTAMP, bad.as_bytes()).reason, ValueErrorReason::Format(TIMESTAMP_FORM), "{bad}");
        }
    }

    #[test]
    fn timestamptz_offsets_are_converted_to_utc() {
        let utc = |y, mo, d, h, mi, s, micro| Value::TimestampTz(datetime(y, mo, d, h, mi, s, micro).and_utc());
        assert_eq!(ok(oid::TIMESTAMPTZ, "2024-01-02 03:04:05.5+00"), utc(2024, 1, 2, 3, 4, 5, 500_000));
        assert_eq!(ok(oid::TIMESTAMPTZ, "2024-01-02 03:04:05+05:30"), utc(2024, 1, 1, 21, 34, 5, 0));
        assert_eq!(ok(oid::TIMESTAMPTZ, "2024-01-02 03:04:05-03"), utc(2024, 1, 2, 6, 4, 5, 0));
        assert_eq!(ok(oid::TIMESTAMPTZ, "2024-01-02 03:04:05.25+05:30:15"), utc(2024, 1, 1, 21, 33, 50, 250_000));
        assert_eq!(ok(oid::TIMESTAMPTZ, "2024-12-31 23:30:00-01"), utc(2025, 1, 1, 0, 30, 0, 0));
        assert_eq!(ok(oid::TIMESTAMPTZ, "0044-03-15 12:00:00+00 BC"), utc(-43, 3, 15, 12, 0, 0, 0));
        for special in ["infinity", "-infinity", "294276-12-31 23:59:59.999999+00"] {
            assert_eq!(ok(oid::TIMESTAMPTZ, special), Value::raw("timestamptz", special), "{special}");
        }
        for bad in [
            "2024-01-02 03:04:05",
            "2024-01-02 03:04:05+5",
            "2024-01-02 03:04:05+05:3",
            "2024-01-02 03:04:05+05:60",
            "2024-01-02 03:04:05 BC+00",
            "2024-01-02 03:04:05Z",
        ] {
            assert_eq!(
                err(oid::TIMESTAMPTZ, bad.as_bytes()).reason,
                ValueErrorReason::Format(TIMESTAMPTZ_FORM),
                "{bad}"
            );
        }
    }

    #[test]
    fn json_and_jsonb_keep_their_exact_text() {
        let sent = r#"{"a": {"b": [1, 2.5, {"c": null}]}, "big": 12345678901234567890123, "d": "é"}"#;
        assert_eq!(ok(oid::JSONB, sent), Value::Json(sent.to_string()));
        assert_eq!(ok(oid::JSON, r#" {"a": 1, "a": 2} "#), Value::Json(r#" {"a": 1, "a": 2} "#.to_string()));
        assert_eq!(ok(oid::JSONB, "null"), Value::Json("null".to_string()));
        assert!(matches!(err(oid::JSONB, b"\"\xff\"").reason, ValueErrorReason::InvalidUtf8));
    }

    #[test]
    fn bytea() {
        assert_eq!(ok(oid::BYTEA, r"\x"), Value::Bytes(vec![]));
        assert_eq!(ok(oid::BYTEA, r"\x0a1bff"), Value::Bytes(vec![0x0a, 0x1b, 0xff]));
        assert_eq!(ok(oid::BYTEA, r"\xABcd"), Value::Bytes(vec![0xab, 0xcd]));
        assert_eq!(
            err(oid::BYTEA, br"\x0").to_string(),
            r#"cannot read "\x0" as bytea: not hex-format bytea (expected \x followed by pairs of hex digits)"#
        );
        for bad in [r"\xzz", r"abc\000", "", r"\X00", r"\x0g"] {
            assert_eq!(err(oid::BYTEA, bad.as_bytes()).reason, ValueErrorReason::Bytea, "{bad}");
        }
    }

    #[test]
    fn uuids_are_canonical_text() {
        let canonical = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";
        assert_eq!(ok(oid::UUID, canonical), Value::Text(canonical.into()));
        assert_eq!(ok(oid::UUID, &canonical.to_uppercase()), Value::Text(canonical.into()));
        for bad in ["a0eebc999c0b4ef8bb6d6bb9bd380a11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1g", ""] {
            assert_eq!(err(oid::UUID, bad.as_bytes()).reason, ValueErrorReason::Uuid, "{bad}");
        }
    }

    #[test]
    fn error_texts_are_cut_and_escaped() {
        let long = "x".repeat(200);
        let e = err(oid::NUMERIC, long.as_bytes());
        assert_eq!(e.text, format!("{}…", "x".repeat(80)));
        let e = err(oid::INT4, b"1\n\"2\"");
        assert_eq!(e.to_string(), r#"cannot read "1\n\"2\"" as integer: not a 64-bit integer"#);
    }

    #[test]
    fn canonical_texts_round_trip() {
        let cases: &[(u32, &[&str])] = &[
            (oid::BOOL, &["t", "f"]),
            (oid::INT2, &["-32768", "0"]),
            (oid::INT8, &["-9223372036854775808", "9223372036854775807", "42"]),
            (oid::NUMERIC, &["1.500", "-12.340", "0", "0.0001", "-0.5", "123456789012345678901234567890.12345678"]),
            (
                oid::FLOAT8,
                &[
                    "0",
                    "-0",
                    "1.5",
                    "-1.5",
                    "0.1",
                    "100",
                    "0.0001",
                    "1.5e-05",
                    "123456789012345",
                    "1e+15",
                    "1.2345678901234567e+19",
                    "1e+100",
                    "-2.5e-300",
                    "5e-324",
                    "1.7976931348623157e+308",
                    "NaN",
                    "Infinity",
                    "-Infinity",
                ],
            ),
            (oid::FLOAT4, &["1.1", "3.4028235e+38", "-0.33333334"]),
            (oid::TEXT, &["héllo wörld", ""]),
            (oid::BPCHAR, &["ab   "]),
            (oid::UUID, &["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"]),
            (oid::DATE, &["2024-02-29", "0044-03-15 BC", "0001-01-01 BC", "0001-01-01", "10000-01-01"]),
            (oid::TIME, &["13:45:00.123456", "00:00:00", "23:59:59.5", "12:00:00.000001"]),
            (
                oid::TIMESTAMP,
                &[
                    "2024-01-02 03:04:05.123456",
                    "2024-01-02 03:04:05",
                    "2024-01-02 03:04:05.12",
                    "0044-03-15 12:00:00 BC",
                ],
            ),
            (oid::TIMESTAMPTZ, &["2024-01-02 03:04:05.5+00", "2024-02-29 00:00:00+00", "0044-03-15 12:00:00+00 BC"]),
            (oid::BYTEA, &[r"\x", r"\x0a1bff"]),
            (oid::JSON, &[r#"{"a":1,"b":[true,null,"x"]}"#, "[]", "3"]),
            (1186, &["1 day 02:03:04"]),
        ];
        for (type_oid, texts) in cases {
            for text in *texts {
                let value = ok(*type_oid, text);
                assert_eq!(to_pg_text(&value).as_deref(), Some(*text), "{type_oid} {value:?}");
            }
        }
    }

    #[test]
    fn jsonb_round_trips_as_json() {
        let sent = r#"{"a": [1, {"b": "c"}], "d": null, "n": 0.12345678901234567890}"#;
        assert_eq!(to_pg_text(&ok(oid::JSONB, sent)).unwrap(), sent);
    }

    #[test]
    fn values_without_text() {
        assert_eq!(to_pg_text(&Value::Null), None);
        assert_eq!(to_pg_text(&Value::Unchanged), None);
        let tz = Value::TimestampTz(datetime(2024, 1, 1, 21, 34, 5, 0).and_utc());
        assert_eq!(to_pg_text(&tz).as_deref(), Some("2024-01-01 21:34:05+00"));
        let nanos = Value::Time(NaiveTime::from_hms_nano_opt(1, 2, 3, 120).unwrap());
        assert_eq!(to_pg_text(&nanos).as_deref(), Some("01:02:03.00000012"));
    }

    fn stock_move() -> RelationInfo {
        let column =
            |is_key, name: &str, type_oid| RelationColumn { is_key, name: name.into(), type_oid, type_modifier: -1 };
        RelationInfo::new(Relation {
            xid: None,
            oid: 16384,
            table: TableName::new("public", "stock_move"),
            replica_identity: ReplicaIdentity::Default,
            columns: vec![
                column(true, "id", oid::INT4),
                column(false, "product_qty", oid::NUMERIC),
                column(false, "note", oid::TEXT),
                column(false, "date", oid::TIMESTAMP),
            ],
        })
    }

    fn text(s: &'static str) -> TupleValue {
        TupleValue::Text(Bytes::from_static(s.as_bytes()))
    }

    #[test]
    fn tuples_become_rows() {
        let rel = stock_move();
        let row =
            decode_tuple(&rel, &vec![text("7"), text("1.500"), TupleValue::UnchangedToast, TupleValue::Null]).unwrap();
        assert!(Arc::ptr_eq(&row.columns, &rel.column_names));
        assert_eq!(
            row.values,
            vec![Value::Int(7), Value::Decimal("1.500".parse().unwrap()), Value::Unchanged, Value::Null]
        );
        assert_eq!(row.get("product_qty"), Some(&Value::Decimal("1.500".parse().unwrap())));
    }

    #[test]
    fn tuple_errors_name_the_column() {
        let rel = stock_move();
        // Text that does not read as its type is kept, as text with the type's name.
        let row = decode_tuple(&rel, &vec![text("7"), text("abc"), TupleValue::Null, TupleValue::Null]).unwrap();
        assert_eq!(row.values[1], Value::raw("numeric", "abc"));
        let bad = TupleValue::Text(Bytes::from_static(b"caf\xe9"));
        let e = decode_tuple(&rel, &vec![text("7"), TupleValue::Null, bad, TupleValue::Null]).unwrap_err();
        assert_eq!(e.to_string(), "public.stock_move.note: cannot read \"caf\u{FFFD}\" as text: not valid UTF-8");
        assert!(std::error::Error::source(&e).is_some());

        let binary = TupleValue::Binary(Bytes::from_static(&[0, 0, 0, 7]));
        let e = decode_tuple(&rel, &vec![binary, TupleValue::Null, TupleValue::Null, TupleValue::Null]).unwrap_err();
        assert_eq!(e.to_string(), "public.stock_move.id: binary format not requested (value of integer)");

        let e = decode_tuple(&rel, &vec![text("7")]).unwrap_err();
        assert_eq!(e.to_string(), "public.stock_move: tuple has 1 columns but relation 16384 has 4");
    }

    // ---- arrays

    fn parse(element: u32, text: &str) -> Option<Vec<Value>> {
        parse_array(&ColumnType::builtin(element), b',', text).unwrap()
    }

    #[test]
    fn reads_elements_of_their_type() {
        assert_eq!(parse(oid::INT4, "{1,2,NULL}"), Some(vec![Value::Int(1), Value::Int(2), Value::Null]));
        assert_eq!(parse(oid::INT4, "{}"), Some(vec![]));
        assert_eq!(
            parse(oid::INT4, "{{1,2},{3,4}}"),
            Some(vec![
                Value::Array(vec![Value::Int(1), Value::Int(2)]),
                Value::Array(vec![Value::Int(3), Value::Int(4)])
            ])
        );
        let text = |s: &str| Value::Text(s.into());
        assert_eq!(
            parse(oid::TEXT, r#"{"a b",c,NULL,"q\"x","back\\slash","","NULL",null,'quoted',é}"#),
            Some(vec![
                text("a b"),
                text("c"),
                Value::Null,
                text("q\"x"),
                text("back\\slash"),
                text(""),
                text("NULL"),
                Value::Null,
                text("'quoted'"),
                text("é"),
            ])
        );
        assert_eq!(
            parse(oid::NUMERIC, "{1.50,NaN}"),
            Some(vec![Value::Decimal("1.50".parse().unwrap()), Value::raw("numeric", "NaN")])
        );
        assert_eq!(parse(oid::INT4, "[0:1]={5,6}"), None, "explicit bounds are kept as text");
    }

    #[test]
    fn refuses_what_is_not_an_array() {
        for bad in ["", "{", "{1,2", "{1,,2}", "1,2", "{1}x", "{\"a}", "{{1},2"] {
            assert!(parse_array(&ColumnType::builtin(oid::TEXT), b',', bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn writes_what_it_reads() {
        for text in [r#"{"a b",c,NULL,"q\"x","back\\slash","","NULL"}"#, "{{1,2},{3,4}}", "{}"] {
            let items = parse(oid::TEXT, text).unwrap();
            assert_eq!(crate::model::to_pg_text(&Value::Array(items)).as_deref(), Some(text));
        }
    }
}
