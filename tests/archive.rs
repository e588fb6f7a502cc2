//! The Parquet archive of `millrace run`: every decided change, with its decision, read back
//! by pyarrow and DuckDB; and, under SIGKILL during a workload, every change exactly once.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::odoo::{wait_for, RealWorld};
use common::parquet::report;
use common::sync::{erp_order_nos_like, eventually, insert_confirmed_orders, sql_strings, World};
use serde_json::json;

const ARCHIVE: &str = "\n[archive]\ndir = \"archive\"\nrotate_rows = 500\nrotate_after = \"1s\"\n";

fn archived_rows(dir: &Path, condition: &str) -> u64 {
    archive_scalar(dir, &format!("SELECT count(*) FROM {{src}} WHERE {condition}"))
}

fn archive_scalar(dir: &Path, sql: &str) -> u64 {
    if !dir.exists() {
        return 0;
    }
    let any = std::fs::read_dir(dir).map(|mut d| d.next().is_some()).unwrap_or(false);
    if !any {
        return 0;
    }
    let r = report(dir, &[sql]);
    r.scalar(0).as_u64().unwrap_or(0)
}

/// The id of the Odoo product with internal reference `code`, read from Odoo's table.
async fn product_id(odoo: &tokio_postgres::Client, code: &str) -> Option<i64> {
    odoo.query_opt("SELECT id::bigint FROM product_product WHERE default_code = $1", &[&code])
        .await
        .expect("read product_product")
        .map(|r| r.get(0))
}

