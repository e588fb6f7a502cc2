//! `Record`: one entity instance as canonical field values, in the mapping's field order, and
//! `ChangeOp`, what a change does to it.

use super::transform::{json_to_value, value_to_json};
use super::Mapping;
use crate::model::Value;

/// What a change does to the entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeOp {
    Upsert,
    Delete,
}

impl ChangeOp {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeOp::Upsert => "upsert",
            ChangeOp::Delete => "delete",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub values: Vec<Value>,
}

impl Record {
    /// A record holding only the key fields of a key text (for deletes).
    pub fn from_key(m: &Mapping, key: &str) -> Record {
        let mut values = vec![Value::Null; m.fields.len()];
        for (field, value) in m.key.iter().zip(crate::model::key_values(key)) {
            values[*field] = super::transform::coerce(value.clone(), m.fields[*field].ty).unwrap_or(value);
        }
        Record { values }
    }

    /// A content fingerprint: equal records have equal fingerprints on every run and machine.
    pub fn fingerprint(&self) -> i64 {
        crate::model::row_hash_i64(&self.values)
    }

    /// The record as a JSON object of field → value (decimals as strings, exact).
    pub fn to_json(&self, mapping: &Mapping) -> serde_json::Value {
        let mut object = serde_json::Map::new();
        for (field, value) in mapping.fields.iter().zip(&self.values) {
            object.insert(field.name.clone(), value_to_json(value));
        }
        serde_json::Value::Object(object)
    }

    /// Reads [`Record::to_json`]'s form back; fields it lacks are null.
    pub fn from_json(mapping: &Mapping, json: &serde_json::Value) -> Result<Record, String> {
        let object = json.as_object().ok_or("a record must be a JSON object")?;
        let mut values = Vec::with_capacity(mapping.fields.len());
        for field in &mapping.fields {
            let value = match object.get(&field.name) {
                None | Some(serde_json::Value::Null) => Value::Null,
                Some(v) => json_to_value(v, field.ty).map_err(|e| format!("field {}: {e}", field.name))?,
            };
            values.push(value);
        }
        Ok(Record { values })
    }

    /// Indices of the fields whose values differ.
    pub fn changed_fields(&self, other: &Record) -> Vec<usize> {
        self.values.iter().zip(&other.values).enumerate().filter(|(_, (a, b))| a != b).map(|(i, _)| i).collect()
    }
}
