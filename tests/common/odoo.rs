//! A real Odoo 17 server for tests (`scripts/dev-env.sh` installs and serves it when the server
//! tarball is there): each test copies the template database and drives Odoo the way its users
//! do, through the ORM over JSON-RPC — create, confirm, produce, mark done through the wizards,
//! validate transfers, scrap. Never by writing Odoo's tables with SQL.
//!
//! Without the server (`MILLRACE_TEST_ODOO_RPC` unset: a clone without `../shared`), the tests
//! that need it print SKIPPED and pass.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};

use super::TestDb;

/// The real Odoo's settings from `.dev/env`, or `None` (and a SKIPPED line) without one.
pub fn server(test: &str) -> Option<OdooServer> {
    let get = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match (
        get("MILLRACE_TEST_ODOO_RPC"),
        get("MILLRACE_TEST_ODOO_PG_URL"),
        get("MILLRACE_TEST_ODOO_TEMPLATE"),
        get("MILLRACE_TEST_ODOO_LOGIN"),
        get("MILLRACE_TEST_ODOO_PASSWORD"),
    ) {
        (Some(rpc), Some(pg_url), Some(template), Some(login), Some(password)) => {
            Some(OdooServer { rpc, pg_url, template, login, password })
        }
        _ => {
            println!(
                "SKIPPED {test}: no real Odoo server (MILLRACE_TEST_ODOO_RPC is not set: scripts/dev-env.sh \
                 installs one when ../shared/odoo17/odoo17-server.tar.xz or MILLRACE_ODOO_SERVER_TARBALL is there)"
            );
            None
        }
    }
}

#[derive(Debug, Clone)]
pub struct OdooServer {
    pub rpc: String,
    pub pg_url: String,
    pub template: String,
    pub login: String,
    pub password: String,
}

/// A database of its own copied from the template, and a logged-in JSON-RPC session on it.
pub struct RealOdoo {
    pub db: TestDb,
    pub rpc: Rpc,
}

impl RealOdoo {
    pub async fn create(server: &OdooServer, prefix: &str) -> RealOdoo {
        let db = TestDb::from_template(prefix, &server.pg_url, &server.template).await;
        let rpc = Rpc::login(server, &db.name).await;
        RealOdoo { db, rpc }
    }
}

/// Odoo's external API: `/jsonrpc`, service `object`, `execute_kw`.
pub struct Rpc {
    url: String,
    db: String,
    uid: i64,
    password: String,
    http: reqwest::Client,
}

