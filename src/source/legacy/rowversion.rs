//! The `rowversion` strategy (SQL Server): rows whose `rowversion` is past the last one seen and
//! below `MIN_ACTIVE_ROWVERSION()`, so a transaction still open is never skipped.

use std::sync::Arc;

use super::row_image::{
    column_position, key_of, no_key, optional_int, polled_columns, select_decoded, single_row, split_row,
    with_key_columns, Decoded, VERSION_COLUMN,
};
use super::BadLegacyRow;
use crate::config::{LegacyTable, Strategy};
use crate::erp::mssql::{quote, quote_table};
use crate::erp::{LegacyConnection, LegacyError, RowBatch};
use crate::model::{Op, Position, Row, RowChange, TableName, Value};

/// The upper bound of a rowversion poll, read in a statement of its own just before the rows:
/// `MIN_ACTIVE_ROWVERSION()`, the lowest rowversion still held by an open transaction (or the
/// next one to be handed out when none is open), as a `BIGINT`.
///
/// Never `@@DBTS`. A rowversion is assigned when a statement writes the row, not when its
/// transaction commits, so a long transaction can hold a low version while later, shorter ones
/// commit higher ones. Bounding by `@@DBTS` (the highest version handed out) lets a poll read
/// those later rows, store their version, and never look below it again: the long
/// transaction's rows, committed afterwards, are lost. Every row below `MIN_ACTIVE_ROWVERSION()`
/// is committed, and no row can later appear below it.
///
/// Read first and bound as a parameter, rather than written into the row query, because under
/// row versioning (READ_COMMITTED_SNAPSHOT, SNAPSHOT) the row query reads a snapshot taken when
/// it starts, while the function is evaluated a moment later: a transaction committing in
/// between would be invisible to the read yet below the bound, and skipped for good. Read
/// before the query starts, the bound only covers transactions the query can see.
pub fn rowversion_bound_query() -> String {
    "SELECT CAST(MIN_ACTIVE_ROWVERSION() AS BIGINT) AS [min_active_rowversion]".to_string()
}

/// The `rowversion` strategy's query: rows whose rowversion is above the last one seen and
/// below the bound from [`rowversion_bound_query`], in rowversion order, each with its version
/// as a `BIGINT` in the extra column `__mr_version`. Bind the last version and the bound as
/// their 8 big-endian bytes (`0x00…00` as the last version of the first poll): the comparison is
/// then binary(8) against rowversion, which the usual index on the rowversion column serves.
/// `key` columns missing from `columns` are selected too.
pub fn rowversion_query(table: &str, columns: &[String], rv_column: &str, key: &[String]) -> String {
    let select: Vec<String> = with_key_columns(columns, key).iter().map(|c| quote(c)).collect();
    let rv = quote(rv_column);
    format!(
        "SELECT {}, CAST({rv} AS BIGINT) AS {} FROM {} WHERE {rv} > CAST(? AS BINARY(8)) \
         AND {rv} < CAST(? AS BINARY(8)) ORDER BY {rv}",
        select.join(", "),
        quote(VERSION_COLUMN),
        quote_table(table)
    )
}

pub(crate) fn rowversion_column(table: &LegacyTable) -> Result<&str, LegacyError> {
    match &table.strategy {
        Strategy::Rowversion { column } => Ok(column),
        other => {
            Err(LegacyError::Other(format!("{} is polled with `{}`, not `rowversion`", table.table, other.name())))
        }
    }
}

/// Turns the rowversion query's rows into changes, batch by batch, and tracks the highest
/// version read.
pub(crate) struct RowversionDecoder {
    pub(crate) table: String,
    pub(crate) name: TableName,
    /// The selected columns, in order, without the version column.
    pub(crate) selected: Vec<String>,
    pub(crate) key_positions: Vec<usize>,
    pub(crate) row_columns: Arc<[String]>,
    pub(crate) op: Op,
    pub(crate) newest: i64,
}

