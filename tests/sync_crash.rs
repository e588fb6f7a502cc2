//! Crash safety: `millrace run` killed with SIGKILL (no chance to drain or acknowledge anything),
//! then started again, loses and repeats nothing.
//!
//! The two-way workload runs against a real Odoo 17 server, since every write into Odoo goes
//! through its API (without the server that test prints SKIPPED); the large transaction, written
//! into the ERP only, against the SQL fixture.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::odoo::{RealWorld, Rpc};
use common::sync::{Service, World};
use serde_json::json;

/// A small deterministic generator (no extra dependency), seeded from the clock and printed so
/// that a failing run can be repeated.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// Desk Combination (FURN_7800): manufactured from a three-line BOM, no tracking; the ERP has it.
const DESK: i64 = 8;
/// The workload's volumes: ERP items created, the first half of them updated this many times;
/// manufacturing orders confirmed in Odoo, each one's quantity changed this many times; rounds
/// of the shop floor's reports.
const ITEMS: usize = 300;
const ITEM_UPDATES: usize = 3;
const ORDERS: usize = 36;
const ORDER_UPDATES: usize = 2;
const REPORT_ROUNDS: u32 = 3;
const KILLS: usize = 5;

/// The item code of workload item `n`.
fn item_no(n: usize) -> String {
    format!("MR-C{n:05}")
}

/// `ITEM_NO|DESCRIPTION|LIST_PRICE` of item `n` once the ERP's workload is done.
fn final_item(n: usize) -> String {
    let updates = if n < ITEMS / 2 { ITEM_UPDATES } else { 0 };
    let description = match updates {
        0 => format!("Crash item {n}"),
        r => format!("Crash item {n:05} r{r}"),
    };
    format!("{}|{description}|{}.5", item_no(n), n % 90 + updates)
}

/// The ordered quantity order `i` of the workload is confirmed with.
fn first_qty(i: usize) -> usize {
    3 + i % 5
}