/// The English name of the Odoo product with internal reference `code`, read from Odoo's tables.
async fn product_name(odoo: &tokio_postgres::Client, code: &str) -> Option<String> {
    odoo.query_opt(
        "SELECT t.name->>'en_US' FROM product_product p JOIN product_template t ON t.id = p.product_tmpl_id
          WHERE p.default_code = $1",
        &[&code],
    )
    .await
    .expect("read product_template")
    .and_then(|r| r.get(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_decision_is_archived_with_typed_columns_that_pyarrow_and_duckdb_read() {
    let test = "every_decision_is_archived_with_typed_columns_that_pyarrow_and_duckdb_read";
    let Some(world) = RealWorld::new(test, &["item", "production_order"]).await else {
        return;
    };
    world.set_archive("rotate_rows = 500\nrotate_after = \"1s\"\n");
    let archive = world.dir.path().join("archive");
    let service = world.start();
    let odoo = world.odoo.db.client().await;

    world.maria.exec(
        "INSERT INTO ITEM_MASTER (ITEM_NO, DESCRIPTION, UOM_CODE, ITEM_TYPE, LOT_CONTROL, STD_COST, LIST_PRICE, STATUS)
         VALUES ('MR-A001', 'Walnut Top', 'EA', 'P', 'N', 3.2500, 12.3456, 'A'),
                ('MR-A002', 'Walnut Leg', 'EA', 'P', 'L', 1.0000, 0.0001, 'A')",
    );
    let id = wait_for("both items in Odoo", &service, 90, || async {
        product_id(&odoo, "MR-A002").await?;
        product_id(&odoo, "MR-A001").await
    })
    .await;
    // A rename in Odoo of a legacy-owned field: a conflict, archived with its reason (and, under
    // the mapping's policy `revert`, the ERP's name written back into Odoo).
    world.rpc().write("product.product", &[id], json!({"name": "Renamed in Odoo"})).await;
    wait_for("the ERP's name written back into Odoo", &service, 60, || async {
        (product_name(&odoo, "MR-A001").await.as_deref() == Some("Walnut Top")).then_some(())
    })
    .await;
    wait_for("the archived conflict", &service, 60, || async {
        (archived_rows(&archive.join("entity=item"), "_decision = 'conflict'") >= 1).then_some(())
    })
    .await;
    wait_for("the archived item creations", &service, 60, || async {
        (archived_rows(
            &archive.join("entity=item"),
            "_source_system = 'legacy' AND _decision = 'apply' AND _key LIKE '%MR-A%'",
        ) >= 2)
            .then_some(())
    })
    .await;
    let status = service.stop();
    assert!(status.success());

    // Files are where DESIGN §8 says, named by position range, with no temporary left behind.
    let item_dir = archive.join("entity=item");
    let days: Vec<_> = std::fs::read_dir(&item_dir).unwrap().map(|d| d.unwrap().file_name()).collect();
    assert!(days.iter().all(|d| d.to_string_lossy().starts_with("date=")), "{days:?}");
    let (spool, files): (Vec<String>, Vec<String>) = walk(&archive).into_iter().partition(|f| f.contains("/_spool/"));
    assert!(files.iter().all(|f| f.ends_with(".parquet")), "only finished Parquet files: {files:?}");
    // Stopped cleanly: everything spooled is in the files, the spool is empty.
    for f in spool.iter().filter(|f| f.ends_with(".jsonl")) {
        assert_eq!(std::fs::metadata(f).unwrap().len(), 0, "{f} still holds changes");
    }
    assert!(files.iter().any(|f| f.contains("/legacy-")) && files.iter().any(|f| f.contains("/odoo-")), "{files:?}");

    // One entity's folder is one table to a reader, its days a partition column.
    let r = report(
        &item_dir,
        &[
            "SELECT _key, description, list_price::VARCHAR, _op, _decision, _source_table, _position, uom
               FROM {src} WHERE _source_system = 'legacy' AND _decision = 'apply' AND _key LIKE '%MR-A%' ORDER BY _key",
            "SELECT _reason, before.description, description, _commit_ts IS NOT NULL, _xid IS NOT NULL, _op
               FROM {src} WHERE _decision = 'conflict'",
            "SELECT count(*) FROM {src} WHERE _captured_at IS NULL OR _position IS NULL",
            "SELECT count(*) FROM {src} WHERE date <> CAST(coalesce(_commit_ts, _captured_at) AS DATE)::VARCHAR",
        ],
    );
    // Typed columns from the mapping, the metadata columns, and `before` as a struct.
    assert_eq!(r.type_of("list_price"), "decimal128(38, 4)");
    assert_eq!(r.type_of("active"), "bool");
    assert_eq!(r.type_of("_commit_ts"), "timestamp[us, tz=UTC]");
    assert_eq!(r.type_of("_xid"), "int64");
    let before = r.type_of("before");
    assert!(before.starts_with("struct<") && before.contains("list_price: decimal128(38, 4)"), "{before}");
    for column in ["_op", "_decision", "_reason", "_source_system", "_source_table", "_position", "_captured_at"] {
        assert_ne!(r.type_of(column), "<missing>", "column {column}");
    }
    let created = &r.queries[0];
    assert_eq!(created.len(), 2, "{created:?}");
    assert_eq!(created[0][0], "[\"MR-A001\"]");
    assert_eq!(created[0][1], "Walnut Top");
    // Exact decimals: 12.3456 and 0.0001 as the ERP stored them, not floats.
    assert_eq!(created[0][2], "12.3456");
    assert_eq!(created[1][2], "0.0001");
    assert_eq!((created[0][3].as_str(), created[0][4].as_str()), (Some("c"), Some("apply")));
    assert_eq!(created[0][5], "ITEM_MASTER");
    assert!(created[0][6].as_str().unwrap().contains("MR-A001"), "a legacy position names the row: {created:?}");
    assert_eq!(created[0][7], "Units");
    let conflict = &r.queries[1][0];
    assert!(conflict[0].as_str().unwrap().contains("description"), "the reason names the field: {conflict:?}");
    assert_eq!(conflict[1], "Walnut Top", "before holds what was known");
    assert_eq!(conflict[2], "Renamed in Odoo");
    assert_eq!((conflict[3].as_bool(), conflict[4].as_bool()), (Some(true), Some(true)), "Odoo's commit time and xid");
    assert_eq!(conflict[5], "u");
    assert_eq!(r.scalar(2), 0);
    assert_eq!(r.scalar(3), 0, "each change sits in the partition of its day");
    assert_eq!(r.type_of("date"), "string", "the day partition");
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path.display().to_string());
        }
    }
    out
}

