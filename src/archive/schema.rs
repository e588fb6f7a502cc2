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

/// Archive rows of one entity appended straight into Arrow builders: a buffered change costs
/// its columnar size, not a copy of its records.
pub struct RowsBuilder {
    key: StringBuilder,
    after: Vec<ColumnBuilder>,
    before: Vec<ColumnBuilder>,
    before_valid: Vec<bool>,
    text: Vec<StringBuilder>,
    commit_ts: TimestampMicrosecondBuilder,
    captured_at: TimestampMicrosecondBuilder,
    xid: Int64Builder,
}

impl RowsBuilder {
    pub fn new(m: &Mapping) -> RowsBuilder {
        let n = 1024;
        RowsBuilder {
            key: StringBuilder::with_capacity(n, n * 12),
            after: m.fields.iter().map(|f| ColumnBuilder::new(f, n)).collect(),
            before: m.fields.iter().map(|f| ColumnBuilder::new(f, n)).collect(),
            before_valid: Vec::with_capacity(n),
            text: (0..6).map(|_| StringBuilder::with_capacity(n, n * 8)).collect(),
            commit_ts: TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC"),
            captured_at: TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC"),
            xid: Int64Builder::with_capacity(n),
        }
    }

    pub fn push(&mut self, m: &Mapping, row: &ArchiveRow) {
        self.key.append_value(&row.key);
        // A value that does not fit its column is kept in `_reason`, exactly, rather than lost.
        let mut misfits = Vec::new();
        for (image, builders, is_before) in
            [(&row.after, &mut self.after, false), (&row.before, &mut self.before, true)]
        {
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
        self.before_valid.push(row.before.is_some());
        let reason = match (&row.reason, misfits.is_empty()) {
            (r, true) => r.clone(),
            (None, false) => Some(misfits.join("; ")),
            (Some(r), false) => Some(format!("{r}; {}", misfits.join("; "))),
        };
        self.text[0].append_value(row.op);
        self.text[1].append_value(row.decision);
        self.text[2].append_option(reason);
        self.text[3].append_value(row.source.as_str());
        self.text[4].append_value(&row.source_table);
        self.text[5].append_value(&row.position);
        self.commit_ts.append_option(row.commit_ts.map(|t| t.timestamp_micros()));
        self.xid.append_option(row.xid.map(i64::from));
        self.captured_at.append_value(row.captured_at.timestamp_micros());
    }

    /// The rows pushed so far as one batch; the builder starts over empty.
    pub fn finish(&mut self, m: &Mapping) -> Result<RecordBatch, ArchiveError> {
        let mut columns: Vec<ArrayRef> = vec![Arc::new(self.key.finish())];
        columns.extend(self.after.iter_mut().map(ColumnBuilder::finish));
        let before_children: Vec<ArrayRef> = self.before.iter_mut().map(ColumnBuilder::finish).collect();
        let valid = NullBuffer::from(std::mem::take(&mut self.before_valid));
        let before_struct = StructArray::try_new(Fields::from(entity_fields(m)), before_children, Some(valid))
            .map_err(|e| ArchiveError::Schema(format!("{}: before struct: {e}", m.entity)))?;
        columns.push(Arc::new(before_struct));
        for b in &mut self.text {
            columns.push(Arc::new(b.finish()));
        }
        columns.push(Arc::new(self.commit_ts.finish()));
        columns.push(Arc::new(self.xid.finish()));
        columns.push(Arc::new(self.captured_at.finish()));
        RecordBatch::try_new(archive_schema(m), columns).map_err(|e| ArchiveError::Schema(format!("{}: {e}", m.entity)))
    }
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
