//! The `change_tracking` strategy (SQL Server): `CHANGETABLE(CHANGES …)` since the last version
//! synced, with the min-valid-version check; changes carrying millrace's own
//! `CHANGE_TRACKING_CONTEXT` are its writes and are skipped.

use std::fmt;
use std::sync::Arc;

use super::row_image::{
    is_key_column, key_of, no_key, optional_int, polled_columns, select_decoded, single_row, split_row,
    with_key_columns, Decoded, ROW_EXISTS_COLUMN,
};
use super::BadLegacyRow;
use crate::config::LegacyTable;
use crate::erp::mssql::{quote, quote_table, MILLRACE_CT_CONTEXT};
use crate::erp::{LegacyConnection, LegacyError, RowBatch};
use crate::model::{Op, Position, Row, RowChange, TableName, Value};

/// Whether the table exists (`object_id`) and the oldest change-tracking version it can still
/// answer for (`min_valid`, NULL when change tracking is off for the table), with its
/// parameters. The table name is bound, never spliced.
pub fn change_tracking_min_valid_query(table: &str) -> (String, Vec<Value>) {
    let name = Value::Text(quote_table(table));
    (
        "SELECT OBJECT_ID(?) AS [object_id], CHANGE_TRACKING_MIN_VALID_VERSION(OBJECT_ID(?)) AS [min_valid]"
            .to_string(),
        vec![name.clone(), name],
    )
}

/// The database's change-tracking version now (NULL when change tracking is off for the database).
pub fn change_tracking_current_version_query() -> String {
    "SELECT CHANGE_TRACKING_CURRENT_VERSION() AS [current_version]".to_string()
}

/// The `change_tracking` strategy's query. Bind the last synced version, then the current version
/// read just before (`CHANGE_TRACKING_CURRENT_VERSION()`).
///
/// Result columns: `SYS_CHANGE_VERSION`, `SYS_CHANGE_OPERATION`, `SYS_CHANGE_CONTEXT`, the key
/// columns from the change table (deletes have no row to join), the other columns from the table
/// as it is now, and `__mr_row_exists` (0 when the row is gone: see [`poll_change_tracking`]).
///
/// `SYS_CHANGE_VERSION <= current` makes the version to store next exactly the bound of what was
/// read: a change committed while the query runs is read by the next poll, not by both. The key
/// breaks ties inside one transaction's changes so the order is the same on every read.
pub fn change_tracking_changes_query(table: &str, columns: &[String], key: &[String]) -> String {
    let table_q = quote_table(table);
    let mut select = vec![
        "CT.SYS_CHANGE_VERSION".to_string(),
        "CT.SYS_CHANGE_OPERATION".to_string(),
        "CT.SYS_CHANGE_CONTEXT".to_string(),
    ];
    select.extend(key.iter().map(|k| format!("CT.{}", quote(k))));
    select.extend(columns.iter().filter(|c| !is_key_column(key, c)).map(|c| format!("T.{}", quote(c))));
    let first_key = key.first().map(|k| quote(k)).unwrap_or_default();
    select.push(format!("CASE WHEN T.{first_key} IS NULL THEN 0 ELSE 1 END AS {}", quote(ROW_EXISTS_COLUMN)));
    let join: Vec<String> = key.iter().map(|k| format!("T.{0} = CT.{0}", quote(k))).collect();
    let order: Vec<String> = std::iter::once("CT.SYS_CHANGE_VERSION".to_string())
        .chain(key.iter().map(|k| format!("CT.{}", quote(k))))
        .collect();
    format!(
        "SELECT {} FROM CHANGETABLE(CHANGES {table_q}, ?) AS CT LEFT OUTER JOIN {table_q} AS T ON {} \
         WHERE CT.SYS_CHANGE_VERSION <= ? ORDER BY {}",
        select.join(", "),
        join.join(" AND "),
        order.join(", ")
    )
}

/// Whether a table's last synced change-tracking version can still be polled from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeTrackingCheck {
    Ok,
    /// SQL Server has cleaned up changes newer than `last_synced` (the retention period passed
    /// while millrace was not polling): they are gone, so the table must be re-snapshotted.
    ResnapshotNeeded {
        last_synced: i64,
        min_valid: i64,
    },
}