/// 1,000 manufacturing orders in 40 Odoo transactions and 600 items in 30 legacy statements,
/// while `millrace run` is SIGKILLed five times: the archive ends with each change exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_during_a_workload_the_archive_holds_every_change_exactly_once() {
    let world = World::new("archive_kill", &["item", "production_order"]).await;
    world.append_config(ARCHIVE);
    let archive = world.dir.path().join("archive");
    let mut service = world.start();

    let url = world.odoo.url.clone();
    let odoo_side = tokio::spawn(async move {
        let odoo = common::connect(&url).await;
        for batch in 0..40 {
            insert_confirmed_orders(&odoo, "WH/MO/K", batch * 25, 25, 4).await;
            tokio::time::sleep(Duration::from_millis(120)).await;
        }
    });
    let legacy = async {
        for batch in 0..30 {
            let rows: Vec<String> = (0..20)
                .map(|i| {
                    let n = batch * 20 + i;
                    format!("('MR-K{n:04}', 'Kill item {n}', 'EA', {}.2500)", n % 50)
                })
                .collect();
            world.maria.exec(&format!(
                "INSERT INTO ITEM_MASTER (ITEM_NO, DESCRIPTION, UOM_CODE, LIST_PRICE) VALUES {}",
                rows.join(",")
            ));
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    };
    let killer = async {
        for i in 0..5u64 {
            tokio::time::sleep(Duration::from_millis(700 + (i * 389) % 900)).await;
            let _ = std::process::Command::new("kill").args(["-KILL", &service.pid().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while service.is_running() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            service = world.start();
        }
    };
    tokio::join!(legacy, killer);
    odoo_side.await.unwrap();

    let (orders_dir, items_dir) = (archive.join("entity=production_order"), archive.join("entity=item"));
    // The orders' keys are their ERP numbers (`MO` + Odoo id), read from Odoo.
    let order_keys: Vec<String> =
        erp_order_nos_like(&world.odoo.client().await, "WH/MO/K%").await.iter().map(|n| format!("[\"{n}\"]")).collect();
    assert_eq!(order_keys.len(), 1000);
    let count_orders = format!("_source_system = 'odoo' AND _key IN ({})", sql_strings(&order_keys));
    let count_items = "_source_system = 'legacy' AND _key LIKE '%MR-K%'";
    eventually("every order and item archived", &service, || async {
        let orders =
            archive_scalar(&orders_dir, &format!("SELECT count(DISTINCT _key) FROM {{src}} WHERE {count_orders}"));
        let items =
            archive_scalar(&items_dir, &format!("SELECT count(DISTINCT _key) FROM {{src}} WHERE {count_items}"));
        (orders >= 1000 && items >= 600).then_some(())
    })
    .await;
    assert!(service.stop().success());

    // A change is its (source, key, position): none may appear twice.
    let twice =
        "SELECT count(*) FROM (SELECT _source_system, _key, _position FROM {src} GROUP BY ALL HAVING count(*) > 1)";
    let examples =
        "SELECT _source_system, _key, _position, count(*) FROM {src} GROUP BY ALL HAVING count(*) > 1 LIMIT 5";
    let orders = report(
        &orders_dir,
        &[twice, examples, &format!("SELECT count(DISTINCT _key) FROM {{src}} WHERE {count_orders}")],
    );
    let items = report(
        &items_dir,
        &[twice, examples, &format!("SELECT count(DISTINCT _key) FROM {{src}} WHERE {count_items}")],
    );
    assert_eq!(orders.scalar(0), 0, "order changes archived twice: {:?}", orders.queries[1]);
    assert_eq!(items.scalar(0), 0, "item changes archived twice: {:?}", items.queries[1]);
    assert_eq!(orders.scalar(2), 1000, "every order's change is archived");
    assert_eq!(items.scalar(2), 600, "every item's change is archived");
}

/// With files rotating only hourly, changes still flow at once and source positions are
/// acknowledged at once (the spool makes them durable); a SIGKILL loses nothing of what the
/// spool held, and the next run archives it exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledgements_wait_for_the_spool_not_for_files_and_a_kill_loses_nothing() {
    let test = "acknowledgements_wait_for_the_spool_not_for_files_and_a_kill_loses_nothing";
    let Some(world) = RealWorld::new(test, &["item", "production_order"]).await else {
        return;
    };
    world.set_archive("rotate_after = \"1h\"\n");
    world.forget_erp_only_orders().await;
    let archive = world.dir.path().join("archive");
    let rpc = world.rpc();
    // Desk Combination: made in Odoo, an item the ERP knows.
    let desk = rpc.search("product.product", json!([["default_code", "=", "FURN_7800"]])).await[0];
    let mut service = world.start();
    let odoo = world.odoo.db.client().await;

    // Three ERP polls in a row: each item reaches Odoo without waiting for an archive file.
    for i in 0..3 {
        world.maria.exec(&format!(
            "INSERT INTO ITEM_MASTER (ITEM_NO, DESCRIPTION, UOM_CODE, LIST_PRICE) VALUES ('MR-S{i}', 'Spool item {i}', 'EA', 2.5)"
        ));
        let code = format!("MR-S{i}");
        wait_for(&format!("item {code} in Odoo"), &service, 60, || product_id(&odoo, &code)).await;
    }
    // Odoo orders reach the ERP, and the slot is acknowledged past them.
    let mut orders = Vec::new();
    for qty in 1..=3 {
        orders.push(rpc.confirmed_order(desk, f64::from(qty)).await);
    }
    let after: String = odoo.query_one("SELECT pg_current_wal_lsn()::text", &[]).await.unwrap().get(0);
    // The ERP knows the orders by their ERP numbers (`MO` + Odoo id), their keys `["MO…"]`.
    let numbers: Vec<String> = orders.iter().map(|id| RealWorld::erp_order_no(*id)).collect();
    let order_keys: Vec<String> = numbers.iter().map(|n| format!("[\"{n}\"]")).collect();
    wait_for("the orders in the ERP", &service, 60, || async {
        let n: u64 = world
            .maria
            .exec(&format!("SELECT COUNT(*) FROM PROD_ORDER WHERE ORDER_NO IN ({})", sql_strings(&numbers)))
            .trim()
            .parse()
            .ok()?;
        (n == 3).then_some(())
    })
    .await;
    wait_for("the slot acknowledged past the orders", &service, 60, || async {
        let acked: Option<bool> = odoo
            .query_one(
                "SELECT confirmed_flush_lsn >= $1::text::pg_lsn FROM pg_replication_slots WHERE slot_name = $2",
                &[&after, &world.odoo.db.slot()],
            )
            .await
            .unwrap()
            .get(0);
        (acked == Some(true)).then_some(())
    })
    .await;
    assert!(walk(&archive).iter().all(|f| !f.ends_with(".parquet")), "no file rotated yet");
    // A spool line holds the change's key: the items' `["MR-S…"]`, the orders' `["MO…"]`.
    let ours = |line: &str| {
        let key = serde_json::from_str::<serde_json::Value>(line).ok()?["key"].as_str()?.to_string();
        Some(key.contains("MR-S") || order_keys.contains(&key))
    };
    let spooled: usize = walk(&archive.join("_spool/run"))
        .iter()
        .filter(|f| f.ends_with(".jsonl"))
        .map(|f| std::fs::read_to_string(f).unwrap().lines().filter(|l| ours(l) == Some(true)).count())
        .sum();
    assert!(spooled >= 6, "the changes are in the spool: {spooled}");

    // Killed: the source does not replay what was acknowledged; the spool brings it back.
    let _ = std::process::Command::new("kill").args(["-KILL", &service.pid().to_string()]).status();
    while service.is_running() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let service = world.start();
    // Changes made now on each source reach the other side: by then the new run is past its
    // start (where it archives what the spool held), and anything its sources gave it again
    // came before them (the ERP's polls read in stamp order, the stream in commit order).
    world.maria.exec(
        "INSERT INTO ITEM_MASTER (ITEM_NO, DESCRIPTION, UOM_CODE, LIST_PRICE) VALUES ('MR-AFTER', 'After the kill', 'EA', 1)",
    );
    world.maria.exec(&format!("UPDATE PROD_ORDER SET QTY_COMPLETED = 1 WHERE ORDER_NO = '{}'", numbers[0]));
    let after_kill = RealWorld::erp_order_no(rpc.confirmed_order(desk, 1.0).await);
    wait_for("the changes made after the restart on the other side", &service, 90, || async {
        let item = product_id(&odoo, "MR-AFTER").await;
        let produced = odoo
            .query_opt("SELECT 1 FROM mrp_production WHERE id = $1 AND qty_producing = 1", &[&(orders[0] as i32)])
            .await
            .unwrap();
        let order = world.maria.exec(&format!("SELECT COUNT(*) FROM PROD_ORDER WHERE ORDER_NO = '{after_kill}'"));
        (item.is_some() && produced.is_some() && order.trim() == "1").then_some(())
    })
    .await;
    assert!(service.stop().success());
    let twice =
        "SELECT count(*) FROM (SELECT _source_system, _key, _position FROM {src} GROUP BY ALL HAVING count(*) > 1)";
    let items = report(
        &archive.join("entity=item"),
        &[twice, "SELECT count(DISTINCT _key) FROM {src} WHERE _key LIKE '%MR-S%' AND _decision = 'apply'"],
    );
    assert_eq!((items.scalar(0).as_u64(), items.scalar(1).as_u64()), (Some(0), Some(3)));
    let orders = report(
        &archive.join("entity=production_order"),
        &[
            twice,
            &format!(
                "SELECT count(DISTINCT _key) FROM {{src}} WHERE _key IN ({}) AND _decision = 'apply'",
                sql_strings(&order_keys)
            ),
        ],
    );
    assert_eq!((orders.scalar(0).as_u64(), orders.scalar(1).as_u64()), (Some(0), Some(3)));
}

/// An Odoo change to an item that touches both a field Odoo owns (`active`) and one it does not
/// (`description`), under the mapping's policy (`revert`): only the owned field is applied, the
/// ERP's value of the other is written back into Odoo, and the archive's reason says so (it is
/// not a conflict "accepted").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_applied_in_part_under_policy_reject_says_what_was_not_applied() {
    let test = "a_change_applied_in_part_under_policy_reject_says_what_was_not_applied";
    let Some(world) = RealWorld::new(test, &["item"]).await else {
        return;
    };
    world.set_archive("rotate_rows = 500\nrotate_after = \"1s\"\n");
    let archive = world.dir.path().join("archive");
    let service = world.start();
    let odoo = world.odoo.db.client().await;

    world.maria.exec(
        "INSERT INTO ITEM_MASTER (ITEM_NO, DESCRIPTION, UOM_CODE, LIST_PRICE) VALUES ('MR-R001', 'Oak Shelf', 'EA', 4)",
    );
    let id = wait_for("the item in Odoo", &service, 90, || product_id(&odoo, "MR-R001")).await;
    // One Odoo transaction (one write): archive the item (Odoo's field) and rename it (the ERP's).
    world.rpc().write("product.product", &[id], json!({"active": false, "name": "Renamed in Odoo"})).await;
    wait_for("the item obsolete in the ERP", &service, 60, || async {
        (world.maria.exec("SELECT STATUS FROM ITEM_MASTER WHERE ITEM_NO = 'MR-R001'").trim() == "I").then_some(())
    })
    .await;
    assert_eq!(
        world.maria.exec("SELECT DESCRIPTION FROM ITEM_MASTER WHERE ITEM_NO = 'MR-R001'").trim(),
        "Oak Shelf",
        "the rename is not Odoo's to make"
    );
    wait_for("the ERP's name written back into Odoo", &service, 60, || async {
        (product_name(&odoo, "MR-R001").await.as_deref() == Some("Oak Shelf")).then_some(())
    })
    .await;
    let condition = "_source_system = 'odoo' AND _decision = 'apply' AND _key = '[\"MR-R001\"]'";
    wait_for("the archived change", &service, 60, || async {
        (archived_rows(&archive.join("entity=item"), condition) >= 1).then_some(())
    })
    .await;
    assert!(service.stop().success());
    let r = report(&archive.join("entity=item"), &[&format!("SELECT _reason FROM {{src}} WHERE {condition}")]);
    assert_eq!(r.queries[0].len(), 1, "{:?}", r.queries[0]);
    assert_eq!(
        r.queries[0][0][0],
        "applied active; odoo does not own description: not applied, the owner's value written back"
    );
}
