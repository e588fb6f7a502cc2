//! End to end: `millrace run` between Odoo's PostgreSQL and a real MariaDB holding the demo
//! legacy ERP, through the real ODBC driver. What writes into Odoo runs against a real Odoo 17
//! server ([`RealWorld`]: millrace writes through Odoo's API as its integration user, and the
//! test drives Odoo through JSON-RPC as its users do, reading its tables with SQL only to look);
//! those tests print SKIPPED without the server. Tests of the Odoo → ERP direction alone run on
//! the SQL fixture ([`World`]).

mod common;

use common::millrace;
use common::odoo::{wait_for, RealWorld};
use common::sync::{
    erp_order_nos_like, eventually, insert_confirmed_orders, legacy_marker, odoo_marker, settled, sql_strings, Service,
    World, UNIT_THE_ERP_LACKS,
};
use serde_json::json;

/// Desk Combination (FURN_7800 in both systems): a manufactured product of the Odoo demo.
const DESK: i64 = 8;

fn first_line(text: String) -> Option<String> {
    text.lines().next().map(str::to_string)
}

/// A unit `UNIT_THE_ERP_LACKS` made in Odoo, as its admin makes one (a count unit, 100 units),
/// that the demo ERP's UOM table has no row for: no UOM_CODE can be written for it. Its id.
async fn unit_the_erp_lacks(world: &RealWorld) -> i64 {
    let rpc = world.rpc();
    if let Some(id) = rpc.search("uom.uom", json!([["name", "=", UNIT_THE_ERP_LACKS]])).await.first() {
        return *id;
    }
    let count = rpc.ref_id("uom.product_uom_categ_unit").await;
    rpc.create(
        "uom.uom",
        json!({"name": UNIT_THE_ERP_LACKS, "category_id": count, "uom_type": "bigger", "factor_inv": 100, "rounding": 1}),
    )
    .await
}

/// A manufacturing order of the desk created and confirmed through Odoo's API in
/// `UNIT_THE_ERP_LACKS`: PROD_ORDER.UOM_CODE cannot name its unit, so it is a dead letter on its
/// way to the ERP (field `uom`). Its Odoo id.
async fn order_the_erp_refuses(world: &RealWorld, date_start: &str) -> i64 {
    let unit = unit_the_erp_lacks(world).await;
    let rpc = world.rpc();
    let id = rpc
        .create(
            "mrp.production",
            json!({"product_id": DESK, "product_qty": 1, "product_uom_id": unit, "date_start": date_start}),
        )
        .await;
    rpc.execute("mrp.production", "action_confirm", json!([[id]]), json!({})).await;
    id
}

/// A marker on the Odoo stream that writes nothing on either side: an order the ERP refuses
/// (`order_the_erp_refuses`) confirmed now, then its dead letter waited for. The engine handles
/// Odoo's transactions in commit order and saves a batch's outcome (dead letters, conflicts,
/// decision counts) after the target committed: once the marker's dead letter is recorded,
/// every Odoo transaction committed before it has been decided, applied and recorded. Its own
/// decision is a dead letter, no `apply` (Odoo's later writes to the order, or to its product,
/// dead-letter it again, each letter superseding the last: the first is enough). Returns the
/// marker order's Odoo id.
async fn real_odoo_marker(world: &RealWorld, odoo: &tokio_postgres::Client, service: &Service) -> i64 {
    let id = order_the_erp_refuses(world, "2026-12-31 08:00:00").await;
    let key = format!("[\"{}\"]", RealWorld::erp_order_no(id));
    let what = format!("the dead letter of marker order {id} (the Odoo stream decided up to it)");
    wait_for(&what, service, 90, || async {
        odoo.query_opt(
            "SELECT 1 FROM millrace.dlq WHERE entity = 'production_order' AND key = $1 AND source = 'odoo' LIMIT 1",
            &[&key],
        )
        .await
        .unwrap()
    })
    .await;
    id
}

/// The same marker on the ERP's poll of PROD_ORDER: an order made up in the ERP (`order_no`,
/// `MO` and eight digits no Odoo id has) committed now, then its conflict waited for (Odoo is the
/// system of record for orders: the ERP's create is recorded, not applied, nothing is written).
/// A poll reads PROD_ORDER in LAST_UPD order: once the marker's conflict is recorded, every
/// PROD_ORDER change committed before it has been decided, applied and recorded.
async fn real_legacy_marker(world: &RealWorld, odoo: &tokio_postgres::Client, service: &Service, order_no: &str) {
    world.maria.exec(&format!(
        "INSERT INTO PROD_ORDER (ORDER_NO, ITEM_NO, QTY_ORDERED, UOM_CODE, STATUS, START_DATE)
         VALUES ('{order_no}', 'FURN_7800', 1, 'EA', 'R', '2026-12-31 09:00:00')"
    ));
    let key = format!("[\"{order_no}\"]");
    let what = format!("the conflict of marker order {order_no} made in the ERP (its poll decided up to it)");
    wait_for(&what, service, 90, || async {
        odoo.query_opt(
            "SELECT 1 FROM millrace.conflict WHERE entity = 'production_order' AND key = $1 AND source = 'legacy' LIMIT 1",
            &[&key],
        )
        .await
        .unwrap()
    })
    .await;
}

