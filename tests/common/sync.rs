//! Harness for sync tests: both databases loaded with their fixtures, a config, and a running
//! `millrace run` whose log is kept for failure messages.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::legacy::MariaDb;
use super::{millrace, millrace_command, TestDb};

pub fn load_odoo_fixture(db: &TestDb) {
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

pub fn load_legacy_demo(maria: &MariaDb) {
    let root = env!("CARGO_MANIFEST_DIR");
    for file in ["schema.sql", "demo-data.sql"] {
        let sql = std::fs::read_to_string(format!("{root}/sql/legacy/mariadb/{file}")).expect("read legacy sql");
        maria.exec(&sql);
    }
}

/// A running `millrace run` with its log in a file; killed when dropped.
pub struct Service {
    child: Child,
    pub log: PathBuf,
}

impl Service {
    pub fn start(config: &str, dir: &Path) -> Service {
        Service::start_with_env(config, dir, &[])
    }

    pub fn start_with_env(config: &str, dir: &Path, env: &[(String, String)]) -> Service {
        Service::start_command(config, dir, env, "run")
    }

    /// `millrace <command>` (`run`, `capture`, `apply`) with this config.
    pub fn start_command(config: &str, dir: &Path, env: &[(String, String)], command: &str) -> Service {
        // One log per start: a test that kills and restarts the service keeps every run's.
        static STARTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let log = dir.join(format!("{command}-{n:03}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let child = millrace_command(env, &["--config", config, command])
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("start millrace {command}: {e}"));
        Service { child, log }
    }

    /// SIGKILL: a crash.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The address the HTTP endpoint listens on, from the service's log.
    pub fn http_address(&self) -> Option<String> {
        self.log_text()
            .lines()
            .find(|l| l.contains("HTTP endpoint listening"))
            .and_then(|l| l.split("address=").nth(1))
            .and_then(|a| a.split_whitespace().next())
            .map(str::to_string)
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let _ = std::process::Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(Instant::now() < deadline, "millrace run did not stop after SIGTERM:\n{}", self.log_text());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Copies the shipped `mappings` into `dir/mappings`, writes `dir/millrace.toml` for this Odoo
/// database and ODBC connection (plus `extra` TOML), and runs `millrace setup`: the config's path.
pub fn configure(dir: &Path, odoo: &TestDb, odbc: &str, mappings: &[&str], extra: &str) -> String {
    let mapping_dir = dir.join("mappings");
    std::fs::create_dir(&mapping_dir).expect("mapping dir");
    for m in mappings {
        std::fs::copy(
            format!("{}/mappings/{m}.toml", env!("CARGO_MANIFEST_DIR")),
            mapping_dir.join(format!("{m}.toml")),
        )
        .expect("copy mapping");
    }
    let config = dir.join("millrace.toml");
    std::fs::write(
        &config,
        format!(
            "[odoo]\nurl = \"{}?sslmode=disable\"\nslot = \"{}\"\npublication = \"millrace_pub\"\n\n\
             [legacy]\nkind = \"odbc\"\nconnection_string = \"{odbc}\"\npoll_interval = \"300ms\"\n\n\
             [sync]\nmappings = \"mappings\"\nretry_interval = \"500ms\"\n{extra}",
            odoo.url,
            odoo.slot(),
        ),
    )
    .expect("write config");
    let config = config.display().to_string();
    let out = millrace(&[], &["--config", &config, "setup"]);
    assert!(out.status.success(), "setup: {}", String::from_utf8_lossy(&out.stderr));
    config
}

/// Both databases loaded, a config with the given mappings, `millrace setup` done.
pub struct World {
    pub odoo: TestDb,
    pub maria: MariaDb,
    pub dir: tempfile::TempDir,
    pub config: String,
}

impl World {
    pub async fn new(prefix: &str, mappings: &[&str]) -> World {
        World::with_legacy_odbc(prefix, mappings, |odbc| odbc.to_string()).await
    }

    /// Like `new`, with the ODBC connection string millrace uses rewritten (to go through a
    /// proxy, say).
    pub async fn with_legacy_odbc(prefix: &str, mappings: &[&str], odbc: impl Fn(&str) -> String) -> World {
        let odoo = TestDb::create(prefix).await;
        load_odoo_fixture(&odoo);
        let maria = MariaDb::create(prefix);
        load_legacy_demo(&maria);
        let dir = tempfile::tempdir().expect("temp dir");
        let config = configure(dir.path(), &odoo, &odbc(&maria.odbc()), mappings, "");
        World { odoo, maria, dir, config }
    }

    /// Appends TOML to the config file (sections the default config lacks).
    pub fn append_config(&self, text: &str) {
        let mut config = std::fs::read_to_string(&self.config).expect("read config");
        config.push_str(text);
        std::fs::write(&self.config, config).expect("write config");
    }

    pub fn start(&self) -> Service {
        Service::start(&self.config, self.dir.path())
    }
}

/// Polls `check` until it returns `Some`, or fails with `what` and the service log.
pub async fn eventually<T, F, Fut>(what: &str, service: &Service, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}; service log:\n{}", service.log_text());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Reads a value of the control state until it is `expected`, and returns what was last read.
/// A batch's outcome (cross-references, dead-letter resolutions) is saved a moment after its
/// target rows, so a test that has just seen the row waits for it (up to 40 s), then asserts.
pub async fn settled<T, F, Fut>(expected: &T, mut read: F) -> T
where
    T: PartialEq,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let value = read().await;
        if value == *expected || Instant::now() >= deadline {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A world whose legacy connection goes through a TCP proxy the test can cut.
pub async fn world_behind_proxy(prefix: &str, mappings: &[&str]) -> (World, super::proxy::Proxy) {
    let maria_port: u16 =
        url::Url::parse(&super::env_path("MILLRACE_TEST_MARIADB_URL")).ok().and_then(|u| u.port()).unwrap_or(3306);
    let proxy = super::proxy::Proxy::start(([127, 0, 0, 1], maria_port).into()).await;
    let port = proxy.port;
    let world = World::with_legacy_odbc(prefix, mappings, |odbc| {
        odbc.replace(&format!("Port={maria_port};"), &format!("Port={port};"))
    })
    .await;
    (world, proxy)
}

/// The ERP's order number (PROD_ORDER.ORDER_NO) of the Odoo manufacturing order named `name`:
/// `MO` and its mrp_production id in eight digits (id 8 → MO00000008), whatever Odoo names it.
pub async fn erp_order_no(odoo: &tokio_postgres::Client, name: &str) -> String {
    odoo.query_one("SELECT 'MO' || lpad(id::text, 8, '0') FROM mrp_production WHERE name = $1", &[&name])
        .await
        .unwrap_or_else(|e| panic!("the ERP number of manufacturing order {name}: {e}"))
        .get(0)
}

/// The canonical key text of the order named `name` (dead letters, conflicts): `["MO00000008"]`.
pub async fn order_key(odoo: &tokio_postgres::Client, name: &str) -> String {
    format!("[\"{}\"]", erp_order_no(odoo, name).await)
}

/// The ERP order numbers of the Odoo manufacturing orders whose names match `pattern` (SQL
/// `LIKE`, e.g. `WH/MO/K%`), in id order: compare a range of orders by these, not by name.
pub async fn erp_order_nos_like(odoo: &tokio_postgres::Client, pattern: &str) -> Vec<String> {
    odoo.query("SELECT 'MO' || lpad(id::text, 8, '0') FROM mrp_production WHERE name LIKE $1 ORDER BY id", &[&pattern])
        .await
        .unwrap_or_else(|e| panic!("the ERP numbers of manufacturing orders {pattern}: {e}"))
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// `values` as a list of SQL string literals, for `IN (...)`: `'a', 'b'`.
pub fn sql_strings<S: AsRef<str>>(values: &[S]) -> String {
    values.iter().map(|v| format!("'{}'", v.as_ref().replace('\'', "''"))).collect::<Vec<_>>().join(", ")
}

/// A unit Odoo has (`insert_order_the_erp_refuses` creates it) and the demo ERP's UOM table
/// has no row for: no UOM_CODE can be written for it.
pub const UNIT_THE_ERP_LACKS: &str = "Pallets";

/// Inserts one confirmed manufacturing order (a copy of the fixture's WH/MO/00001) counted in
/// `UNIT_THE_ERP_LACKS`, a unit made in Odoo here that the ERP's UOM table has no row for:
/// PROD_ORDER.UOM_CODE cannot name it, so the order is a dead letter on its way (field `uom`).
/// `add_the_lacking_unit_to_the_erp` fixes it on the ERP's side, without touching the order.
/// Returns the order's ERP number.
pub async fn insert_order_the_erp_refuses(odoo: &tokio_postgres::Client, name: &str, date_start: &str) -> String {
    odoo.batch_execute(&format!(
        "INSERT INTO uom_uom (category_id, uom_type, name, factor, rounding, active)
         SELECT category_id, 'bigger', '{{\"en_US\": \"{UNIT_THE_ERP_LACKS}\"}}', 0.01, 1, true
           FROM uom_uom WHERE name->>'en_US' = 'Units'
            AND NOT EXISTS (SELECT 1 FROM uom_uom WHERE name->>'en_US' = '{UNIT_THE_ERP_LACKS}');
         INSERT INTO mrp_production (name, product_id, product_uom_id, picking_type_id, location_src_id,
                location_dest_id, company_id, consumption, product_qty, qty_producing, date_start, state)
         SELECT '{name}', product_id, (SELECT id FROM uom_uom WHERE name->>'en_US' = '{UNIT_THE_ERP_LACKS}'),
                picking_type_id, location_src_id, location_dest_id,
                company_id, consumption, 1, 0, '{date_start}', 'confirmed'
           FROM mrp_production WHERE name = 'WH/MO/00001'"
    ))
    .await
    .expect("insert the order");
    erp_order_no(odoo, name).await
}

/// The ERP learns `UNIT_THE_ERP_LACKS` (a row in its UOM table): an order refused for want of
/// it can now be written.
pub fn add_the_lacking_unit_to_the_erp(maria: &MariaDb) {
    maria.exec(&format!(
        "INSERT INTO UOM (UOM_CODE, DESCRIPTION, BASE_UOM, FACTOR) VALUES ('PAL', '{UNIT_THE_ERP_LACKS}', 'EA', 100)"
    ));
}

/// Inserts `n` confirmed manufacturing orders in one transaction, copies of the fixture's
/// WH/MO/00001 named `<prefix><number>` (numbers from `from`, zero-padded to `width` digits),
/// ordering 1 to 7 units.
pub async fn insert_confirmed_orders(odoo: &tokio_postgres::Client, prefix: &str, from: i64, n: i64, width: usize) {
    odoo.batch_execute(&format!(
        "INSERT INTO mrp_production (name, product_id, product_uom_id, picking_type_id, location_src_id,
                location_dest_id, company_id, consumption, product_qty, qty_producing, date_start, state)
         SELECT '{prefix}' || lpad(({from} + g)::text, {width}, '0'), m.product_id, m.product_uom_id,
                m.picking_type_id, m.location_src_id, m.location_dest_id, m.company_id, m.consumption,
                1 + g % 7, 0, '2026-12-03 06:00:00', 'confirmed'
           FROM mrp_production m, generate_series(0, {n} - 1) g WHERE m.name = 'WH/MO/00001'"
    ))
    .await
    .expect("insert manufacturing orders");
}

/// Inserts `copies` copies of each of the fixture's done manufacturing moves (consumption and
/// output: each is one ERP ledger row) in one transaction, as an import or a mass validation
/// writes them; returns how many moves it inserted.
pub async fn copy_done_manufacturing_moves(odoo: &tokio_postgres::Client, copies: i64) -> i64 {
    let moves = "SELECT id FROM stock_move WHERE state = 'done'
                   AND (production_id IS NOT NULL OR raw_material_production_id IS NOT NULL)";
    let per_copy: i64 = odoo.query_one(&format!("SELECT count(*) FROM ({moves}) m"), &[]).await.unwrap().get(0);
    assert!(per_copy > 0, "the fixture has done manufacturing moves");
    let columns: String = odoo
        .query_one(
            "SELECT string_agg(quote_ident(column_name), ', ') FROM information_schema.columns
              WHERE table_schema = 'public' AND table_name = 'stock_move' AND column_name <> 'id'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    odoo.batch_execute(&format!(
        "INSERT INTO stock_move ({columns}) SELECT {columns} FROM stock_move, generate_series(1, {copies}) WHERE id IN ({moves})"
    ))
    .await
    .expect("copy the done manufacturing moves");
    per_copy * copies
}

/// A marker on the Odoo stream that writes nothing on either side: an order the ERP refuses
/// (`insert_order_the_erp_refuses`, named `name`) committed now, then its dead letter waited
/// for. The engine handles one batch at a time, Odoo's transactions in commit order, and saves a
/// batch's outcome (dead letters, conflicts, decision counts) in one transaction after the
/// target committed: once the marker's dead letter is recorded, every Odoo transaction committed
/// before it has been decided, applied and recorded. Needs the `production_order` mapping; its
/// own decision (a dead letter) is no `apply`. Returns the marker's key.
pub async fn odoo_marker(odoo: &tokio_postgres::Client, service: &Service, name: &str) -> String {
    let key = format!("[\"{}\"]", insert_order_the_erp_refuses(odoo, name, "2026-12-31 08:00:00").await);
    let what = format!("the dead letter of marker order {name} (the Odoo stream decided up to it)");
    eventually(&what, service, || async {
        odoo.query_opt(
            "SELECT 1 FROM millrace.dlq WHERE entity = 'production_order' AND key = $1 AND source = 'odoo'",
            &[&key],
        )
        .await
        .unwrap()
    })
    .await;
    key
}

/// The same marker on the ERP's poll of PROD_ORDER: an order made up in the ERP (`order_no`,
/// `MO` and eight digits no Odoo id has), committed now, then its conflict waited for (Odoo is
/// the system of record for orders: the ERP's create is recorded, not applied, and nothing is
/// written). A poll reads PROD_ORDER in LAST_UPD order, so a row committed before the marker is
/// read in the same poll or an earlier one: once the marker's conflict is recorded, every
/// PROD_ORDER change committed before it has been decided, applied and recorded. The marker row
/// stays in PROD_ORDER. Needs the `production_order` mapping.
pub async fn legacy_marker(world: &World, odoo: &tokio_postgres::Client, service: &Service, order_no: &str) {
    world.maria.exec(&format!(
        "INSERT INTO PROD_ORDER (ORDER_NO, ITEM_NO, QTY_ORDERED, UOM_CODE, STATUS, START_DATE)
         VALUES ('{order_no}', 'FURN_7800', 1, 'EA', 'R', '2026-12-31 09:00:00')"
    ));
    let key = format!("[\"{order_no}\"]");
    let what = format!("the conflict of marker order {order_no} made in the ERP (its poll decided up to it)");
    eventually(&what, service, || async {
        odoo.query_opt(
            "SELECT 1 FROM millrace.conflict WHERE entity = 'production_order' AND key = $1 AND source = 'legacy'",
            &[&key],
        )
        .await
        .unwrap()
    })
    .await;
}
