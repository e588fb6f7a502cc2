//! Reading entities from Odoo's database: a changed row of any table a mapping draws on (main
//! table, parent, lookup tables) names the main rows it affects, and those are read whole, with
//! their parent row and looked-up values, as canonical records.
//!
//! Reading the current row rather than decoding the change alone is what lets a template rename
//! re-emit each of its variants, and it never yields a partial record (an unchanged TOASTed
//! value is simply read). The change's position still orders it.

use tokio_postgres::types::ToSql;
use tokio_postgres::GenericClient;

use super::transform::to_canonical;
use super::{ColumnTable, Mapping, Record};
use crate::model::value_text;
use crate::model::{quote_ident, TableName, Value};

/// A field whose stored value could not be turned into a canonical one.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub field: String,
    pub column: String,
    pub value: String,
    pub reason: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let column = if self.column.is_empty() { "expr" } else { &self.column };
        write!(f, "field {} (column {column}, value {:?}): {}", self.field, self.value, self.reason)
    }
}

fn table_sql(name: &str) -> String {
    TableName::parse(name).quoted()
}

fn alias(table: ColumnTable) -> &'static str {
    match table {
        ColumnTable::Main => "m",
        ColumnTable::Parent => "p",
    }
}

/// `FROM main m [JOIN parent p ON p.id = m.link]`.
pub fn from_clause(m: &Mapping) -> String {
    let side = &m.odoo;
    let mut sql = format!("FROM {} m", table_sql(&side.table));
    if let Some(parent) = &side.parent {
        sql.push_str(&format!(" JOIN {} p ON p.\"id\" = m.{}", table_sql(&parent.table), quote_ident(&parent.link)));
    }
    sql
}

/// The SELECT list reading every mapped column as text, and the parameters its lookup filters
/// bind (numbered from `first_param`). Per column: the value, then for lookups the raw
/// reference (to tell a dangling reference from NULL).
pub fn select_list(m: &Mapping, first_param: usize) -> (String, Vec<String>) {
    let mut parts = vec![format!("m.{}::text", quote_ident(&m.odoo.id_column))];
    let mut params = Vec::new();
    for c in &m.odoo.columns {
        if let Some(expr) = &c.expr {
            // Trusted like an identifier (it comes from the mapping file, not from data).
            parts.push(format!("({expr})::text"));
            continue;
        }
        let base = format!("{}.{}", alias(c.table), quote_ident(&c.column));
        match &c.lookup {
            Some(l) => {
                let mut value = format!("l.{}", quote_ident(&l.value));
                if let Some(lang) = &l.translate {
                    params.push(lang.clone());
                    value = format!("({value} ->> ${})", first_param + params.len() - 1);
                }
                let mut conditions = vec![format!("l.{} = {base}", quote_ident(&l.key))];
                for (column, v) in &l.filter {
                    params.push(value_text(v));
                    conditions.push(format!("l.{}::text = ${}", quote_ident(column), first_param + params.len() - 1));
                }
                parts.push(format!(
                    "(SELECT {value}::text FROM {} l WHERE {} ORDER BY 1 LIMIT 1)",
                    table_sql(&l.table),
                    conditions.join(" AND ")
                ));
                parts.push(format!("{base}::text"));
            }
            None => match &c.translate {
                Some(lang) => {
                    params.push(lang.clone());
                    parts.push(format!("({base} ->> ${})::text", first_param + params.len() - 1));
                }
                None => parts.push(format!("{base}::text")),
            },
        }
    }
    (parts.join(", "), params)
}

/// A row that could not be read whole: the first field that failed, and the fields that could
/// be read (so the key is known for the dead letter).
#[derive(Debug, Clone, PartialEq)]
pub struct PartialRecord {
    pub error: FieldError,
    pub partial: Record,
}

/// Reads the records of the given main-table ids: `(id, record or the field that failed)`.
/// Ids whose row no longer exists are absent.
pub async fn read_by_ids(
    client: &impl GenericClient,
    m: &Mapping,
    ids: &[i64],
) -> Result<Vec<(i64, Result<Record, PartialRecord>)>, tokio_postgres::Error> {
    let (list, filter_params) = select_list(m, 2);
    let sql = format!(
        "SELECT {list} {} WHERE m.{} = ANY($1::bigint[]) ORDER BY 1",
        from_clause(m),
        quote_ident(&m.odoo.id_column)
    );
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&ids];
    for p in &filter_params {
        params.push(p);
    }
    Ok(records_of(m, client.query(&sql, &params).await?))
}

/// Up to `limit` records with main-table ids above `after_id`, in id order: a key-ordered
/// chunk of a whole-table read (backfill, export).
pub async fn read_after(
    client: &impl GenericClient,
    m: &Mapping,
    after_id: i64,
    limit: i64,
) -> Result<Vec<(i64, Result<Record, PartialRecord>)>, tokio_postgres::Error> {
    let (list, filter_params) = select_list(m, 3);
    let id = quote_ident(&m.odoo.id_column);
    let sql = format!("SELECT {list} {} WHERE m.{id} > $1::bigint ORDER BY m.{id} LIMIT $2::bigint", from_clause(m));
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&after_id, &limit];
    for p in &filter_params {
        params.push(p);
    }
    Ok(records_of(m, client.query(&sql, &params).await?))
}

