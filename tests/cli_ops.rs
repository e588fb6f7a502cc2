//! The operator commands against a real control state: `millrace dlq` lists, shows, retries
//! and discards dead letters; `millrace status` reports the slot, positions, decisions, parked
//! changes, dead letters and recent conflicts. None of them prints a password.

mod common;

use std::process::Output;

use common::{millrace, TestDb};
use millrace::pg::PgConnInfo;
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
