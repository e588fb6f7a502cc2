//! The operator commands against a real control state: `millrace dlq` lists, shows, retries
//! and discards dead letters; `millrace status` reports the slot, positions, decisions, parked
//! changes, dead letters and recent conflicts. None of them prints a password.

mod common;

use std::process::Output;

use common::{millrace, TestDb};
use millrace::config::PgConnInfo;
use millrace::state::sync::{DeadLetter, StateWrites};
use millrace::state::StateStore;

const PASSWORD: &str = "pw-in-the-url-never-shown";

/// Environment pointing millrace at the test database, with a password in the URL (the dev
/// server trusts local connections, so it is never checked, but it must never be printed).
fn env_for(db: &TestDb) -> Vec<(String, String)> {
    let mut url = url::Url::parse(&db.url).expect("test URL");
    url.set_password(Some(PASSWORD)).expect("URL takes a password");
    vec![
        ("MILLRACE_ODOO_URL".into(), format!("{url}?sslmode=disable")),
        ("MILLRACE_ODOO_SLOT".into(), db.slot()),
        ("MILLRACE_ODOO_PUBLICATION".into(), "millrace_pub".into()),
    ]
}

/// Runs millrace and returns (exit code, stdout, stderr), checking that no password shows.
fn run(env: &[(String, String)], args: &[&str]) -> (Option<i32>, String, String) {
    let out: Output = millrace(env, args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stdout.contains(PASSWORD) && !stderr.contains(PASSWORD),
        "{args:?} printed the password:\n{stdout}\n{stderr}"
    );
    (out.status.code(), stdout, stderr)
}

fn ok(env: &[(String, String)], args: &[&str]) -> String {
    let (code, stdout, stderr) = run(env, args);
    assert_eq!(code, Some(0), "{args:?} failed:\n{stdout}\n{stderr}");
    stdout
}

