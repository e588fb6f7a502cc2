//! The ERP → Odoo direction through Odoo's external API, against a real Odoo 17 server: millrace
//! writes as an integration user over JSON-RPC, and what Odoo's own screens read (through the
//! same API, as the admin) is what is asserted. Without the server these tests print SKIPPED.

mod common;

use common::odoo::{wait_for, RealWorld};
use serde_json::{json, Value};

/// The demo's vendor (Wood Corner).
const PARTNER: i64 = 14;

/// Creates millrace's integration user (inventory, manufacturing, sales and purchase rights) as
/// the admin would, and points the config's `[odoo.api]` at it; the user's id.
async fn integration_user(world: &RealWorld) -> i64 {
    let rpc = world.rpc();
    let mut groups = Vec::new();
    for xml_id in [
        "base.group_user",
        "stock.group_stock_manager",
        "mrp.group_mrp_manager",
        "sales_team.group_sale_manager",
        "purchase.group_purchase_manager",
        "uom.group_uom",
    ] {
        groups.push(rpc.ref_id(xml_id).await);
    }
    let password = "integration-secret-7Q";
    let uid = rpc
        .create(
            "res.users",
            json!({"name": "millrace integration", "login": "millrace", "password": password,
                   "groups_id": [[6, 0, groups]]}),
        )
        .await;
    let key_file = world.dir.path().join("odoo-api-key");
    std::fs::write(&key_file, format!("{password}\n")).expect("key file");
    let server = common::odoo::server("integration_user").expect("a server");
    let mut config = std::fs::read_to_string(&world.config).expect("config");
    config.push_str(&format!(
        "\n[odoo.api]\nurl = \"{}\"\ndatabase = \"{}\"\nlogin = \"millrace\"\nkey_file = \"{}\"\n",
        server.rpc,
        world.odoo.db.name,
        key_file.display()
    ));
    std::fs::write(&world.config, config).expect("config");
    uid
}

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
    let uid = integration_user(&world).await;
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
