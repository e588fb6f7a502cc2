//! End to end: `millrace run` between a real PostgreSQL loaded with the Odoo 17 fixture and a
//! real MariaDB holding the demo legacy ERP, through the real ODBC driver.

mod common;

use common::millrace;
use common::sync::{
    erp_order_no, erp_order_nos_like, eventually, insert_confirmed_orders, legacy_marker, odoo_marker, order_key,
    settled, sql_strings, World,
};

fn first_line(text: String) -> Option<String> {
    text.lines().next().map(str::to_string)
}

#[tokio::test(flavor = "multi_thread")]
async fn items_flow_from_legacy_and_ownership_is_enforced() {
    let world = World::new("e2e_item", &["item", "production_order"]).await;
    let service = world.start();
    let odoo = world.odoo.client().await;

    // An item created in the legacy ERP appears in Odoo, with its template, and a cross-reference.
    world.maria.exec(
        "INSERT INTO ITEM_MASTER (ITEM_NO, DESCRIPTION, UOM_CODE, ITEM_TYPE, LOT_CONTROL, STD_COST, LIST_PRICE, STATUS)
         VALUES ('MR-1001', 'Oak Leg 40cm', 'EA', 'P', 'L', 3.2500, 7.5000, 'A')",
    );
    let (name, uom, price, tracking, active): (String, String, String, String, bool) =
        eventually("item MR-1001 in Odoo", &service, || async {
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

    // Renaming it in Odoo touches a legacy-owned field: a recorded conflict, not applied.
    odoo.batch_execute(
        "UPDATE product_template SET name = '{\"en_US\": \"Renamed in Odoo\"}'
          WHERE id = (SELECT product_tmpl_id FROM product_product WHERE default_code = 'MR-1001')",
    )
    .await
    .unwrap();
    let fields: Vec<String> = eventually("the rename conflict", &service, || async {
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
    odoo.batch_execute(
        "UPDATE product_template SET name = '{\"en_US\": \"Desk, renamed in Odoo\"}'
          WHERE id = (SELECT product_tmpl_id FROM product_product WHERE default_code = 'FURN_0096')",
    )
    .await
    .unwrap();
    let variants: Vec<String> = odoo
        .query(
            "SELECT default_code FROM product_product WHERE default_code IS NOT NULL
                AND product_tmpl_id = (SELECT product_tmpl_id FROM product_product WHERE default_code = 'FURN_0096') ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| format!("[\"{}\"]", r.get::<_, String>(0)))
        .collect();
    assert!(variants.len() >= 5, "the fixture's desk has several coded variants: {variants:?}");
    let conflicted: Vec<String> = eventually("a conflict per variant", &service, || async {
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

    // Archiving it in Odoo (an Odoo-owned field) reaches the legacy ERP.
    odoo.batch_execute("UPDATE product_product SET active = false WHERE default_code = 'MR-1001'").await.unwrap();
    eventually("STATUS 'I' in ITEM_MASTER", &service, || async {
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
    eventually("the legacy rename in Odoo", &service, || async {
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

#[tokio::test(flavor = "multi_thread")]
async fn production_orders_go_to_legacy_and_progress_comes_back_without_loops() {
    let world = World::new("e2e_mo", &["item", "production_order"]).await;
    let service = world.start();
    let odoo = world.odoo.client().await;

    // A new manufacturing order, drafted then confirmed in Odoo.
    odoo.batch_execute(
        "INSERT INTO mrp_production (name, product_id, product_uom_id, picking_type_id, location_src_id,
                location_dest_id, company_id, consumption, product_qty, qty_producing, date_start, state)
         SELECT 'WH/MO/00900', product_id, product_uom_id, picking_type_id, location_src_id, location_dest_id,
                company_id, consumption, 4, 0, '2026-12-01 07:30:00', 'draft'
           FROM mrp_production WHERE name = 'WH/MO/00001'",
    )
    .await
    .unwrap();
    // Its number in the ERP is made from its Odoo id, not from its name.
    let order_no = erp_order_no(&odoo, "WH/MO/00900").await;
    // A marker committed after the draft: once it is decided, so is the draft.
    odoo_marker(&odoo, &service, "WH/MO/00990").await;
    assert_eq!(
        world.maria.exec(&format!("SELECT COUNT(*) FROM PROD_ORDER WHERE ORDER_NO = '{order_no}'")).trim(),
        "0",
        "drafts stay in Odoo"
    );
    odoo.batch_execute("UPDATE mrp_production SET state = 'confirmed' WHERE name = 'WH/MO/00900'").await.unwrap();
    let row = eventually("WH/MO/00900 in PROD_ORDER", &service, || async {
        first_line(world.maria.exec(&format!(
            "SELECT CONCAT_WS('|', ITEM_NO, QTY_ORDERED, UOM_CODE, STATUS, START_DATE) FROM PROD_ORDER WHERE ORDER_NO = '{order_no}'"
        )))
    })
    .await;
    assert_eq!(row, "FURN_7800|4.0000|EA|R|2026-12-01 08:30:00", "Odoo's UTC start is Brussels local time here");
    let key = order_key(&odoo, "WH/MO/00900").await;
    let bound: i64 = settled(&1, || async {
        odoo.query_one(
            "SELECT count(*) FROM millrace.xref WHERE entity = 'production_order' AND key = $1 AND system = 'odoo'
                AND id = (SELECT id::text FROM mrp_production WHERE name = 'WH/MO/00900')",
            &[&key],
        )
        .await
        .unwrap()
        .get(0)
    })
    .await;
    assert_eq!(bound, 1, "the cross-reference binds the Odoo id to the ERP number");

    // The shop floor reports production in the legacy ERP: it flows back to Odoo.
    world.maria.exec(&format!("UPDATE PROD_ORDER SET QTY_COMPLETED = 2.5 WHERE ORDER_NO = '{order_no}'"));
    eventually("qty_producing 2.5 in Odoo", &service, || async {
        odoo.query_opt("SELECT 1 FROM mrp_production WHERE name = 'WH/MO/00900' AND qty_producing = 2.5", &[])
            .await
            .unwrap()
    })
    .await;

    // Odoo renames the order (as it does when it splits one) and changes its quantity: the same
    // ERP order follows, no second one appears.
    let orders_before = world.maria.exec("SELECT COUNT(*) FROM PROD_ORDER");
    odoo.batch_execute(
        "UPDATE mrp_production SET name = 'WH/MO/00900-001', product_qty = 5 WHERE name = 'WH/MO/00900'",
    )
    .await
    .unwrap();
    eventually("the renamed order's new quantity in PROD_ORDER", &service, || async {
        first_line(world.maria.exec(&format!("SELECT QTY_ORDERED FROM PROD_ORDER WHERE ORDER_NO = '{order_no}'")))
            .filter(|q| q == "5.0000")
    })
    .await;
    assert_eq!(erp_order_no(&odoo, "WH/MO/00900-001").await, order_no);
    assert_eq!(world.maria.exec("SELECT COUNT(*) FROM PROD_ORDER"), orders_before, "no second ERP order");

    // No loop: once quiet, nothing more is written on either side. Quiet is shown by markers on
    // both pipelines that write nothing themselves (their rows are left out of the stamps, their
    // decisions are no `apply`): after a first round every write so far is decided, echoes
    // included; after a second, so is the echo of any write made before it, and a write that
    // echo led to would show in the counts or the stamps.
    let writes = || async {
        let applied: i64 = odoo
            .query_one("SELECT COALESCE(sum(n), 0)::bigint FROM millrace.decision_count WHERE decision = 'apply'", &[])
            .await
            .unwrap()
            .get(0);
        let odoo_stamp: String = odoo
            .query_one(
                "SELECT greatest((SELECT max(write_date) FROM mrp_production), (SELECT max(write_date) FROM product_template))::text",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        let legacy_stamp = world.maria.exec(
            "SELECT GREATEST((SELECT MAX(LAST_UPD) FROM PROD_ORDER WHERE ORDER_NO NOT LIKE 'MO999999%'),
                             (SELECT MAX(LAST_UPD) FROM ITEM_MASTER))",
        );
        (applied, odoo_stamp, legacy_stamp)
    };
    odoo_marker(&odoo, &service, "WH/MO/00991").await;
    legacy_marker(&world, &odoo, &service, "MO99999901").await;
    let before = writes().await;
    odoo_marker(&odoo, &service, "WH/MO/00992").await;
    legacy_marker(&world, &odoo, &service, "MO99999902").await;
    let after = writes().await;
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

#[tokio::test(flavor = "multi_thread")]
async fn bad_data_is_dead_lettered_with_its_reason_and_retried_once_fixed() {
    let world = World::new("e2e_dlq", &["item", "production_order"]).await;
    let service = world.start();
    let odoo = world.odoo.client().await;

    // Bad changes among good ones: an unknown unit code (legacy → Odoo); from Odoo, an order
    // in a unit the ERP has no UOM row for, an order for a product whose item number is longer
    // than PROD_ORDER.ITEM_NO holds, and an order for a product without an item number. An
    // order without a produced quantity (NULL) is not bad data: it is written as 0 produced.
    world.maria.exec(
        "INSERT INTO ITEM_MASTER (ITEM_NO, DESCRIPTION, UOM_CODE, LIST_PRICE) VALUES
            ('MR-BAD-UOM', 'Crate of bolts', 'CRT', 1),
            ('MR-GOOD-1', 'Bolt M8', 'EA', 0.2)",
    );
    let unit_order = common::sync::insert_order_the_erp_refuses(&odoo, "WH/MO/00901", "2026-12-02 07:00:00").await;
    odoo.batch_execute(
        "WITH t AS (
            INSERT INTO product_template (name, categ_id, uom_id, uom_po_id, detailed_type, type, tracking,
                    purchase_line_warn, sale_line_warn, active, sale_ok, purchase_ok, sequence)
            VALUES ('{\"en_US\": \"Part with a long number\"}', 1, 1, 1, 'product', 'product', 'none',
                    'no-message', 'no-message', true, true, true, 1)
            RETURNING id)
         INSERT INTO product_product (product_tmpl_id, default_code, active)
         SELECT id, 'MR-ITEM-NUMBER-TOO-LONG', true FROM t;
         INSERT INTO mrp_production (name, product_id, product_uom_id, picking_type_id, location_src_id,
                location_dest_id, company_id, consumption, product_qty, qty_producing, date_start, state)
         SELECT n.name, COALESCE(n.product, m.product_id), m.product_uom_id, m.picking_type_id, m.location_src_id,
                m.location_dest_id, m.company_id, m.consumption, 1, n.produced, '2026-12-02 07:00:00', 'confirmed'
           FROM mrp_production m,
                (VALUES ('WH/MO/00902', NULL::int, 0),
                        ('WH/MO/00903', (SELECT min(id) FROM product_product WHERE default_code IS NULL), 0),
                        ('WH/MO/00904', (SELECT id FROM product_product WHERE default_code = 'MR-ITEM-NUMBER-TOO-LONG'), 0),
                        ('WH/MO/00905', NULL::int, NULL))
                    AS n(name, product, produced)
          WHERE m.name = 'WH/MO/00001'",
    )
    .await
    .unwrap();
    let good = erp_order_no(&odoo, "WH/MO/00902").await;
    let unproduced = erp_order_no(&odoo, "WH/MO/00905").await;

    eventually("MR-GOOD-1 in Odoo and WH/MO/00902, WH/MO/00905 in the legacy ERP", &service, || async {
        let item = odoo.query_opt("SELECT 1 FROM product_product WHERE default_code = 'MR-GOOD-1'", &[]).await.unwrap();
        let orders =
            world.maria.exec(&format!("SELECT COUNT(*) FROM PROD_ORDER WHERE ORDER_NO IN ('{good}', '{unproduced}')"));
        (item.is_some() && orders.trim() == "2").then_some(())
    })
    .await;
    assert_eq!(
        world.maria.exec(&format!("SELECT QTY_COMPLETED FROM PROD_ORDER WHERE ORDER_NO = '{unproduced}'")).trim(),
        "0.0000",
        "no produced quantity in Odoo is 0 produced in the ERP"
    );
    let letters = eventually("four dead letters", &service, || async {
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
    assert!(reason.contains(common::sync::UNIT_THE_ERP_LACKS) && reason.contains("UOM"), "{reason}");
    let long_key = order_key(&odoo, "WH/MO/00904").await;
    let (_, entity, _, field, reason) = find(&long_key);
    assert_eq!((entity.as_str(), field.as_deref()), ("production_order", Some("item_no")), "{reason}");
    assert!(
        reason.contains("MR-ITEM-NUMBER-TOO-LONG") && reason.contains("PROD_ORDER.ITEM_NO holds at most 18"),
        "{reason}"
    );
    let no_item_key = order_key(&odoo, "WH/MO/00903").await;
    let (_, entity, _, field, reason) = find(&no_item_key);
    assert_eq!((entity.as_str(), field.as_deref()), ("production_order", Some("item_no")), "{reason}");
    assert!(reason.contains("default_code"), "{reason}");

    // Fix the unit table in the legacy ERP, then retry: the service re-reads the row and applies it.
    world.maria.exec("INSERT INTO UOM (UOM_CODE, DESCRIPTION, BASE_UOM, FACTOR) VALUES ('CRT', 'Dozens', 'EA', 12)");
    let out = millrace(&[], &["--config", &world.config, "dlq", "retry", &uom_id.to_string()]);
    assert!(out.status.success(), "dlq retry: {}", String::from_utf8_lossy(&out.stderr));
    eventually("MR-BAD-UOM in Odoo in dozens", &service, || async {
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
    odoo.batch_execute(
        "UPDATE mrp_production SET product_uom_id = (SELECT id FROM uom_uom WHERE name->>'en_US' = 'Units')
          WHERE name = 'WH/MO/00901'",
    )
    .await
    .unwrap();
    eventually("WH/MO/00901 in PROD_ORDER", &service, || async {
        first_line(world.maria.exec(&format!("SELECT UOM_CODE FROM PROD_ORDER WHERE ORDER_NO = '{unit_order}'")))
            .filter(|s| s == "EA")
    })
    .await;
    // The dead letter is settled once the batch's outcome is saved, a moment after the row.
    let open = eventually("the fixed order's dead letter settled", &service, || async {
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

#[tokio::test(flavor = "multi_thread")]
async fn rows_read_twice_are_not_applied_twice() {
    let world = World::new("e2e_twice", &["item", "production_order"]).await;
    let service = world.start();
    let odoo = world.odoo.client().await;
    world
        .maria
        .exec("INSERT INTO ITEM_MASTER (ITEM_NO, DESCRIPTION, UOM_CODE) VALUES ('MR-TWICE', 'Seen twice', 'EA')");
    eventually("MR-TWICE in Odoo", &service, || async {
        odoo.query_opt("SELECT 1 FROM product_product WHERE default_code = 'MR-TWICE'", &[]).await.unwrap()
    })
    .await;
    let counts = || async {
        let r = odoo
            .query_one(
                "SELECT COALESCE(sum(n) FILTER (WHERE decision = 'apply'), 0)::bigint,
                        COALESCE(sum(n) FILTER (WHERE decision = 'stale' AND source = 'legacy'), 0)::bigint
                   FROM millrace.decision_count",
                &[],
            )
            .await
            .unwrap();
        (r.get::<_, i64>(0), r.get::<_, i64>(1))
    };
    // The baseline once the outcome of the batch that applied MR-TWICE is recorded: its
    // cross-reference is saved in the same transaction as its decision counts.
    eventually("the outcome of MR-TWICE's batch recorded", &service, || async {
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
    let (applied, stale) = counts().await;
    odoo.batch_execute("DELETE FROM millrace.legacy_checkpoint; DELETE FROM millrace.legacy_row_hash").await.unwrap();
    let service = world.start();
    let rows: i64 = world
        .maria
        .exec("SELECT (SELECT COUNT(*) FROM ITEM_MASTER) + (SELECT COUNT(*) FROM PROD_ORDER)")
        .trim()
        .parse()
        .unwrap();
    let (applied_after, stale_after) = eventually("every row read again", &service, || async {
        let (a, s) = counts().await;
        (s - stale >= rows).then_some((a, s))
    })
    .await;
    assert_eq!(applied_after, applied, "nothing applied twice ({} rows re-read)", stale_after - stale);
    let copies: i64 = odoo
        .query_one("SELECT count(*) FROM product_product WHERE default_code = 'MR-TWICE'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(copies, 1);
    assert_eq!(service.stop().code(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bom_arriving_before_its_items_waits_parked_then_lands_whole() {
    let world = World::new("e2e_park", &["item", "bom", "bom_line"]).await;
    let service = world.start();
    let odoo = world.odoo.client().await;

    // The ERP has no foreign keys: a BOM and its line can be written before their items.
    world.maria.exec(
        "INSERT INTO BOM_HEADER (ITEM_NO, BOM_ALT, DESCRIPTION, BOM_TYPE, BASE_QTY, UOM_CODE) VALUES ('MR-P1', '01', 'PARK-TEST', 'N', 1, 'EA');
         INSERT INTO BOM_LINE (ITEM_NO, BOM_ALT, LINE_NO, COMP_ITEM_NO, QTY_PER, UOM_CODE) VALUES ('MR-P1', '01', 10, 'MR-C1', 2, 'EA')",
    );
    let parked: Vec<String> = eventually("the BOM and its line parked", &service, || async {
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
    let (component, qty): (String, String) = eventually("the BOM line in Odoo", &service, || async {
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
    eventually("nothing parked", &service, || async {
        let n: i64 = odoo.query_one("SELECT count(*) FROM millrace.parked", &[]).await.unwrap().get(0);
        (n == 0).then_some(())
    })
    .await;

    // A later change of the line reaches the same Odoo row, not a copy of it.
    world.maria.exec("UPDATE BOM_LINE SET QTY_PER = 3 WHERE ITEM_NO = 'MR-P1' AND LINE_NO = 10");
    eventually("the updated quantity", &service, || async {
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

#[tokio::test(flavor = "multi_thread")]
async fn while_the_legacy_database_is_unreachable_both_directions_wait_then_catch_up() {
    let (world, proxy) = common::sync::world_behind_proxy("e2e_outage", &["item", "production_order"]).await;
    let mut service = world.start();
    let odoo = world.odoo.client().await;
    world.maria.exec(
        "INSERT INTO ITEM_MASTER (ITEM_NO, DESCRIPTION, UOM_CODE) VALUES ('MR-OUT-1', 'Before the outage', 'EA')",
    );
    eventually("MR-OUT-1 in Odoo", &service, || async {
        odoo.query_opt("SELECT 1 FROM product_product WHERE default_code = 'MR-OUT-1'", &[]).await.unwrap()
    })
    .await;

    // The network to the legacy database goes down. Changes keep coming on both sides.
    proxy.cut();
    world.maria.exec(
        "INSERT INTO ITEM_MASTER (ITEM_NO, DESCRIPTION, UOM_CODE) VALUES ('MR-OUT-2', 'During the outage', 'EA')",
    );
    odoo.batch_execute(
        "INSERT INTO mrp_production (name, product_id, product_uom_id, picking_type_id, location_src_id,
                location_dest_id, company_id, consumption, product_qty, qty_producing, date_start, state)
         SELECT 'WH/MO/00950', product_id, product_uom_id, picking_type_id, location_src_id, location_dest_id,
                company_id, consumption, 2, 0, '2026-12-04 08:00:00', 'confirmed'
           FROM mrp_production WHERE name = 'WH/MO/00001'",
    )
    .await
    .unwrap();
    let order_no = erp_order_no(&odoo, "WH/MO/00950").await;
    let count = format!("SELECT COUNT(*) FROM PROD_ORDER WHERE ORDER_NO = '{order_no}'");
    // millrace meets the outage with both changes made: after them, its log shows it retrying
    // a batch for want of the ERP (it handles one batch at a time: the order's, or one the
    // order's waits behind).
    let retries = || service.log_text().matches("unavailable; retrying").count();
    let retried = retries();
    eventually("millrace retrying for want of the ERP, after both changes", &service, || async {
        (retries() > retried).then_some(())
    })
    .await;
    assert!(service.is_running(), "millrace must wait, not die:\n{}", service.log_text());
    assert_eq!(world.maria.exec(&count).trim(), "0");
    let dead: i64 = odoo.query_one("SELECT count(*) FROM millrace.dlq", &[]).await.unwrap().get(0);
    assert_eq!(dead, 0, "an outage is not bad data:\n{}", service.log_text());

    // Back: both directions catch up, nothing lost.
    proxy.restore();
    eventually("MR-OUT-2 in Odoo and WH/MO/00950 in the legacy ERP", &service, || async {
        let item = odoo.query_opt("SELECT 1 FROM product_product WHERE default_code = 'MR-OUT-2'", &[]).await.unwrap();
        let order = world.maria.exec(&count);
        (item.is_some() && order.trim() == "1").then_some(())
    })
    .await;
    let dead: i64 = odoo.query_one("SELECT count(*) FROM millrace.dlq", &[]).await.unwrap().get(0);
    assert_eq!(dead, 0);
    assert_eq!(service.stop().code(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_unit_renamed_in_the_erp_re_emits_the_items_that_use_it() {
    let world = World::new("e2e_reemit", &["item"]).await;
    let service = world.start();
    let odoo = world.odoo.client().await;
    // A unit Odoo has no counterpart of: the item that uses it cannot be written there.
    world.maria.exec(
        "INSERT INTO UOM (UOM_CODE, DESCRIPTION, BASE_UOM, FACTOR) VALUES ('BX', 'Boxes', 'EA', 12);
         INSERT INTO ITEM_MASTER (ITEM_NO, DESCRIPTION, UOM_CODE) VALUES ('MR-BOXED', 'Boxed screws', 'BX')",
    );
    let reason: String = eventually("the item dead-lettered", &service, || async {
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
    eventually("MR-BOXED in Odoo, in dozens", &service, || async {
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
    eventually("the dead letter settled", &service, || async {
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
    let world = World::new("e2e_unmapped", &["item"]).await;
    world.maria.exec(
        "ALTER TABLE ITEM_MASTER ADD COLUMN LEGACY_TOTAL DECIMAL(65, 0) NULL, ADD COLUMN LEGACY_DRAWING LONGBLOB NULL;
         INSERT INTO ITEM_MASTER (ITEM_NO, DESCRIPTION, UOM_CODE, LIST_PRICE, LEGACY_TOTAL, LEGACY_DRAWING)
         VALUES ('MR-WIDE-1', 'Wide row', 'EA', 3, 12345678901234567890123456789012345678901234567890,
                 REPEAT('x', 3000000))",
    );
    let service = world.start();
    let odoo = world.odoo.client().await;
    eventually("MR-WIDE-1 in Odoo", &service, || async { item_name_in_odoo(&odoo, "MR-WIDE-1").await }).await;
    world.maria.exec(
        "UPDATE ITEM_MASTER SET DESCRIPTION = 'Wide row, renamed', LEGACY_TOTAL = -LEGACY_TOTAL
          WHERE ITEM_NO = 'MR-WIDE-1'",
    );
    eventually("the rename in Odoo", &service, || async {
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
