//! The legacy source against a real MariaDB through the real MariaDB ODBC driver: inserts,
//! updates and deletes are each found exactly once, a restart resumes without loss, a
//! transaction that commits late is still found, and bad values do not stop the poller.

mod common;

use common::legacy::{ops, poll, write_config, MariaDb};
use common::TestDb;

const ITEM_TABLE: &str = "CREATE TABLE ITEM_MASTER (
    ITEM_NO CHAR(18) NOT NULL PRIMARY KEY,
    DESCR VARCHAR(40) NOT NULL,
    STD_COST DECIMAL(18,4) NOT NULL,
    STATUS CHAR(1) NOT NULL,
    LAST_UPD DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    KEY IX_LAST_UPD (LAST_UPD)
)";

fn timestamp_table(extra: &str) -> String {
    format!(
        "[[legacy.tables]]\ntable = \"ITEM_MASTER\"\nkey = [\"ITEM_NO\"]\nstrategy = \"timestamp\"\ncolumn = \"LAST_UPD\"\nsafety_window = \"60s\"\n{extra}"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn timestamp_finds_inserts_and_updates_once_and_resumes_after_restart() {
    let maria = MariaDb::create("ts");
    let state = TestDb::create("ts_state").await;
    maria.exec(ITEM_TABLE);
    maria.exec(
        "INSERT INTO ITEM_MASTER (ITEM_NO, DESCR, STD_COST, STATUS) VALUES
         ('FURN_7800', 'Desk Combination', 450.0000, 'A'), ('FURN_0269', 'Office Chair Black', 12.5000, 'A'),
         ('FURN_8888', 'Office Lamp', 40.0000, 'I')",
    );
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &maria, &state, &timestamp_table(""));

    // Without --ack nothing is saved: the next run sees the same rows again.
    let (first, _) = poll(&config, false);
    assert_eq!(first.len(), 3);
    let (records, _) = poll(&config, true);
    assert_eq!(records.len(), 3);
    let r = records.iter().find(|r| r["source"]["key"] == r#"["FURN_7800"]"#).expect("FURN_7800");
    assert_eq!(r["op"], "r", "the first full read is a snapshot");
    assert_eq!(r["after"]["ITEM_NO"], "FURN_7800", "{r}");
    assert_eq!(r["after"]["STD_COST"], "450.0000", "DECIMAL(18,4) stays exact");
    assert_eq!(r["source"]["system"], "legacy");
    assert_eq!(r["source"]["table"], "ITEM_MASTER");
    assert!(r["source"]["version"].as_str().unwrap().starts_with("20"), "{r}");

    // Acknowledged: a new process (a restart) has nothing to repeat.
    assert!(poll(&config, true).0.is_empty());

    maria.exec("UPDATE ITEM_MASTER SET STD_COST = 13.2500 WHERE ITEM_NO = 'FURN_0269'");
    maria.exec("INSERT INTO ITEM_MASTER (ITEM_NO, DESCR, STD_COST, STATUS) VALUES ('FURN_9999', 'New item', 1, 'A')");
    let (records, _) = poll(&config, true);
    assert_eq!(
        ops(&records),
        vec![("u".to_string(), r#"["FURN_0269"]"#.to_string()), ("u".to_string(), r#"["FURN_9999"]"#.to_string())]
    );
    assert_eq!(records[0]["after"]["STD_COST"], "13.2500");
    // The re-read window covers these rows again, but they are recognised and not repeated.
    assert!(poll(&config, true).0.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transaction_committing_after_the_watermark_passed_its_row_is_still_found() {
    let maria = MariaDb::create("late");
    let state = TestDb::create("late_state").await;
    maria.exec(ITEM_TABLE);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &maria, &state, &timestamp_table(""));
    assert!(poll(&config, true).0.is_empty());

    // A long transaction stamps its row now (LAST_UPD = T0) but does not commit yet.
    let mut late = maria.session();
    late.send("BEGIN;");
    late.send("INSERT INTO ITEM_MASTER (ITEM_NO, DESCR, STD_COST, STATUS) VALUES ('LATE', 'late commit', 1, 'A');");
    let t0 = late.query("SELECT LAST_UPD FROM ITEM_MASTER WHERE ITEM_NO = 'LATE';");
    let t0 = t0.first().cloned().unwrap_or_else(|| panic!("the late row's stamp: {t0:?}"));
    // Meanwhile another row commits with a later stamp (more than a second later by the
    // database's clock), and a poll moves the watermark past T0.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while maria.exec(&format!("SELECT NOW(6) > '{t0}' + INTERVAL 1 SECOND")).trim() != "1" {
        assert!(std::time::Instant::now() < deadline, "the database's clock did not pass {t0}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    maria
        .exec("INSERT INTO ITEM_MASTER (ITEM_NO, DESCR, STD_COST, STATUS) VALUES ('EARLY', 'committed first', 1, 'A')");
    let (records, _) = poll(&config, true);
    assert_eq!(ops(&records), vec![("u".to_string(), r#"["EARLY"]"#.to_string())]);
    assert_eq!(
        maria
            .exec(&format!("SELECT LAST_UPD > '{t0}' + INTERVAL 1 SECOND FROM ITEM_MASTER WHERE ITEM_NO = 'EARLY'"))
            .trim(),
        "1",
        "EARLY's stamp (the watermark now) is past the late row's, {t0}"
    );

    late.send("COMMIT;");
    late.close();
    let (records, _) = poll(&config, true);
    assert_eq!(
        ops(&records),
        vec![("u".to_string(), r#"["LATE"]"#.to_string())],
        "the late row is found, EARLY not repeated"
    );
    assert!(poll(&config, true).0.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn hashdiff_finds_inserts_updates_and_deletes_exactly_once() {
    let maria = MariaDb::create("hd");
    let state = TestDb::create("hd_state").await;
    // A table with no modified-at column at all, as legacy ERPs have.
    maria.exec(
        "CREATE TABLE QUALITY_RESULT (LOT_NO CHAR(12) NOT NULL, TEST_NO INT NOT NULL, RESULT DECIMAL(18,4), PASSED CHAR(1),
         PRIMARY KEY (LOT_NO, TEST_NO))",
    );
    let values: Vec<String> = (1..=25).map(|i| format!("('LOT{:03}', {}, {i}.5, 'Y')", i / 3, i % 3)).collect();
    maria.exec(&format!("INSERT INTO QUALITY_RESULT VALUES {}", values.join(",")));
    let dir = tempfile::tempdir().unwrap();
    // A chunk smaller than the table, so paging by the two-column key is exercised.
    let config = write_config(
        dir.path(),
        &maria,
        &state,
        "[[legacy.tables]]\ntable = \"QUALITY_RESULT\"\nkey = [\"LOT_NO\", \"TEST_NO\"]\nstrategy = \"hashdiff\"\nchunk_size = 4\n",
    );
    let (records, _) = poll(&config, true);
    assert_eq!(records.len(), 25);
    assert!(records.iter().all(|r| r["op"] == "r"));
    let mut keys: Vec<String> = records.iter().map(|r| r["source"]["key"].as_str().unwrap().to_string()).collect();
    keys.dedup();
    assert_eq!(keys.len(), 25, "each row once");
    assert!(poll(&config, true).0.is_empty());

    maria.exec("UPDATE QUALITY_RESULT SET PASSED = 'N' WHERE LOT_NO = 'LOT004' AND TEST_NO = 1");
    maria.exec("DELETE FROM QUALITY_RESULT WHERE LOT_NO = 'LOT002' AND TEST_NO = 0");
    maria.exec("INSERT INTO QUALITY_RESULT VALUES ('LOT100', 1, 9.9, 'Y')");
    let (records, _) = poll(&config, true);
    let mut found = ops(&records);
    found.sort();
    assert_eq!(
        found,
        vec![
            ("c".to_string(), r#"["LOT100",1]"#.to_string()),
            ("d".to_string(), r#"["LOT002",0]"#.to_string()),
            ("u".to_string(), r#"["LOT004",1]"#.to_string()),
        ]
    );
    let delete = records.iter().find(|r| r["op"] == "d").unwrap();
    assert_eq!(delete["before"]["LOT_NO"], "LOT002");
    assert_eq!(delete["before"]["TEST_NO"], 0);
    assert!(poll(&config, true).0.is_empty(), "nothing repeated after ack");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delete_scan_beside_timestamp_reports_only_deletes() {
    let maria = MariaDb::create("ds");
    let state = TestDb::create("ds_state").await;
    maria.exec(ITEM_TABLE);
    maria.exec(
        "INSERT INTO ITEM_MASTER (ITEM_NO, DESCR, STD_COST, STATUS) VALUES ('A1', 'a', 1, 'A'), ('A2', 'b', 2, 'A')",
    );
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &maria, &state, &timestamp_table("delete_scan_interval = \"0s\"\n"));
    let (records, _) = poll(&config, true);
    assert_eq!(records.len(), 2, "the timestamp read; the first delete scan only learns the keys");
    maria.exec("DELETE FROM ITEM_MASTER WHERE ITEM_NO = 'A1'");
    maria.exec("UPDATE ITEM_MASTER SET DESCR = 'b2' WHERE ITEM_NO = 'A2'");
    let (records, _) = poll(&config, true);
    assert_eq!(
        ops(&records),
        vec![("u".to_string(), r#"["A2"]"#.to_string()), ("d".to_string(), r#"["A1"]"#.to_string())]
    );
    assert!(poll(&config, true).0.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn undecodable_values_are_reported_with_table_key_column_and_value_and_the_rest_flows() {
    let maria = MariaDb::create("bad");
    let state = TestDb::create("bad_state").await;
    maria.exec(
        "CREATE TABLE LOT_MASTER (LOT_NO CHAR(12) NOT NULL PRIMARY KEY, EXPIRY DATE, QTY DECIMAL(60,4), NOTE VARCHAR(40))",
    );
    maria.exec(
        "SET SESSION sql_mode = '';
         INSERT INTO LOT_MASTER VALUES ('GOOD1', '2025-01-31', 5.0000, 'ok'), ('ZERODATE', '0000-00-00', 1, 'zero date'),
            ('HUGE', '2025-01-01', 12345678901234567890123456789012345678901234.5, 'too many digits'), ('GOOD2', NULL, NULL, NULL)",
    );
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &maria,
        &state,
        "[[legacy.tables]]\ntable = \"LOT_MASTER\"\nkey = [\"LOT_NO\"]\nstrategy = \"hashdiff\"\n",
    );
    let (records, stderr) = poll(&config, true);
    let mut good: Vec<&str> = records.iter().map(|r| r["after"]["LOT_NO"].as_str().unwrap()).collect();
    good.sort();
    assert_eq!(good, vec!["GOOD1", "GOOD2"], "the readable rows flow");
    assert!(
        stderr.contains("LOT_MASTER") && stderr.contains(r#"["ZERODATE"]"#) && stderr.contains("EXPIRY"),
        "{stderr}"
    );
    assert!(stderr.contains("0000-00-00") && stderr.contains("not a valid date"), "{stderr}");
    assert!(
        stderr.contains(r#"["HUGE"]"#) && stderr.contains("QTY") && stderr.contains("more than 38 significant digits"),
        "{stderr}"
    );
    // Bad rows are not mistaken for deletes on the next pass.
    let (records, _) = poll(&config, true);
    assert!(records.iter().all(|r| r["op"] != "d"), "{records:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn text_that_is_not_utf8_is_reported_not_garbled() {
    // A Latin-1 legacy database read with a Latin-1 client character set: the driver hands over
    // the raw bytes, and 'é' (0xE9) is not UTF-8.
    let maria = MariaDb::create("latin1");
    let state = TestDb::create("latin1_state").await;
    maria.exec("CREATE TABLE CUSTOMER (CUST_NO CHAR(8) NOT NULL PRIMARY KEY, NAME VARCHAR(40)) CHARACTER SET latin1");
    maria.exec("INSERT INTO CUSTOMER VALUES ('C1', 'Plain'), ('C2', 'Café Müller')");
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &maria,
        &state,
        "[[legacy.tables]]\ntable = \"CUSTOMER\"\nkey = [\"CUST_NO\"]\nstrategy = \"hashdiff\"\n",
    );
    let text = std::fs::read_to_string(&config).unwrap().replace("Database=", "CHARSET=latin1;Database=");
    std::fs::write(&config, text).unwrap();
    let (records, stderr) = poll(&config, true);
    assert_eq!(ops(&records), vec![("r".to_string(), r#"["C1"]"#.to_string())]);
    assert!(stderr.contains("CUSTOMER") && stderr.contains(r#"["C2"]"#) && stderr.contains("NAME"), "{stderr}");
    assert!(stderr.contains("not valid UTF-8"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn long_text_and_binary_values_are_read_whole_beside_short_ones() {
    // An ERP's notes and drawings: LONGTEXT and LONGBLOB declare no useful length, and one
    // value is far past any fixed buffer. Each comes out whole, the short rows with them.
    let maria = MariaDb::create("long");
    let state = TestDb::create("long_state").await;
    maria.exec(
        "CREATE TABLE ITEM_NOTE (ITEM_NO CHAR(12) NOT NULL PRIMARY KEY, NOTE LONGTEXT, DRAWING LONGBLOB, REMARK TEXT)",
    );
    maria.exec(
        "INSERT INTO ITEM_NOTE VALUES
           ('SHORT', 'a note', x'CAFE', 'ok'),
           ('LONG', CONCAT(REPEAT('Nomenclature ünd Maß; ', 20000), 'END'), REPEAT(x'00FF10', 30000), REPEAT('r', 60000)),
           ('EMPTY', NULL, NULL, NULL)",
    );
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &maria,
        &state,
        "[[legacy.tables]]\ntable = \"ITEM_NOTE\"\nkey = [\"ITEM_NO\"]\nstrategy = \"hashdiff\"\n",
    );
    let (records, stderr) = poll(&config, true);
    assert_eq!(records.len(), 3, "every row flows: {stderr}");
    let row = |key: &str| records.iter().find(|r| r["after"]["ITEM_NO"] == key).expect(key)["after"].clone();
    let long = row("LONG");
    let note = long["NOTE"].as_str().unwrap();
    assert_eq!(note.chars().count(), 22 * 20000 + 3);
    assert!(note.starts_with("Nomenclature ünd Maß; ") && note.ends_with("; END"), "{}", &note[..40]);
    assert_eq!(long["REMARK"].as_str().unwrap().len(), 60000);
    // Bytes in the envelope: PostgreSQL's hex form, two digits a byte.
    let drawing = long["DRAWING"].as_str().unwrap();
    assert_eq!(drawing.len(), 2 + 90_000 * 2, "the 90,000-byte drawing whole");
    assert!(drawing.starts_with("\\x00ff1000ff10"), "{}", &drawing[..20]);
    assert_eq!(row("SHORT")["NOTE"], "a note");
    assert!(row("EMPTY")["NOTE"].is_null());
    // Unchanged on the next pass: the long values hash the same as read before.
    let (records, _) = poll(&config, true);
    assert!(records.is_empty(), "{records:?}");
}

/// A timestamp poll reads in pages of `chunk_size` rows, so the driver never holds a large table
/// (MariaDB's Connector/ODBC caches a whole result set): with pages of 2, rows sharing a
/// timestamp across page boundaries and rows without a timestamp are each read exactly once, on
/// the first poll and after updates.
#[tokio::test(flavor = "multi_thread")]
async fn a_timestamp_poll_in_small_pages_reads_every_row_once() {
    let maria = MariaDb::create("ts_paged");
    let state = TestDb::create("ts_paged_state").await;
    maria.exec(
        "CREATE TABLE ITEM_MASTER (ITEM_NO CHAR(18) NOT NULL PRIMARY KEY, DESCR VARCHAR(40) NOT NULL,
                                   LAST_UPD DATETIME(6) NULL)",
    );
    maria.exec(
        "INSERT INTO ITEM_MASTER VALUES
         ('A1', 'a', '2026-01-01 10:00:00'), ('A2', 'b', '2026-01-01 10:00:00'), ('A3', 'c', '2026-01-01 10:00:00'),
         ('B1', 'd', '2026-01-02 10:00:00.5'), ('N1', 'e', NULL), ('N2', 'f', NULL), ('N3', 'g', NULL)",
    );
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &maria, &state, &timestamp_table("chunk_size = 2\n"));

    let (records, _) = poll(&config, true);
    let mut keys: Vec<String> = ops(&records).into_iter().map(|(op, key)| format!("{op} {key}")).collect();
    keys.sort();
    let expected: Vec<String> =
        ["A1", "A2", "A3", "B1", "N1", "N2", "N3"].iter().map(|k| format!("r [\"{k}\"]")).collect();
    assert_eq!(keys, expected, "every row once");

    maria.exec("UPDATE ITEM_MASTER SET DESCR = 'x', LAST_UPD = NOW(6) WHERE ITEM_NO IN ('A2', 'B1', 'N1')");
    maria.exec("INSERT INTO ITEM_MASTER VALUES ('C1', 'h', NOW(6))");
    let (records, _) = poll(&config, true);
    let mut keys: Vec<String> = ops(&records).into_iter().map(|(_, key)| key).collect();
    keys.sort();
    assert_eq!(keys, ["[\"A2\"]", "[\"B1\"]", "[\"C1\"]", "[\"N1\"]"], "{records:#?}");
    assert!(poll(&config, true).0.is_empty(), "the re-read window repeats nothing");
}
