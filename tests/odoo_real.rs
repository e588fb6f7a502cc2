//! The Odoo → ERP direction against a real Odoo 17 server, driven through its ORM over JSON-RPC
//! as its users drive it: manufacturing orders confirmed, produced and marked done through the
//! wizards (with and without backorders), replenished by a reorder rule, purchases received,
//! deliveries validated, scrap, stock counts. Each test copies the template database that
//! `scripts/dev-env.sh` prepared; without the server they print SKIPPED and pass.

mod common;

use std::time::{Duration, Instant};

use common::odoo::{erp_orders, odoo_orders, wait_for, RealWorld};
use serde_json::json;

/// Desk Combination (FURN_7800): a manufactured product with a three-line BOM, no tracking.
const DESK: i64 = 8;
/// Plastic Laminate (FURN_8621): manufactured, made to replenish a reorder rule.
const LAMINATE: i64 = 46;
/// A component of the desk the ERP knows (FURN_0269, bought).
const COMPONENT: i64 = 25;
/// The demo's vendor and customer (Wood Corner; Deco Addict).
const PARTNER: i64 = 14;
/// WH/Stock.
const STOCK: i64 = 8;

/// A read of Odoo's rows for a decoded transaction waits until the transaction is visible: the
/// stream can deliver a commit before the committing session has left the proc array, and a read
/// in that moment sees the rows as they were before it (the transaction then lost as `stale`).
/// The transaction here is held open, which is what such a reader sees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_of_a_decoded_transaction_wait_until_it_is_visible() {
    let db = common::TestDb::create("vis").await;
    let writer = db.client().await;
    writer.batch_execute("CREATE TABLE t (id int PRIMARY KEY, v text)").await.unwrap();
    writer.batch_execute("BEGIN; INSERT INTO t VALUES (1, 'committed')").await.unwrap();
    let xid: i64 =
        writer.query_one("SELECT (pg_current_xact_id()::text::bigint % 4294967296)", &[]).await.unwrap().get(0);
    let reader = db.client().await;
    let reader_pid: i32 = reader.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0);
    let waiting = tokio::spawn(async move {
        millrace::pg::wait_visible(&reader, xid as u32).await.expect("wait");
        let v: Option<String> = reader.query_opt("SELECT v FROM t WHERE id = 1", &[]).await.unwrap().map(|r| r.get(0));
        v
    });
    // The reader's session asks whether the transaction is visible, again and again: seen
    // asking at three different moments, it has been told "no" at least twice and kept waiting.
    let watcher = db.client().await;
    let mut asked = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while asked.len() < 3 {
        let row = watcher
            .query_one("SELECT query, query_start::text FROM pg_stat_activity WHERE pid = $1", &[&reader_pid])
            .await
            .unwrap();
        let (query, start): (String, Option<String>) = (row.get(0), row.get(1));
        assert!(!query.contains("FROM t WHERE"), "the read went ahead while the transaction was still in progress");
        if query.contains("pg_visible_in_snapshot") {
            asked.extend(start);
        }
        assert!(Instant::now() < deadline, "the reader never asked three times whether the transaction is visible");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(!waiting.is_finished(), "the read went ahead while the transaction was still in progress");
    writer.batch_execute("COMMIT").await.unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(5), waiting).await.expect("the wait ended").unwrap();
    assert_eq!(seen.as_deref(), Some("committed"), "the read after the wait sees the committed row");
}