async fn status_of(c: &tokio_postgres::Client, id: i64) -> (String, Option<String>) {
    let row = c.query_one("SELECT status, resolution FROM millrace.dlq WHERE id = $1", &[&id]).await.expect("dlq row");
    (row.get(0), row.get(1))
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_letters_can_be_listed_shown_retried_and_discarded_and_status_reports_it_all() {
    let db = TestDb::create("cliops").await;
    let info = PgConnInfo::parse(&format!("{}?sslmode=disable", db.url)).expect("URL");
    StateStore::connect(&info).await.expect("control schema");
    let c = db.client().await;
    c.batch_execute(
        r#"
        INSERT INTO millrace.dlq (entity, key, source, op, record, position, field, reason) VALUES
          ('item', '["A100"]', 'legacy', 'upsert',
           '{"item_no": "A100", "description": "Oak top", "uom": "Crates", "list_price": "12.5"}',
           '2026-11-27 00:59:11.000000|["A100"]', 'uom',
           'item ["A100"]: field uom: "Crates": no row of uom_uom has name = this value'),
          ('production_order', '["WH/MO/00009"]', 'odoo', 'upsert',
           '{"order_no": "WH/MO/00009", "qty_ordered": "3"}', '0/1A2B3C4D', NULL,
           'production_order ["WH/MO/00009"]: PROD_ORDER refused the write: Data too long'),
          ('bom', '["FURN_8855","02"]', 'legacy', 'delete', NULL, 'v9', NULL, 'old one');
        UPDATE millrace.dlq SET status = 'resolved', resolution = 'applied on retry', resolved_at = now()
         WHERE entity = 'bom';
        INSERT INTO millrace.parked (entity, key, source, op, record, position, reason) VALUES
          ('bom_line', '["FURN_8855","01",10]', 'legacy', 'upsert', '{}', 'v1', 'its mrp_bom row does not exist yet');
        INSERT INTO millrace.decision_count (entity, source, decision, n) VALUES
          ('item', 'legacy', 'apply', 41), ('item', 'odoo', 'conflict', 2), ('item', 'legacy', 'dead_letter', 1);
        INSERT INTO millrace.conflict (entity, key, source, fields, policy, record, position) VALUES
          ('item', '["A100"]', 'odoo', ARRAY['description'], 'reject', NULL, '0/16B3748'),
          ('item', '["B200"]', 'odoo', ARRAY['description','list_price'], 'reject', NULL, '0/16B3800');
        INSERT INTO millrace.source_status (source, position, last_batch) VALUES ('odoo', '0/16B3800', now());
        INSERT INTO millrace.source_status (source, last_error, error_at) VALUES ('legacy', 'connection lost', now());
        INSERT INTO millrace.legacy_checkpoint (table_name, strategy, watermark) VALUES
          ('ITEM_MASTER', 'timestamp', '2026-11-27 00:59:11.000000');
        "#,
    )
    .await
    .expect("fill the control state");
    // A slot of its own (outside the transaction above, as PostgreSQL requires), for the lag.
    c.execute("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", &[&db.slot()]).await.expect("slot");
    let ids: Vec<i64> =
        c.query("SELECT id FROM millrace.dlq ORDER BY id", &[]).await.expect("ids").iter().map(|r| r.get(0)).collect();
    let (item, order, resolved) = (ids[0], ids[1], ids[2]);
    let env = env_for(&db);

    // list: the open ones, aligned, one per line under a header.
    let list = ok(&env, &["dlq", "list"]);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 3, "{list}");
    assert!(lines[0].starts_with("ID ") && lines[0].contains("ENTITY") && lines[0].ends_with("REASON"), "{list}");
    assert!(lines[1].starts_with(&format!("{item} ")), "{list}");
    for needle in ["item", r#"["A100"]"#, "legacy", "uom", "no row of uom_uom"] {
        assert!(lines[1].contains(needle), "{needle} in {list}");
    }
    assert!(lines[2].contains("production_order") && lines[2].contains("Data too long"), "{list}");
    let reason_at = lines[0].find("REASON").expect("header");
    assert_eq!(&lines[1][reason_at..reason_at + 4], "item", "reasons line up under their header:\n{list}");
    assert!(!list.contains("old one"), "resolved ones only with --all:\n{list}");
    let all = ok(&env, &["dlq", "list", "--all"]);
    assert!(all.contains("old one") && all.contains("resolved") && all.contains("STATUS"), "{all}");
    let json: serde_json::Value = serde_json::from_str(&ok(&env, &["dlq", "list", "--json"])).expect("list --json");
    let array = json.as_array().expect("an array");
    assert_eq!(array.len(), 2);
    assert_eq!(array[0]["id"], item);
    assert_eq!(array[0]["field"], "uom");
    assert_eq!(array[0]["record"]["uom"], "Crates");
    assert_eq!(array[1]["field"], serde_json::Value::Null);

    // show: everything, the record as pretty JSON.
    let show = ok(&env, &["dlq", "show", &item.to_string()]);
    assert!(show.starts_with(&format!("dead letter {item}\n")), "{show}");
    for needle in
        ["entity:", "item", "position:", r#"2026-11-27 00:59:11.000000|["A100"]"#, "status:", "open", "record:"]
    {
        assert!(show.contains(needle), "{needle} in {show}");
    }
    assert!(show.contains("\n      \"uom\": \"Crates\""), "record pretty-printed and indented:\n{show}");
    let shown: serde_json::Value =
        serde_json::from_str(&ok(&env, &["dlq", "show", &order.to_string(), "--json"])).expect("show --json");
    assert_eq!(shown["entity"], "production_order");
    assert_eq!(shown["record"]["qty_ordered"], "3");
    assert_eq!(shown["status"], "open");
    let (code, _, stderr) = run(&env, &["dlq", "show", "999999"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("dead letter 999999 does not exist"), "{stderr}");

    // retry ID: marked for the running service, which re-reads the source row.
    let retry = ok(&env, &["dlq", "retry", &item.to_string()]);
    assert!(retry.contains("1 dead letter marked for retry"), "{retry}");
    assert!(retry.contains("millrace run") && retry.contains("re-reads the source row"), "{retry}");
    assert_eq!(status_of(&c, item).await.0, "retry");
    let (code, _, stderr) = run(&env, &["dlq", "retry", &resolved.to_string()]);
    assert_eq!(code, Some(1), "a resolved dead letter cannot be retried");
    assert!(stderr.contains(&format!("dead letter {resolved} is resolved")), "{stderr}");
    assert_eq!(status_of(&c, resolved).await.0, "resolved");
    let (code, _, stderr) = run(&env, &["dlq", "retry", "999999"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("does not exist"), "{stderr}");
    let (code, _, _) = run(&env, &["dlq", "retry"]);
    assert_eq!(code, Some(2), "retry needs an id or --all");

    // discard ID.
    let discard = ok(&env, &["dlq", "discard", &order.to_string()]);
    assert!(discard.contains(&format!("dead letter {order} discarded")), "{discard}");
    assert_eq!(status_of(&c, order).await, ("discarded".to_string(), Some("discarded by an operator".to_string())));
    let (code, _, stderr) = run(&env, &["dlq", "discard", &order.to_string()]);
    assert_eq!(code, Some(1), "discarded already");
    assert!(stderr.contains("is discarded"), "{stderr}");

    // status --json: one object with every section.
    let status: serde_json::Value = serde_json::from_str(&ok(&env, &["status", "--json"])).expect("status --json");
    let slot = &status["odoo_slot"];
    assert_eq!(slot["name"], db.slot());
    assert_eq!(slot["exists"], true);
    assert_eq!(slot["active"], false);
    assert!(slot["lag_bytes"].as_i64().is_some_and(|n| n >= 0), "{slot}");
    assert!(slot["confirmed_flush_lsn"].is_string() && slot["current_wal_lsn"].is_string(), "{slot}");
    assert_eq!(status["dead_letters"]["open"], 0);
    assert_eq!(status["dead_letters"]["retry"], 1);
    assert_eq!(status["parked"]["count"], 1);
    assert!(status["parked"]["oldest"].is_string());
    let decisions = status["decisions"].as_array().expect("decisions");
    assert_eq!(decisions.len(), 3);
    assert!(
        decisions.iter().any(|d| d["entity"] == "item" && d["decision"] == "apply" && d["count"] == 41),
        "{decisions:?}"
    );
    let conflicts = status["recent_conflicts"].as_array().expect("conflicts");
    assert_eq!(conflicts.len(), 2);
    assert_eq!(conflicts[0]["key"], r#"["B200"]"#, "newest first");
    assert_eq!(conflicts[0]["fields"], serde_json::json!(["description", "list_price"]));
    let sources = status["sources"].as_array().expect("sources");
    assert_eq!(sources.len(), 2);
    assert_eq!(sources[0]["source"], "legacy");
    assert_eq!(sources[0]["last_error"], "connection lost");
    assert_eq!(sources[1]["position"], "0/16B3800");
    assert_eq!(status["legacy_checkpoints"][0]["table"], "ITEM_MASTER");

    // The text form says the same for people.
    let text = ok(&env, &["status"]);
    for needle in [
        &format!("odoo slot {}: inactive, lag ", db.slot()) as &str,
        "ITEM_MASTER",
        "connection lost",
        "parked: 1",
        "dead letters: 0 open, 1 marked for retry",
        r#"["B200"]"#,
        "description,list_price",
    ] {
        assert!(text.contains(needle), "{needle} in {text}");
    }

    // retry --all marks every open one (none left open but the one being retried).
    c.execute("UPDATE millrace.dlq SET status = 'open' WHERE id = $1", &[&item]).await.expect("reopen");
    let retry_all = ok(&env, &["dlq", "retry", "--all"]);
    assert!(retry_all.contains("1 dead letter marked for retry"), "{retry_all}");
    let listed: serde_json::Value = serde_json::from_str(&ok(&env, &["dlq", "list", "--json"])).expect("list --json");
    assert_eq!(
        listed,
        serde_json::json!([{
            "id": item, "entity": "item", "key": "[\"A100\"]", "source": "legacy", "op": "upsert",
            "position": "2026-11-27 00:59:11.000000|[\"A100\"]", "field": "uom",
            "reason": "item [\"A100\"]: field uom: \"Crates\": no row of uom_uom has name = this value",
            "created_at": array[0]["created_at"], "status": "retry", "resolution": null,
            "record": {"item_no": "A100", "description": "Oak top", "uom": "Crates", "list_price": "12.5"}
        }])
    );
}

fn dead_letter(entity: &str, key: &str, source: &str, reason: &str) -> DeadLetter {
    DeadLetter {
        id: 0,
        entity: entity.into(),
        key: key.into(),
        source: source.into(),
        op: "upsert".into(),
        record: Some(serde_json::json!({ "reason": reason })),
        position: "v1".into(),
        field: None,
        reason: reason.into(),
        created_at: chrono::Utc::now(),
        status: "open".into(),
        resolution: None,
    }
}

async fn dead_letter_by_reason(c: &tokio_postgres::Client, reason: &str) -> (i64, String, Option<String>) {
    let row = c
        .query_one("SELECT id, status, resolution FROM millrace.dlq WHERE reason = $1", &[&reason])
        .await
        .expect("dead letter");
    (row.get(0), row.get(1), row.get(2))
}

/// At most one open dead letter per (entity, key, source): a newer failure of the same key
/// supersedes the older letter, which stays in the history (`--all`) naming its successor. The
/// counts `status` and the metrics report are of open letters only.
#[tokio::test(flavor = "multi_thread")]
async fn a_newer_failure_of_a_key_supersedes_its_open_dead_letter() {
    let db = TestDb::create("clisuper").await;
    let info = PgConnInfo::parse(&format!("{}?sslmode=disable", db.url)).expect("URL");
    let mut store = StateStore::connect(&info).await.expect("control schema");
    let c = db.client().await;
    let env = env_for(&db);
    let item = r#"["A100"]"#;

    // Three failures of item A100 from the ERP, two of them in one batch; one of the same key
    // from Odoo and one of another key, which are letters of their own.
    let batch = |letters: Vec<DeadLetter>| StateWrites { dead_letters: letters, ..StateWrites::default() };
    store.commit_writes(&batch(vec![dead_letter("item", item, "legacy", "first failure")])).await.expect("first");
    store
        .commit_writes(&batch(vec![
            dead_letter("item", item, "legacy", "second failure"),
            dead_letter("item", r#"["B200"]"#, "legacy", "another key"),
            dead_letter("item", item, "odoo", "from the other side"),
        ]))
        .await
        .expect("second");
    store
        .commit_writes(&batch(vec![
            dead_letter("item", item, "legacy", "third failure"),
            dead_letter("item", item, "legacy", "fourth failure"),
        ]))
        .await
        .expect("third and fourth");
    let (first, status, resolution) = dead_letter_by_reason(&c, "first failure").await;
    let (second, _, _) = dead_letter_by_reason(&c, "second failure").await;
    let (third, _, third_resolution) = dead_letter_by_reason(&c, "third failure").await;
    let (fourth, fourth_status, _) = dead_letter_by_reason(&c, "fourth failure").await;
    assert_eq!(status, "superseded");
    assert_eq!(resolution.as_deref(), Some(&*format!("replaced by dead letter {second}, a newer failure of this key")));
    assert_eq!(
        third_resolution.as_deref(),
        Some(&*format!("replaced by dead letter {fourth}, a newer failure of this key")),
        "a later letter of the same batch supersedes an earlier one"
    );
    assert_eq!(fourth_status, "open");
    let open: Vec<(String, String)> = c
        .query("SELECT key, source FROM millrace.dlq WHERE status IN ('open', 'retry') ORDER BY id", &[])
        .await
        .expect("open letters")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        open,
        [(r#"["B200"]"#, "legacy"), (item, "odoo"), (item, "legacy")].map(|(k, s)| (k.to_string(), s.to_string()))
    );

    // `dlq list`: one line per open letter; `--all` also the superseded ones, with what replaced them.
    let list = ok(&env, &["dlq", "list"]);
    assert_eq!(list.lines().count(), 4, "a header and three open letters:\n{list}");
    assert!(list.contains("fourth failure") && !list.contains("first failure"), "{list}");
    let all = ok(&env, &["dlq", "list", "--all"]);
    assert!(all.lines().next().is_some_and(|h| h.contains("STATUS") && h.contains("RESOLUTION")), "{all}");
    let superseded = all.lines().find(|l| l.starts_with(&format!("{first} "))).expect("the first letter listed");
    assert!(
        superseded.contains("superseded") && superseded.contains(&format!("replaced by dead letter {second}")),
        "{all}"
    );
    let listed: serde_json::Value = serde_json::from_str(&ok(&env, &["dlq", "list", "--all", "--json"])).expect("json");
    let first_json = listed.as_array().expect("array").iter().find(|d| d["id"] == first).expect("first in --all");
    assert_eq!(first_json["status"], "superseded");

    // A superseded letter is closed: it cannot be retried or discarded, and a retry of it that
    // fails again (the service was already re-running it) does not reopen it.
    let (code, _, stderr) = run(&env, &["dlq", "retry", &first.to_string()]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("dead letter {first} is superseded: replaced by dead letter {second}")),
        "{stderr}"
    );
    let reopen = StateWrites { reopen: vec![(third, "failed again".into())], ..StateWrites::default() };
    store.commit_writes(&reopen).await.expect("reopen");
    store.reopen_dead_letter(first, "failed again").await.expect("reopen one");
    assert_eq!(status_of(&c, third).await.0, "superseded");
    assert_eq!(status_of(&c, first).await.0, "superseded");
    let retry_all = ok(&env, &["dlq", "retry", "--all"]);
    assert!(retry_all.contains("3 dead letters marked for retry"), "{retry_all}");

    // A failure of a key whose letter is marked for retry supersedes it too.
    store.commit_writes(&batch(vec![dead_letter("item", item, "legacy", "fifth failure")])).await.expect("fifth");
    assert_eq!(status_of(&c, fourth).await.0, "superseded");

    // The counts: open (or marked for retry) letters only.
    let status: serde_json::Value = serde_json::from_str(&ok(&env, &["status", "--json"])).expect("status --json");
    assert_eq!(
        (status["dead_letters"]["open"].as_i64(), status["dead_letters"]["retry"].as_i64()),
        (Some(1), Some(2)),
        "{}",
        status["dead_letters"]
    );
    let gauge: i64 = c
        .query_one("SELECT count(*) FROM millrace.dlq WHERE status IN ('open', 'retry')", &[])
        .await
        .expect("the metrics' query")
        .get(0);
    assert_eq!(gauge, 3);

    // Letters from before the rule: opening the control state settles them the same way.
    c.batch_execute(
        "INSERT INTO millrace.dlq (entity, key, source, op, position, reason) VALUES
           ('bom', '[\"OLD\"]', 'legacy', 'upsert', 'v1', 'old one'),
           ('bom', '[\"OLD\"]', 'legacy', 'upsert', 'v2', 'old two'),
           ('bom', '[\"OLD\"]', 'legacy', 'upsert', 'v3', 'old three')",
    )
    .await
    .expect("letters from an older millrace");
    StateStore::connect(&info).await.expect("migrate");
    let (_, one, _) = dead_letter_by_reason(&c, "old one").await;
    let (_, two, _) = dead_letter_by_reason(&c, "old two").await;
    let (three_id, three, _) = dead_letter_by_reason(&c, "old three").await;
    assert_eq!((one.as_str(), two.as_str(), three.as_str()), ("superseded", "superseded", "open"));
    let (_, resolution) = status_of(&c, dead_letter_by_reason(&c, "old one").await.0).await;
    assert_eq!(resolution, Some(format!("replaced by dead letter {three_id}, a newer failure of this key")));

    // A failed statement says what the server said, not the driver's bare "db error".
    c.batch_execute("DROP TABLE millrace.dlq").await.expect("drop the queue");
    let error = store.dead_letters(false).await.expect_err("no table").to_string();
    assert!(error.contains(r#"relation "millrace.dlq" does not exist"#) && error.contains("42P01"), "{error}");
    assert!(!error.contains("db error"), "{error}");
}

/// `user@host` as the CLI records it: the OS user of the process and the machine's name.
fn os_user_at_host() -> String {
    let user = std::process::Command::new("id").arg("-un").output().expect("id -un");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("host name");
    format!("{}@{}", String::from_utf8_lossy(&user.stdout).trim(), host.trim())
}

/// Every retry and discard from the command line is recorded in the audit trail
/// (`millrace.audit`: via `cli`, the OS user and host, what it touched, the outcome) together
/// with its effect, refused ones too; `status` shows the latest; with `[archive]` each action is
/// archived as a row of its entity that a Parquet reader tells apart by its decision, and an
/// action taken where the archive was not configured is archived by the next one.
#[tokio::test(flavor = "multi_thread")]
async fn operator_actions_from_the_cli_are_audited_shown_by_status_and_archived() {
    let db = TestDb::create("cliaudit").await;
    let info = PgConnInfo::parse(&format!("{}?sslmode=disable", db.url)).expect("URL");
    StateStore::connect(&info).await.expect("control schema");
    let c = db.client().await;
    c.batch_execute(
        r#"
        INSERT INTO millrace.dlq (entity, key, source, op, record, position, field, reason) VALUES
          ('item', '["A100"]', 'legacy', 'upsert',
           '{"item_no": "A100", "description": "Oak top", "uom": "Crates", "list_price": "12.5"}',
           '2026-11-27 00:59:11.000000|["A100"]', 'uom', 'no row of uom_uom has name = "Crates"'),
          ('item', '["B200"]', 'legacy', 'upsert', '{"item_no": "B200", "description": "Ash leg"}',
           '2026-11-27 01:00:00.000000|["B200"]', 'uom', 'no row of uom_uom has name = "Bags"'),
          ('production_order', '["WH/MO/00009"]', 'odoo', 'upsert',
           '{"order_no": "WH/MO/00009", "qty_ordered": "3"}', '0/1A2B3C4D', NULL, 'Data too long');
        "#,
    )
    .await
    .expect("dead letters");
    let ids: Vec<i64> =
        c.query("SELECT id FROM millrace.dlq ORDER BY id", &[]).await.expect("ids").iter().map(|r| r.get(0)).collect();
    let (a100, b200, order) = (ids[0], ids[1], ids[2]);
    let plain = env_for(&db);
    let archive = tempfile::tempdir().expect("archive dir");
    let mut archived = plain.clone();
    archived.push(("MILLRACE_ARCHIVE_DIR".into(), archive.path().display().to_string()));
    archived.push(("MILLRACE_MAPPINGS".into(), format!("{}/mappings", env!("CARGO_MANIFEST_DIR"))));

    // Without [archive]; then with it: a discard, the same discard again (refused), retry --all.
    ok(&plain, &["dlq", "retry", &a100.to_string()]);
    ok(&archived, &["dlq", "discard", &order.to_string()]);
    let (code, _, stderr) = run(&archived, &["dlq", "discard", &order.to_string()]);
    assert_eq!(code, Some(1), "{stderr}");
    let retried = ok(&archived, &["dlq", "retry", "--all"]);
    assert!(retried.contains("2 dead letters marked for retry"), "{retried}");

    let me = os_user_at_host();
    let rows = c
        .query(
            "SELECT action, via, client, token, dead_letters, touched, outcome, detail, archived_at IS NOT NULL
               FROM millrace.audit ORDER BY id",
            &[],
        )
        .await
        .expect("the audit trail");
    // action, via, client, token, dead letters, outcome, detail, archived
    type AuditRow = (String, String, String, Option<String>, Vec<i64>, String, String, bool);
    let audit: Vec<AuditRow> =
        rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(6), r.get(7), r.get(8))).collect();
    let row = |action: &str, letters: Vec<i64>, outcome: &str, detail: String, archived: bool| {
        (action.to_string(), "cli".to_string(), me.clone(), None, letters, outcome.to_string(), detail, archived)
    };
    assert_eq!(
        audit,
        vec![
            row("retry", vec![a100], "done", "1 dead letter marked for retry".into(), true),
            row("discard", vec![order], "done", "1 dead letter discarded".into(), true),
            row(
                "discard",
                vec![],
                "refused",
                format!("dead letter {order} is discarded: discarded by an operator"),
                false
            ),
            row("retry", vec![a100, b200], "done", "2 dead letters marked for retry".into(), true),
        ],
        "the first retry, taken without [archive], was archived by the next action"
    );
    let touched: serde_json::Value = rows[1].get(5);
    assert_eq!(
        touched,
        serde_json::json!([{"dead_letter": order, "entity": "production_order", "key": "[\"WH/MO/00009\"]", "source": "odoo"}])
    );

    // status: the latest actions, newest first, in JSON and in text.
    let status: serde_json::Value = serde_json::from_str(&ok(&plain, &["status", "--json"])).expect("status --json");
    let actions = status["operator_actions"].as_array().expect("operator_actions");
    assert_eq!(actions.len(), 4);
    assert_eq!(actions[0]["action"], "retry");
    assert_eq!(actions[0]["via"], "cli");
    assert_eq!(actions[0]["client"], me.as_str());
    assert_eq!(actions[0]["dead_letters"], serde_json::json!([a100, b200]));
    assert_eq!(actions[0]["touched"][1]["key"], "[\"B200\"]");
    assert_eq!(actions[1]["outcome"], "refused");
    assert_eq!(actions[3]["detail"], "1 dead letter marked for retry");
    let text = ok(&plain, &["status"]);
    let section = text.split("operator actions (latest 5):").nth(1).expect("an operator actions section");
    let lines: Vec<&str> = section.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines[0].contains("ACTION") && lines[0].contains("CLIENT") && lines[0].contains("OUTCOME"), "{text}");
    assert!(
        lines[1].contains("retry")
            && lines[1].contains("cli")
            && lines[1].contains(&me)
            && lines[1].contains(&format!("{a100} {b200}"))
            && lines[1].contains("done: 2 dead letters marked for retry"),
        "{text}"
    );
    assert!(lines[2].contains("refused: dead letter") && lines[2].contains("is discarded"), "{text}");

    // The archive: the entity's own table, the operator's rows told apart by their decision,
    // the dead-lettered record in the entity's columns and who acted in the reason.
    let items = common::parquet::report(
        &archive.path().join("entity=item"),
        &[
            "SELECT _key, _decision, item_no, description, CAST(list_price AS VARCHAR), _source_system, _op, _reason
               FROM {src} ORDER BY _key, _captured_at",
            "SELECT count(*) FROM {src} WHERE _decision NOT LIKE 'operator:%'",
        ],
    );
    assert_eq!(items.rows, 3, "A100 retried twice, B200 once");
    assert_eq!(items.type_of("_decision"), "string");
    let rows = &items.queries[0];
    let cells = |i: usize| rows[i][..7].iter().map(|v| v.as_str().unwrap_or("<null>").to_string()).collect::<Vec<_>>();
    assert_eq!(cells(0), ["[\"A100\"]", "operator:retry", "A100", "Oak top", "12.5000", "legacy", "u"]);
    assert_eq!(cells(2), ["[\"B200\"]", "operator:retry", "B200", "Ash leg", "<null>", "legacy", "u"]);
    let reason = rows[0][7].as_str().unwrap_or_default();
    assert!(
        reason.starts_with(&format!("operator retry of dead letter {a100} by {me} via cli (audit "))
            && reason.ends_with("it was dead-lettered for: no row of uom_uom has name = \"Crates\""),
        "{reason}"
    );
    assert_eq!(items.scalar(1), 0);
    let orders = common::parquet::report(
        &archive.path().join("entity=production_order"),
        &["SELECT _key, _decision, _source_system, _position FROM {src}"],
    );
    assert_eq!(
        orders.queries[0],
        vec![vec![
            serde_json::json!("[\"WH/MO/00009\"]"),
            serde_json::json!("operator:discard"),
            serde_json::json!("odoo"),
            serde_json::json!("0/1A2B3C4D")
        ]]
    );
}
