//! SQL Server as a legacy source over its own protocol (TDS, through tiberius): the `rowversion`
//! and `change_tracking` strategies, the connection that runs their queries, and the conversion
//! of SQL Server's column types into [`Value`]s.
//!
//! No SQL Server runs on millrace's dev and CI machines, so the module is cut to keep as much as
//! possible testable without one:
//! - pure functions write the SQL ([`rowversion_query`], [`change_tracking_changes_query`], …)
//!   and convert values both ways ([`column_to_value`], [`value_to_param`]);
//! - [`poll_rowversion`] and [`poll_change_tracking`] turn query results into [`RowChange`]s.
//!   They only talk to the database through [`LegacyConnection`], so unit tests drive them with
//!   a fake connection that returns canned rows;
//! - [`MssqlConnection`] is the real connection, the one part that needs a live server
//!   (`tests/legacy_mssql.rs`, run when `MILLRACE_TEST_MSSQL` holds a connection string).
//!
//! Versions are stored by the caller as an `i64`: the rowversion as `CAST(rv AS BIGINT)` (a
//! rowversion is a big-endian 8-byte counter that no database gets anywhere near 2^63 of), the
//! change-tracking version as SQL Server returns it (`BIGINT`).

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Utc};
use futures_util::TryStreamExt;
use tiberius::numeric::Numeric;
use tiberius::{AuthMethod, Client, Column, ColumnData, ColumnType, Config, IntoSql, Query, QueryItem};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

use super::poller::{LegacyItem, PendingSave, PollError};
use super::reader::{self, ReadPlan};
use super::{key_text, BadLegacyRow, Dialect, LegacyConnection, LegacyError, LegacyTable, ReadRow, RowBatch, Strategy};
use crate::model::{Decimal, Op, Position, Row, RowChange, TableName, Value};
use crate::state::{SaveOutcome, StateStore};

/// The `CHANGE_TRACKING_CONTEXT` millrace's own writes into SQL Server carry (`0x6d696c6c72616365`),
/// so that the change-tracking poller skips them instead of echoing them back to Odoo.
pub const MILLRACE_CT_CONTEXT: &[u8] = b"millrace";

/// Rows handed to the `select` callback at a time: large enough to amortise the callback, small
/// enough that a table's first read never sits in memory twice.
pub const BATCH_ROWS: usize = 2000;

/// The command timeout millrace uses unless the connection string sets `Command Timeout`.
///
/// tiberius 0.13 applies its command timeout to each wait for the server's next
/// response token, not to the whole result, so a long streaming read never trips it while rows
/// flow. What it bounds is the wait for the first row (a sort, a lock held by an ERP batch job)
/// and a stalled server. ADO.NET's 30 s default is too short for the first read of a large table
/// behind a busy ERP; ten minutes still catches a server that has gone away.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(600);

/// TCP connect plus TDS/TLS/login handshake, unless the connection string sets `Connect Timeout`
/// (ADO.NET's default, too).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// The column the rowversion query adds: the row's version as a `BIGINT`.
const VERSION_COLUMN: &str = "__mr_version";
/// The column the change-tracking query adds: 1 when the changed row still exists.
const ROW_EXISTS_COLUMN: &str = "__mr_row_exists";

/// SQL Server error numbers worth retrying: deadlock victim, lock timeout, and the connection,
/// failover and throttling errors Microsoft lists as transient for SQL Server and Azure SQL.
const TRANSIENT_SERVER_ERRORS: &[u32] = &[
    64, 233, 1205, 1222, 4060, 4221, 8645, 10053, 10054, 10060, 10928, 10929, 40143, 40197, 40501, 40540, 40613, 49918,
    49919, 49920,
];

// ---- SQL ------------------------------------------------------------------------------------

fn quote(ident: &str) -> String {
    Dialect::MsSql.quote(ident)
}

fn quote_table(table: &str) -> String {
    Dialect::MsSql.quote_table(table)
}

/// `columns`, then any key column they lack: every change needs its key, whatever the caller
/// selected. SQL Server matches identifiers case-insensitively under the usual `_CI_` collations,
/// so `item_no` already covers `ITEM_NO`.
fn with_key_columns(columns: &[String], key: &[String]) -> Vec<String> {
    let mut all = columns.to_vec();
    key.iter().for_each(|k| super::push_column_once(&mut all, k));
    all
}

fn column_position(columns: &[String], name: &str) -> Option<usize> {
    columns.iter().position(|c| c == name).or_else(|| columns.iter().position(|c| c.eq_ignore_ascii_case(name)))
}

fn is_key_column(key: &[String], column: &str) -> bool {
    key.iter().any(|k| k.eq_ignore_ascii_case(column))
}

/// Rewrites ODBC-style `?` placeholders into tiberius's `@P1, @P2, …`, leaving alone any `?`
/// inside a string literal (`'…'`, `N'…'`, with `''` escapes), a bracketed identifier (`[…]`,
/// with `]]`), a double-quoted identifier, and `--` or (nested) `/* */` comments. Returns the SQL
/// and how many placeholders it has.
pub fn translate_placeholders(sql: &str) -> (String, usize) {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Code,
        Text,
        Bracket,
        Quoted,
        LineComment,
        BlockComment(u32),
    }
    let mut out = String::with_capacity(sql.len() + 16);
    let mut count = 0;
    let mut state = State::Code;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        // The closing character of a quoted run, doubled, stands for itself and keeps the run open.
        let closes = |close: char, chars: &mut std::iter::Peekable<std::str::Chars<'_>>, out: &mut String| {
            if chars.peek() == Some(&close) {
                out.push(close);
                chars.next();
                false
            } else {
                true
            }
        };
        match state {
            State::Code => match c {
                '?' => {
                    count += 1;
                    out.push_str("@P");
                    out.push_str(&count.to_string());
                    continue;
                }
                '\'' => state = State::Text,
                '[' => state = State::Bracket,
                '"' => state = State::Quoted,
                '-' if chars.peek() == Some(&'-') => {
                    out.push_str("--");
                    chars.next();
                    state = State::LineComment;
                    continue;
                }
                '/' if chars.peek() == Some(&'*') => {
                    out.push_str("/*");
                    chars.next();
                    state = State::BlockComment(1);
                    continue;
                }
                _ => {}
            },
            State::Text => {
                out.push(c);
                if c == '\'' && closes('\'', &mut chars, &mut out) {
                    state = State::Code;
                }
                continue;
            }
            State::Bracket => {
                out.push(c);
                if c == ']' && closes(']', &mut chars, &mut out) {
                    state = State::Code;
                }
                continue;
            }
            State::Quoted => {
                out.push(c);
                if c == '"' && closes('"', &mut chars, &mut out) {
                    state = State::Code;
                }
                continue;
            }
            State::LineComment => {
                if c == '\n' {
                    state = State::Code;
                }
            }
            State::BlockComment(depth) => {
                // T-SQL block comments nest.
                if c == '/' && chars.peek() == Some(&'*') {
                    out.push_str("/*");
                    chars.next();
                    state = State::BlockComment(depth + 1);
                    continue;
                }
                if c == '*' && chars.peek() == Some(&'/') {
                    out.push_str("*/");
                    chars.next();
                    state = if depth == 1 { State::Code } else { State::BlockComment(depth - 1) };
                    continue;
                }
            }
        }
        out.push(c);
    }
    (out, count)
}

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

/// A table's column names in table order, with its parameter (the quoted table name, which
/// `OBJECT_ID` parses, so `ERP.ITEM]X` is found as `[ERP].[ITEM]]X]`).
pub fn table_columns_query(table: &str) -> (String, Vec<Value>) {
    (
        "SELECT c.name FROM sys.columns AS c WHERE c.object_id = OBJECT_ID(?) ORDER BY c.column_id".to_string(),
        vec![Value::Text(quote_table(table))],
    )
}

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

// ---- Change-tracking version check -----------------------------------------------------------

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

fn table_not_tracked_message(table: &str) -> String {
    format!(
        "change tracking is not enabled on table {table} (CHANGE_TRACKING_MIN_VALID_VERSION is NULL): enable it \
         with `ALTER TABLE {table} ENABLE CHANGE_TRACKING WITH (TRACK_COLUMNS_UPDATED = OFF)` and run \
         `millrace backfill` for the table, or poll it with another strategy"
    )
}

