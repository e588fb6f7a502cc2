//! `millrace backfill`: entities copied from their system of record to the other side in
//! key-ordered chunks; killed mid-way and run again, every row lands exactly once; rows written
//! while it runs reach the other side once, through the stream that starts at its snapshot.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::legacy::MariaDb;
use common::odoo::RealWorld;
use common::parquet::report;
use common::sync::{erp_order_nos_like, eventually, insert_confirmed_orders, sql_strings, World};
use common::{millrace_command, TestDb};
use serde_json::json;

async fn drop_slot(db: &TestDb) {
    let odoo = db.client().await;
    odoo.execute("SELECT pg_drop_replication_slot($1)", &[&db.slot()]).await.expect("drop the slot setup made");
}

async fn insert_orders(odoo: &tokio_postgres::Client, prefix: &str, from: i64, n: i64) {
    insert_confirmed_orders(odoo, prefix, from, n, 5).await;
}

fn insert_items(maria: &MariaDb, from: usize, n: usize) {
    for start in (from..from + n).step_by(200) {
        let rows: Vec<String> = (start..(start + 200).min(from + n))
            .map(|i| format!("('MR-B{i:05}', 'Backfill item {i}', 'EA', {}.1250)", i % 40))
            .collect();
        maria.exec(&format!(
            "INSERT INTO ITEM_MASTER (ITEM_NO, DESCRIPTION, UOM_CODE, LIST_PRICE) VALUES {}",
            rows.join(",")
        ));
    }
}

/// Orders confirmed in Odoo (through its API) and items added to the ERP.
const ORDERS: i64 = 40;
const ITEMS: usize = 300;