impl Rpc {
    pub async fn login(server: &OdooServer, db: &str) -> Rpc {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(120)).build().expect("HTTP client");
        let url = format!("{}/jsonrpc", server.rpc.trim_end_matches('/'));
        let mut rpc = Rpc { url, db: db.to_string(), uid: 0, password: server.password.clone(), http };
        let uid = rpc
            .call("common", "login", json!([db, server.login, server.password]))
            .await
            .unwrap_or_else(|e| panic!("logging in to Odoo database {db}: {e}"));
        rpc.uid = uid.as_i64().unwrap_or_else(|| panic!("Odoo login to {db} refused: {uid}"));
        rpc
    }

    async fn call(&self, service: &str, method: &str, args: Value) -> Result<Value, String> {
        let body = json!({"jsonrpc": "2.0", "method": "call", "id": 1,
                          "params": {"service": service, "method": method, "args": args}});
        let response =
            self.http.post(&self.url).json(&body).send().await.map_err(|e| format!("POST {}: {e}", self.url))?;
        let reply: Value = response.json().await.map_err(|e| format!("reading Odoo's reply: {e}"))?;
        match reply.get("error") {
            Some(error) => Err(format!(
                "{}: {}",
                error["data"]["name"].as_str().unwrap_or("error"),
                error["data"]["message"].as_str().unwrap_or(&error.to_string())
            )),
            None => Ok(reply["result"].clone()),
        }
    }

    /// `execute_kw(model, method, args, kwargs)`, Odoo's refusal as `Err` with its message.
    pub async fn try_execute(&self, model: &str, method: &str, args: Value, kwargs: Value) -> Result<Value, String> {
        self.call("object", "execute_kw", json!([self.db, self.uid, self.password, model, method, args, kwargs])).await
    }

    pub async fn execute(&self, model: &str, method: &str, args: Value, kwargs: Value) -> Value {
        self.try_execute(model, method, args.clone(), kwargs.clone())
            .await
            .unwrap_or_else(|e| panic!("{model}.{method}({args}, {kwargs}): {e}"))
    }

    pub async fn create(&self, model: &str, values: Value) -> i64 {
        let id = self.execute(model, "create", json!([values]), json!({})).await;
        id.as_i64().or_else(|| id.get(0).and_then(Value::as_i64)).unwrap_or_else(|| panic!("{model}.create: {id}"))
    }

    pub async fn write(&self, model: &str, ids: &[i64], values: Value) {
        self.execute(model, "write", json!([ids, values]), json!({})).await;
    }

    pub async fn search_read(&self, model: &str, domain: Value, fields: &[&str]) -> Vec<Value> {
        let rows = self.execute(model, "search_read", json!([domain]), json!({"fields": fields})).await;
        rows.as_array().cloned().unwrap_or_default()
    }

    pub async fn search(&self, model: &str, domain: Value) -> Vec<i64> {
        let ids = self.execute(model, "search", json!([domain]), json!({})).await;
        ids.as_array().map(|a| a.iter().filter_map(Value::as_i64).collect()).unwrap_or_default()
    }

    /// The id of the record with this external id (`stock.warehouse0`).
    pub async fn ref_id(&self, xml_id: &str) -> i64 {
        let (module, name) = xml_id.split_once('.').expect("module.name");
        let rows =
            self.search_read("ir.model.data", json!([["module", "=", module], ["name", "=", name]]), &["res_id"]).await;
        rows.first().and_then(|r| r["res_id"].as_i64()).unwrap_or_else(|| panic!("no record {xml_id}"))
    }

    /// Marks a manufacturing order done as a user does ("Produce All" when nothing is set as
    /// producing), through whichever wizards Odoo opens: the consumption warning (confirmed),
    /// the backorder question (`backorder`: create one for the rest, or close the order).
    pub async fn mark_done(&self, production: i64, backorder: bool) {
        let result = self.execute("mrp.production", "button_mark_done", json!([[production]]), json!({})).await;
        self.through_wizards(&format!("mark done of manufacturing order {production}"), result, |model| match model {
            "mrp.production.backorder" if backorder => Some("action_backorder"),
            "mrp.production.backorder" => Some("action_close_mo"),
            "mrp.consumption.warning" => Some("action_confirm"),
            _ => None,
        })
        .await;
    }

    /// Validates a transfer (receipt, delivery) for the quantities set on its moves, through the
    /// backorder question (`backorder`: keep the rest as a backorder, or not).
    pub async fn validate_picking(&self, picking: i64, backorder: bool) {
        let result = self.execute("stock.picking", "button_validate", json!([[picking]]), json!({})).await;
        self.through_wizards(&format!("validating transfer {picking}"), result, |model| match model {
            "stock.backorder.confirmation" if backorder => Some("process"),
            "stock.backorder.confirmation" => Some("process_cancel_backorder"),
            // The delivery's text message to the customer (stock_sms): not sent from a test.
            "confirm.stock.sms" => Some("dont_send_sms"),
            _ => None,
        })
        .await;
    }

    /// A manufacturing order created and confirmed through the API, as a script or an
    /// integration does (no form: its quantity producing stays empty).
    pub async fn confirmed_order(&self, product: i64, qty: f64) -> i64 {
        let id = self.create("mrp.production", json!({"product_id": product, "product_qty": qty})).await;
        self.execute("mrp.production", "action_confirm", json!([[id]]), json!({})).await;
        id
    }

    /// Records `qty` as being produced, as the form does: the components to consume follow.
    pub async fn produce(&self, production: i64, qty: f64) {
        self.write("mrp.production", &[production], json!({"qty_producing": qty})).await;
        self.execute("mrp.production", "set_qty_producing", json!([[production]]), json!({})).await;
    }

    /// A purchase of `qty` of `product` confirmed and its receipt validated: the picking's id.
    pub async fn receive(&self, partner: i64, product: i64, qty: f64) -> i64 {
        let order = self
            .create(
                "purchase.order",
                json!({"partner_id": partner, "order_line": [[0, 0, {"product_id": product, "product_qty": qty, "price_unit": 10}]]}),
            )
            .await;
        self.execute("purchase.order", "button_confirm", json!([[order]]), json!({})).await;
        let picking = self.picking_of("purchase.order", order).await;
        self.validate_picking(picking, false).await;
        picking
    }

    /// A sale of `qty` of `product` confirmed and its delivery validated: the picking's id.
    pub async fn deliver(&self, partner: i64, product: i64, qty: f64) -> i64 {
        let order = self
            .create(
                "sale.order",
                json!({"partner_id": partner, "order_line": [[0, 0, {"product_id": product, "product_uom_qty": qty}]]}),
            )
            .await;
        self.execute("sale.order", "action_confirm", json!([[order]]), json!({})).await;
        let picking = self.picking_of("sale.order", order).await;
        self.validate_picking(picking, false).await;
        picking
    }

    async fn picking_of(&self, model: &str, order: i64) -> i64 {
        let rows = self.execute(model, "read", json!([[order]]), json!({"fields": ["picking_ids"]})).await;
        rows[0]["picking_ids"][0].as_i64().unwrap_or_else(|| panic!("{model} {order} has no transfer: {rows}"))
    }

    /// Scraps `qty` of `product` from the main stock.
    pub async fn scrap(&self, product: i64, qty: f64) -> i64 {
        let id = self.create("stock.scrap", json!({"product_id": product, "scrap_qty": qty})).await;
        self.execute("stock.scrap", "action_validate", json!([[id]]), json!({})).await;
        id
    }

    /// Counts `product` at `location` as `qty` and applies the count (an inventory adjustment).
    pub async fn count_stock(&self, product: i64, location: i64, qty: f64) {
        let quant = self
            .execute(
                "stock.quant",
                "create",
                json!([{"product_id": product, "location_id": location, "inventory_quantity": qty}]),
                json!({"context": {"inventory_mode": true}}),
            )
            .await;
        let quant = quant.as_i64().or_else(|| quant.get(0).and_then(Value::as_i64)).expect("quant id");
        self.execute("stock.quant", "action_apply_inventory", json!([[quant]]), json!({})).await;
    }

    /// Follows the wizards an action returns: each is created with the action's context (its
    /// defaults fill it as the form would) and the button `choose` names is pressed.
    async fn through_wizards(&self, what: &str, mut result: Value, choose: impl Fn(&str) -> Option<&'static str>) {
        for _ in 0..4 {
            let Some(model) = result.get("res_model").and_then(Value::as_str).map(str::to_string) else { return };
            let existing = result.get("res_id").and_then(Value::as_i64);
            let Some(button) = choose(&model) else {
                // A form of a record (the new backorder, say), not a question: done.
                if existing.is_some() {
                    return;
                }
                panic!("{what}: unexpected wizard {model}: {result}")
            };
            let context = result.get("context").cloned().filter(Value::is_object).unwrap_or(json!({}));
            let id = match existing {
                Some(id) => id,
                None => {
                    let id = self.execute(&model, "create", json!([{}]), json!({"context": context})).await;
                    id.as_i64().or_else(|| id.get(0).and_then(Value::as_i64)).expect("wizard id")
                }
            };
            result = self.execute(&model, button, json!([[id]]), json!({"context": context})).await;
        }
        panic!("{what}: still asked for a wizard: {result}");
    }
}

