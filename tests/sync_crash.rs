//! Crash safety: `millrace run` is killed with SIGKILL at random moments during a two-way
//! workload of about 10,000 row changes, ten times, then runs to quiescence. Both sides must
//! end in the same canonical state, with no duplicate rows, nothing parked or dead-lettered,
//! and no ownership conflict (the workload has none).

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::sync::{Service, World};

/// A small deterministic generator (no extra dependency), seeded from the clock and printed so
/// that a failing run can be repeated.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

async fn legacy_workload(maria: &common::legacy::MariaDb) -> u64 {
    let mut changes = 0;
    // 2,000 new items, in statements of 40 rows.
    for batch in 0..50 {
        let rows: Vec<String> = (0..40)
            .map(|i| {
                let n = batch * 40 + i;
                format!("('MR-C{n:05}', 'Crash item {n}', 'EA', {}.5000)", n % 90)
            })
            .collect();
        maria.exec(&format!(
            "INSERT INTO ITEM_MASTER (ITEM_NO, DESCRIPTION, UOM_CODE, LIST_PRICE) VALUES {}",
            rows.join(",")
        ));
        changes += 40;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // 3,000 updates of legacy-owned fields: three rounds over the 2,000 items' first half.
    for round in 1..=3 {
        for start in (0..1000).step_by(50) {
            maria.exec(&format!(
                "UPDATE ITEM_MASTER SET DESCRIPTION = CONCAT('Crash item ', SUBSTRING(ITEM_NO, 5), ' r{round}'),
                        LIST_PRICE = LIST_PRICE + 1
                  WHERE ITEM_NO BETWEEN 'MR-C{start:05}' AND 'MR-C{:05}'",
                start + 49
            ));
            changes += 50;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    changes
}

async fn odoo_workload(url: String) -> u64 {
    let odoo = common::connect(&url).await;
    let mut changes = 0;
    // 1,000 confirmed manufacturing orders, 50 per transaction.
    for batch in 0..20 {
        common::sync::insert_confirmed_orders(&odoo, "WH/MO/C", batch * 50, 50, 4).await;
        changes += 50;
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    // 2,000 changes of the Odoo-owned ordered quantity, 50 per transaction.
    for round in 0..2 {
        for start in (0..1000).step_by(50) {
            odoo.batch_execute(&format!(
                "UPDATE mrp_production SET product_qty = product_qty + 1
                  WHERE name BETWEEN 'WH/MO/C{start:04}' AND 'WH/MO/C{:04}'",
                start + 49
            ))
            .await
            .expect("update orders");
            changes += 50;
            let _ = round;
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
    }
    changes
}

/// The shop floor: produced quantities reported in the legacy ERP for orders it already has,
/// round after round, until it has reported 2,000 times. The ERP knows the workload's orders by
/// their ERP numbers (`MO` + Odoo id), which the test reads from Odoo, a hundred orders at a time.
async fn shop_floor_workload(maria: &common::legacy::MariaDb, url: &str) -> u64 {
    let odoo = common::connect(url).await;
    let mut changes = 0;
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut round = 0;
    while changes < 2000 && Instant::now() < deadline {
        round += 1;
        for start in (0..1000).step_by(100) {
            let numbers: Option<String> = odoo
                .query_one(
                    "SELECT string_agg(quote_literal('MO' || lpad(id::text, 8, '0')), ', ')
                       FROM mrp_production WHERE name BETWEEN $1 AND $2",
                    &[&format!("WH/MO/C{start:04}"), &format!("WH/MO/C{:04}", start + 99)],
                )
                .await
                .expect("the ERP numbers of the orders")
                .get(0);
            let Some(numbers) = numbers else {
                tokio::time::sleep(Duration::from_millis(40)).await;
                continue;
            };
            let out = maria.exec(&format!(
                "UPDATE PROD_ORDER SET QTY_COMPLETED = {round}
                  WHERE ORDER_NO IN ({numbers}) AND STATUS = 'R';
                 SELECT ROW_COUNT();"
            ));
            changes += out.trim().parse::<u64>().unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    }
    changes
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_ten_times_during_a_two_way_workload_both_sides_converge() {
    let world = World::new("crash", &["item", "production_order"]).await;
    let seed = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(7);
    println!("kill schedule seed: {seed}");
    let mut rng = Lcg(seed);
    // The ERP's orders before the workload (the demo data's): every other PROD_ORDER row at the
    // end must be one of the workload's orders.
    let demo_orders: Vec<String> =
        world.maria.exec("SELECT ORDER_NO FROM PROD_ORDER").lines().map(|l| l.trim().to_string()).collect();
    assert!(!demo_orders.is_empty(), "the demo ERP has production orders");
    let mut service = world.start();

    let started = Instant::now();
    let url = world.odoo.url.clone();
    let odoo_side = tokio::spawn(odoo_workload(url));
    let (legacy_changes, shop_changes, kills) = {
        let legacy = legacy_workload(&world.maria);
        let shop = async {
            tokio::time::sleep(Duration::from_secs(4)).await;
            shop_floor_workload(&world.maria, &world.odoo.url).await
        };
        let killer = async {
            for _ in 0..10 {
                tokio::time::sleep(Duration::from_millis(300 + rng.next() % 1500)).await;
                // SIGKILL: no chance to drain or acknowledge.
                let pid = service_pid(&service);
                let _ = std::process::Command::new("kill").args(["-KILL", &pid]).status();
                service = world.start();
            }
            10
        };
        tokio::join!(legacy, shop, killer)
    };
    let odoo_changes = odoo_side.await.expect("odoo workload");
    let total = legacy_changes + shop_changes + odoo_changes;
    println!("workload: {total} row changes ({legacy_changes} legacy items, {shop_changes} shop floor, {odoo_changes} Odoo orders) with {kills} kills in {:?}", started.elapsed());
    assert!(total >= 9_000, "the workload is about 10,000 changes, got {total}");

    let odoo = world.odoo.client().await;
    // Quiescence: both sides hold the same canonical state.
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut last = String::new();
    loop {
        let odoo_items: Vec<String> = odoo
            .query(
                "SELECT p.default_code || '|' || (t.name->>'en_US') || '|' || trim_scale(t.list_price)::text
                   FROM product_product p JOIN product_template t ON t.id = p.product_tmpl_id
                  WHERE p.default_code LIKE 'MR-C%' ORDER BY 1",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let legacy_items: Vec<String> = world
            .maria
            .exec("SELECT CONCAT_WS('|', ITEM_NO, DESCRIPTION, TRIM(TRAILING '.' FROM TRIM(TRAILING '0' FROM LIST_PRICE))) FROM ITEM_MASTER WHERE ITEM_NO LIKE 'MR-C%' ORDER BY ITEM_NO")
            .lines()
            .map(str::to_string)
            .collect();
        let odoo_orders: Vec<String> = odoo
            .query(
                "SELECT 'MO' || lpad(id::text, 8, '0') || '|' || trim_scale(product_qty)::text || '|'
                        || trim_scale(qty_producing)::text
                   FROM mrp_production WHERE name LIKE 'WH/MO/C%' ORDER BY 1",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let legacy_orders: Vec<String> = world
            .maria
            .exec("SELECT ORDER_NO, CONCAT_WS('|', ORDER_NO, TRIM(TRAILING '.' FROM TRIM(TRAILING '0' FROM QTY_ORDERED)), TRIM(TRAILING '.' FROM TRIM(TRAILING '0' FROM QTY_COMPLETED))) FROM PROD_ORDER ORDER BY ORDER_NO")
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .filter(|(order_no, _)| !demo_orders.iter().any(|d| d == order_no.trim()))
            .map(|(_, row)| row.to_string())
            .collect();
        let same = odoo_items == legacy_items
            && odoo_orders == legacy_orders
            && odoo_items.len() == 2000
            && odoo_orders.len() == 1000;
        if same {
            break;
        }
        last = format!(
            "items odoo {} legacy {} (first difference {:?}); orders odoo {} legacy {} (first difference {:?})",
            odoo_items.len(),
            legacy_items.len(),
            odoo_items.iter().zip(&legacy_items).find(|(a, b)| a != b),
            odoo_orders.len(),
            legacy_orders.len(),
            odoo_orders.iter().zip(&legacy_orders).find(|(a, b)| a != b)
        );
        assert!(Instant::now() < deadline, "no convergence: {last}\nlog of the last run:\n{}", service.log_text());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let _ = last;
    let duplicates: i64 = odoo
        .query_one(
            "SELECT count(*) FROM (SELECT default_code FROM product_product WHERE default_code IS NOT NULL GROUP BY 1 HAVING count(*) > 1) d",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(duplicates, 0, "no item was created twice in Odoo");
    let templates: i64 = odoo
        .query_one("SELECT count(*) FROM product_template t WHERE NOT EXISTS (SELECT 1 FROM product_product p WHERE p.product_tmpl_id = t.id)", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(templates, 0, "no template was left without its variant");
    // The workload's records, as conflicts name them: items by number, orders by ERP number.
    let ours = "key LIKE '%MR-C%' OR key IN (SELECT '[\"MO' || lpad(id::text, 8, '0') || '\"]'
                                                FROM mrp_production WHERE name LIKE 'WH/MO/C%')";
    let (dead, parked, conflicts): (i64, i64, i64) = {
        let r = odoo
            .query_one(
                &format!(
                    "SELECT (SELECT count(*) FROM millrace.dlq), (SELECT count(*) FROM millrace.parked),
                            (SELECT count(*) FROM millrace.conflict WHERE {ours})"
                ),
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1), r.get(2))
    };
    let reasons: Vec<String> = odoo
        .query(
            &format!(
                "(SELECT entity || ' ' || key || ': ' || reason FROM millrace.dlq ORDER BY id LIMIT 3)
                 UNION ALL (SELECT entity || ' ' || key || ' ' || source || ' ' || array_to_string(fields, ',') || ' at ' || position
                              FROM millrace.conflict WHERE {ours} ORDER BY id LIMIT 3)"
            ),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        (dead, parked, conflicts),
        (0, 0, 0),
        "no spurious dead letter, parked change or conflict: {reasons:#?}"
    );
    assert_eq!(service.stop().code(), Some(0));
}

fn service_pid(service: &Service) -> String {
    service.pid().to_string()
}

/// A transaction far larger than a part (`[sync] part_changes`) is applied part by part; a
/// SIGKILL between parts, then a restart, finishes it with every change exactly once: one ERP
/// ledger row per Odoo move (a replayed part would write a second row under a new number, a
/// skipped one none), and one archived change per move.
#[tokio::test(flavor = "multi_thread")]
async fn a_large_transaction_killed_between_parts_is_finished_exactly_once() {
    const COPIES: i64 = 5_000;
    let world = World::new("bigtxn", &["inventory_transaction"]).await;
    let archive = world.dir.path().join("archive");
    world.append_config(&format!(
        "part_changes = 1000\n\n[archive]\ndir = \"{}\"\nrotate_rows = 3000\nrotate_after = \"1s\"\n",
        archive.display()
    ));
    let before_max: i64 = world.maria.exec("SELECT COALESCE(MAX(TRANS_NO), 0) FROM INV_TRANS").trim().parse().unwrap();
    let odoo = world.odoo.client().await;
    let mut service = world.start();
    // One transaction, as an import or a mass validation makes them.
    let expected = common::sync::copy_done_manufacturing_moves(&odoo, COPIES).await;
    let progress = "SELECT COALESCE(max(changes), 0) FROM millrace.odoo_txn_progress";
    let killed_at = loop {
        let done: i64 = odoo.query_one(progress, &[]).await.unwrap().get(0);
        if done >= 3_000 {
            let _ = std::process::Command::new("kill").args(["-KILL", &service.pid().to_string()]).status();
            break done;
        }
        assert!(service.is_running(), "the service stopped: {}", service.log_text());
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(killed_at < expected, "killed in the middle of the transaction ({killed_at} of {expected} changes done)");
    service = world.start();
    let new_rows = format!("SELECT COUNT(*) FROM INV_TRANS WHERE TRANS_NO > {before_max}");
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let written: i64 = world.maria.exec(&new_rows).trim().parse().unwrap();
        if written >= expected {
            break;
        }
        assert!(Instant::now() < deadline, "{written} of {expected} ledger rows; log:\n{}", service.log_text());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(service.log_text().contains("part of a large Odoo transaction handled"), "{}", service.log_text());
    assert_eq!(service.stop().code(), Some(0));
    let written: i64 = world.maria.exec(&new_rows).trim().parse().unwrap();
    assert_eq!(written, expected, "one ERP ledger row per Odoo move, none twice");
    let state = odoo
        .query_one(
            "SELECT (SELECT count(*) FROM millrace.dlq), (SELECT count(*) FROM millrace.parked),
                    (SELECT count(*) FROM millrace.conflict),
                    (SELECT count(DISTINCT id) FROM millrace.xref WHERE entity = 'inventory_transaction' AND system = 'odoo')",
            &[],
        )
        .await
        .unwrap();
    let counts: (i64, i64, i64, i64) = (state.get(0), state.get(1), state.get(2), state.get(3));
    assert_eq!(counts, (0, 0, 0, expected), "(dead letters, parked, conflicts, moves bound to an ERP number)");
    let report = common::parquet::report(
        &archive.join("entity=inventory_transaction"),
        &["SELECT count(*), count(DISTINCT _key) FROM {src}"],
    );
    assert_eq!(
        report.queries[0][0],
        vec![serde_json::json!(expected), serde_json::json!(expected)],
        "every move archived exactly once"
    );
}
