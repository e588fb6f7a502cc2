//! Differential test of the Odoo source's decoding: the same workload is read through millrace
//! (pgoutput, `millrace tail --json`) and through PostgreSQL's own `test_decoding` output plugin
//! on a second slot of the same database, and the two must agree change for change and value for
//! value.
//!
//! `test_decoding` prints each column as `name[type]:value` with the type's output function, run
//! in the reading session with the same settings millrace's replication session uses. Each JSON
//! value millrace emits is turned back into that text form for the column's type (times and
//! timestamps from ISO 8601 to PostgreSQL's ISO style, `Z` to `+00`, …) and compared; floats are
//! compared as numbers (NaN, infinities and the sign of zero included), json/jsonb as the exact
//! text, arrays element by element (parsed from `test_decoding`'s text independently of
//! millrace). `test_decoding` prints an update that changes the key as one UPDATE with its old
//! key; the comparison expects millrace's delete of the old key and create of the new row.
//!
//! Nothing may be skipped or approximated: numeric NaN and infinities, numerics beyond 38 digits,
//! infinite and out-of-range dates and timestamps and `24:00:00` come out as PostgreSQL's text;
//! `json`/`jsonb` as a string holding the exact JSON text (so the document `null` is `"null"`,
//! SQL NULL `null`); a domain as its base type (an integer domain as a JSON number); arrays as
//! JSON arrays of their element type. An update that changes the key is a delete of the old key
//! followed by a create (Debezium's form), and a column PostgreSQL did not send — an unchanged
//! TOAST value, a column outside the key of an old-key image — is absent, never `null`.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{setup, TestDb};
use tokio_postgres::Client;

// ---- the workload ----

const SCHEMA: &str = r#"
    CREATE TYPE mood AS ENUM ('ok', 'bad', 'it''s complicated');
    CREATE DOMAIN qty AS numeric CHECK (VALUE >= 0);
    CREATE DOMAIN posint AS int4 CHECK (VALUE > 0);
    CREATE TABLE t (
        id int8 PRIMARY KEY,
        i2 int2, i4 int4, n numeric, ns numeric(20, 6), f4 float4, f8 float8, b bool,
        tx text, vc varchar(12), bp char(6), d date, tm time, ts timestamp, tz timestamptz,
        js json, jb jsonb, by bytea, u uuid, ia int4[], ta text[], e mood, q qty, pi posint,
        iv interval, ttz timetz, ip inet, m money, vb varbit, ch "char", o oid, nm name,
        "Mixed Case" text,
        big text
    );
    ALTER TABLE t ALTER COLUMN big SET STORAGE EXTERNAL;
    CREATE TABLE full_t (id int PRIMARY KEY, label text, dropped int, amount numeric, at timestamptz, doc jsonb, big text);
    ALTER TABLE full_t DROP COLUMN dropped;
    ALTER TABLE full_t ALTER COLUMN big SET STORAGE EXTERNAL;
    ALTER TABLE full_t REPLICA IDENTITY FULL;
    CREATE TABLE idx_t (id int NOT NULL, code text NOT NULL, region int NOT NULL, note text);
    CREATE UNIQUE INDEX idx_t_key ON idx_t (code, region);
    ALTER TABLE idx_t REPLICA IDENTITY USING INDEX idx_t_key;
    CREATE TABLE edge (id int PRIMARY KEY, n numeric, d date, ts timestamp, tz timestamptz, tm time);
    CREATE TABLE unpublished (id int PRIMARY KEY, note text);
"#;

/// Tables in millrace's publication; `unpublished` is seen by `test_decoding` only.
const PUBLISHED: [&str; 4] = ["public.t", "public.full_t", "public.idx_t", "public.edge"];

/// 64,000 characters of md5 hex: stored out of line (`STORAGE EXTERNAL`) in many TOAST chunks.
const HUGE: &str = "(SELECT string_agg(md5(i::text), '') FROM generate_series(1, 2000) i)";

const COLUMNS: &str = r#"id, i2, i4, n, ns, f4, f8, b, tx, vc, bp, d, tm, ts, tz, js, jb, by, u, ia, ta, e, q, pi, iv, ttz, ip, m, vb, ch, o, nm, "Mixed Case", big"#;

async fn exec(c: &Client, sql: &str) {
    c.batch_execute(sql).await.unwrap_or_else(|e| panic!("{sql}: {e:?}"));
}

/// One row per value, ids from `first_id`, every other column NULL.
async fn insert_list(c: &Client, table: &str, first_id: i64, column: &str, cast: &str, values: &[&str]) {
    let sql = format!(
        "INSERT INTO {table} (id, {column}) SELECT $1::int8 + o - 1, v::{cast} FROM unnest($2::text[]) WITH ORDINALITY AS x(v, o)"
    );
    let values: Vec<String> = values.iter().map(|v| v.to_string()).collect();
    c.execute(&sql, &[&first_id, &values]).await.unwrap_or_else(|e| panic!("{sql} {values:?}: {e:?}"));
}