impl RowversionDecoder {
    /// The decoder, its query and the query's parameters (the last version and the bound, as
    /// 8 bytes each).
    pub(crate) fn new(
        table: &LegacyTable,
        columns: &[String],
        last: Option<i64>,
        bound: i64,
    ) -> Result<(Self, String, Vec<Value>), LegacyError> {
        let rv_column = rowversion_column(table)?;
        if table.key.is_empty() {
            return Err(no_key(table));
        }
        let selected = with_key_columns(columns, &table.key);
        let key_positions = table.key.iter().filter_map(|k| column_position(&selected, k)).collect();
        let sql = rowversion_query(&table.table, columns, rv_column, &table.key);
        let from = last.unwrap_or(0);
        let decoder = RowversionDecoder {
            table: table.table.clone(),
            name: TableName::new("", table.table.clone()),
            row_columns: selected.clone().into(),
            selected,
            key_positions,
            op: if last.is_none() { Op::Snapshot } else { Op::Update },
            newest: from,
        };
        Ok((decoder, sql, vec![Value::Bytes(from.to_be_bytes().to_vec()), Value::Bytes(bound.to_be_bytes().to_vec())]))
    }

    pub(crate) fn decode(&mut self, batch: RowBatch) -> Result<Decoded, LegacyError> {
        let expected = self.selected.len() + 1;
        if batch.columns.len() != expected {
            return Err(LegacyError::Other(format!(
                "{}: the rowversion query returned {} columns, expected {expected}",
                self.table,
                batch.columns.len()
            )));
        }
        let mut changes = Vec::with_capacity(batch.rows.len());
        let mut bad = Vec::new();
        for row in batch.rows {
            let (mut values, failure) = split_row(row);
            let version = match values.pop() {
                Some(Value::Int(version)) => version,
                other => {
                    return Err(LegacyError::Other(format!(
                        "{}: the row version came back as {other:?}, not a number",
                        self.table
                    )))
                }
            };
            // An unreadable row still moves the version on: it goes to the dead-letter queue, and
            // stopping at it would hold back every later change of the table.
            self.newest = self.newest.max(version);
            let key = key_of(&values, &self.key_positions);
            if let Some((column, raw, reason)) = failure {
                let column = self.selected.get(column).cloned().unwrap_or_else(|| VERSION_COLUMN.to_string());
                bad.push(BadLegacyRow { table: self.table.clone(), key, column, value: raw, reason });
                continue;
            }
            changes.push(RowChange {
                table: self.name.clone(),
                op: self.op,
                before: None,
                after: Some(Row { columns: self.row_columns.clone(), values }),
                position: Position::Legacy { version: version.to_string(), key },
                commit_ts: None,
                xid: None,
                origin: None,
            });
        }
        Ok((changes, bad))
    }
}

/// `MIN_ACTIVE_ROWVERSION()` now (see [`rowversion_bound_query`]).
pub(crate) fn rowversion_bound(conn: &mut dyn LegacyConnection, table: &str) -> Result<i64, LegacyError> {
    let row = single_row(conn, table, &rowversion_bound_query(), &[])?;
    optional_int(row.first(), "MIN_ACTIVE_ROWVERSION()", table)?
        .ok_or_else(|| LegacyError::Other(format!("{table}: MIN_ACTIVE_ROWVERSION() came back NULL")))
}

/// What one rowversion poll found: the changes, the rows that could not be read, and the version
/// to store once the changes are handled.
pub type RowversionPoll = (Vec<RowChange>, Vec<BadLegacyRow>, Option<i64>);

/// One poll of a `rowversion` table, every column (see [`poll_rowversion_columns`]).
pub fn poll_rowversion(
    conn: &mut dyn LegacyConnection,
    table: &LegacyTable,
    last: Option<i64>,
) -> Result<RowversionPoll, LegacyError> {
    rowversion_column(table)?;
    let columns = polled_columns(conn, table)?;
    poll_rowversion_columns(conn, table, &columns, last)
}

