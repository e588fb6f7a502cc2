//! Writing entities into Odoo's PostgreSQL database.
//!
//! The session runs under a replication origin, so every transaction it commits carries that
//! origin in the WAL and comes back on the stream marked as millrace's own (echo suppression).
//! A batch is one transaction; each change runs under a savepoint so that a change the database
//! refuses is dead-lettered without undoing the others.
//!
//! Values are bound as text and cast to the column's own type (read from the catalog once), so
//! one code path writes every type exactly; names are always quoted identifiers.

use std::collections::HashMap;

use tokio_postgres::{Client, GenericClient};

use std::sync::Arc;

use super::odoo_rows::{default_text, from_pg, Assignment, KeySearch, Params};
use super::{about_record, field_named_in, ApplyError, Outcome, Sink, SinkError, Write};
use crate::config::PgConnInfo;
use crate::mapping::{ChangeOp, ColumnTable, Mapping, Mappings, Record, System};
use crate::model::{quote_ident, TableName, Value};
use crate::pg;

/// Column name → SQL type, per table.
#[derive(Debug, Default)]
pub struct Catalog {
    tables: HashMap<String, HashMap<String, String>>,
}

impl Catalog {
    pub fn column_type(&self, table: &str, column: &str) -> Option<&str> {
        self.tables.get(table).and_then(|t| t.get(column)).map(String::as_str)
    }
}

pub struct OdooSink {
    client: Client,
    catalog: Catalog,
    pub origin: String,
}

/// Creates the replication origin if it does not exist (needs superuser or, on PostgreSQL 15,
/// EXECUTE on `pg_replication_origin_create`).
pub const CREATE_ORIGIN_SQL: &str = "SELECT pg_replication_origin_create($1::text)
    WHERE NOT EXISTS (SELECT 1 FROM pg_replication_origin WHERE roname = $1::text)";

impl OdooSink {
    pub async fn connect(info: &PgConnInfo, origin: &str) -> Result<OdooSink, ApplyError> {
        let client = pg::connect(info).await.map_err(|e| ApplyError::Transient(e.to_string()))?;
        client
            .execute(CREATE_ORIGIN_SQL, &[&origin])
            .await
            .map_err(|e| from_pg("creating the replication origin", &e))?;
        client
            .execute("SELECT pg_replication_origin_session_setup($1)", &[&origin])
            .await
            .map_err(|e| from_pg(&format!("using replication origin {origin}"), &e))?;
        Ok(OdooSink { client, catalog: Catalog::default(), origin: origin.to_string() })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    async fn load_types(&mut self, table: &str) -> Result<(), ApplyError> {
        if self.catalog.tables.contains_key(table) {
            return Ok(());
        }
        let rows = self
            .client
            .query(
                "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod)
                   FROM pg_attribute a
                  WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped",
                &[&TableName::parse(table).quoted()],
            )
            .await
            .map_err(|e| from_pg(&format!("reading the columns of {table}"), &e))?;
        let columns = rows.iter().map(|r| (r.get::<_, String>(0), r.get::<_, String>(1))).collect();
        self.catalog.tables.insert(table.to_string(), columns);
        Ok(())
    }

    /// Loads the column types of every table a mapping writes.
    pub async fn prepare(&mut self, m: &Mapping) -> Result<(), ApplyError> {
        self.load_types(&m.odoo.table).await?;
        if let Some(p) = &m.odoo.parent {
            self.load_types(&p.table).await?;
        }
        Ok(())
    }

    /// The client (to start a transaction) and the column types (for the writer), borrowed
    /// apart so both can be used while the transaction is open.
    pub fn parts(&mut self) -> (&mut Client, &Catalog) {
        (&mut self.client, &self.catalog)
    }
}

/// The SQL expression that sets a value of `sql_type` (a parameter cast to it).
fn value_expr(params: &mut Params, sql_type: &str, value: Option<String>) -> String {
    if value.as_deref() == Some("$now") {
        return "(now() AT TIME ZONE 'UTC')".into();
    }
    let p = params.push(value);
    format!("CAST({p}::text AS {sql_type})")
}

/// Writes entities of one mapping inside a transaction.
pub struct OdooWriter<'a, C: GenericClient + Sync> {
    pub catalog: &'a Catalog,
    pub tx: &'a C,
    /// Lookups already resolved in this batch (value → referenced key). Only hits are kept:
    /// a row the batch itself inserts may turn a miss into a hit.
    pub resolved: Option<&'a std::cell::RefCell<HashMap<String, String>>>,
}