/// Many "mark as done" transactions through the ORM while millrace runs: every one reaches the
/// ERP in its final state (closed, with the quantity produced), the backorders Odoo splits off
/// become ERP orders of their own, and nothing is dead-lettered or a conflict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mark_done_reaches_the_erp_in_its_final_state() {
    let Some(world) = RealWorld::new("every_mark_done_reaches_the_erp_in_its_final_state", &["production_order"]).await
    else {
        return;
    };
    world.forget_erp_only_orders().await;
    let service = world.start();
    let rpc = world.rpc();
    let first = rpc.search("mrp.production", json!([])).await.into_iter().max().unwrap_or(0) + 1;
    let mut orders = Vec::new();
    for i in 0..16 {
        orders.push(rpc.confirmed_order(DESK, 2.0 + f64::from(i % 3)).await);
    }
    let numbers: Vec<String> = orders.iter().map(|id| RealWorld::erp_order_no(*id)).collect();
    wait_for("the confirmed orders in PROD_ORDER", &service, 60, || async {
        let erp = erp_orders(&world);
        numbers.iter().all(|n| erp.get(n).is_some_and(|v| v.starts_with("R|"))).then_some(())
    })
    .await;
    // Done, one after the other as a planner clicks through them: every fourth with a backorder
    // for the rest (Odoo renames the order WH/MO/…-001 and creates …-002).
    for (i, id) in orders.iter().enumerate() {
        if i % 4 == 0 {
            rpc.produce(*id, 1.0).await;
            rpc.mark_done(*id, true).await;
        } else {
            rpc.mark_done(*id, false).await;
        }
    }
    let expected = odoo_orders(&world, first).await;
    assert!(expected.len() >= orders.len() + 4, "backorders were created: {expected:?}");
    wait_for("every order in the ERP as Odoo has it", &service, 90, || async {
        let erp = erp_orders(&world);
        expected.iter().all(|(n, v)| erp.get(n) == Some(v)).then_some(())
    })
    .await;
    let erp = erp_orders(&world);
    for id in &orders {
        let row = &erp[&RealWorld::erp_order_no(*id)];
        assert!(row.starts_with("C|"), "order {id} is closed in the ERP: {row}");
        assert!(!row.ends_with("|0"), "order {id} shows what was produced: {row}");
    }
    assert_eq!(world.open_dead_letters().await, Vec::<String>::new(), "no dead letters");
    let odoo = world.odoo.db.client().await;
    // (The demo's own orders differ between the template and the ERP's demo data — their start
    // dates — which is reconciliation's business, not this test's.)
    let ours: Vec<String> = expected.keys().map(|n| format!("[\"{n}\"]")).collect();
    let conflicts: i64 = odoo
        .query_one(
            "SELECT count(*) FROM millrace.conflict WHERE entity = 'production_order' AND key = ANY($1)",
            &[&ours],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(conflicts, 0, "no conflicts:\n{}", service.log_text());
    let stale_done: i64 = odoo
        .query_one(
            "SELECT count(*) FROM millrace.decision_count WHERE entity = 'production_order' AND decision = 'dead_letter'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stale_done, 0);
    service.stop();
}

/// Orders however Odoo makes them — created and confirmed through the API (no form, so no
/// quantity producing), and made by a reorder rule — reach the ERP as released orders with
/// nothing completed; the shop floor's report in the ERP flows back to Odoo.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_however_odoo_makes_them_reach_the_erp() {
    let Some(world) = RealWorld::new("orders_however_odoo_makes_them_reach_the_erp", &["production_order"]).await
    else {
        return;
    };
    world.forget_erp_only_orders().await;
    let service = world.start();
    let rpc = world.rpc();
    let by_api = rpc.confirmed_order(DESK, 4.0).await;
    let route = rpc.ref_id("mrp.route_warehouse0_manufacture").await;
    let orderpoint = rpc
        .create(
            "stock.warehouse.orderpoint",
            json!({"product_id": LAMINATE, "location_id": STOCK, "product_min_qty": 5, "product_max_qty": 10, "route_id": route}),
        )
        .await;
    rpc.execute("stock.warehouse.orderpoint", "action_replenish", json!([[orderpoint]]), json!({})).await;
    let replenished = rpc.search("mrp.production", json!([["orderpoint_id", "=", orderpoint]])).await;
    assert_eq!(replenished.len(), 1, "the reorder rule made one order");
    let raw: Option<f64> = world
        .odoo
        .db
        .client()
        .await
        .query_one("SELECT qty_producing::float8 FROM mrp_production WHERE id::bigint = $1", &[&by_api])
        .await
        .unwrap()
        .get(0);
    assert_eq!(raw, None, "Odoo leaves the quantity producing of an API-made order empty");
    for (id, qty) in [(by_api, "4"), (replenished[0], "10")] {
        let number = RealWorld::erp_order_no(id);
        let row = wait_for(&format!("{number} in PROD_ORDER"), &service, 60, || async {
            erp_orders(&world).get(&number).cloned()
        })
        .await;
        assert_eq!(row, format!("R|{qty}|0"), "{number}");
    }
    // The shop floor reports 3 done on the API-made order.
    let number = RealWorld::erp_order_no(by_api);
    world.maria.exec(&format!("UPDATE PROD_ORDER SET QTY_COMPLETED = 3 WHERE ORDER_NO = '{number}'"));
    wait_for("the ERP's report in Odoo", &service, 60, || async {
        let rows = rpc.search_read("mrp.production", json!([["id", "=", by_api]]), &["qty_producing"]).await;
        (rows[0]["qty_producing"].as_f64() == Some(3.0)).then_some(())
    })
    .await;
    assert_eq!(world.open_dead_letters().await, Vec::<String>::new());
    service.stop();
}

