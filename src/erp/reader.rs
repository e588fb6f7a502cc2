//! Reads rows on a blocking thread and hands them to the async side through a bounded channel,
//! so the legacy fetch, the comparison with stored state and the state lookups overlap, and
//! memory holds only a few batches whatever the table size.

use tokio::sync::mpsc;

use crate::config::LegacyTable;
use crate::erp::{LegacyConnection, LegacyError, RowBatch};
use crate::model::Value;

/// What to read.
#[derive(Debug, Clone)]
pub enum ReadPlan {
    /// One query; `table` names the table in errors.
    Query { table: String, sql: String, params: Vec<Value> },
    /// The whole table in key order, `chunk_size` rows per query (keyset paging: each query
    /// starts after the last key of the previous one, so no query holds the table for long).
    KeysetScan { table: LegacyTable, after: Option<Vec<Value>> },
    /// Paged scans of the table, one after the other (see [`PagedScan`]).
    Paged { table: LegacyTable, scans: Vec<PagedScan> },
}

pub type Reader = (mpsc::Receiver<Result<RowBatch, LegacyError>>, tokio::task::JoinHandle<Box<dyn LegacyConnection>>);

/// Starts reading; the connection comes back through the join handle when done.
pub fn spawn(mut conn: Box<dyn LegacyConnection>, plan: ReadPlan) -> Reader {
    let (tx, rx) = mpsc::channel(4);
    let handle = tokio::task::spawn_blocking(move || {
        let result = match &plan {
            ReadPlan::Query { table, sql, params } => conn.select(table, sql, params, &mut |batch| send(&tx, batch)),
            ReadPlan::KeysetScan { table, after } => keyset_scan(conn.as_mut(), table, after.clone(), &tx),
            ReadPlan::Paged { table, scans } => {
                scans.iter().try_for_each(|scan| paged_scan(conn.as_mut(), table, scan, None, &tx))
            }
        };
        if let Err(error) = result {
            let _ = tx.blocking_send(Err(error));
        }
        conn
    });
    (rx, handle)
}

fn send(tx: &mpsc::Sender<Result<RowBatch, LegacyError>>, batch: RowBatch) -> Result<(), LegacyError> {
    tx.blocking_send(Ok(batch)).map_err(|_| LegacyError::Other("reader stopped: the poll was abandoned".into()))
}

fn keyset_scan(
    conn: &mut dyn LegacyConnection,
    table: &LegacyTable,
    start_after: Option<Vec<Value>>,
    tx: &mpsc::Sender<Result<RowBatch, LegacyError>>,
) -> Result<(), LegacyError> {
    let scan = PagedScan { filter: None, params: Vec::new(), order: table.key.clone() };
    paged_scan(conn, table, &scan, start_after, tx)
}

/// Rows of a table matching `filter` (SQL with `?` placeholders bound to `params`), in `order`,
/// read `chunk_size` rows per query: each query starts after the `order` values of the last row
/// of the one before. The driver then holds one chunk, not the whole result: MariaDB's
/// Connector/ODBC, for one, caches a whole result set in memory before the first row is fetched.
#[derive(Debug, Clone)]
pub struct PagedScan {
    pub filter: Option<String>,
    pub params: Vec<Value>,
    /// Columns that order the rows and identify each (the key, possibly after a version column).
    pub order: Vec<String>,
}

fn paged_scan(
    conn: &mut dyn LegacyConnection,
    table: &LegacyTable,
    scan: &PagedScan,
    start_after: Option<Vec<Value>>,
    tx: &mpsc::Sender<Result<RowBatch, LegacyError>>,
) -> Result<(), LegacyError> {
    let dialect = conn.dialect();
    let quoted_table = dialect.quote_table(&table.table);
    let quoted_order: Vec<String> = scan.order.iter().map(|k| dialect.quote(k)).collect();
    let order_by = quoted_order.join(", ");
    let select = dialect.select_list(&table.columns);
    let (after, binds) = dialect.keys_after(&quoted_order);
    let (first, next) = match &scan.filter {
        None => (format!("{select} FROM {quoted_table}"), format!("{select} FROM {quoted_table} WHERE {after}")),
        Some(filter) => (
            format!("{select} FROM {quoted_table} WHERE {filter}"),
            format!("{select} FROM {quoted_table} WHERE ({filter}) AND ({after})"),
        ),
    };
    let first = dialect.limit(&first, &order_by, table.chunk_size);
    let next = dialect.limit(&next, &order_by, table.chunk_size);
    let mut last_key: Option<Vec<Value>> = start_after;
    loop {
        let (sql, params) = match &last_key {
            None => (&first, scan.params.clone()),
            Some(key) => (&next, scan.params.iter().cloned().chain(binds.iter().map(|&i| key[i].clone())).collect()),
        };
        let mut rows_in_chunk = 0usize;
        let mut chunk_last: Option<Vec<Value>> = None;
        conn.select(&table.table, sql, &params, &mut |batch| {
            let positions: Vec<usize> = scan
                .order
                .iter()
                .filter_map(|k| batch.columns.iter().position(|c| c.eq_ignore_ascii_case(k)))
                .collect();
            if let Some(last) = batch.rows.last() {
                let values = match last {
                    super::ReadRow::Ok(values) | super::ReadRow::Bad { values, .. } => values,
                };
                chunk_last = Some(positions.iter().map(|&p| values[p].clone()).collect());
            }
            rows_in_chunk += batch.rows.len();
            send(tx, batch)
        })?;
        if rows_in_chunk < table.chunk_size {
            return Ok(());
        }
        match chunk_last {
            // The same last row twice: the bound values do not compare equal to the stored ones
            // (a type the driver converts on the way), so paging would never end.
            Some(key) if last_key.as_ref() == Some(&key) => {
                return Err(LegacyError::Other(format!(
                    "{}: cannot page by ({}): the last row's values, bound again, do not select past it",
                    table.table,
                    scan.order.join(", ")
                )))
            }
            Some(key) if key.len() == scan.order.len() && key.iter().all(|v| !v.is_null()) => last_key = Some(key),
            _ => {
                return Err(LegacyError::Other(format!(
                    "{}: cannot page by ({}): a column is missing from the result or NULL",
                    table.table,
                    scan.order.join(", ")
                )))
            }
        }
    }
}