impl fmt::Display for ChangeTrackingCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChangeTrackingCheck::Ok => write!(f, "the last synced change-tracking version is still valid"),
            ChangeTrackingCheck::ResnapshotNeeded { last_synced, min_valid } => write!(
                f,
                "the last synced change-tracking version {last_synced} is older than the table's minimum valid \
                 version {min_valid}: SQL Server has already cleaned up changes millrace never read (the change \
                 retention period passed while it was not polling), so they cannot be replayed. A re-snapshot is \
                 needed: run `millrace backfill` for this table"
            ),
        }
    }
}

pub(crate) fn table_not_tracked_message(table: &str) -> String {
    format!(
        "change tracking is not enabled on table {table} (CHANGE_TRACKING_MIN_VALID_VERSION is NULL): enable it \
         with `ALTER TABLE {table} ENABLE CHANGE_TRACKING WITH (TRACK_COLUMNS_UPDATED = OFF)` and run \
         `millrace backfill` for the table, or poll it with another strategy"
    )
}

pub(crate) fn check_for_table(
    table: &str,
    last_synced: i64,
    min_valid: Option<i64>,
) -> Result<ChangeTrackingCheck, String> {
    match min_valid {
        None => Err(table_not_tracked_message(table)),
        // The last synced version must be at least the minimum valid one: CHANGETABLE(CHANGES t, v)
        // returns the changes after v, so v = min_valid still sees all of them.
        Some(min_valid) if last_synced < min_valid => {
            Ok(ChangeTrackingCheck::ResnapshotNeeded { last_synced, min_valid })
        }
        Some(_) => Ok(ChangeTrackingCheck::Ok),
    }
}

/// Compares the last synced version with `CHANGE_TRACKING_MIN_VALID_VERSION` (`None`: change
/// tracking is not enabled on the table, an error that says how to enable it).
pub fn check_change_tracking(last_synced: i64, min_valid: Option<i64>) -> Result<ChangeTrackingCheck, String> {
    check_for_table("<table>", last_synced, min_valid)
}

/// What one change-tracking poll found.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeTrackingPoll {
    pub changes: Vec<RowChange>,
    pub bad: Vec<BadLegacyRow>,
    /// The version to store once `changes` are handled: `CHANGE_TRACKING_CURRENT_VERSION()` as
    /// read at the start of the poll. On the first poll and when a re-snapshot is needed, store
    /// it only once the backfill that copies the table's rows has finished: changes made during
    /// the backfill are then polled again, never lost.
    pub version: i64,
    /// [`ChangeTrackingCheck::ResnapshotNeeded`] when the last synced version is too old
    /// (`changes` is then empty).
    pub check: ChangeTrackingCheck,
}

impl ChangeTrackingPoll {
    pub fn resnapshot_needed(&self) -> bool {
        matches!(self.check, ChangeTrackingCheck::ResnapshotNeeded { .. })
    }
}

pub(crate) fn current_version(conn: &mut dyn LegacyConnection, table: &str) -> Result<i64, LegacyError> {
    let row = single_row(conn, table, &change_tracking_current_version_query(), &[])?;
    optional_int(row.first(), "CHANGE_TRACKING_CURRENT_VERSION()", table)?.ok_or_else(|| {
        LegacyError::Other(
            "change tracking is not enabled on the legacy database (CHANGE_TRACKING_CURRENT_VERSION() is NULL): \
             enable it with `ALTER DATABASE CURRENT SET CHANGE_TRACKING = ON (CHANGE_RETENTION = 2 DAYS, \
             AUTO_CLEANUP = ON)`, then on each table"
                .to_string(),
        )
    })
}

/// `CHANGE_TRACKING_MIN_VALID_VERSION` of the table (`None`: not tracked), after checking the
/// table exists.
pub(crate) fn min_valid_version(conn: &mut dyn LegacyConnection, table: &str) -> Result<Option<i64>, LegacyError> {
    let (sql, params) = change_tracking_min_valid_query(table);
    let row = single_row(conn, table, &sql, &params)?;
    if optional_int(row.first(), "OBJECT_ID", table)?.is_none() {
        return Err(LegacyError::Other(format!("table {table} not found in the legacy database")));
    }
    optional_int(row.get(1), "CHANGE_TRACKING_MIN_VALID_VERSION", table)
}