impl<C: GenericClient + Sync> OdooWriter<'_, C> {
    fn ty(&self, table: &str, column: &str) -> Result<String, ApplyError> {
        self.catalog.column_type(table, column).map(str::to_string).ok_or_else(|| ApplyError::Dead {
            field: Some(column.to_string()),
            reason: format!("table {table} has no column {column} (check the mapping)"),
        })
    }

    fn search(&self) -> KeySearch<'_, C> {
        KeySearch { client: self.tx, resolved: self.resolved }
    }

    async fn assignments(
        &self,
        m: &Mapping,
        key: &str,
        record: &Record,
        fields: &[usize],
    ) -> Result<Vec<Assignment>, ApplyError> {
        let mut assignments = self.search().column_values(m, key, record, fields, false).await?;
        // Values only Odoo's API can write (an expression's field) have no column here.
        assignments.retain(|a| !a.column.is_empty());
        Ok(assignments)
    }

    /// See [`KeySearch::find_by_key`].
    pub async fn find_by_key(&self, m: &Mapping, key: &str, record: &Record) -> Result<Option<i64>, ApplyError> {
        self.search().find_by_key(m, key, record).await
    }
}

impl<C: GenericClient + Sync> OdooWriter<'_, C> {
    pub async fn exists(&self, m: &Mapping, id: i64) -> Result<bool, ApplyError> {
        let sql = format!(
            "SELECT 1 FROM {} WHERE {}::bigint = $1",
            TableName::parse(&m.odoo.table).quoted(),
            quote_ident(&m.odoo.id_column)
        );
        let row = self.tx.query_opt(&sql, &[&id]).await.map_err(|e| from_pg("reading a row", &e))?;
        Ok(row.is_some())
    }

    async fn update_table(
        &self,
        table: &str,
        where_column: &str,
        id: i64,
        assignments: &[&Assignment],
    ) -> Result<(), ApplyError> {
        if assignments.is_empty() {
            return Ok(());
        }
        let mut params = Params::default();
        let mut set = Vec::new();
        for a in assignments {
            let column = quote_ident(&a.column);
            match &a.translate {
                Some(lang) => {
                    let l = params.push(Some(lang.clone()));
                    let v = params.push(a.value.clone());
                    set.push(format!(
                        "{column} = COALESCE({column}, '{{}}'::jsonb) || jsonb_build_object({l}::text, {v}::text)"
                    ));
                }
                None => {
                    let ty = self.ty(table, &a.column)?;
                    set.push(format!("{column} = {}", value_expr(&mut params, &ty, a.value.clone())));
                }
            }
        }
        if self.catalog.column_type(table, "write_date").is_some()
            && !assignments.iter().any(|a| a.column == "write_date")
        {
            set.push("\"write_date\" = (now() AT TIME ZONE 'UTC')".into());
        }
        let p = params.push(Some(id.to_string()));
        let sql = format!(
            "UPDATE {} SET {} WHERE {}::bigint = {p}::text::bigint",
            TableName::parse(table).quoted(),
            set.join(", "),
            quote_ident(where_column)
        );
        self.tx.execute(&sql, &params.refs()).await.map_err(|e| from_pg(&format!("updating {table}"), &e))?;
        Ok(())
    }

    async fn insert_table(
        &self,
        table: &str,
        defaults: &[(String, Value)],
        assignments: &[&Assignment],
        extra: &[(String, String)],
    ) -> Result<i64, ApplyError> {
        let mut params = Params::default();
        let mut columns = Vec::new();
        let mut values = Vec::new();
        for a in assignments {
            columns.push(a.column.clone());
            match &a.translate {
                Some(lang) => {
                    let l = params.push(Some(lang.clone()));
                    let v = params.push(a.value.clone());
                    values.push(format!("jsonb_build_object({l}::text, {v}::text)"));
                }
                None => {
                    let ty = self.ty(table, &a.column)?;
                    values.push(value_expr(&mut params, &ty, a.value.clone()));
                }
            }
        }
        for (column, value) in extra {
            if !columns.contains(column) {
                let ty = self.ty(table, column)?;
                columns.push(column.clone());
                values.push(value_expr(&mut params, &ty, Some(value.clone())));
            }
        }
        for (column, value) in defaults {
            if !columns.contains(column) {
                let ty = self.ty(table, column)?;
                columns.push(column.clone());
                values.push(value_expr(&mut params, &ty, default_text(value)));
            }
        }
        for magic in ["create_date", "write_date"] {
            if self.catalog.column_type(table, magic).is_some() && !columns.iter().any(|c| c == magic) {
                columns.push(magic.to_string());
                values.push("(now() AT TIME ZONE 'UTC')".into());
            }
        }
        let quoted: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({}) RETURNING \"id\"::bigint",
            TableName::parse(table).quoted(),
            quoted.join(", "),
            values.join(", ")
        );
        let row = self
            .tx
            .query_one(&sql, &params.refs())
            .await
            .map_err(|e| from_pg(&format!("inserting into {table}"), &e))?;
        Ok(row.get(0))
    }

    /// Writes `fields` of `record`. Updates the row `id` (or the one found by key); inserts one
    /// (with its parent row) when there is none and `create` is allowed. Returns the row id, or
    /// `None` when there was no row and creating was not allowed.
    /// `known_absent`: the batch already looked for the row by key and found none, so it is not
    /// looked for again.
    #[allow(clippy::too_many_arguments)]
    pub async fn upsert(
        &self,
        m: &Mapping,
        key: &str,
        record: &Record,
        fields: &[usize],
        id: Option<i64>,
        create: bool,
        known_absent: bool,
    ) -> Result<Option<i64>, ApplyError> {
        let id = match id {
            Some(id) if self.exists(m, id).await? => Some(id),
            None if known_absent => None,
            _ => self.find_by_key(m, key, record).await?,
        };
        match id {
            Some(id) => {
                let assignments = self.assignments(m, key, record, fields).await?;
                let main: Vec<&Assignment> = assignments.iter().filter(|a| a.table == ColumnTable::Main).collect();
                self.update_table(&m.odoo.table, &m.odoo.id_column, id, &main).await?;
                if let Some(parent) = &m.odoo.parent {
                    let parent_assignments: Vec<&Assignment> =
                        assignments.iter().filter(|a| a.table == ColumnTable::Parent).collect();
                    if !parent_assignments.is_empty() {
                        let link: i64 = self
                            .tx
                            .query_one(
                                &format!(
                                    "SELECT {}::bigint FROM {} WHERE {}::bigint = $1",
                                    quote_ident(&parent.link),
                                    TableName::parse(&m.odoo.table).quoted(),
                                    quote_ident(&m.odoo.id_column)
                                ),
                                &[&id],
                            )
                            .await
                            .map_err(|e| from_pg("reading the parent link", &e))?
                            .get(0);
                        self.update_table(&parent.table, "id", link, &parent_assignments).await?;
                    }
                }
                Ok(Some(id))
            }
            None if !create => Ok(None),
            None => {
                let all: Vec<usize> = (0..m.fields.len()).collect();
                let assignments = self.assignments(m, key, record, &all).await?;
                let mut extra = Vec::new();
                if let Some(parent) = &m.odoo.parent {
                    let parent_assignments: Vec<&Assignment> =
                        assignments.iter().filter(|a| a.table == ColumnTable::Parent).collect();
                    let parent_id = if parent.create {
                        self.insert_table(&parent.table, &parent.defaults, &parent_assignments, &[]).await?
                    } else {
                        self.search().find_parent(m, key, &parent_assignments).await?
                    };
                    extra.push((parent.link.clone(), parent_id.to_string()));
                }
                let main: Vec<&Assignment> = assignments.iter().filter(|a| a.table == ColumnTable::Main).collect();
                let id = self.insert_table(&m.odoo.table, &m.odoo.defaults, &main, &extra).await?;
                Ok(Some(id))
            }
        }
    }

    pub async fn delete(&self, m: &Mapping, id: i64) -> Result<(), ApplyError> {
        let sql = format!(
            "DELETE FROM {} WHERE {}::bigint = $1",
            TableName::parse(&m.odoo.table).quoted(),
            quote_ident(&m.odoo.id_column)
        );
        self.tx.execute(&sql, &[&id]).await.map_err(|e| from_pg(&format!("deleting from {}", m.odoo.table), &e))?;
        Ok(())
    }

    pub async fn savepoint(&self) -> Result<(), ApplyError> {
        self.tx.batch_execute("SAVEPOINT millrace_change").await.map_err(|e| from_pg("savepoint", &e))
    }

    pub async fn release(&self) -> Result<(), ApplyError> {
        self.tx.batch_execute("RELEASE SAVEPOINT millrace_change").await.map_err(|e| from_pg("savepoint", &e))
    }

    pub async fn rollback_to_savepoint(&self) -> Result<(), ApplyError> {
        self.tx
            .batch_execute("ROLLBACK TO SAVEPOINT millrace_change")
            .await
            .map_err(|e| from_pg("rolling back to a savepoint", &e))
    }
}

