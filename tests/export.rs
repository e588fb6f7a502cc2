//! `millrace export`: whole tables (Odoo by binary COPY, the legacy side through arrow-odbc) and
//! entities through their mappings, read back by pyarrow and DuckDB and compared with the
//! databases.

mod common;

use common::millrace;
use common::parquet::report;
use common::sync::World;

/// `12.500` and `12.5000000000` are the same number.
fn decimal(text: &str) -> String {
    if !text.contains('.') {
        return text.to_string();
    }
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_and_entities_export_to_parquet_that_pyarrow_and_duckdb_read_back() {
    let world = World::new("export", &["item", "production_order"]).await;
    let odoo = world.odoo.client().await;
    let out = world.dir.path().join("out");
    let out_text = out.display().to_string();

    // Odoo tables, by binary COPY.
    let run = millrace(
        &[],
        &[
            "--config",
            &world.config,
            "export",
            "--table",
            "stock_move",
            "--table",
            "mrp_production",
            "--out",
            &out_text,
        ],
    );
    assert!(run.status.success(), "export: {}", String::from_utf8_lossy(&run.stderr));
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("exported odoo table stock_move"), "{stdout}");
    let row = odoo
        .query_one(
            "SELECT count(*), sum(product_uom_qty)::text, count(date), max(id),
                    (SELECT reference FROM stock_move ORDER BY id LIMIT 1)
               FROM stock_move",
            &[],
        )
        .await
        .unwrap();
    let (rows, qty_sum, dated, max_id, first_ref): (i64, String, i64, i32, Option<String>) =
        (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
    assert!(rows > 0, "the fixture has stock moves");
    let moves = report(
        &out.join("stock_move.parquet"),
        &[
            "SELECT sum(product_uom_qty)::VARCHAR FROM {src}",
            "SELECT count(date) FROM {src}",
            "SELECT max(id) FROM {src}",
            "SELECT reference FROM {src} ORDER BY id LIMIT 1",
            "SELECT count(*) FROM {src} WHERE date < TIMESTAMP '2000-01-01' OR date > TIMESTAMP '2100-01-01'",
        ],
    );
    assert_eq!(moves.rows, rows as u64);
    assert_eq!(moves.type_of("id"), "int32");
    assert_eq!(moves.type_of("product_uom_qty"), "decimal128(38, 10)", "numeric stays exact");
    assert_eq!(moves.type_of("date"), "timestamp[us]");
    assert_eq!(moves.type_of("reference"), "string");
    assert_eq!(decimal(moves.scalar(0).as_str().unwrap()), decimal(&qty_sum));
    assert_eq!(moves.scalar(1), dated);
    assert_eq!(moves.scalar(2), max_id);
    assert_eq!(moves.scalar(3).as_str(), first_ref.as_deref());
    assert_eq!(moves.scalar(4), 0, "timestamps are shifted from PostgreSQL's epoch correctly");
    let orders = report(&out.join("mrp_production.parquet"), &[]);
    let n: i64 = odoo.query_one("SELECT count(*) FROM mrp_production", &[]).await.unwrap().get(0);
    assert_eq!(orders.rows, n as u64);
    assert_eq!(orders.type_of("state"), "string");

    // A legacy table through arrow-odbc.
    let run = millrace(
        &[],
        &["--config", &world.config, "export", "--table", "ITEM_MASTER", "--side", "legacy", "--out", &out_text],
    );
    assert!(run.status.success(), "legacy export: {}", String::from_utf8_lossy(&run.stderr));
    let items = report(&out.join("ITEM_MASTER.parquet"), &["SELECT sum(LIST_PRICE)::VARCHAR FROM {src}"]);
    let legacy_count: u64 = world.maria.exec("SELECT COUNT(*) FROM ITEM_MASTER").trim().parse().unwrap();
    let legacy_sum = world.maria.exec("SELECT SUM(LIST_PRICE) FROM ITEM_MASTER");
    assert_eq!(items.rows, legacy_count);
    assert_eq!(decimal(items.scalar(0).as_str().unwrap()), decimal(legacy_sum.trim()));

    // Entities, each from its system of record: items from the ERP, orders from Odoo.
    let run = millrace(
        &[],
        &["--config", &world.config, "export", "--entity", "item", "--entity", "production_order", "--out", &out_text],
    );
    assert!(run.status.success(), "entity export: {}", String::from_utf8_lossy(&run.stderr));
    let item = report(
        &out.join("item.parquet"),
        &["SELECT count(DISTINCT _key) FROM {src}", "SELECT count(*) FROM {src} WHERE uom IS NULL"],
    );
    assert_eq!(item.rows, legacy_count);
    assert_eq!(item.scalar(0), legacy_count, "one row per item");
    assert_eq!(item.scalar(1), 0, "units are looked up by name");
    assert_eq!(item.type_of("list_price"), "decimal128(38, 10)");
    assert_eq!(item.type_of("active"), "bool");
    let released: i64 = odoo
        .query_one(
            "SELECT count(*) FROM mrp_production WHERE state IN ('confirmed', 'progress', 'to_close', 'done', 'cancel')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let order = report(
        &out.join("production_order.parquet"),
        &[
            "SELECT count(*) FROM {src} WHERE status = 'open'",
            "SELECT string_agg(_key || ' ' || order_no, ',' ORDER BY _key) FROM {src}",
        ],
    );
    assert_eq!(order.rows, released as u64, "only the orders the mapping replicates");
    assert_eq!(order.scalar(0), 0);
    // Orders are keyed by their ERP number, made from the Odoo id (MO00000001), not by name.
    let numbers: String = odoo
        .query_one(
            "SELECT string_agg('[\"' || n || '\"] ' || n, ',' ORDER BY n)
               FROM (SELECT 'MO' || lpad(id::text, 8, '0') AS n FROM mrp_production
                      WHERE state IN ('confirmed', 'progress', 'to_close', 'done', 'cancel')) o",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(order.scalar(1).as_str(), Some(numbers.as_str()));
    assert_eq!(order.type_of("start_date"), "timestamp[us, tz=UTC]");

    // A wrong entity name is a usage error naming it.
    let run = millrace(&[], &["--config", &world.config, "export", "--entity", "nope", "--out", &out_text]);
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("\"nope\""), "{}", String::from_utf8_lossy(&run.stderr));
    // No temporary file is left in the output directory.
    for entry in std::fs::read_dir(&out).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(name.ends_with(".parquet") && !name.starts_with('.'), "{name}");
    }
}