fn check_for_table(table: &str, last_synced: i64, min_valid: Option<i64>) -> Result<ChangeTrackingCheck, String> {
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

// ---- Values: SQL Server to millrace -----------------------------------------------------------

fn null_or<T>(value: &Option<T>, convert: impl FnOnce(&T) -> Result<Value, String>) -> Result<Value, String> {
    match value {
        None => Ok(Value::Null),
        Some(v) => convert(v),
    }
}

fn numeric_to_decimal(n: Numeric) -> Result<Decimal, String> {
    Decimal::new(n.value(), n.scale())
        .map_err(|_| format!("decimal {}e-{} has more than 38 digits", n.value(), n.scale()))
}

/// Days since 0001-01-01, as `date`, `datetime2` and `datetimeoffset` count them.
fn date_from_days(days: u32) -> Result<NaiveDate, String> {
    i32::try_from(days)
        .ok()
        .and_then(|d| d.checked_add(1))
        .and_then(NaiveDate::from_num_days_from_ce_opt)
        .ok_or_else(|| format!("date {days} days after 0001-01-01 is out of range"))
}

/// `increments` units of 10^-scale seconds since midnight, as `time` and `datetime2` count them.
fn time_from_increments(increments: u64, scale: u8) -> Result<NaiveTime, String> {
    let out_of_range = || format!("time {increments}e-{scale} s after midnight is out of range");
    if scale > 9 {
        return Err(out_of_range());
    }
    let nanos = increments.checked_mul(10u64.pow(9 - u32::from(scale))).ok_or_else(out_of_range)?;
    let secs = u32::try_from(nanos / 1_000_000_000).map_err(|_| out_of_range())?;
    let nano = u32::try_from(nanos % 1_000_000_000).map_err(|_| out_of_range())?;
    if secs >= 86_400 {
        return Err(out_of_range());
    }
    NaiveTime::from_num_seconds_from_midnight_opt(secs, nano).ok_or_else(out_of_range)
}

fn day_1900(days: i64) -> Result<NaiveDate, String> {
    NaiveDate::from_ymd_opt(1900, 1, 1)
        .zip(TimeDelta::try_days(days))
        .and_then(|(base, delta)| base.checked_add_signed(delta))
        .ok_or_else(|| format!("date {days} days from 1900-01-01 is out of range"))
}

/// `datetime`: days from 1900-01-01 and 1/300 s ticks since midnight.
///
/// The ticks are rounded to 100 ns, which is what SQL Server 2016 and later compute when they
/// compare a `datetime` with a `datetime2(7)` (`.007` is stored as 2/300 s, compared as
/// `.0066667`). A timestamp read here and bound back as a parameter (which tiberius sends as
/// `datetime2(7)`) therefore equals the stored value, so watermarks neither skip nor repeat it.
fn datetime_from_ticks(days: i32, ticks: u32) -> Result<NaiveDateTime, String> {
    if ticks >= 300 * 86_400 {
        return Err(format!("datetime time of day {ticks}/300 s is out of range"));
    }
    let date = day_1900(i64::from(days))?;
    let hundred_ns = (u64::from(ticks) * 100_000 + 1) / 3;
    Ok(date.and_time(time_from_increments(hundred_ns, 7)?))
}

/// Money arrives from tiberius as an `f64` (value / 10^4). For |scaled value| < 2^51 the
/// division and the multiplication back are each within half an ulp, so rounding recovers the
/// exact four-decimal amount. Larger amounts (over 225 billion) may have lost digits already, and
/// are refused rather than passed on slightly wrong.
fn money_to_decimal(amount: f64) -> Result<Decimal, String> {
    const EXACT_LIMIT: f64 = 2_251_799_813_685_248.0; // 2^51
    let scaled = (amount * 10_000.0).round();
    if !scaled.is_finite() || scaled.abs() >= EXACT_LIMIT {
        return Err(format!(
            "money value {amount} is too large to read exactly (the driver decodes money as a 64-bit float); \
             select the column as CAST(… AS DECIMAL(19,4))"
        ));
    }
    Decimal::new(scaled as i128, 4).map_err(|e| e.to_string())
}

/// Converts one cell as tiberius decoded it. `NULL` of any type is [`Value::Null`]; CHAR padding
/// is kept (keys are trimmed by [`key_text`]); `datetime*` are naive local times as the ERP wrote
/// them; `datetimeoffset` is the UTC instant. Money columns need their column type to be told
/// from `float`: use [`typed_column_to_value`].
pub fn column_to_value(data: &ColumnData<'_>) -> Result<Value, String> {
    match data {
        ColumnData::U8(v) => null_or(v, |n| Ok(Value::Int(i64::from(*n)))),
        ColumnData::I16(v) => null_or(v, |n| Ok(Value::Int(i64::from(*n)))),
        ColumnData::I32(v) => null_or(v, |n| Ok(Value::Int(i64::from(*n)))),
        ColumnData::I64(v) => null_or(v, |n| Ok(Value::Int(*n))),
        ColumnData::F32(v) => null_or(v, |f| Ok(Value::Float(f64::from(*f)))),
        ColumnData::F64(v) => null_or(v, |f| Ok(Value::Float(*f))),
        ColumnData::Bit(v) => null_or(v, |b| Ok(Value::Bool(*b))),
        ColumnData::String(v) => null_or(v, |s| Ok(Value::Text(s.to_string()))),
        // SQL Server prints uniqueidentifiers in upper case; keys read here must match keys read
        // through ODBC or typed by a user.
        ColumnData::Guid(v) => null_or(v, |g| Ok(Value::Text(g.to_string().to_ascii_uppercase()))),
        ColumnData::Binary(v) => null_or(v, |b| Ok(Value::Bytes(b.to_vec()))),
        ColumnData::Numeric(v) => null_or(v, |n| numeric_to_decimal(*n).map(Value::Decimal)),
        ColumnData::Xml(v) => null_or(v, |x| Ok(Value::Text(AsRef::<str>::as_ref(x.as_ref()).to_string()))),
        ColumnData::DateTime(v) => {
            null_or(v, |dt| datetime_from_ticks(dt.days(), dt.seconds_fragments()).map(Value::Timestamp))
        }
        ColumnData::SmallDateTime(v) => null_or(v, |dt| {
            let minutes = dt.seconds_fragments();
            if minutes >= 1440 {
                return Err(format!("smalldatetime minute of day {minutes} is out of range"));
            }
            let time = time_from_increments(u64::from(minutes) * 60, 0)?;
            Ok(Value::Timestamp(day_1900(i64::from(dt.days()))?.and_time(time)))
        }),
        ColumnData::Time(v) => null_or(v, |t| time_from_increments(t.increments(), t.scale()).map(Value::Time)),
        ColumnData::Date(v) => null_or(v, |d| date_from_days(d.days()).map(Value::Date)),
        ColumnData::DateTime2(v) => null_or(v, |dt| {
            let time = dt.time();
            Ok(Value::Timestamp(
                date_from_days(dt.date().days())?.and_time(time_from_increments(time.increments(), time.scale())?),
            ))
        }),
        // On the wire (MS-TDS 2.2.5.5.1.9) a datetimeoffset's date and time are the UTC instant;
        // the offset only says how the writer displayed it. (tiberius's own chrono conversion
        // subtracts the offset again, which is why this reads the parts itself.)
        ColumnData::DateTimeOffset(v) => null_or(v, |dto| {
            let dt = dto.datetime2();
            let time = dt.time();
            let naive =
                date_from_days(dt.date().days())?.and_time(time_from_increments(time.increments(), time.scale())?);
            Ok(Value::TimestampTz(DateTime::<Utc>::from_naive_utc_and_offset(naive, Utc)))
        }),
    }
}

/// [`column_to_value`] knowing the column's type: `money` and `smallmoney` (which tiberius
/// decodes as `f64`) become exact four-decimal [`Decimal`]s, everything else is converted by value.
pub fn typed_column_to_value(column_type: ColumnType, data: &ColumnData<'_>) -> Result<Value, String> {
    match (column_type, data) {
        (ColumnType::Money | ColumnType::Money4, ColumnData::F64(Some(amount))) => {
            money_to_decimal(*amount).map(Value::Decimal)
        }
        _ => column_to_value(data),
    }
}

/// The raw cell for a dead-letter entry.
fn raw_text(data: &ColumnData<'_>) -> String {
    match data {
        ColumnData::Numeric(Some(n)) => format!("{}e-{}", n.value(), n.scale()),
        ColumnData::F64(Some(f)) => f.to_string(),
        other => format!("{other:?}"),
    }
}

/// One row's cells converted; a cell that cannot be converted makes the row [`ReadRow::Bad`]
/// (the first such cell is reported, every other cell is still converted, failures as `Null`).
pub fn read_cells<'r, 'd: 'r>(cells: impl IntoIterator<Item = (ColumnType, &'r ColumnData<'d>)>) -> ReadRow {
    let mut values = Vec::new();
    let mut failure = None;
    for (i, (column_type, data)) in cells.into_iter().enumerate() {
        match typed_column_to_value(column_type, data) {
            Ok(value) => values.push(value),
            Err(reason) => {
                values.push(Value::Null);
                if failure.is_none() {
                    failure = Some((i, raw_text(data), reason));
                }
            }
        }
    }
    match failure {
        None => ReadRow::Ok(values),
        Some((column, raw, reason)) => ReadRow::Bad { values, column, raw, reason },
    }
}

// ---- Values: millrace to SQL Server (parameters) ----------------------------------------------

fn check_year(year: i32) -> Result<(), String> {
    if (1..=9999).contains(&year) {
        Ok(())
    } else {
        Err(format!("year {year} is outside SQL Server's 1..9999"))
    }
}

