//! The operator page in a real headless Chromium (Debian's package, driven by playwright-core,
//! both installed by scripts/dev-env.sh): it loads with no request beyond millrace itself, asks
//! once for the read token (the API answers 401 without it), then shows a dead-lettered record,
//! refuses a retry with the read token, and with an operator's token retries it, which applies
//! it once the data is fixed; the page then lists the action, by the token's name.

mod common;

use common::sync::{eventually, World};

const TOKEN: &str = "page-token-51c2";
const READ_TOKEN: &str = "page-read-token-7d90";

fn drive_page(base: &str, id: i64, mode: &str) -> serde_json::Value {
    let script = format!("{}/tests/browser/operator_page.cjs", env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new("node")
        .args([script.as_str(), base, &id.to_string(), mode, READ_TOKEN])
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

#[tokio::test(flavor = "multi_thread")]
async fn the_operator_page_asks_for_the_read_token_shows_a_dead_letter_and_retries_it_only_with_an_operator_token() {
    let world = World::new("ops_page", &["item", "production_order"]).await;
    world.append_config(&format!(
        "\n[http]\nlisten = \"127.0.0.1:0\"\nread_token = \"{READ_TOKEN}\"\n\
         [[http.tokens]]\nname = \"alice\"\ntoken = \"{TOKEN}\"\ncan = \"act\"\n"
    ));
    let service = world.start();
    let address = eventually("the HTTP endpoint", &service, || async { service.http_address() }).await;
    let base = format!("http://{address}");

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
