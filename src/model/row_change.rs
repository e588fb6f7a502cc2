//! `RowChange`: one committed row change as a source read it, before any mapping.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{Position, Value};

/// A schema-qualified table name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableName {
    pub schema: Arc<str>,
    pub name: Arc<str>,
}

impl TableName {
    pub fn new(schema: impl Into<Arc<str>>, name: impl Into<Arc<str>>) -> Self {
        TableName { schema: schema.into(), name: name.into() }
    }

    /// Reads `schema.table`, or `table` in `public`.
    pub fn parse(qualified: &str) -> Self {
        match qualified.split_once('.') {
            Some((schema, name)) => TableName::new(schema, name),
            None => TableName::new("public", qualified),
        }
    }

    /// The name quoted for SQL: `"public"."stock_move"`.
    pub fn quoted(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.name))
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

/// Quotes an SQL identifier the PostgreSQL way, doubling embedded quotes.
pub fn quote_ident(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// What happened to the row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Insert,
    Update,
    Delete,
    Truncate,
    /// A row read by a snapshot or backfill, not by a change.
    Snapshot,
}

impl Op {
    /// The Debezium envelope's `op` letter.
    pub fn letter(self) -> &'static str {
        match self {
            Op::Insert => "c",
            Op::Update => "u",
            Op::Delete => "d",
            Op::Truncate => "t",
            Op::Snapshot => "r",
        }
    }
}

/// Column names and values of one row image, in table column order. Column names are shared
/// between every row of a relation.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub columns: Arc<[String]>,
    pub values: Vec<Value>,
}

impl Row {
    pub fn get(&self, column: &str) -> Option<&Value> {
        self.columns.iter().position(|c| c == column).map(|i| &self.values[i])
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.columns.iter().map(String::as_str).zip(self.values.iter())
    }
}

/// Which system a change came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceSystem {
    Odoo,
    Legacy,
}

impl SourceSystem {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceSystem::Odoo => "odoo",
            SourceSystem::Legacy => "legacy",
        }
    }
}

impl RowChange {
    /// A change read from a legacy table: no transaction id, commit time or origin, and a
    /// position made of the change-detection version and the row key.
    pub fn legacy(table: &str, op: Op, before: Option<Row>, after: Option<Row>, version: String, key: String) -> Self {
        RowChange {
            table: TableName::new("", table),
            op,
            before,
            after,
            position: Position::Legacy { version, key },
            commit_ts: None,
            xid: None,
            origin: None,
        }
    }

    /// Which system the change came from.
    pub fn system(&self) -> SourceSystem {
        match self.position {
            Position::Lsn(_) => SourceSystem::Odoo,
            Position::Legacy { .. } => SourceSystem::Legacy,
        }
    }
}

/// One row change of a committed source transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct RowChange {
    pub table: TableName,
    pub op: Op,
    /// The row before the change: the full old row under `REPLICA IDENTITY FULL`, else only the key
    /// columns (others `Null`), or `None` when the source sent no old image.
    pub before: Option<Row>,
    pub after: Option<Row>,
    /// For Odoo, the commit LSN of the transaction; for a legacy table, the change's version and key.
    pub position: Position,
    pub commit_ts: Option<DateTime<Utc>>,
    pub xid: Option<u32>,
    /// Replication origin of the transaction, set when it was written under one (millrace's own
    /// writes into Odoo are).
    pub origin: Option<String>,
}