pub(crate) fn check_version(
    conn: &mut dyn LegacyConnection,
    table: &str,
    last: i64,
) -> Result<ChangeTrackingCheck, LegacyError> {
    let min_valid = min_valid_version(conn, table)?;
    check_for_table(table, last, min_valid).map_err(LegacyError::Other)
}

/// Turns the change-tracking query's rows into changes, batch by batch.
pub(crate) struct ChangeTrackingDecoder {
    pub(crate) table: String,
    pub(crate) name: TableName,
    /// Where the key values sit in a result row (right after the three SYS_CHANGE columns).
    pub(crate) key_positions: Vec<usize>,
    /// For each column of the row image, where it sits in a result row.
    pub(crate) layout: Vec<usize>,
    pub(crate) width: usize,
    pub(crate) after_names: Arc<[String]>,
    pub(crate) key_names: Arc<[String]>,
}

impl ChangeTrackingDecoder {
    /// The decoder and its query.
    pub(crate) fn new(table: &LegacyTable, columns: &[String]) -> (Self, String) {
        let after_columns = with_key_columns(columns, &table.key);
        let others: Vec<&String> = after_columns.iter().filter(|c| !is_key_column(&table.key, c)).collect();
        let key_count = table.key.len();
        // Keys come from the change table (a deleted row has nothing to join), the rest from the
        // joined table, in the query's order.
        let mut other_index = 0;
        let layout = after_columns
            .iter()
            .map(|c| match table.key.iter().position(|k| k.eq_ignore_ascii_case(c)) {
                Some(k) => 3 + k,
                None => {
                    other_index += 1;
                    3 + key_count + other_index - 1
                }
            })
            .collect();
        let sql = change_tracking_changes_query(&table.table, &after_columns, &table.key);
        let decoder = ChangeTrackingDecoder {
            table: table.table.clone(),
            name: TableName::new("", table.table.clone()),
            key_positions: (3..3 + key_count).collect(),
            layout,
            width: 3 + key_count + others.len() + 1,
            after_names: after_columns.into(),
            key_names: table.key.clone().into(),
        };
        (decoder, sql)
    }

    pub(crate) fn decode(&self, batch: RowBatch) -> Result<Decoded, LegacyError> {
        let name = &self.table;
        if batch.columns.len() != self.width {
            return Err(LegacyError::Other(format!(
                "{name}: the change-tracking query returned {} columns, expected {}",
                batch.columns.len(),
                self.width
            )));
        }
        let mut changes = Vec::with_capacity(batch.rows.len());
        let mut bad = Vec::new();
        for row in batch.rows {
            let (values, failure) = split_row(row);
            let key = key_of(&values, &self.key_positions);
            // millrace's own writes: already in Odoo, and echoing them back would loop.
            if matches!(values.get(2), Some(Value::Bytes(context)) if context.as_slice() == MILLRACE_CT_CONTEXT) {
                continue;
            }
            if let Some((column, raw, reason)) = failure {
                let column = batch.columns.get(column).cloned().unwrap_or_default();
                bad.push(BadLegacyRow { table: name.clone(), key, column, value: raw, reason });
                continue;
            }
            let version = match values.first() {
                Some(Value::Int(version)) => *version,
                other => return Err(LegacyError::Other(format!("{name}: SYS_CHANGE_VERSION came back as {other:?}"))),
            };
            let op = match values.get(1) {
                Some(Value::Text(op)) => match op.trim() {
                    "I" => Op::Insert,
                    "U" => Op::Update,
                    "D" => Op::Delete,
                    other => {
                        bad.push(BadLegacyRow {
                            table: name.clone(),
                            key,
                            column: "SYS_CHANGE_OPERATION".to_string(),
                            value: other.to_string(),
                            reason: "unknown change operation".to_string(),
                        });
                        continue;
                    }
                },
                other => {
                    return Err(LegacyError::Other(format!("{name}: SYS_CHANGE_OPERATION came back as {other:?}")))
                }
            };
            let (before, after) = if op == Op::Delete {
                let key_values =
                    self.key_positions.iter().map(|&i| values.get(i).cloned().unwrap_or(Value::Null)).collect();
                (Some(Row { columns: self.key_names.clone(), values: key_values }), None)
            } else {
                // The row was deleted after the change was recorded: its delete has a higher
                // version, within the next poll's range, so this change is not worth emitting
                // with an empty row.
                if !matches!(values.last(), Some(Value::Int(1))) {
                    continue;
                }
                let row_values = self.layout.iter().map(|&i| values.get(i).cloned().unwrap_or(Value::Null)).collect();
                (None, Some(Row { columns: self.after_names.clone(), values: row_values }))
            };
            changes.push(RowChange {
                table: self.name.clone(),
                op,
                before,
                after,
                position: Position::Legacy { version: version.to_string(), key },
                commit_ts: None,
                xid: None,
                origin: None,
            });
        }
        Ok((changes, bad))
    }
}

