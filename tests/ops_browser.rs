//! The operator page in a real headless Chromium (Debian's package, driven by playwright-core,
//! both installed by scripts/dev-env.sh): it loads with no request beyond millrace itself, asks
//! once for the read token (the API answers 401 without it), then shows a dead-lettered record,
//! refuses a retry with the read token, and with an operator's token retries it, which applies
//! it once the data is fixed; the page then lists the action, by the token's name. And the
//! reconcile parts: the last reconcile report per entity, the outstanding conflicts grouped by
//! entity and field, the throughput and lag charts the page draws itself, and the repair and
//! "apply the owner's value" actions refused with the read token and sent with an operator's.

mod common;

use common::sync::{eventually, World};

const TOKEN: &str = "page-token-51c2";
const READ_TOKEN: &str = "page-read-token-7d90";

fn drive_page(base: &str, id: i64, mode: &str) -> serde_json::Value {
    let script = format!("{}/tests/browser/operator_page.cjs", env!("CARGO_MANIFEST_DIR"));
    run_node(&[script, base.to_string(), id.to_string(), mode.to_string(), READ_TOKEN.to_string()])
}

/// Runs a browser script with node and parses the one JSON line it prints.
fn run_node(args: &[String]) -> serde_json::Value {
    let out = std::process::Command::new("node")
        .args(args)
        .output()
        .expect("run node (scripts/dev-env.sh installs nodejs, chromium and playwright-core)");
    assert!(
        out.status.success(),
        "the browser script failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON line from the browser script")
}