/// A [`Value`] as a bound parameter. Text is sent as `nvarchar`, integers as `bigint`, decimals
/// as `numeric` with their own scale, timestamps as `datetime2(7)`, bytes as `varbinary`.
/// `Null` goes as an `nvarchar` NULL, which SQL Server converts to the other side's type.
pub fn value_to_param(value: &Value) -> Result<ColumnData<'static>, String> {
    Ok(match value {
        Value::Null => ColumnData::String(None),
        Value::Bool(b) => ColumnData::Bit(Some(*b)),
        Value::Int(n) => ColumnData::I64(Some(*n)),
        Value::Float(f) => ColumnData::F64(Some(*f)),
        Value::Decimal(d) => {
            if d.scale() > Numeric::MAX_NUMERIC_SCALE {
                return Err(format!("decimal {d} has a scale above 38"));
            }
            ColumnData::Numeric(Some(Numeric::new_with_scale(d.mantissa(), d.scale())))
        }
        Value::Text(s) | Value::Json(s) => ColumnData::String(Some(Cow::Owned(s.clone()))),
        Value::Bytes(b) => ColumnData::Binary(Some(Cow::Owned(b.clone()))),
        Value::Date(d) => {
            check_year(chrono::Datelike::year(d))?;
            d.into_sql()
        }
        Value::Time(t) => t.into_sql(),
        Value::Timestamp(ts) => {
            check_year(chrono::Datelike::year(ts))?;
            ts.into_sql()
        }
        Value::TimestampTz(ts) => {
            check_year(chrono::Datelike::year(ts))?;
            ts.into_sql()
        }
        Value::Unchanged => return Err("an unchanged-TOAST marker is not a value and cannot be bound".to_string()),
        Value::Array(_) => return Err("an array cannot be bound as a SQL Server parameter".to_string()),
        Value::Raw { type_name, text } => {
            return Err(format!("{type_name} value {text:?} has no SQL Server form"));
        }
    })
}

// ---- Batching rows ----------------------------------------------------------------------------

/// Collects a result stream's rows into [`RowBatch`]es of at most `batch_rows`. Every result set
/// is delivered at least once, empty or not, so a caller asking only for column names
/// (`SELECT TOP (0) *`) gets them.
struct RowBatcher {
    batch_rows: usize,
    columns: Option<Arc<[String]>>,
    rows: Vec<ReadRow>,
    delivered: bool,
}

impl RowBatcher {
    fn new(batch_rows: usize) -> Self {
        RowBatcher { batch_rows: batch_rows.max(1), columns: None, rows: Vec::new(), delivered: false }
    }

    fn names(columns: &[Column]) -> Arc<[String]> {
        columns.iter().map(|c| c.name().to_string()).collect()
    }

    /// A result set starts: returns what is left of the previous one.
    fn start(&mut self, columns: &[Column]) -> Option<RowBatch> {
        let pending = self.take(false);
        self.columns = Some(Self::names(columns));
        self.delivered = false;
        pending
    }

    /// Adds a row: returns a full batch when there is one.
    fn push(&mut self, row: &tiberius::Row) -> Option<RowBatch> {
        if self.columns.is_none() {
            self.columns = Some(Self::names(row.columns()));
        }
        self.rows.push(read_cells(row.cells().map(|(column, data)| (column.column_type(), data))));
        if self.rows.len() >= self.batch_rows {
            self.take(true)
        } else {
            None
        }
    }

    /// The stream ended: returns the last batch.
    fn finish(&mut self) -> Option<RowBatch> {
        self.take(false)
    }

    fn take(&mut self, full: bool) -> Option<RowBatch> {
        let columns = self.columns.clone()?;
        if self.rows.is_empty() && self.delivered {
            return None;
        }
        self.delivered = true;
        let capacity = if full { self.batch_rows } else { 0 };
        Some(RowBatch { columns, rows: std::mem::replace(&mut self.rows, Vec::with_capacity(capacity)) })
    }
}

// ---- The connection ---------------------------------------------------------------------------

/// Splits an ADO.NET connection string into lower-cased keys and values, with the quoting
/// tiberius accepts (`'…'`, `"…"` with the quote doubled inside, `{…}`). millrace reads a few
/// keys itself (the user, timeouts, the database for messages); tiberius parses the rest.
/// Errors never quote the string: it may hold a password.
fn ado_pairs(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        let mut key = String::new();
        loop {
            match chars.next() {
                None => {
                    if !key.trim().is_empty() {
                        return Err("a key has no `=` and value".to_string());
                    }
                    return Ok(pairs);
                }
                Some(';') if key.trim().is_empty() => key.clear(),
                Some(';') => return Err("a key has no `=` and value".to_string()),
                Some('=') => break,
                Some(c) => key.push(c),
            }
        }
        while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        match chars.peek().copied() {
            Some(quote @ ('\'' | '"')) => {
                chars.next();
                loop {
                    match chars.next() {
                        None => return Err("a quoted value is not closed".to_string()),
                        Some(c) if c == quote => {
                            if chars.peek() == Some(&quote) {
                                chars.next();
                                value.push(quote);
                            } else {
                                break;
                            }
                        }
                        Some(c) => value.push(c),
                    }
                }
                skip_to_separator(&mut chars)?;
            }
            Some('{') => {
                chars.next();
                loop {
                    match chars.next() {
                        None => return Err("a braced value is not closed".to_string()),
                        Some('}') => break,
                        Some(c) => value.push(c),
                    }
                }
                skip_to_separator(&mut chars)?;
            }
            _ => {
                for c in chars.by_ref() {
                    if c == ';' {
                        break;
                    }
                    value.push(c);
                }
                value = value.trim().to_string();
            }
        }
        pairs.push((key.trim().to_ascii_lowercase(), value));
    }
}

