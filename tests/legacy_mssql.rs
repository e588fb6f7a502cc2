//! The SQL Server strategies (`rowversion`, `change_tracking`) and type conversions against a
//! real SQL Server, when `MILLRACE_TEST_MSSQL` holds an ADO.NET connection string to a scratch
//! database, e.g. `server=tcp:localhost,1433;user=sa;password=…;TrustServerCertificate=true;database=legacy`.
//! The login needs CREATE TABLE, and ALTER DATABASE unless change tracking is already on for the
//! database. Each test works in tables of its own and drops them.
//!
//! Without the variable every test prints a SKIPPED line and passes: no SQL Server runs on
//! millrace's dev and CI machines, so these are run by hand against one (SQL Server 2016 or later).

use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{NaiveDate, TimeZone, Utc};
use millrace::config::{LegacyTable, Strategy};
use millrace::erp::mssql::{MssqlConnection, BATCH_ROWS, MILLRACE_CT_CONTEXT};
use millrace::erp::{LegacyConnection, LegacyError, LegacyWriter, ReadRow};
use millrace::model::{Op, Position, RowChange, Value};
use millrace::source::legacy::change_tracking::{poll_change_tracking, ChangeTrackingCheck};
use millrace::source::legacy::rowversion::poll_rowversion;

const ENV: &str = "MILLRACE_TEST_MSSQL";

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn connection_string(test: &str) -> Option<String> {
    match std::env::var(ENV) {
        Ok(s) if !s.trim().is_empty() => Some(s),
        _ => {
            eprintln!(
                "SKIPPED {test}: {ENV} not set (an ADO.NET connection string to a scratch SQL Server database, \
                 e.g. server=tcp:localhost,1433;user=sa;password=...;TrustServerCertificate=true;database=legacy); \
                 this SQL Server test did not run"
            );
            None
        }
    }
}

fn connect(ado: &str) -> MssqlConnection {
    MssqlConnection::connect(ado, None).unwrap_or_else(|e| panic!("connecting to SQL Server: {e}"))
}

fn exec(conn: &mut MssqlConnection, sql: &str, params: &[Value]) {
    conn.execute(sql, params).unwrap_or_else(|e| panic!("{sql}: {e}"));
}

fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

fn decimal(s: &str) -> Value {
    Value::Decimal(s.parse().unwrap())
}

/// A table of the test's own, with a rowversion column and change tracking, dropped at the end
/// (also when the test fails).
struct Scratch {
    ado: String,
    /// `dbo.MR_TEST_…`, as millrace is configured with it.
    name: String,
}

impl Scratch {
    fn create(ado: &str, conn: &mut MssqlConnection, what: &str) -> Scratch {
        let bare = format!("MR_TEST_{what}_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst));
        let scratch = Scratch { ado: ado.to_string(), name: format!("dbo.{bare}") };
        exec(conn, &format!("DROP TABLE IF EXISTS {}", scratch.quoted()), &[]);
        exec(
            conn,
            &format!(
                "CREATE TABLE {} (
                    ITEM_NO     CHAR(8)        NOT NULL CONSTRAINT PK_{bare} PRIMARY KEY,
                    DESCRIPTION NVARCHAR(40)   NOT NULL,
                    STD_COST    DECIMAL(18,4)  NOT NULL,
                    PRICE       MONEY          NULL,
                    LAST_UPD    DATETIME2(6)   NOT NULL DEFAULT SYSDATETIME(),
                    RV          ROWVERSION     NOT NULL
                )",
                scratch.quoted()
            ),
            &[],
        );
        exec(conn, &format!("CREATE UNIQUE INDEX IX_{bare}_RV ON {} (RV)", scratch.quoted()), &[]);
        exec(
            conn,
            &format!("ALTER TABLE {} ENABLE CHANGE_TRACKING WITH (TRACK_COLUMNS_UPDATED = OFF)", scratch.quoted()),
            &[],
        );
        scratch
    }

    fn quoted(&self) -> String {
        self.name.split('.').map(|p| format!("[{p}]")).collect::<Vec<_>>().join(".")
    }