/// An ERP item becomes an Odoo product with its template and a cross-reference; renaming it in
/// Odoo (the ERP's field) is a recorded conflict and the ERP keeps its name, and so is renaming
/// a template of several variants, once per variant; archiving it in Odoo reaches the ERP
/// without the rejected rename; a rename in the ERP reaches Odoo.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_flow_from_legacy_and_ownership_is_enforced() {
    let Some(world) = RealWorld::new("items_flow_from_legacy_and_ownership_is_enforced", &["item"]).await else {
        return;
    };
    let service = world.start();
    let odoo = world.odoo.db.client().await;
    let rpc = world.rpc();

    // An item created in the legacy ERP appears in Odoo, with its template, and a cross-reference.
    world.maria.exec(
        "INSERT INTO ITEM_MASTER (ITEM_NO, DESCRIPTION, UOM_CODE, ITEM_TYPE, LOT_CONTROL, STD_COST, LIST_PRICE, STATUS)
         VALUES ('MR-1001', 'Oak Leg 40cm', 'EA', 'P', 'L', 3.2500, 7.5000, 'A')",
    );
    let (name, uom, price, tracking, active): (String, String, String, String, bool) =
        wait_for("item MR-1001 in Odoo", &service, 90, || async {
            odoo.query_opt(
                "SELECT t.name->>'en_US', u.name->>'en_US', t.list_price::text, t.tracking, p.active
                   FROM product_product p JOIN product_template t ON t.id = p.product_tmpl_id
                   JOIN uom_uom u ON u.id = t.uom_id WHERE p.default_code = 'MR-1001'",
                &[],
            )
            .await
            .unwrap()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        })
        .await;
    assert_eq!((name.as_str(), uom.as_str(), tracking.as_str(), active), ("Oak Leg 40cm", "Units", "lot", true));
    assert_eq!(price.parse::<f64>().unwrap(), 7.5);
    let xref: i64 = settled(&1, || async {
        odoo.query_one(
            "SELECT count(*) FROM millrace.xref WHERE entity = 'item' AND key = '[\"MR-1001\"]' AND system = 'odoo'
                AND id = (SELECT id::text FROM product_product WHERE default_code = 'MR-1001')",
            &[],
        )
        .await
        .unwrap()
        .get(0)
    })
    .await;
    assert_eq!(xref, 1, "the cross-reference names the Odoo row");
    let product = rpc.search("product.product", json!([["default_code", "=", "MR-1001"]])).await[0];
    let template = rpc.search("product.template", json!([["default_code", "=", "MR-1001"]])).await[0];

    // Renaming it in Odoo touches a legacy-owned field: a recorded conflict, not applied.
    rpc.write("product.template", &[template], json!({"name": "Renamed in Odoo"})).await;
    let fields: Vec<String> = wait_for("the rename conflict", &service, 60, || async {
        odoo.query_opt(
            "SELECT fields FROM millrace.conflict WHERE entity = 'item' AND key = '[\"MR-1001\"]' AND source = 'odoo'",
            &[],
        )
        .await
        .unwrap()
        .map(|r| r.get(0))
    })
    .await;
    assert_eq!(fields, vec!["description".to_string()]);
    assert_eq!(
        world.maria.exec("SELECT DESCRIPTION FROM ITEM_MASTER WHERE ITEM_NO = 'MR-1001'").trim(),
        "Oak Leg 40cm"
    );

    // A rename of a template with several variants re-emits each variant's item record: every
    // one of them is a recorded conflict (the item master is the ERP's).
    let desk = rpc.search("product.template", json!([["product_variant_ids.default_code", "=", "FURN_0096"]])).await;
    assert_eq!(desk.len(), 1, "one template: {desk:?}");
    let variants: Vec<String> = odoo
        .query(
            "SELECT default_code FROM product_product WHERE default_code IS NOT NULL AND product_tmpl_id = $1 ORDER BY 1",
            &[&(desk[0] as i32)],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| format!("[\"{}\"]", r.get::<_, String>(0)))
        .collect();
    assert!(variants.len() >= 5, "the demo's desk has several coded variants: {variants:?}");
    rpc.write("product.template", &desk, json!({"name": "Desk, renamed in Odoo"})).await;
    let conflicted: Vec<String> = wait_for("a conflict per variant", &service, 60, || async {
        let keys: Vec<String> = odoo
            .query(
                "SELECT DISTINCT key FROM millrace.conflict WHERE entity = 'item' AND source = 'odoo'
                    AND fields = ARRAY['description'] AND key = ANY($1) ORDER BY 1",
                &[&variants],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        (keys.len() == variants.len()).then_some(keys)
    })
    .await;
    assert_eq!(conflicted, variants);

    // Archiving it in Odoo (a field both sides may change) reaches the legacy ERP.
    rpc.write("product.product", &[product], json!({"active": false})).await;
    wait_for("STATUS 'I' in ITEM_MASTER", &service, 60, || async {
        first_line(world.maria.exec("SELECT STATUS FROM ITEM_MASTER WHERE ITEM_NO = 'MR-1001'")).filter(|s| s == "I")
    })
    .await;
    assert_eq!(
        world.maria.exec("SELECT DESCRIPTION FROM ITEM_MASTER WHERE ITEM_NO = 'MR-1001'").trim(),
        "Oak Leg 40cm",
        "the rejected rename did not travel with the archive"
    );

    // A legacy rename (its own field) still reaches Odoo.
    world.maria.exec("UPDATE ITEM_MASTER SET DESCRIPTION = 'Oak Leg 45cm' WHERE ITEM_NO = 'MR-1001'");
    wait_for("the legacy rename in Odoo", &service, 60, || async {
        odoo.query_opt(
            "SELECT 1 FROM product_product p JOIN product_template t ON t.id = p.product_tmpl_id
              WHERE p.default_code = 'MR-1001' AND t.name->>'en_US' = 'Oak Leg 45cm'",
            &[],
        )
        .await
        .unwrap()
    })
    .await;
    assert_eq!(service.stop().code(), Some(0), "SIGTERM drains and exits 0");
}