/// Both directions against a real Odoo: items from the ERP go into Odoo through its API, orders
/// confirmed in Odoo go to the ERP. Killed once some chunks of items are saved, the backfill run
/// again resumes, and every row lands exactly once, nothing dead-lettered or parked; the archive
/// holds each snapshot record, in files rotated by rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_midway_and_run_again_every_row_lands_exactly_once() {
    let Some(world) =
        RealWorld::new("killed_midway_and_run_again_every_row_lands_exactly_once", &["item", "production_order"]).await
    else {
        return;
    };
    world.set_archive("rotate_rows = 100\nrotate_after = \"1h\"\n");
    drop_slot(&world.odoo.db).await;
    world.forget_erp_only_orders().await;
    let odoo = world.odoo.db.client().await;
    let rpc = world.rpc();
    // Desk Combination: made in Odoo, an item the ERP knows.
    let desk = rpc.search("product.product", json!([["default_code", "=", "FURN_7800"]])).await[0];
    let mut orders = Vec::new();
    for i in 0..ORDERS {
        orders.push(rpc.confirmed_order(desk, (1 + i % 7) as f64).await);
    }
    let odoo_orders: i64 = odoo.query_one("SELECT count(*) FROM mrp_production", &[]).await.unwrap().get(0);
    insert_items(&world.maria, 0, ITEMS);

    let log = world.dir.path().join("backfill-1.log");
    let mut first = millrace_command(&[], &["--config", &world.config, "backfill", "--chunk", "20"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start backfill");
    // Kill it once some chunks are saved and before it is done.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let progress: i64 = odoo
            .query_opt("SELECT coalesce(sum(rows_done), 0)::bigint FROM millrace.backfill", &[])
            .await
            .ok()
            .flatten()
            .map(|r| r.get(0))
            .unwrap_or(0);
        if progress >= 120 {
            break;
        }
        assert!(
            first.try_wait().unwrap().is_none(),
            "backfill ended before it could be killed: {}",
            std::fs::read_to_string(&log).unwrap()
        );
        assert!(Instant::now() < deadline, "no progress: {}", std::fs::read_to_string(&log).unwrap());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let unfinished: i64 =
        odoo.query_one("SELECT count(*) FROM millrace.backfill WHERE finished_at IS NULL", &[]).await.unwrap().get(0);
    assert!(unfinished >= 1, "the kill came mid-way");
    let progress_log = std::fs::read_to_string(&log).unwrap();
    assert!(
        progress_log.contains("backfill ") && progress_log.contains(" rows"),
        "plain progress lines off a terminal: {progress_log}"
    );

    let again = millrace_command(&[], &["--config", &world.config, "backfill", "--chunk", "20"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(again.status.success(), "second backfill: {}\n{stdout}", String::from_utf8_lossy(&again.stderr));
    assert!(stdout.contains("(resumed)"), "{stdout}");

    // Every order exactly once in the ERP, with its quantity; every item exactly once in Odoo.
    // The ERP knows the orders by their ERP numbers (`MO` + Odoo id).
    let numbers: Vec<String> = orders.iter().map(|id| RealWorld::erp_order_no(*id)).collect();
    let legacy = world.maria.exec(&format!(
        "SELECT COUNT(*), COUNT(DISTINCT ORDER_NO), SUM(QTY_ORDERED) FROM PROD_ORDER WHERE ORDER_NO IN ({})",
        sql_strings(&numbers)
    ));
    let ids: Vec<i32> = orders.iter().map(|id| *id as i32).collect();
    let odoo_qty: String = odoo
        .query_one("SELECT sum(product_qty)::text FROM mrp_production WHERE id = ANY($1)", &[&ids])
        .await
        .unwrap()
        .get(0);
    let parts: Vec<&str> = legacy.split_whitespace().collect();
    let made = ORDERS.to_string();
    assert_eq!((parts[0], parts[1]), (made.as_str(), made.as_str()), "{legacy}");
    assert_eq!(parts[2].parse::<f64>().unwrap(), odoo_qty.parse::<f64>().unwrap());
    let row = odoo
        .query_one(
            "SELECT count(*), count(DISTINCT default_code) FROM product_product WHERE default_code LIKE 'MR-B%'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (ITEMS as i64, ITEMS as i64));
    let problems: Vec<String> = odoo
        .query(
            "SELECT entity || ' ' || key || ': ' || reason FROM millrace.dlq
             UNION ALL SELECT entity || ' ' || key || ': parked' FROM millrace.parked",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(problems.is_empty(), "nothing dead-lettered or parked: {problems:?}");
    // `status` shows each entity's backfill and what the archive holds.
    let status = millrace_command(&[], &["--config", &world.config, "status", "--json"]).output().unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let order = status["backfill"].as_array().unwrap().iter().find(|b| b["entity"] == "production_order").unwrap();
    assert_eq!(order["rows"], odoo_orders, "the template's orders and the {ORDERS} made here: {order}");
    assert!(order["finished_at"].is_string());
    assert!(status["archive"]["files"].as_u64().unwrap() > 0, "{}", status["archive"]);
    assert_eq!(status["archive"]["spooled"], 0, "everything backfilled is in files");
    let text = millrace_command(&[], &["--config", &world.config, "status"]).output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("backfill:") && text.contains("changes spooled"), "{text}");
    // A third run has nothing left to do.
    let third = millrace_command(&[], &["--config", &world.config, "backfill"]).output().unwrap();
    assert!(String::from_utf8_lossy(&third.stdout).contains("backfilled earlier"));

    // The archive holds the snapshot records.
    let archive = world.dir.path().join("archive");
    let order_keys: Vec<String> = numbers.iter().map(|n| format!("[\"{n}\"]")).collect();
    let snapshot = format!(
        "SELECT count(DISTINCT _key) FROM {{src}} WHERE _op = 'r' AND (_key IN ({}) OR _key LIKE '%MR-B%')",
        sql_strings(&order_keys)
    );
    assert_eq!(report(&archive.join("entity=production_order"), &[&snapshot]).scalar(0), ORDERS);
    assert_eq!(report(&archive.join("entity=item"), &[&snapshot]).scalar(0), ITEMS as u64);
    // Files rotate by rows (100 here), not per chunk of 20.
    let files = std::fs::read_dir(archive.join("entity=item"))
        .unwrap()
        .flat_map(|day| std::fs::read_dir(day.unwrap().path()).unwrap())
        .count();
    assert!(files <= 8, "{files} files for the ERP's items and the {ITEMS} added");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_written_during_a_backfill_reach_the_other_side_once_through_the_stream() {
    let world = World::new("bf_handoff", &["item", "production_order"]).await;
    drop_slot(&world.odoo).await;
    let odoo = world.odoo.client().await;
    insert_orders(&odoo, "WH/MO/H", 0, 3000).await;

    let mut backfill = millrace_command(
        &[],
        &["--config", &world.config, "backfill", "--entity", "production_order", "--chunk", "10"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("start backfill");
    // Once the slot is created (its first chunk saved) the backfill reads from its snapshot:
    // write while it does.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let started = odoo.query_opt("SELECT 1 FROM millrace.backfill WHERE rows_done > 0", &[]).await.ok().flatten();
        if started.is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "the backfill did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // New orders, and changes to orders both already copied and not yet copied.
    insert_orders(&odoo, "WH/MO/H", 3000, 100).await;
    odoo.batch_execute("UPDATE mrp_production SET product_qty = product_qty + 100 WHERE name BETWEEN 'WH/MO/H00000' AND 'WH/MO/H00099'")
        .await
        .unwrap();
    odoo.batch_execute("UPDATE mrp_production SET product_qty = product_qty + 200 WHERE name BETWEEN 'WH/MO/H02900' AND 'WH/MO/H02999'")
        .await
        .unwrap();
    assert!(backfill.try_wait().unwrap().is_none(), "the writes must land while the backfill runs");
    let output = backfill.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "backfill: {}\n{stdout}", String::from_utf8_lossy(&output.stderr));
    // The fixture's 7 orders and the 3,000 written before the snapshot; none written after it.
    assert!(stdout.contains("production_order: 3007 rows"), "the snapshot holds only the orders before it: {stdout}");

    // The ERP knows the orders by their ERP numbers (`MO` + Odoo id): those of all 3,100, read
    // from Odoo.
    let numbers = erp_order_nos_like(&odoo, "WH/MO/H%").await;
    assert_eq!(numbers.len(), 3100);
    let in_numbers = sql_strings(&numbers);
    let legacy_state = || {
        world.maria.exec(&format!(
            "SELECT COUNT(*), COUNT(DISTINCT ORDER_NO), SUM(QTY_ORDERED) FROM PROD_ORDER WHERE ORDER_NO IN ({in_numbers})"
        ))
    };
    let before_stream: Vec<String> = legacy_state().split_whitespace().map(str::to_string).collect();
    assert_eq!(before_stream[0], "3000", "the backfill copied the snapshot: {before_stream:?}");

    // Streaming continues exactly after the snapshot.
    let service = world.start();
    let odoo_qty: String = odoo
        .query_one("SELECT sum(product_qty)::text FROM mrp_production WHERE name LIKE 'WH/MO/H%'", &[])
        .await
        .unwrap()
        .get(0);
    let expected = odoo_qty.parse::<f64>().unwrap();
    eventually("the writes made during the backfill in the ERP", &service, || async {
        let state = legacy_state();
        let parts: Vec<&str> = state.split_whitespace().collect();
        (parts.len() == 3 && parts[0] == "3100" && parts[2].parse::<f64>().ok() == Some(expected)).then_some(())
    })
    .await;
    let parts: Vec<String> = legacy_state().split_whitespace().map(str::to_string).collect();
    assert_eq!((parts[0].as_str(), parts[1].as_str()), ("3100", "3100"), "no order twice");
    // Nothing is decided twice: 3,007 orders from the snapshot, then exactly the 300 changes
    // written after it (100 new orders, 200 updates) from the stream (besides the echoes of
    // millrace's own writes into Odoo: the shop floor's reports on the fixture's orders).
    let decided: i64 = odoo
        .query_one(
            "SELECT coalesce(sum(n), 0)::bigint FROM millrace.decision_count
              WHERE entity = 'production_order' AND source = 'odoo' AND decision <> 'echo'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(decided, 3307, "{}", service.log_text());
    drop(service);
}

/// Two Odoo work centers under one code land in one chunk (their state writes share a key), and
/// another entity fails outright (its ERP table is gone): the backfill neither trips on
/// PostgreSQL's "ON CONFLICT DO UPDATE command cannot affect row a second time" nor stops at the
/// failed entity. It copies the others, reports the failure with the database's own message,
/// exits 1, and leaves that entity's backfill unfinished, which the next run resumes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_sharing_a_key_and_a_failed_entity_do_not_stop_the_backfill() {
    let world = World::new("bf_dupkey", &["item", "uom", "work_center"]).await;
    let odoo = world.odoo.client().await;
    // Besides the fixture's work centers without a code: two with the same one, next to each other.
    odoo.batch_execute(
        "INSERT INTO mrp_workcenter (resource_id, company_id, resource_calendar_id, sequence, name, code,
                working_state, active, time_efficiency, default_capacity, costs_hour, oee_target)
         SELECT resource_id, company_id, resource_calendar_id, sequence, n.name, 'WC-DUP', working_state, active,
                time_efficiency, default_capacity, n.cost, oee_target
           FROM mrp_workcenter, (VALUES ('Paint Booth A', 10), ('Paint Booth B', 20)) AS n(name, cost)
          WHERE mrp_workcenter.id = 1",
    )
    .await
    .expect("two work centers with one code");
    world.maria.exec("RENAME TABLE ITEM_MASTER TO ITEM_MASTER_GONE");

    // The work centers first, the failing entity next, then one more: it still runs.
    let args =
        ["--config", &world.config, "backfill", "--entity", "work_center", "--entity", "item", "--entity", "uom"];
    let first = millrace_command(&[], &args).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&first.stdout), String::from_utf8_lossy(&first.stderr));
    let both = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(first.status.code(), Some(1), "a failed entity fails the backfill: {both}");
    assert!(!both.contains("cannot affect row a second time"), "{both}");
    assert!(stdout.contains("item: FAILED from legacy"), "{both}");
    assert!(stdout.lines().any(|l| l.starts_with("work_center: 5 rows from odoo")), "{both}");
    assert!(stdout.lines().any(|l| l.starts_with("uom: ") && l.contains("rows from legacy")), "{both}");
    let summary = stderr.lines().skip_while(|l| !l.contains("backfill failed for 1 of 3 entities")).collect::<Vec<_>>();
    assert!(
        summary.iter().any(|l| l.contains("item: FAILED from legacy") && l.contains("ITEM_MASTER")),
        "the summary names the entity and the database's message: {both}"
    );
    assert!(!stderr.contains("db error"), "{both}");
    // One work center under the code in the ERP.
    assert_eq!(world.maria.exec("SELECT COUNT(*) FROM WORK_CENTER WHERE WC_CODE = 'WC-DUP'").trim(), "1", "{both}");
    let status = millrace_command(&[], &["--config", &world.config, "status", "--json"]).output().unwrap();
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let backfill = |entity: &str| {
        status["backfill"].as_array().unwrap().iter().find(|b| b["entity"] == entity).cloned().unwrap_or_default()
    };
    for entity in ["work_center", "uom"] {
        assert!(backfill(entity)["finished_at"].is_string(), "{entity}: {}", status["backfill"]);
    }
    let item = backfill("item");
    assert!(
        item.is_object() && item["finished_at"].is_null(),
        "the failed entity is unfinished: {}",
        status["backfill"]
    );
    let error: Option<String> =
        odoo.query_one("SELECT error FROM millrace.backfill WHERE entity = 'item'", &[]).await.unwrap().get(0);
    assert!(error.is_some_and(|e| e.contains("ITEM_MASTER")), "the failure is recorded");

    // Fixed, the next run resumes the failed entity; the finished one is not copied again.
    world.maria.exec("RENAME TABLE ITEM_MASTER_GONE TO ITEM_MASTER");
    let again = millrace_command(&[], &args).output().unwrap();
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(again.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&again.stderr));
    assert!(
        stdout.contains("work_center: backfilled earlier") && stdout.contains("uom: backfilled earlier"),
        "{stdout}"
    );
    assert!(stdout.lines().any(|l| l.starts_with("item: ") && l.contains("rows from legacy")), "{stdout}");
    let error: Option<String> = odoo
        .query_one("SELECT error FROM millrace.backfill WHERE entity = 'item' AND finished_at IS NOT NULL", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(error, None, "finished, the failure is forgotten");
}