fn skip_to_separator(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<(), String> {
    for c in chars.by_ref() {
        match c {
            ';' => return Ok(()),
            c if c.is_ascii_whitespace() => {}
            _ => return Err("text follows a quoted value".to_string()),
        }
    }
    Ok(())
}

/// Seconds, `0` meaning no limit (as in ADO.NET).
fn timeout_setting(name: &str, value: &str) -> Result<Option<Duration>, String> {
    let secs: u64 = value.trim().parse().map_err(|_| format!("`{name}` must be a number of seconds"))?;
    Ok((secs > 0).then(|| Duration::from_secs(secs)))
}

/// Everything [`MssqlConnection::connect`] derives from the connection string before touching
/// the network.
struct ConnectSettings {
    config: Config,
    /// `host:port/database`, for messages: never the connection string, which may hold a password.
    target: String,
    connect_timeout: Option<Duration>,
    command_timeout: Option<Duration>,
}

impl ConnectSettings {
    fn parse(ado: &str, password: Option<&str>) -> Result<ConnectSettings, LegacyError> {
        let invalid = |target: &str, message: String| LegacyError::Connect {
            target: target.to_string(),
            message: format!("the connection string is not valid: {message}"),
            transient: false,
        };
        let pairs = ado_pairs(ado).map_err(|m| invalid("SQL Server", m))?;
        // Later pairs win, as in ADO.NET.
        let get =
            |names: &[&str]| pairs.iter().rev().find(|(k, _)| names.contains(&k.as_str())).map(|(_, v)| v.as_str());
        let mut config = Config::from_ado_string(ado).map_err(|e| invalid("SQL Server", e.to_string()))?;
        let target = match get(&["database", "initial catalog", "databasename"]) {
            Some(db) if !db.is_empty() => format!("{}/{db}", config.get_addr()),
            _ => config.get_addr(),
        };
        let command_timeout = match get(&["command timeout", "commandtimeout"]) {
            Some(v) => timeout_setting("Command Timeout", v).map_err(|m| invalid(&target, m))?,
            None => Some(DEFAULT_COMMAND_TIMEOUT),
        };
        let connect_timeout = match get(&["connect timeout", "connection timeout", "timeout"]) {
            Some(v) => timeout_setting("Connect Timeout", v).map_err(|m| invalid(&target, m))?,
            None => Some(DEFAULT_CONNECT_TIMEOUT),
        };
        config.command_timeout(command_timeout);
        config.handshake_timeout(connect_timeout);
        if get(&["application name", "applicationname"]).is_none() {
            // Lets a DBA tell millrace's sessions apart in sys.dm_exec_sessions.
            config.application_name("millrace");
        }
        if let Some(password) = password {
            // The password comes from a secret of its own; the user still comes from the string.
            let user = get(&["uid", "username", "user", "user id"]).filter(|u| !u.is_empty()).ok_or_else(|| {
                invalid(&target, "a password was given separately but the connection string names no `User ID`".into())
            })?;
            config.authentication(AuthMethod::sql_server(user, password));
        }
        Ok(ConnectSettings { config, target, connect_timeout, command_timeout })
    }
}

fn is_transient(error: &tiberius::error::Error) -> bool {
    match error {
        // Connection refused, reset or lost, and timeouts: the server may be back on the next try.
        tiberius::error::Error::Io { .. } => true,
        tiberius::error::Error::Server(token) => TRANSIENT_SERVER_ERRORS.contains(&token.code()),
        _ => false,
    }
}

type TdsClient = Client<Compat<TcpStream>>;

enum Failure {
    Driver(tiberius::error::Error),
    /// The batch callback failed: its error is passed on as it is.
    Callback(LegacyError),
}

impl From<tiberius::error::Error> for Failure {
    fn from(e: tiberius::error::Error) -> Self {
        Failure::Driver(e)
    }
}

async fn open_tcp(addr: &str, timeout: Option<Duration>) -> Result<TcpStream, tiberius::error::Error> {
    let connect = TcpStream::connect(addr);
    let tcp = match timeout {
        Some(limit) => tokio::time::timeout(limit, connect).await.map_err(|_| tiberius::error::Error::Io {
            kind: std::io::ErrorKind::TimedOut,
            message: format!("TCP connect to {addr} timed out after {} s", limit.as_secs()),
        })??,
        None => connect.await?,
    };
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

async fn open_client(config: &Config, timeout: Option<Duration>) -> Result<TdsClient, tiberius::error::Error> {
    let tcp = open_tcp(&config.get_addr(), timeout).await?;
    match Client::connect(config.clone(), tcp.compat_write()).await {
        // Azure SQL's gateway may redirect the session to the node that serves the database.
        Err(tiberius::error::Error::Routing { host, port }) => {
            let mut redirected = config.clone();
            redirected.host(&host);
            redirected.port(port);
            let tcp = open_tcp(&redirected.get_addr(), timeout).await?;
            Client::connect(redirected, tcp.compat_write()).await
        }
        other => other,
    }
}

async fn stream_query(
    client: &mut TdsClient,
    sql: String,
    params: Vec<ColumnData<'static>>,
    on_batch: &mut dyn FnMut(RowBatch) -> Result<(), LegacyError>,
) -> Result<(), Failure> {
    let mut query = Query::new(sql);
    for param in params {
        query.bind(param);
    }
    let mut stream = query.query(client).await?;
    let mut batcher = RowBatcher::new(BATCH_ROWS);
    while let Some(item) = stream.try_next().await? {
        let ready = match item {
            QueryItem::Metadata(meta) => batcher.start(meta.columns()),
            QueryItem::Row(row) => batcher.push(&row),
        };
        if let Some(batch) = ready {
            on_batch(batch).map_err(Failure::Callback)?;
        }
    }
    if let Some(batch) = batcher.finish() {
        on_batch(batch).map_err(Failure::Callback)?;
    }
    Ok(())
}

/// A connection to SQL Server over TDS.
///
/// Blocking, like every [`LegacyConnection`]: it owns a single-threaded tokio runtime and
/// `block_on`s each call, so it must be used from a plain (or `spawn_blocking`) thread, never from
/// inside an async task (tokio panics on a nested `block_on`).
///
/// After an I/O failure or timeout the TDS session is out of step with the server, so it is
/// dropped and the next call reconnects: a transient error can be retried on the same
/// `MssqlConnection`. Named instances need an explicit port (`server=tcp:host\\inst,1433`): the
/// SQL Browser lookup is not compiled in.
pub struct MssqlConnection {
    // Declared before the runtime so the session is closed while its runtime still exists.
    client: Option<TdsClient>,
    runtime: OwnRuntime,
    config: Config,
    target: String,
    connect_timeout: Option<Duration>,
    command_timeout: Option<Duration>,
}

/// The connection's own single-threaded runtime, shut down without blocking when dropped. A
/// connection can be dropped inside async code (a poll cancelled by a signal, the poller going
/// away, an error path), and dropping a tokio runtime there panics because its drop waits.
struct OwnRuntime(Option<tokio::runtime::Runtime>);

impl OwnRuntime {
    fn block_on<F: std::future::Future>(&self, future: F) -> Result<F::Output, LegacyError> {
        match &self.0 {
            Some(runtime) => Ok(runtime.block_on(future)),
            None => Err(LegacyError::Other("the SQL Server connection is shut down".to_string())),
        }
    }
}

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl fmt::Debug for MssqlConnection {
    // Not derived: the config holds the credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MssqlConnection")
            .field("target", &self.target)
            .field("command_timeout", &self.command_timeout)
            .field("connected", &self.client.is_some())
            .finish()
    }
}

impl MssqlConnection {
    /// Connects with an ADO.NET connection string
    /// (`server=tcp:host,1433;user=millrace;database=erp;encrypt=true;TrustServerCertificate=false`).
    /// `password` overrides one in the string, so the string can live in the config file and the
    /// password in a secret. TLS follows the string's `encrypt` / `TrustServerCertificate` /
    /// `TrustServerCertificateCA`; `Connect Timeout` and `Command Timeout` (seconds, 0 = none) are
    /// honoured, defaulting to [`DEFAULT_CONNECT_TIMEOUT`] and [`DEFAULT_COMMAND_TIMEOUT`].
    /// Connects at once, so a wrong password or host shows at startup.
    pub fn connect(ado_connection_string: &str, password: Option<&str>) -> Result<MssqlConnection, LegacyError> {
        let settings = ConnectSettings::parse(ado_connection_string, password)?;
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| LegacyError::Connect {
                target: settings.target.clone(),
                message: format!("cannot start an I/O runtime: {e}"),
                transient: false,
            })?;
        let mut connection = MssqlConnection {
            runtime: OwnRuntime(Some(runtime)),
            config: settings.config,
            target: settings.target,
            connect_timeout: settings.connect_timeout,
            command_timeout: settings.command_timeout,
            client: None,
        };
        connection.ensure_connected()?;
        Ok(connection)
    }

    /// `host:port/database`, for logs.
    pub fn target(&self) -> &str {
        &self.target
    }

    fn ensure_connected(&mut self) -> Result<(), LegacyError> {
        if self.client.is_none() {
            let client = self.runtime.block_on(open_client(&self.config, self.connect_timeout))?.map_err(|e| {
                LegacyError::Connect {
                    target: self.target.clone(),
                    message: e.to_string(),
                    transient: is_transient(&e),
                }
            })?;
            tracing::debug!(target = %self.target, "connected to SQL Server");
            self.client = Some(client);
        }
        Ok(())
    }

    fn prepare(table: &str, sql: &str, params: &[Value]) -> Result<(String, Vec<ColumnData<'static>>), LegacyError> {
        let error = |message: String| LegacyError::Query {
            table: table.to_string(),
            sql: sql.to_string(),
            message,
            transient: false,
        };
        let (translated, placeholders) = translate_placeholders(sql);
        if placeholders != params.len() {
            return Err(error(format!(
                "the statement has {placeholders} placeholders but {} values were given",
                params.len()
            )));
        }
        let binds = params
            .iter()
            .enumerate()
            .map(|(i, value)| value_to_param(value).map_err(|e| error(format!("parameter {}: {e}", i + 1))))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((translated, binds))
    }

    /// The result of a call on the session. After an error other than one the server reported
    /// for the statement, drops the session (it may be mid-response) so the next call reconnects.
    fn settle<T>(&mut self, table: &str, sql: &str, outcome: Result<T, Failure>) -> Result<T, LegacyError> {
        match outcome {
            Ok(value) => Ok(value),
            Err(Failure::Driver(e)) => {
                if !matches!(e, tiberius::error::Error::Server(_)) {
                    self.client = None;
                }
                Err(LegacyError::Query {
                    table: table.to_string(),
                    sql: sql.to_string(),
                    message: e.to_string(),
                    transient: is_transient(&e),
                })
            }
            Err(Failure::Callback(e)) => {
                // Reconnecting is cheaper than draining the rest of a large result on the next call.
                self.client = None;
                Err(e)
            }
        }
    }

    fn no_session(&self) -> LegacyError {
        LegacyError::Other(format!("no session to {}", self.target))
    }

    /// Runs a statement that returns no rows (DDL, `INSERT`, `UPDATE`, …) with `?` placeholders,
    /// and returns the number of rows it affected.
    pub fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, LegacyError> {
        let (translated, binds) = Self::prepare("(statement)", sql, params)?;
        self.ensure_connected()?;
        let Some(client) = self.client.as_mut() else { return Err(self.no_session()) };
        let outcome = self.runtime.block_on(async move {
            let mut query = Query::new(translated);
            for bind in binds {
                query.bind(bind);
            }
            Ok::<_, Failure>(query.execute(client).await?.total())
        })?;
        self.settle("(statement)", sql, outcome)
    }

    /// Runs fixed SQL as a plain batch, without parameters and discarding any rows: statements
    /// that must not run inside `sp_executesql`, such as `BEGIN TRANSACTION` and `COMMIT` (a
    /// transaction opened in `sp_executesql` must also end there) or `USE`. Never splice values
    /// into it: use [`MssqlConnection::execute`] for those.
    pub fn execute_batch(&mut self, sql: &str) -> Result<(), LegacyError> {
        self.ensure_connected()?;
        let Some(client) = self.client.as_mut() else { return Err(self.no_session()) };
        let outcome = self.runtime.block_on(async move {
            client.simple_query(sql).await?.into_results().await?;
            Ok::<_, Failure>(())
        })?;
        self.settle("(batch)", sql, outcome)
    }
}

impl LegacyConnection for MssqlConnection {
    fn dialect(&self) -> Dialect {
        Dialect::MsSql
    }

    fn select(
        &mut self,
        table: &str,
        sql: &str,
        params: &[Value],
        on_batch: &mut dyn FnMut(RowBatch) -> Result<(), LegacyError>,
    ) -> Result<(), LegacyError> {
        let (translated, binds) = Self::prepare(table, sql, params)?;
        self.ensure_connected()?;
        let Some(client) = self.client.as_mut() else { return Err(self.no_session()) };
        let outcome = self.runtime.block_on(stream_query(client, translated, binds, on_batch))?;
        self.settle(table, sql, outcome)
    }
}

