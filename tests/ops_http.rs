//! The HTTP endpoint of `millrace run` during a real two-way workload: /metrics moves with the
//! workload, the legacy lag grows while the legacy database is unreachable and drains after,
//! /ready says why it is not ready, the API is read only with a token once a read token is
//! configured (while /health, /ready and /metrics stay open), dead letters are retried from the
//! API only with a token that may act, each action is in the audit trail and the archive with
//! the client's address and the token's name, and no password or token appears anywhere the
//! operator looks.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::odoo::{wait_for, RealWorld};
use common::proxy::Proxy;
use common::sync::{eventually, UNIT_THE_ERP_LACKS};
use serde_json::json;

const TOKEN: &str = "op-token-7f3a9c";
/// `[http] read_token`: reads only.
const READ_TOKEN: &str = "read-token-2e8b51";
/// A named operator's token (`[[http.tokens]] name = "alice"`, from a file).
const ALICE_TOKEN: &str = "alice-token-93c0d4";

/// One HTTP/1.1 request over a fresh connection: (status, body).
fn request(address: SocketAddr, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let (status, body, _) = request_from(address, method, path, token);
    (status, body)
}

/// [`request`], with the address the request came from (as the server sees it).
fn request_from(address: SocketAddr, method: &str, path: &str, token: Option<&str>) -> (u16, String, SocketAddr) {
    let mut stream = TcpStream::connect(address).expect("connect to millrace's HTTP endpoint");
    let from = stream.local_addr().expect("the request's own address");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .expect("send request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    // Bodies may be chunked: good enough for substring and number checks below.
    (status, body, from)
}

/// The id of the open dead letter of `key`, from the operator API.
fn dead_letter_id(address: SocketAddr, key: &str) -> Option<i64> {
    let body = request(address, "GET", "/api/overview", Some(READ_TOKEN)).1;
    let json: serde_json::Value = serde_json::from_str(&body).ok()?;
    json["dead_letters"].as_array()?.iter().find(|d| d["key"] == key).and_then(|d| d["id"].as_i64())
}

/// The value of one sample line of /metrics (exact name and labels).
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| l.strip_prefix(series).and_then(|rest| rest.trim().parse().ok()))
}

/// A [`RealWorld`] whose legacy connection goes through a TCP proxy the test can cut (the
/// config's ODBC connection string rewritten to the proxy's port), or `None` without a real Odoo.
async fn real_world_behind_proxy(test: &str, mappings: &[&str]) -> Option<(RealWorld, Proxy)> {
    let world = RealWorld::new(test, mappings).await?;
    let maria_port: u16 =
        url::Url::parse(&common::env_path("MILLRACE_TEST_MARIADB_URL")).ok().and_then(|u| u.port()).unwrap_or(3306);
    let proxy = Proxy::start(([127, 0, 0, 1], maria_port).into()).await;
    let config = std::fs::read_to_string(&world.config).expect("read config");
    let direct = format!("Port={maria_port};");
    assert!(config.contains(&direct), "the config reaches MariaDB on port {maria_port}: {config}");
    std::fs::write(&world.config, config.replace(&direct, &format!("Port={};", proxy.port))).expect("write config");
    Some((world, proxy))
}

