//! The ERP → Odoo direction through Odoo's external API, against a real Odoo 17 server: millrace
//! writes as its integration user over JSON-RPC (as every [`RealWorld`] is configured), and what Odoo's own screens read (through the
//! same API, as the admin) is what is asserted. Without the server these tests print SKIPPED.

mod common;

use common::odoo::{wait_for, RealWorld};
use serde_json::{json, Value};

/// The demo's vendor (Wood Corner).
const PARTNER: i64 = 14;

async fn product(world: &RealWorld, code: &str) -> Option<Value> {
    let fields = [
        "id",
        "name",
        "list_price",
        "standard_price",
        "tracking",
        "uom_id",
        "uom_po_id",
        "active",
        "create_uid",
        "product_tmpl_id",
        "invoice_policy",
        "detailed_type",
    ];
    let rows = world
        .rpc()
        .execute(
            "product.product",
            "search_read",
            json!([[["default_code", "=", code]]]),
            json!({"fields": fields, "context": {"active_test": false}}),
        )
        .await;
    rows.as_array().and_then(|r| r.first().cloned())
}

fn name_of(many2one: &Value) -> &str {
    many2one[1].as_str().unwrap_or("")
}

/// An item the ERP creates, prices, costs and makes obsolete is, in Odoo, a product made as its
/// own screens make one (template with the internal reference, cost as the company's property,
/// invoicing policy, purchase unit), updated and archived; an Odoo edit of the ERP's price is
/// written back; a unit change Odoo refuses is a dead letter with Odoo's message; nothing
/// millrace wrote comes back to the ERP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_from_the_erp_are_products_odoo_agrees_with() {
    let Some(world) = RealWorld::new("items_from_the_erp_are_products_odoo_agrees_with", &["item"]).await else {
        return;
    };
    let uid = world.integration_uid;
    let service = world.start();
    world.maria.exec(
        "INSERT INTO ITEM_MASTER (ITEM_NO, DESCRIPTION, UOM_CODE, LOT_CONTROL, STD_COST, LIST_PRICE, STATUS) VALUES \
         ('ORM-100', 'Oak table top', 'EA', 'N', 41.2500, 129.9000, 'A'), \
         ('ORM-101', 'Oak veneer', 'EA', 'L', 3.1000, 7.0000, 'A')",
    );
    let made = wait_for("the ERP's item in Odoo", &service, 90, || product(&world, "ORM-100")).await;
    assert_eq!(made["name"], "Oak table top");
    assert_eq!(made["list_price"].as_f64(), Some(129.9));
    assert_eq!(made["standard_price"].as_f64(), Some(41.25), "STD_COST is the product's cost: {made}");
    assert_eq!(made["tracking"], "none");
    let lot_tracked = wait_for("the lot-tracked item in Odoo", &service, 30, || product(&world, "ORM-101")).await;
    assert_eq!(lot_tracked["tracking"], "lot", "LOT_CONTROL 'L' is tracking by lots");
    assert_eq!(made["detailed_type"], "product");
    assert_eq!(name_of(&made["uom_id"]), "Units");
    assert_eq!(name_of(&made["uom_po_id"]), "Units", "the purchase unit follows");
    assert_eq!(made["create_uid"][0].as_i64(), Some(uid), "made by the integration user");
    assert!(made["invoice_policy"].as_str().is_some_and(|p| !p.is_empty()), "Odoo filled its own defaults: {made}");
    let templates =
        world.rpc().search_read("product.template", json!([["default_code", "=", "ORM-100"]]), &["id"]).await;
    assert_eq!(templates.len(), 1, "the template is found by internal reference");
    let id = made["id"].as_i64().expect("product id");

    // An update in the ERP.
    world.maria.exec("UPDATE ITEM_MASTER SET LIST_PRICE = 135.5000, STD_COST = 44.0000 WHERE ITEM_NO = 'ORM-100'");
    wait_for("the new price and cost in Odoo", &service, 60, || async {
        let p = product(&world, "ORM-100").await?;
        (p["list_price"].as_f64() == Some(135.5) && p["standard_price"].as_f64() == Some(44.0)).then_some(())
    })
    .await;

    // A user edits the ERP's price in Odoo: recorded, and the ERP's price written back.
    world.rpc().write("product.product", &[id], json!({"list_price": 139.0})).await;
    wait_for("the ERP's price back in Odoo", &service, 60, || async {
        let p = product(&world, "ORM-100").await?;
        (p["list_price"].as_f64() == Some(135.5)).then_some(())
    })
    .await;
    let odoo = world.odoo.db.client().await;
    let conflict = wait_for("the conflict recorded", &service, 30, || async {
        odoo.query_one(
            "SELECT string_agg(DISTINCT f, ',') FROM millrace.conflict, unnest(fields) f WHERE entity = 'item' AND key = $1",
            &[&"[\"ORM-100\"]"],
        )
        .await
        .expect("conflicts")
        .get::<_, Option<String>>(0)
    })
    .await;
    assert_eq!(conflict, "list_price");
    assert_eq!(
        world.maria.exec("SELECT LIST_PRICE FROM ITEM_MASTER WHERE ITEM_NO = 'ORM-100'").trim(),
        "135.5000",
        "the ERP keeps its price"
    );

    // Obsolete in the ERP: archived in Odoo, so no longer sold.
    world.maria.exec("UPDATE ITEM_MASTER SET STATUS = 'I' WHERE ITEM_NO = 'ORM-100'");
    wait_for("the product archived", &service, 60, || async {
        let p = product(&world, "ORM-100").await?;
        (p["active"] == json!(false)).then_some(())
    })
    .await;
    let sellable =
        world.rpc().search("product.product", json!([["default_code", "=", "ORM-100"], ["sale_ok", "=", true]])).await;
    assert!(sellable.is_empty(), "an archived product is not offered for sale");
    world.maria.exec("UPDATE ITEM_MASTER SET STATUS = 'A' WHERE ITEM_NO = 'ORM-100'");
    wait_for("the product active again", &service, 60, || async {
        let p = product(&world, "ORM-100").await?;
        (p["active"] == json!(true)).then_some(())
    })
    .await;

    // Odoo refuses a new unit once the product has stock moves: a dead letter with its words.
    world.rpc().receive(PARTNER, id, 5.0).await;
    world.maria.exec("UPDATE ITEM_MASTER SET UOM_CODE = 'DZ' WHERE ITEM_NO = 'ORM-100'");
    let reason = wait_for("the refused unit change dead-lettered", &service, 60, || async {
        odoo.query_opt(
            "SELECT reason FROM millrace.dlq WHERE entity = 'item' AND key = $1 AND status = 'open'",
            &[&"[\"ORM-100\"]"],
        )
        .await
        .expect("dead letters")
        .map(|r| r.get::<_, String>(0))
    })
    .await;
    assert!(reason.contains("Odoo refused") && reason.contains("unit of measure"), "{reason}");
    assert_eq!(name_of(&product(&world, "ORM-100").await.expect("product")["uom_id"]), "Units");

    // Nothing millrace wrote came back: the ERP row holds what the ERP last wrote, and the
    // Odoo side of every write was decided an echo.
    assert_eq!(
        world
            .maria
            .exec("SELECT CONCAT(STATUS, '|', LIST_PRICE, '|', STD_COST) FROM ITEM_MASTER WHERE ITEM_NO = 'ORM-100'")
            .trim(),
        "A|135.5000|44.0000"
    );
    let applied_from_odoo: i64 = odoo
        .query_one(
            "SELECT COALESCE(sum(n), 0)::bigint FROM millrace.decision_count WHERE entity = 'item' AND source = 'odoo' AND decision = 'apply'",
            &[],
        )
        .await
        .expect("decision counts")
        .get(0);
    assert_eq!(applied_from_odoo, 0, "nothing of millrace's own writes was applied back to the ERP");
    service.stop();
}

