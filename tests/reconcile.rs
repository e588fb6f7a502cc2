//! `millrace reconcile` on the demo world: the real Odoo's template and the demo ERP, compared
//! through the shipped mappings; differences found and named, records without a key bound by the
//! mappings' match rules (ambiguities reported, not bound), and then `run` starting without the
//! conflicts and copies those records made before. SKIPPED without a real Odoo.

mod common;

use common::millrace;
use common::odoo::{wait_for, RealWorld};
use common::parquet::report;
use serde_json::json;

fn reconcile(config: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let mut all = vec!["--config", config, "reconcile"];
    all.extend_from_slice(args);
    let out = millrace(&[], &all);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn summary<'a>(json: &'a serde_json::Value, entity: &str) -> &'a serde_json::Value {
    json["entities"].as_array().unwrap().iter().find(|e| e["entity"] == entity).unwrap_or_else(|| panic!("{json}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_world_is_reconciled_then_bound_and_runs_without_copies() {
    let Some(world) =
        RealWorld::new("the_demo_world_is_reconciled_then_bound_and_runs_without_copies", &["item", "work_center"])
            .await
    else {
        return;
    };
    let odoo = world.odoo.db.client().await;
    let rpc = world.rpc();
    // A work center without a code whose name the ERP has once (bound), and two Odoo work
    // centers without a code of one name the ERP also has (ambiguous: never bound).
    world.maria.exec(
        "INSERT INTO WORK_CENTER (WC_CODE, DESCRIPTION, STATUS, CAPACITY, EFFICIENCY_PCT, COST_PER_HR) VALUES
            ('RC1', 'Reconcile press', 'A', 1, 100, 10), ('RC2', 'Twin lathe', 'A', 1, 100, 10)",
    );
    let press = rpc.create("mrp.workcenter", json!({"name": "Reconcile press", "costs_hour": 10})).await;
    let lathe_a = rpc.create("mrp.workcenter", json!({"name": "Twin lathe"})).await;
    let lathe_b = rpc.create("mrp.workcenter", json!({"name": "Twin lathe"})).await;
    // A field that differs on a record both sides have: its owner is named.
    world.maria.exec("UPDATE ITEM_MASTER SET LIST_PRICE = 1234.5 WHERE ITEM_NO = 'FURN_7800'");

    let out_dir = world.dir.path().join("reconcile-1");
    let (code, stdout, stderr) = reconcile(&world.config, &["--json", "--out", out_dir.to_str().unwrap()]);
    assert_eq!(code, Some(3), "the sides differ: {stdout}\n{stderr}");
    let json: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    eprintln!("{json:#}");
    // The demo's own work centers have no code in Odoo either: they match by name too.
    let wc = summary(&json, "work_center");
    let wc_matched = wc["matched_by_rule"].as_u64().unwrap();
    assert!(wc_matched >= 1, "{wc}");
    assert_eq!(wc["ambiguous"], 1, "{wc}");
    assert_eq!(wc["bound"], 0, "nothing bound without --bind: {wc}");

    let details = report(
        &out_dir.join("differences.parquet"),
        &[
            "SELECT key, owner, odoo_value, erp_value FROM {src} WHERE entity = 'item' AND kind = 'different' AND field = 'list_price' AND key = '[\"FURN_7800\"]'",
            "SELECT key, odoo_id FROM {src} WHERE entity = 'work_center' AND kind = 'matched_by_rule' AND key = '[\"RC1\"]'",
            "SELECT detail FROM {src} WHERE entity = 'work_center' AND kind = 'ambiguous'",
        ],
    );
    let price = &details.queries[0];
    assert_eq!(price.len(), 1, "{:?}", details.queries);
    assert_eq!(price[0][1], "legacy", "the ERP owns the price: {price:?}");
    assert_eq!(price[0][3], "1234.5", "{price:?}");
    assert_eq!(details.queries[1], vec![vec![json!("[\"RC1\"]"), json!(press)]]);
    let ambiguous = details.queries[2][0][0].as_str().unwrap().to_string();
    assert!(
        ambiguous.contains(&lathe_a.to_string())
            && ambiguous.contains(&lathe_b.to_string())
            && ambiguous.contains("RC2"),
        "{ambiguous}"
    );
    let csv = std::fs::read_to_string(out_dir.join("differences.csv")).unwrap();
    assert!(csv.starts_with("entity,kind,key,odoo_id,field,owner,odoo_value,erp_value,detail\n"), "{csv}");

    // --bind records the one-to-one match only.
    let (code, stdout, _) = reconcile(&world.config, &["--json", "--bind", "--entity", "work_center"]);
    assert_eq!(code, Some(3));
    let json: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(summary(&json, "work_center")["bound"], wc_matched, "{json}");
    let bound: Vec<(String, String)> = odoo
        .query("SELECT key, id FROM millrace.xref WHERE entity = 'work_center' AND key LIKE '%RC_%'", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(bound, vec![("[\"RC1\"]".to_string(), press.to_string())]);
    // Bound, it is no longer a difference of its kind.
    let (_, stdout, _) = reconcile(&world.config, &["--json", "--entity", "work_center"]);
    let json: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(summary(&json, "work_center")["matched_by_rule"], 0, "{json}");

    // run: Odoo owns work centers; a change of the bound one (which has no code in Odoo)
    // reaches the ERP's row it was bound to, instead of a dead letter for want of a key.
    let service = world.start();
    rpc.write("mrp.workcenter", &[press], json!({"costs_hour": 12})).await;
    wait_for("the bound work center's new cost in the ERP", &service, 90, || async {
        let cost = world.maria.exec("SELECT COST_PER_HR FROM WORK_CENTER WHERE WC_CODE = 'RC1'");
        cost.trim().starts_with("12").then_some(())
    })
    .await;
    let rows = world.maria.exec("SELECT COUNT(*) FROM WORK_CENTER WHERE DESCRIPTION = 'Reconcile press'");
    assert_eq!(rows.trim(), "1", "the bound work center was not copied");
    let letters = world.open_dead_letters().await;
    assert!(!letters.iter().any(|l| l.contains("RC1") || l.contains(&format!("id={press}"))), "{letters:?}");
    // The desk variants reconcile could not tell apart are not copied into Odoo by the ERP's
    // first poll: each is a dead letter naming the ambiguity, to bind by hand and retry.
    let held = wait_for("the ambiguous desks dead-lettered", &service, 90, || async {
        let letters = world.open_dead_letters().await;
        let held: Vec<String> = letters.into_iter().filter(|l| l.contains("ambiguous")).collect();
        (held.len() >= 3).then_some(held)
    })
    .await;
    for key in ["PP-000010", "PP-000011", "PP-000015"] {
        assert!(held.iter().any(|l| l.contains(key) && l.contains("--pair")), "{key}: {held:?}");
    }
    let copies: i64 = odoo
        .query_one(
            "SELECT count(*) FROM product_product WHERE default_code IN ('PP-000010', 'PP-000011', 'PP-000015')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(copies, 0, "no copy of an ambiguous desk variant: {held:?}");
    // Fixable as the letter says: bound by hand and repaired, the ERP's item is that variant
    // (its number written through the ORM) and the dead letter is settled.
    let (_, stdout, stderr) =
        reconcile(&world.config, &["--json", "--entity", "item", "--pair", "item:PP-000010=10", "--repair", "--apply"]);
    assert!(stdout.contains("\"applied\""), "{stdout}\n{stderr}");
    let code: String = odoo
        .query_one("SELECT coalesce(default_code, '') FROM product_product WHERE id = 10", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(code, "PP-000010");
    let letters = world.open_dead_letters().await;
    assert!(!letters.iter().any(|l| l.starts_with("[\"PP-000010\"]")), "{letters:?}");
    assert_eq!(service.stop().code(), Some(0));
}

/// GET `path` from millrace's HTTP endpoint: (status, body).
fn get(address: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).expect("connect to millrace's HTTP endpoint");
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10))).expect("timeout");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").expect("send request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default())
}

