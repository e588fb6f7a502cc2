//! PostgreSQL's text form of a value (what `SELECT value::text` prints with `DateStyle=ISO`,
//! `extra_float_digits=1`, UTC): used where a value must be shown or stored as PostgreSQL would
//! show it (`tail`'s envelope, arrays as text, values with no other form).

use std::fmt::Write as _;

use chrono::{Datelike, NaiveDate, NaiveTime, Timelike};

use super::Value;

/// PostgreSQL's text output for `value` under the settings millrace's sessions use (see the module
/// comment), or `None` for
/// [`Value::Null`] and [`Value::Unchanged`], which have none.
///
/// [`Value::Json`] comes out compact (`{"a":1}`); `jsonb` output has spaces (`{"a": 1}`), so
/// compare JSON by parsing rather than by text.
pub fn to_pg_text(value: &Value) -> Option<String> {
    Some(match value {
        Value::Null | Value::Unchanged => return None,
        Value::Bool(b) => (if *b { "t" } else { "f" }).to_owned(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => float_to_pg(*f),
        Value::Decimal(d) => d.to_string(),
        Value::Text(s) => s.clone(),
        Value::Bytes(bytes) => {
            let mut out = String::with_capacity(2 + bytes.len() * 2);
            out.push_str("\\x");
            for b in bytes {
                let _ = write!(out, "{b:02x}");
            }
            out
        }
        Value::Date(date) => {
            let mut out = String::with_capacity(13);
            let bc = write_date(&mut out, *date);
            finish_bc(out, bc)
        }
        Value::Time(time) => {
            let mut out = String::with_capacity(15);
            write_time(&mut out, *time);
            out
        }
        Value::Timestamp(ts) => {
            let mut out = String::with_capacity(29);
            let bc = write_date(&mut out, ts.date());
            out.push(' ');
            write_time(&mut out, ts.time());
            finish_bc(out, bc)
        }
        Value::TimestampTz(ts) => {
            let utc = ts.naive_utc();
            let mut out = String::with_capacity(32);
            let bc = write_date(&mut out, utc.date());
            out.push(' ');
            write_time(&mut out, utc.time());
            out.push_str("+00");
            finish_bc(out, bc)
        }
        Value::Json(json) => json.clone(),
        Value::Array(items) => {
            let mut out = String::new();
            write_array(&mut out, items);
            out
        }
        Value::Raw { text, .. } => text.clone(),
    })
}

/// Writes `YYYY-MM-DD` with the year as PostgreSQL counts it and returns whether it is BC.
fn write_date(out: &mut String, date: NaiveDate) -> bool {
    let year = date.year();
    let (year, bc) = if year <= 0 { (1 - year, true) } else { (year, false) };
    let _ = write!(out, "{year:04}-{:02}-{:02}", date.month(), date.day());
    bc
}

fn finish_bc(mut out: String, bc: bool) -> String {
    if bc {
        out.push_str(" BC");
    }
    out
}

/// Writes `HH:MM:SS` plus a fraction only when it is non-zero, without trailing zeros, as
/// PostgreSQL does.
fn write_time(out: &mut String, time: NaiveTime) {
    let mut second = time.second();
    let mut nanos = time.nanosecond();
    // chrono represents a leap second as nanoseconds past 1e9.
    if nanos >= 1_000_000_000 {
        second += 1;
        nanos -= 1_000_000_000;
    }
    let _ = write!(out, "{:02}:{:02}:{second:02}", time.hour(), time.minute());
    if nanos != 0 {
        let fraction = format!("{nanos:09}");
        out.push('.');
        out.push_str(fraction.trim_end_matches('0'));
    }
}

/// `float8out` with `extra_float_digits > 0`: the shortest digits that read back exactly, in
/// fixed notation when the decimal exponent is in -4..15 and as `d.ddde±XX` otherwise.
fn float_to_pg(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    // Rust's `{:e}` gives the same shortest round-trip digits as PostgreSQL's Ryu, as `d.ddde-X`.
    let scientific = format!("{:e}", f.abs());
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((scientific.as_str(), "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let mut out = String::with_capacity(digits.len() + 8);
    if f < 0.0 {
        out.push('-');
    }
    if (-4..15).contains(&exponent) {
        if exponent < 0 {
            out.push_str("0.");
            for _ in 0..(-exponent - 1) {
                out.push('0');
            }
            out.push_str(&digits);
        } else {
            let int_len = exponent as usize + 1;
            if digits.len() <= int_len {
                out.push_str(&digits);
                for _ in digits.len()..int_len {
                    out.push('0');
                }
            } else {
                let (int, frac) = digits.split_at(int_len);
                out.push_str(int);
                out.push('.');
                out.push_str(frac);
            }
        }
    } else {
        let (first, rest) = digits.split_at(1.min(digits.len()));
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let sign = if exponent < 0 { '-' } else { '+' };
        let _ = write!(out, "e{sign}{:02}", exponent.unsigned_abs());
    }
    out
}

/// An array's text as `array_out` prints it (for tests and diagnostics).
fn write_array(out: &mut String, items: &[Value]) {
    out.push('{');
    for (n, item) in items.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        match item {
            Value::Null | Value::Unchanged => out.push_str("NULL"),
            Value::Array(inner) => write_array(out, inner),
            other => {
                let text = to_pg_text(other).unwrap_or_default();
                let quote = text.is_empty()
                    || text.eq_ignore_ascii_case("NULL")
                    || text.bytes().any(|b| matches!(b, b'{' | b'}' | b',' | b'"' | b'\\') || b.is_ascii_whitespace());
                if quote {
                    out.push('"');
                    for c in text.chars() {
                        if c == '"' || c == '\\' {
                            out.push('\\');
                        }
                        out.push(c);
                    }
                    out.push('"');
                } else {
                    let _ = write!(out, "{text}");
                }
            }
        }
    }
    out.push('}');
}