/// A storable product with an internal reference, cost and tracking, made by the admin.
async fn storable(world: &RealWorld, code: &str, cost: f64, tracking: &str, invoice_policy: &str) -> i64 {
    world
        .rpc()
        .create(
            "product.product",
            json!({"name": format!("{code} test part"), "default_code": code, "detailed_type": "product",
                   "standard_price": cost, "list_price": cost * 2.0, "tracking": tracking,
                   "invoice_policy": invoice_policy}),
        )
        .await
}

async fn on_hand(world: &RealWorld, product: i64) -> f64 {
    let rows = world.rpc().search_read("product.product", json!([["id", "=", product]]), &["qty_available"]).await;
    rows[0]["qty_available"].as_f64().expect("qty_available")
}

/// The value of a product's stock valuation layers since `after` (layer id).
async fn valuation(world: &RealWorld, product: i64) -> (f64, f64) {
    let layers = world
        .rpc()
        .search_read("stock.valuation.layer", json!([["product_id", "=", product]]), &["quantity", "value"])
        .await;
    layers.iter().fold((0.0, 0.0), |(q, v), l| {
        (q + l["quantity"].as_f64().unwrap_or(0.0), v + l["value"].as_f64().unwrap_or(0.0))
    })
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

/// The ERP's shop-floor reports on a released order are recorded in Odoo as a user records them
/// on the order's form: the quantity producing and the lot, components consumed per the BOM;
/// the components of scrapped units scrapped; the ERP closing the order marks it done with a
/// backorder for the rest, which reaches the ERP as a new order. Odoo's on-hand quantities and
/// valuation layers then agree with what the ERP reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erp_production_reports_are_recorded_as_odoo_records_production() {
    let Some(world) =
        RealWorld::new("erp_production_reports_are_recorded_as_odoo_records_production", &["production_order"]).await
    else {
        return;
    };
    let rpc = world.rpc();
    let finished = storable(&world, "ORM-F1", 20.0, "lot", "order").await;
    let wood = storable(&world, "ORM-A1", 2.0, "none", "order").await;
    let glue = storable(&world, "ORM-B1", 3.0, "none", "order").await;
    let template = rpc.search_read("product.product", json!([["id", "=", finished]]), &["product_tmpl_id"]).await[0]
        ["product_tmpl_id"][0]
        .as_i64()
        .expect("template");
    rpc.create(
        "mrp.bom",
        json!({"product_tmpl_id": template, "product_qty": 1,
               "bom_line_ids": [[0, 0, {"product_id": wood, "product_qty": 2}], [0, 0, {"product_id": glue, "product_qty": 0.5}]]}),
    )
    .await;
    rpc.receive(PARTNER, wood, 100.0).await;
    rpc.receive(PARTNER, glue, 100.0).await;
    let before = (on_hand(&world, wood).await, on_hand(&world, glue).await, valuation(&world, finished).await);
    let order = rpc.confirmed_order(finished, 10.0).await;
    let number = RealWorld::erp_order_no(order);
    // The demo ERP's own orders are numbered like Odoo's: none may stand where this one goes.
    world.maria.exec("DELETE FROM PROD_ORDER WHERE ORDER_NO LIKE 'MO%'");

    let service = world.start();
    let erp_order = |no: String| {
        let maria = &world.maria;
        async move {
            let row = maria.exec(&format!(
                "SELECT CONCAT_WS('|', STATUS, TRIM(TRAILING '.' FROM TRIM(TRAILING '0' FROM QTY_ORDERED)), \
                 TRIM(TRAILING '.' FROM TRIM(TRAILING '0' FROM QTY_COMPLETED))) FROM PROD_ORDER WHERE ORDER_NO = '{no}'"
            ));
            (!row.trim().is_empty()).then(|| row.trim().to_string())
        }
    };
    let released = wait_for("the released order in the ERP", &service, 90, || erp_order(number.clone())).await;
    assert_eq!(released, "R|10|0");

    // A report of 4 made, in lot L-ORM-1: producing 4, the components' moves at 8 and 2, picked.
    world
        .maria
        .exec(&format!("UPDATE PROD_ORDER SET QTY_COMPLETED = 4, LOT_NO = 'L-ORM-1' WHERE ORDER_NO = '{number}'"));
    let fields = ["state", "qty_producing", "lot_producing_id", "product_qty", "qty_produced", "procurement_group_id"];
    // (The quantity is written, then the components follow in Odoo's next call: both awaited.)
    let (mo, moves) = wait_for("the report on the order", &service, 60, || async {
        let mo = rpc.search_read("mrp.production", json!([["id", "=", order]]), &fields).await.remove(0);
        let moves = rpc
            .search_read(
                "stock.move",
                json!([["raw_material_production_id", "=", order]]),
                &["product_id", "quantity", "picked"],
            )
            .await;
        (close(mo["qty_producing"].as_f64()?, 4.0) && moves.iter().all(|m| m["picked"] == json!(true)))
            .then_some((mo, moves))
    })
    .await;
    assert_eq!(mo["state"], "progress");
    assert_eq!(mo["lot_producing_id"][1], "L-ORM-1", "the ERP's lot: {mo}");
    let consumed = |product: i64| {
        moves
            .iter()
            .find(|m| m["product_id"][0].as_i64() == Some(product))
            .map(|m| (m["quantity"].as_f64(), m["picked"].clone()))
    };
    assert_eq!(consumed(wood), Some((Some(8.0), json!(true))), "the form's consumption per the BOM: {moves:?}");
    assert_eq!(consumed(glue), Some((Some(2.0), json!(true))));

    // The ERP closes the order at 7 made and 1 scrapped: done in Odoo, a backorder for the 3 left.
    world.maria.exec(&format!(
        "UPDATE PROD_ORDER SET QTY_COMPLETED = 7, QTY_SCRAPPED = 1, STATUS = 'C' WHERE ORDER_NO = '{number}'"
    ));
    let mo = wait_for("the order done in Odoo", &service, 90, || async {
        let mo = rpc.search_read("mrp.production", json!([["id", "=", order]]), &fields).await.remove(0);
        (mo["state"] == "done").then_some(mo)
    })
    .await;
    assert_eq!(mo["qty_produced"].as_f64(), Some(7.0));
    let group = mo["procurement_group_id"][0].as_i64().expect("procurement group");
    let backorders = rpc
        .search_read(
            "mrp.production",
            json!([["procurement_group_id", "=", group], ["id", "!=", order]]),
            &["state", "product_qty"],
        )
        .await;
    assert_eq!(backorders.len(), 1, "one backorder: {backorders:?}");
    assert_eq!(
        (backorders[0]["state"].as_str(), backorders[0]["product_qty"].as_f64()),
        (Some("confirmed"), Some(3.0))
    );
    let backorder = backorders[0]["id"].as_i64().expect("backorder id");

    // Stock and valuation as the ERP reported: 7 made in the lot, components of 8 units used.
    assert!(close(on_hand(&world, finished).await, 7.0));
    let quants = rpc
        .search_read(
            "stock.quant",
            json!([["product_id", "=", finished], ["location_id.usage", "=", "internal"]]),
            &["lot_id", "quantity"],
        )
        .await;
    assert_eq!(quants.len(), 1, "{quants:?}");
    assert_eq!((quants[0]["lot_id"][1].as_str(), quants[0]["quantity"].as_f64()), (Some("L-ORM-1"), Some(7.0)));
    assert!(close(before.0 - on_hand(&world, wood).await, 16.0), "7 made and 1 scrapped use 16 of the wood");
    assert!(close(before.1 - on_hand(&world, glue).await, 4.0));
    let (quantity, value) = valuation(&world, finished).await;
    assert!(
        close(quantity - before.2 .0, 7.0) && close(value - before.2 .1, 140.0),
        "valued at 20: {quantity} {value}"
    );
    let scraps = rpc
        .search_read("stock.scrap", json!([["production_id", "=", order]]), &["product_id", "scrap_qty", "state"])
        .await;
    assert_eq!(scraps.len(), 2, "the components of the scrapped unit: {scraps:?}");

    // The backorder is a new order for the ERP; the closed one stands as the ERP closed it.
    let backorder_no = RealWorld::erp_order_no(backorder);
    let new_order = wait_for("the backorder in the ERP", &service, 90, || erp_order(backorder_no.clone())).await;
    assert_eq!(new_order, "R|3|0");
    let closed = wait_for("the closed order in the ERP", &service, 30, || async {
        erp_order(number.clone()).await.filter(|row| row.starts_with('C'))
    })
    .await;
    assert_eq!(closed, "C|7|7", "Odoo's order shrank to what was made");
    let odoo = world.odoo.db.client().await;
    let open: i64 = odoo
        .query_one(
            "SELECT (SELECT count(*) FROM millrace.conflict) + (SELECT count(*) FROM millrace.dlq WHERE status = 'open')",
            &[],
        )
        .await
        .expect("conflicts and dead letters")
        .get(0);
    assert_eq!(open, 0, "no conflict, no dead letter");
    service.stop();
}

