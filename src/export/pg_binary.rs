//! A PostgreSQL table → Arrow batches through `COPY … TO STDOUT (FORMAT binary)`: the server
//! sends each value in its binary form (no text formatting on its side, no parsing on ours),
//! and each is appended straight into a typed Arrow builder.
//!
//! Types without a binary decoder here are cast to text by the COPY query, so every column
//! arrives: numbers, booleans, text, dates, timestamps, numeric and bytea keep their type.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder, Float64Builder,
    Int16Builder, Int32Builder, Int64Builder, StringBuilder, Time64MicrosecondBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;

use crate::archive::columns::{DECIMAL_PRECISION, DECIMAL_SCALE};
use crate::model::quote_ident;

/// Days from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_DAYS: i32 = 10_957;
/// Microseconds from 1970-01-01 to 2000-01-01.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
const MICROS_PER_DAY: i64 = 86_400_000_000;

/// How one column travels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PgKind {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    /// numeric, at a fixed scale: the declared one, or [`DECIMAL_SCALE`] when undeclared.
    Numeric {
        precision: u8,
        scale: i8,
    },
    Text,
    /// jsonb: a version byte, then the text.
    Jsonb,
    Bytea,
    Date,
    Timestamp,
    TimestampTz,
    Time,
    Uuid,
    /// Anything else, cast to text by the query.
    AsText,
}

impl PgKind {
    /// From `pg_type.typname` and `pg_attribute.atttypmod`.
    pub fn of(typname: &str, typmod: i32) -> PgKind {
        match typname {
            "bool" => PgKind::Bool,
            "int2" => PgKind::Int2,
            "int4" => PgKind::Int4,
            "int8" => PgKind::Int8,
            "float4" => PgKind::Float4,
            "float8" => PgKind::Float8,
            "numeric" => {
                if typmod >= 4 {
                    let precision = ((typmod - 4) >> 16) & 0xffff;
                    let scale = (typmod - 4) & 0xffff;
                    if precision <= i32::from(DECIMAL_PRECISION) && scale <= precision {
                        return PgKind::Numeric { precision: precision as u8, scale: scale as i8 };
                    }
                }
                PgKind::Numeric { precision: DECIMAL_PRECISION, scale: DECIMAL_SCALE }
            }
            "text" | "varchar" | "bpchar" | "name" | "json" | "char" => PgKind::Text,
            "jsonb" => PgKind::Jsonb,
            "bytea" => PgKind::Bytea,
            "date" => PgKind::Date,
            "timestamp" => PgKind::Timestamp,
            "timestamptz" => PgKind::TimestampTz,
            "time" => PgKind::Time,
            "uuid" => PgKind::Uuid,
            _ => PgKind::AsText,
        }
    }

    pub fn data_type(self) -> DataType {
        match self {
            PgKind::Bool => DataType::Boolean,
            PgKind::Int2 => DataType::Int16,
            PgKind::Int4 => DataType::Int32,
            PgKind::Int8 => DataType::Int64,
            PgKind::Float4 => DataType::Float32,
            PgKind::Float8 => DataType::Float64,
            PgKind::Numeric { precision, scale } => DataType::Decimal128(precision.max(1), scale),
            PgKind::Text | PgKind::Jsonb | PgKind::Uuid | PgKind::AsText => DataType::Utf8,
            PgKind::Bytea => DataType::Binary,
            PgKind::Date => DataType::Date32,
            PgKind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            PgKind::TimestampTz => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            PgKind::Time => DataType::Time64(TimeUnit::Microsecond),
        }
    }
}

#[derive(Debug, Clone)]
pub struct PgColumn {
    pub name: String,
    pub type_name: String,
    pub kind: PgKind,
}

/// The query that reads `columns` of `table` (already quoted) in binary.
pub fn copy_sql(quoted_table: &str, columns: &[PgColumn]) -> String {
    let list: Vec<String> = columns
        .iter()
        .map(|c| match c.kind {
            PgKind::AsText => format!("{}::text", quote_ident(&c.name)),
            _ => quote_ident(&c.name),
        })
        .collect();
    format!("COPY (SELECT {} FROM {quoted_table}) TO STDOUT (FORMAT binary)", list.join(", "))
}