/// The part of a change-tracking poll before the changes are read.
pub(crate) enum ChangeTrackingStart {
    /// Nothing to read (first poll, or a re-snapshot is needed): the poll's outcome.
    Done(ChangeTrackingPoll),
    Read {
        decoder: ChangeTrackingDecoder,
        sql: String,
        params: Vec<Value>,
        last: i64,
        current: i64,
    },
}

pub(crate) fn change_tracking_start(
    conn: &mut dyn LegacyConnection,
    table: &LegacyTable,
    last: Option<i64>,
) -> Result<ChangeTrackingStart, LegacyError> {
    let name = &table.table;
    if table.key.is_empty() {
        return Err(no_key(table));
    }
    let done = |version, check| {
        ChangeTrackingStart::Done(ChangeTrackingPoll { changes: Vec::new(), bad: Vec::new(), version, check })
    };
    // The current version first: changes up to it are read now, later ones by the next poll.
    let current = current_version(conn, name)?;
    let Some(last) = last else {
        // Only to fail early, with the ALTER TABLE hint, when the table is not tracked.
        check_version(conn, name, current)?;
        return Ok(done(current, ChangeTrackingCheck::Ok));
    };
    let check = check_version(conn, name, last)?;
    if check != ChangeTrackingCheck::Ok {
        return Ok(done(current, check));
    }
    let columns = polled_columns(conn, table)?;
    let (decoder, sql) = ChangeTrackingDecoder::new(table, &columns);
    Ok(ChangeTrackingStart::Read { decoder, sql, params: vec![Value::Int(last), Value::Int(current)], last, current })
}