/// The ERP's shipped quantities are a validated delivery in Odoo, once for the lines it shipped
/// together, a backorder for the rest; Odoo's delivered quantity, invoice status and stock
/// follow by themselves and stay; a second shipment finishes the backorder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erp_shipments_are_validated_deliveries_in_odoo() {
    let Some(world) =
        RealWorld::new("erp_shipments_are_validated_deliveries_in_odoo", &["sales_order", "sales_order_line"]).await
    else {
        return;
    };
    let rpc = world.rpc();
    let chair = storable(&world, "ORM-S1", 15.0, "none", "delivery").await;
    let desk = storable(&world, "ORM-S2", 40.0, "none", "delivery").await;
    rpc.receive(PARTNER, chair, 30.0).await;
    rpc.receive(PARTNER, desk, 30.0).await;
    let order = rpc
        .create(
            "sale.order",
            json!({"partner_id": PARTNER, "order_line": [[0, 0, {"product_id": chair, "product_uom_qty": 10}],
                                                          [0, 0, {"product_id": desk, "product_uom_qty": 10}]]}),
        )
        .await;
    rpc.execute("sale.order", "action_confirm", json!([[order]]), json!({})).await;
    let so = rpc.search_read("sale.order", json!([["id", "=", order]]), &["name", "order_line"]).await.remove(0);
    let name = so["name"].as_str().expect("order name").to_string();
    let lines: Vec<i64> = so["order_line"].as_array().expect("lines").iter().filter_map(Value::as_i64).collect();
    let service = world.start();
    let erp_lines = || async {
        let rows = world.maria.exec(&format!("SELECT COUNT(*) FROM SO_LINE WHERE ORDER_NO = '{name}'"));
        (rows.trim() == "2").then_some(())
    };
    wait_for("the order's lines in the ERP", &service, 90, erp_lines).await;

    let line_state = |line: i64| async move {
        rpc.search_read("sale.order.line", json!([["id", "=", line]]), &["qty_delivered", "invoice_status"])
            .await
            .remove(0)
    };
    // The ERP ships 4 chairs and 6 desks in one transaction.
    world.maria.exec(&format!(
        "UPDATE SO_LINE SET QTY_SHIPPED = CASE LINE_NO WHEN {} THEN 4 ELSE 6 END WHERE ORDER_NO = '{name}'",
        lines[0]
    ));
    wait_for("Odoo's delivered quantities", &service, 90, || async {
        let (a, b) = (line_state(lines[0]).await, line_state(lines[1]).await);
        (a["qty_delivered"].as_f64() == Some(4.0) && b["qty_delivered"].as_f64() == Some(6.0)).then_some(())
    })
    .await;
    assert_eq!(line_state(lines[0]).await["invoice_status"], "to invoice", "the delivered quantity is to be invoiced");
    let pickings = rpc.search_read("stock.picking", json!([["sale_id", "=", order]]), &["state", "backorder_id"]).await;
    let done: Vec<&Value> = pickings.iter().filter(|p| p["state"] == "done").collect();
    assert_eq!(done.len(), 1, "one delivery validated for both lines: {pickings:?}");
    assert_eq!(pickings.len(), 2, "and a backorder for the rest: {pickings:?}");
    assert!(close(on_hand(&world, chair).await, 26.0) && close(on_hand(&world, desk).await, 24.0));

    // The second shipment completes the order from the backorder.
    world.maria.exec(&format!("UPDATE SO_LINE SET QTY_SHIPPED = 10 WHERE ORDER_NO = '{name}'"));
    wait_for("the whole order delivered", &service, 90, || async {
        let (a, b) = (line_state(lines[0]).await, line_state(lines[1]).await);
        (a["qty_delivered"].as_f64() == Some(10.0) && b["qty_delivered"].as_f64() == Some(10.0)).then_some(())
    })
    .await;
    let open =
        rpc.search("stock.picking", json!([["sale_id", "=", order], ["state", "not in", ["done", "cancel"]]])).await;
    assert!(open.is_empty(), "nothing left to deliver: {open:?}");
    assert!(close(on_hand(&world, chair).await, 20.0) && close(on_hand(&world, desk).await, 20.0));
    // The delivered quantity stays, in Odoo and the ERP alike.
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    assert_eq!(line_state(lines[0]).await["qty_delivered"].as_f64(), Some(10.0));
    assert_eq!(
        world.maria.exec(&format!("SELECT SUM(QTY_SHIPPED) FROM SO_LINE WHERE ORDER_NO = '{name}'")).trim(),
        "20.0000"
    );
    let dead = world.open_dead_letters().await;
    assert!(dead.is_empty(), "{dead:?}");
    service.stop();
}