/// A manufacturing order drafted in Odoo stays there; confirmed, it reaches the ERP under a
/// number made from its Odoo id, bound by the cross-reference; the shop floor's report in the
/// ERP comes back to Odoo; renamed and its quantity changed in Odoo, the same ERP order
/// follows. Then nothing loops: once quiet, neither side is written again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_orders_go_to_legacy_and_progress_comes_back_without_loops() {
    let Some(world) = RealWorld::new(
        "production_orders_go_to_legacy_and_progress_comes_back_without_loops",
        &["item", "production_order"],
    )
    .await
    else {
        return;
    };
    world.forget_erp_only_orders().await;
    let service = world.start();
    let odoo = world.odoo.db.client().await;
    let rpc = world.rpc();

    // A new manufacturing order, drafted then confirmed in Odoo.
    let order = rpc
        .create("mrp.production", json!({"product_id": DESK, "product_qty": 4, "date_start": "2026-12-01 07:30:00"}))
        .await;
    // Its number in the ERP is made from its Odoo id, not from its name.
    let order_no = RealWorld::erp_order_no(order);
    // A marker committed after the draft: once it is decided, so is the draft.
    let mut markers = vec![real_odoo_marker(&world, &odoo, &service).await];
    assert_eq!(
        world.maria.exec(&format!("SELECT COUNT(*) FROM PROD_ORDER WHERE ORDER_NO = '{order_no}'")).trim(),
        "0",
        "drafts stay in Odoo"
    );
    rpc.execute("mrp.production", "action_confirm", json!([[order]]), json!({})).await;
    let row = wait_for("the confirmed order in PROD_ORDER", &service, 60, || async {
        first_line(world.maria.exec(&format!(
            "SELECT CONCAT_WS('|', ITEM_NO, QTY_ORDERED, UOM_CODE, STATUS, START_DATE) FROM PROD_ORDER WHERE ORDER_NO = '{order_no}'"
        )))
    })
    .await;
    assert_eq!(row, "FURN_7800|4.0000|EA|R|2026-12-01 08:30:00", "Odoo's UTC start is Brussels local time here");
    let key = format!("[\"{order_no}\"]");
    let bound: i64 = settled(&1, || async {
        odoo.query_one(
            "SELECT count(*) FROM millrace.xref WHERE entity = 'production_order' AND key = $1 AND system = 'odoo'
                AND id = $2",
            &[&key, &order.to_string()],
        )
        .await
        .unwrap()
        .get(0)
    })
    .await;
    assert_eq!(bound, 1, "the cross-reference binds the Odoo id to the ERP number");

    // The shop floor reports production in the legacy ERP: it flows back to Odoo.
    world.maria.exec(&format!("UPDATE PROD_ORDER SET QTY_COMPLETED = 2.5 WHERE ORDER_NO = '{order_no}'"));
    wait_for("qty_producing 2.5 in Odoo", &service, 60, || async {
        let rows = rpc.search_read("mrp.production", json!([["id", "=", order]]), &["qty_producing"]).await;
        (rows[0]["qty_producing"].as_f64() == Some(2.5)).then_some(())
    })
    .await;

    // Odoo's order is renamed (as Odoo does when it splits one) and its quantity changed (the
    // form's "change quantity" wizard): the same ERP order follows, no second one appears.
    let orders_before = world.maria.exec("SELECT COUNT(*) FROM PROD_ORDER");
    let name = rpc.search_read("mrp.production", json!([["id", "=", order]]), &["name"]).await[0]["name"]
        .as_str()
        .expect("order name")
        .to_string();
    rpc.write("mrp.production", &[order], json!({"name": format!("{name}-001")})).await;
    let wizard = rpc.create("change.production.qty", json!({"mo_id": order, "product_qty": 5})).await;
    rpc.execute("change.production.qty", "change_prod_qty", json!([[wizard]]), json!({})).await;
    wait_for("the renamed order's new quantity in PROD_ORDER", &service, 60, || async {
        first_line(world.maria.exec(&format!("SELECT QTY_ORDERED FROM PROD_ORDER WHERE ORDER_NO = '{order_no}'")))
            .filter(|q| q == "5.0000")
    })
    .await;
    assert_eq!(world.maria.exec("SELECT COUNT(*) FROM PROD_ORDER"), orders_before, "no second ERP order");

    // No loop: once quiet, nothing more is written on either side. Quiet is shown by markers on
    // both pipelines that write nothing themselves (their rows are left out of the stamps, their
    // decisions are no `apply`): after a first round every write so far is decided, echoes
    // included; after a second, so is the echo of any write made before it, and a write that
    // echo led to would show in the counts or the stamps.
    let writes = |markers: Vec<i64>| {
        let (odoo, world) = (&odoo, &world);
        let markers: Vec<i32> = markers.iter().map(|&m| m as i32).collect();
        async move {
            let applied: i64 = odoo
                .query_one(
                    "SELECT COALESCE(sum(n), 0)::bigint FROM millrace.decision_count WHERE decision = 'apply'",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            let odoo_stamp: String = odoo
                .query_one(
                    "SELECT greatest((SELECT max(write_date) FROM mrp_production WHERE id <> ALL($1)),
                                     (SELECT max(write_date) FROM product_template))::text",
                    &[&markers],
                )
                .await
                .unwrap()
                .get(0);
            let legacy_stamp = world.maria.exec(
                "SELECT GREATEST((SELECT MAX(LAST_UPD) FROM PROD_ORDER WHERE ORDER_NO NOT LIKE 'MO999999%'),
                                 (SELECT MAX(LAST_UPD) FROM ITEM_MASTER))",
            );
            (applied, odoo_stamp, legacy_stamp)
        }
    };
    markers.push(real_odoo_marker(&world, &odoo, &service).await);
    real_legacy_marker(&world, &odoo, &service, "MO99999901").await;
    let before = writes(markers.clone()).await;
    markers.push(real_odoo_marker(&world, &odoo, &service).await);
    real_legacy_marker(&world, &odoo, &service, "MO99999902").await;
    let after = writes(markers).await;
    assert_eq!(before, after, "nothing was written once quiet; log:\n{}", service.log_text());
    assert_eq!(service.stop().code(), Some(0));
}