/// Every done stock move — component consumption, production output, a purchase receipt, a
/// delivery, scrap, a stock count — becomes exactly one INV_TRANS row with its type, sign,
/// quantity and reference, numbered by the ERP above its own transactions; killed and started
/// again, millrace posts none of them twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_done_stock_move_is_one_erp_ledger_row() {
    let Some(world) =
        RealWorld::new("every_done_stock_move_is_one_erp_ledger_row", &["production_order", "inventory_transaction"])
            .await
    else {
        return;
    };
    world.forget_erp_only_orders().await;
    let erp_max: i64 = world.maria.exec("SELECT MAX(TRANS_NO) FROM INV_TRANS").trim().parse().unwrap();
    let rpc = world.rpc();
    let odoo = world.odoo.db.client().await;
    let first_move: i64 =
        odoo.query_one("SELECT (COALESCE(max(id), 0) + 1)::bigint FROM stock_move", &[]).await.unwrap().get(0);
    let mut service = world.start();

    let order = rpc.confirmed_order(DESK, 2.0).await;
    rpc.mark_done(order, false).await;
    rpc.receive(PARTNER, COMPONENT, 7.0).await;
    rpc.deliver(PARTNER, COMPONENT, 2.0).await;
    // Killed in the middle of the day, once some of it is posted: what was done so far must not
    // be posted again.
    wait_for("the first of the day's moves in INV_TRANS", &service, 60, || async {
        let posted: i64 = world
            .maria
            .exec(&format!("SELECT COUNT(*) FROM INV_TRANS WHERE TRANS_NO > {erp_max}"))
            .trim()
            .parse()
            .ok()?;
        (posted > 0).then_some(())
    })
    .await;
    let _ = std::process::Command::new("kill").args(["-KILL", &service.pid().to_string()]).status();
    while service.is_running() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    service = world.start();
    rpc.scrap(COMPONENT, 1.0).await;
    rpc.count_stock(COMPONENT, STOCK, 100.0).await;

    // What Odoo did: its done moves of the day, with the type, sign and reference the ERP should
    // show (read from Odoo's own tables, after the fact).
    let moves = odoo
        .query(
            "SELECT m.id, CASE
                   WHEN m.scrapped THEN 'SC' WHEN m.is_inventory THEN 'AJ'
                   WHEN m.raw_material_production_id IS NOT NULL THEN 'PI'
                   WHEN m.production_id IS NOT NULL THEN 'PR'
                   WHEN s.usage = 'supplier' THEN 'RC' WHEN d.usage = 'customer' THEN 'SH' ELSE '?' END,
                    (CASE WHEN d.usage = 'internal' THEN m.quantity ELSE -m.quantity END)::float8,
                    p.default_code
               FROM stock_move m JOIN stock_location s ON s.id = m.location_id
               JOIN stock_location d ON d.id = m.location_dest_id
               JOIN product_product p ON p.id = m.product_id
              WHERE m.id::bigint >= $1 AND m.state = 'done' AND (s.usage = 'internal') <> (d.usage = 'internal')
              ORDER BY m.id",
            &[&first_move],
        )
        .await
        .unwrap();
    let expected: Vec<(String, String, f64)> =
        moves.iter().map(|r| (r.get::<_, String>(1), r.get::<_, String>(3), r.get::<_, f64>(2))).collect();
    let kinds: std::collections::BTreeSet<&str> = expected.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(kinds.into_iter().collect::<Vec<_>>(), ["AJ", "PI", "PR", "RC", "SC", "SH"], "the day's kinds of move");

    let ledger = |world: &RealWorld| -> Vec<(i64, String, String, f64, String)> {
        world
            .maria
            .exec(&format!(
                "SELECT TRANS_NO, TRANS_TYPE, TRIM(ITEM_NO), QTY, TRIM(REF_NO) FROM INV_TRANS WHERE TRANS_NO > {erp_max} ORDER BY TRANS_NO"
            ))
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                (f[0].parse().unwrap(), f[1].trim().into(), f[2].into(), f[3].parse().unwrap(), f[4].into())
            })
            .collect()
    };
    wait_for("every done move in INV_TRANS", &service, 90, || async {
        (ledger(&world).len() >= expected.len()).then_some(())
    })
    .await;
    // A sentinel after everything: once it is there, nothing else is still on its way.
    rpc.scrap(COMPONENT, 1.0).await;
    wait_for("the sentinel scrap in INV_TRANS", &service, 60, || async {
        (ledger(&world).len() > expected.len()).then_some(())
    })
    .await;
    let rows = ledger(&world);
    assert_eq!(rows.len(), expected.len() + 1, "one row per done move, none twice:\n{rows:?}\nexpected {expected:?}");
    let mut got: Vec<(String, String, f64)> =
        rows[..rows.len()].iter().map(|r| (r.1.clone(), r.2.clone(), r.3)).collect();
    got.pop();
    let mut want = expected.clone();
    got.sort_by(|a, b| a.partial_cmp(b).unwrap());
    want.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert_eq!(got, want, "type, item and signed quantity of each move");
    let numbers: std::collections::BTreeSet<i64> = rows.iter().map(|r| r.0).collect();
    assert_eq!(numbers.len(), rows.len(), "ERP numbers are unique");
    assert!(rows.iter().all(|r| r.0 > erp_max), "numbered above the ERP's own transactions");
    let order_no = RealWorld::erp_order_no(order);
    assert!(
        rows.iter().filter(|r| r.1 == "PI" || r.1 == "PR").all(|r| r.4 == order_no),
        "production moves refer to the ERP's order number {order_no}: {rows:?}"
    );
    assert_eq!(world.open_dead_letters().await, Vec::<String>::new());
    service.stop();
}

