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
    assert_eq!(item.type_of("list_price"), "decimal128(38, 4)", "every column of it rounds to 4 places");
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

/// Values with no exact form in a column's Parquet type (numeric `NaN`, `±Infinity` and digits
/// beyond a decimal's, `±infinity` dates and timestamps, time `24:00:00`) make that column text,
/// each value exactly as PostgreSQL prints it; columns whose values all fit keep their type; a
/// domain is its base type. Nothing is null that was not NULL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_of_edge_values_exports_every_value_exactly() {
    let world = World::new("export_edges", &["item"]).await;
    let odoo = world.odoo.client().await;
    odoo.batch_execute(
        "CREATE DOMAIN millrace_test_qty AS integer CHECK (VALUE >= 0);
         CREATE TABLE millrace_edge_values (
             id int PRIMARY KEY, free numeric, fixed numeric(12, 3), fixed_nan numeric(10, 2), day date,
             moment timestamp, instant timestamptz, clock time, qty millrace_test_qty, list int[], doc jsonb);
         INSERT INTO millrace_edge_values VALUES
          (1, 'NaN', 1.5, 'NaN', 'infinity', '-infinity', '2024-01-02 03:04:05+00', '24:00:00', 5, '{1,2,NULL}', 'null'),
          (2, '1234567890123456789012345678901234567890.5', -2.125, 3.25, '2024-02-29', '2024-02-29 12:00',
              NULL, '12:34:56.789', 0, '{}', NULL),
          (3, '-Infinity', NULL, NULL, '-infinity', 'infinity', '1999-12-31 23:59:59.999999+00', NULL, NULL,
              '{{1,2},{3,4}}', '{\"a\": null}'),
          (4, '0.000000000000000000001', 999999999.999, -0.5, '0001-01-01 BC', '4713-01-01 00:00 BC',
              '2262-04-12 00:00+00', '00:00', 7, NULL, '[1.000000000000000000001]');",
    )
    .await
    .unwrap();
    let out = world.dir.path().join("out");
    let run = millrace(
        &[],
        &["--config", &world.config, "export", "--table", "millrace_edge_values", "--out", &out.display().to_string()],
    );
    assert!(run.status.success(), "export: {}", String::from_utf8_lossy(&run.stderr));
    assert!(String::from_utf8_lossy(&run.stdout).contains("4 rows"), "{}", String::from_utf8_lossy(&run.stdout));

    let text_columns = ["free", "fixed_nan", "day", "moment", "clock", "list", "doc"];
    let file = report(
        &out.join("millrace_edge_values.parquet"),
        &[
            &format!("SELECT id, {} FROM {{src}} ORDER BY id", text_columns.join(", ")),
            "SELECT id, fixed::VARCHAR, qty, epoch_us(instant)::VARCHAR FROM {src} ORDER BY id",
        ],
    );
    assert_eq!(file.rows, 4);
    for column in text_columns {
        assert_eq!(file.type_of(column), "string", "{column} holds values a typed column cannot");
    }
    assert_eq!(file.type_of("fixed"), "decimal128(12, 3)", "every value fits: it stays a decimal");
    assert_eq!(file.type_of("qty"), "int32", "a domain is its base type");
    assert_eq!(file.type_of("instant"), "timestamp[us, tz=UTC]");

    let expected = odoo
        .query(
            &format!(
                "SELECT id, {} FROM millrace_edge_values ORDER BY id",
                text_columns.iter().map(|c| format!("{c}::text")).collect::<Vec<_>>().join(", ")
            ),
            &[],
        )
        .await
        .unwrap();
    for (row, got) in expected.iter().zip(&file.queries[0]) {
        for (i, column) in text_columns.iter().enumerate() {
            let want: Option<String> = row.get(i + 1);
            assert_eq!(got[i + 1].as_str(), want.as_deref(), "row {} column {column}", got[0]);
        }
    }
    let typed = odoo
        .query(
            "SELECT fixed::text, qty, (extract(epoch FROM instant) * 1000000)::bigint::text
               FROM millrace_edge_values ORDER BY id",
            &[],
        )
        .await
        .unwrap();
    for (row, got) in typed.iter().zip(&file.queries[1]) {
        let (fixed, qty, instant): (Option<String>, Option<i32>, Option<String>) = (row.get(0), row.get(1), row.get(2));
        assert_eq!(got[1].as_str(), fixed.as_deref(), "row {} fixed", got[0]);
        assert_eq!(got[2].as_i64(), qty.map(i64::from), "row {} qty", got[0]);
        assert_eq!(got[3].as_str(), instant.as_deref(), "row {} instant", got[0]);
    }
}