/// Open dead letters: (id, entity, key, field, reason).
async fn open_dead_letters(odoo: &tokio_postgres::Client) -> Vec<(i64, String, String, Option<String>, String)> {
    odoo.query(
        "SELECT id, entity, key, field, reason FROM millrace.dlq WHERE status IN ('open', 'retry') ORDER BY id",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
    .collect()
}

/// Bad data on either side is a dead letter with its field and reason, and the good changes
/// around it go through; once fixed — the ERP's unit table, then `millrace dlq retry`, or the
/// order itself in Odoo — it is applied and its dead letter settled, the others stay open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_data_is_dead_lettered_with_its_reason_and_retried_once_fixed() {
    let Some(world) = RealWorld::new(
        "bad_data_is_dead_lettered_with_its_reason_and_retried_once_fixed",
        &["item", "production_order"],
    )
    .await
    else {
        return;
    };
    world.forget_erp_only_orders().await;
    let service = world.start();
    let odoo = world.odoo.db.client().await;
    let rpc = world.rpc();

    // Bad changes among good ones: an unknown unit code (legacy → Odoo); from Odoo, an order
    // in a unit the ERP has no UOM row for, an order for a product whose item number is longer
    // than PROD_ORDER.ITEM_NO holds, and an order for a product without an item number. An
    // order without a produced quantity (NULL: made through the API, no form) is not bad data:
    // it is written as 0 produced, as is the good order (its form saved with 0 producing).
    world.maria.exec(
        "INSERT INTO ITEM_MASTER (ITEM_NO, DESCRIPTION, UOM_CODE, LIST_PRICE) VALUES
            ('MR-BAD-UOM', 'Crate of bolts', 'CRT', 1),
            ('MR-GOOD-1', 'Bolt M8', 'EA', 0.2)",
    );
    let unit_order = RealWorld::erp_order_no(order_the_erp_refuses(&world, "2026-12-02 07:00:00").await);
    let long_numbered = rpc
        .create(
            "product.product",
            json!({"name": "Part with a long number", "default_code": "MR-ITEM-NUMBER-TOO-LONG", "detailed_type": "product"}),
        )
        .await;
    // A storable product of the demo without an internal reference (a variant, say).
    let unnumbered = rpc
        .search("product.product", json!([["default_code", "=", false], ["detailed_type", "=", "product"]]))
        .await[0];
    let good = rpc.confirmed_order(DESK, 1.0).await;
    rpc.write("mrp.production", &[good], json!({"qty_producing": 0})).await;
    let no_item = rpc.confirmed_order(unnumbered, 1.0).await;
    let long = rpc.confirmed_order(long_numbered, 1.0).await;
    let unproduced = rpc.confirmed_order(DESK, 1.0).await;
    let (good, unproduced) = (RealWorld::erp_order_no(good), RealWorld::erp_order_no(unproduced));

    wait_for("MR-GOOD-1 in Odoo and the good orders in the legacy ERP", &service, 90, || async {
        let item = odoo.query_opt("SELECT 1 FROM product_product WHERE default_code = 'MR-GOOD-1'", &[]).await.unwrap();
        let orders =
            world.maria.exec(&format!("SELECT COUNT(*) FROM PROD_ORDER WHERE ORDER_NO IN ('{good}', '{unproduced}')"));
        (item.is_some() && orders.trim() == "2").then_some(())
    })
    .await;
    assert_eq!(
        world.maria.exec(&format!("SELECT QTY_COMPLETED FROM PROD_ORDER WHERE ORDER_NO IN ('{good}', '{unproduced}')")),
        "0.0000\n0.0000\n",
        "no produced quantity in Odoo is 0 produced in the ERP"
    );
    let letters = wait_for("four dead letters", &service, 60, || async {
        let letters = open_dead_letters(&odoo).await;
        (letters.len() >= 4).then_some(letters)
    })
    .await;
    assert_eq!(letters.len(), 4, "{letters:#?}");
    let find = |key: &str| {
        letters.iter().find(|l| l.2 == key).unwrap_or_else(|| panic!("no dead letter for {key}: {letters:#?}"))
    };
    let (uom_id, entity, _, field, reason) = find("[\"MR-BAD-UOM\"]");
    assert_eq!((entity.as_str(), field.as_deref()), ("item", Some("uom")));
    assert!(reason.contains("CRT") && reason.contains("UOM"), "{reason}");
    let unit_key = format!("[\"{unit_order}\"]");
    let (_, entity, _, field, reason) = find(&unit_key);
    assert_eq!((entity.as_str(), field.as_deref()), ("production_order", Some("uom")), "{reason}");
    assert!(reason.contains(UNIT_THE_ERP_LACKS) && reason.contains("UOM"), "{reason}");
    let long_key = format!("[\"{}\"]", RealWorld::erp_order_no(long));
    let (_, entity, _, field, reason) = find(&long_key);
    assert_eq!((entity.as_str(), field.as_deref()), ("production_order", Some("item_no")), "{reason}");
    assert!(
        reason.contains("MR-ITEM-NUMBER-TOO-LONG") && reason.contains("PROD_ORDER.ITEM_NO holds at most 18"),
        "{reason}"
    );
    let no_item_key = format!("[\"{}\"]", RealWorld::erp_order_no(no_item));
    let (_, entity, _, field, reason) = find(&no_item_key);
    assert_eq!((entity.as_str(), field.as_deref()), ("production_order", Some("item_no")), "{reason}");
    assert!(reason.contains("default_code"), "{reason}");

    // Fix the unit table in the legacy ERP, then retry: the service re-reads the row and applies it.
    world.maria.exec("INSERT INTO UOM (UOM_CODE, DESCRIPTION, BASE_UOM, FACTOR) VALUES ('CRT', 'Dozens', 'EA', 12)");
    let out = millrace(&[], &["--config", &world.config, "dlq", "retry", &uom_id.to_string()]);
    assert!(out.status.success(), "dlq retry: {}", String::from_utf8_lossy(&out.stderr));
    wait_for("MR-BAD-UOM in Odoo in dozens", &service, 60, || async {
        odoo.query_opt(
            "SELECT 1 FROM product_product p JOIN product_template t ON t.id = p.product_tmpl_id
               JOIN uom_uom u ON u.id = t.uom_id WHERE p.default_code = 'MR-BAD-UOM' AND u.name->>'en_US' = 'Dozens'",
            &[],
        )
        .await
        .unwrap()
    })
    .await;
    let status: String = settled(&"resolved".to_string(), || async {
        odoo.query_one("SELECT status FROM millrace.dlq WHERE id = $1", &[uom_id]).await.unwrap().get(0)
    })
    .await;
    assert_eq!(status, "resolved");

    // Fixing the order in Odoo (a unit the ERP knows) is a new change: it applies and settles
    // the dead letter.
    let units = rpc.ref_id("uom.product_uom_unit").await;
    let unit_order_id = unit_order.trim_start_matches("MO").parse::<i64>().expect("order id");
    rpc.write("mrp.production", &[unit_order_id], json!({"product_uom_id": units})).await;
    wait_for("the fixed order in PROD_ORDER", &service, 60, || async {
        first_line(world.maria.exec(&format!("SELECT UOM_CODE FROM PROD_ORDER WHERE ORDER_NO = '{unit_order}'")))
            .filter(|s| s == "EA")
    })
    .await;
    // The dead letter is settled once the batch's outcome is saved, a moment after the row.
    let open = wait_for("the fixed order's dead letter settled", &service, 40, || async {
        let mut open: Vec<String> = open_dead_letters(&odoo).await.into_iter().map(|l| l.2).collect();
        open.sort();
        (!open.contains(&unit_key)).then_some(open)
    })
    .await;
    let mut expected = vec![no_item_key, long_key];
    expected.sort();
    assert_eq!(open, expected, "the fixed ones are settled, the others stay open");
    assert_eq!(service.stop().code(), Some(0));
}