/// One poll of a `change_tracking` table.
///
/// - First poll (`last = None`): reads `CHANGE_TRACKING_CURRENT_VERSION()` and returns it as the
///   starting version with no changes: the table's existing rows come from a backfill
///   (`millrace backfill`), started after this version was read.
/// - Otherwise checks `last` against the table's minimum valid version (too old:
///   [`ChangeTrackingCheck::ResnapshotNeeded`]), reads `CHANGETABLE(CHANGES …)` up to the current
///   version joined to the rows as they are now, and checks again afterwards: SQL Server's
///   cleanup may have run during the read and removed changes it would have returned.
///
/// Each change becomes an [`Op::Insert`], [`Op::Update`] or [`Op::Delete`] (from
/// `SYS_CHANGE_OPERATION` I/U/D; CHANGETABLE nets several changes of a row into one, carrying the
/// latest version). Changes carrying [`MILLRACE_CT_CONTEXT`] are millrace's own writes and are
/// skipped. An insert or update whose row is gone by the time it is joined is skipped too: its
/// delete is read by the next poll. Deletes carry the key columns as `before`.
pub fn poll_change_tracking(
    conn: &mut dyn LegacyConnection,
    table: &LegacyTable,
    last: Option<i64>,
) -> Result<ChangeTrackingPoll, LegacyError> {
    let (decoder, sql, params, last, current) = match change_tracking_start(conn, table, last)? {
        ChangeTrackingStart::Done(poll) => return Ok(poll),
        ChangeTrackingStart::Read { decoder, sql, params, last, current } => (decoder, sql, params, last, current),
    };
    let (changes, bad) = select_decoded(conn, &table.table, &sql, &params, |batch| decoder.decode(batch))?;
    let check = check_version(conn, &table.table, last)?;
    if check != ChangeTrackingCheck::Ok {
        return Ok(ChangeTrackingPoll { changes: Vec::new(), bad: Vec::new(), version: current, check });
    }
    Ok(ChangeTrackingPoll { changes, bad, version: current, check })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::erp::mssql::{table_columns_query, translate_placeholders};
    use crate::source::legacy::fake_erp::*;

    #[test]
    fn change_tracking_queries() {
        assert_eq!(
            change_tracking_current_version_query(),
            "SELECT CHANGE_TRACKING_CURRENT_VERSION() AS [current_version]"
        );
        let (sql, params) = change_tracking_min_valid_query("dbo.UOM");
        assert_eq!(
            sql,
            "SELECT OBJECT_ID(?) AS [object_id], CHANGE_TRACKING_MIN_VALID_VERSION(OBJECT_ID(?)) AS [min_valid]"
        );
        assert_eq!(params, vec![text("[dbo].[UOM]"), text("[dbo].[UOM]")]);
        let (sql, params) = table_columns_query("dbo.UOM");
        assert_eq!(sql, "SELECT c.name FROM sys.columns AS c WHERE c.object_id = OBJECT_ID(?) ORDER BY c.column_id");
        assert_eq!(params, vec![text("[dbo].[UOM]")]);

        let sql = change_tracking_changes_query(
            "dbo.BOM_LINE",
            &strings(&["ITEM_NO", "BOM_ALT", "QTY_PER", "LINE_NO"]),
            &strings(&["ITEM_NO", "BOM_ALT", "LINE_NO"]),
        );
        assert_eq!(
            sql,
            "SELECT CT.SYS_CHANGE_VERSION, CT.SYS_CHANGE_OPERATION, CT.SYS_CHANGE_CONTEXT, CT.[ITEM_NO], CT.[BOM_ALT], \
             CT.[LINE_NO], T.[QTY_PER], CASE WHEN T.[ITEM_NO] IS NULL THEN 0 ELSE 1 END AS [__mr_row_exists] \
             FROM CHANGETABLE(CHANGES [dbo].[BOM_LINE], ?) AS CT LEFT OUTER JOIN [dbo].[BOM_LINE] AS T \
             ON T.[ITEM_NO] = CT.[ITEM_NO] AND T.[BOM_ALT] = CT.[BOM_ALT] AND T.[LINE_NO] = CT.[LINE_NO] \
             WHERE CT.SYS_CHANGE_VERSION <= ? ORDER BY CT.SYS_CHANGE_VERSION, CT.[ITEM_NO], CT.[BOM_ALT], CT.[LINE_NO]"
        );
        assert_eq!(translate_placeholders(&sql).1, 2);
    }

    #[test]
    fn change_tracking_check() {
        assert_eq!(check_change_tracking(100, Some(90)), Ok(ChangeTrackingCheck::Ok));
        assert_eq!(check_change_tracking(100, Some(100)), Ok(ChangeTrackingCheck::Ok));
        let check = check_change_tracking(100, Some(101)).unwrap();
        assert_eq!(check, ChangeTrackingCheck::ResnapshotNeeded { last_synced: 100, min_valid: 101 });
        let message = check.to_string();
        assert!(message.contains("re-snapshot") && message.contains("millrace backfill"), "{message}");
        assert!(message.contains("100") && message.contains("101"), "{message}");
        let error = check_change_tracking(100, None).unwrap_err();
        assert!(error.contains("ALTER TABLE") && error.contains("ENABLE CHANGE_TRACKING"), "{error}");
    }

    // ---- values read ----

    fn tracked(current: Value, min_valid: Vec<Value>) -> FakeConnection {
        item_columns(FakeConnection::new())
            .on("CHANGE_TRACKING_CURRENT_VERSION", &["current_version"], vec![vec![current]])
            .on("CHANGE_TRACKING_MIN_VALID_VERSION", &["object_id", "min_valid"], vec![min_valid])
    }

    #[test]
    fn change_tracking_first_poll_starts_at_the_current_version() {
        let mut conn = tracked(Value::Int(120), vec![Value::Int(5), Value::Int(100)]);
        let poll = poll_change_tracking(&mut conn, &change_tracking_table(), None).unwrap();
        assert_eq!(
            poll,
            ChangeTrackingPoll { changes: vec![], bad: vec![], version: 120, check: ChangeTrackingCheck::Ok }
        );
        assert!(!conn.sql_of_calls().iter().any(|sql| sql.contains("CHANGETABLE")));
        assert_eq!(conn.calls[1].2, vec![text("[dbo].[ITEM_MASTER]"), text("[dbo].[ITEM_MASTER]")]);
    }

    #[test]
    fn change_tracking_poll_maps_operations_and_skips_our_own_writes() {
        let mut conn = tracked(Value::Int(120), vec![Value::Int(5), Value::Int(100)]).on(
            "CHANGETABLE",
            &CT_COLUMNS,
            vec![
                vec![Value::Int(101), text("I"), Value::Null, text("A100    "), text("Widget"), rv(9), Value::Int(1)],
                vec![
                    Value::Int(102),
                    text("U"),
                    Value::Bytes(b"millrace".to_vec()),
                    text("B200    "),
                    text("x"),
                    rv(10),
                    Value::Int(1),
                ],
                // Updated, then deleted before the join: the delete comes with the next poll.
                vec![
                    Value::Int(103),
                    text("U"),
                    Value::Null,
                    text("C300    "),
                    Value::Null,
                    Value::Null,
                    Value::Int(0),
                ],
                vec![
                    Value::Int(104),
                    text("D"),
                    Value::Null,
                    text("D400    "),
                    Value::Null,
                    Value::Null,
                    Value::Int(0),
                ],
                vec![
                    Value::Int(105),
                    text("U"),
                    Value::Bytes(b"erp-job".to_vec()),
                    text("E500"),
                    text("y"),
                    rv(12),
                    Value::Int(1),
                ],
            ],
        );
        let table = change_tracking_table();
        let poll = poll_change_tracking(&mut conn, &table, Some(100)).unwrap();
        assert_eq!(poll.version, 120);
        assert_eq!(poll.check, ChangeTrackingCheck::Ok);
        assert!(poll.bad.is_empty());

        let calls = conn.sql_of_calls();
        assert_eq!(calls.len(), 5, "{calls:#?}");
        assert!(calls[0].contains("CHANGE_TRACKING_CURRENT_VERSION"));
        assert!(calls[1].contains("CHANGE_TRACKING_MIN_VALID_VERSION"));
        assert!(calls[2].contains("sys.columns"));
        assert_eq!(
            calls[3],
            change_tracking_changes_query("dbo.ITEM_MASTER", &strings(&["ITEM_NO", "DESCRIPTION", "RV"]), &table.key)
        );
        assert!(calls[4].contains("CHANGE_TRACKING_MIN_VALID_VERSION"), "checked again after the read");
        assert_eq!(conn.calls[3].2, vec![Value::Int(100), Value::Int(120)]);

        let summary: Vec<(Op, String)> = poll
            .changes
            .iter()
            .map(|c| match &c.position {
                Position::Legacy { version, key } => (c.op, format!("{version} {key}")),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (Op::Insert, r#"101 ["A100"]"#.to_string()),
                (Op::Delete, r#"104 ["D400"]"#.to_string()),
                (Op::Update, r#"105 ["E500"]"#.to_string()),
            ]
        );
        let insert = &poll.changes[0];
        let after = insert.after.as_ref().unwrap();
        assert_eq!(&*after.columns, &strings(&["ITEM_NO", "DESCRIPTION", "RV"])[..]);
        assert_eq!(after.values, vec![text("A100    "), text("Widget"), rv(9)]);
        assert_eq!(insert.before, None);
        let delete = &poll.changes[1];
        assert_eq!(delete.after, None);
        let before = delete.before.as_ref().unwrap();
        assert_eq!(&*before.columns, &strings(&["ITEM_NO"])[..]);
        assert_eq!(before.values, vec![text("D400    ")]);
        assert_eq!(delete.table, TableName::new("", "dbo.ITEM_MASTER"));
    }

    #[test]
    fn change_tracking_row_image_follows_table_order_with_keys_anywhere() {
        // Key columns in the middle of the table: the row image keeps table order.
        let table = LegacyTable { key: strings(&["ORDER_NO", "LINE_NO"]), ..change_tracking_table() };
        let mut conn = FakeConnection::new()
            .on("CHANGE_TRACKING_CURRENT_VERSION", &["v"], vec![vec![Value::Int(9)]])
            .on("CHANGE_TRACKING_MIN_VALID_VERSION", &["o", "m"], vec![vec![Value::Int(1), Value::Int(1)]])
            .on(
                "sys.columns",
                &["name"],
                vec![vec![text("QTY")], vec![text("ORDER_NO")], vec![text("NOTE")], vec![text("LINE_NO")]],
            )
            .on(
                "CHANGETABLE",
                &["v", "o", "c", "ORDER_NO", "LINE_NO", "QTY", "NOTE", "e"],
                vec![vec![
                    Value::Int(8),
                    text("U"),
                    Value::Null,
                    text("SO1"),
                    Value::Int(2),
                    Value::Int(5),
                    text("n"),
                    Value::Int(1),
                ]],
            );
        let poll = poll_change_tracking(&mut conn, &table, Some(3)).unwrap();
        let after = poll.changes[0].after.as_ref().unwrap();
        assert_eq!(&*after.columns, &strings(&["QTY", "ORDER_NO", "NOTE", "LINE_NO"])[..]);
        assert_eq!(after.values, vec![Value::Int(5), text("SO1"), text("n"), Value::Int(2)]);
        assert_eq!(poll.changes[0].position, Position::Legacy { version: "8".into(), key: r#"["SO1",2]"#.into() });
    }

    #[test]
    fn change_tracking_too_old_a_version_needs_a_resnapshot() {
        let mut conn = tracked(Value::Int(120), vec![Value::Int(5), Value::Int(110)]);
        let poll = poll_change_tracking(&mut conn, &change_tracking_table(), Some(100)).unwrap();
        assert!(poll.resnapshot_needed());
        assert_eq!(poll.check, ChangeTrackingCheck::ResnapshotNeeded { last_synced: 100, min_valid: 110 });
        assert_eq!(poll.version, 120);
        assert!(poll.changes.is_empty());
        assert!(!conn.sql_of_calls().iter().any(|sql| sql.contains("CHANGETABLE")));
    }

    #[test]
    fn change_tracking_cleanup_during_the_read_discards_it() {
        let mut conn = tracked(Value::Int(120), vec![Value::Int(5), Value::Int(100)])
            .on(
                "CHANGE_TRACKING_MIN_VALID_VERSION",
                &["object_id", "min_valid"],
                vec![vec![Value::Int(5), Value::Int(101)]],
            )
            .on(
                "CHANGETABLE",
                &CT_COLUMNS,
                vec![vec![Value::Int(101), text("I"), Value::Null, text("A100"), text("W"), rv(9), Value::Int(1)]],
            );
        let poll = poll_change_tracking(&mut conn, &change_tracking_table(), Some(100)).unwrap();
        assert_eq!(poll.check, ChangeTrackingCheck::ResnapshotNeeded { last_synced: 100, min_valid: 101 });
        assert!(poll.changes.is_empty());
    }

    #[test]
    fn change_tracking_says_how_to_enable_it() {
        let mut conn = tracked(Value::Int(120), vec![Value::Int(5), Value::Null]);
        let error = poll_change_tracking(&mut conn, &change_tracking_table(), Some(100)).unwrap_err().to_string();
        assert!(error.contains("ALTER TABLE dbo.ITEM_MASTER ENABLE CHANGE_TRACKING"), "{error}");
        let error = poll_change_tracking(&mut conn, &change_tracking_table(), None).unwrap_err().to_string();
        assert!(error.contains("ENABLE CHANGE_TRACKING"), "{error}");

        let mut conn = tracked(Value::Null, vec![Value::Int(5), Value::Null]);
        let error = poll_change_tracking(&mut conn, &change_tracking_table(), Some(100)).unwrap_err().to_string();
        assert!(error.contains("ALTER DATABASE"), "{error}");

        let mut conn = tracked(Value::Int(120), vec![Value::Null, Value::Null]);
        let error = poll_change_tracking(&mut conn, &change_tracking_table(), Some(100)).unwrap_err().to_string();
        assert!(error.contains("not found"), "{error}");
    }
}
