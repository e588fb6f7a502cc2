//! The archive's file layout: `_key`, the entity's fields as typed top-level columns (the
//! change's after image), `before` as a struct of the same fields, then the change's metadata.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, Int64Builder, StringArray, StringBuilder, StructArray, TimestampMicrosecondBuilder,
};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;

use super::columns::{entity_fields, ColumnBuilder};
use super::{ArchiveError, ArchiveRow};
use crate::mapping::Mapping;

fn timestamp_utc() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// The metadata columns, after the entity's own.
const META: [&str; 9] = [
    "_op",
    "_decision",
    "_reason",
    "_source_system",
    "_source_table",
    "_position",
    "_commit_ts",
    "_xid",
    "_captured_at",
];

pub fn archive_schema(m: &Mapping) -> SchemaRef {
    let mut fields = vec![Field::new("_key", DataType::Utf8, false)];
    fields.extend(entity_fields(m));
    fields.push(Field::new("before", DataType::Struct(Fields::from(entity_fields(m))), true));
    for name in META {
        let (ty, nullable) = match name {
            "_commit_ts" => (timestamp_utc(), true),
            "_captured_at" => (timestamp_utc(), false),
            "_xid" => (DataType::Int64, true),
            "_reason" => (DataType::Utf8, true),
            _ => (DataType::Utf8, false),
        };
        fields.push(Field::new(name, ty, nullable));
    }
    Arc::new(Schema::new(fields))
}

/// One batch of the rows (all of entity `m`).
pub fn archive_batch(m: &Mapping, schema: SchemaRef, rows: &[ArchiveRow]) -> Result<RecordBatch, ArchiveError> {
    let n = rows.len();
    let mut after: Vec<ColumnBuilder> = m.fields.iter().map(|f| ColumnBuilder::new(f.ty, n)).collect();
    let mut before: Vec<ColumnBuilder> = m.fields.iter().map(|f| ColumnBuilder::new(f.ty, n)).collect();
    let mut before_valid = Vec::with_capacity(n);
    let mut key = StringBuilder::with_capacity(n, n * 12);
    let mut text: Vec<StringBuilder> = (0..6).map(|_| StringBuilder::with_capacity(n, n * 8)).collect();
    let mut commit_ts = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut captured_at = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut xid = Int64Builder::with_capacity(n);
    for row in rows {
        key.append_value(&row.key);
        // A value that does not fit its column is kept in `_reason`, exactly, rather than lost.
        let mut misfits = Vec::new();
        for (image, builders, is_before) in [(&row.after, &mut after, false), (&row.before, &mut before, true)] {
            match image {
                Some(record) => {
                    for ((b, value), field) in builders.iter_mut().zip(&record.values).zip(&m.fields) {
                        if let Err(reason) = b.append(value) {
                            let side = if is_before { "before." } else { "" };
                            misfits.push(format!("{side}{}: {reason}", field.name));
                        }
                    }
                }
                None => builders.iter_mut().for_each(ColumnBuilder::append_null),
            }
        }
        before_valid.push(row.before.is_some());
        let reason = match (&row.reason, misfits.is_empty()) {
            (r, true) => r.clone(),
            (None, false) => Some(misfits.join("; ")),
            (Some(r), false) => Some(format!("{r}; {}", misfits.join("; "))),
        };
        text[0].append_value(row.op);
        text[1].append_value(row.decision);
        text[2].append_option(reason);
        text[3].append_value(row.source.as_str());
        text[4].append_value(&row.source_table);
        text[5].append_value(&row.position);
        commit_ts.append_option(row.commit_ts.map(|t| t.timestamp_micros()));
        xid.append_option(row.xid.map(i64::from));
        captured_at.append_value(row.captured_at.timestamp_micros());
    }
    let mut columns: Vec<ArrayRef> = vec![Arc::new(key.finish())];
    columns.extend(after.iter_mut().map(ColumnBuilder::finish));
    let before_children: Vec<ArrayRef> = before.iter_mut().map(ColumnBuilder::finish).collect();
    let before_struct =
        StructArray::try_new(Fields::from(entity_fields(m)), before_children, Some(NullBuffer::from(before_valid)))
            .map_err(|e| ArchiveError::Schema(format!("{}: before struct: {e}", m.entity)))?;
    columns.push(Arc::new(before_struct));
    let mut text = text.into_iter();
    for _ in 0..6 {
        if let Some(mut b) = text.next() {
            columns.push(Arc::new(b.finish()));
        }
    }
    columns.push(Arc::new(commit_ts.finish()));
    columns.push(Arc::new(xid.finish()));
    columns.push(Arc::new(captured_at.finish()));
    RecordBatch::try_new(schema, columns).map_err(|e| ArchiveError::Schema(format!("{}: {e}", m.entity)))
}

/// `(_key, _position)` of every row of an archive file.
pub fn read_keys_and_positions(path: &std::path::Path) -> Result<Vec<(String, String)>, ArchiveError> {
    let err = |message: String| ArchiveError::Read { path: path.to_path_buf(), message };
    let file = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| err(e.to_string()))?;
    let schema = builder.parquet_schema();
    let wanted: Vec<usize> = ["_key", "_position"]
        .iter()
        .map(|name| {
            (0..schema.num_columns())
                .find(|i| schema.column(*i).path().string() == *name)
                .ok_or_else(|| err(format!("no column {name}")))
        })
        .collect::<Result<_, _>>()?;
    let mask = ProjectionMask::leaves(schema, wanted);
    let reader = builder.with_projection(mask).build().map_err(|e| err(e.to_string()))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| err(e.to_string()))?;
        let column = |name: &str| -> Result<StringArray, ArchiveError> {
            batch
                .column_by_name(name)
                .and_then(|c| c.as_any().downcast_ref::<StringArray>().cloned())
                .ok_or_else(|| err(format!("column {name} is not text")))
        };
        let (keys, positions) = (column("_key")?, column("_position")?);
        for i in 0..batch.num_rows() {
            if keys.is_valid(i) && positions.is_valid(i) {
                out.push((keys.value(i).to_string(), positions.value(i).to_string()));
            }
        }
    }
    Ok(out)
}
