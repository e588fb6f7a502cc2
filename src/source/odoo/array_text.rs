//! PostgreSQL's array text format (`array_out`), read into [`Value::Array`] and written back.
//!
//! `{1,2,NULL}`, `{{1,2},{3,4}}`, `{"a b",c,"q\"x",""}`, `{}`: elements separated by the element
//! type's delimiter (`,` for every type but `box`), nested braces for each dimension, an element
//! in double quotes (with `\` escaping `"` and `\`) when it is empty, is `NULL` spelt in any case,
//! or holds a delimiter, brace, quote, backslash or white space. An unquoted `NULL` is SQL NULL.
//! An array whose lower bounds are not all 1 is printed with its bounds first (`[0:1]={5,6}`);
//! a JSON array cannot hold them, so [`parse_array`] leaves such a value to be kept as text.

use std::fmt::Write as _;

use super::text_values::{decode_column_lossless, to_pg_text, ValueErrorReason};
use super::types::ColumnType;
use crate::model::Value;

const ARRAY_FORM: &str = "{element,…} (PostgreSQL array text)";

/// The elements of an array value of `element` type, or `None` for an array with explicit bounds.
pub(super) fn parse_array(
    element: &ColumnType,
    delimiter: u8,
    text: &str,
) -> Result<Option<Vec<Value>>, ValueErrorReason> {
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

/// An array's text as `array_out` prints it (for tests and diagnostics).
pub(super) fn write_array(out: &mut String, items: &[Value]) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::odoo::text_values::oid;

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
            let mut out = String::new();
            write_array(&mut out, &items);
            assert_eq!(out, text);
        }
    }
}