    fn rowversion(&self) -> LegacyTable {
        LegacyTable {
            table: self.name.clone(),
            key: vec!["ITEM_NO".to_string()],
            strategy: Strategy::Rowversion { column: "RV".to_string() },
            delete_scan_interval: None,
            chunk_size: 1000,
            columns: Vec::new(),
        }
    }

    fn change_tracking(&self) -> LegacyTable {
        LegacyTable { strategy: Strategy::ChangeTracking, ..self.rowversion() }
    }

    fn insert(&self, conn: &mut MssqlConnection, item: &str, description: &str) {
        exec(
            conn,
            &format!("INSERT INTO {} (ITEM_NO, DESCRIPTION, STD_COST, PRICE) VALUES (?, ?, ?, ?)", self.quoted()),
            &[text(item), text(description), decimal("12.5000"), decimal("19.99")],
        );
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Ok(mut conn) = MssqlConnection::connect(&self.ado, None) {
            let _ = conn.execute(&format!("DROP TABLE IF EXISTS {}", self.quoted()), &[]);
        }
    }
}

fn enable_database_change_tracking(conn: &mut MssqlConnection) {
    exec(
        conn,
        "IF NOT EXISTS (SELECT 1 FROM sys.change_tracking_databases WHERE database_id = DB_ID())
             ALTER DATABASE CURRENT SET CHANGE_TRACKING = ON (CHANGE_RETENTION = 2 DAYS, AUTO_CLEANUP = ON)",
        &[],
    );
}

/// `(op, key)` of each change, in order.
fn summary(changes: &[RowChange]) -> Vec<(Op, String)> {
    changes
        .iter()
        .map(|c| match &c.position {
            Position::Legacy { key, .. } => (c.op, key.clone()),
            other => panic!("not a legacy position: {other:?}"),
        })
        .collect()
}

fn versions(changes: &[RowChange]) -> Vec<i64> {
    changes
        .iter()
        .map(|c| match &c.position {
            Position::Legacy { version, .. } => version.parse().unwrap(),
            other => panic!("not a legacy position: {other:?}"),
        })
        .collect()
}

fn key(item: &str) -> String {
    format!("[\"{item}\"]")
}

/// Polls both strategies once, moving their versions on, and checks each poll's versions rise.
struct Pollers<'t> {
    rv_table: LegacyTable,
    ct_table: LegacyTable,
    rv_last: Option<i64>,
    ct_last: i64,
    _table: &'t Scratch,
}