/// Every ERP row read a second time (its watermarks forgotten) is decided again and nothing is
/// applied twice: the item made in Odoo the first time exists once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_read_twice_are_not_applied_twice() {
    let Some(world) = RealWorld::new("rows_read_twice_are_not_applied_twice", &["item", "production_order"]).await
    else {
        return;
    };
    world.forget_erp_only_orders().await;
    let service = world.start();
    let odoo = world.odoo.db.client().await;
    world
        .maria
        .exec("INSERT INTO ITEM_MASTER (ITEM_NO, DESCRIPTION, UOM_CODE) VALUES ('MR-TWICE', 'Seen twice', 'EA')");
    wait_for("MR-TWICE in Odoo", &service, 90, || async {
        odoo.query_opt("SELECT 1 FROM product_product WHERE default_code = 'MR-TWICE'", &[]).await.unwrap()
    })
    .await;
    // Applied (either way), and decided from the ERP's rows (any decision: the demo ERP's
    // orders differ from the real Odoo's in their start dates, Odoo's field, so they are
    // conflicts, the rest stale).
    let counts = || async {
        let r = odoo
            .query_one(
                "SELECT COALESCE(sum(n) FILTER (WHERE decision = 'apply'), 0)::bigint,
                        COALESCE(sum(n) FILTER (WHERE source = 'legacy'), 0)::bigint
                   FROM millrace.decision_count",
                &[],
            )
            .await
            .unwrap();
        (r.get::<_, i64>(0), r.get::<_, i64>(1))
    };
    // The baseline once the outcome of the batch that applied MR-TWICE is recorded: its
    // cross-reference is saved in the same transaction as its decision counts.
    wait_for("the outcome of MR-TWICE's batch recorded", &service, 40, || async {
        odoo.query_opt(
            "SELECT 1 FROM millrace.xref WHERE entity = 'item' AND key = '[\"MR-TWICE\"]' AND system = 'odoo'",
            &[],
        )
        .await
        .unwrap()
    })
    .await;
    // Forget the watermarks while the service is stopped (a poll in flight would save its own
    // again): the next poll reads every legacy row again.
    assert_eq!(service.stop().code(), Some(0));
    let (applied, decided) = counts().await;
    odoo.batch_execute("DELETE FROM millrace.legacy_checkpoint; DELETE FROM millrace.legacy_row_hash").await.unwrap();
    let service = world.start();
    let rows: i64 = world
        .maria
        .exec("SELECT (SELECT COUNT(*) FROM ITEM_MASTER) + (SELECT COUNT(*) FROM PROD_ORDER)")
        .trim()
        .parse()
        .unwrap();
    let (applied_after, decided_after) = wait_for("every row read again", &service, 60, || async {
        let (a, d) = counts().await;
        (d - decided >= rows).then_some((a, d))
    })
    .await;
    assert_eq!(applied_after, applied, "nothing applied twice ({} rows re-read)", decided_after - decided);
    let copies: i64 = odoo
        .query_one("SELECT count(*) FROM product_product WHERE default_code = 'MR-TWICE'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(copies, 1);
    assert_eq!(service.stop().code(), Some(0));
}

/// The ERP has no foreign keys: a BOM and its line written before their items are parked, not
/// written; once the items arrive both land in Odoo, and a later change of the line reaches the
/// same Odoo line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bom_arriving_before_its_items_waits_parked_then_lands_whole() {
    let Some(world) =
        RealWorld::new("a_bom_arriving_before_its_items_waits_parked_then_lands_whole", &["item", "bom", "bom_line"])
            .await
    else {
        return;
    };
    let service = world.start();
    let odoo = world.odoo.db.client().await;

    // The ERP has no foreign keys: a BOM and its line can be written before their items.
    world.maria.exec(
        "INSERT INTO BOM_HEADER (ITEM_NO, BOM_ALT, DESCRIPTION, BOM_TYPE, BASE_QTY, UOM_CODE) VALUES ('MR-P1', '01', 'PARK-TEST', 'N', 1, 'EA');
         INSERT INTO BOM_LINE (ITEM_NO, BOM_ALT, LINE_NO, COMP_ITEM_NO, QTY_PER, UOM_CODE) VALUES ('MR-P1', '01', 10, 'MR-C1', 2, 'EA')",
    );
    let parked: Vec<String> = wait_for("the BOM and its line parked", &service, 90, || async {
        let rows = odoo.query("SELECT entity FROM millrace.parked ORDER BY entity", &[]).await.unwrap();
        let entities: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        (entities.len() == 2).then_some(entities)
    })
    .await;
    assert_eq!(parked, vec!["bom".to_string(), "bom_line".to_string()]);
    let boms: i64 = odoo.query_one("SELECT count(*) FROM mrp_bom WHERE code = 'PARK-TEST'", &[]).await.unwrap().get(0);
    assert_eq!(boms, 0, "nothing written while the items are missing");

    // The items arrive: the parked BOM and line are applied, in order, and nothing stays parked.
    world.maria.exec(
        "INSERT INTO ITEM_MASTER (ITEM_NO, DESCRIPTION, UOM_CODE, ITEM_TYPE) VALUES ('MR-P1', 'Parked parent', 'EA', 'M'), ('MR-C1', 'Parked component', 'EA', 'P')",
    );
    let (component, qty): (String, String) = wait_for("the BOM line in Odoo", &service, 60, || async {
        odoo.query_opt(
            "SELECT c.default_code, trim_scale(l.product_qty)::text
               FROM mrp_bom b JOIN mrp_bom_line l ON l.bom_id = b.id JOIN product_product c ON c.id = l.product_id
               JOIN product_product p ON p.product_tmpl_id = b.product_tmpl_id
              WHERE b.code = 'PARK-TEST' AND p.default_code = 'MR-P1'",
            &[],
        )
        .await
        .unwrap()
        .map(|r| (r.get(0), r.get(1)))
    })
    .await;
    assert_eq!((component.as_str(), qty.as_str()), ("MR-C1", "2"));
    wait_for("nothing parked", &service, 40, || async {
        let n: i64 = odoo.query_one("SELECT count(*) FROM millrace.parked", &[]).await.unwrap().get(0);
        (n == 0).then_some(())
    })
    .await;

    // A later change of the line reaches the same Odoo row, not a copy of it.
    world.maria.exec("UPDATE BOM_LINE SET QTY_PER = 3 WHERE ITEM_NO = 'MR-P1' AND LINE_NO = 10");
    wait_for("the updated quantity", &service, 60, || async {
        odoo.query_opt(
            "SELECT 1 FROM mrp_bom b JOIN mrp_bom_line l ON l.bom_id = b.id WHERE b.code = 'PARK-TEST' AND l.product_qty = 3",
            &[],
        )
        .await
        .unwrap()
    })
    .await;
    let lines: i64 = odoo
        .query_one(
            "SELECT count(*) FROM mrp_bom b JOIN mrp_bom_line l ON l.bom_id = b.id WHERE b.code = 'PARK-TEST'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(lines, 1);
    let dead: i64 =
        odoo.query_one("SELECT count(*) FROM millrace.dlq WHERE key LIKE '%MR-%'", &[]).await.unwrap().get(0);
    assert_eq!(dead, 0);
    assert_eq!(service.stop().code(), Some(0));
}