/// The Odoo units of `name` (archived ones too): (id, ratio).
async fn units_named(world: &RealWorld, name: &str) -> Vec<(i64, f64)> {
    let rows = world
        .rpc()
        .execute(
            "uom.uom",
            "search_read",
            json!([[["name", "=", name]]]),
            json!({"fields": ["id", "factor_inv"], "context": {"active_test": false}}),
        )
        .await;
    rows.as_array()
        .map(|r| r.iter().map(|u| (u["id"].as_i64().unwrap_or(0), u["factor_inv"].as_f64().unwrap_or(0.0))).collect())
        .unwrap_or_default()
}

/// An ERP unit is one Odoo unit whatever the ERP renames, the reference unit of a class
/// included: bound by the cross-reference (found by name the first time), never made twice,
/// its ratio exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erp_unit_stays_one_odoo_unit_through_renames() {
    let Some(world) = RealWorld::new("an_erp_unit_stays_one_odoo_unit_through_renames", &["uom"]).await else {
        return;
    };
    let kg = world.rpc().ref_id("uom.product_uom_kgm").await;
    let service = world.start();
    world.maria.exec(
        "INSERT INTO UOM (UOM_CODE, DESCRIPTION, BASE_UOM, FACTOR, STATUS) VALUES ('BX', 'Boxes', 'EA', 12, 'A')",
    );
    let boxes =
        wait_for("the ERP's unit in Odoo", &service, 90, || async { units_named(&world, "Boxes").await.pop() }).await;
    assert_eq!(boxes.1, 12.0, "the ratio is the ERP's factor, exactly");

    // Renamed in the ERP: the same Odoo unit renamed, no second one.
    world.maria.exec("UPDATE UOM SET DESCRIPTION = 'Crates' WHERE UOM_CODE = 'BX'");
    let crates =
        wait_for("the unit renamed", &service, 60, || async { units_named(&world, "Crates").await.pop() }).await;
    assert_eq!(crates.0, boxes.0, "one unit");
    assert!(units_named(&world, "Boxes").await.is_empty());

    // The reference unit of the weight class renamed, twice: Odoo's kg, bound by its name first.
    world.maria.exec("UPDATE UOM SET DESCRIPTION = 'Kilogram' WHERE UOM_CODE = 'KG'");
    let kilogram =
        wait_for("the reference unit renamed", &service, 60, || async { units_named(&world, "Kilogram").await.pop() })
            .await;
    assert_eq!(kilogram.0, kg, "Odoo's own kg, renamed");
    world.maria.exec("UPDATE UOM SET DESCRIPTION = 'Kilo' WHERE UOM_CODE = 'KG'");
    let kilo = wait_for("renamed again", &service, 60, || async { units_named(&world, "Kilo").await.pop() }).await;
    assert_eq!(kilo.0, kg);
    // A unit of the class still names its reference unit by the new name, in both systems.
    world
        .maria
        .exec("INSERT INTO UOM (UOM_CODE, DESCRIPTION, BASE_UOM, FACTOR, STATUS) VALUES ('SK', 'Sack', 'KG', 25, 'A')");
    let sack =
        wait_for("a unit of the renamed class", &service, 60, || async { units_named(&world, "Sack").await.pop() })
            .await;
    let rpc = world.rpc();
    let category = |id: i64| async move {
        rpc.search_read("uom.uom", json!([["id", "=", id]]), &["category_id"]).await[0]["category_id"][0].as_i64()
    };
    assert_eq!(category(sack.0).await, category(kg).await, "in the weight class");
    assert_eq!(sack.1, 25.0);
    for name in ["kg", "Boxes", "Kilogram"] {
        assert!(units_named(&world, name).await.is_empty(), "no unit is left under the old name {name}");
    }
    let dead = world.open_dead_letters().await;
    assert!(dead.is_empty(), "{dead:?}");
    service.stop();
}