// ---- Polling ----------------------------------------------------------------------------------

/// The columns a poll of `table` reads: the mapped ones, or every column (`sys.columns`) when
/// the table names none.
fn polled_columns(conn: &mut dyn LegacyConnection, table: &LegacyTable) -> Result<Vec<String>, LegacyError> {
    if table.columns.is_empty() {
        table_columns(conn, &table.table)
    } else {
        Ok(table.columns.clone())
    }
}

/// A table's column names in table order (`sys.columns`), for callers that poll every column.
pub fn table_columns(conn: &mut dyn LegacyConnection, table: &str) -> Result<Vec<String>, LegacyError> {
    let (sql, params) = table_columns_query(table);
    let mut names = Vec::new();
    conn.select(table, &sql, &params, &mut |batch| {
        for row in batch.rows {
            match row {
                ReadRow::Ok(values) => match values.into_iter().next() {
                    Some(Value::Text(name)) => names.push(name),
                    other => {
                        return Err(LegacyError::Other(format!(
                            "{table}: sys.columns returned {other:?} as a column name"
                        )))
                    }
                },
                ReadRow::Bad { reason, .. } => {
                    return Err(LegacyError::Other(format!("{table}: cannot read a column name: {reason}")))
                }
            }
        }
        Ok(())
    })?;
    if names.is_empty() {
        return Err(LegacyError::Other(format!(
            "table {table} not found in the legacy database (or the login cannot see its columns)"
        )));
    }
    Ok(names)
}

fn split_row(row: ReadRow) -> (Vec<Value>, Option<(usize, String, String)>) {
    match row {
        ReadRow::Ok(values) => (values, None),
        ReadRow::Bad { values, column, raw, reason } => (values, Some((column, raw, reason))),
    }
}

fn key_of(values: &[Value], positions: &[usize]) -> String {
    let key: Vec<&Value> = positions.iter().map(|&i| values.get(i).unwrap_or(&Value::Null)).collect();
    key_text(&key)
}

fn no_key(table: &LegacyTable) -> LegacyError {
    LegacyError::Other(format!("{}: no key columns configured", table.table))
}

/// Changes and unreadable rows decoded from one batch.
type Decoded = (Vec<RowChange>, Vec<BadLegacyRow>);

fn rowversion_column(table: &LegacyTable) -> Result<&str, LegacyError> {
    match &table.strategy {
        Strategy::Rowversion { column } => Ok(column),
        other => {
            Err(LegacyError::Other(format!("{} is polled with `{}`, not `rowversion`", table.table, other.name())))
        }
    }
}

/// Turns the rowversion query's rows into changes, batch by batch, and tracks the highest
/// version read.
struct RowversionDecoder {
    table: String,
    name: TableName,
    /// The selected columns, in order, without the version column.
    selected: Vec<String>,
    key_positions: Vec<usize>,
    row_columns: Arc<[String]>,
    op: Op,
    newest: i64,
}