/// The Odoo database as a [`Sink`]: one transaction per batch, under millrace's replication
/// origin.
impl Sink for OdooSink {
    async fn apply(
        &mut self,
        _mappings: &Arc<Mappings>,
        changes: &[Option<Write<'_>>],
    ) -> Result<Vec<Outcome>, SinkError> {
        for w in changes.iter().flatten() {
            self.prepare(w.mapping).await.map_err(|e| unavailable(format!("{e:?}")))?;
        }
        // First without savepoints (a third of the statements); only if some change fails is the
        // transaction rolled back and the batch run again with a savepoint per change.
        match self.pass(changes, false).await? {
            Some(outcomes) => Ok(outcomes),
            None => Ok(self.pass(changes, true).await?.unwrap_or_default()),
        }
    }
}

impl OdooSink {
    /// One transaction over the batch. Without savepoints, `None` when a change failed (the
    /// transaction is rolled back); with them, each change's outcome.
    async fn pass(
        &mut self,
        changes: &[Option<Write<'_>>],
        savepoints: bool,
    ) -> Result<Option<Vec<Outcome>>, SinkError> {
        let (client, catalog) = self.parts();
        let tx = client.transaction().await.map_err(|e| unavailable(e.to_string()))?;
        let resolved = std::cell::RefCell::new(std::collections::HashMap::new());
        let mut outcomes = Vec::with_capacity(changes.len());
        for w in changes {
            let Some(w) = w else {
                outcomes.push(Ok(None));
                continue;
            };
            let m = w.mapping;
            let writer = OdooWriter { catalog, tx: &tx, resolved: Some(&resolved) };
            if savepoints {
                writer.savepoint().await.map_err(|e| unavailable(format!("{e:?}")))?;
            }
            let result = match (w.op, w.record) {
                (ChangeOp::Upsert, Some(record)) => {
                    let id = w.target_id.and_then(|s| s.parse().ok());
                    writer
                        .upsert(m, w.key, record, w.fields, id, w.create, w.target_absent)
                        .await
                        .map(|id| id.map(|i| i.to_string()))
                }
                (ChangeOp::Upsert, None) => {
                    Err(ApplyError::Dead { field: None, reason: format!("an upsert of {} without a record", w.key) })
                }
                (ChangeOp::Delete, _) => match w.target_id.and_then(|s| s.parse().ok()) {
                    Some(id) => writer.delete(m, id).await.map(|_| None),
                    None => Ok(None),
                },
            };
            let result = match result {
                Err(ApplyError::Dead { field, reason }) => {
                    // The server names a column; the operator thinks in fields.
                    let field = field
                        .as_deref()
                        .and_then(|c| field_named_in(m, System::Odoo, &format!("\"{c}\"")))
                        .or_else(|| field_named_in(m, System::Odoo, &reason))
                        .or(field);
                    Err(ApplyError::Dead { field, reason: about_record(m, w.key, reason) })
                }
                other => other,
            };
            match &result {
                Err(ApplyError::Transient(message)) => {
                    return Err(unavailable(message.clone()));
                }
                Err(_) if !savepoints => {
                    tx.rollback().await.map_err(|e| unavailable(e.to_string()))?;
                    return Ok(None);
                }
                Err(_) => writer.rollback_to_savepoint().await.map_err(|e| unavailable(format!("{e:?}")))?,
                Ok(_) if savepoints => writer.release().await.map_err(|e| unavailable(format!("{e:?}")))?,
                Ok(_) => {}
            }
            outcomes.push(result);
        }
        tx.commit().await.map_err(|e| unavailable(e.to_string()))?;
        Ok(Some(outcomes))
    }
}

fn unavailable(message: String) -> SinkError {
    SinkError::Unavailable { system: "odoo", message }
}