/// A service whose connection to the ERP goes through a TCP proxy the test can cut: a second
/// config next to the world's, the same but for the ODBC port (`millrace setup` concerns Odoo's
/// side only, and the world's config had it done).
async fn start_behind_proxy(world: &RealWorld) -> (Service, common::proxy::Proxy) {
    let maria_port: u16 =
        url::Url::parse(&common::env_path("MILLRACE_TEST_MARIADB_URL")).ok().and_then(|u| u.port()).unwrap_or(3306);
    let proxy = common::proxy::Proxy::start(([127, 0, 0, 1], maria_port).into()).await;
    let direct = std::fs::read_to_string(&world.config).expect("read config");
    let through = direct.replace(&format!("Port={maria_port};"), &format!("Port={};", proxy.port));
    assert_ne!(through, direct, "the config names MariaDB's port: {direct}");
    let config = world.dir.path().join("millrace-behind-proxy.toml");
    std::fs::write(&config, through).expect("write config");
    (Service::start(&config.display().to_string(), world.dir.path()), proxy)
}

/// While the network to the ERP is down, millrace waits (retrying, not dying, dead-lettering
/// nothing) with changes pending on both sides; once it is back, both directions catch up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_legacy_database_is_unreachable_both_directions_wait_then_catch_up() {
    let Some(world) = RealWorld::new(
        "while_the_legacy_database_is_unreachable_both_directions_wait_then_catch_up",
        &["item", "production_order"],
    )
    .await
    else {
        return;
    };
    world.forget_erp_only_orders().await;
    let (mut service, proxy) = start_behind_proxy(&world).await;
    let odoo = world.odoo.db.client().await;
    world.maria.exec(
        "INSERT INTO ITEM_MASTER (ITEM_NO, DESCRIPTION, UOM_CODE) VALUES ('MR-OUT-1', 'Before the outage', 'EA')",
    );
    wait_for("MR-OUT-1 in Odoo", &service, 90, || async {
        odoo.query_opt("SELECT 1 FROM product_product WHERE default_code = 'MR-OUT-1'", &[]).await.unwrap()
    })
    .await;

    // The network to the legacy database goes down. Changes keep coming on both sides.
    proxy.cut();
    world.maria.exec(
        "INSERT INTO ITEM_MASTER (ITEM_NO, DESCRIPTION, UOM_CODE) VALUES ('MR-OUT-2', 'During the outage', 'EA')",
    );
    let order = world.rpc().confirmed_order(DESK, 2.0).await;
    let count = format!("SELECT COUNT(*) FROM PROD_ORDER WHERE ORDER_NO = '{}'", RealWorld::erp_order_no(order));
    // millrace meets the outage with both changes made: after them, its log shows it retrying
    // a batch for want of the ERP (it handles one batch at a time: the order's, or one the
    // order's waits behind).
    let retries = || service.log_text().matches("unavailable; retrying").count();
    let retried = retries();
    wait_for("millrace retrying for want of the ERP, after both changes", &service, 60, || async {
        (retries() > retried).then_some(())
    })
    .await;
    assert!(service.is_running(), "millrace must wait, not die:\n{}", service.log_text());
    assert_eq!(world.maria.exec(&count).trim(), "0");
    let dead: i64 = odoo.query_one("SELECT count(*) FROM millrace.dlq", &[]).await.unwrap().get(0);
    assert_eq!(dead, 0, "an outage is not bad data:\n{}", service.log_text());

    // Back: both directions catch up, nothing lost.
    proxy.restore();
    wait_for("MR-OUT-2 in Odoo and the order in the legacy ERP", &service, 90, || async {
        let item = odoo.query_opt("SELECT 1 FROM product_product WHERE default_code = 'MR-OUT-2'", &[]).await.unwrap();
        let order = world.maria.exec(&count);
        (item.is_some() && order.trim() == "1").then_some(())
    })
    .await;
    let dead: i64 = odoo.query_one("SELECT count(*) FROM millrace.dlq", &[]).await.unwrap().get(0);
    assert_eq!(dead, 0);
    assert_eq!(service.stop().code(), Some(0));
}