/// Makes the ERP's deletes of `mappings` found within a second (the shipped scan is every 15
/// minutes).
fn scan_deletes_often(world: &RealWorld, mappings: &[&str]) {
    for m in mappings {
        let path = world.dir.path().join("mappings").join(format!("{m}.toml"));
        let text = std::fs::read_to_string(&path).expect("mapping");
        std::fs::write(&path, text.replace("delete_scan_interval = \"15m\"", "delete_scan_interval = \"1s\""))
            .expect("mapping");
    }
}

/// The ERP's BOMs, their lines and lots are Odoo records its own screens agree with: the
/// component templates show the BOM they are used in, a line's change follows, a lot is the
/// product's; a BOM the ERP deletes while an order uses it is archived, and the order keeps it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erp_boms_and_lots_are_records_odoo_agrees_with() {
    let Some(world) =
        RealWorld::new("erp_boms_and_lots_are_records_odoo_agrees_with", &["item", "bom", "bom_line", "lot"]).await
    else {
        return;
    };
    let uid = world.integration_uid;
    scan_deletes_often(&world, &["bom", "bom_line"]);
    let rpc = world.rpc();
    let service = world.start();
    world.maria.exec(
        "INSERT INTO ITEM_MASTER (ITEM_NO, DESCRIPTION, UOM_CODE, LOT_CONTROL, STD_COST, LIST_PRICE, STATUS) VALUES \
           ('ORM-BF', 'Stool', 'EA', 'L', 30, 60, 'A'), ('ORM-BC1', 'Stool leg', 'EA', 'N', 2, 4, 'A'), \
           ('ORM-BC2', 'Stool seat', 'EA', 'N', 8, 16, 'A'); \
         INSERT INTO BOM_HEADER (ITEM_NO, BOM_ALT, DESCRIPTION, BOM_TYPE, BASE_QTY, UOM_CODE, STATUS) VALUES \
           ('ORM-BF', '01', 'Stool', 'N', 1, 'EA', 'A'); \
         INSERT INTO BOM_LINE (ITEM_NO, BOM_ALT, LINE_NO, COMP_ITEM_NO, QTY_PER, UOM_CODE, ISSUE_METHOD) VALUES \
           ('ORM-BF', '01', 10, 'ORM-BC1', 4, 'EA', 'B'), ('ORM-BF', '01', 20, 'ORM-BC2', 0.5, 'EA', 'M'); \
         INSERT INTO LOT_MASTER (ITEM_NO, LOT_NO, CREATED_DATE) VALUES ('ORM-BF', 'LOT-ERP-1', '2026-12-01 08:00:00')",
    );
    let bom_fields = ["id", "active", "bom_line_ids", "product_qty", "code", "create_uid"];
    let bom = wait_for("the BOM with its lines in Odoo", &service, 120, || async {
        let boms = rpc
            .execute(
                "mrp.bom",
                "search_read",
                json!([[["product_tmpl_id.default_code", "=", "ORM-BF"]]]),
                json!({"fields": bom_fields, "context": {"active_test": false}}),
            )
            .await;
        let bom = boms.as_array()?.first()?.clone();
        (bom["bom_line_ids"].as_array()?.len() == 2).then_some(bom)
    })
    .await;
    assert_eq!(bom["create_uid"][0].as_i64(), Some(uid));
    assert_eq!(bom["code"], "Stool");
    let bom_id = bom["id"].as_i64().expect("bom id");
    let lines = rpc
        .search_read(
            "mrp.bom.line",
            json!([["bom_id", "=", bom_id]]),
            &["product_id", "product_tmpl_id", "product_qty", "manual_consumption"],
        )
        .await;
    for line in &lines {
        assert!(line["product_tmpl_id"][0].as_i64().is_some(), "Odoo filled the line's template: {line}");
    }
    let used_in =
        rpc.search_read("product.template", json!([["default_code", "=", "ORM-BC1"]]), &["used_in_bom_count"]).await;
    assert_eq!(used_in[0]["used_in_bom_count"].as_i64(), Some(1), "the component shows the BOM it is used in");
    let seat = lines.iter().find(|l| l["product_qty"].as_f64() == Some(0.5)).expect("the seat line");
    assert_eq!(seat["manual_consumption"], json!(true), "issued manually in the ERP");

    let lot = wait_for("the ERP's lot in Odoo", &service, 60, || async {
        rpc.search_read("stock.lot", json!([["name", "=", "LOT-ERP-1"]]), &["product_id", "create_uid"]).await.pop()
    })
    .await;
    assert_eq!(lot["product_id"][1].as_str().map(|n| n.contains("ORM-BF")), Some(true), "{lot}");

    // A line's quantity changes in the ERP.
    world.maria.exec("UPDATE BOM_LINE SET QTY_PER = 0.75 WHERE ITEM_NO = 'ORM-BF' AND LINE_NO = 20");
    wait_for("the line's new quantity", &service, 60, || async {
        let lines = rpc.search_read("mrp.bom.line", json!([["bom_id", "=", bom_id]]), &["product_qty"]).await;
        lines.iter().any(|l| l["product_qty"].as_f64() == Some(0.75)).then_some(())
    })
    .await;

    // An order uses the BOM; the ERP deletes it: archived in Odoo, the order keeps it.
    let product = rpc.search("product.product", json!([["default_code", "=", "ORM-BF"]])).await[0];
    let order = rpc.create("mrp.production", json!({"product_id": product, "product_qty": 2, "bom_id": bom_id})).await;
    rpc.execute("mrp.production", "action_confirm", json!([[order]]), json!({})).await;
    world.maria.exec("DELETE FROM BOM_LINE WHERE ITEM_NO = 'ORM-BF'; DELETE FROM BOM_HEADER WHERE ITEM_NO = 'ORM-BF'");
    wait_for("the BOM archived", &service, 90, || async {
        let boms = rpc
            .execute(
                "mrp.bom",
                "search_read",
                json!([[["id", "=", bom_id]]]),
                json!({"fields": ["active"], "context": {"active_test": false}}),
            )
            .await;
        (boms[0]["active"] == json!(false)).then_some(())
    })
    .await;
    let mo = rpc.search_read("mrp.production", json!([["id", "=", order]]), &["bom_id", "state"]).await.remove(0);
    assert_eq!((mo["bom_id"][0].as_i64(), mo["state"].as_str()), (Some(bom_id), Some("confirmed")));
    let dead = world.open_dead_letters().await;
    assert!(dead.is_empty(), "{dead:?}");
    service.stop();
}