/// A real Odoo database, the demo legacy ERP, millrace's integration user in Odoo, and a config
/// with the given mappings that writes into Odoo through its API as that user, `millrace setup`
/// done (as [`super::sync::World`] does for the SQL fixture).
pub struct RealWorld {
    pub odoo: RealOdoo,
    pub maria: super::legacy::MariaDb,
    pub dir: tempfile::TempDir,
    pub config: String,
    /// The integration user's id in Odoo (`create_uid`/`write_uid` of millrace's writes).
    pub integration_uid: i64,
}

/// The integration user's login and password (its API key, as far as millrace knows).
const INTEGRATION_LOGIN: &str = "millrace";
const INTEGRATION_PASSWORD: &str = "integration-secret-7Q";

impl RealWorld {
    /// `None` (after a SKIPPED line) when no real Odoo is configured.
    pub async fn new(test: &str, mappings: &[&str]) -> Option<RealWorld> {
        let server = server(test)?;
        let odoo = RealOdoo::create(&server, "ro").await;
        let maria = super::legacy::MariaDb::create("ro");
        super::sync::load_legacy_demo(&maria);
        let dir = tempfile::tempdir().expect("temp dir");
        let (api, integration_uid) = api_section(&server, &odoo, dir.path()).await;
        let extra =
            format!("\n[archive]\ndir = \"{}\"\nrotate_after = \"1s\"\n{api}", dir.path().join("archive").display());
        let config = super::sync::configure(dir.path(), &odoo.db, &maria.odbc(), mappings, &extra);
        Some(RealWorld { odoo, maria, dir, config, integration_uid })
    }

