//! pgoutput tuples → rows: each column's text read as the type its relation resolved.

use super::pgoutput::{RelationInfo, TupleData, TupleValue};
use super::text_values::{decode_column_lossless, ColumnError};
use crate::model::{Row, Value};

/// Turns a tuple of `rel` into a [`Row`] sharing the relation's column names, each value read as
/// the type the relation resolved for its column (a domain as its base type).
///
/// `n` becomes [`Value::Null`] and `u` (unchanged TOAST) [`Value::Unchanged`]. Under
/// `REPLICA IDENTITY DEFAULT`/`INDEX`, a `K` old tuple has every column, the non-key ones null.
/// Every value that is UTF-8 text comes out ([`decode_column_lossless`]); the only errors are text
/// that is not UTF-8, a binary value, and a tuple that does not fit the relation.
pub fn decode_tuple(rel: &RelationInfo, tuple: &TupleData) -> Result<Row, ColumnError> {
    if tuple.len() != rel.column_kinds.len() || tuple.len() != rel.column_names.len() {
        return Err(ColumnError::ColumnCount {
            table: rel.table().clone(),
            relation_oid: rel.oid(),
            expected: rel.column_kinds.len(),
            found: tuple.len(),
        });
    }
    let mut values = Vec::with_capacity(tuple.len());
    for ((value, ty), column) in tuple.iter().zip(rel.column_kinds.iter()).zip(rel.column_names.iter()) {
        values.push(match value {
            TupleValue::Null => Value::Null,
            TupleValue::UnchangedToast => Value::Unchanged,
            TupleValue::Text(text) => decode_column_lossless(ty, text).map_err(|source| ColumnError::Value {
                table: rel.table().clone(),
                column: column.clone(),
                source: Box::new(source),
            })?,
            TupleValue::Binary(_) => {
                return Err(ColumnError::Binary {
                    table: rel.table().clone(),
                    column: column.clone(),
                    type_oid: ty.oid,
                })
            }
        });
    }
    Ok(Row { columns: rel.column_names.clone(), values })
}
