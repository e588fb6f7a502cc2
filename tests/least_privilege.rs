//! millrace with the least privileges: the accounts the dev environment makes hold nothing but
//! what `millrace setup --print-sql` prints for the configured tables (run by an administrator),
//! and with that alone setup, check, backfill, both directions of `run`, the archive and a
//! dead-letter retry work; `check` names a missing right and warns of rights beyond need.
//! Against the real Odoo (SKIPPED without it).

mod common;

use common::least_privilege::LeastPrivileged;
use common::millrace;
use common::odoo::{wait_for, RealWorld};
use common::parquet::report;
use common::sync::settled;
use serde_json::json;

/// Desk Combination (FURN_7800 in both systems).
const DESK: i64 = 8;

fn check(config: &str) -> (bool, String) {
    let out = millrace(&[], &["--config", config, "check"]);
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn millrace_needs_only_the_rights_setup_prints() {
    let Some(lp) =
        LeastPrivileged::new("millrace_needs_only_the_rights_setup_prints", &["item", "production_order"]).await
    else {
        return;
    };
    let world = &lp.world;
    let admin = world.odoo.db.client().await;
    let user = common::env_path("MILLRACE_TEST_SERVICE_USER");

    // The grants printed are per table and read-only on Odoo.
    let odoo_sql = lp.printed("odoo");
    assert!(odoo_sql.contains(&format!("GRANT SELECT ON \"public\".\"mrp_production\" TO \"{user}\";")), "{odoo_sql}");
    assert!(!odoo_sql.contains("INSERT") && !odoo_sql.contains("UPDATE"), "no write right on Odoo: {odoo_sql}");
    let erp_sql = lp.printed("erp");
    let db = &world.maria.name;
    assert!(
        erp_sql.contains(&format!("GRANT SELECT, INSERT, UPDATE, DELETE ON `{db}`.`PROD_ORDER` TO '{user}'@'%';")),
        "{erp_sql}"
    );
    assert!(erp_sql.contains(&format!("GRANT SELECT ON `{db}`.`UOM` TO '{user}'@'%';")), "{erp_sql}");
    // Items belong to the ERP: an Odoo delete of one is a conflict, never a DELETE there.
    assert!(
        erp_sql.contains(&format!("GRANT SELECT, INSERT, UPDATE ON `{db}`.`ITEM_MASTER` TO '{user}'@'%';")),
        "{erp_sql}"
    );

    // check: nothing missing, nothing beyond need; the superuser and the all-databases account
    // of the admin's config are both named.
    let (ok, text) = check(&lp.config);
    assert!(ok, "{text}");
    for beyond in ["superuser", "may write", "global privileges", "lacks", "owns"] {
        assert!(!text.contains(beyond), "{beyond:?} in the least-privileged check: {text}");
    }
    let (_, text) = check(&world.config);
    assert!(text.contains("is a superuser"), "{text}");
    assert!(text.contains("holds global privileges"), "{text}");

    // A right taken away is named, with the GRANT that gives it back.
    admin.batch_execute(&format!("REVOKE SELECT ON public.mrp_production FROM {user}")).await.unwrap();
    world.maria.exec(&format!("REVOKE INSERT ON `{db}`.`PROD_ORDER` FROM '{user}'@'%'"));
    world.maria.exec(&format!("GRANT DELETE ON `{db}`.`UOM` TO '{user}'@'%'"));
    let (ok, text) = check(&lp.config);
    assert!(!ok, "{text}");
    assert!(text.contains(&format!("role {user} lacks SELECT on table public.mrp_production")), "{text}");
    assert!(text.contains(&format!("GRANT SELECT ON \"public\".\"mrp_production\" TO \"{user}\";")), "{text}");
    assert!(text.contains("lacks INSERT on table PROD_ORDER"), "{text}");
    assert!(text.contains(&format!("may DELETE table {}.uom", db.to_lowercase())), "{text}");
    world.maria.exec(&format!("REVOKE DELETE ON `{db}`.`UOM` FROM '{user}'@'%'"));
    lp.grant().await;
    let (ok, text) = check(&lp.config);
    assert!(ok, "{text}");

    // Backfill, both directions: an ERP item into Odoo (through its API), an order confirmed in
    // Odoo into the ERP. (Backfill makes the slot at its snapshot.)
    admin.execute("SELECT pg_drop_replication_slot($1)", &[&world.odoo.db.slot()]).await.unwrap();
    world.forget_erp_only_orders().await;
    let rpc = world.rpc();
    let backfilled_order = rpc.confirmed_order(DESK, 2.0).await;
    world.maria.exec(
        "INSERT INTO ITEM_MASTER (ITEM_NO, DESCRIPTION, UOM_CODE, LIST_PRICE) VALUES ('MR-LP-BF', 'Backfilled bolt', 'EA', 1)",
    );
    let out = millrace(&[], &["--config", &lp.config, "backfill"]);
    assert!(
        out.status.success(),
        "backfill as the service role: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let bf = admin.query_opt("SELECT 1 FROM product_product WHERE default_code = 'MR-LP-BF'", &[]).await.unwrap();
    assert!(bf.is_some(), "the backfilled item is in Odoo");
    let order_no = RealWorld::erp_order_no(backfilled_order);
    assert_eq!(
        world.maria.exec(&format!("SELECT QTY_ORDERED FROM PROD_ORDER WHERE ORDER_NO = '{order_no}'")),
        "2.0000\n"
    );

    // run: both directions, and a dead letter retried.
    let service = lp.start();
    world.maria.exec(
        "INSERT INTO ITEM_MASTER (ITEM_NO, DESCRIPTION, UOM_CODE, LIST_PRICE) VALUES
            ('MR-LP-RUN', 'Bolt M10', 'EA', 0.3), ('MR-LP-CRT', 'Crate of bolts', 'CRT', 1)",
    );
    let order = RealWorld::erp_order_no(rpc.confirmed_order(DESK, 3.0).await);
    wait_for("MR-LP-RUN in Odoo and the order in the ERP", &service, 90, || async {
        let item =
            admin.query_opt("SELECT 1 FROM product_product WHERE default_code = 'MR-LP-RUN'", &[]).await.unwrap();
        let rows = world.maria.exec(&format!("SELECT COUNT(*) FROM PROD_ORDER WHERE ORDER_NO = '{order}'"));
        (item.is_some() && rows.trim() == "1").then_some(())
    })
    .await;
    let letter: i64 = wait_for("the dead letter of MR-LP-CRT", &service, 60, || async {
        admin
            .query_opt("SELECT id FROM millrace.dlq WHERE key = '[\"MR-LP-CRT\"]' AND status = 'open'", &[])
            .await
            .unwrap()
            .map(|r| r.get(0))
    })
    .await;
    world.maria.exec("INSERT INTO UOM (UOM_CODE, DESCRIPTION, BASE_UOM, FACTOR) VALUES ('CRT', 'Dozens', 'EA', 12)");
    let out = millrace(&[], &["--config", &lp.config, "dlq", "retry", &letter.to_string()]);
    assert!(out.status.success(), "dlq retry: {}", String::from_utf8_lossy(&out.stderr));
    let status: String = settled(&"resolved".to_string(), || async {
        admin.query_one("SELECT status FROM millrace.dlq WHERE id = $1", &[&letter]).await.unwrap().get(0)
    })
    .await;
    assert_eq!(status, "resolved");
    let crate_item =
        admin.query_opt("SELECT 1 FROM product_product WHERE default_code = 'MR-LP-CRT'", &[]).await.unwrap();
    assert!(crate_item.is_some(), "the retried item is in Odoo");
    // A rename of an Odoo product's ERP-owned name is recorded, not applied (ownership works).
    let run_id = rpc.search("product.product", json!([["default_code", "=", "MR-LP-RUN"]])).await[0];
    rpc.write("product.product", &[run_id], json!({"name": "Renamed in Odoo"})).await;
    wait_for("the rename's conflict", &service, 60, || async {
        admin.query_opt("SELECT 1 FROM millrace.conflict WHERE key = '[\"MR-LP-RUN\"]'", &[]).await.unwrap()
    })
    .await;
    let log = service.log_text();
    assert_eq!(service.stop().code(), Some(0));
    assert!(!log.contains("permission denied"), "{log}");

    // The archive, written by the service role's process.
    let archived = report(
        &world.dir.path().join("archive").join("entity=item"),
        &["SELECT count(*) FROM {src} WHERE _key LIKE '%MR-LP-RUN%' AND _decision = 'apply'"],
    );
    assert!(archived.scalar(0).as_u64().unwrap_or(0) >= 1, "MR-LP-RUN's apply is archived");
}