    pub fn start(&self) -> super::sync::Service {
        super::sync::Service::start(&self.config, self.dir.path())
    }

    pub fn rpc(&self) -> &Rpc {
        &self.odoo.rpc
    }

    /// The ERP's number of an Odoo manufacturing order (production_order's key).
    pub fn erp_order_no(id: i64) -> String {
        format!("MO{id:08}")
    }

    /// The demo ERP's orders that Odoo's template does not have (numbered past its orders' ids,
    /// as the fixture's seventh): gone, so that an order made in Odoo here takes its ERP number
    /// cleanly.
    pub async fn forget_erp_only_orders(&self) {
        let odoo = self.odoo.db.client().await;
        let numbers: Vec<String> = odoo
            .query("SELECT id::bigint FROM mrp_production", &[])
            .await
            .expect("read mrp_production")
            .iter()
            .map(|r| format!("'{}'", Self::erp_order_no(r.get(0))))
            .collect();
        assert!(!numbers.is_empty(), "the template has manufacturing orders");
        self.maria.exec(&format!("DELETE FROM PROD_ORDER WHERE ORDER_NO NOT IN ({})", numbers.join(", ")));
    }

    /// Rewrites the config's `[archive]` section (its directory stays `<world dir>/archive`) with
    /// `settings`, rather than adding a second one.
    pub fn set_archive(&self, settings: &str) {
        let config = std::fs::read_to_string(&self.config).expect("read config");
        let header = "\n[archive]\n";
        let start = config.find(header).expect("RealWorld's config has an [archive] section");
        let end = config[start + header.len()..].find("\n[").map_or(config.len(), |i| start + header.len() + i);
        let section = format!("{header}dir = \"{}\"\n{settings}", self.dir.path().join("archive").display());
        std::fs::write(&self.config, format!("{}{section}{}", &config[..start], &config[end..])).expect("write config");
    }

    /// The open dead letters (and those marked for retry), as `key: reason` lines.
    pub async fn open_dead_letters(&self) -> Vec<String> {
        let state = self.odoo.db.client().await;
        state
            .query("SELECT key || ': ' || reason FROM millrace.dlq WHERE status IN ('open', 'retry') ORDER BY id", &[])
            .await
            .expect("read the dead letters")
            .iter()
            .map(|r| r.get(0))
            .collect()
    }
}