/// `(id, record)` of each row of a [`select_list`] query.
fn records_of(m: &Mapping, rows: Vec<tokio_postgres::Row>) -> Vec<(i64, Result<Record, PartialRecord>)> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let id: Option<String> = row.get(0);
        let Some(id) = id.and_then(|s| s.parse::<i64>().ok()) else { continue };
        out.push((id, record_from_text_row(m, &row)));
    }
    out
}

fn record_from_text_row(m: &Mapping, row: &tokio_postgres::Row) -> Result<Record, PartialRecord> {
    let mut values = vec![Value::Null; m.fields.len()];
    let mut first_error: Option<FieldError> = None;
    let mut i = 1;
    for c in &m.odoo.columns {
        let field = &m.fields[c.field];
        let text: Option<String> = row.get(i);
        i += 1;
        if let Some(l) = &c.lookup {
            let reference: Option<String> = row.get(i);
            i += 1;
            if text.is_none() {
                if let Some(reference) = reference {
                    first_error.get_or_insert(FieldError {
                        field: field.name.clone(),
                        column: c.column.clone(),
                        value: reference,
                        reason: format!("no {}.{} for this reference", l.table, l.value),
                    });
                    continue;
                }
            }
        }
        let stored = text.map(Value::Text).unwrap_or(Value::Null);
        let shown = value_text(&stored);
        match to_canonical(c, field.ty, None, stored) {
            Ok(v) => values[c.field] = v,
            Err(reason) => {
                first_error.get_or_insert(FieldError {
                    field: field.name.clone(),
                    column: c.column.clone(),
                    value: shown,
                    reason,
                });
            }
        }
    }
    match first_error {
        None => Ok(Record { values }),
        Some(error) => Err(PartialRecord { error, partial: Record { values } }),
    }
}

/// How a changed row of `table` leads to the main rows of this mapping it affects.
#[derive(Debug, Clone, PartialEq)]
pub enum Affects {
    /// The row is a main row: its id.
    Main,
    /// Main rows found by `sql`, which takes one text parameter: the changed row's `column`.
    /// `sql_any` finds them for many changed rows at once: its one parameter is an array of
    /// the compared column's own type, so the column's index applies.
    Query { sql: String, sql_any: String, column: String },
}

/// Every way a change to `table` affects this mapping's entities.
pub fn affects(m: &Mapping, table: &TableName) -> Vec<Affects> {
    let same = |name: &str| TableName::parse(name) == *table;
    let mut out = Vec::new();
    let id = quote_ident(&m.odoo.id_column);
    if same(&m.odoo.table) {
        out.push(Affects::Main);
    }
    if let Some(parent) = &m.odoo.parent {
        if same(&parent.table) {
            let select = format!(
                "SELECT m.{id}::bigint FROM {} m WHERE m.{}",
                table_sql(&m.odoo.table),
                quote_ident(&parent.link)
            );
            out.push(Affects::Query {
                sql: format!("{select}::text = $1"),
                sql_any: format!("{select} = ANY($1)"),
                column: "id".into(),
            });
        }
    }
    // A record written once and never rewritten (an insert-only ledger in the ERP) has nothing
    // to gain from a looked-up row's change: its history is not re-sent because a product was
    // renamed.
    let rewritable = !(m.owner == super::System::Odoo && m.legacy.insert_only);
    for c in m.odoo.columns.iter().filter(|_| rewritable) {
        if let Some(l) = &c.lookup {
            if same(&l.table) {
                let select = format!(
                    "SELECT m.{id}::bigint {} WHERE {}.{}",
                    from_clause(m),
                    alias(c.table),
                    quote_ident(&c.column)
                );
                let q = Affects::Query {
                    sql: format!("{select}::text = $1"),
                    sql_any: format!("{select} = ANY($1)"),
                    column: l.key.clone(),
                };
                if !out.contains(&q) {
                    out.push(q);
                }
            }
        }
    }
    out
}

/// The main-row ids that the changed rows with these `values` (of the looked-up or parent
/// column) affect, in one query: the values go as one array of the compared column's type.
/// Columns of a type other than integers and text are compared one value at a time.
pub async fn affected_ids_many(
    client: &tokio_postgres::Client,
    sql: &str,
    sql_any: &str,
    values: &[Value],
) -> Result<Vec<i64>, tokio_postgres::Error> {
    use tokio_postgres::types::Type;
    let statement = client.prepare(sql_any).await?;
    let ints = || values.iter().filter_map(int_of);
    let rows = match statement.params().first() {
        Some(&Type::INT4_ARRAY) => {
            let v: Vec<i32> = ints().filter_map(|n| i32::try_from(n).ok()).collect();
            client.query(&statement, &[&v]).await?
        }
        Some(&Type::INT8_ARRAY) => client.query(&statement, &[&ints().collect::<Vec<i64>>()]).await?,
        Some(&Type::INT2_ARRAY) => {
            let v: Vec<i16> = ints().filter_map(|n| i16::try_from(n).ok()).collect();
            client.query(&statement, &[&v]).await?
        }
        Some(&Type::TEXT_ARRAY) | Some(&Type::VARCHAR_ARRAY) => {
            client.query(&statement, &[&values.iter().map(value_text).collect::<Vec<String>>()]).await?
        }
        _ => {
            let mut rows = Vec::new();
            for value in values {
                rows.extend(client.query(sql, &[&value_text(value)]).await?);
            }
            rows
        }
    };
    let mut ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

pub fn int_of(value: &Value) -> Option<i64> {
    match value {
        Value::Int(n) => Some(*n),
        Value::Text(s) => s.parse().ok(),
        _ => None,
    }
}