/// `[reconcile] every`: `run` compares both sides on its schedule beside replication; the counts
/// and the time of the last run are in /metrics, and /ready stays green (differences are data).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_reconciles_on_a_schedule_and_reports_in_metrics() {
    let Some(world) = RealWorld::new("run_reconciles_on_a_schedule_and_reports_in_metrics", &["work_center"]).await
    else {
        return;
    };
    let mut config = std::fs::read_to_string(&world.config).unwrap();
    config.push_str("\n[http]\nlisten = \"127.0.0.1:0\"\n\n[reconcile]\nevery = \"10s\"\n");
    std::fs::write(&world.config, config).unwrap();
    // What `millrace reconcile` says, for comparison.
    let (code, stdout, _) = reconcile(&world.config, &["--json"]);
    assert_eq!(code, Some(3), "{stdout}");
    let json: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let matched = summary(&json, "work_center")["matched_by_rule"].as_u64().unwrap();
    assert!(matched >= 1, "{json}");

    let service = world.start();
    let address = wait_for("the HTTP endpoint", &service, 30, || async { service.http_address() }).await;
    let line = format!("millrace_reconcile_differences{{entity=\"work_center\",kind=\"matched_by_rule\"}} {matched}");
    let metrics = wait_for("a scheduled reconcile in /metrics", &service, 90, || async {
        let (_, metrics) = get(&address, "/metrics");
        metrics.contains(&line).then_some(metrics)
    })
    .await;
    assert!(metrics.contains("millrace_reconcile_last_run_timestamp_seconds "), "{metrics}");
    assert!(metrics.contains("millrace_reconcile_failures_total 0"), "{metrics}");
    assert_eq!(get(&address, "/ready").0, 200, "differences are not an outage");
    // Replication goes on meanwhile: a work center made in Odoo reaches the ERP.
    world.rpc().create("mrp.workcenter", json!({"name": "Scheduled saw", "code": "SAW9"})).await;
    wait_for("SAW9 in the ERP", &service, 90, || async {
        (world.maria.exec("SELECT COUNT(*) FROM WORK_CENTER WHERE WC_CODE = 'SAW9'").trim() == "1").then_some(())
    })
    .await;
    assert_eq!(service.stop().code(), Some(0));
}