/// `millrace check` holds the shipped mappings against the live Odoo through its API (every
/// model, field and value millrace writes), and names a value Odoo does not have in a field
/// millrace writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_holds_the_shipped_mappings_against_the_live_odoo() {
    let all = [
        "item",
        "uom",
        "bom",
        "bom_line",
        "lot",
        "production_order",
        "sales_order",
        "sales_order_line",
        "work_center",
        "inventory_transaction",
    ];
    let Some(world) = RealWorld::new("check_holds_the_shipped_mappings_against_the_live_odoo", &all).await else {
        return;
    };
    let check = || {
        let out = common::millrace(&[], &["--config", &world.config, "check"]);
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (code, stdout) = check();
    assert_eq!(code, Some(0), "{stdout}");
    assert!(!stdout.contains("error:"), "{stdout}");
    assert!(!stdout.contains("odoo.api: not configured"), "{stdout}");

    // A BOM's type is written from the ERP: a type Odoo does not have is named.
    let path = world.dir.path().join("mappings").join("bom.toml");
    let text = std::fs::read_to_string(&path).expect("mapping");
    assert!(text.contains("phantom = \"kit\""), "the shipped mapping maps kits to phantom");
    std::fs::write(&path, text.replacen("phantom = \"kit\"", "kits = \"kit\"", 1)).expect("mapping");
    let (code, stdout) = check();
    assert_eq!(code, Some(1), "{stdout}");
    let line = stdout.lines().find(|l| l.contains("\"kits\"")).unwrap_or_else(|| panic!("{stdout}"));
    assert!(line.starts_with("error: ") && line.contains("not a value of mrp.bom.type"), "{line}");
}
