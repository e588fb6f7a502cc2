//! `millrace run` against a real SQL Server through its own protocol (tiberius), when
//! `MILLRACE_TEST_MSSQL` holds an ADO.NET connection string to a scratch database (see
//! tests/legacy_mssql.rs), and a real Odoo (tests/common/odoo.rs) to write into through its API.
//! The legacy tables live in a schema of the test's own, dropped at the end. Without both the
//! test prints SKIPPED and passes: no SQL Server runs on millrace's dev and CI machines.

mod common;

use common::millrace;
use common::odoo::{api_section, server, RealOdoo};
use common::sync::{eventually, Service};
use millrace::erp::mssql::MssqlConnection;
use millrace::model::Value;
use serde_json::json;

const ENV: &str = "MILLRACE_TEST_MSSQL";

fn exec(conn: &mut MssqlConnection, sql: &str) {
    conn.execute_batch(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
}

fn scalar(ado: &str, sql: &str) -> Option<String> {
    let mut conn = MssqlConnection::connect(ado, None).ok()?;
    let mut out = None;
    millrace::erp::LegacyConnection::select(&mut conn, "(test)", sql, &[], &mut |batch| {
        if let Some(millrace::erp::ReadRow::Ok(values)) = batch.rows.first() {
            out = values.first().map(|v| match v {
                Value::Text(s) => s.trim_end().to_string(),
                other => format!("{other:?}"),
            });
        }
        Ok(())
    })
    .ok()?;
    out
}

struct Schema {
    ado: String,
    name: String,
}

impl Drop for Schema {
    fn drop(&mut self) {
        if let Ok(mut conn) = MssqlConnection::connect(&self.ado, None) {
            for table in ["PROD_ORDER", "ITEM_MASTER", "UOM"] {
                let _ = conn.execute_batch(&format!("DROP TABLE IF EXISTS [{}].[{table}]", self.name));
            }
            let _ = conn.execute_batch(&format!("DROP SCHEMA IF EXISTS [{}]", self.name));
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn items_and_orders_flow_through_sql_server() {
    let ado = match std::env::var(ENV) {
        Ok(s) if !s.trim().is_empty() => s,
        _ => {
            eprintln!(
                "SKIPPED items_and_orders_flow_through_sql_server: {ENV} not set; this SQL Server test did not run"
            );
            return;
        }
    };
    let Some(odoo_server) = server("items_and_orders_flow_through_sql_server") else { return };
    let schema = Schema { ado: ado.clone(), name: format!("mr{}", std::process::id()) };
    let s = &schema.name;
    let mut conn = MssqlConnection::connect(&ado, None).expect("connect to SQL Server");
    exec(&mut conn, &format!("CREATE SCHEMA [{s}]"));
    exec(
        &mut conn,
        &format!(
            "CREATE TABLE [{s}].UOM (UOM_CODE CHAR(4) NOT NULL PRIMARY KEY, DESCRIPTION NVARCHAR(30) NOT NULL,
                BASE_UOM CHAR(4) NOT NULL, FACTOR DECIMAL(18,8) NOT NULL DEFAULT 1, STATUS CHAR(1) NOT NULL DEFAULT 'A',
                RV ROWVERSION NOT NULL);
             CREATE TABLE [{s}].ITEM_MASTER (ITEM_NO CHAR(18) NOT NULL PRIMARY KEY, DESCRIPTION NVARCHAR(40) NOT NULL,
                UOM_CODE CHAR(4) NOT NULL, ITEM_TYPE CHAR(1) NOT NULL DEFAULT 'P', LOT_CONTROL CHAR(1) NOT NULL DEFAULT 'N',
                STD_COST DECIMAL(18,4) NOT NULL DEFAULT 0, LIST_PRICE DECIMAL(18,4) NOT NULL DEFAULT 0,
                STATUS CHAR(1) NOT NULL DEFAULT 'A', RV ROWVERSION NOT NULL);
             CREATE TABLE [{s}].PROD_ORDER (ORDER_NO CHAR(12) NOT NULL PRIMARY KEY, ITEM_NO CHAR(18) NOT NULL,
                BOM_ALT CHAR(2) NOT NULL DEFAULT '01', QTY_ORDERED DECIMAL(18,4) NOT NULL,
                QTY_COMPLETED DECIMAL(18,4) NOT NULL DEFAULT 0, QTY_SCRAPPED DECIMAL(18,4) NOT NULL DEFAULT 0,
                UOM_CODE CHAR(4) NOT NULL, STATUS CHAR(1) NOT NULL DEFAULT 'O', START_DATE DATETIME2(0) NULL,
                DUE_DATE DATETIME2(0) NULL, WC_CODE CHAR(6) NOT NULL DEFAULT '', LOT_NO CHAR(20) NOT NULL DEFAULT '',
                RV ROWVERSION NOT NULL);
             INSERT INTO [{s}].UOM (UOM_CODE, DESCRIPTION, BASE_UOM) VALUES ('EA', 'Units', 'EA');"
        ),
    );

    let real = RealOdoo::create(&odoo_server, "mssql").await;
    let odoo = &real.db;
    let dir = tempfile::tempdir().expect("temp dir");
    let (api, _) = api_section(&odoo_server, &real, dir.path()).await;
    std::fs::create_dir(dir.path().join("mappings")).expect("mapping dir");
    for m in ["item", "production_order"] {
        let text =
            std::fs::read_to_string(format!("{}/mappings/{m}.toml", env!("CARGO_MANIFEST_DIR"))).expect("mapping");
        let text = text
            .replace("table = \"ITEM_MASTER\"", &format!("table = \"{s}.ITEM_MASTER\""))
            .replace("table = \"PROD_ORDER\"", &format!("table = \"{s}.PROD_ORDER\""))
            .replace("table = \"UOM\"", &format!("table = \"{s}.UOM\""))
            .replace("strategy = \"timestamp\"\ncolumn = \"LAST_UPD\"", "strategy = \"rowversion\"\ncolumn = \"RV\"");
        std::fs::write(dir.path().join("mappings").join(format!("{m}.toml")), text).expect("write mapping");
    }
    let config = dir.path().join("millrace.toml");
    std::fs::write(
        &config,
        format!(
            "[odoo]\nurl = \"{}?sslmode=disable\"\nslot = \"{}\"\npublication = \"millrace_pub\"\n\n\
             [legacy]\nkind = \"mssql\"\nconnection_string = \"{}\"\npoll_interval = \"300ms\"\n\n[sync]\nretry_interval = \"500ms\"\n{api}",
            odoo.url,
            odoo.slot(),
            ado.replace('"', "\\\"")
        ),
    )
    .expect("config");
    let config = config.display().to_string();
    let out = millrace(&[], &["--config", &config, "setup"]);
    assert!(out.status.success(), "setup: {}", String::from_utf8_lossy(&out.stderr));
    let service = Service::start(&config, dir.path());
    let pg = odoo.client().await;

    exec(
        &mut conn,
        &format!(
            "INSERT INTO [{s}].ITEM_MASTER (ITEM_NO, DESCRIPTION, UOM_CODE) VALUES ('MR-SQL-1', N'Through TDS', 'EA')"
        ),
    );
    eventually("MR-SQL-1 in Odoo", &service, || async {
        pg.query_opt("SELECT 1 FROM product_product WHERE default_code = 'MR-SQL-1'", &[]).await.unwrap()
    })
    .await;
    // Odoo → SQL Server: an archive (UPDATE) and a confirmed order (MERGE), made through Odoo.
    let rpc = &real.rpc;
    let product = rpc.search("product.product", json!([["default_code", "=", "MR-SQL-1"]])).await[0];
    rpc.write("product.product", &[product], json!({"active": false})).await;
    let order_id = rpc.confirmed_order(product, 2.0).await;
    let order_no = format!("MO{order_id:08}");
    eventually("the archive and the order in SQL Server", &service, || async {
        let status = scalar(&ado, &format!("SELECT STATUS FROM [{s}].ITEM_MASTER WHERE ITEM_NO = 'MR-SQL-1'"));
        let order = scalar(&ado, &format!("SELECT ITEM_NO FROM [{s}].PROD_ORDER WHERE ORDER_NO = '{order_no}'"));
        (status.as_deref() == Some("I") && order.as_deref() == Some("MR-SQL-1")).then_some(())
    })
    .await;
    // Markers on both polled tables, written after those writes: the polls read each table in
    // rowversion order, so once the markers are decided (a rename that reaches Odoo; an order
    // made in SQL Server, a conflict, as Odoo makes the orders), so are the writes' echoes.
    exec(
        &mut conn,
        &format!(
            "UPDATE [{s}].ITEM_MASTER SET DESCRIPTION = N'Renamed in SQL Server' WHERE ITEM_NO = 'MR-SQL-1';
             INSERT INTO [{s}].PROD_ORDER (ORDER_NO, ITEM_NO, QTY_ORDERED, UOM_CODE, STATUS)
             VALUES ('MO99999901', 'MR-SQL-1', 1, 'EA', 'R');"
        ),
    );
    eventually(
        "the markers decided: the rename in Odoo, the order made in SQL Server a conflict",
        &service,
        || async {
            let renamed = pg
                .query_opt(
                    "SELECT 1 FROM product_product p JOIN product_template t ON t.id = p.product_tmpl_id
                  WHERE p.default_code = 'MR-SQL-1' AND t.name->>'en_US' = 'Renamed in SQL Server'",
                    &[],
                )
                .await
                .unwrap();
            let conflict = pg
                .query_opt(
                    "SELECT 1 FROM millrace.conflict WHERE entity = 'production_order' AND key = '[\"MO99999901\"]'",
                    &[],
                )
                .await
                .unwrap();
            (renamed.is_some() && conflict.is_some()).then_some(())
        },
    )
    .await;
    let dead: i64 = pg.query_one("SELECT count(*) FROM millrace.dlq", &[]).await.unwrap().get(0);
    assert_eq!(dead, 0, "{}", service.log_text());
    assert_eq!(service.stop().code(), Some(0));
}