/// `--repair`: a dry run shows the owner's version of each difference and writes nothing; with
/// `--apply` it is written through the engine (Odoo through its API), archived as `repair`; the
/// demo's records without keys or numbered differently are bound by the match rules and given
/// the ERP's numbers; then reconcile finds the repaired entities agreeing, and `run` starts
/// without a conflict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_world_is_bound_and_repaired_then_agrees() {
    let entities = ["item", "work_center", "bom", "bom_line"];
    let Some(world) = RealWorld::new("the_demo_world_is_bound_and_repaired_then_agrees", &entities).await else {
        return;
    };
    let rpc = world.rpc();
    // The ERP owns items: its price is the one to keep. Odoo owns work centers: its name is.
    world.maria.exec("UPDATE ITEM_MASTER SET LIST_PRICE = 1234.5 WHERE ITEM_NO = 'FURN_7800'");
    let desk_price = || async {
        let rows = rpc.execute("product.product", "read", json!([[8]]), json!({"fields": ["lst_price"]})).await;
        rows[0]["lst_price"].as_f64().unwrap()
    };
    let price_before = desk_price().await;
    assert_ne!(price_before, 1234.5);

    // A dry run: what would be written, nothing written.
    let (code, stdout, stderr) = reconcile(&world.config, &["--json", "--repair"]);
    assert_eq!(code, Some(3), "{stdout}\n{stderr}");
    let json: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    eprintln!("dry run: {json:#}");
    assert_eq!(json["repair"], "dry_run");
    let repairs = json["repairs"].as_array().unwrap();
    let price = repairs
        .iter()
        .find(|r| r["entity"] == "item" && r["key"] == "[\"FURN_7800\"]")
        .unwrap_or_else(|| panic!("the desk's price is planned: {repairs:#?}"));
    assert_eq!(price["direction"], "erp_to_odoo");
    assert!(price["fields"].as_array().unwrap().contains(&json!("list_price")), "{price}");
    assert_eq!(desk_price().await, price_before, "a dry run writes nothing");

    // Three variants of one desk that nothing mapped tells apart stay ambiguous, never bound…
    let ambiguous = json["entities"].as_array().unwrap().iter().find(|e| e["entity"] == "item").unwrap()["ambiguous"]
        .as_u64()
        .unwrap();
    assert_eq!(ambiguous, 1, "{json}");
    let odoo = world.odoo.db.client().await;
    let products = || async {
        let row = odoo.query_one("SELECT count(*) FROM product_product", &[]).await.unwrap();
        row.get::<_, i64>(0)
    };
    let products_before = products().await;

    // …so the operator pairs them by hand (`--pair`); the rest is bound by the rules, and
    // everything repaired from its owner.
    let out_dir = world.dir.path().join("repair");
    let (code, stdout, stderr) = reconcile(
        &world.config,
        &[
            "--json",
            "--bind",
            "--pair",
            "item:PP-000010=10",
            "--pair",
            "item:PP-000011=11",
            "--pair",
            "item:PP-000015=15",
            "--repair",
            "--apply",
            "--out",
            out_dir.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(3), "it differed: {stdout}\n{stderr}");
    let json: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    eprintln!("repair: {json:#}");
    assert_eq!(json["repair"], "applied");
    assert_eq!(desk_price().await, 1234.5, "the ERP's price is in Odoo");
    // The ERP's item numbers are Odoo's internal references now (written through the ORM), and
    // the BOM's alternate its sequence.
    let code_of_9 = rpc.execute("product.product", "read", json!([[9]]), json!({"fields": ["default_code"]})).await;
    assert_eq!(code_of_9[0]["default_code"], "PP-000009", "{code_of_9}");
    let kit = rpc
        .execute(
            "mrp.bom",
            "search_read",
            json!([[["product_tmpl_id.default_code", "=", "FURN_78236"]]]),
            json!({"fields": ["sequence"]}),
        )
        .await;
    assert_eq!(kit[0]["sequence"], 1, "{kit}");
    // The items only the ERP had are created in Odoo; no copy of one Odoo had.
    let only_erp = summary(&json, "item")["only_in_erp"].as_u64().unwrap() as i64;
    assert_eq!(products().await, products_before + only_erp);
    // Each write is archived as `repair`.
    let archived = report(
        &world.dir.path().join("archive").join("entity=item"),
        &["SELECT count(*) FROM {src} WHERE _decision = 'repair' AND _key = '[\"FURN_7800\"]'"],
    );
    assert_eq!(archived.queries[0][0][0], json!(1), "{:?}", archived.queries);

    // Then they agree.
    let after_dir = world.dir.path().join("after");
    let (code, stdout, stderr) = reconcile(&world.config, &["--json", "--out", after_dir.to_str().unwrap()]);
    eprintln!("{}", std::fs::read_to_string(after_dir.join("differences.csv")).unwrap_or_default());
    eprintln!("{}", std::fs::read_to_string(out_dir.join("differences.csv")).unwrap_or_default());
    let json: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    eprintln!("after: {json:#}\n{stderr}");
    for entity in entities {
        let s = summary(&json, entity);
        assert!(s["equal"].as_u64().unwrap() > 0, "{entity}: {s}");
    }
    assert_eq!(json["agree"], true, "{json:#}");
    assert_eq!(code, Some(0), "the sides agree");

    // `run` then starts without a conflict or a copy: every ERP row of the four tables is
    // decided by the first polls.
    let decided = || async {
        let row = odoo
            .query_one("SELECT coalesce(sum(n), 0)::bigint FROM millrace.decision_count WHERE source = 'legacy' AND decision <> 'repair'", &[])
            .await
            .unwrap();
        row.get::<_, i64>(0)
    };
    let erp_rows: i64 = ["ITEM_MASTER", "WORK_CENTER", "BOM_HEADER", "BOM_LINE"]
        .iter()
        .map(|t| world.maria.exec(&format!("SELECT COUNT(*) FROM {t}")).trim().parse::<i64>().unwrap())
        .sum();
    let products_repaired = products().await;
    let service = world.start();
    wait_for("the first polls of the ERP's tables", &service, 120, || async {
        (decided().await >= erp_rows).then_some(())
    })
    .await;
    let conflicts: Vec<String> = odoo
        .query("SELECT entity || ' ' || key || ' from ' || source || ': ' || array_to_string(fields, ',') || ' ' || coalesce(record::text, '') FROM millrace.conflict", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(conflicts, Vec::<String>::new(), "no conflict at the first sync");
    assert_eq!(products().await, products_repaired, "no copy of an item");
    assert_eq!(world.open_dead_letters().await, Vec::<String>::new());
    assert_eq!(service.stop().code(), Some(0));
}