/// An item whose ERP unit Odoo has no unit of the same name for is a dead letter; when the ERP
/// renames the unit to one Odoo has, the item row (itself unchanged) is read again, reaches
/// Odoo in that unit, and its dead letter is settled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_renamed_in_the_erp_re_emits_the_items_that_use_it() {
    let Some(world) = RealWorld::new("a_unit_renamed_in_the_erp_re_emits_the_items_that_use_it", &["item"]).await
    else {
        return;
    };
    let service = world.start();
    let odoo = world.odoo.db.client().await;
    // A unit Odoo has no counterpart of: the item that uses it cannot be written there.
    world.maria.exec(
        "INSERT INTO UOM (UOM_CODE, DESCRIPTION, BASE_UOM, FACTOR) VALUES ('BX', 'Boxes', 'EA', 12);
         INSERT INTO ITEM_MASTER (ITEM_NO, DESCRIPTION, UOM_CODE) VALUES ('MR-BOXED', 'Boxed screws', 'BX')",
    );
    let reason: String = wait_for("the item dead-lettered", &service, 90, || async {
        odoo.query_opt("SELECT reason FROM millrace.dlq WHERE key = '[\"MR-BOXED\"]' AND status = 'open'", &[])
            .await
            .unwrap()
            .map(|r| r.get(0))
    })
    .await;
    assert!(reason.contains("Boxes") && reason.contains("uom_uom"), "{reason}");
    // The ERP's unit table is corrected; the item row itself does not change, yet it is re-read
    // and now reaches Odoo, which settles its dead letter.
    world.maria.exec("UPDATE UOM SET DESCRIPTION = 'Dozens' WHERE UOM_CODE = 'BX'");
    wait_for("MR-BOXED in Odoo, in dozens", &service, 60, || async {
        odoo.query_opt(
            "SELECT 1 FROM product_product p JOIN product_template t ON t.id = p.product_tmpl_id
               JOIN uom_uom u ON u.id = t.uom_id WHERE p.default_code = 'MR-BOXED' AND u.name->>'en_US' = 'Dozens'",
            &[],
        )
        .await
        .unwrap()
    })
    .await;
    // Odoo's row commits before the batch's outcome is saved in the control state: the dead
    // letter is settled a moment after the row is visible.
    wait_for("the dead letter settled", &service, 40, || async {
        let open: i64 =
            odoo.query_one("SELECT count(*) FROM millrace.dlq WHERE status = 'open'", &[]).await.unwrap().get(0);
        (open == 0).then_some(())
    })
    .await;
    assert_eq!(service.stop().code(), Some(0));
}