/// A world of items and production orders served with the read token and alice's operator
/// token: the world, the service and the page's base address.
async fn served_world(name: &str) -> (World, common::sync::Service, String) {
    let world = World::new(name, &["item", "production_order"]).await;
    world.append_config(&format!(
        "\n[http]\nlisten = \"127.0.0.1:0\"\nread_token = \"{READ_TOKEN}\"\n\
         [[http.tokens]]\nname = \"alice\"\ntoken = \"{TOKEN}\"\ncan = \"act\"\n"
    ));
    let service = world.start();
    let address = eventually("the HTTP endpoint", &service, || async { service.http_address() }).await;
    (world, service, format!("http://{address}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_operator_page_asks_for_the_read_token_shows_a_dead_letter_and_retries_it_only_with_an_operator_token() {
    let (world, service, base) = served_world("ops_page").await;

    // An order PROD_ORDER refuses: its unit has no row in the ERP's UOM table.
    let odoo = world.odoo.client().await;
    let order_no = common::sync::insert_order_the_erp_refuses(&odoo, "WH/MO/00980", "2026-12-07 08:00:00").await;
    let key = format!("[\"{order_no}\"]");
    let id: i64 = eventually("the dead letter", &service, || async {
        odoo.query_opt("SELECT id FROM millrace.dlq WHERE key = $1 AND status = 'open'", &[&key])
            .await
            .unwrap()
            .map(|r| r.get(0))
    })
    .await;
    // A second such order, dead-lettered after it: retried once the page was refused, it is the
    // marker that the retries asked for so far have run.
    let marker_no = common::sync::insert_order_the_erp_refuses(&odoo, "WH/MO/00981", "2026-12-07 09:00:00").await;
    let marker_key = format!("[\"{marker_no}\"]");
    let marker: i64 = eventually("the marker's dead letter", &service, || async {
        odoo.query_opt("SELECT id FROM millrace.dlq WHERE key = $1 AND status = 'open'", &[&marker_key])
            .await
            .unwrap()
            .map(|r| r.get(0))
    })
    .await;
    assert!(marker > id, "the marker is dead-lettered after the order ({marker}, {id})");
    // The data is fixed on the target (the ERP learns the unit).
    common::sync::add_the_lacking_unit_to_the_erp(&world.maria);

    let refused = drive_page(&base, id, "refuse");
    assert_eq!(refused["external"], serde_json::json!([]), "the page requested nothing outside millrace");
    assert_eq!(refused["asked"], true, "the page asked for a token before showing anything");
    assert_eq!(refused["asked_again"], false, "once given, the token is kept for the tab");
    let row = refused["row"].as_str().unwrap_or_default();
    assert!(
        row.contains("production_order")
            && row.contains(&order_no)
            && row.contains("UOM")
            && row.contains(common::sync::UNIT_THE_ERP_LACKS),
        "{row}"
    );
    let message = refused["message"].as_str().unwrap_or_default();
    assert!(message.contains("refused (403)") && message.contains("may only read"), "{message}");
    let dlq_status = || async {
        let status: String =
            odoo.query_one("SELECT status FROM millrace.dlq WHERE id = $1", &[&id]).await.unwrap().get(0);
        status
    };
    assert_eq!(dlq_status().await, "open", "a refused retry leaves the dead letter open");
    // Dead letters marked for retry are retried one at a time, in id order: once the marker's
    // order is in the ERP, a retry of the first one would have been made.
    let out = common::millrace(&[], &["--config", &world.config, "dlq", "retry", &marker.to_string()]);
    assert!(out.status.success(), "dlq retry: {}", String::from_utf8_lossy(&out.stderr));
    let count_of = |order_no: &str| format!("SELECT COUNT(*) FROM PROD_ORDER WHERE ORDER_NO = '{order_no}'");
    eventually("the retried marker order in PROD_ORDER", &service, || async {
        (world.maria.exec(&count_of(&marker_no)).trim() == "1").then_some(())
    })
    .await;
    let count = count_of(&order_no);
    assert_eq!(world.maria.exec(&count).trim(), "0", "nothing applied without the token");
    assert_eq!(dlq_status().await, "open");

    let accepted = drive_page(&base, id, TOKEN);
    let message = accepted["message"].as_str().unwrap_or_default();
    assert!(message.contains("done"), "{message}");
    // The page lists the operator actions, newest first: alice's from the page, by her token's
    // name (never its value), and the command line's before it.
    let actions: Vec<String> = accepted["actions"]
        .as_array()
        .map(|a| a.iter().filter_map(|t| t.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    assert!(actions.len() >= 2, "{actions:?}");
    let first: Vec<&str> = actions[0].split('\t').map(str::trim).collect();
    assert_eq!(first[1..3], ["retry", "http"], "{actions:?}");
    assert!(first[3].starts_with("127.0.0.1:"), "the client's address: {actions:?}");
    assert_eq!(first[4], "alice");
    assert_eq!(first[5], id.to_string());
    assert!(first[6].starts_with("done"), "{actions:?}");
    let cli: Vec<&str> = actions[1].split('\t').map(str::trim).collect();
    assert_eq!(cli[1..3], ["retry", "cli"], "{actions:?}");
    assert_eq!(cli[5], marker.to_string());
    assert!(actions.iter().all(|a| !a.contains(TOKEN) && !a.contains(READ_TOKEN)), "{actions:?}");
    eventually("the retried order in PROD_ORDER", &service, || async {
        (world.maria.exec(&count).trim() == "1").then_some(())
    })
    .await;
    let status: String = common::sync::settled(&"resolved".to_string(), || async {
        odoo.query_one("SELECT status FROM millrace.dlq WHERE id = $1", &[&id]).await.unwrap().get(0)
    })
    .await;
    assert_eq!(status, "resolved");
    assert_eq!(service.stop().code(), Some(0));
}

/// Runs tests/browser/reconcile_page.cjs (see there) and parses its JSON line.
fn drive_reconcile_page(base: &str, mode: &str, screenshot: Option<&std::path::Path>) -> serde_json::Value {
    let script = format!("{}/tests/browser/reconcile_page.cjs", env!("CARGO_MANIFEST_DIR"));
    let mut args = vec![script, base.to_string(), READ_TOKEN.into(), "production_order".into(), "qty_ordered".into()];
    args.push(mode.into());
    if let Some(path) = screenshot {
        args.push(path.display().to_string());
    }
    run_node(&args)
}

/// Where the page's screenshot goes: the build's target directory (a CI artifact).
fn screenshot_path() -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map(std::path::PathBuf::from).unwrap_or_else(|| root.join("target"));
    let target = if target.is_absolute() { target } else { root.join(target) };
    std::fs::create_dir_all(&target).expect("the target directory");
    target.join("ops-page.png")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_operator_page_shows_the_last_reconcile_conflicts_by_field_and_charts_and_guards_their_actions() {
    let (world, service, base) = served_world("ops_page_rc").await;

    // Traffic for the charts: orders confirmed in Odoo reach the ERP's PROD_ORDER.
    let odoo = world.odoo.client().await;
    common::sync::insert_confirmed_orders(&odoo, "WH/MO/PG", 1, 6, 3).await;
    let numbers = common::sync::erp_order_nos_like(&odoo, "WH/MO/PG%").await;
    assert_eq!(numbers.len(), 6);
    let in_erp = format!("SELECT COUNT(*) FROM PROD_ORDER WHERE ORDER_NO IN ({})", common::sync::sql_strings(&numbers));
    eventually("the orders in PROD_ORDER", &service, || async {
        (world.maria.exec(&in_erp).trim() == "6").then_some(())
    })
    .await;
    // The ERP changes the ordered quantity of two of them, a field Odoo owns: two conflicts on
    // production_order.qty_ordered, raised by the ERP, not applied.
    let changed = &numbers[..2];
    let quantities = format!(
        "SELECT QTY_ORDERED FROM PROD_ORDER WHERE ORDER_NO IN ({}) ORDER BY ORDER_NO",
        common::sync::sql_strings(changed)
    );
    let before = world.maria.exec(&quantities);
    world.maria.exec(&format!(
        "UPDATE PROD_ORDER SET QTY_ORDERED = QTY_ORDERED + 5 WHERE ORDER_NO IN ({})",
        common::sync::sql_strings(changed)
    ));
    let keys: Vec<String> = changed.iter().map(|n| format!("[\"{n}\"]")).collect();
    eventually("the two qty_ordered conflicts", &service, || async {
        let n: i64 = odoo
            .query_one(
                "SELECT count(DISTINCT key) FROM millrace.conflict WHERE entity = 'production_order'
                    AND source = 'legacy' AND 'qty_ordered' = ANY(fields) AND key = ANY($1)",
                &[&keys],
            )
            .await
            .unwrap()
            .get(0);
        (n == 2).then_some(())
    })
    .await;

    // A reconcile of the orders: its report is what the page shows.
    let out = common::millrace(&[], &["--config", &world.config, "reconcile", "--entity", "production_order"]);
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "reconcile: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let counts: serde_json::Value = odoo
        .query_opt("SELECT counts FROM millrace.reconcile_report WHERE entity = 'production_order'", &[])
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("millrace reconcile saved no report of production_order"))
        .get(0);
    assert!(counts["different"].as_i64().unwrap_or_default() >= 2, "the two changed orders differ: {counts}");

    // The page's picture (a CI artifact) is taken here: every part filled, the refusals shown.
    let screenshot = screenshot_path();
    let refused = drive_reconcile_page(&base, "refuse", Some(&screenshot));
    assert_eq!(refused["external"], serde_json::json!([]), "the page requested nothing outside millrace");
    // The report's row: entity, ran, via, then the counts in the page's order.
    let cells: Vec<String> = refused["report"]
        .as_array()
        .map(|a| a.iter().filter_map(|c| c.as_str().map(|s| s.trim().to_string())).collect())
        .unwrap_or_default();
    assert_eq!(cells.first().map(String::as_str), Some("production_order"), "{cells:?}");
    assert!(cells[2].starts_with("cli"), "made by the command line: {cells:?}");
    for (i, kind) in
        ["only_in_odoo", "only_in_erp", "different", "equal", "matched_by_rule", "ambiguous", "unreadable", "bound"]
            .iter()
            .enumerate()
    {
        assert_eq!(cells[3 + i], counts[kind].to_string(), "{kind} in {cells:?} ({counts})");
    }
    // The conflict group: raised by the ERP, two conflicts of two keys, the keys listed.
    let group = refused["group"].as_str().unwrap_or_default();
    let group_cells: Vec<&str> = group.split('\t').map(str::trim).collect();
    assert_eq!(group_cells[..5], ["production_order", "qty_ordered", "ERP", "2", "2"], "{group}");
    assert!(changed.iter().all(|n| group.contains(n.as_str())), "{group}");
    // Both charts drawn by the page, each direction a line of samples over time, times on the
    // axis (the throughput line above zero once the orders were applied: the script waits for it).
    for chart in ["throughput", "lag"] {
        let c = &refused["charts"][chart];
        assert!(c["points"].as_i64().unwrap_or_default() >= 4, "{chart}: {c}");
        assert_eq!(c["series"], 2, "{chart}: both directions drawn: {c}");
        assert_eq!(c["lines"], 2, "{chart}: each direction a line over time: {c}");
        assert!(
            c["ticks"].as_array().is_some_and(|t| t.iter().any(|t| t.as_str().is_some_and(|t| t.contains(':')))),
            "{chart}: times on the axis: {c}"
        );
    }
    // Actions with the read token: refused, and the page says so.
    let repair = refused["repair"].as_str().unwrap_or_default();
    assert!(
        repair.contains("repair of production_order refused (403)") && repair.contains("may only read"),
        "{repair}"
    );
    let apply = refused["apply"].as_str().unwrap_or_default();
    assert!(
        apply.contains("apply the owner's value of production_order.qty_ordered refused (403)")
            && apply.contains("may only read"),
        "{apply}"
    );
    let audited: i64 = odoo
        .query_one("SELECT count(*) FROM millrace.audit WHERE action IN ('repair', 'apply_owner')", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(audited, 0, "a refused token is logged, never audited, and nothing ran");

    // With alice's token the owner's value (Odoo's quantity) is written over the ERP's for both
    // keys, the page shows the reply, and the group is no longer outstanding.
    let accepted = drive_reconcile_page(&base, TOKEN, None);
    let apply = accepted["apply"].as_str().unwrap_or_default();
    assert!(
        apply.starts_with("apply the owner's value of production_order.qty_ordered: done"),
        "the page shows the reply: {apply}"
    );
    let reply: serde_json::Value = serde_json::from_str(accepted["apply_reply"].as_str().unwrap_or_default())
        .unwrap_or_else(|e| panic!("the reply shown: {e}: {}", accepted["apply_reply"]));
    let mut repaired: Vec<String> = reply["repairs"]
        .as_array()
        .map(|a| a.iter().filter_map(|r| r["key"].as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    repaired.sort();
    assert_eq!(repaired, keys, "{reply}");
    assert_eq!(accepted["group_after"], false, "dealt with, the group is gone from the page");
    assert_eq!(world.maria.exec(&quantities), before, "the ERP holds Odoo's quantities again");
    let (token, via, outcome, touched): (Option<String>, String, String, serde_json::Value) = odoo
        .query_one("SELECT token, via, outcome, touched FROM millrace.audit WHERE action = 'apply_owner'", &[])
        .await
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .expect("one apply_owner audit row");
    assert_eq!((token.as_deref(), via.as_str(), outcome.as_str()), (Some("alice"), "http", "done"));
    assert_eq!(
        (&touched["entity"], &touched["field"]),
        (&serde_json::json!("production_order"), &serde_json::json!("qty_ordered"))
    );
    assert!(screenshot.metadata().is_ok_and(|m| m.len() > 10_000), "the screenshot at {}", screenshot.display());
    assert_eq!(service.stop().code(), Some(0));
}

/// The rule behind the page's conflict groups (`state::report::conflict_groups`): a conflict is
/// outstanding until an operator action that covers it is recorded after it — a repair of its
/// entity, or the owner's value applied to its field (or every field) and its key — and
/// outstanding again when raised once more.
#[tokio::test(flavor = "multi_thread")]
async fn conflicts_an_operator_action_dealt_with_are_no_longer_outstanding() {
    use millrace::state::report;
    let db = common::TestDb::create("ops_groups").await;
    let info = millrace::config::PgConnInfo::parse(&format!("{}?sslmode=disable", db.url)).expect("URL");
    millrace::state::StateStore::connect(&info).await.expect("control schema");
    let c = db.client().await;
    let conflict = |entity: &str, key: &str, source: &str, fields: &str| {
        format!(
            "INSERT INTO millrace.conflict (entity, key, source, fields, policy, position, at)
             VALUES ('{entity}', '{key}', '{source}', '{fields}', 'reject', 'p', now() - interval '1 minute');"
        )
    };
    let mut setup = String::new();
    for key in ["[\"A\"]", "[\"B\"]", "[\"C\"]"] {
        setup.push_str(&conflict("production_order", key, "legacy", "{qty_ordered}"));
    }
    setup.push_str(&conflict("production_order", "[\"A\"]", "legacy", "{qty_ordered,start_date}"));
    setup.push_str(&conflict("item", "[\"I1\"]", "odoo", "{description}"));
    setup.push_str(&conflict("item", "[\"I2\"]", "odoo", "{description}"));
    c.batch_execute(&setup).await.expect("conflicts");
    let groups = || async {
        report::conflict_groups::<String>(&c, 2)
            .await
            .expect("groups")
            .into_iter()
            .map(|g| (g.entity, g.field.unwrap_or_default(), g.conflicts, g.key_count, g.keys, g.sources))
            .collect::<Vec<_>>()
    };
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let all = groups().await;
    assert_eq!(all.len(), 3, "{all:?}");
    let order = all.iter().find(|g| g.0 == "production_order" && g.1 == "qty_ordered").expect("qty_ordered");
    assert_eq!((order.2, order.3), (4, 3), "four conflicts of three keys: {all:?}");
    assert_eq!(order.4, strings(&["[\"A\"]", "[\"B\"]"]), "the keys, capped: {all:?}");
    assert_eq!(order.5, strings(&["legacy"]));
    assert_eq!(
        report::outstanding_conflict_keys(&c, "production_order", Some("qty_ordered"), 500).await.unwrap(),
        strings(&["[\"A\"]", "[\"B\"]", "[\"C\"]"])
    );

    // The owner's value of qty_ordered applied to A and B; a refused or failed one counts for
    // nothing, and neither does one of another field.
    let audit = |action: &str, touched: &str, outcome: &str| {
        format!(
            "INSERT INTO millrace.audit (action, via, client, token, touched, outcome, detail)
             VALUES ('{action}', 'http', '127.0.0.1:1', 'alice', '{touched}', '{outcome}', '{action}');"
        )
    };
    c.batch_execute(&format!(
        "{}{}{}",
        audit(
            "apply_owner",
            r#"{"entity": "production_order", "field": "qty_ordered", "keys": ["[\"A\"]", "[\"B\"]"]}"#,
            "done"
        ),
        audit(
            "apply_owner",
            r#"{"entity": "production_order", "field": "qty_ordered", "keys": ["[\"C\"]"]}"#,
            "failed"
        ),
        audit("apply_owner", r#"{"entity": "production_order", "field": "lot_no", "keys": ["[\"C\"]"]}"#, "done"),
    ))
    .await
    .expect("audit rows");
    let keys = report::outstanding_conflict_keys(&c, "production_order", Some("qty_ordered"), 500).await.unwrap();
    assert_eq!(keys, strings(&["[\"C\"]"]));
    let start_date = report::outstanding_conflict_keys(&c, "production_order", Some("start_date"), 500).await.unwrap();
    assert_eq!(start_date, strings(&["[\"A\"]"]), "another field of the same key stays outstanding");
    // A repair of the item entity deals with all of its conflicts, whatever the field or key.
    c.batch_execute(&audit("repair", r#"{"entity": "item", "field": null, "keys": []}"#, "done")).await.unwrap();
    let all = groups().await;
    assert!(all.iter().all(|g| g.0 != "item"), "{all:?}");
    // B's quantity changed in the ERP once more: outstanding again.
    c.batch_execute(
        &conflict("production_order", "[\"B\"]", "legacy", "{qty_ordered}")
            .replace("now() - interval '1 minute'", "now() + interval '1 second'"),
    )
    .await
    .unwrap();
    let keys = report::outstanding_conflict_keys(&c, "production_order", Some("qty_ordered"), 500).await.unwrap();
    assert_eq!(keys, strings(&["[\"B\"]", "[\"C\"]"]));
}