/// Millrace's integration user created in `odoo` (its key in a file under `dir`), and the
/// `[odoo.api]` section of a config that writes as it; the user's id.
pub async fn api_section(server: &OdooServer, odoo: &RealOdoo, dir: &std::path::Path) -> (String, i64) {
    let uid = integration_user(&odoo.rpc).await;
    let key_file = dir.join("odoo-api-key");
    std::fs::write(&key_file, format!("{INTEGRATION_PASSWORD}\n")).expect("key file");
    let section = format!(
        "\n[odoo.api]\nurl = \"{}\"\ndatabase = \"{}\"\nlogin = \"{INTEGRATION_LOGIN}\"\nkey_file = \"{}\"\n\
         # A call longer than this is taken as lost; a create sent before a kill is looked for again\n\
         # for this long (and a margin) before it is made again.\ntimeout = \"30s\"\n",
        server.rpc,
        odoo.db.name,
        key_file.display()
    );
    (section, uid)
}

/// Creates millrace's integration user as the admin would: inventory, manufacturing, sales,
/// purchase and lot rights, and an email address (Odoo posts a chatter message as the user when
/// it makes a backorder). Its id.
async fn integration_user(rpc: &Rpc) -> i64 {
    let mut groups = Vec::new();
    for xml_id in [
        "base.group_user",
        "stock.group_stock_manager",
        "mrp.group_mrp_manager",
        "sales_team.group_sale_manager",
        "purchase.group_purchase_manager",
        "uom.group_uom",
        "stock.group_production_lot",
    ] {
        groups.push(rpc.ref_id(xml_id).await);
    }
    rpc.create(
        "res.users",
        json!({"name": "millrace integration", "login": INTEGRATION_LOGIN, "password": INTEGRATION_PASSWORD,
               "email": "millrace@example.com", "groups_id": [[6, 0, groups]]}),
    )
    .await
}

/// Polls `check` until it returns `Some` (up to `seconds`), or fails with the service's log.
pub async fn wait_for<T, F, Fut>(what: &str, service: &super::sync::Service, seconds: u64, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}; service log:\n{}",
            service.log_text()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// PROD_ORDER as `ORDER_NO → "STATUS|QTY_ORDERED|QTY_COMPLETED"` (quantities without trailing
/// zeros).
pub fn erp_orders(world: &RealWorld) -> BTreeMap<String, String> {
    world
        .maria
        .exec(
            "SELECT ORDER_NO, CONCAT_WS('|', STATUS, TRIM(TRAILING '.' FROM TRIM(TRAILING '0' FROM QTY_ORDERED)),
                    TRIM(TRAILING '.' FROM TRIM(TRAILING '0' FROM QTY_COMPLETED))) FROM PROD_ORDER",
        )
        .lines()
        .filter_map(|l| l.split_once('\t').map(|(k, v)| (k.trim().to_string(), v.to_string())))
        .collect()
}

/// Odoo's manufacturing orders with ids from `first`, as the ERP should show them: ERP number →
/// "STATUS|QTY_ORDERED|QTY_COMPLETED", read through the ORM.
pub async fn odoo_orders(world: &RealWorld, first: i64) -> BTreeMap<String, String> {
    let rows = world
        .rpc()
        .search_read("mrp.production", json!([["id", ">=", first]]), &["state", "product_qty", "qty_producing"])
        .await;
    let number = |v: &serde_json::Value| {
        let text = format!("{:.4}", v.as_f64().unwrap_or(0.0));
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    };
    rows.iter()
        .map(|r| {
            let status = match r["state"].as_str().unwrap_or("") {
                "draft" => "O",
                "confirmed" | "progress" | "to_close" => "R",
                "done" => "C",
                _ => "X",
            };
            (
                RealWorld::erp_order_no(r["id"].as_i64().unwrap_or(0)),
                format!("{status}|{}|{}", number(&r["product_qty"]), number(&r["qty_producing"])),
            )
        })
        .collect()
}