/// A move of a product the ERP does not have (made in Odoo) is never written to the ERP's
/// ledger: it waits, parked, naming the missing item, while the rest flows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_the_erp_lacks_are_parked_not_written() {
    let Some(world) = RealWorld::new("records_the_erp_lacks_are_parked_not_written", &["inventory_transaction"]).await
    else {
        return;
    };
    let service = world.start();
    let rpc = world.rpc();
    let product = rpc
        .create(
            "product.product",
            json!({"name": "Made in Odoo", "default_code": "ODOO-ONLY-1", "detailed_type": "product"}),
        )
        .await;
    rpc.receive(PARTNER, product, 3.0).await;
    rpc.receive(PARTNER, COMPONENT, 2.0).await;
    wait_for("the known item's receipt in INV_TRANS", &service, 60, || async {
        let n = world.maria.exec("SELECT COUNT(*) FROM INV_TRANS WHERE TRANS_TYPE = 'RC' AND ITEM_NO = 'FURN_0269'");
        (n.trim() != "0").then_some(())
    })
    .await;
    let odoo = world.odoo.db.client().await;
    let parked = wait_for("the unknown item's receipt parked", &service, 30, || async {
        odoo.query_opt("SELECT reason FROM millrace.parked WHERE entity = 'inventory_transaction'", &[])
            .await
            .unwrap()
            .map(|r| r.get::<_, String>(0))
    })
    .await;
    assert!(parked.contains("ODOO-ONLY-1") && parked.contains("ITEM_MASTER"), "{parked}");
    assert_eq!(world.maria.exec("SELECT COUNT(*) FROM INV_TRANS WHERE ITEM_NO = 'ODOO-ONLY-1'").trim(), "0");
    service.stop();
}