pub fn schema(columns: &[PgColumn]) -> SchemaRef {
    Arc::new(Schema::new(columns.iter().map(|c| Field::new(&c.name, c.kind.data_type(), true)).collect::<Vec<_>>()))
}

/// A value the decoder could not take, with where it was.
#[derive(Debug, thiserror::Error)]
#[error("row {row}, column {column} ({type_name}): {message}")]
pub struct DecodeError {
    pub row: u64,
    pub column: String,
    pub type_name: String,
    pub message: String,
    /// The value is valid but has no exact form in the column's Arrow type (numeric `NaN`, a
    /// date `infinity`, time `24:00:00`): the column must travel as text instead.
    pub misfit: bool,
}

/// Why a value could not be appended.
enum ValueError {
    /// A well-formed value the Arrow type cannot hold exactly.
    Misfit(String),
    /// A malformed value: the stream is not what the column's type says.
    Malformed(String),
}

impl From<String> for ValueError {
    fn from(message: String) -> ValueError {
        ValueError::Malformed(message)
    }
}

impl From<&str> for ValueError {
    fn from(message: &str) -> ValueError {
        ValueError::Malformed(message.to_string())
    }
}

enum Builder {
    Bool(BooleanBuilder),
    I16(Int16Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    Dec(Decimal128Builder, i8),
    Str(StringBuilder),
    Bin(BinaryBuilder),
    Date(Date32Builder),
    Ts(TimestampMicrosecondBuilder),
    Time(Time64MicrosecondBuilder),
}

impl Builder {
    fn new(kind: PgKind, n: usize) -> Builder {
        match kind {
            PgKind::Bool => Builder::Bool(BooleanBuilder::with_capacity(n)),
            PgKind::Int2 => Builder::I16(Int16Builder::with_capacity(n)),
            PgKind::Int4 => Builder::I32(Int32Builder::with_capacity(n)),
            PgKind::Int8 => Builder::I64(Int64Builder::with_capacity(n)),
            PgKind::Float4 => Builder::F32(Float32Builder::with_capacity(n)),
            PgKind::Float8 => Builder::F64(Float64Builder::with_capacity(n)),
            PgKind::Numeric { precision, scale } => {
                let b = Decimal128Builder::with_capacity(n);
                let b = match b.with_precision_and_scale(precision.max(1), scale) {
                    Ok(b) => b,
                    Err(_) => Decimal128Builder::with_capacity(n),
                };
                Builder::Dec(b, scale)
            }
            PgKind::Text | PgKind::Jsonb | PgKind::Uuid | PgKind::AsText => {
                Builder::Str(StringBuilder::with_capacity(n, n * 16))
            }
            PgKind::Bytea => Builder::Bin(BinaryBuilder::with_capacity(n, n * 16)),
            PgKind::Date => Builder::Date(Date32Builder::with_capacity(n)),
            PgKind::Timestamp => Builder::Ts(TimestampMicrosecondBuilder::with_capacity(n)),
            PgKind::TimestampTz => Builder::Ts(TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC")),
            PgKind::Time => Builder::Time(Time64MicrosecondBuilder::with_capacity(n)),
        }
    }

    fn null(&mut self) {
        match self {
            Builder::Bool(b) => b.append_null(),
            Builder::I16(b) => b.append_null(),
            Builder::I32(b) => b.append_null(),
            Builder::I64(b) => b.append_null(),
            Builder::F32(b) => b.append_null(),
            Builder::F64(b) => b.append_null(),
            Builder::Dec(b, _) => b.append_null(),
            Builder::Str(b) => b.append_null(),
            Builder::Bin(b) => b.append_null(),
            Builder::Date(b) => b.append_null(),
            Builder::Ts(b) => b.append_null(),
            Builder::Time(b) => b.append_null(),
        }
    }

    fn value(&mut self, kind: PgKind, v: &[u8]) -> Result<(), ValueError> {
        fn fixed<const N: usize>(v: &[u8]) -> Result<[u8; N], String> {
            v.try_into().map_err(|_| format!("expected {N} bytes, got {}", v.len()))
        }
        match self {
            Builder::Bool(b) => b.append_value(fixed::<1>(v)?[0] != 0),
            Builder::I16(b) => b.append_value(i16::from_be_bytes(fixed(v)?)),
            Builder::I32(b) => b.append_value(i32::from_be_bytes(fixed(v)?)),
            Builder::I64(b) => b.append_value(i64::from_be_bytes(fixed(v)?)),
            Builder::F32(b) => b.append_value(f32::from_be_bytes(fixed(v)?)),
            Builder::F64(b) => b.append_value(f64::from_be_bytes(fixed(v)?)),
            Builder::Dec(b, scale) => b.append_value(numeric_at_scale(v, *scale).map_err(ValueError::Misfit)?),
            Builder::Str(b) => {
                let text = match kind {
                    PgKind::Jsonb => v.get(1..).ok_or("empty jsonb")?,
                    PgKind::Uuid => {
                        let u = fixed::<16>(v)?;
                        b.append_value(uuid_text(&u));
                        return Ok(());
                    }
                    _ => v,
                };
                b.append_value(std::str::from_utf8(text).map_err(|e| format!("not UTF-8: {e}"))?)
            }
            Builder::Bin(b) => b.append_value(v),
            Builder::Date(b) => {
                let days = i32::from_be_bytes(fixed(v)?);
                if days == i32::MAX || days == i32::MIN {
                    return Err(ValueError::Misfit("infinite date".into()));
                }
                b.append_value(days.checked_add(PG_EPOCH_DAYS).ok_or(ValueError::Misfit("date out of range".into()))?)
            }
            Builder::Ts(b) => {
                let micros = i64::from_be_bytes(fixed(v)?);
                if micros == i64::MAX || micros == i64::MIN {
                    return Err(ValueError::Misfit("infinite timestamp".into()));
                }
                let since_1970 = micros.checked_add(PG_EPOCH_MICROS);
                b.append_value(since_1970.ok_or(ValueError::Misfit("timestamp out of range".into()))?)
            }
            Builder::Time(b) => {
                let micros = i64::from_be_bytes(fixed(v)?);
                // Arrow's and Parquet's time of day ends before midnight; PostgreSQL's ends at it.
                if micros >= MICROS_PER_DAY {
                    return Err(ValueError::Misfit("24:00:00 is past Arrow's last time of day".into()));
                }
                b.append_value(micros)
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::I16(b) => Arc::new(b.finish()),
            Builder::I32(b) => Arc::new(b.finish()),
            Builder::I64(b) => Arc::new(b.finish()),
            Builder::F32(b) => Arc::new(b.finish()),
            Builder::F64(b) => Arc::new(b.finish()),
            Builder::Dec(b, _) => Arc::new(b.finish()),
            Builder::Str(b) => Arc::new(b.finish()),
            Builder::Bin(b) => Arc::new(b.finish()),
            Builder::Date(b) => Arc::new(b.finish()),
            Builder::Ts(b) => Arc::new(b.finish()),
            Builder::Time(b) => Arc::new(b.finish()),
        }
    }
}

fn uuid_text(u: &[u8; 16]) -> String {
    let hex: String = u.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// A binary `numeric` as an integer at `scale` fractional digits, exactly or not at all.
pub fn numeric_at_scale(v: &[u8], scale: i8) -> Result<i128, String> {
    let word = |i: usize| -> Result<i16, String> {
        v.get(i * 2..i * 2 + 2).map(|b| i16::from_be_bytes([b[0], b[1]])).ok_or_else(|| "truncated numeric".to_string())
    };
    let ndigits = word(0)? as usize;
    let weight = i32::from(word(1)?);
    let sign = word(2)? as u16;
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => return Err("NaN has no exact decimal form".into()),
        _ => return Err("infinity has no exact decimal form".into()),
    }
    let overflow = || format!("does not fit 38 digits with {scale} fractional ones");
    let mut acc: i128 = 0;
    for i in 0..ndigits {
        let digit = i128::from(word(4 + i)?);
        let exponent = 4 * (weight - i as i32) + i32::from(scale);
        if exponent >= 0 {
            let factor = 10i128.checked_pow(exponent as u32).ok_or_else(overflow)?;
            acc = digit.checked_mul(factor).and_then(|d| acc.checked_add(d)).ok_or_else(overflow)?;
        } else {
            let divisor = 10i128.checked_pow((-exponent) as u32).unwrap_or(i128::MAX);
            if digit % divisor != 0 {
                return Err(format!("has more than {scale} fractional digits"));
            }
            acc += digit / divisor;
        }
    }
    if acc.unsigned_abs() >= 10u128.pow(u32::from(DECIMAL_PRECISION)) {
        return Err(overflow());
    }
    Ok(if sign == 0x4000 { -acc } else { acc })
}

/// Decodes a binary COPY stream, chunk by chunk, into batches of `batch_rows` rows.
pub struct CopyDecoder {
    columns: Vec<PgColumn>,
    schema: SchemaRef,
    builders: Vec<Builder>,
    batch_rows: usize,
    in_batch: usize,
    rows: u64,
    header_done: bool,
    finished: bool,
    pending: Vec<u8>,
}

impl CopyDecoder {
    pub fn new(columns: Vec<PgColumn>, batch_rows: usize) -> CopyDecoder {
        let builders = columns.iter().map(|c| Builder::new(c.kind, batch_rows)).collect();
        CopyDecoder {
            schema: schema(&columns),
            columns,
            builders,
            batch_rows,
            in_batch: 0,
            rows: 0,
            header_done: false,
            finished: false,
            pending: Vec::new(),
        }
    }

    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Takes the next chunk of the stream; full batches go to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut dyn FnMut(RecordBatch)) -> Result<(), DecodeError> {
        if self.pending.is_empty() {
            let used = self.decode(chunk, out)?;
            self.pending.extend_from_slice(&chunk[used..]);
        } else {
            self.pending.extend_from_slice(chunk);
            let pending = std::mem::take(&mut self.pending);
            let used = self.decode(&pending, out)?;
            self.pending = pending[used..].to_vec();
        }
        Ok(())
    }

    /// The last batch, once the stream ended.
    pub fn finish(mut self) -> Result<Option<RecordBatch>, DecodeError> {
        if !self.pending.is_empty() || !self.finished && self.header_done {
            return Err(self.error(0, "the COPY stream ended in the middle of a row".into()));
        }
        Ok((self.in_batch > 0).then(|| self.take_batch()))
    }

    fn error(&self, column: usize, message: String) -> DecodeError {
        let c = self.columns.get(column);
        DecodeError {
            row: self.rows + 1,
            column: c.map(|c| c.name.clone()).unwrap_or_default(),
            type_name: c.map(|c| c.type_name.clone()).unwrap_or_default(),
            message,
            misfit: false,
        }
    }

    fn misfit(&self, column: usize, message: String) -> DecodeError {
        DecodeError { misfit: true, ..self.error(column, message) }
    }

    fn take_batch(&mut self) -> RecordBatch {
        let arrays: Vec<ArrayRef> = self.builders.iter_mut().map(Builder::finish).collect();
        self.in_batch = 0;
        // The builders produce exactly the schema's types and equal lengths.
        RecordBatch::try_new(self.schema.clone(), arrays)
            .unwrap_or_else(|_| RecordBatch::new_empty(self.schema.clone()))
    }

    /// Decodes every whole row in `data`; returns the bytes used.
    fn decode(&mut self, data: &[u8], out: &mut dyn FnMut(RecordBatch)) -> Result<usize, DecodeError> {
        let mut at = 0;
        if !self.header_done {
            const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";
            if data.len() < SIGNATURE.len() + 8 {
                return Ok(0);
            }
            if &data[..SIGNATURE.len()] != SIGNATURE {
                return Err(self.error(0, "not a binary COPY stream".into()));
            }
            let ext = u32::from_be_bytes([data[15], data[16], data[17], data[18]]) as usize;
            if data.len() < 19 + ext {
                return Ok(0);
            }
            at = 19 + ext;
            self.header_done = true;
        }
        let n = self.columns.len();
        while !self.finished {
            // Is a whole row here?
            let Some(count) = data.get(at..at + 2).map(|b| i16::from_be_bytes([b[0], b[1]])) else { break };
            if count == -1 {
                self.finished = true;
                at += 2;
                break;
            }
            if count as usize != n {
                return Err(self.error(0, format!("row has {count} fields, expected {n}")));
            }
            let mut end = at + 2;
            let mut whole = true;
            for _ in 0..n {
                let Some(len) = data.get(end..end + 4).map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]])) else {
                    whole = false;
                    break;
                };
                end += 4 + len.max(0) as usize;
                if end > data.len() {
                    whole = false;
                    break;
                }
            }
            if !whole {
                break;
            }
            let mut p = at + 2;
            for i in 0..n {
                let len = i32::from_be_bytes([data[p], data[p + 1], data[p + 2], data[p + 3]]);
                p += 4;
                if len < 0 {
                    self.builders[i].null();
                } else {
                    let value = &data[p..p + len as usize];
                    p += len as usize;
                    let kind = self.columns[i].kind;
                    match self.builders[i].value(kind, value) {
                        Ok(()) => {}
                        Err(ValueError::Misfit(message)) => return Err(self.misfit(i, message)),
                        Err(ValueError::Malformed(message)) => return Err(self.error(i, message)),
                    }
                }
            }
            at = end;
            self.rows += 1;
            self.in_batch += 1;
            if self.in_batch >= self.batch_rows {
                out(self.take_batch());
            }
        }
        Ok(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(ndigits: i16, weight: i16, sign: u16, dscale: u16, digits: &[i16]) -> Vec<u8> {
        let mut v = Vec::new();
        for w in [ndigits, weight, sign as i16, dscale as i16] {
            v.extend_from_slice(&w.to_be_bytes());
        }
        for d in digits {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v
    }

    #[test]
    fn numeric_is_exact_at_the_scale() {
        // 12345.678 = [1, 2345, 6780] weight 1
        assert_eq!(numeric_at_scale(&numeric(3, 1, 0, 3, &[1, 2345, 6780]), 3).unwrap(), 12_345_678);
        assert_eq!(numeric_at_scale(&numeric(3, 1, 0x4000, 3, &[1, 2345, 6780]), 4).unwrap(), -123_456_780);
        // 0.0001 = [1] weight -1
        assert_eq!(numeric_at_scale(&numeric(1, -1, 0, 4, &[1]), 4).unwrap(), 1);
        assert!(numeric_at_scale(&numeric(1, -1, 0, 4, &[1]), 2).unwrap_err().contains("fractional"));
        assert!(numeric_at_scale(&numeric(0, 0, 0xC000, 0, &[]), 2).is_err());
        assert_eq!(numeric_at_scale(&numeric(0, 0, 0, 0, &[]), 2).unwrap(), 0);
    }

    #[test]
    fn rows_split_across_chunks_are_decoded_whole() {
        let columns = vec![
            PgColumn { name: "id".into(), type_name: "int4".into(), kind: PgKind::Int4 },
            PgColumn { name: "name".into(), type_name: "text".into(), kind: PgKind::Text },
        ];
        let mut stream = b"PGCOPY\n\xff\r\n\0".to_vec();
        stream.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
        for (id, name) in [(1i32, Some("a")), (2, None), (3, Some("ccc"))] {
            stream.extend_from_slice(&2i16.to_be_bytes());
            stream.extend_from_slice(&4i32.to_be_bytes());
            stream.extend_from_slice(&i32::to_be_bytes(id));
            match name {
                Some(n) => {
                    stream.extend_from_slice(&(n.len() as i32).to_be_bytes());
                    stream.extend_from_slice(n.as_bytes());
                }
                None => stream.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
        stream.extend_from_slice(&(-1i16).to_be_bytes());
        let mut decoder = CopyDecoder::new(columns, 2);
        let mut batches = Vec::new();
        for chunk in stream.chunks(5) {
            decoder.push(chunk, &mut |b| batches.push(b)).unwrap();
        }
        batches.extend(decoder.finish().unwrap());
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 3);
        let names = batches[1].column(1).as_any().downcast_ref::<arrow::array::StringArray>().unwrap();
        assert_eq!(names.value(0), "ccc");
        assert!(arrow::array::Array::is_null(batches[0].column(1).as_ref(), 1));
    }
}
