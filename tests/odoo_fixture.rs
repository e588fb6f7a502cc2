//! Against a real Odoo 17 schema and its demo data (sql/odoo17): Odoo's own writes stream out
//! with Odoo's types intact (jsonb translations, unscaled numeric quantities, naive UTC
//! timestamps).

mod common;

use common::{setup, tail, TestDb};

fn load_fixture(db: &TestDb) {
    let root = env!("CARGO_MANIFEST_DIR");
    for file in ["odoo17-mfg-schema.sql", "odoo17-mfg-demo-data.sql"] {
        let out = std::process::Command::new("psql")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &db.url, "-f"])
            .arg(format!("{root}/sql/odoo17/{file}"))
            .output()
            .expect("run psql");
        assert!(out.status.success(), "loading {file}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn odoo_writes_to_products_and_manufacturing_orders_stream_with_their_types() {
    let db = TestDb::create("odoo17").await;
    load_fixture(&db);
    let env = db.millrace_env(&["public.product_template", "public.mrp_production", "public.stock_move"]);
    setup(&env);
    let c = db.client().await;
    let mo_id: i32 = c.query_one("SELECT min(id) FROM mrp_production", &[]).await.unwrap().get(0);
    let component_moves: i64 = c
        .query_one("SELECT count(*) FROM stock_move WHERE raw_material_production_id = $1", &[&mo_id])
        .await
        .unwrap()
        .get(0);
    assert!(component_moves > 0, "the fixture's first MO has component moves");
    c.batch_execute(&format!(
        "UPDATE product_template SET name = jsonb_set(name, '{{en_US}}', '\"Table Top (oak)\"')
          WHERE id = (SELECT product_tmpl_id FROM product_product WHERE id = (SELECT product_id FROM mrp_production WHERE id = {mo_id}));
         UPDATE mrp_production SET state = 'progress', qty_producing = 2.5, date_start = '2024-03-01 07:30:00' WHERE id = {mo_id};
         DELETE FROM stock_move WHERE raw_material_production_id = {mo_id};"
    ))
    .await
    .unwrap();

    let records = tail(&env, &[]);
    let template = records.iter().find(|r| r["source"]["table"] == "product_template").expect("template update");
    assert_eq!(template["op"], "u");
    // jsonb arrives as the text of its JSON (Debezium's form), so JSON null and SQL NULL differ.
    let name: serde_json::Value =
        serde_json::from_str(template["after"]["name"].as_str().expect("jsonb as JSON text")).expect("valid JSON");
    assert_eq!(name["en_US"], "Table Top (oak)", "jsonb translations arrive as their JSON");

    let mo = records.iter().find(|r| r["source"]["table"] == "mrp_production").expect("production update");
    assert_eq!(mo["after"]["id"], mo_id);
    assert_eq!(mo["after"]["state"], "progress");
    assert_eq!(mo["after"]["qty_producing"], "2.5", "unscaled numeric stays exact");
    assert_eq!(mo["after"]["date_start"], "2024-03-01T07:30:00");
    assert!(mo["after"]["product_qty"].is_string());
    assert!(mo["after"]["name"].as_str().unwrap().contains("MO"), "{}", mo["after"]["name"]);

    let deletes: Vec<_> = records.iter().filter(|r| r["op"] == "d").collect();
    assert_eq!(deletes.len() as i64, component_moves, "one delete per component move");
    for d in deletes {
        assert_eq!(d["source"]["table"], "stock_move");
        assert!(d["before"]["id"].is_i64(), "deletes carry the primary key");
    }
}