async fn value_lists(c: &Client) {
    let f8 = [
        "NaN",
        "Infinity",
        "-Infinity",
        "1e-300",
        "0.1",
        "-0",
        "0",
        "1.7976931348623157e308",
        "5e-324",
        "2.2250738585072014e-308",
        "123456789012345",
        "1e15",
        "1e16",
        "0.0001",
        "0.00001",
        "-1.5",
        "3.141592653589793",
        "-2.5e-300",
        "9.10919281903975e-11",
        "2.4170704078805038e30",
    ];
    insert_list(c, "t", 100, "f8", "float8", &f8).await;
    let f4 = [
        "NaN",
        "Infinity",
        "-Infinity",
        "1e-45",
        "0.1",
        "-0",
        "3.4028235e38",
        "1.1",
        "16777217",
        "1e6",
        "123456",
        "1234567",
        "1.17549435e-38",
        "-0.33333334",
    ];
    insert_list(c, "t", 200, "f4", "float4", &f4).await;
    let n = [
        "0",
        "-0",
        "1.50",
        "-12.340",
        "0.10000",
        "0.00000000000000000000000000000000000001",
        "99999999999999999999999999999999999999",
        "-99999999999999999999999999999999999999",
        "123456789012345678901234567890.12345678",
        "1e10",
        "1.0000000000000000000000000000000000000",
        "-0.000001",
        "42",
    ];
    insert_list(c, "t", 300, "n", "numeric", &n).await;
    insert_list(c, "t", 400, "ns", "numeric(20,6)", &["1", "-0.000001", "99999999999999.999999", "1.5", "0"]).await;
    let d = [
        "2024-02-29",
        "0001-01-01",
        "0001-12-31 BC",
        "0044-03-15 BC",
        "4714-11-24 BC",
        "9999-12-31",
        "10000-01-01",
        "262142-12-31",
        "1970-01-01",
        "2000-01-01",
        "1582-10-10",
        "2023-12-31",
    ];
    insert_list(c, "t", 500, "d", "date", &d).await;
    let tm = ["00:00:00", "23:59:59.999999", "12:34:56.5", "13:45:00.000001", "12:00:00.12", "07:08:09.1234"];
    insert_list(c, "t", 600, "tm", "time", &tm).await;
    let ts = [
        "2024-01-02 03:04:05",
        "2024-02-29 23:59:59.999999",
        "0044-03-15 12:00:00 BC",
        "4714-11-24 00:00:00 BC",
        "1999-12-31 23:59:59.5",
        "2000-01-01 00:00:00",
        "1970-01-01 00:00:00",
        "1900-01-01 00:00:00.000001",
        "200000-06-15 12:00:00",
        "0001-01-01 00:00:00",
        "0001-12-31 23:59:59.999999 BC",
    ];
    insert_list(c, "t", 700, "ts", "timestamp", &ts).await;
    let tz = [
        "2024-01-02 03:04:05+02",
        "2024-01-02 03:04:05.123456-05:30",
        "2024-12-31 23:30:00-01",
        "1969-12-31 23:59:59.999999+00",
        "0044-03-15 12:00:00+00 BC",
        "1900-01-01 00:00:00+00:19:32",
        "2024-03-10 02:30:00 America/New_York",
        "2000-01-01 00:00:00+00",
        "1970-01-01 00:00:00+14",
        "0001-01-01 00:00:00+14",
        "200000-06-15 12:00:00+00",
        "2024-06-30 23:59:59.5-12",
    ];
    insert_list(c, "t", 800, "tz", "timestamptz", &tz).await;
    let tx = [
        "",
        "it's",
        "back\\slash \\x00",
        "new\nline\r\ttab",
        "héllo wörld 日本語 🎉",
        "null",
        "unchanged-toast-datum",
        "  padded  ",
        "'",
        "''",
        "\u{1}control",
        "\"double\"",
        " new-tuple: id[bigint]:1 x[text]:'y'",
        "a'b c'd",
        "B'0101'",
    ];
    insert_list(c, "t", 900, "tx", "text", &tx).await;
    let js = [
        r#"{"a": [1, 2]}"#,
        r#"  [ 1 , "two" , {"three": 3.0} ]  "#,
        r#""just a string""#,
        "1.5e3",
        r#"{"s": "x\"y\\z\u00e9", "u": "\ud83c\udf89", "nl": "a\nb"}"#,
        "{}",
        "true",
        "-0",
        r#"{"nested": {"deep": [true, false, null, -0.5E-3]}}"#,
        "12345678901234567",
        r#"{"nul": "\u0000"}"#,
        r#"{"b": 2, "a": 1}"#,
    ];
    insert_list(c, "t", 1000, "js", "json", &js).await;
    let jb = [
        r#"{"b": 1, "a": "x"}"#,
        "[]",
        r#"{"n": 1.50}"#,
        r#"{"k": "\u00e9\ud83c\udf89"}"#,
        r#""just a string""#,
        "-0.5e-3",
        "1e2",
        r#"{"big": 12345678901234567}"#,
        r#"{"neg": -9223372036854775808}"#,
        r#"{"u": 18446744073709551615}"#,
        "[1, [2, [3, []]]]",
        r#"{"": "empty key"}"#,
        "0.1",
        "1e-7",
        r#"{"esc": "a\nb\\c\"d", "long key with spaces": [{}, {"x": 1.0}]}"#,
    ];
    insert_list(c, "t", 1100, "jb", "jsonb", &jb).await;
    let long_bytes = format!("\\x{}", "7f".repeat(300));
    insert_list(c, "t", 1200, "by", "bytea", &["\\x", "\\x00", "\\x00ff10", "\\xDEADBEEF", &long_bytes]).await;
    let u = [
        "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
        "00000000-0000-0000-0000-000000000000",
        "{a0eebc99-9c0b4ef8-bb6d6bb9-bd380a11}",
    ];
    insert_list(c, "t", 1300, "u", "uuid", &u).await;
    insert_list(c, "t", 1400, "ia", "int4[]", &["{1,2,3}", "{}", "{{1,2},{3,4}}", "{NULL,-1}", "[0:1]={5,6}"]).await;
    let ta = [r#"{"a b",c,NULL,"q\"x","back\\slash",""}"#, "{}", r#"{"NULL",null}"#, "{{a,b},{c,d}}", "{'quoted'}"];
    insert_list(c, "t", 1500, "ta", "text[]", &ta).await;
    let iv = ["1 year 2 mons 3 days 04:05:06.5", "-1 days", "00:00:00", "-1 years -2 mons +3 days -04:05:06.789"];
    insert_list(c, "t", 1600, "iv", "interval", &iv).await;
    insert_list(c, "t", 1700, "ttz", "timetz", &["13:45:00+02", "00:00:00.5-05:30", "23:59:59.999999+14"]).await;
}

async fn workload(db: &TestDb) {
    let c = db.client().await;
    // Full rows, the all-NULL row and a TOASTed value, in one transaction.
    exec(
        &c,
        &format!(
            r#"BEGIN;
            INSERT INTO t ({COLUMNS}) VALUES (1, 1, 1, 1.5, 1.5, 1.5, 1.5, true, 'hello', 'abc', 'ab', '2024-02-29',
                '13:45:00', '2024-01-02 03:04:05', '2024-01-02 03:04:05+02', '{{"a": [1, 2]}}', '{{"b": {{"c": null}}}}',
                '\x00ff10', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '{{1,2,3}}', '{{a,b}}', 'ok', 4.50, 7,
                '1 day 02:03:04', '13:45:00+02', '192.168.0.1/24', 1234.56, B'10101', 'x', 4294967295, 'stock_move',
                'mixed', {HUGE});
            INSERT INTO t ({COLUMNS}) VALUES (9223372036854775807, -32768, -2147483648,
                -12345678901234567890123456789012345678, -12345678901234.5678, 3.4028235e38, 1.7976931348623157e308,
                false, E'it''s "quoted" \\back\\slash\nnew line\ttab', 'twelve chars', 'abcdef', '0044-03-15 BC',
                '00:00:00', '0044-03-15 12:00:00 BC', '0044-03-15 12:00:00+00 BC', '  [ 1 , "two" , {{"three": 3.0}} ]  ',
                '[]', '\x', '00000000-0000-0000-0000-000000000000', '{{{{1,2}},{{3,4}}}}',
                '{{"a b",NULL,"q\"x","back\\slash",""}}', 'it''s complicated', 0, 2147483647,
                '-1 years -2 mons +3 days -04:05:06.789', '00:00:00.5-05:30', '::1', -0.01, B'', '''', 0,
                'Name With Spaces', '', NULL);
            INSERT INTO t (id) VALUES (3);
            INSERT INTO t (id, tx, big) VALUES (4, 'has big', {HUGE});
            COMMIT;"#
        ),
    )
    .await;
    exec(&c, "BEGIN").await;
    value_lists(&c).await;
    exec(&c, "COMMIT").await;

    // Updates: TOASTed column left unchanged, key changed (with the TOASTed column unchanged),
    // TOASTed column changed; then deletes.
    exec(&c, "UPDATE t SET i4 = 42, tx = 'changed' WHERE id = 1").await;
    exec(&c, "UPDATE t SET id = 5 WHERE id = 1").await;
    exec(&c, "UPDATE t SET big = big || 'tail', tx = NULL WHERE id = 5").await;
    exec(
        &c,
        "BEGIN;
         UPDATE t SET f8 = -f8, b = true WHERE id BETWEEN 100 AND 199;
         DELETE FROM t WHERE id BETWEEN 300 AND 305;
         DELETE FROM t WHERE id = 4;
         UPDATE t SET id = id + 10000, tz = tz + interval '1 microsecond' WHERE id BETWEEN 800 AND 803;
         COMMIT;",
    )
    .await;

    // Nothing of a rolled-back transaction or a rolled-back savepoint may appear.
    exec(
        &c,
        "BEGIN;
         INSERT INTO t (id, tx) VALUES (77, 'rolled back');
         UPDATE t SET tx = 'nope' WHERE id = 5;
         DELETE FROM t WHERE id = 3;
         ROLLBACK;",
    )
    .await;
    exec(
        &c,
        "BEGIN;
         INSERT INTO t (id, tx) VALUES (60, 'first');
         SAVEPOINT a;
         UPDATE t SET tx = 'gone' WHERE id = 60;
         DELETE FROM t WHERE id = 5;
         ROLLBACK TO SAVEPOINT a;
         UPDATE t SET tx = 'kept' WHERE id = 60;
         SAVEPOINT b;
         INSERT INTO t (id, tx) VALUES (61, 'released');
         RELEASE SAVEPOINT b;
         SAVEPOINT c;
         INSERT INTO t (id, tx) VALUES (62, 'rolled back to c');
         ROLLBACK TO SAVEPOINT c;
         COMMIT;",
    )
    .await;

    // Several tables in one transaction, including one outside the publication.
    exec(
        &c,
        &format!(
            "BEGIN;
             INSERT INTO full_t VALUES (1, 'one', 1.10, '2024-01-02 03:04:05+02', '{{\"a\": 1}}', {HUGE});
             INSERT INTO full_t VALUES (2, 'two', NULL, NULL, NULL, 'small');
             INSERT INTO full_t VALUES (3, NULL, -3, '1999-12-31 23:59:59.999999+00', '[1, \"x\"]', NULL);
             INSERT INTO full_t VALUES (4, 'four', 4.000, NULL, '{{\"k\": [true]}}', NULL);
             INSERT INTO unpublished VALUES (1, 'not in the publication');
             INSERT INTO idx_t VALUES (1, 'A', 1, NULL), (2, 'A', 2, 'two'), (3, 'C', 3, 'three');
             UPDATE t SET e = 'bad', q = 1.25 WHERE id = 5;
             COMMIT;"
        ),
    )
    .await;
    // REPLICA IDENTITY FULL (old tuples with every non-NULL column, TOASTed ones in full) and
    // USING INDEX (old key only when the index columns change).
    exec(&c, "UPDATE full_t SET label = 'one!' WHERE id = 1").await;
    exec(&c, "UPDATE full_t SET id = 20 WHERE id = 2").await;
    exec(&c, "DELETE FROM full_t WHERE id = 3").await;
    exec(&c, "UPDATE full_t SET amount = NULL, doc = '{\"z\": 1}' WHERE id = 4").await;
    exec(&c, "DELETE FROM full_t WHERE id = 1").await;
    exec(&c, "UPDATE idx_t SET note = 'n' WHERE id = 1").await;
    exec(&c, "UPDATE idx_t SET code = 'B' WHERE id = 2").await;
    exec(&c, "DELETE FROM idx_t WHERE id = 3").await;
    // A column added mid-stream: a new Relation message for millrace, a new tuple shape for both.
    exec(&c, "ALTER TABLE idx_t ADD COLUMN extra numeric DEFAULT 1.5").await;
    exec(&c, "INSERT INTO idx_t VALUES (4, 'D', 4, 'four', 2.25); UPDATE idx_t SET note = 'after alter' WHERE id = 1")
        .await;

    // Large transactions, beyond logical_decoding_work_mem (64kB for this database), so that
    // pgoutput streams them while they are in progress: two interleaved, one with a streamed
    // savepoint rolled back, one rolled back entirely, one with released and rolled-back
    // savepoints.
    let a = db.client().await;
    let b = db.client().await;
    exec(&a, "BEGIN; INSERT INTO t (id, tx, big) SELECT 5000 + g, 'stream a ' || g, repeat(md5(g::text), 100) FROM generate_series(1, 100) g").await;
    exec(&b, "BEGIN; INSERT INTO full_t (id, label, big) SELECT 5000 + g, 'stream b', repeat(md5(g::text), 100) FROM generate_series(1, 50) g").await;
    exec(
        &a,
        "SAVEPOINT s;
         INSERT INTO t (id, tx, big) SELECT 7000 + g, 'rolled back', repeat(md5(g::text), 100) FROM generate_series(1, 100) g;
         UPDATE t SET tx = 'rolled back' WHERE id BETWEEN 5001 AND 5050;
         ROLLBACK TO SAVEPOINT s;",
    )
    .await;
    exec(&a, "UPDATE t SET id = id + 1000 WHERE id BETWEEN 5001 AND 5005").await;
    exec(&b, "UPDATE full_t SET label = 'stream b updated' WHERE id BETWEEN 5001 AND 5010").await;
    exec(&a, "DELETE FROM t WHERE id BETWEEN 5006 AND 5010").await;
    exec(&b, "DELETE FROM full_t WHERE id BETWEEN 5011 AND 5015; COMMIT").await;
    exec(&a, "UPDATE t SET tx = 'last of a' WHERE id = 5100; COMMIT").await;
    exec(
        &c,
        "BEGIN;
         INSERT INTO t (id, tx, big) SELECT 8000 + g, 'aborted', repeat(md5(g::text), 100) FROM generate_series(1, 100) g;
         ROLLBACK;",
    )
    .await;
    exec(
        &c,
        "BEGIN;
         INSERT INTO t (id, tx) VALUES (9000, 'before savepoints');
         SAVEPOINT kept;
         INSERT INTO t (id, tx, big) SELECT 9000 + g, 'released', repeat(md5(g::text), 100) FROM generate_series(1, 60) g;
         RELEASE SAVEPOINT kept;
         SAVEPOINT dropped;
         INSERT INTO t (id, tx, big) SELECT 9500 + g, 'rolled back', repeat(md5(g::text), 100) FROM generate_series(1, 100) g;
         ROLLBACK TO SAVEPOINT dropped;
         INSERT INTO t (id, tx) VALUES (9999, 'after savepoints');
         COMMIT;",
    )
    .await;

    // One TRUNCATE of several tables (one of them unpublished), then more rows.
    exec(&c, "TRUNCATE full_t, unpublished, idx_t").await;
    exec(&c, "INSERT INTO idx_t VALUES (5, 'E', 5, 'after truncate', NULL)").await;

    // Values no typed variant holds, between ordinary rows of the same transaction.
    exec(&c, "BEGIN; INSERT INTO edge (id) VALUES (100)").await;
    let numeric = [
        "NaN",
        "Infinity",
        "-Infinity",
        "1234567890123456789012345678901234567890",
        "0.000000000000000000000000000000000000001",
        "1.00000000000000000000000000000000000000",
    ];
    insert_list(&c, "edge", 1, "n", "numeric", &numeric).await;
    insert_list(
        &c,
        "edge",
        10,
        "d",
        "date",
        &["infinity", "-infinity", "262143-01-01", "5874897-12-31", "4713-01-01 BC"],
    )
    .await;
    insert_list(&c, "edge", 20, "ts", "timestamp", &["infinity", "-infinity", "294276-12-31 23:59:59.999999"]).await;
    insert_list(&c, "edge", 30, "tz", "timestamptz", &["infinity", "-infinity", "4713-01-01 00:00:00+00 BC"]).await;
    insert_list(&c, "edge", 40, "tm", "time", &["24:00:00", "23:59:59.9999999"]).await;
    exec(&c, "INSERT INTO edge (id, n) VALUES (101, 1.5); COMMIT").await;
    exec(&c, "INSERT INTO t (id, tx) VALUES (10001, 'the end')").await;
}

// ---- test_decoding's side ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Insert,
    Update,
    Delete,
    Truncate,
}

impl Op {
    fn letter(self) -> &'static str {
        match self {
            Op::Insert => "c",
            Op::Update => "u",
            Op::Delete => "d",
            Op::Truncate => "t",
        }
    }
}

/// A column value as `test_decoding` prints it.
#[derive(Debug, Clone, PartialEq)]
enum TdValue {
    Null,
    UnchangedToast,
    /// Numbers and booleans are printed without quotes.
    Bare(String),
    /// Everything else in single quotes, `'` doubled (this holds the text between the quotes).
    Quoted(String),
    /// `bit` and `varbit` as `B'0101'`.
    Bit(String),
}

impl std::fmt::Display for TdValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TdValue::Null => f.write_str("null"),
            TdValue::UnchangedToast => f.write_str("unchanged-toast-datum"),
            TdValue::Bare(s) => f.write_str(s),
            TdValue::Quoted(s) => write!(f, "'{}'", s.replace('\'', "''")),
            TdValue::Bit(s) => write!(f, "B'{s}'"),
        }
    }
}

#[derive(Debug, Clone)]
struct TdColumn {
    name: String,
    type_name: String,
    value: TdValue,
}

/// One row change (or one table of a TRUNCATE) from `test_decoding`.
#[derive(Debug, Clone)]
struct TdChange {
    xid: u32,
    /// Commit time as printed by `include-timestamp` (`YYYY-MM-DD HH:MM:SS.ffffff+00`).
    commit_ts: String,
    /// The change's own WAL position and the end of its transaction's commit record.
    lsn: u64,
    end_lsn: u64,
    table: String,
    op: Op,
    /// The old key or old row (`old-key:` of an UPDATE, the tuple of a DELETE); NULLs omitted.
    old: Option<Vec<TdColumn>>,
    new: Option<Vec<TdColumn>>,
    line: String,
}

impl TdChange {
    fn column(&self, name: &str) -> Option<&TdColumn> {
        self.new.iter().chain(&self.old).flatten().find(|c| c.name == name)
    }

    fn summary(&self) -> String {
        let line: String = self.line.chars().take(160).collect();
        format!("xid {} {}", self.xid, line)
    }
}

struct Cursor<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a str {
        &self.s[self.i..]
    }

    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }

    fn eat(&mut self, literal: &str) -> bool {
        let found = self.rest().starts_with(literal);
        if found {
            self.i += literal.len();
        }
        found
    }

    fn expect(&mut self, literal: &str) -> Result<(), String> {
        if self.eat(literal) {
            Ok(())
        } else {
            Err(format!(
                "expected {literal:?} at byte {} ({:?})",
                self.i,
                self.rest().chars().take(40).collect::<String>()
            ))
        }
    }

    /// An identifier as `quote_identifier` prints it: bare, or in double quotes with `"` doubled.
    fn ident(&mut self) -> Result<String, String> {
        if self.eat("\"") {
            return self.quoted('"');
        }
        let rest = self.rest();
        let len =
            rest.find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')).unwrap_or(rest.len());
        if len == 0 {
            return Err(format!("expected an identifier at byte {}", self.i));
        }
        self.i += len;
        Ok(rest[..len].to_string())
    }

    /// The rest of a quoted string whose opening quote was consumed; a doubled quote is one quote.
    fn quoted(&mut self, quote: char) -> Result<String, String> {
        let mut out = String::new();
        loop {
            let rest = self.rest();
            let end = rest.find(quote).ok_or_else(|| format!("unterminated {quote} string at byte {}", self.i))?;
            out.push_str(&rest[..end]);
            self.i += end + 1;
            if self.rest().starts_with(quote) {
                out.push(quote);
                self.i += 1;
            } else {
                return Ok(out);
            }
        }
    }

    fn value(&mut self) -> Result<TdValue, String> {
        if self.eat("'") {
            return Ok(TdValue::Quoted(self.quoted('\'')?));
        }
        if self.eat("B'") {
            return Ok(TdValue::Bit(self.quoted('\'')?));
        }
        let rest = self.rest();
        let token = &rest[..rest.find(' ').unwrap_or(rest.len())];
        self.i += token.len();
        Ok(match token {
            "" => return Err(format!("empty value at byte {}", self.i)),
            "null" => TdValue::Null,
            "unchanged-toast-datum" => TdValue::UnchangedToast,
            _ => TdValue::Bare(token.to_string()),
        })
    }

    /// ` name[type]:value` repeated, up to the end or ` new-tuple:`.
    fn tuple(&mut self) -> Result<Vec<TdColumn>, String> {
        let mut columns = Vec::new();
        while !self.at_end() && !self.rest().starts_with(" new-tuple:") {
            self.expect(" ")?;
            let name = self.ident()?;
            self.expect("[")?;
            // Type names may contain spaces and brackets (`character varying[]`), never `]:`.
            let end = self.rest().find("]:").ok_or_else(|| format!("unterminated type at byte {}", self.i))?;
            let type_name = self.rest()[..end].to_string();
            self.i += end + 2;
            let value = self.value()?;
            columns.push(TdColumn { name, type_name, value });
        }
        if columns.is_empty() {
            return Err(format!("empty tuple at byte {}", self.i));
        }
        Ok(columns)
    }

    fn optional_tuple(&mut self) -> Result<Option<Vec<TdColumn>>, String> {
        if self.eat(" (no-tuple-data)") {
            Ok(None)
        } else {
            self.tuple().map(Some)
        }
    }
}

type ParsedLine = (Vec<String>, Op, Option<Vec<TdColumn>>, Option<Vec<TdColumn>>);

/// `table public.t: INSERT: …`, `… UPDATE: [old-key: … new-tuple:] …`, `… DELETE: …`,
/// `table public.a, public.b: TRUNCATE: (no-flags)`.
fn parse_change_line(line: &str) -> Result<ParsedLine, String> {
    let mut c = Cursor { s: line, i: 0 };
    c.expect("table ")?;
    let mut tables = Vec::new();
    loop {
        let schema = c.ident()?;
        c.expect(".")?;
        let name = c.ident()?;
        tables.push(format!("{schema}.{name}"));
        if !c.eat(", ") {
            break;
        }
    }
    c.expect(": ")?;
    let (mut old, mut new) = (None, None);
    let op = if c.eat("INSERT:") {
        new = c.optional_tuple()?;
        Op::Insert
    } else if c.eat("UPDATE:") {
        if c.eat(" old-key:") {
            old = Some(c.tuple()?);
            c.expect(" new-tuple:")?;
        }
        new = c.optional_tuple()?;
        Op::Update
    } else if c.eat("DELETE:") {
        old = c.optional_tuple()?;
        Op::Delete
    } else if c.eat("TRUNCATE:") {
        // Flags (restart_seqs, cascade) have no counterpart in millrace's records.
        if !(c.eat(" (no-flags)") || (c.eat(" restart_seqs") | c.eat(" cascade"))) {
            return Err("bad TRUNCATE flags".into());
        }
        Op::Truncate
    } else {
        return Err(format!("unknown action at byte {}", c.i));
    };
    if !c.at_end() {
        return Err(format!("trailing text at byte {}: {:?}", c.i, c.rest()));
    }
    if op != Op::Truncate && tables.len() != 1 {
        return Err("several tables for a row change".into());
    }
    Ok((tables, op, old, new))
}

fn parse_lsn(text: &str) -> u64 {
    let (hi, lo) = text.split_once('/').unwrap_or_else(|| panic!("bad LSN {text:?}"));
    (u64::from_str_radix(hi, 16).unwrap() << 32) | u64::from_str_radix(lo, 16).unwrap()
}

/// Everything the `test_decoding` slot has, read (and consumed) with the session settings
/// millrace's replication connection uses; the output functions run in this backend, so these
/// settings are the ones that count.
async fn read_test_decoding(db: &TestDb, slot: &str) -> Vec<TdChange> {
    let c = db.client().await;
    // The SQL interface decodes only up to the flushed WAL, and the test server runs with
    // synchronous_commit=off: a synchronous commit of a transaction that wrote WAL (catalog rows;
    // no change test_decoding prints) flushes everything before it.
    exec(&c, "SET synchronous_commit = on; CREATE TEMP TABLE flush_wal ();").await;
    exec(
        &c,
        "SET TimeZone = 'UTC'; SET DateStyle = 'ISO'; SET extra_float_digits = 3; SET bytea_output = 'hex';
         SET IntervalStyle = 'postgres';",
    )
    .await;
    let rows = c
        .query(
            "SELECT lsn::text, xid::text, data FROM pg_logical_slot_get_changes($1, NULL, NULL,
                'include-xids', '0', 'skip-empty-xacts', '1', 'include-timestamp', '1')",
            &[&slot],
        )
        .await
        .expect("read the test_decoding slot");
    let mut changes = Vec::new();
    let mut open: Option<Vec<TdChange>> = None;
    for row in rows {
        let lsn = parse_lsn(row.get(0));
        let xid: u32 = row.get::<_, &str>(1).parse().expect("xid");
        let line: String = row.get(2);
        if line == "BEGIN" {
            assert!(open.is_none(), "BEGIN inside a transaction");
            open = Some(Vec::new());
        } else if let Some(rest) = line.strip_prefix("COMMIT") {
            let commit_ts = rest.strip_prefix(" (at ").and_then(|r| r.strip_suffix(')')).expect("COMMIT (at …)");
            for mut change in open.take().expect("COMMIT outside a transaction") {
                change.commit_ts = commit_ts.to_string();
                change.end_lsn = lsn;
                changes.push(change);
            }
        } else {
            let (tables, op, old, new) =
                parse_change_line(&line).unwrap_or_else(|e| panic!("cannot parse test_decoding line {line:?}: {e}"));
            let txn = open.as_mut().expect("change outside a transaction");
            for table in tables {
                txn.push(TdChange {
                    xid,
                    commit_ts: String::new(),
                    lsn,
                    end_lsn: 0,
                    table,
                    op,
                    old: old.clone(),
                    new: new.clone(),
                    line: line.clone(),
                });
            }
        }
    }
    assert!(open.is_none(), "unterminated transaction");
    changes
}

// ---- millrace's side ----

struct Millrace {
    records: Vec<ExactJson>,
}

/// `millrace tail --json --until-caught-up`, as `common::tail` runs it, keeping stderr. The lines
/// are read with [`JsonParser`], not serde_json: without its `float_roundtrip` feature serde_json
/// misreads many floats by an ulp and refuses `179769313486231570000…` (float8's maximum as
/// millrace writes it) as out of range, so the test would be checking serde_json, not millrace.
fn read_millrace(env: &[(String, String)]) -> Millrace {
    let out = common::millrace(env, &["tail", "--json", "--until-caught-up"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tail failed: {stderr}");
    let records = String::from_utf8(out.stdout)
        .expect("utf-8 output")
        .lines()
        .map(|line| JsonParser::parse(line).unwrap_or_else(|e| panic!("bad JSON line {line:?}: {e}")))
        .collect();
    Millrace { records }
}

// ---- JSON with exact numbers ----

/// JSON with numbers kept as their text and object members in order, duplicates included (the
/// `json` type keeps them).
#[derive(Debug, Clone, PartialEq)]
enum ExactJson {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<ExactJson>),
    Object(Vec<(String, ExactJson)>),
}

static JSON_NULL: ExactJson = ExactJson::Null;

impl ExactJson {
    /// A member of an object, or null.
    fn at(&self, key: &str) -> &ExactJson {
        match self {
            ExactJson::Object(members) => members.iter().rev().find(|(k, _)| k == key).map_or(&JSON_NULL, |(_, v)| v),
            _ => &JSON_NULL,
        }
    }

    fn members(&self) -> Option<&[(String, ExactJson)]> {
        match self {
            ExactJson::Object(members) => Some(members),
            _ => None,
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            ExactJson::String(s) => Some(s),
            _ => None,
        }
    }

    fn is_null(&self) -> bool {
        matches!(self, ExactJson::Null)
    }
}

impl std::fmt::Display for ExactJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let string = |s: &str| serde_json::to_string(s).expect("string to JSON");
        match self {
            ExactJson::Null => f.write_str("null"),
            ExactJson::Bool(b) => write!(f, "{b}"),
            ExactJson::Number(n) => f.write_str(n),
            ExactJson::String(s) => f.write_str(&string(s)),
            ExactJson::Array(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    write!(f, "{}{item}", if i > 0 { "," } else { "" })?;
                }
                f.write_str("]")
            }
            ExactJson::Object(members) => {
                f.write_str("{")?;
                for (i, (k, v)) in members.iter().enumerate() {
                    write!(f, "{}{}:{v}", if i > 0 { "," } else { "" }, string(k))?;
                }
                f.write_str("}")
            }
        }
    }
}

struct JsonParser<'a> {
    s: &'a [u8],
    i: usize,
}

impl JsonParser<'_> {
    fn parse(text: &str) -> Result<ExactJson, String> {
        let mut p = JsonParser { s: text.as_bytes(), i: 0 };
        let value = p.value()?;
        p.space();
        if p.i != p.s.len() {
            return Err(format!("trailing text at {}", p.i));
        }
        Ok(value)
    }

    fn space(&mut self) {
        while self.s.get(self.i).is_some_and(|b| b" \t\r\n".contains(b)) {
            self.i += 1;
        }
    }

    fn eat(&mut self, literal: &[u8]) -> bool {
        let found = self.s[self.i..].starts_with(literal);
        if found {
            self.i += literal.len();
        }
        found
    }

    fn value(&mut self) -> Result<ExactJson, String> {
        self.space();
        if self.eat(b"null") {
            Ok(ExactJson::Null)
        } else if self.eat(b"true") {
            Ok(ExactJson::Bool(true))
        } else if self.eat(b"false") {
            Ok(ExactJson::Bool(false))
        } else if self.eat(b"\"") {
            Ok(ExactJson::String(self.string()?))
        } else if self.eat(b"[") {
            let mut items = Vec::new();
            self.space();
            if !self.eat(b"]") {
                loop {
                    items.push(self.value()?);
                    self.space();
                    if self.eat(b"]") {
                        break;
                    }
                    if !self.eat(b",") {
                        return Err(format!("expected , or ] at {}", self.i));
                    }
                }
            }
            Ok(ExactJson::Array(items))
        } else if self.eat(b"{") {
            let mut members = Vec::new();
            self.space();
            if !self.eat(b"}") {
                loop {
                    self.space();
                    if !self.eat(b"\"") {
                        return Err(format!("expected a key at {}", self.i));
                    }
                    let key = self.string()?;
                    self.space();
                    if !self.eat(b":") {
                        return Err(format!("expected : at {}", self.i));
                    }
                    members.push((key, self.value()?));
                    self.space();
                    if self.eat(b"}") {
                        break;
                    }
                    if !self.eat(b",") {
                        return Err(format!("expected , or }} at {}", self.i));
                    }
                }
            }
            Ok(ExactJson::Object(members))
        } else {
            let start = self.i;
            while self.s.get(self.i).is_some_and(|b| b"+-.eE0123456789".contains(b)) {
                self.i += 1;
            }
            let number = std::str::from_utf8(&self.s[start..self.i]).expect("ASCII");
            if decimal_parts(number).is_none() {
                return Err(format!("bad value at {start}"));
            }
            Ok(ExactJson::Number(number.to_string()))
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let digits = self.s.get(self.i..self.i + 4).ok_or("short \\u escape")?;
        self.i += 4;
        u32::from_str_radix(std::str::from_utf8(digits).map_err(|e| e.to_string())?, 16).map_err(|e| e.to_string())
    }

    /// The rest of a string whose opening quote was consumed. A lone surrogate (which the `json`
    /// type accepts) becomes U+FFFD.
    fn string(&mut self) -> Result<String, String> {
        let mut bytes = Vec::new();
        loop {
            let b = *self.s.get(self.i).ok_or("unterminated string")?;
            self.i += 1;
            match b {
                b'"' => return String::from_utf8(bytes).map_err(|e| e.to_string()),
                b'\\' => {
                    let escape = *self.s.get(self.i).ok_or("unterminated escape")?;
                    self.i += 1;
                    let c = match escape {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let first = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&first) && self.s[self.i..].starts_with(b"\\u") {
                                self.i += 2;
                                let second = self.hex4()?;
                                0x10000 + ((first - 0xD800) << 10) + (second.wrapping_sub(0xDC00) & 0x3FF)
                            } else {
                                first
                            };
                            char::from_u32(code).unwrap_or('\u{FFFD}')
                        }
                        other => return Err(format!("bad escape \\{}", other as char)),
                    };
                    let mut buf = [0; 4];
                    bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                _ => bytes.push(b),
            }
        }
    }
}

/// A decimal number as (negative, significant digits, exponent), zero as (false, "0", 0):
/// `1.50`, `15e-1` and `1.5` are the same number.
fn decimal_parts(text: &str) -> Option<(bool, String, i64)> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], unsigned[at + 1..].parse::<i64>().ok()?),
        None => (unsigned, 0),
    };
    let (int, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() || !int.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = format!("{int}{fraction}");
    let significant = digits.trim_start_matches('0');
    if significant.is_empty() {
        return Some((false, "0".into(), 0));
    }
    let trimmed = significant.trim_end_matches('0');
    let exponent = exponent - fraction.len() as i64 + (significant.len() - trimmed.len()) as i64;
    Some((negative, trimmed.to_string(), exponent))
}

// ---- millrace's JSON values back to PostgreSQL text ----

/// `[+-]YYYY…-MM-DD` (chrono's ISO 8601, astronomical years: 1 BC is `0000`, 44 BC `-0043`) to
/// PostgreSQL's `YYYY-MM-DD` and whether ` BC` follows.
fn pg_date(iso: &str) -> Result<(String, bool), String> {
    let (negative, body) = match iso.strip_prefix('-') {
        Some(body) => (true, body),
        None => (false, iso.strip_prefix('+').unwrap_or(iso)),
    };
    let dash = body.find('-').ok_or_else(|| format!("not a date: {iso:?}"))?;
    let year: i64 = body[..dash].parse().map_err(|_| format!("not a date: {iso:?}"))?;
    let month_day = &body[dash..];
    if dash < 4 || month_day.len() != 6 || month_day.as_bytes()[3] != b'-' {
        return Err(format!("not a date: {iso:?}"));
    }
    let year = if negative { -year } else { year };
    Ok(if year <= 0 { (format!("{:04}{month_day}", 1 - year), true) } else { (format!("{year:04}{month_day}"), false) })
}

/// `HH:MM:SS[.fff…]` with chrono's 3, 6 or 9 fraction digits to PostgreSQL's trimmed fraction.
fn pg_time(iso: &str) -> Result<String, String> {
    let (hms, fraction) = iso.split_once('.').unwrap_or((iso, ""));
    let b = hms.as_bytes();
    if b.len() != 8 || b[2] != b':' || b[5] != b':' || !fraction.bytes().all(|c| c.is_ascii_digit()) {
        return Err(format!("not a time: {iso:?}"));
    }
    let fraction = fraction.trim_end_matches('0');
    Ok(if fraction.is_empty() { hms.to_string() } else { format!("{hms}.{fraction}") })
}

fn pg_timestamp(iso: &str, zone: &str) -> Result<String, String> {
    let (date, time) = iso.split_once('T').ok_or_else(|| format!("not a timestamp: {iso:?}"))?;
    let (date, bc) = pg_date(date)?;
    Ok(format!("{date} {}{zone}{}", pg_time(time)?, if bc { " BC" } else { "" }))
}

fn pg_timestamptz(iso: &str) -> Result<String, String> {
    pg_timestamp(iso.strip_suffix('Z').ok_or_else(|| format!("not UTC: {iso:?}"))?, "+00")
}

fn expect_str<'j>(json: &'j ExactJson, type_name: &str) -> Result<&'j str, String> {
    json.as_str().ok_or_else(|| format!("expected a JSON string for {type_name}"))
}

/// Whether PostgreSQL text of a date or timestamp is one ISO 8601 has no plain form for: an
/// infinity, a BC year, a year beyond 9999. millrace writes exactly those as PostgreSQL's text.
fn beyond_iso(text: &str) -> bool {
    let year = text.split('-').next().unwrap_or("");
    text == "infinity" || text == "-infinity" || text.ends_with(" BC") || year.len() > 4
}

/// A timestamp as millrace writes it: ISO 8601 (`T`, and `Z` for timestamptz) for years 1–9999,
/// PostgreSQL's own text otherwise.
fn pg_timestamp_of(json: &ExactJson, type_name: &str, zone: bool) -> Result<String, String> {
    let text = expect_str(json, type_name)?;
    if text.contains('T') {
        return if zone { pg_timestamptz(text) } else { pg_timestamp(text, "") };
    }
    if !beyond_iso(text) {
        return Err(format!("{text:?} is PostgreSQL text where ISO 8601 was expected"));
    }
    Ok(text.to_string())
}

/// The domains of the test schemas and their base types: a domain's values come out as the base
/// type's, while `test_decoding` names the domain and quotes the value.
const DOMAINS: [(&str, &str); 3] = [("qty", "numeric"), ("posint", "integer"), ("small_qty", "numeric")];

fn base_type(type_name: &str) -> &str {
    DOMAINS.iter().find(|(domain, _)| *domain == type_name).map_or(type_name, |(_, base)| base)
}

/// Types `test_decoding` prints without quotes.
fn bare_type(type_name: &str) -> bool {
    matches!(type_name, "smallint" | "integer" | "bigint" | "oid" | "numeric" | "real" | "double precision")
}

/// What `test_decoding` would print for millrace's value of a column of this type.
fn render(type_name: &str, json: &ExactJson) -> Result<TdValue, String> {
    Ok(match (type_name, json) {
        (_, ExactJson::Null) => TdValue::Null,
        ("smallint" | "integer" | "bigint" | "oid", ExactJson::Number(n))
            if n.trim_start_matches('-').bytes().all(|b| b.is_ascii_digit()) =>
        {
            TdValue::Bare(n.clone())
        }
        ("smallint" | "integer" | "bigint" | "oid", _) => {
            return Err(format!("expected a JSON integer for {type_name}"))
        }
        // A string: a JSON number would be read as a float. NaN, Infinity and digits beyond
        // 38 are the same string form.
        ("numeric", _) => TdValue::Bare(expect_str(json, type_name)?.to_string()),
        ("boolean", ExactJson::Bool(b)) => TdValue::Bare(b.to_string()),
        ("boolean", _) => return Err("expected a JSON boolean".into()),
        // PostgreSQL's text: ISO for years 1–9999, `0044-03-15 BC`, `5874897-12-31`, `infinity`.
        ("date", _) => TdValue::Quoted(expect_str(json, type_name)?.to_string()),
        ("time without time zone", _) => TdValue::Quoted(pg_time(expect_str(json, type_name)?)?),
        ("timestamp without time zone", _) => TdValue::Quoted(pg_timestamp_of(json, type_name, false)?),
        ("timestamp with time zone", _) => TdValue::Quoted(pg_timestamp_of(json, type_name, true)?),
        ("bit" | "bit varying", _) => TdValue::Bit(expect_str(json, type_name)?.to_string()),
        // text, varchar, bpchar (padded), bytea (hex), uuid, enums, interval, …
        _ => TdValue::Quoted(expect_str(json, type_name)?.to_string()),
    })
}

/// An array's text as `array_out` prints it, read independently of millrace: `None` for NULL,
/// a string for an element, a list for a sub-array.
#[derive(Debug, Clone, PartialEq)]
enum TdArray {
    Null,
    Element(String),
    List(Vec<TdArray>),
}

fn parse_td_array(text: &str) -> Result<TdArray, String> {
    fn level(chars: &mut std::iter::Peekable<std::str::Chars>) -> Result<TdArray, String> {
        if chars.next() != Some('{') {
            return Err("expected {".into());
        }
        let mut items = Vec::new();
        if chars.peek() == Some(&'}') {
            chars.next();
            return Ok(TdArray::List(items));
        }
        loop {
            let item = match chars.peek() {
                Some('{') => level(chars)?,
                Some('"') => {
                    chars.next();
                    let mut out = String::new();
                    loop {
                        match chars.next().ok_or("unterminated element")? {
                            '"' => break,
                            '\\' => out.push(chars.next().ok_or("unterminated escape")?),
                            c => out.push(c),
                        }
                    }
                    TdArray::Element(out)
                }
                _ => {
                    let mut out = String::new();
                    while let Some(&c) = chars.peek() {
                        if c == ',' || c == '}' {
                            break;
                        }
                        out.push(c);
                        chars.next();
                    }
                    if out.eq_ignore_ascii_case("null") {
                        TdArray::Null
                    } else {
                        TdArray::Element(out)
                    }
                }
            };
            items.push(item);
            match chars.next() {
                Some(',') => {}
                Some('}') => return Ok(TdArray::List(items)),
                other => return Err(format!("expected , or }} but found {other:?}")),
            }
        }
    }
    let mut chars = text.chars().peekable();
    let array = level(&mut chars)?;
    if chars.next().is_some() {
        return Err("trailing text".into());
    }
    Ok(array)
}

/// Compares an array as `test_decoding` printed it with millrace's JSON array, element by element
/// as values of `element_type`.
fn compare_array(element_type: &str, td: &TdArray, mr: &ExactJson) -> Result<(), String> {
    match (td, mr) {
        (TdArray::List(a), ExactJson::Array(b)) if a.len() == b.len() => {
            a.iter().zip(b).try_for_each(|(x, y)| compare_array(element_type, x, y))
        }
        (TdArray::List(a), ExactJson::Array(b)) => Err(format!("{} elements became {}", a.len(), b.len())),
        (TdArray::Null, ExactJson::Null) => Ok(()),
        (TdArray::Element(text), _) if !mr.is_null() => {
            let base = base_type(element_type);
            let td = if bare_type(base) { TdValue::Bare(text.clone()) } else { TdValue::Quoted(text.clone()) };
            compare_value(base, &td, mr)
        }
        _ => Err(format!("{td:?} became {mr}")),
    }
}

/// A float as millrace writes it: a JSON number, or `"NaN"`, `"Infinity"`, `"-Infinity"`. Read
/// with Rust's correctly rounded parser.
fn float_of(json: &ExactJson) -> Option<f64> {
    match json {
        ExactJson::Number(n) => n.parse().ok(),
        ExactJson::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

/// Compares one column; on a mismatch returns what millrace's value stands for.
fn compare_value(type_name: &str, td: &TdValue, mr: &ExactJson) -> Result<(), String> {
    // A domain's value comes out as its base type's; test_decoding quotes it either way.
    let base = base_type(type_name);
    if base != type_name {
        let td = match td {
            TdValue::Quoted(text) if bare_type(base) => TdValue::Bare(text.clone()),
            other => other.clone(),
        };
        return compare_value(base, &td, mr);
    }
    match (td, type_name) {
        (TdValue::Null, _) if mr.is_null() => Ok(()),
        // Also for json/jsonb: a JSON `null` document is not SQL NULL.
        (_, _) if mr.is_null() => Err("SQL NULL".into()),
        (TdValue::Bare(text), "real" | "double precision") => {
            let expected: f64 = text.parse().map_err(|_| format!("test_decoding float {text:?} unreadable"))?;
            match float_of(mr) {
                // Bit for bit: catches a float4 widened from f32 (1.1 → 1.100000023841858) and -0.
                Some(got) if (got.is_nan() && expected.is_nan()) || got.to_bits() == expected.to_bits() => Ok(()),
                Some(got) => Err(format!("the float {got:e}")),
                None => Err("not a float".into()),
            }
        }
        // A string holding exactly the text PostgreSQL's output function gave.
        (TdValue::Quoted(text), "json" | "jsonb") => match mr {
            ExactJson::String(got) if got == text => Ok(()),
            ExactJson::String(got) => Err(format!("the JSON text {got:?}")),
            _ => Err("not a string holding the JSON text".into()),
        },
        (TdValue::Quoted(text), array) if array.ends_with("[]") => {
            let element = &array[..array.len() - 2];
            if text.starts_with('[') {
                // Explicit bounds, which a JSON array cannot hold: the text itself.
                return match mr.as_str() {
                    Some(got) if got == text => Ok(()),
                    _ => Err("not the array's text".into()),
                };
            }
            let parsed = parse_td_array(text).map_err(|e| format!("test_decoding array unreadable: {e}"))?;
            if !matches!(mr, ExactJson::Array(_)) {
                return Err("not a JSON array".into());
            }
            compare_array(element, &parsed, mr)
        }
        _ => match render(type_name, mr) {
            Ok(rendered) if rendered == *td => Ok(()),
            Ok(rendered) => Err(rendered.to_string()),
            Err(e) => Err(e),
        },
    }
}

// ---- the comparison ----

fn record_table(record: &ExactJson) -> String {
    let source = record.at("source");
    format!("{}.{}", source.at("schema").as_str().unwrap_or("?"), source.at("table").as_str().unwrap_or("?"))
}

fn record_summary(record: &ExactJson) -> String {
    let text: String = record.to_string().chars().take(200).collect();
    format!("{} {} {text}", record.at("op"), record_table(record))
}

/// Whether `mr` is the same change as `td`: transaction, table, operation and the value of the
/// first column `test_decoding` printed (the id in every table here).
fn same_change(td: &TdChange, mr: &ExactJson) -> bool {
    if *mr.at("source").at("xid") != ExactJson::Number(td.xid.to_string())
        || record_table(mr) != td.table
        || mr.at("op").as_str() != Some(td.op.letter())
    {
        return false;
    }
    let (columns, image) = match (&td.new, &td.old) {
        (Some(new), _) => (new, mr.at("after")),
        (None, Some(old)) => (old, mr.at("before")),
        (None, None) => return true,
    };
    let first = &columns[0];
    matches!(&first.value, TdValue::Null | TdValue::UnchangedToast)
        || compare_value(&first.type_name, &first.value, image.at(&first.name)).is_ok()
}

type Members = [(String, ExactJson)];

fn member<'j>(members: &'j Members, name: &str) -> Option<&'j ExactJson> {
    members.iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

struct Comparison {
    problems: Vec<String>,
    values: usize,
}

impl Comparison {
    fn column(&mut self, at: &str, image: &str, column: &TdColumn, mr: Option<&ExactJson>) {
        self.values += 1;
        let outcome = match mr {
            None => Err("absent".to_string()),
            Some(json) => compare_value(&column.type_name, &column.value, json),
        };
        if let Err(got) = outcome {
            let raw = mr.map_or("absent".to_string(), |v| v.to_string());
            self.problems.push(format!(
                "{at}: {image}.{} [{}]: test_decoding {} but millrace {raw} (read back: {got})",
                column.name, column.type_name, column.value
            ));
        }
    }

    /// The new row: every column `test_decoding` printed, unchanged TOAST values absent from
    /// `after` and named in `unchanged`.
    fn new_row(&mut self, at: &str, td: &[TdColumn], after: &Members, unchanged: &BTreeSet<String>) {
        for column in td {
            if column.value == TdValue::UnchangedToast {
                self.values += 1;
                let value = member(after, &column.name);
                if value.is_some() || !unchanged.contains(&column.name) {
                    self.problems.push(format!(
                        "{at}: after.{} is unchanged-toast-datum in test_decoding but millrace has {value:?}, unchanged {unchanged:?}",
                        column.name
                    ));
                }
            } else {
                self.column(at, "after", column, member(after, &column.name));
            }
        }
        let names: BTreeSet<&str> = td.iter().map(|c| c.name.as_str()).collect();
        let toasted: BTreeSet<&str> =
            td.iter().filter(|c| c.value == TdValue::UnchangedToast).map(|c| c.name.as_str()).collect();
        for (extra, _) in after.iter().filter(|(k, _)| !names.contains(k.as_str())) {
            self.problems.push(format!("{at}: millrace has after.{extra}, test_decoding has no such column"));
        }
        for extra in unchanged.iter().filter(|k| !toasted.contains(k.as_str())) {
            self.problems.push(format!("{at}: millrace names {extra} unchanged, test_decoding has a value"));
        }
    }

    /// The old key or row. `test_decoding` leaves out NULL columns. Under `REPLICA IDENTITY FULL`
    /// millrace's `before` has every column of the table, those `test_decoding` left out null;
    /// otherwise it has the key columns and nothing else: the others were not sent, and `null`
    /// would claim they were NULL.
    fn old_row(&mut self, at: &str, td: &[TdColumn], before: &Members, table: Option<&TableInfo>) {
        for column in td {
            self.column(at, "before", column, member(before, &column.name));
        }
        for (name, value) in before {
            if !value.is_null() && !td.iter().any(|c| &c.name == name) {
                self.problems.push(format!("{at}: millrace has before.{name} = {value}, test_decoding has no value"));
            }
        }
        match table {
            Some(table) if table.full => {
                for name in table.columns.iter().filter(|name| member(before, name).is_none()) {
                    self.problems.push(format!("{at}: before.{name} absent under REPLICA IDENTITY FULL"));
                }
            }
            Some(_) => {
                for (name, value) in before.iter().filter(|(name, _)| !td.iter().any(|c| &c.name == name)) {
                    self.problems.push(format!(
                        "{at}: before.{name} = {value} in an old-key image; a column PostgreSQL did not send must be absent"
                    ));
                }
            }
            None => self.problems.push(format!("{at}: no table information")),
        }
    }

    fn change(&mut self, index: usize, td: &TdChange, mr: &ExactJson, tables: &Tables) {
        let at = format!("change #{index} ({} {} xid {})", td.op.letter(), td.table, td.xid);
        let source = mr.at("source");
        let commit_ts = source.at("commit_ts").as_str().map(pg_timestamptz);
        if commit_ts != Some(Ok(td.commit_ts.clone())) {
            self.problems.push(format!(
                "{at}: commit time {} in test_decoding but millrace {} ({commit_ts:?})",
                td.commit_ts,
                source.at("commit_ts")
            ));
        }
        // millrace gives the commit record's LSN: after the change, before the commit's end.
        let lsn = source.at("lsn").as_str().map(parse_lsn).unwrap_or(0);
        if !(td.lsn < lsn && lsn < td.end_lsn) {
            self.problems.push(format!(
                "{at}: millrace LSN {} is not between the change ({:X}/{:X}) and the end of its commit ({:X}/{:X})",
                source.at("lsn"),
                td.lsn >> 32,
                td.lsn as u32,
                td.end_lsn >> 32,
                td.end_lsn as u32
            ));
        }
        let unchanged: BTreeSet<String> = match mr.at("unchanged") {
            ExactJson::Array(names) => names.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
            _ => BTreeSet::new(),
        };
        match (&td.new, mr.at("after")) {
            (Some(new), after) if after.members().is_some() => {
                self.new_row(&at, new, after.members().unwrap_or_default(), &unchanged)
            }
            (None, ExactJson::Null) => {}
            (new, after) => self.problems.push(format!("{at}: new tuple {new:?} in test_decoding, after {after}")),
        }
        match (&td.old, mr.at("before")) {
            (Some(old), before) if before.members().is_some() => {
                self.old_row(&at, old, before.members().unwrap_or_default(), tables.get(&td.table))
            }
            (None, ExactJson::Null) => {}
            (old, before) => self.problems.push(format!("{at}: old tuple {old:?} in test_decoding, before {before}")),
        }
    }
}

/// What the comparison needs to know of a published table.
#[derive(Debug, Clone)]
struct TableInfo {
    /// `REPLICA IDENTITY FULL`.
    full: bool,
    /// The primary key, or the replica identity index's columns.
    key: Vec<String>,
    /// Every column, in order.
    columns: Vec<String>,
}

type Tables = std::collections::HashMap<String, TableInfo>;

/// Reads identity, key and columns of `tables` from the catalog as they are now.
async fn table_info(c: &Client, tables: &[&str]) -> Tables {
    let mut info = Tables::new();
    for table in tables {
        let row = c
            .query_one(
                "SELECT c.relreplident::text = 'f',
                    ARRAY(SELECT a.attname::text FROM pg_index i
                          CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, n)
                          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                          WHERE i.indrelid = c.oid AND (i.indisreplident OR (i.indisprimary AND c.relreplident <> 'i'))
                          ORDER BY k.n),
                    ARRAY(SELECT attname::text FROM pg_attribute WHERE attrelid = c.oid AND attnum > 0
                          AND NOT attisdropped ORDER BY attnum)
                 FROM pg_class c WHERE c.oid = $1::text::regclass",
                &[table],
            )
            .await
            .unwrap_or_else(|e| panic!("table information of {table}: {e:?}"));
        info.insert(table.to_string(), TableInfo { full: row.get(0), key: row.get(1), columns: row.get(2) });
    }
    info
}

/// `test_decoding` prints an update that changes the key as one UPDATE with the old key (or old
/// row); millrace emits Debezium's delete of the old key and create of the new row. Returns the
/// expected changes and how many updates were split.
fn expand_key_changes(td: Vec<TdChange>, tables: &Tables) -> (Vec<TdChange>, usize) {
    let mut out = Vec::with_capacity(td.len());
    let mut split = 0;
    for change in td {
        let key = tables.get(&change.table).map(|t| t.key.as_slice()).unwrap_or_default();
        let changed = change.op == Op::Update
            && !key.is_empty()
            && match (&change.old, &change.new) {
                (Some(old), Some(new)) => key.iter().any(|k| {
                    let value = |row: &[TdColumn]| row.iter().find(|c| &c.name == k).map(|c| c.value.clone());
                    value(old) != value(new)
                }),
                _ => false,
            };
        if changed {
            split += 1;
            out.push(TdChange { op: Op::Delete, new: None, ..change.clone() });
            out.push(TdChange { op: Op::Insert, old: None, ..change });
        } else {
            out.push(change);
        }
    }
    (out, split)
}

/// Walks both sequences in order; a change one side lacks is reported and stepped over.
fn compare(td: &[TdChange], mr: &[ExactJson], tables: &Tables) -> Comparison {
    let mut comparison = Comparison { problems: Vec::new(), values: 0 };
    let (mut i, mut j) = (0, 0);
    while i < td.len() || j < mr.len() {
        match (td.get(i), mr.get(j)) {
            (Some(a), Some(b)) if same_change(a, b) => {
                comparison.change(i, a, b, tables);
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) => {
                if td.get(i + 1).is_some_and(|next| same_change(next, b)) {
                    comparison.problems.push(format!("change #{i} missing from millrace: {}", a.summary()));
                    i += 1;
                } else if mr.get(j + 1).is_some_and(|next| same_change(a, next)) {
                    comparison
                        .problems
                        .push(format!("millrace record #{j} not in test_decoding: {}", record_summary(b)));
                    j += 1;
                } else {
                    comparison.problems.push(format!(
                        "sequences diverge at change #{i} / record #{j}:\n  test_decoding: {}\n  millrace: {}",
                        a.summary(),
                        record_summary(b)
                    ));
                    break;
                }
            }
            (Some(a), None) => {
                comparison.problems.push(format!("change #{i} missing from millrace: {}", a.summary()));
                i += 1;
            }
            (None, Some(b)) => {
                comparison.problems.push(format!("millrace record #{j} not in test_decoding: {}", record_summary(b)));
                j += 1;
            }
            (None, None) => unreachable!(),
        }
    }
    comparison
}

fn assert_no_problems(problems: &[String]) {
    if !problems.is_empty() {
        let shown: Vec<&str> = problems.iter().take(60).map(String::as_str).collect();
        panic!("{} differences between millrace and test_decoding:\n{}", problems.len(), shown.join("\n"));
    }
}

/// A database with `schema`, millrace set up for `tables`, and a `test_decoding` slot created
/// right after millrace's pgoutput slot.
async fn prepare(prefix: &str, schema: &str, tables: &[&str]) -> (TestDb, Vec<(String, String)>, String) {
    let db = TestDb::create(prefix).await;
    let c = db.client().await;
    exec(&c, schema).await;
    let env = db.millrace_env(tables);
    setup(&env);
    let slot = format!("{}_td", db.name);
    c.execute("SELECT pg_create_logical_replication_slot($1, 'test_decoding')", &[&slot])
        .await
        .expect("create the test_decoding slot");
    (db, env, slot)
}

fn td_id(change: &TdChange) -> Option<i64> {
    match &change.column("id")?.value {
        TdValue::Bare(id) => id.parse().ok(),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pgoutput_decoding_agrees_with_test_decoding() {
    let (db, env, td_slot) = prepare("diff", SCHEMA, &PUBLISHED).await;
    let c = db.client().await;
    // Small enough that the large transactions below are streamed to millrace in progress.
    exec(&c, &format!("ALTER DATABASE \"{}\" SET logical_decoding_work_mem = '64kB'", db.name)).await;
    workload(&db).await;

    let td = read_test_decoding(&db, &td_slot).await;
    let millrace = read_millrace(&env);
    let tables = table_info(&c, &PUBLISHED).await;

    let published: Vec<TdChange> = td.into_iter().filter(|c| PUBLISHED.contains(&c.table.as_str())).collect();
    let edge = published.iter().filter(|c| c.table == "public.edge" && td_id(c).is_some_and(|id| id < 100)).count();
    let (expected, key_changes) = expand_key_changes(published, &tables);

    // The workload must really exercise what this test claims to cover.
    let count = |op: Op| expected.iter().filter(|c| c.op == op).count();
    let toasted =
        expected.iter().flat_map(|c| c.new.iter().flatten()).filter(|col| col.value == TdValue::UnchangedToast).count();
    assert!(count(Op::Insert) > 200 && count(Op::Update) > 20 && count(Op::Delete) > 10, "workload too small");
    assert_eq!(count(Op::Truncate), 2, "one TRUNCATE of two published tables");
    assert!(toasted >= 10, "expected unchanged TOAST values, found {toasted}");
    assert!(key_changes >= 5, "expected updates that change the key, found {key_changes}");
    assert_eq!(edge, 19, "rows of edge values in test_decoding");

    let comparison = compare(&expected, &millrace.records, &tables);
    assert_no_problems(&comparison.problems);

    // The large transactions did reach millrace as streamed transactions.
    let mut streamed = 0;
    for _ in 0..50 {
        let row = c
            .query_one("SELECT stream_txns FROM pg_stat_replication_slots WHERE slot_name = $1", &[&db.slot()])
            .await
            .expect("slot statistics");
        streamed = row.get::<_, i64>(0);
        if streamed > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(streamed > 0, "no transaction was streamed to millrace; the streaming path went untested");

    println!(
        "{} changes ({} c, {} u, {} d, {} t) and {} values agree; {toasted} unchanged TOAST values, \
         {key_changes} key changes, {streamed} streamed transactions, {edge} rows of edge values",
        expected.len(),
        count(Op::Insert),
        count(Op::Update),
        count(Op::Delete),
        count(Op::Truncate),
        comparison.values,
    );
}

// ---- one case at a time ----

/// A database with `schema`, `workload` run on it, and both sides read: the differences, and
/// millrace's records.
async fn differential(prefix: &str, schema: &str, tables: &[&str], workload: &str) -> Vec<ExactJson> {
    let (db, env, td_slot) = prepare(prefix, schema, tables).await;
    let c = db.client().await;
    exec(&c, workload).await;
    let td = read_test_decoding(&db, &td_slot).await;
    let millrace = read_millrace(&env);
    let info = table_info(&c, tables).await;
    let (expected, _) = expand_key_changes(td, &info);
    assert_no_problems(&compare(&expected, &millrace.records, &info).problems);
    millrace.records
}

/// The record of `op` on the row with `id` (in `after`, or in `before` for a delete).
fn record<'r>(records: &'r [ExactJson], op: &str, id: i64) -> &'r ExactJson {
    let id = ExactJson::Number(id.to_string());
    records
        .iter()
        .find(|r| {
            r.at("op").as_str() == Some(op) && (if op == "d" { r.at("before") } else { r.at("after") }).at("id") == &id
        })
        .unwrap_or_else(|| {
            panic!("no {op} record of id {id} in {}", records.iter().map(|r| format!("\n{r}")).collect::<String>())
        })
}

fn string(s: &str) -> ExactJson {
    ExactJson::String(s.to_string())
}

fn number(n: &str) -> ExactJson {
    ExactJson::Number(n.to_string())
}

/// The columns of a row image, in order.
fn names(image: &ExactJson) -> Vec<&str> {
    image.members().unwrap_or_default().iter().map(|(k, _)| k.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn numeric_nan_infinities_and_any_precision_come_out_exactly() {
    let forty = "1234567890123456789012345678901234567890";
    let scale_50 = format!("0.{}1", "0".repeat(49));
    let records = differential(
        "diffnum",
        "CREATE TABLE nums (id int PRIMARY KEY, n numeric, n50 numeric(60, 50))",
        &["public.nums"],
        &format!(
            "INSERT INTO nums (id, n) VALUES (1, 'NaN'), (2, 'Infinity'), (3, '-Infinity'), (4, {forty}), (5, -{forty}.5),
                 (6, 1.50), (7, 1.{zeros}1);
             INSERT INTO nums (id, n50) VALUES (8, {scale_50}), (9, 1);",
            zeros = "0".repeat(48)
        ),
    )
    .await;
    let n = |id| record(&records, "c", id).at("after").at("n").clone();
    assert_eq!(n(1), string("NaN"));
    assert_eq!(n(2), string("Infinity"));
    assert_eq!(n(3), string("-Infinity"));
    assert_eq!(n(4), string(forty), "40 digits");
    assert_eq!(n(5), string(&format!("-{forty}.5")));
    assert_eq!(n(6), string("1.50"), "a numeric that fits is printed as before");
    assert_eq!(n(7), string(&format!("1.{}1", "0".repeat(48))), "scale 49");
    assert_eq!(*record(&records, "c", 8).at("after").at("n50"), string(&scale_50), "scale 50");
    assert_eq!(*record(&records, "c", 9).at("after").at("n50"), string(&format!("1.{}", "0".repeat(50))));
}

#[tokio::test(flavor = "multi_thread")]
async fn infinite_and_extended_year_dates_and_timestamps_come_out_as_postgresql_text() {
    let records = differential(
        "diffdate",
        "CREATE TABLE times (id int PRIMARY KEY, d date, ts timestamp, tz timestamptz)",
        &["public.times"],
        "INSERT INTO times VALUES
             (1, 'infinity', 'infinity', 'infinity'),
             (2, '-infinity', '-infinity', '-infinity'),
             (3, '5874897-12-31', '294276-12-31 23:59:59.999999', '294276-12-31 23:59:59.999999+00'),
             (4, '4713-01-01 BC', '4713-01-01 00:00:00 BC', '4713-01-01 00:00:00+00 BC'),
             (5, '4714-11-24 BC', '10000-01-01 00:00:00', '0044-03-15 12:00:00+00 BC'),
             (6, '2024-02-29', '2024-01-02 03:04:05.5', '2024-01-02 03:04:05+02');",
    )
    .await;
    let after = |id| record(&records, "c", id).at("after").clone();
    let expected = [
        (1, ["infinity", "infinity", "infinity"]),
        (2, ["-infinity", "-infinity", "-infinity"]),
        (3, ["5874897-12-31", "294276-12-31 23:59:59.999999", "294276-12-31 23:59:59.999999+00"]),
        (4, ["4713-01-01 BC", "4713-01-01 00:00:00 BC", "4713-01-01 00:00:00+00 BC"]),
        (5, ["4714-11-24 BC", "10000-01-01 00:00:00", "0044-03-15 12:00:00+00 BC"]),
        (6, ["2024-02-29", "2024-01-02T03:04:05.500", "2024-01-02T01:04:05Z"]),
    ];
    for (id, [d, ts, tz]) in expected {
        let row = after(id);
        assert_eq!((row.at("d"), row.at("ts"), row.at("tz")), (&string(d), &string(ts), &string(tz)), "id {id}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn time_24_00_comes_out() {
    let records = differential(
        "difftime",
        "CREATE TABLE clock (id int PRIMARY KEY, t time)",
        &["public.clock"],
        "INSERT INTO clock VALUES (1, '24:00:00'), (2, '23:59:59.9999999'), (3, '00:00:00'), (4, '12:34:56.5');",
    )
    .await;
    let t = |id| record(&records, "c", id).at("after").at("t").clone();
    assert_eq!(
        (t(1), t(2), t(3), t(4)),
        (string("24:00:00"), string("24:00:00"), string("00:00:00"), string("12:34:56.500"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_integer_domain_is_a_number_and_domains_are_their_base_type() {
    let records = differential(
        "diffdomain",
        "CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
         CREATE DOMAIN qty AS numeric CHECK (VALUE >= 0);
         CREATE DOMAIN small_qty AS qty CHECK (VALUE < 1000);
         CREATE TABLE dom (id int PRIMARY KEY, pi posint, q qty, sq small_qty, pa posint[]);",
        &["public.dom"],
        "INSERT INTO dom VALUES (1, 7, 4.50, 12.5, '{1,2,NULL}'), (2, 2147483647, 'NaN', 0, '{}'), (3, NULL, NULL, NULL, NULL);",
    )
    .await;
    let a = record(&records, "c", 1).at("after").clone();
    assert_eq!(*a.at("pi"), number("7"), "an integer domain is a JSON number");
    assert_eq!(*a.at("q"), string("4.50"));
    assert_eq!(*a.at("sq"), string("12.5"), "a domain over a domain");
    assert_eq!(*a.at("pa"), ExactJson::Array(vec![number("1"), number("2"), ExactJson::Null]), "an array of a domain");
    let b = record(&records, "c", 2).at("after").clone();
    assert_eq!((b.at("pi"), b.at("q"), b.at("pa")), (&number("2147483647"), &string("NaN"), &ExactJson::Array(vec![])));
}

#[tokio::test(flavor = "multi_thread")]
async fn arrays_are_json_arrays_of_their_element_type() {
    let records = differential(
        "diffarray",
        "CREATE TABLE arr (id int PRIMARY KEY, ia int4[], ta text[], na numeric[], da date[])",
        &["public.arr"],
        r#"INSERT INTO arr VALUES
             (1, '{1,2,3}', '{"a b",c,NULL,"q\"x","back\\slash","",é}', '{1.50,NaN}', '{2024-02-29,infinity}'),
             (2, '{}', '{}', '{}', '{}'),
             (3, '{NULL,-1}', '{"NULL",null}', '{NULL}', '{NULL}'),
             (4, '{{1,2},{3,4}}', '{{a,b},{c,d}}', NULL, NULL),
             (5, '[0:1]={5,6}', NULL, NULL, NULL);"#,
    )
    .await;
    let after = |id| record(&records, "c", id).at("after").clone();
    let array = |items: Vec<ExactJson>| ExactJson::Array(items);
    let (n, s, null) = (number, string, ExactJson::Null);
    assert_eq!(*after(1).at("ia"), array(vec![n("1"), n("2"), n("3")]));
    assert_eq!(
        *after(1).at("ta"),
        array(vec![s("a b"), s("c"), null.clone(), s("q\"x"), s("back\\slash"), s(""), s("é")])
    );
    assert_eq!(*after(1).at("na"), array(vec![s("1.50"), s("NaN")]));
    assert_eq!(*after(1).at("da"), array(vec![s("2024-02-29"), s("infinity")]));
    for column in ["ia", "ta", "na", "da"] {
        assert_eq!(*after(2).at(column), array(vec![]), "empty {column}");
    }
    assert_eq!(*after(3).at("ia"), array(vec![null.clone(), n("-1")]));
    assert_eq!(*after(3).at("ta"), array(vec![s("NULL"), null.clone()]), "the text NULL is not a NULL element");
    assert_eq!(*after(4).at("ia"), array(vec![array(vec![n("1"), n("2")]), array(vec![n("3"), n("4")])]));
    assert_eq!(*after(5).at("ia"), s("[0:1]={5,6}"), "explicit bounds: the array's text");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_primary_key_change_is_a_delete_then_a_create() {
    let records = differential(
        "diffkey",
        "CREATE TABLE k (id int PRIMARY KEY, label text, note text);
         CREATE TABLE kf (id int PRIMARY KEY, label text, note text);
         ALTER TABLE kf REPLICA IDENTITY FULL;",
        &["public.k", "public.kf"],
        "INSERT INTO k VALUES (1, 'one', NULL);
         UPDATE k SET id = 2 WHERE id = 1;
         UPDATE k SET label = 'two' WHERE id = 2;
         INSERT INTO kf VALUES (1, 'one', NULL);
         UPDATE kf SET id = 2, label = 'two' WHERE id = 1;
         UPDATE kf SET label = 'deux' WHERE id = 2;
         DELETE FROM k WHERE id = 2;",
    )
    .await;
    let ops: Vec<String> = records
        .iter()
        .map(|r| {
            format!("{} {}", r.at("op").as_str().unwrap_or("?"), r.at("source").at("table").as_str().unwrap_or("?"))
        })
        .collect();
    assert_eq!(ops, ["c k", "d k", "c k", "u k", "c kf", "d kf", "c kf", "u kf", "d k"]);
    // Default identity: the delete's before image is the old key, nothing else.
    let delete = &records[1];
    assert_eq!(names(delete.at("before")), ["id"]);
    assert_eq!(*delete.at("before").at("id"), number("1"));
    assert!(delete.at("after").is_null());
    let create = &records[2];
    assert!(create.at("before").is_null());
    assert_eq!((create.at("after").at("id"), create.at("after").at("label")), (&number("2"), &string("one")));
    assert_eq!(records[1].at("source").at("lsn"), records[2].at("source").at("lsn"), "one transaction");
    assert!(records[3].at("before").is_null(), "an update that keeps the key sends no old image");
    // REPLICA IDENTITY FULL: the key is the primary key; the old row is whole, NULLs included.
    assert_eq!(names(records[5].at("before")), ["id", "label", "note"]);
    assert_eq!(*records[5].at("before").at("label"), string("one"));
    assert_eq!(*records[6].at("after").at("label"), string("two"));
    assert_eq!(*records[7].at("before").at("label"), string("two"));
    assert_eq!(names(records[8].at("before")), ["id"], "a delete's old key holds the key only");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_column_postgresql_did_not_send_is_absent_not_null() {
    let records = differential(
        "difftoast",
        "CREATE TABLE big (id int PRIMARY KEY, tag text, body text);
         ALTER TABLE big ALTER COLUMN body SET STORAGE EXTERNAL;",
        &["public.big"],
        &format!(
            "INSERT INTO big VALUES (1, 'a', {HUGE});
             UPDATE big SET tag = 'b' WHERE id = 1;
             UPDATE big SET id = 2 WHERE id = 1;
             UPDATE big SET tag = NULL WHERE id = 2;
             DELETE FROM big WHERE id = 2;"
        ),
    )
    .await;
    let ops: Vec<&str> = records.iter().map(|r| r.at("op").as_str().unwrap_or("?")).collect();
    assert_eq!(ops, ["c", "u", "d", "c", "u", "d"]);
    let unchanged = ExactJson::Array(vec![string("body")]);
    // An update leaving the TOASTed column alone: absent from `after`, named in `unchanged`.
    assert_eq!(names(records[1].at("after")), ["id", "tag"]);
    assert_eq!(*records[1].at("unchanged"), unchanged);
    // The key change: the old key alone, then the new row without the value PostgreSQL did not send.
    assert_eq!(names(records[2].at("before")), ["id"]);
    assert_eq!(names(records[3].at("after")), ["id", "tag"]);
    assert_eq!(*records[3].at("unchanged"), unchanged);
    // SQL NULL is null; not sent is absent.
    assert_eq!(*records[4].at("after").at("tag"), ExactJson::Null);
    assert_eq!(names(records[4].at("after")), ["id", "tag"]);
    assert_eq!(names(records[5].at("before")), ["id"], "a delete's before image has no made-up NULLs");
}

/// `json`/`jsonb` values pass through as the exact text PostgreSQL sent, in a JSON string:
/// numbers beyond an f64 keep every digit, doubles are not re-rounded, `json`'s duplicate keys,
/// spacing and lone surrogates survive, and the document `null` is `"null"`, not SQL NULL.
#[tokio::test(flavor = "multi_thread")]
async fn json_values_keep_their_exact_content_and_null_is_not_sql_null() {
    let (db, env, td_slot) =
        prepare("diffjson", "CREATE TABLE lossy (id int PRIMARY KEY, js json, jb jsonb)", &["public.lossy"]).await;
    let c = db.client().await;
    insert_list(
        &c,
        "lossy",
        1,
        "jb",
        "jsonb",
        &[
            r#"{"big": 12345678901234567890123}"#,
            "0.12345678901234567890",
            "18446744073709551616",
            // Doubles in their shortest form, misread by an ulp by serde_json's default parser.
            "9.10919281903975e-11",
            r#"{"x": [2.4170704078805038e30, 1.2219174591807964e-304]}"#,
        ],
    )
    .await;
    insert_list(&c, "lossy", 10, "js", "json", &[r#"{"a": 1, "a": 2}"#, r#"{"tiny": 1.0e-400}"#]).await;
    insert_list(&c, "lossy", 20, "js", "json", &[r#"{"huge": 1e400}"#, r#""\ud800""#, "  [1,  2]  "]).await;
    exec(&c, r#"INSERT INTO lossy VALUES (30, 'null', 'null'), (31, NULL, NULL), (32, '{"a": null}', '{"a": null}');"#)
        .await;

    let td = read_test_decoding(&db, &td_slot).await;
    let millrace = read_millrace(&env);
    let tables = table_info(&c, &["public.lossy"]).await;
    assert_no_problems(&compare(&td, &millrace.records, &tables).problems);

    let after = |id| record(&millrace.records, "c", id).at("after").clone();
    assert_eq!((after(30).at("js"), after(30).at("jb")), (&string("null"), &string("null")), "the JSON document null");
    assert_eq!((after(31).at("js"), after(31).at("jb")), (&ExactJson::Null, &ExactJson::Null), "SQL NULL");
    assert_eq!(*after(32).at("jb"), string(r#"{"a": null}"#));
    assert_eq!(*after(22).at("js"), string("  [1,  2]  "), "json keeps its text");
    assert_eq!(*after(1).at("jb"), string(r#"{"big": 12345678901234567890123}"#));
}