/// The ERP: items created in statements of 100 rows, then the first half of them updated in
/// statements of 25 (description and list price, both the ERP's), round after round.
async fn item_workload(maria: &common::legacy::MariaDb) -> u64 {
    let mut changes = 0;
    for batch in (0..ITEMS).step_by(100) {
        let rows: Vec<String> = (batch..(batch + 100).min(ITEMS))
            .map(|n| format!("('{}', 'Crash item {n}', 'EA', {}.5000)", item_no(n), n % 90))
            .collect();
        maria.exec(&format!(
            "INSERT INTO ITEM_MASTER (ITEM_NO, DESCRIPTION, UOM_CODE, LIST_PRICE) VALUES {}",
            rows.join(",")
        ));
        changes += rows.len() as u64;
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    for round in 1..=ITEM_UPDATES {
        for start in (0..ITEMS / 2).step_by(25) {
            let end = (start + 25).min(ITEMS / 2) - 1;
            maria.exec(&format!(
                "UPDATE ITEM_MASTER SET DESCRIPTION = CONCAT('Crash item ', SUBSTRING(ITEM_NO, 5), ' r{round}'),
                        LIST_PRICE = LIST_PRICE + 1
                  WHERE ITEM_NO BETWEEN '{}' AND '{}'",
                item_no(start),
                item_no(end)
            ));
            changes += (end + 1 - start) as u64;
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
    }
    changes
}

/// Odoo, driven through its API as a planner's script would: manufacturing orders created and
/// confirmed one by one, then each one's quantity to produce raised by one, round after round.
/// The orders' ids, in order.
async fn order_workload(rpc: Rpc) -> Vec<i64> {
    let mut orders = Vec::new();
    for i in 0..ORDERS {
        orders.push(rpc.confirmed_order(DESK, first_qty(i) as f64).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for round in 1..=ORDER_UPDATES {
        for (i, id) in orders.iter().enumerate() {
            rpc.write("mrp.production", &[*id], json!({"product_qty": (first_qty(i) + round) as f64})).await;
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }
    orders
}

/// The shop floor: produced quantities reported in the ERP on the released orders it has of the
/// workload's (not the demo's), ten orders a statement, round after round, until every order has
/// had `REPORT_ROUNDS` rounds or the time is up. The last quantity reported for each ERP order
/// number.
async fn shop_floor_workload(maria: &common::legacy::MariaDb, demo_orders: &[String]) -> BTreeMap<String, u32> {
    let mut reported: BTreeMap<String, u32> = BTreeMap::new();
    let mut rounds: BTreeMap<String, u32> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(100);
    while Instant::now() < deadline {
        let released: Vec<String> = maria
            .exec(&format!(
                "SELECT ORDER_NO FROM PROD_ORDER WHERE STATUS = 'R' AND ORDER_NO NOT IN ({}) ORDER BY ORDER_NO",
                common::sync::sql_strings(demo_orders)
            ))
            .lines()
            .map(|l| l.trim().to_string())
            .collect();
        let due: Vec<String> =
            released.into_iter().filter(|no| rounds.get(no).copied().unwrap_or(0) < REPORT_ROUNDS).collect();
        if due.is_empty() && rounds.len() == ORDERS {
            break;
        }
        for chunk in due.chunks(10) {
            // Each order's next round: the quantity completed so far.
            for no in chunk {
                *rounds.entry(no.clone()).or_insert(0) += 1;
            }
            let cases: Vec<String> = chunk.iter().map(|no| format!("WHEN '{no}' THEN {}", rounds[no])).collect();
            maria.exec(&format!(
                "UPDATE PROD_ORDER SET QTY_COMPLETED = CASE ORDER_NO {} END WHERE ORDER_NO IN ({})",
                cases.join(" "),
                common::sync::sql_strings(chunk)
            ));
            for no in chunk {
                reported.insert(no.clone(), rounds[no]);
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    reported
}

/// How many of Odoo's sessions wait to write product_template (behind the test's lock).
async fn waiting_to_write_products(odoo: &tokio_postgres::Client) -> i64 {
    odoo.query_one(
        "SELECT count(DISTINCT pid) FROM pg_locks
          WHERE database = (SELECT oid FROM pg_database WHERE datname = current_database())
            AND relation = 'product_template'::regclass AND NOT granted",
        &[],
    )
    .await
    .map(|r| r.get(0))
    .unwrap_or(0)
}

/// Kills the service with SIGKILL `KILLS` times, each time starting it again once the killed one
/// is gone. The first kill comes while Odoo is creating products for the ERP's items, and Odoo
/// is slow to commit that create: `stall`, a transaction of the test's, holds a SHARE lock on
/// product_template (it writes nothing, and readers go on) that Odoo's INSERT waits for, and
/// lets go only once the next run has looked for those products (and parked their changes, or
/// sent creates of its own that wait too). The create whose reply was lost is thus committed
/// after the next run found nothing. The other kills come at random moments. The last run
/// started, still running.
async fn killer(
    mut service: Service,
    config: String,
    dir: PathBuf,
    mut rng: Lcg,
    odoo: tokio_postgres::Client,
    stall: tokio_postgres::Client,
) -> Service {
    let started = Instant::now();
    let kill = |service: &Service| {
        let _ = std::process::Command::new("kill").args(["-KILL", &service.pid().to_string()]).status();
    };
    let parked = "SELECT COALESCE(sum(n), 0)::bigint FROM millrace.decision_count WHERE decision = 'parked'";
    for n in 1..=KILLS {
        if n == 1 {
            let deadline = Instant::now() + Duration::from_secs(30);
            while waiting_to_write_products(&odoo).await == 0 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert!(Instant::now() < deadline, "Odoo never started creating the ERP's items");
        } else {
            tokio::time::sleep(Duration::from_millis(2_000 + rng.next() % 6_000)).await;
        }
        kill(&service);
        println!("kill {n} at {:?}", started.elapsed());
        while service.is_running() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        service = Service::start(&config, &dir);
        if n == 1 {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let parked: i64 = odoo.query_one(parked, &[]).await.map(|r| r.get(0)).unwrap_or(0);
                let waiting = waiting_to_write_products(&odoo).await;
                if parked > 0 || waiting > 1 || Instant::now() > deadline {
                    println!(
                        "Odoo let commit the killed run's create at {:?}: the next run had parked {parked} \
                         changes, {} sessions were waiting to write products",
                        started.elapsed(),
                        waiting
                    );
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            stall.batch_execute("COMMIT").await.expect("let Odoo commit");
        }
    }
    service
}

/// The end of each run's log in `dir`, oldest first (the harness names a run's log by a clock
/// reading that two runs can share: a killed run's log may be overwritten).
fn run_logs(dir: &std::path::Path) -> String {
    let mut logs: Vec<(SystemTime, PathBuf)> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("run-")))
                .map(|p| (std::fs::metadata(&p).and_then(|m| m.modified()).unwrap_or(UNIX_EPOCH), p))
                .collect()
        })
        .unwrap_or_default();
    logs.sort();
    let mut text = String::new();
    for (_, path) in logs {
        let log = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        text.push_str(&format!("== {} ({} lines, the last 40)\n", path.display(), lines.len()));
        for line in &lines[lines.len().saturating_sub(40)..] {
            text.push_str(line);
            text.push('\n');
        }
    }
    text
}

/// Killed five times during a two-way workload against a real Odoo — items created and updated in
/// the ERP (written into Odoo through its API, creates batched), manufacturing orders confirmed
/// in Odoo through its API and their quantities changed (written into the ERP), the shop floor's
/// reports in the ERP recorded on those orders in Odoo through the production workflow — the
/// first time while Odoo is creating products, which Odoo commits only after the next run has
/// looked for them (the create's reply is lost; see `killer`), then at random moments; run to
/// quiescence, both sides hold the same records, each exactly once: one product and one template
/// per item code, one ERP order per Odoo order, every last update on both sides (the ERP's items,
/// Odoo's quantities, the shop floor's reports), nothing dead-lettered or parked, and no
/// ownership conflict (the workload has none).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_five_times_during_a_two_way_workload_both_sides_converge() {
    let name = "killed_five_times_during_a_two_way_workload_both_sides_converge";
    let Some(world) = RealWorld::new(name, &["item", "production_order"]).await else {
        return;
    };
    let seed = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(7);
    println!("kill schedule seed: {seed}");
    // The demo ERP's order that the Odoo template lacks: gone, so that Odoo's next order gets its
    // number cleanly. The others are the template's orders: every other PROD_ORDER row at the end
    // must be one of the workload's orders.
    world.maria.exec("DELETE FROM PROD_ORDER WHERE ORDER_NO = 'MO00000007'");
    let demo_orders: Vec<String> =
        world.maria.exec("SELECT ORDER_NO FROM PROD_ORDER").lines().map(|l| l.trim().to_string()).collect();
    assert!(!demo_orders.is_empty(), "the demo ERP has production orders");
    let odoo = world.odoo.db.client().await;
    let orders_before: i64 =
        odoo.query_one("SELECT count(*) FROM mrp_production", &[]).await.expect("Odoo's orders").get(0);
    let server = common::odoo::server(name).expect("the real Odoo");
    let planner = Rpc::login(&server, &world.odoo.db.name).await;

    let watcher = common::connect(&world.odoo.db.url).await;
    let stall = common::connect(&world.odoo.db.url).await;
    stall.batch_execute("BEGIN; LOCK TABLE product_template IN SHARE MODE").await.expect("hold Odoo's creates");
    let started = Instant::now();
    let service = world.start();
    let dir = world.dir.path().to_path_buf();
    let killing = tokio::spawn(killer(service, world.config.clone(), dir, Lcg(seed), watcher, stall));
    let planning = tokio::spawn(order_workload(planner));
    let (item_changes, reported) = tokio::join!(item_workload(&world.maria), async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        shop_floor_workload(&world.maria, &demo_orders).await
    });
    let orders = planning.await.expect("the planner's workload");
    let service = killing.await.expect("the kills");
    let reports: u32 = reported.values().sum();
    println!(
        "workload: {item_changes} item changes, {ORDERS} orders confirmed and {} quantities changed, \
         {reports} shop-floor reports on {} orders, {KILLS} kills, in {:?}",
        ORDERS * ORDER_UPDATES,
        reported.len(),
        started.elapsed()
    );
    assert_eq!(reported.len(), ORDERS, "the shop floor reported on every order");

    // What both sides must hold: the ERP's items as it last wrote them; Odoo's orders with the
    // quantity the planner last set and what the shop floor last reported, released.
    let want_items: Vec<String> = (0..ITEMS).map(final_item).collect();
    let want_orders: Vec<String> = {
        let mut rows: Vec<String> = orders
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let no = RealWorld::erp_order_no(*id);
                let done = reported.get(&no).copied().unwrap_or(0);
                format!("{no}|R|{}|{done}", first_qty(i) + ORDER_UPDATES)
            })
            .collect();
        rows.sort();
        rows
    };
    let deadline = Instant::now() + Duration::from_secs(150);
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
                "SELECT 'MO' || lpad(id::text, 8, '0') || '|'
                        || CASE WHEN state IN ('confirmed', 'progress', 'to_close') THEN 'R' ELSE state END || '|'
                        || trim_scale(product_qty)::text || '|' || trim_scale(COALESCE(qty_producing, 0))::text
                   FROM mrp_production WHERE id::bigint = ANY($1) ORDER BY 1",
                &[&orders],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let legacy_orders: Vec<String> = world
            .maria
            .exec("SELECT ORDER_NO, CONCAT_WS('|', ORDER_NO, STATUS, TRIM(TRAILING '.' FROM TRIM(TRAILING '0' FROM QTY_ORDERED)), TRIM(TRAILING '.' FROM TRIM(TRAILING '0' FROM QTY_COMPLETED))) FROM PROD_ORDER ORDER BY ORDER_NO")
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .filter(|(order_no, _)| !demo_orders.iter().any(|d| d == order_no.trim()))
            .map(|(_, row)| row.to_string())
            .collect();
        // A create sent by a killed run is parked until Odoo must have finished it, then looked
        // for again: quiescence is also nothing parked.
        let parked: i64 = odoo.query_one("SELECT count(*) FROM millrace.parked", &[]).await.unwrap().get(0);
        if odoo_items == want_items
            && legacy_items == want_items
            && odoo_orders == want_orders
            && legacy_orders == want_orders
            && parked == 0
        {
            break;
        }
        let first_difference = |got: &[String]| {
            let at = got.iter().zip(&want_items).position(|(a, b)| a != b);
            format!("{} rows, first difference {:?}", got.len(), at.map(|i| (&got[i], &want_items[i])))
        };
        let first_order_difference = |got: &[String]| {
            let at = got.iter().zip(&want_orders).position(|(a, b)| a != b);
            format!("{} rows, first difference {:?}", got.len(), at.map(|i| (&got[i], &want_orders[i])))
        };
        if Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        let waiting: Vec<String> = odoo
            .query(
                "(SELECT 'parked ' || entity || ' ' || key || ' ' || source || ' since ' || parked_at || ': ' || reason
                    FROM millrace.parked ORDER BY parked_at LIMIT 5)
                 UNION ALL (SELECT 'dead letter ' || entity || ' ' || key || ' ' || source || ': ' || reason
                              FROM millrace.dlq ORDER BY id LIMIT 5)",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        panic!(
            "no convergence: items in Odoo {}, in the ERP {}; orders in Odoo {}, in the ERP {} (got, wanted); \
             {parked} parked: {waiting:#?}\nlogs of the runs:\n{}",
            first_difference(&odoo_items),
            first_difference(&legacy_items),
            first_order_difference(&odoo_orders),
            first_order_difference(&legacy_orders),
            run_logs(world.dir.path())
        );
    }
    let parked_on_the_way: i64 = odoo
        .query_one("SELECT COALESCE(sum(n), 0)::bigint FROM millrace.decision_count WHERE decision = 'parked'", &[])
        .await
        .unwrap()
        .get(0);
    println!(
        "converged {:?} after the start ({parked_on_the_way} changes parked on the way: creates a killed run had sent)",
        started.elapsed()
    );

    // Every record exactly once: one product and one template per item code (archived ones
    // included; the demo ERP's items that Odoo had under no code were made at the start, killed
    // too), each of the workload's bound to its item; no order made in Odoo but the planner's.
    let twice: Vec<String> = odoo
        .query(
            "SELECT 'product ' || default_code || ' x' || count(*) FROM product_product
              WHERE default_code IS NOT NULL GROUP BY default_code HAVING count(*) > 1
             UNION ALL
             SELECT 'template ' || default_code || ' x' || count(*) FROM product_template
              WHERE default_code IS NOT NULL GROUP BY default_code HAVING count(*) > 1
             ORDER BY 1 LIMIT 10",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(twice, Vec::<String>::new(), "no item was made twice in Odoo");
    let row = odoo
        .query_one(
            "SELECT (SELECT count(*) FROM product_product WHERE default_code LIKE 'MR-C%'),
                    (SELECT count(DISTINCT default_code) FROM product_product WHERE default_code LIKE 'MR-C%'),
                    (SELECT count(*) FROM product_template WHERE default_code LIKE 'MR-C%'),
                    (SELECT count(DISTINCT default_code) FROM product_template WHERE default_code LIKE 'MR-C%'),
                    (SELECT count(*) FROM millrace.xref x JOIN product_product p
                         ON p.id::text = x.id AND x.key = '[\"' || p.default_code || '\"]'
                      WHERE x.entity = 'item' AND x.system = 'odoo' AND p.default_code LIKE 'MR-C%'),
                    (SELECT count(*) FROM mrp_production)",
            &[],
        )
        .await
        .unwrap();
    let counts: (i64, i64, i64, i64, i64, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4), row.get(5));
    let items = ITEMS as i64;
    assert_eq!(
        counts,
        (items, items, items, items, items, orders_before + ORDERS as i64),
        "(products, item codes among them, templates, item codes among them, products bound to their item, \
         Odoo's orders): one of each per item, no order but the planner's"
    );
    // The workload's records, as conflicts name them: items by number, orders by ERP number.
    let ours = "key LIKE '%MR-C%' OR key IN (SELECT '[\"' || no || '\"]' FROM unnest($1::text[]) no)";
    let numbers: Vec<String> = orders.iter().map(|id| RealWorld::erp_order_no(*id)).collect();
    let (dead, parked, conflicts): (i64, i64, i64) = {
        let r = odoo
            .query_one(
                &format!(
                    "SELECT (SELECT count(*) FROM millrace.dlq), (SELECT count(*) FROM millrace.parked),
                            (SELECT count(*) FROM millrace.conflict WHERE {ours})"
                ),
                &[&numbers],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1), r.get(2))
    };
    let reasons: Vec<String> = odoo
        .query(
            &format!(
                "(SELECT entity || ' ' || key || ': ' || reason FROM millrace.dlq ORDER BY id LIMIT 3)
                 UNION ALL (SELECT entity || ' ' || key || ' ' || source || ': ' || reason FROM millrace.parked LIMIT 3)
                 UNION ALL (SELECT entity || ' ' || key || ' ' || source || ' ' || array_to_string(fields, ',') || ' at ' || position
                              FROM millrace.conflict WHERE {ours} ORDER BY id LIMIT 3)"
            ),
            &[&numbers],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!((dead, parked, conflicts), (0, 0, 0), "no dead letter, parked change or conflict: {reasons:#?}");
    assert_eq!(service.stop().code(), Some(0));
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