/// PostgreSQL ends a replication connection that stays silent for `wal_sender_timeout`. While
/// the engine waits on a slow ERP write, the stream's queue fills up and nobody reads from the
/// server; the stream must still answer it, or the connection is dropped and everything sent
/// again (a busy service would drop it over and over).
#[tokio::test(flavor = "multi_thread")]
async fn the_replication_connection_outlives_a_batch_longer_than_wal_sender_timeout() {
    let world = World::new("keepalive", &["production_order"]).await;
    let odoo = world.odoo.client().await;
    odoo.batch_execute(&format!("ALTER DATABASE \"{}\" SET wal_sender_timeout = '5s'", world.odoo.name)).await.unwrap();
    let service = world.start();
    let slot = world.odoo.slot();
    eventually("the stream to start", &service, || async {
        let active: bool = odoo
            .query_opt("SELECT active FROM pg_replication_slots WHERE slot_name = $1", &[&slot])
            .await
            .unwrap()
            .is_some_and(|r| r.get(0));
        active.then_some(())
    })
    .await;
    // The ERP's table is locked: the first order's write waits for it.
    let mut lock = world.maria.session();
    lock.send("LOCK TABLES PROD_ORDER WRITE;");
    lock.sync();
    insert_confirmed_orders(&odoo, "WH/MO/K", 0, 1, 4).await;
    // More than the stream's queue holds, behind it.
    insert_confirmed_orders(&odoo, "WH/MO/L", 0, 3000, 4).await;
    // The engine is stuck behind the lock (its session waits in the ERP's process list) with
    // the queue full; the server still hears from the stream on the same connection more than
    // wal_sender_timeout later.
    eventually("millrace's read or write of PROD_ORDER waiting for the lock", &service, || async {
        let waiting = world.maria.exec(&format!(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST
              WHERE DB = '{}' AND STATE LIKE 'Waiting for table%' AND INFO LIKE '%PROD_ORDER%'",
            world.maria.name
        ));
        (waiting.trim() != "0").then_some(())
    })
    .await;
    let (walsender, blocked_at): (i32, String) = {
        let r = odoo
            .query_one("SELECT active_pid, now()::text FROM pg_replication_slots WHERE slot_name = $1", &[&slot])
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    eventually("a reply from the stream more than wal_sender_timeout after the engine blocked", &service, || async {
        odoo.query_opt(
            "SELECT 1 FROM pg_stat_replication WHERE pid = $1 AND reply_time > $2::text::timestamptz + interval '6 seconds'",
            &[&walsender, &blocked_at],
        )
        .await
        .unwrap()
    })
    .await;
    let still = world.maria.exec(&format!(
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = '{}' AND STATE LIKE 'Waiting for table%'",
        world.maria.name
    ));
    assert_ne!(still.trim(), "0", "the engine was blocked all along");
    lock.send("UNLOCK TABLES;");
    lock.sync();
    eventually("all 3,001 orders in the ERP", &service, || async {
        let mut expected: Vec<String> = erp_order_nos_like(&odoo, "WH/MO/K%").await;
        expected.extend(erp_order_nos_like(&odoo, "WH/MO/L%").await);
        let list = sql_strings(&expected);
        let written: usize = world
            .maria
            .exec(&format!("SELECT COUNT(*) FROM PROD_ORDER WHERE ORDER_NO IN ({list})"))
            .trim()
            .parse()
            .unwrap();
        (expected.len() == 3001 && written == 3001).then_some(())
    })
    .await;
    let log = service.log_text();
    assert!(!log.contains("replication connection lost"), "the server dropped the connection:\n{log}");
    lock.close();
    assert_eq!(service.stop().code(), Some(0));
}

/// A change to a looked-up row (a product) re-emits the records that show it, found in one
/// query per mapping, and never the ledger's finished history: 20 products touched in one
/// transaction re-decide exactly their manufacturing orders and no stock move.
#[tokio::test(flavor = "multi_thread")]
async fn a_touched_product_re_emits_its_orders_but_not_the_ledger() {
    let world = World::new("reemit", &["production_order", "inventory_transaction"]).await;
    let odoo = world.odoo.client().await;
    let service = world.start();
    // Ledger history: copies of the fixture's done manufacturing moves, one transaction.
    let copied = common::sync::copy_done_manufacturing_moves(&odoo, 250).await;
    insert_confirmed_orders(&odoo, "WH/MO/R", 0, 300, 4).await;
    let decisions = |entity: &'static str| {
        let odoo = &odoo;
        async move {
            let n: i64 = odoo
                .query_one(
                    "SELECT COALESCE(sum(n), 0)::bigint FROM millrace.decision_count WHERE entity = $1 AND source = 'odoo'",
                    &[&entity],
                )
                .await
                .unwrap()
                .get(0);
            n
        }
    };
    // Settled: the ERP's poll, then the Odoo stream, decided up to a marker placed after the
    // workload (the poll first: an echo of what it applied to Odoo comes on the stream). The
    // markers' own decisions are recorded with them, so the counts are complete.
    legacy_marker(&world, &odoo, &service, "MO99999901").await;
    odoo_marker(&odoo, &service, "WH/MO/M0001").await;
    let settled = (decisions("inventory_transaction").await, decisions("production_order").await);
    assert!(
        settled.0 >= copied && settled.1 >= 300,
        "every move ({copied}) and order (300) decided: {settled:?}; {}",
        service.log_text()
    );
    // Touch 20 products, among them those of the orders and of the moves.
    let touched: Vec<i32> = odoo
        .query(
            "SELECT id FROM product_product ORDER BY (id IN (SELECT product_id FROM mrp_production)) DESC,
                    (id IN (SELECT product_id FROM stock_move)) DESC, id LIMIT 20",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let orders: i64 = odoo
        .query_one("SELECT count(*) FROM mrp_production WHERE product_id = ANY($1)", &[&touched])
        .await
        .unwrap()
        .get(0);
    let moves: i64 =
        odoo.query_one("SELECT count(*) FROM stock_move WHERE product_id = ANY($1)", &[&touched]).await.unwrap().get(0);
    assert!(orders >= 300 && moves >= 1000, "the touched products have orders ({orders}) and moves ({moves})");
    odoo.execute("UPDATE product_product SET write_date = now() WHERE id = ANY($1)", &[&touched]).await.unwrap();
    let after = eventually("the orders of the touched products to be decided again", &service, || async {
        let now = (decisions("inventory_transaction").await, decisions("production_order").await);
        (now.1 >= settled.1 + orders).then_some(now)
    })
    .await;
    // A marker committed after the touch: once it is decided, everything the touch re-emitted
    // is too. It is one more order decided, and nothing else may be.
    odoo_marker(&odoo, &service, "WH/MO/M0002").await;
    let later = (decisions("inventory_transaction").await, decisions("production_order").await);
    assert_eq!(later, (after.0, after.1 + 1), "nothing more was re-emitted (the marker is the one more decision)");
    assert_eq!(after.1 - settled.1, orders, "each order of a touched product decided once more");
    assert_eq!(after.0, settled.0, "no stock move of the ledger re-emitted for a product's change");
    assert_eq!(service.stop().code(), Some(0));
}

/// Only the columns the mappings use are read from the ERP: columns nothing maps, one holding a
/// 50-digit DECIMAL (more than any exact number millrace carries) and one a large BLOB, neither
/// make their row a dead letter nor slow the poll; the item and a later edit of it reach Odoo.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn columns_no_mapping_uses_are_never_read() {
    let Some(world) = RealWorld::new("columns_no_mapping_uses_are_never_read", &["item"]).await else {
        return;
    };
    world.maria.exec(
        "ALTER TABLE ITEM_MASTER ADD COLUMN LEGACY_TOTAL DECIMAL(65, 0) NULL, ADD COLUMN LEGACY_DRAWING LONGBLOB NULL;
         INSERT INTO ITEM_MASTER (ITEM_NO, DESCRIPTION, UOM_CODE, LIST_PRICE, LEGACY_TOTAL, LEGACY_DRAWING)
         VALUES ('MR-WIDE-1', 'Wide row', 'EA', 3, 12345678901234567890123456789012345678901234567890,
                 REPEAT('x', 3000000))",
    );
    let service = world.start();
    let odoo = world.odoo.db.client().await;
    wait_for("MR-WIDE-1 in Odoo", &service, 90, || async { item_name_in_odoo(&odoo, "MR-WIDE-1").await }).await;
    world.maria.exec(
        "UPDATE ITEM_MASTER SET DESCRIPTION = 'Wide row, renamed', LEGACY_TOTAL = -LEGACY_TOTAL
          WHERE ITEM_NO = 'MR-WIDE-1'",
    );
    wait_for("the rename in Odoo", &service, 60, || async {
        item_name_in_odoo(&odoo, "MR-WIDE-1").await.filter(|n| n == "Wide row, renamed")
    })
    .await;
    assert!(open_dead_letters(&odoo).await.is_empty(), "{:#?}", open_dead_letters(&odoo).await);
    assert!(service.stop().success());
}

async fn item_name_in_odoo(odoo: &tokio_postgres::Client, item_no: &str) -> Option<String> {
    odoo.query_opt(
        "SELECT t.name->>'en_US' FROM product_product p JOIN product_template t ON t.id = p.product_tmpl_id
          WHERE p.default_code = $1",
        &[&item_no],
    )
    .await
    .unwrap()
    .map(|r| r.get(0))
}

/// CPU seconds (user + system) a process has used so far, from /proc (in clock ticks of 1/100 s,
/// Linux's USER_HZ).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the process's /proc stat");
    // Fields after the command name (which is in parentheses and may hold spaces): utime, stime
    // are the 12th and 13th of them.
    let rest = &stat[stat.rfind(')').expect("a stat line") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().expect("utime") + fields[12].parse::<f64>().expect("stime");
    ticks / 100.0
}

/// A service with nothing to do sleeps: waiting for changes (the stream, a poll every 300 ms, the
/// reconcile task without an HTTP endpoint to take jobs from) costs next to no CPU. A closed
/// channel asked in a loop once kept a core busy — on the machine it shares with the databases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_service_sleeps() {
    let world = World::new("idle", &["item"]).await;
    let service = world.start();
    eventually("the service running", &service, || async { service.log_text().contains("running").then_some(()) })
        .await;
    // The first poll of the ERP's items, and their copies' echoes, out of the way.
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    let before = cpu_seconds(service.pid());
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    let used = cpu_seconds(service.pid()) - before;
    assert!(used < 1.0, "an idle `millrace run` used {used:.2} s of CPU in 5 s:\n{}", service.log_text());
    service.stop();
}