/// One poll of a `rowversion` table: the rows whose rowversion rose past `last` and lies below
/// `MIN_ACTIVE_ROWVERSION()` (read first, see [`rowversion_bound_query`]), in rowversion order, as upserts ([`Op::Update`]; [`Op::Snapshot`] on the first poll, `last = None`, which
/// reads the whole table from `0x0`). Returns the version to store: the highest one read, `last`
/// when nothing changed, `Some(0)` after an empty first read (so later rows are changes, not
/// snapshot rows). Rows that cannot be read are returned apart and still advance the version.
/// Deletes are invisible to this strategy: a `hashdiff` delete scan finds them. Neither can it
/// tell millrace's own writes from the ERP's: they come back, and the sync stage must recognise
/// them as echoes.
pub fn poll_rowversion_columns(
    conn: &mut dyn LegacyConnection,
    table: &LegacyTable,
    columns: &[String],
    last: Option<i64>,
) -> Result<RowversionPoll, LegacyError> {
    rowversion_column(table)?;
    let bound = rowversion_bound(conn, &table.table)?;
    let (mut decoder, sql, params) = RowversionDecoder::new(table, columns, last, bound)?;
    let (changes, bad) = select_decoded(conn, &table.table, &sql, &params, |batch| decoder.decode(batch))?;
    Ok((changes, bad, Some(decoder.newest)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::erp::ReadRow;
    use crate::source::legacy::fake_erp::*;

    #[test]
    fn rowversion_query_is_bounded_by_min_active_rowversion() {
        let sql = rowversion_query(
            "dbo.ITEM_MASTER",
            &strings(&["ITEM_NO", "DESCRIPTION", "RV"]),
            "RV",
            &strings(&["ITEM_NO"]),
        );
        assert_eq!(
            sql,
            "SELECT [ITEM_NO], [DESCRIPTION], [RV], CAST([RV] AS BIGINT) AS [__mr_version] FROM [dbo].[ITEM_MASTER] \
             WHERE [RV] > CAST(? AS BINARY(8)) AND [RV] < CAST(? AS BINARY(8)) ORDER BY [RV]"
        );
        assert_eq!(
            rowversion_bound_query(),
            "SELECT CAST(MIN_ACTIVE_ROWVERSION() AS BIGINT) AS [min_active_rowversion]"
        );
        assert!(!sql.contains("@@DBTS") && !rowversion_bound_query().contains("@@DBTS"));
    }

    #[test]
    fn rowversion_query_adds_missing_key_columns_and_quotes_everything() {
        let sql = rowversion_query(
            "ERP.BOM]LINE",
            &strings(&["QTY_PER"]),
            "R]V",
            &strings(&["ITEM_NO", "qty_per", "LINE_NO"]),
        );
        assert_eq!(
            sql,
            "SELECT [QTY_PER], [ITEM_NO], [LINE_NO], CAST([R]]V] AS BIGINT) AS [__mr_version] FROM [ERP].[BOM]]LINE] \
             WHERE [R]]V] > CAST(? AS BINARY(8)) AND [R]]V] < CAST(? AS BINARY(8)) ORDER BY [R]]V]"
        );
    }

    #[test]
    fn rowversion_first_poll_reads_everything_as_snapshot() {
        let mut conn = bounded(item_columns(FakeConnection::new()), 3000).on_batches(
            "__mr_version",
            vec![
                batch(&RV_COLUMNS, vec![vec![text("A100    "), text("Widget"), rv(2001), Value::Int(2001)]]),
                batch(&RV_COLUMNS, vec![vec![text("B200    "), text("Gadget"), rv(2005), Value::Int(2005)]]),
            ],
        );
        let (changes, bad, version) = poll_rowversion(&mut conn, &rowversion_table(), None).unwrap();
        assert!(bad.is_empty());
        assert_eq!(version, Some(2005));
        assert_eq!(conn.calls.len(), 3);
        assert!(conn.calls[0].1.contains("sys.columns"));
        assert_eq!(conn.calls[1].1, rowversion_bound_query(), "the bound is read before the rows");
        let (table, sql, params) = &conn.calls[2];
        assert_eq!(table, "dbo.ITEM_MASTER");
        assert_eq!(
            sql,
            &rowversion_query(
                "dbo.ITEM_MASTER",
                &strings(&["ITEM_NO", "DESCRIPTION", "RV"]),
                "RV",
                &strings(&["ITEM_NO"])
            )
        );
        assert_eq!(params, &vec![Value::Bytes(vec![0; 8]), rv(3000)]);

        assert_eq!(changes.len(), 2);
        let first = &changes[0];
        assert_eq!(first.op, Op::Snapshot);
        assert_eq!(first.table, TableName::new("", "dbo.ITEM_MASTER"));
        assert_eq!(first.position, Position::Legacy { version: "2001".into(), key: r#"["A100"]"#.into() });
        assert_eq!(first.before, None);
        let after = first.after.as_ref().unwrap();
        assert_eq!(&*after.columns, &strings(&["ITEM_NO", "DESCRIPTION", "RV"])[..]);
        assert_eq!(after.values, vec![text("A100    "), text("Widget"), rv(2001)]);
        assert_eq!((first.commit_ts, first.xid, &first.origin), (None, None, &None));
        assert_eq!(changes[1].position, Position::Legacy { version: "2005".into(), key: r#"["B200"]"#.into() });
    }

    #[test]
    fn rowversion_polls_after_the_last_version_as_upserts() {
        let mut conn = bounded(FakeConnection::new(), 2011).on(
            "__mr_version",
            &RV_COLUMNS,
            vec![vec![text("A100    "), text("Widget v2"), rv(2010), Value::Int(2010)]],
        );
        let columns = strings(&["ITEM_NO", "DESCRIPTION", "RV"]);
        let (changes, _, version) =
            poll_rowversion_columns(&mut conn, &rowversion_table(), &columns, Some(2005)).unwrap();
        assert_eq!(conn.calls[1].2, vec![rv(2005), rv(2011)]);
        assert_eq!(version, Some(2010));
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].op, Op::Update);

        // Nothing new: the version stays; an empty first poll records 0, so later rows are changes.
        let mut conn = bounded(FakeConnection::new(), 2011).on("__mr_version", &RV_COLUMNS, vec![]);
        assert_eq!(
            poll_rowversion_columns(&mut conn, &rowversion_table(), &columns, Some(2010)).unwrap().2,
            Some(2010)
        );
        assert_eq!(poll_rowversion_columns(&mut conn, &rowversion_table(), &columns, None).unwrap().2, Some(0));
    }

    #[test]
    fn rowversion_bad_rows_are_set_apart_and_still_move_the_version() {
        let mut conn = bounded(FakeConnection::new(), 2022).on_batches(
            "__mr_version",
            vec![RowBatch {
                columns: strings(&RV_COLUMNS).into(),
                rows: vec![
                    ReadRow::Bad {
                        values: vec![text("C300  "), Value::Null, rv(2020), Value::Int(2020)],
                        column: 1,
                        raw: "0xFFFE".into(),
                        reason: "not UTF-16".into(),
                    },
                    ReadRow::Ok(vec![text("D400"), text("ok"), rv(2021), Value::Int(2021)]),
                ],
            }],
        );
        let columns = strings(&["ITEM_NO", "DESCRIPTION", "RV"]);
        let (changes, bad, version) =
            poll_rowversion_columns(&mut conn, &rowversion_table(), &columns, Some(2000)).unwrap();
        assert_eq!(version, Some(2021));
        assert_eq!(changes.len(), 1);
        assert_eq!(
            bad,
            vec![BadLegacyRow {
                table: "dbo.ITEM_MASTER".into(),
                key: r#"["C300"]"#.into(),
                column: "DESCRIPTION".into(),
                value: "0xFFFE".into(),
                reason: "not UTF-16".into(),
            }]
        );
    }

    #[test]
    fn rowversion_refuses_other_strategies_and_unexpected_results() {
        let mut conn = FakeConnection::new();
        let error =
            poll_rowversion_columns(&mut conn, &change_tracking_table(), &strings(&["ITEM_NO"]), None).unwrap_err();
        assert!(error.to_string().contains("not `rowversion`"), "{error}");
        assert!(conn.calls.is_empty());

        let mut conn = bounded(FakeConnection::new(), 1).on("__mr_version", &["ITEM_NO"], vec![vec![text("A")]]);
        let error =
            poll_rowversion_columns(&mut conn, &rowversion_table(), &strings(&["ITEM_NO", "RV"]), None).unwrap_err();
        assert!(error.to_string().contains("columns"), "{error}");

        let mut conn = bounded(FakeConnection::new(), 1).on("sys.columns", &["name"], vec![]);
        let error = poll_rowversion(&mut conn, &rowversion_table(), None).unwrap_err();
        assert!(error.to_string().contains("not found"), "{error}");
    }
}