/// Records without a usable key are not ignored: a BOM made in Odoo (no sequence) and a work
/// center without a code are dead letters naming the empty field, in `run` and in `backfill`,
/// and a backfill goes on with the next entity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_without_a_key_are_dead_letters_not_ignored() {
    let Some(world) = RealWorld::new(
        "records_without_a_key_are_dead_letters_not_ignored",
        &["bom", "work_center", "production_order", "inventory_transaction"],
    )
    .await
    else {
        return;
    };
    world.forget_erp_only_orders().await;
    // Backfill first: Odoo's three work centers have no code. Named first (by default they come
    // last: nothing refers to them), so that entities after them show the backfill goes on.
    let entities = ["work_center", "bom", "production_order", "inventory_transaction"];
    let mut args = vec!["--config", &world.config, "backfill"];
    for entity in entities {
        args.extend(["--entity", entity]);
    }
    let out = common::millrace(&[], &args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "backfill: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("work_center:") && stdout.contains("dead-lettered 3"), "{stdout}");
    let line_of = |entity: &str| stdout.lines().position(|l| l.starts_with(&format!("{entity}:")));
    assert!(
        line_of("work_center") < line_of("production_order") && line_of("work_center").is_some(),
        "the entities after it were backfilled too: {stdout}"
    );
    // The ERP's ledger holds its history already: a backfill posts none of Odoo's past moves.
    assert!(stdout.contains("inventory_transaction: not backfilled"), "{stdout}");
    assert_eq!(world.maria.exec("SELECT COUNT(*) FROM INV_TRANS").trim(), "42", "no history posted twice");
    let service = world.start();
    let rpc = world.rpc();
    let template = rpc.search("product.template", json!([["default_code", "=", "FURN_8621"]])).await;
    let bom = rpc
        .create(
            "mrp.bom",
            json!({"product_tmpl_id": template[0], "product_qty": 1,
                                  "bom_line_ids": [[0, 0, {"product_id": COMPONENT, "product_qty": 2}]]}),
        )
        .await;
    let center = rpc.create("mrp.workcenter", json!({"name": "Paint Booth"})).await;
    let letters = wait_for("dead letters for the BOM and the new work center", &service, 60, || async {
        let letters = world.open_dead_letters().await;
        let bom_key = format!("mrp_bom.id={bom}");
        let center_key = format!("mrp_workcenter.id={center}");
        (letters.iter().any(|l| l.contains(&bom_key)) && letters.iter().any(|l| l.contains(&center_key)))
            .then_some(letters)
    })
    .await;
    let odoo = world.odoo.db.client().await;
    let reason: String = odoo
        .query_one(
            "SELECT reason FROM millrace.dlq WHERE key = $1 AND status = 'open'",
            &[&format!("mrp_bom.id={bom}")],
        )
        .await
        .unwrap()
        .get(0);
    assert!(reason.contains("no natural key") && reason.contains("bom_alt"), "{reason}\n{letters:?}");
    // Given a code, the work center replicates and its dead letter is settled.
    rpc.write("mrp.workcenter", &[center], json!({"code": "PAINT1"})).await;
    wait_for("the work center in the ERP", &service, 60, || async {
        let n = world.maria.exec("SELECT COUNT(*) FROM WORK_CENTER WHERE WC_CODE = 'PAINT1'");
        (n.trim() == "1").then_some(())
    })
    .await;
    let open: i64 = odoo
        .query_one(
            "SELECT count(*) FROM millrace.dlq WHERE key = $1 AND status IN ('open', 'retry')",
            &[&format!("mrp_workcenter.id={center}")],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(open, 0, "the stand-in key's dead letter is settled");
    service.stop();
}

/// The archive tells what happened: `echo` only for millrace's own write coming back, a user's
/// edit in Odoo of a column the mapping does not carry is `stale` ("nothing new"), and a change
/// of which only some fields were applied says which were and which were not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_archive_says_what_happened() {
    let Some(world) = RealWorld::new("the_archive_says_what_happened", &["production_order"]).await else {
        return;
    };
    world.forget_erp_only_orders().await;
    let service = world.start();
    let rpc = world.rpc();
    let order = rpc.confirmed_order(DESK, 5.0).await;
    let number = RealWorld::erp_order_no(order);
    wait_for("the order in PROD_ORDER", &service, 60, || async { erp_orders(&world).get(&number).cloned() }).await;
    // The shop floor reports 2 done — and someone changes the ordered quantity in the ERP, which
    // Odoo owns: the first is applied, the second is not.
    world.maria.exec(&format!(
        "UPDATE PROD_ORDER SET QTY_COMPLETED = 2, QTY_ORDERED = QTY_ORDERED + 5 WHERE ORDER_NO = '{number}'"
    ));
    wait_for("the report in Odoo", &service, 60, || async {
        let rows = rpc.search_read("mrp.production", json!([["id", "=", order]]), &["qty_producing"]).await;
        (rows[0]["qty_producing"].as_f64() == Some(2.0)).then_some(())
    })
    .await;
    // millrace's write comes back through the stream; decided before a user writes the row again
    // (a row is millrace's echo while its `write_uid` is the integration user).
    let odoo = world.odoo.db.client().await;
    wait_for("millrace's write back as an echo", &service, 60, || async {
        let n: i64 = odoo
            .query_one(
                "SELECT COALESCE(sum(n), 0)::bigint FROM millrace.decision_count
                  WHERE entity = 'production_order' AND source = 'odoo' AND decision = 'echo'",
                &[],
            )
            .await
            .expect("decision counts")
            .get(0);
        (n > 0).then_some(())
    })
    .await;
    // A planner marks the order urgent in Odoo: nothing the ERP carries.
    rpc.write("mrp.production", &[order], json!({"priority": "1"})).await;
    // A sentinel order after it: once it is archived, the edit was decided.
    let sentinel = rpc.confirmed_order(DESK, 1.0).await;
    let sentinel_key = format!("[\"{}\"]", RealWorld::erp_order_no(sentinel));
    let archive = world.dir.path().join("archive").join("entity=production_order");
    let key = format!("[\"{number}\"]");
    let rows = wait_for("the sentinel in the archive", &service, 60, || async {
        if !archive.exists() {
            return None;
        }
        let r = common::parquet::report(
            &archive,
            &[
                &format!("SELECT count(*) FROM {{src}} WHERE _key = '{sentinel_key}'"),
                &format!(
                    "SELECT _source_system, _decision, coalesce(_reason, '') FROM {{src}} WHERE _key IN ('{key}', 'mrp_production.id={order}') ORDER BY _captured_at"
                ),
            ],
        );
        (r.scalar(0).as_i64().unwrap_or(0) > 0).then(|| r.queries[1].clone())
    })
    .await;
    let decisions: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| {
            (r[0].as_str().unwrap_or("").into(), r[1].as_str().unwrap_or("").into(), r[2].as_str().unwrap_or("").into())
        })
        .collect();
    let partial = decisions
        .iter()
        .find(|(source, decision, _)| source == "legacy" && decision == "apply")
        .unwrap_or_else(|| panic!("the ERP's report applied: {decisions:?}"));
    assert!(
        partial.2.contains("qty_produced") && partial.2.contains("qty_ordered") && partial.2.contains("not applied"),
        "the reason says what was applied and what was not: {partial:?}"
    );
    assert!(!partial.2.contains("accepted"), "nothing was accepted against its owner: {partial:?}");
    let after_write: Vec<&(String, String, String)> = decisions
        .iter()
        .skip_while(|(source, decision, _)| !(source == "legacy" && decision == "apply"))
        .filter(|(source, _, _)| source == "odoo")
        .collect();
    assert!(
        after_write.iter().any(|(_, d, _)| d == "echo"),
        "millrace's own write to Odoo came back as an echo: {decisions:?}"
    );
    let last = after_write.last().expect("Odoo changes after the write");
    assert_eq!(last.1, "stale", "the planner's edit is not labelled millrace's: {decisions:?}");
    service.stop();
}