/// An order of `product` confirmed in Odoo (through its API) and counted in `unit`, a unit the
/// ERP's UOM table has no row for: PROD_ORDER.UOM_CODE cannot name it, so the order is a dead
/// letter on its way (field `uom`). Its ERP number.
async fn order_the_erp_refuses(world: &RealWorld, product: i64, unit: i64) -> String {
    let rpc = world.rpc();
    let id =
        rpc.create("mrp.production", json!({"product_id": product, "product_qty": 1, "product_uom_id": unit})).await;
    rpc.execute("mrp.production", "action_confirm", json!([[id]]), json!({})).await;
    RealWorld::erp_order_no(id)
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_lag_readiness_and_operator_actions_over_http() {
    let Some((world, proxy)) =
        real_world_behind_proxy("metrics_lag_readiness_and_operator_actions_over_http", &["item", "production_order"])
            .await
    else {
        return;
    };
    world.forget_erp_only_orders().await;
    let mut config = std::fs::read_to_string(&world.config).expect("read config");
    let alice_file = world.dir.path().join("alice.token");
    std::fs::write(&alice_file, format!("{ALICE_TOKEN}\n")).expect("alice's token file");
    config.push_str(&format!(
        "\n[http]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\nread_token = \"{READ_TOKEN}\"\n\
         [[http.tokens]]\nname = \"alice\"\ntoken_file = {alice_file:?}\ncan = \"act\"\n"
    ));
    std::fs::write(&world.config, config).expect("write config");
    // A password for Odoo's database too (the dev server trusts local connections, so it is
    // never asked for): it must not show up either, nor the integration user's API key.
    let odoo_password = "odoo-pw-4b1d9e".to_string();
    let api_key = std::fs::read_to_string(world.dir.path().join("odoo-api-key")).expect("the API key file");
    let api_key = api_key.trim();
    assert!(!api_key.is_empty());
    let env = vec![("MILLRACE_ODOO_PASSWORD".to_string(), odoo_password.clone())];
    let service = common::sync::Service::start_with_env(&world.config, world.dir.path(), &env);
    let address: SocketAddr =
        eventually("the HTTP endpoint", &service, || async { service.http_address().and_then(|a| a.parse().ok()) })
            .await;
    let (status, body) = request(address, "GET", "/health", None);
    assert_eq!(status, 200, "{body}");
    wait_for("ready", &service, 90, || async { (request(address, "GET", "/ready", None).0 == 200).then_some(()) })
        .await;

    // With a read token configured, the API answers only to a token: none is 401, a wrong one
    // 403, the read token or any operator's 200. /health, /ready and /metrics stay open (above
    // and below, all without a token); the page is an empty shell that asks for the token.
    let (status, body) = request(address, "GET", "/api/overview", None);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("needs a token") && !body.contains("dead_letters"), "{body}");
    let (status, body) = request(address, "GET", "/api/overview", Some("read-token-2e8b5"));
    assert_eq!(status, 403, "{body}");
    assert!(!body.contains("dead_letters"), "{body}");
    for token in [READ_TOKEN, TOKEN, ALICE_TOKEN] {
        let (status, body) = request(address, "GET", "/api/overview", Some(token));
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\"dead_letters\"") || body.contains("\"ready\""), "{body}");
    }
    let (status, page) = request(address, "GET", "/", None);
    assert_eq!(status, 200);
    assert!(page.contains("id=\"login\""), "the page can ask for the token");

    // The workload moves the counters.
    let applied = |metrics: &str| {
        sample(metrics, "millrace_decisions_total{entity=\"item\",source=\"legacy\",decision=\"apply\"}").unwrap_or(0.0)
    };
    let before = applied(&request(address, "GET", "/metrics", None).1);
    world.maria.exec(
        "INSERT INTO ITEM_MASTER (ITEM_NO, DESCRIPTION, UOM_CODE) VALUES
            ('MR-M1', 'Metric 1', 'EA'), ('MR-M2', 'Metric 2', 'EA'), ('MR-M3', 'Metric 3', 'EA')",
    );
    let metrics = wait_for("three more applied items in /metrics", &service, 90, || async {
        let m = request(address, "GET", "/metrics", None).1;
        (applied(&m) >= before + 3.0).then_some(m)
    })
    .await;
    assert!(sample(&metrics, "millrace_changes_read_total{source=\"legacy\"}").unwrap_or(0.0) >= 3.0, "{metrics}");
    assert!(
        sample(&metrics, "millrace_applied_total{entity=\"item\",direction=\"legacy_to_odoo\"}").unwrap_or(0.0) >= 3.0
    );
    assert!(metrics.contains("millrace_batch_apply_seconds_bucket{source=\"legacy\",le=\"+Inf\"}"), "{metrics}");
    assert!(sample(&metrics, "millrace_queue_depth{source=\"odoo\"}").is_some(), "{metrics}");
    assert!(sample(&metrics, "millrace_replication_lag_bytes").is_some(), "slot lag is read from the server");
    assert_eq!(sample(&metrics, "millrace_up{system=\"legacy\"}"), Some(1.0));

    // The legacy database becomes unreachable: its lag grows and /ready says why.
    proxy.cut();
    let lag = |m: &str| sample(m, "millrace_legacy_poll_lag_seconds{table=\"ITEM_MASTER\"}").unwrap_or(0.0);
    let (status, body) = eventually("not ready while the legacy database is away", &service, || async {
        let (status, body) = request(address, "GET", "/ready", None);
        (status == 503).then_some((status, body))
    })
    .await;
    assert_eq!(status, 503);
    assert!(body.contains("legacy") && body.contains("ITEM_MASTER"), "{body}");
    let first = lag(&request(address, "GET", "/metrics", None).1);
    let second = eventually("the legacy lag to grow", &service, || async {
        let now = lag(&request(address, "GET", "/metrics", None).1);
        (now > first).then_some(now)
    })
    .await;
    assert!(first >= 10.0 && second > first, "the legacy lag grows while it is away: {first} then {second}");
    // Back: it drains.
    proxy.restore();
    eventually("the legacy lag drained", &service, || async {
        let m = request(address, "GET", "/metrics", None).1;
        (lag(&m) < 5.0 && request(address, "GET", "/ready", None).0 == 200).then_some(())
    })
    .await;

    // A dead letter: an order in a unit the ERP's UOM table has no row for (made in Odoo here),
    // refused by PROD_ORDER.UOM_CODE.
    let rpc = world.rpc();
    let odoo = world.odoo.db.client().await;
    let units = rpc.ref_id("uom.product_uom_categ_unit").await;
    let lacking = rpc
        .create(
            "uom.uom",
            json!({"name": UNIT_THE_ERP_LACKS, "category_id": units, "uom_type": "bigger",
                   "factor_inv": 100, "rounding": 1}),
        )
        .await;
    // Desk Combination: made in Odoo, an item the ERP knows.
    let desk = rpc.search("product.product", json!([["default_code", "=", "FURN_7800"]])).await[0];
    let order_no = order_the_erp_refuses(&world, desk, lacking).await;
    let key = format!("[\"{order_no}\"]");
    let id = settled_dead_letter_id(&service, address, &key).await;
    // A second such order, dead-lettered after it: retried with the token once the first was
    // refused, it is the marker that the retries asked for so far have run.
    let marker_no = order_the_erp_refuses(&world, desk, lacking).await;
    let marker_key = format!("[\"{marker_no}\"]");
    let marker = settled_dead_letter_id(&service, address, &marker_key).await;
    assert!(marker > id, "the marker is dead-lettered after the order ({marker}, {id})");
    // The ERP learns the unit; the retry needs the operator token.
    common::sync::add_the_lacking_unit_to_the_erp(&world.maria);
    let path = format!("/api/dlq/{id}/retry");
    assert_eq!(request(address, "POST", &path, None).0, 401, "no token: refused");
    assert_eq!(request(address, "POST", &path, Some("wrong-token")).0, 403, "wrong token: refused");
    let (status, body) = request(address, "POST", &path, Some(READ_TOKEN));
    assert_eq!(status, 403, "the read token may not act: {body}");
    assert!(body.contains("reader") && body.contains("may only read"), "{body}");
    let dlq_status = |id: i64| {
        let odoo = &odoo;
        async move {
            let status: String =
                odoo.query_one("SELECT status FROM millrace.dlq WHERE id = $1", &[&id]).await.unwrap().get(0);
            status
        }
    };
    assert_eq!(dlq_status(id).await, "open", "a refused retry leaves the dead letter open");
    // Dead letters marked for retry are retried one at a time, in id order: once the marker's
    // order is in the ERP, a retry of the first one would have been made. Alice retries it.
    let (status, body, alice_from) =
        request_from(address, "POST", &format!("/api/dlq/{marker}/retry"), Some(ALICE_TOKEN));
    assert_eq!(status, 200, "{body}");
    // The audit trail: the action, from alice's address, under her token's name, never its value.
    let audit = odoo
        .query(
            "SELECT action, via, client, token, dead_letters, outcome, row_to_json(a)::text FROM millrace.audit a ORDER BY id",
            &[],
        )
        .await
        .expect("the audit trail");
    assert_eq!(audit.len(), 1, "refused requests (no token, a wrong one, the reader's) are not actions");
    let a = &audit[0];
    let (action, via, client, token): (String, String, String, Option<String>) =
        (a.get(0), a.get(1), a.get(2), a.get(3));
    assert_eq!(
        (action.as_str(), via.as_str(), client, token.as_deref()),
        ("retry", "http", alice_from.to_string(), Some("alice"))
    );
    assert_eq!(a.get::<_, Vec<i64>>(4), vec![marker]);
    assert_eq!(a.get::<_, String>(5), "done");
    let whole: String = a.get(6);
    assert!(!whole.contains(ALICE_TOKEN) && !whole.contains(TOKEN), "{whole}");
    // The archive: a row of the order's entity, told apart by its decision, naming alice.
    let archived = common::parquet::report(
        &world.dir.path().join("archive").join("entity=production_order"),
        &["SELECT _key, _decision, _source_system, _reason FROM {src} WHERE _decision LIKE 'operator:%'"],
    );
    let rows = &archived.queries[0];
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (rows[0][0].as_str(), rows[0][1].as_str(), rows[0][2].as_str()),
        (Some(marker_key.as_str()), Some("operator:retry"), Some("odoo"))
    );
    let reason = rows[0][3].as_str().unwrap_or_default();
    assert!(
        reason.starts_with(&format!(
            "operator retry of dead letter {marker} by token \"alice\" via http from {alice_from} (audit "
        )) && !reason.contains(ALICE_TOKEN),
        "{reason}"
    );
    // And the operator page's data shows it.
    let overview: serde_json::Value =
        serde_json::from_str(&request(address, "GET", "/api/overview", Some(READ_TOKEN)).1).expect("overview");
    let shown = &overview["operator_actions"][0];
    assert_eq!(
        (shown["action"].as_str(), shown["token"].as_str(), shown["via"].as_str()),
        (Some("retry"), Some("alice"), Some("http"))
    );
    assert_eq!(shown["client"], alice_from.to_string());
    let count_of = |order_no: &str| format!("SELECT COUNT(*) FROM PROD_ORDER WHERE ORDER_NO = '{order_no}'");
    wait_for("the retried marker order in PROD_ORDER", &service, 60, || async {
        (world.maria.exec(&count_of(&marker_no)).trim() == "1").then_some(())
    })
    .await;
    let count = count_of(&order_no);
    assert_eq!(world.maria.exec(&count).trim(), "0", "nothing applied without the token");
    assert_eq!(dlq_status(id).await, "open");
    let (status, body) = request(address, "POST", &path, Some(TOKEN));
    assert_eq!(status, 200, "{body}");
    wait_for("the retried order in PROD_ORDER", &service, 60, || async {
        (world.maria.exec(&count).trim() == "1").then_some(())
    })
    .await;
    assert_eq!(
        world.maria.exec(&format!("SELECT UOM_CODE FROM PROD_ORDER WHERE ORDER_NO = '{order_no}'")).trim(),
        "PAL",
        "written in the unit the ERP learnt"
    );

    // No password or token anywhere the operator looks.
    let legacy_password = url::Url::parse(&std::env::var("MILLRACE_TEST_MARIADB_URL").unwrap())
        .ok()
        .and_then(|u| u.password().map(str::to_string))
        .expect("the dev MariaDB account has a password");
    let status_out = common::millrace(&env, &["--config", &world.config, "status", "--json"]);
    let looked_at = [
        request(address, "GET", "/", None).1,
        request(address, "GET", "/metrics", None).1,
        request(address, "GET", "/api/overview", Some(READ_TOKEN)).1,
        request(address, "GET", "/ready", None).1,
        String::from_utf8_lossy(&status_out.stdout).into_owned(),
        String::from_utf8_lossy(&status_out.stderr).into_owned(),
        service.log_text(),
    ];
    for (i, text) in looked_at.iter().enumerate() {
        assert!(!text.contains(&legacy_password), "output {i} shows the legacy password");
        assert!(!text.contains(&odoo_password), "output {i} shows the Odoo password");
        assert!(!text.contains(api_key), "output {i} shows the Odoo API key");
        assert!(!text.contains(TOKEN), "output {i} shows the operator token");
        assert!(!text.contains(READ_TOKEN), "output {i} shows the read token");
        assert!(!text.contains(ALICE_TOKEN), "output {i} shows alice's token");
    }
    let page = &looked_at[0];
    assert!(page.contains("<h1>millrace</h1>"));
    assert!(
        !page.contains("http://") && !page.contains("https://") && !page.contains("src=\""),
        "the page loads nothing from elsewhere"
    );
    assert_eq!(service.stop().code(), Some(0));
}

/// The open dead letter of `key` on the operator API once no later change of the record
/// supersedes it: Odoo may write an order again just after confirming it, and each version is
/// dead-lettered in turn (the newer superseding the older).
async fn settled_dead_letter_id(service: &common::sync::Service, address: SocketAddr, key: &str) -> i64 {
    let mut last =
        wait_for("the dead letter on the operator API", service, 60, || async { dead_letter_id(address, key) }).await;
    let mut same = 0;
    while same < 3 {
        tokio::time::sleep(std::time::Duration::from_millis(700)).await;
        let now =
            wait_for("the dead letter on the operator API", service, 60, || async { dead_letter_id(address, key) })
                .await;
        same = if now == last { same + 1 } else { 0 };
        last = now;
    }
    last
}