impl<'t> Pollers<'t> {
    fn start(conn: &mut MssqlConnection, table: &'t Scratch) -> Pollers<'t> {
        let rv_table = table.rowversion();
        let ct_table = table.change_tracking();
        let (changes, bad, rv_last) = poll_rowversion(conn, &rv_table, None).unwrap();
        assert!(changes.is_empty() && bad.is_empty(), "empty table: {changes:?} {bad:?}");
        assert_eq!(rv_last, Some(0), "an empty first read still records that it happened");
        let start = poll_change_tracking(conn, &ct_table, None).unwrap();
        assert!(start.changes.is_empty(), "the first change-tracking poll only records where to start");
        assert_eq!(start.check, ChangeTrackingCheck::Ok);
        Pollers { rv_table, ct_table, rv_last, ct_last: start.version, _table: table }
    }

    fn poll(&mut self, conn: &mut MssqlConnection) -> (Vec<RowChange>, Vec<RowChange>) {
        let (rv_changes, bad, rv_last) = poll_rowversion(conn, &self.rv_table, self.rv_last).unwrap();
        assert!(bad.is_empty(), "{bad:?}");
        let rv_versions = versions(&rv_changes);
        assert!(rv_versions.windows(2).all(|w| w[0] < w[1]), "rowversion order: {rv_versions:?}");
        assert!(rv_versions.iter().all(|&v| Some(v) > self.rv_last), "{rv_versions:?} after {:?}", self.rv_last);
        assert!(rv_last >= self.rv_last);
        self.rv_last = rv_last;

        let ct = poll_change_tracking(conn, &self.ct_table, Some(self.ct_last)).unwrap();
        assert_eq!(ct.check, ChangeTrackingCheck::Ok);
        assert!(ct.bad.is_empty(), "{:?}", ct.bad);
        let ct_versions = versions(&ct.changes);
        assert!(ct_versions.windows(2).all(|w| w[0] <= w[1]), "change-tracking order: {ct_versions:?}");
        assert!(ct_versions.iter().all(|&v| v > self.ct_last && v <= ct.version), "{ct_versions:?}");
        assert!(ct.version >= self.ct_last);
        self.ct_last = ct.version;
        (rv_changes, ct.changes)
    }
}

#[test]
fn both_strategies_find_each_change_once_and_in_order() {
    let Some(ado) = connection_string("both_strategies_find_each_change_once_and_in_order") else { return };
    let mut conn = connect(&ado);
    enable_database_change_tracking(&mut conn);
    let table = Scratch::create(&ado, &mut conn, "ITEM");
    let mut pollers = Pollers::start(&mut conn, &table);

    // Two inserts, each its own transaction.
    table.insert(&mut conn, "A100", "Größe ½ Widget");
    table.insert(&mut conn, "B200", "Gadget");
    let (rv, ct) = pollers.poll(&mut conn);
    assert_eq!(summary(&rv), vec![(Op::Update, key("A100")), (Op::Update, key("B200"))]);
    assert_eq!(summary(&ct), vec![(Op::Insert, key("A100")), (Op::Insert, key("B200"))]);
    let row = rv[0].after.as_ref().unwrap();
    assert_eq!(row.get("ITEM_NO"), Some(&text("A100    ")), "CHAR padding is kept in the row (the key is trimmed)");
    assert_eq!(row.get("DESCRIPTION"), Some(&text("Größe ½ Widget")));
    assert_eq!(row.get("STD_COST"), Some(&decimal("12.5000")), "DECIMAL(18,4) stays exact");
    assert_eq!(row.get("PRICE"), Some(&decimal("19.9900")), "MONEY is an exact decimal");
    assert!(matches!(row.get("LAST_UPD"), Some(Value::Timestamp(_))), "{row:?}");
    assert!(matches!(row.get("RV"), Some(Value::Bytes(b)) if b.len() == 8), "{row:?}");
    assert_eq!(ct[0].after.as_ref().unwrap().get("DESCRIPTION"), Some(&text("Größe ½ Widget")));

    // An update.
    exec(
        &mut conn,
        &format!("UPDATE {} SET STD_COST = ?, DESCRIPTION = ? WHERE ITEM_NO = ?", table.quoted()),
        &[decimal("13.2500"), text("Widget v2"), text("A100")],
    );
    let (rv, ct) = pollers.poll(&mut conn);
    assert_eq!(summary(&rv), vec![(Op::Update, key("A100"))]);
    assert_eq!(summary(&ct), vec![(Op::Update, key("A100"))]);
    assert_eq!(ct[0].after.as_ref().unwrap().get("STD_COST"), Some(&decimal("13.2500")));

    // A delete and an insert: rowversion cannot see deletes (a hashdiff delete scan finds them).
    exec(&mut conn, &format!("DELETE FROM {} WHERE ITEM_NO = ?", table.quoted()), &[text("B200")]);
    table.insert(&mut conn, "C300", "Third");
    let (rv, ct) = pollers.poll(&mut conn);
    assert_eq!(summary(&rv), vec![(Op::Update, key("C300"))]);
    assert_eq!(summary(&ct), vec![(Op::Delete, key("B200")), (Op::Insert, key("C300"))]);
    let before = ct[0].before.as_ref().expect("a delete carries its key");
    assert_eq!(before.get("ITEM_NO"), Some(&text("B200    ")));
    assert_eq!(ct[0].after, None);

    // millrace's own write, through the sink's writer (which tags it with millrace's
    // change-tracking context): change tracking skips it; rowversion cannot tell it from the
    // ERP's writes.
    assert_eq!(MILLRACE_CT_CONTEXT, b"millrace");
    LegacyWriter::execute_write(
        &mut conn,
        &format!("UPDATE {} SET DESCRIPTION = ? WHERE ITEM_NO = ?", table.quoted()),
        &[Some("from Odoo".to_string()), Some("A100".to_string())],
    )
    .expect("millrace's write");
    let (rv, ct) = pollers.poll(&mut conn);
    assert_eq!(summary(&rv), vec![(Op::Update, key("A100"))]);
    assert!(ct.is_empty(), "our own write came back: {ct:?}");

    // Nothing changed: nothing found, versions stay.
    let rv_before = pollers.rv_last;
    let (rv, ct) = pollers.poll(&mut conn);
    assert!(rv.is_empty() && ct.is_empty(), "{rv:?} {ct:?}");
    assert_eq!(pollers.rv_last, rv_before);
}

#[test]
fn rowversion_does_not_pass_an_open_transaction() {
    let Some(ado) = connection_string("rowversion_does_not_pass_an_open_transaction") else { return };
    let mut conn = connect(&ado);
    enable_database_change_tracking(&mut conn);
    let polled = Scratch::create(&ado, &mut conn, "RVA");
    let other_table = Scratch::create(&ado, &mut conn, "RVB");
    let mut pollers = Pollers::start(&mut conn, &polled);

    // A long transaction takes a low rowversion (in another table: MIN_ACTIVE_ROWVERSION is
    // database-wide, and the polled table's rows stay unlocked, so the poll does not wait)...
    let mut long = connect(&ado);
    long.execute_batch(&format!(
        "BEGIN TRANSACTION; INSERT INTO {} (ITEM_NO, DESCRIPTION, STD_COST) VALUES ('L900', 'long', 1)",
        other_table.quoted()
    ))
    .unwrap();
    // ...then a short one commits a higher one.
    polled.insert(&mut conn, "M100", "short");

    // Bounded by @@DBTS, the poll would read M100 and store its version, and rows the long
    // transaction writes to the polled table would then be skipped for good. Bounded by
    // MIN_ACTIVE_ROWVERSION it waits. Change tracking versions at commit: M100 is there at once.
    let (rv, ct) = pollers.poll(&mut conn);
    assert!(rv.is_empty(), "rowversion passed an open transaction: {rv:?}");
    assert_eq!(summary(&ct), vec![(Op::Insert, key("M100"))]);

    long.execute_batch("COMMIT").unwrap();
    let (rv, ct) = pollers.poll(&mut conn);
    assert_eq!(summary(&rv), vec![(Op::Update, key("M100"))]);
    assert!(ct.is_empty(), "{ct:?}");
}

#[test]
fn change_tracking_too_old_a_version_needs_a_resnapshot() {
    let Some(ado) = connection_string("change_tracking_too_old_a_version_needs_a_resnapshot") else { return };
    let mut conn = connect(&ado);
    enable_database_change_tracking(&mut conn);
    let table = Scratch::create(&ado, &mut conn, "OLD");
    let start = poll_change_tracking(&mut conn, &table.change_tracking(), None).unwrap();
    table.insert(&mut conn, "A100", "one");
    let poll = poll_change_tracking(&mut conn, &table.change_tracking(), Some(start.version)).unwrap();
    assert_eq!(summary(&poll.changes), vec![(Op::Insert, key("A100"))]);

    // Re-enabling change tracking forgets the table's history, as a cleanup after a long absence
    // would: versions from before are no longer valid.
    exec(&mut conn, &format!("ALTER TABLE {} DISABLE CHANGE_TRACKING", table.quoted()), &[]);
    exec(&mut conn, &format!("ALTER TABLE {} ENABLE CHANGE_TRACKING", table.quoted()), &[]);
    table.insert(&mut conn, "B200", "two");
    let poll = poll_change_tracking(&mut conn, &table.change_tracking(), Some(start.version)).unwrap();
    assert!(poll.resnapshot_needed(), "{poll:?}");
    assert!(poll.changes.is_empty());
    match poll.check {
        ChangeTrackingCheck::ResnapshotNeeded { last_synced, min_valid } => {
            assert_eq!(last_synced, start.version);
            assert!(min_valid > start.version);
        }
        ChangeTrackingCheck::Ok => unreachable!(),
    }
    assert!(poll.check.to_string().contains("millrace backfill"), "{}", poll.check);

    // A table without change tracking says how to enable it.
    exec(&mut conn, &format!("ALTER TABLE {} DISABLE CHANGE_TRACKING", table.quoted()), &[]);
    let error = poll_change_tracking(&mut conn, &table.change_tracking(), Some(poll.version)).unwrap_err();
    assert!(error.to_string().contains("ENABLE CHANGE_TRACKING"), "{error}");
}

fn select_rows(conn: &mut MssqlConnection, sql: &str, params: &[Value]) -> (Vec<String>, Vec<Vec<Value>>, Vec<usize>) {
    let mut columns = Vec::new();
    let mut rows = Vec::new();
    let mut batch_sizes = Vec::new();
    conn.select("(test)", sql, params, &mut |batch| {
        columns = batch.columns.to_vec();
        batch_sizes.push(batch.rows.len());
        for row in batch.rows {
            match row {
                ReadRow::Ok(values) => rows.push(values),
                ReadRow::Bad { column, reason, .. } => panic!("column {column}: {reason}"),
            }
        }
        Ok(())
    })
    .unwrap_or_else(|e| panic!("{sql}: {e}"));
    (columns, rows, batch_sizes)
}

#[test]
fn types_convert_exactly_through_the_real_driver() {
    let Some(ado) = connection_string("types_convert_exactly_through_the_real_driver") else { return };
    let mut conn = connect(&ado);
    let sql = "SELECT CAST('A1' AS CHAR(4)) AS c, CAST(N'Größe' AS NVARCHAR(10)) AS n, CAST('abc' AS VARCHAR(10)) AS v,
                      CAST(12.3400 AS DECIMAL(18,4)) AS d, CAST(-98765432109876543210.123456789 AS DECIMAL(38,9)) AS big,
                      CAST(1234.5678 AS MONEY) AS m, CAST(-2.5 AS SMALLMONEY) AS sm, CAST(0.1 AS FLOAT) AS f,
                      CAST('2024-03-15T12:00:00.007' AS DATETIME) AS dt, CAST('2024-03-15T12:01:00' AS SMALLDATETIME) AS sdt,
                      CAST('2024-03-15T12:00:00.1234567' AS DATETIME2(7)) AS dt2,
                      CAST('2024-03-15T12:00:00+02:00' AS DATETIMEOFFSET) AS dto, CAST('2024-03-15' AS DATE) AS da,
                      CAST('13:45:30.1234567' AS TIME(7)) AS ti,
                      CAST('6F9619FF-8B86-D011-B42D-00C04FC964FF' AS UNIQUEIDENTIFIER) AS g, CAST(1 AS BIT) AS b,
                      CAST(7 AS TINYINT) AS t8, CAST(-7 AS SMALLINT) AS t16, CAST(NULL AS INT) AS nul,
                      CAST(0x0102 AS VARBINARY(10)) AS bin, CAST('<a>1</a>' AS XML) AS x,
                      '?' AS literal, ? AS p_text, ? AS p_int, ? AS p_dec";
    let (columns, rows, _) = select_rows(&mut conn, sql, &[text("x?y"), Value::Int(42), decimal("-0.0100")]);
    assert_eq!(rows.len(), 1);
    let get = |name: &str| rows[0][columns.iter().position(|c| c == name).unwrap()].clone();
    let ts = |h, m, s, nano| NaiveDate::from_ymd_opt(2024, 3, 15).unwrap().and_hms_nano_opt(h, m, s, nano).unwrap();
    assert_eq!(get("c"), text("A1  "));
    assert_eq!(get("n"), text("Größe"));
    assert_eq!(get("v"), text("abc"));
    assert_eq!(get("d"), decimal("12.3400"));
    assert_eq!(get("big"), decimal("-98765432109876543210.123456789"));
    assert_eq!(get("m"), decimal("1234.5678"));
    assert_eq!(get("sm"), decimal("-2.5000"));
    assert_eq!(get("f"), Value::Float(0.1));
    assert_eq!(get("dt"), Value::Timestamp(ts(12, 0, 0, 6_666_700)));
    assert_eq!(get("sdt"), Value::Timestamp(ts(12, 1, 0, 0)));
    assert_eq!(get("dt2"), Value::Timestamp(ts(12, 0, 0, 123_456_700)));
    assert_eq!(get("dto"), Value::TimestampTz(Utc.with_ymd_and_hms(2024, 3, 15, 10, 0, 0).unwrap()));
    assert_eq!(get("da"), Value::Date(NaiveDate::from_ymd_opt(2024, 3, 15).unwrap()));
    assert_eq!(get("ti"), Value::Time(chrono::NaiveTime::from_hms_nano_opt(13, 45, 30, 123_456_700).unwrap()));
    assert_eq!(get("g"), text("6F9619FF-8B86-D011-B42D-00C04FC964FF"));
    assert_eq!(get("b"), Value::Bool(true));
    assert_eq!(get("t8"), Value::Int(7));
    assert_eq!(get("t16"), Value::Int(-7));
    assert_eq!(get("nul"), Value::Null);
    assert_eq!(get("bin"), Value::Bytes(vec![1, 2]));
    assert_eq!(get("x"), text("<a>1</a>"));
    assert_eq!(get("literal"), text("?"));
    assert_eq!(get("p_text"), text("x?y"));
    assert_eq!(get("p_int"), Value::Int(42));
    assert_eq!(get("p_dec"), decimal("-0.0100"));

    // A datetime read here and bound back equals the stored value (SQL Server 2016+ compares
    // datetime with datetime2 exactly), so timestamp watermarks neither skip nor repeat it.
    let (_, rows, _) = select_rows(
        &mut conn,
        "SELECT CASE WHEN CAST('2024-03-15T12:00:00.007' AS DATETIME) = ? THEN 1 ELSE 0 END",
        &[get("dt")],
    );
    assert_eq!(rows[0][0], Value::Int(1), "datetime round trip (database compatibility level below 130?)");
}

#[test]
fn large_results_arrive_in_batches_and_errors_leave_the_connection_usable() {
    let Some(ado) = connection_string("large_results_arrive_in_batches_and_errors_leave_the_connection_usable") else {
        return;
    };
    let mut conn = connect(&ado);
    let n = 2 * BATCH_ROWS + 500;
    let (_, rows, sizes) = select_rows(
        &mut conn,
        "SELECT TOP (?) ROW_NUMBER() OVER (ORDER BY (SELECT NULL)) AS n FROM sys.all_objects AS a CROSS JOIN sys.all_objects AS b",
        &[Value::Int(n as i64)],
    );
    assert_eq!(rows.len(), n);
    assert_eq!(sizes, vec![BATCH_ROWS, BATCH_ROWS, 500]);

    let (columns, rows, sizes) = select_rows(&mut conn, "SELECT 1 AS one WHERE 1 = 0", &[]);
    assert_eq!(
        (columns, rows.len(), sizes),
        (vec!["one".to_string()], 0, vec![0]),
        "an empty result still names its columns"
    );

    let error = conn.select("dbo.NO_SUCH_TABLE", "SELECT * FROM dbo.NO_SUCH_TABLE", &[], &mut |_| Ok(())).unwrap_err();
    assert!(matches!(error, LegacyError::Query { transient: false, .. }), "{error:?}");
    assert!(error.to_string().contains("NO_SUCH_TABLE"), "{error}");

    // A failing callback stops the read; the next call reconnects if it has to.
    let error = conn
        .select(
            "(test)",
            "SELECT TOP (5000) 1 AS n FROM sys.all_objects AS a CROSS JOIN sys.all_objects AS b",
            &[],
            &mut |_| Err(LegacyError::Other("enough".into())),
        )
        .unwrap_err();
    assert_eq!(error.to_string(), "enough");
    let (_, rows, _) = select_rows(&mut conn, "SELECT 2 AS two", &[]);
    assert_eq!(rows, vec![vec![Value::Int(2)]]);

    // Placeholders and values must agree.
    let error = conn.select("(test)", "SELECT ? AS a", &[], &mut |_| Ok(())).unwrap_err();
    assert!(error.to_string().contains("placeholders"), "{error}");
}