impl RowversionDecoder {
    /// The decoder, its query and the query's parameters (the last version and the bound, as
    /// 8 bytes each).
    fn new(
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

    fn decode(&mut self, batch: RowBatch) -> Result<Decoded, LegacyError> {
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
fn rowversion_bound(conn: &mut dyn LegacyConnection, table: &str) -> Result<i64, LegacyError> {
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
    let mut changes = Vec::new();
    let mut bad = Vec::new();
    conn.select(&table.table, &sql, &params, &mut |batch| {
        let (c, b) = decoder.decode(batch)?;
        changes.extend(c);
        bad.extend(b);
        Ok(())
    })?;
    Ok((changes, bad, Some(decoder.newest)))
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

/// The first row of a one-row query.
fn single_row(
    conn: &mut dyn LegacyConnection,
    table: &str,
    sql: &str,
    params: &[Value],
) -> Result<Vec<Value>, LegacyError> {
    let mut first = None;
    conn.select(table, sql, params, &mut |batch| {
        if first.is_none() {
            first = batch.rows.into_iter().next();
        }
        Ok(())
    })?;
    match first {
        Some(ReadRow::Ok(values)) => Ok(values),
        Some(ReadRow::Bad { reason, .. }) => Err(LegacyError::Other(format!("{table}: `{sql}`: {reason}"))),
        None => Err(LegacyError::Other(format!("{table}: `{sql}` returned no row"))),
    }
}

fn optional_int(value: Option<&Value>, what: &str, table: &str) -> Result<Option<i64>, LegacyError> {
    match value {
        Some(Value::Int(n)) => Ok(Some(*n)),
        Some(Value::Null) | None => Ok(None),
        Some(other) => Err(LegacyError::Other(format!("{table}: {what} came back as {other:?}, not a number"))),
    }
}

fn current_version(conn: &mut dyn LegacyConnection, table: &str) -> Result<i64, LegacyError> {
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
fn min_valid_version(conn: &mut dyn LegacyConnection, table: &str) -> Result<Option<i64>, LegacyError> {
    let (sql, params) = change_tracking_min_valid_query(table);
    let row = single_row(conn, table, &sql, &params)?;
    if optional_int(row.first(), "OBJECT_ID", table)?.is_none() {
        return Err(LegacyError::Other(format!("table {table} not found in the legacy database")));
    }
    optional_int(row.get(1), "CHANGE_TRACKING_MIN_VALID_VERSION", table)
}

fn check_version(conn: &mut dyn LegacyConnection, table: &str, last: i64) -> Result<ChangeTrackingCheck, LegacyError> {
    let min_valid = min_valid_version(conn, table)?;
    check_for_table(table, last, min_valid).map_err(LegacyError::Other)
}

/// Turns the change-tracking query's rows into changes, batch by batch.
struct ChangeTrackingDecoder {
    table: String,
    name: TableName,
    /// Where the key values sit in a result row (right after the three SYS_CHANGE columns).
    key_positions: Vec<usize>,
    /// For each column of the row image, where it sits in a result row.
    layout: Vec<usize>,
    width: usize,
    after_names: Arc<[String]>,
    key_names: Arc<[String]>,
}

impl ChangeTrackingDecoder {
    /// The decoder and its query.
    fn new(table: &LegacyTable, columns: &[String]) -> (Self, String) {
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

    fn decode(&self, batch: RowBatch) -> Result<Decoded, LegacyError> {
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
enum ChangeTrackingStart {
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

fn change_tracking_start(
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
    let mut changes = Vec::new();
    let mut bad = Vec::new();
    conn.select(&table.table, &sql, &params, &mut |batch| {
        let (c, b) = decoder.decode(batch)?;
        changes.extend(c);
        bad.extend(b);
        Ok(())
    })?;
    let check = check_version(conn, &table.table, last)?;
    if check != ChangeTrackingCheck::Ok {
        return Ok(ChangeTrackingPoll { changes: Vec::new(), bad: Vec::new(), version: current, check });
    }
    Ok(ChangeTrackingPoll { changes, bad, version: current, check })
}

// ---- Under the poller ---------------------------------------------------------------------------

type Emit<'e> = &'e mut (dyn FnMut(LegacyItem) -> std::io::Result<()> + Send);

/// Runs `work` on the connection on a blocking thread (the connection blocks), handing the
/// connection back.
async fn on_blocking_thread<T: Send + 'static>(
    mut conn: Box<dyn LegacyConnection>,
    work: impl FnOnce(&mut dyn LegacyConnection) -> Result<T, LegacyError> + Send + 'static,
) -> Result<(T, Box<dyn LegacyConnection>), PollError> {
    let (result, conn) = tokio::task::spawn_blocking(move || {
        let result = work(conn.as_mut());
        (result, conn)
    })
    .await
    .map_err(|e| LegacyError::Other(format!("legacy connection thread: {e}")))?;
    Ok((result?, conn))
}

/// Runs a change query through the reader (rows stream through a bounded channel, so a first
/// read of a large table never sits in memory) and emits what `decode` makes of each batch.
async fn stream_changes(
    conn: Box<dyn LegacyConnection>,
    table: &str,
    sql: String,
    params: Vec<Value>,
    mut decode: impl FnMut(RowBatch) -> Result<Decoded, LegacyError>,
    emit: Emit<'_>,
) -> Result<Box<dyn LegacyConnection>, PollError> {
    let (mut rx, handle) = reader::spawn(conn, ReadPlan::Query { table: table.to_string(), sql, params });
    let mut failure = None;
    while let Some(batch) = rx.recv().await {
        match batch.and_then(&mut decode) {
            Ok((changes, bad)) => {
                for item in bad {
                    emit(LegacyItem::Bad(item))?;
                }
                for change in changes {
                    emit(LegacyItem::Change(change))?;
                }
            }
            Err(error) => {
                failure = Some(error);
                break;
            }
        }
    }
    drop(rx);
    let conn = handle.await.map_err(|e| LegacyError::Other(format!("reader thread: {e}")))?;
    match failure {
        Some(error) => Err(error.into()),
        None => Ok(conn),
    }
}

/// One poll of a `rowversion` or `change_tracking` table for [`super::poller::LegacyPoller`]:
/// reads the stored version (`legacy_checkpoint.watermark`, the version as a decimal), emits
/// the changes, and returns the version to save once they are handled.
///
/// A change-tracking table whose stored version is too old is an error (not transient) that
/// says a re-snapshot (`millrace backfill`) is needed; a backfill must clear the table's
/// `change_tracking` checkpoint before copying rows, so the next poll starts from the version
/// current before the copy.
pub async fn poll_with_state(
    conn: Box<dyn LegacyConnection>,
    store: &StateStore,
    table: &LegacyTable,
    emit: Emit<'_>,
) -> Result<(PendingSave, Box<dyn LegacyConnection>), PollError> {
    let strategy = table.strategy.name();
    let checkpoint = store.checkpoint(&table.table, strategy).await?;
    let last = match checkpoint.watermark.as_deref() {
        None => None,
        Some(text) => Some(text.trim().parse::<i64>().map_err(|_| {
            LegacyError::Other(format!("{}: the stored {strategy} version {text:?} is not a number", table.table))
        })?),
    };
    let (version, conn) = match &table.strategy {
        Strategy::Rowversion { .. } => {
            let name = table.table.clone();
            let polled = table.clone();
            let ((columns, bound), conn) = on_blocking_thread(conn, move |c| {
                let columns = polled_columns(c, &polled)?;
                // The bound last, just before the rows are read.
                Ok((columns, rowversion_bound(c, &name)?))
            })
            .await?;
            let (mut decoder, sql, params) = RowversionDecoder::new(table, &columns, last, bound)?;
            let conn = stream_changes(conn, &table.table, sql, params, |batch| decoder.decode(batch), emit).await?;
            (decoder.newest, conn)
        }
        Strategy::ChangeTracking => {
            let owned = table.clone();
            let (start, conn) = on_blocking_thread(conn, move |c| change_tracking_start(c, &owned, last)).await?;
            match start {
                ChangeTrackingStart::Done(poll) if poll.resnapshot_needed() => {
                    return Err(LegacyError::Other(format!("{}: {}", table.table, poll.check)).into());
                }
                ChangeTrackingStart::Done(poll) => {
                    tracing::info!(
                        table = %table.table,
                        version = poll.version,
                        "change tracking starts at the current version; the existing rows come from `millrace backfill`"
                    );
                    (poll.version, conn)
                }
                ChangeTrackingStart::Read { decoder, sql, params, last, current } => {
                    let conn =
                        stream_changes(conn, &table.table, sql, params, |batch| decoder.decode(batch), emit).await?;
                    let name = table.table.clone();
                    let (check, conn) = on_blocking_thread(conn, move |c| check_version(c, &name, last)).await?;
                    if check != ChangeTrackingCheck::Ok {
                        return Err(LegacyError::Other(format!("{}: {check}", table.table)).into());
                    }
                    (current, conn)
                }
            }
        }
        other => {
            return Err(
                LegacyError::Other(format!("{}: `{}` is not a SQL Server strategy", table.table, other.name())).into()
            )
        }
    };
    let outcome = SaveOutcome { watermark: Some(version.to_string()), ..SaveOutcome::default() };
    Ok((PendingSave { table: table.table.clone(), strategy, outcome }, conn))
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use chrono::{NaiveDate, TimeZone};
    use tiberius::time::{Date, DateTime as TdsDateTime, DateTime2, DateTimeOffset, SmallDateTime, Time};
    use tiberius::xml::XmlData;
    use tiberius::Uuid;

    use super::*;

    fn strings(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn text(s: &str) -> Value {
        Value::Text(s.to_string())
    }

    fn ts(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, nano: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d).unwrap().and_hms_nano_opt(h, mi, s, nano).unwrap()
    }

    // ---- placeholders ----

    #[test]
    fn placeholders_are_numbered_outside_literals_identifiers_and_comments() {
        let (sql, n) = translate_placeholders("SELECT * FROM [T] WHERE [A] > ? AND [B] = ?");
        assert_eq!(sql, "SELECT * FROM [T] WHERE [A] > @P1 AND [B] = @P2");
        assert_eq!(n, 2);

        let (sql, n) = translate_placeholders(
            "SELECT '?', N'it''s ?', [col?]]x], \"q?\"\"\" FROM T -- why?\nWHERE a = ? /* c? /* nested? */ still? */ AND b = ?",
        );
        assert_eq!(
            sql,
            "SELECT '?', N'it''s ?', [col?]]x], \"q?\"\"\" FROM T -- why?\nWHERE a = @P1 /* c? /* nested? */ still? */ AND b = @P2"
        );
        assert_eq!(n, 2);

        assert_eq!(translate_placeholders("SELECT 1"), ("SELECT 1".to_string(), 0));
        // Ten and more placeholders keep their numbers apart.
        let (sql, n) = translate_placeholders(&["?"; 11].join(","));
        assert_eq!(n, 11);
        assert!(sql.ends_with("@P10,@P11"), "{sql}");
    }

    // ---- SQL ----

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

    #[test]
    fn integers_bits_and_floats() {
        assert_eq!(column_to_value(&ColumnData::U8(Some(255))), Ok(Value::Int(255)));
        assert_eq!(column_to_value(&ColumnData::I16(Some(-7))), Ok(Value::Int(-7)));
        assert_eq!(column_to_value(&ColumnData::I32(Some(i32::MIN))), Ok(Value::Int(i64::from(i32::MIN))));
        assert_eq!(column_to_value(&ColumnData::I64(Some(i64::MAX))), Ok(Value::Int(i64::MAX)));
        assert_eq!(column_to_value(&ColumnData::Bit(Some(true))), Ok(Value::Bool(true)));
        assert_eq!(column_to_value(&ColumnData::F32(Some(1.5))), Ok(Value::Float(1.5)));
        assert_eq!(column_to_value(&ColumnData::F64(Some(-2.25))), Ok(Value::Float(-2.25)));
    }

    #[test]
    fn strings_keep_char_padding_and_guids_are_upper_case() {
        assert_eq!(column_to_value(&ColumnData::String(Some("A100    ".into()))), Ok(text("A100    ")));
        assert_eq!(column_to_value(&ColumnData::String(Some("Größe ½".into()))), Ok(text("Größe ½")));
        let guid = Uuid::parse_str("6f9619ff-8b86-d011-b42d-00c04fc964ff").unwrap();
        assert_eq!(column_to_value(&ColumnData::Guid(Some(guid))), Ok(text("6F9619FF-8B86-D011-B42D-00C04FC964FF")));
        let xml = XmlData::new("<a b=\"1\"/>");
        assert_eq!(column_to_value(&ColumnData::Xml(Some(Cow::Owned(xml)))), Ok(text("<a b=\"1\"/>")));
    }

    #[test]
    fn binary_and_rowversion_are_bytes() {
        let rv = [0u8, 0, 0, 0, 0, 0, 0x07, 0xD1];
        assert_eq!(column_to_value(&ColumnData::Binary(Some(Cow::Borrowed(&rv[..])))), Ok(Value::Bytes(rv.to_vec())));
    }

    #[test]
    fn numerics_are_exact_decimals() {
        let n = Numeric::new_with_scale(-123_456_789_012_345_678_901_234_567_890_123_456, 4);
        assert_eq!(
            column_to_value(&ColumnData::Numeric(Some(n))),
            Ok(Value::Decimal("-12345678901234567890123456789012.3456".parse().unwrap()))
        );
        let n = Numeric::new_with_scale(150, 2);
        assert_eq!(column_to_value(&ColumnData::Numeric(Some(n))).unwrap(), Value::Decimal("1.50".parse().unwrap()));
        // 39 digits: a server can send them (17 bytes hold more than 10^38), a Decimal cannot hold them.
        let too_wide = Numeric::new_with_scale(10i128.pow(38), 0);
        let error = column_to_value(&ColumnData::Numeric(Some(too_wide))).unwrap_err();
        assert!(error.contains("38 digits"), "{error}");
    }

    #[test]
    fn money_is_an_exact_decimal_when_the_type_is_known() {
        let read = |ty, amount: f64| typed_column_to_value(ty, &ColumnData::F64(Some(amount)));
        assert_eq!(read(ColumnType::Money, 1234.5678), Ok(Value::Decimal("1234.5678".parse().unwrap())));
        assert_eq!(read(ColumnType::Money, 0.1), Ok(Value::Decimal("0.1000".parse().unwrap())));
        assert_eq!(read(ColumnType::Money4, -214_748.364_8), Ok(Value::Decimal("-214748.3648".parse().unwrap())));
        // The largest amounts tiberius's f64 still carries exactly, and the first it may not.
        assert_eq!(
            read(ColumnType::Money, 225_179_981_368.524_7),
            Ok(Value::Decimal("225179981368.5247".parse().unwrap()))
        );
        assert!(read(ColumnType::Money, 922_337_203_685_477.5).unwrap_err().contains("DECIMAL(19,4)"));
        // A float column stays a float.
        assert_eq!(read(ColumnType::Float8, 0.1), Ok(Value::Float(0.1)));
        assert_eq!(typed_column_to_value(ColumnType::Money, &ColumnData::F64(None)), Ok(Value::Null));
    }

    #[test]
    fn dates_and_times() {
        // 2024-03-15 is day 738_959 after 0001-01-01.
        let days = NaiveDate::from_ymd_opt(2024, 3, 15)
            .unwrap()
            .signed_duration_since(NaiveDate::from_ymd_opt(1, 1, 1).unwrap())
            .num_days() as u32;
        assert_eq!(
            column_to_value(&ColumnData::Date(Some(Date::new(days)))),
            Ok(Value::Date(NaiveDate::from_ymd_opt(2024, 3, 15).unwrap()))
        );
        assert_eq!(
            column_to_value(&ColumnData::Date(Some(Date::new(0)))),
            Ok(Value::Date(NaiveDate::from_ymd_opt(1, 1, 1).unwrap()))
        );

        // time(7): 13:45:30.1234567
        let increments = (13 * 3600 + 45 * 60 + 30) * 10_000_000u64 + 1_234_567;
        assert_eq!(
            column_to_value(&ColumnData::Time(Some(Time::new(increments, 7)))),
            Ok(Value::Time(NaiveTime::from_hms_nano_opt(13, 45, 30, 123_456_700).unwrap()))
        );
        // time(0)
        assert_eq!(
            column_to_value(&ColumnData::Time(Some(Time::new(86_399, 0)))),
            Ok(Value::Time(NaiveTime::from_hms_opt(23, 59, 59).unwrap()))
        );
        assert!(column_to_value(&ColumnData::Time(Some(Time::new(86_400, 0)))).is_err());

        // datetime2(6), as the demo schema's LAST_UPD
        let dt2 = DateTime2::new(Date::new(days), Time::new((8 * 3600) * 1_000_000 + 5, 6));
        assert_eq!(
            column_to_value(&ColumnData::DateTime2(Some(dt2))),
            Ok(Value::Timestamp(ts(2024, 3, 15, 8, 0, 0, 5_000)))
        );
    }

    #[test]
    fn legacy_datetime_ticks_round_to_what_sql_server_compares() {
        // 1900-01-01 + 45_000 days = 2023-03-17; 12:00:00 + 2/300 s (shown as .007, compared as .0066667).
        let ticks = 12 * 3600 * 300 + 2;
        assert_eq!(
            column_to_value(&ColumnData::DateTime(Some(TdsDateTime::new(45_000, ticks)))),
            Ok(Value::Timestamp(ts(2023, 3, 17, 12, 0, 0, 6_666_700)))
        );
        // Before 1900 (days are negative down to 1753).
        assert_eq!(
            column_to_value(&ColumnData::DateTime(Some(TdsDateTime::new(-53_690, 0)))),
            Ok(Value::Timestamp(ts(1753, 1, 1, 0, 0, 0, 0)))
        );
        // The last tick of a day stays on that day.
        assert_eq!(
            column_to_value(&ColumnData::DateTime(Some(TdsDateTime::new(0, 300 * 86_400 - 1)))),
            Ok(Value::Timestamp(ts(1900, 1, 1, 23, 59, 59, 996_666_700)))
        );
        assert!(column_to_value(&ColumnData::DateTime(Some(TdsDateTime::new(0, 300 * 86_400)))).is_err());
        // smalldatetime: days and minutes
        assert_eq!(
            column_to_value(&ColumnData::SmallDateTime(Some(SmallDateTime::new(45_000, 61)))),
            Ok(Value::Timestamp(ts(2023, 3, 17, 1, 1, 0, 0)))
        );
        assert!(column_to_value(&ColumnData::SmallDateTime(Some(SmallDateTime::new(0, 1440)))).is_err());
    }

    #[test]
    fn datetimeoffset_is_the_utc_instant() {
        // 2024-03-15T10:00:00Z written as 12:00+02:00: the wire carries 10:00 and +120.
        let days = NaiveDate::from_ymd_opt(2024, 3, 15)
            .unwrap()
            .signed_duration_since(NaiveDate::from_ymd_opt(1, 1, 1).unwrap())
            .num_days() as u32;
        let dto = DateTimeOffset::new(DateTime2::new(Date::new(days), Time::new(10 * 3600 * 10_000_000, 7)), 120);
        assert_eq!(
            column_to_value(&ColumnData::DateTimeOffset(Some(dto))),
            Ok(Value::TimestampTz(Utc.with_ymd_and_hms(2024, 3, 15, 10, 0, 0).unwrap()))
        );
    }

    #[test]
    fn null_of_any_type_is_null() {
        let nulls = [
            ColumnData::U8(None),
            ColumnData::I16(None),
            ColumnData::I32(None),
            ColumnData::I64(None),
            ColumnData::F32(None),
            ColumnData::F64(None),
            ColumnData::Bit(None),
            ColumnData::String(None),
            ColumnData::Guid(None),
            ColumnData::Binary(None),
            ColumnData::Numeric(None),
            ColumnData::Xml(None),
            ColumnData::DateTime(None),
            ColumnData::SmallDateTime(None),
            ColumnData::Time(None),
            ColumnData::Date(None),
            ColumnData::DateTime2(None),
            ColumnData::DateTimeOffset(None),
        ];
        for null in &nulls {
            assert_eq!(column_to_value(null), Ok(Value::Null), "{null:?}");
        }
    }

    #[test]
    fn a_bad_cell_makes_a_bad_row_with_the_other_cells_read() {
        let cells = [
            ColumnData::String(Some("A100  ".into())),
            ColumnData::Numeric(Some(Numeric::new_with_scale(10i128.pow(38), 0))),
            ColumnData::I32(Some(7)),
        ];
        let types = [ColumnType::BigChar, ColumnType::Numericn, ColumnType::Int4];
        let row = read_cells(types.iter().copied().zip(cells.iter()));
        match row {
            ReadRow::Bad { values, column, raw, reason } => {
                assert_eq!(values, vec![text("A100  "), Value::Null, Value::Int(7)]);
                assert_eq!(column, 1);
                assert_eq!(raw, "100000000000000000000000000000000000000e-0");
                assert!(reason.contains("38 digits"), "{reason}");
            }
            other => panic!("expected a bad row, got {other:?}"),
        }
        let ok = read_cells([(ColumnType::Int4, &ColumnData::I32(Some(1)))]);
        assert_eq!(ok, ReadRow::Ok(vec![Value::Int(1)]));
    }

    // ---- values bound ----

    #[test]
    fn values_become_parameters() {
        assert_eq!(value_to_param(&Value::Int(5)), Ok(ColumnData::I64(Some(5))));
        assert_eq!(value_to_param(&Value::Bool(false)), Ok(ColumnData::Bit(Some(false))));
        assert_eq!(value_to_param(&Value::Float(0.5)), Ok(ColumnData::F64(Some(0.5))));
        assert_eq!(value_to_param(&text("A100")), Ok(ColumnData::String(Some("A100".into()))));
        assert_eq!(value_to_param(&Value::Json("{}".into())), Ok(ColumnData::String(Some("{}".into()))));
        assert_eq!(value_to_param(&Value::Null), Ok(ColumnData::String(None)));
        assert_eq!(
            value_to_param(&Value::Bytes(2001i64.to_be_bytes().to_vec())),
            Ok(ColumnData::Binary(Some(vec![0, 0, 0, 0, 0, 0, 0x07, 0xD1].into())))
        );
        match value_to_param(&Value::Decimal("-12.3400".parse().unwrap())) {
            Ok(ColumnData::Numeric(Some(n))) => assert_eq!((n.value(), n.scale()), (-123_400, 4)),
            other => panic!("{other:?}"),
        }
        let t = ts(2024, 3, 15, 8, 30, 0, 123_456_700);
        match value_to_param(&Value::Timestamp(t)) {
            Ok(ColumnData::DateTime2(Some(dt2))) => {
                assert_eq!(column_to_value(&ColumnData::DateTime2(Some(dt2))), Ok(Value::Timestamp(t)));
            }
            other => panic!("{other:?}"),
        }
        let tz = Utc.with_ymd_and_hms(2024, 3, 15, 8, 30, 0).unwrap();
        assert!(matches!(value_to_param(&Value::TimestampTz(tz)), Ok(ColumnData::DateTime2(Some(_)))));
        let d = NaiveDate::from_ymd_opt(2024, 3, 15).unwrap();
        match value_to_param(&Value::Date(d)) {
            Ok(date @ ColumnData::Date(Some(_))) => assert_eq!(column_to_value(&date), Ok(Value::Date(d))),
            other => panic!("{other:?}"),
        }
        let time = NaiveTime::from_hms_opt(23, 59, 59).unwrap();
        match value_to_param(&Value::Time(time)) {
            Ok(param @ ColumnData::Time(Some(_))) => assert_eq!(column_to_value(&param), Ok(Value::Time(time))),
            other => panic!("{other:?}"),
        }
        assert!(value_to_param(&Value::Unchanged).is_err());
        assert!(value_to_param(&Value::Date(NaiveDate::from_ymd_opt(-5, 1, 1).unwrap())).is_err());
    }

    // ---- batching ----

    fn tds_row(n: i32) -> tiberius::Row {
        tiberius::Row::builder()
            .column("ID", ColumnType::Int4, ColumnData::I32(Some(n)))
            .column("PRICE", ColumnType::Money, ColumnData::F64(Some(1.5)))
            .build()
    }

    fn tds_columns() -> Vec<Column> {
        vec![Column::new("ID".into(), ColumnType::Int4), Column::new("PRICE".into(), ColumnType::Money)]
    }

    #[test]
    fn rows_are_batched_and_every_result_set_is_delivered() {
        let mut batcher = RowBatcher::new(2);
        let mut batches = Vec::new();
        batches.extend(batcher.start(&tds_columns()));
        for n in 0..5 {
            batches.extend(batcher.push(&tds_row(n)));
        }
        batches.extend(batcher.finish());
        assert_eq!(batches.iter().map(|b| b.rows.len()).collect::<Vec<_>>(), vec![2, 2, 1]);
        assert_eq!(&*batches[0].columns, &strings(&["ID", "PRICE"])[..]);
        assert_eq!(batches[2].rows[0], ReadRow::Ok(vec![Value::Int(4), Value::Decimal("1.5000".parse().unwrap())]));

        // A full last batch is not followed by an empty one.
        let mut batcher = RowBatcher::new(2);
        let mut batches = Vec::new();
        batches.extend(batcher.start(&tds_columns()));
        batches.extend(batcher.push(&tds_row(0)));
        batches.extend(batcher.push(&tds_row(1)));
        batches.extend(batcher.finish());
        assert_eq!(batches.len(), 1);

        // An empty result still tells its columns; a second result set flushes the first.
        let mut batcher = RowBatcher::new(BATCH_ROWS);
        let mut batches = Vec::new();
        batches.extend(batcher.start(&tds_columns()));
        batches.extend(batcher.push(&tds_row(0)));
        batches.extend(batcher.start(&[Column::new("X".into(), ColumnType::Int4)]));
        batches.extend(batcher.finish());
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[0].rows.len(), 1);
        assert!(batches[1].rows.is_empty());
        assert_eq!(&*batches[1].columns, &strings(&["X"])[..]);

        // No result set at all (a statement without rows): nothing.
        assert!(RowBatcher::new(2).finish().is_none());
    }

    // ---- connection settings ----

    #[test]
    fn connection_string_settings() {
        let s =
            ConnectSettings::parse("server=tcp:db.example,1433;database=erp;user=mr;password=S3cret!", None).unwrap();
        assert_eq!(s.target, "db.example:1433/erp");
        assert_eq!(s.config.get_command_timeout(), Some(DEFAULT_COMMAND_TIMEOUT));
        assert_eq!(s.config.get_handshake_timeout(), Some(DEFAULT_CONNECT_TIMEOUT));
        assert_eq!(s.connect_timeout, Some(DEFAULT_CONNECT_TIMEOUT));

        let s = ConnectSettings::parse(
            "server=tcp:db.example,1433;Initial Catalog=erp;Command Timeout=0;Connect Timeout=5;TrustServerCertificate=true",
            None,
        )
        .unwrap();
        assert_eq!(s.command_timeout, None);
        assert_eq!(s.config.get_command_timeout(), None);
        assert_eq!(s.config.get_handshake_timeout(), Some(Duration::from_secs(5)));

        let s =
            ConnectSettings::parse("server=tcp:db,1433;user id=mr;Command Timeout=90", Some("pw;with=special'chars"))
                .unwrap();
        assert_eq!(s.command_timeout, Some(Duration::from_secs(90)));
        assert_eq!(s.target, "db:1433");
    }

    #[test]
    fn connection_errors_never_show_the_password() {
        let cases = [
            ("server=tcp:db,notaport;user=mr;password=TopSecret42", None),
            ("server=tcp:db,1433;user=mr;password='TopSecret42", None),
            ("server=tcp:db,1433;password=TopSecret42", Some("TopSecret42")),
            ("server=tcp:db,1433;user=mr;password=TopSecret42;Command Timeout=soon", None),
        ];
        for (ado, password) in cases {
            let error = ConnectSettings::parse(ado, password).err().expect(ado);
            let message = error.to_string();
            assert!(!message.contains("TopSecret42"), "{message}");
            assert!(!error.is_transient(), "{message}");
        }
        let error = ConnectSettings::parse("server=tcp:db,1433;password=x", Some("y")).err().unwrap();
        assert!(error.to_string().contains("User ID"), "{error}");
    }

    #[test]
    fn ado_strings_split_like_tiberius_splits_them() {
        let pairs = ado_pairs(" Server = tcp:h,1 ; User ID=mr;Password='a;b''c' ;pwd=\"x\"\"y\";App={p;q};;").unwrap();
        assert_eq!(
            pairs,
            vec![
                ("server".to_string(), "tcp:h,1".to_string()),
                ("user id".to_string(), "mr".to_string()),
                ("password".to_string(), "a;b'c".to_string()),
                ("pwd".to_string(), "x\"y".to_string()),
                ("app".to_string(), "p;q".to_string()),
            ]
        );
        assert!(ado_pairs("server").is_err());
        assert!(ado_pairs("a='x' y").is_err());
    }

    #[test]
    fn io_failures_and_deadlocks_are_transient() {
        let io = tiberius::error::Error::Io { kind: std::io::ErrorKind::ConnectionReset, message: "reset".into() };
        assert!(is_transient(&io));
        assert!(!is_transient(&tiberius::error::Error::Tls("bad certificate".into())));
        assert!(!is_transient(&tiberius::error::Error::Conversion("x".into())));
    }

    // ---- polling through a fake connection ----

    /// Canned results by a piece of the SQL (successive calls take successive results; the last
    /// one repeats), recording every call. A fake is the only way to drive the polls here: no SQL
    /// Server runs on millrace's machines (`tests/legacy_mssql.rs` runs them against a real one).
    struct FakeConnection {
        responses: Vec<(&'static str, VecDeque<Vec<RowBatch>>)>,
        calls: Vec<(String, String, Vec<Value>)>,
    }

    impl FakeConnection {
        fn new() -> Self {
            FakeConnection { responses: Vec::new(), calls: Vec::new() }
        }

        fn on(self, sql_part: &'static str, columns: &[&str], rows: Vec<Vec<Value>>) -> Self {
            self.on_batches(sql_part, vec![batch(columns, rows)])
        }

        fn on_batches(mut self, sql_part: &'static str, batches: Vec<RowBatch>) -> Self {
            match self.responses.iter_mut().find(|(part, _)| *part == sql_part) {
                Some((_, results)) => results.push_back(batches),
                None => self.responses.push((sql_part, VecDeque::from([batches]))),
            }
            self
        }

        fn sql_of_calls(&self) -> Vec<&str> {
            self.calls.iter().map(|(_, sql, _)| sql.as_str()).collect()
        }
    }

    fn batch(columns: &[&str], rows: Vec<Vec<Value>>) -> RowBatch {
        RowBatch { columns: strings(columns).into(), rows: rows.into_iter().map(ReadRow::Ok).collect() }
    }

    impl LegacyConnection for FakeConnection {
        fn dialect(&self) -> Dialect {
            Dialect::MsSql
        }

        fn select(
            &mut self,
            table: &str,
            sql: &str,
            params: &[Value],
            on_batch: &mut dyn FnMut(RowBatch) -> Result<(), LegacyError>,
        ) -> Result<(), LegacyError> {
            self.calls.push((table.to_string(), sql.to_string(), params.to_vec()));
            let Some((_, results)) = self.responses.iter_mut().find(|(part, _)| sql.contains(part)) else {
                return Err(LegacyError::Other(format!("fake: unexpected SQL {sql}")));
            };
            let batches = if results.len() > 1 { results.pop_front().unwrap() } else { results[0].clone() };
            for batch in batches {
                on_batch(batch)?;
            }
            Ok(())
        }
    }

    fn rowversion_table() -> LegacyTable {
        LegacyTable {
            table: "dbo.ITEM_MASTER".into(),
            key: strings(&["ITEM_NO"]),
            strategy: Strategy::Rowversion { column: "RV".into() },
            delete_scan_interval: None,
            chunk_size: 1000,
            columns: Vec::new(),
        }
    }

    fn change_tracking_table() -> LegacyTable {
        LegacyTable { strategy: Strategy::ChangeTracking, ..rowversion_table() }
    }

    const RV_COLUMNS: [&str; 4] = ["ITEM_NO", "DESCRIPTION", "RV", "__mr_version"];

    fn rv(n: i64) -> Value {
        Value::Bytes(n.to_be_bytes().to_vec())
    }

    fn bounded(conn: FakeConnection, bound: i64) -> FakeConnection {
        conn.on("MIN_ACTIVE_ROWVERSION", &["min_active_rowversion"], vec![vec![Value::Int(bound)]])
    }

    fn item_columns(conn: FakeConnection) -> FakeConnection {
        conn.on("sys.columns", &["name"], vec![vec![text("ITEM_NO")], vec![text("DESCRIPTION")], vec![text("RV")]])
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

    const CT_COLUMNS: [&str; 7] = [
        "SYS_CHANGE_VERSION",
        "SYS_CHANGE_OPERATION",
        "SYS_CHANGE_CONTEXT",
        "ITEM_NO",
        "DESCRIPTION",
        "RV",
        "__mr_row_exists",
    ];

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
