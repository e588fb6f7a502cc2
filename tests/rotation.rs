//! Credentials rotate while `millrace run` runs, without a restart and without losing a change:
//! the PostgreSQL password of millrace's own login (Odoo's database, its replication slot and the
//! control state), the ERP's, and the integration user's key in Odoo each change on the server,
//! their files are rewritten, and millrace's connections are ended the way a DBA ends them. The
//! same process reconnects with the new passwords, read from the files again, and every change
//! made before, during and after arrives on the other side, once. Runs against the real Odoo 17
//! server and the real MariaDB ODBC driver (SKIPPED without the Odoo server).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::legacy::MariaDb;
use common::odoo::{wait_for, RealWorld};
use common::sync::eventually;
use serde_json::json;

/// Desk Combination (FURN_7800 in both systems): a manufactured product of the Odoo demo.
const DESK: i64 = 8;

static LOGINS: AtomicU32 = AtomicU32::new(0);

/// Something unique to this run, for names and passwords.
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("{prefix}_{}_{}_{nanos}", std::process::id(), LOGINS.fetch_add(1, Ordering::SeqCst))
}

/// Makes `role` a login that may run millrace on the test's Odoo database: SUPERUSER and
/// REPLICATION for now (a superuser matches pg_hba's `+mr_auth_scram` only as an explicit member
/// of the group, which it is). The least-privileged grants may replace this one function.
async fn grant_millrace_rights(admin: &tokio_postgres::Client, role: &str) {
    admin.batch_execute(&format!("ALTER ROLE \"{role}\" SUPERUSER REPLICATION")).await.expect("grant the rights");
}

/// millrace's own PostgreSQL login, with a password: a member of `mr_auth_scram`, which the dev
/// server's pg_hba makes authenticate with SCRAM-SHA-256 over TCP (everyone else is trusted).
/// Dropped with the value (after the databases it touched, when declared before them).
struct PgLogin {
    role: String,
}

impl PgLogin {
    async fn create(password: &str) -> PgLogin {
        let role = unique("mr_rot");
        let admin = common::connect(&common::admin_url()).await;
        admin
            .batch_execute(&format!(
                "SET password_encryption = 'scram-sha-256';
                 CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}' IN ROLE mr_auth_scram"
            ))
            .await
            .expect("create the login role");
        grant_millrace_rights(&admin, &role).await;
        PgLogin { role }
    }

    fn url(&self, password: Option<&str>, db: &str) -> String {
        let port = common::env_path("MILLRACE_TEST_PG_PORT");
        let password = password.map(|p| format!(":{p}")).unwrap_or_default();
        format!("postgres://{}{password}@127.0.0.1:{port}/{db}?sslmode=disable", self.role)
    }

    /// Whether the server lets the role in with `password`.
    async fn accepts(&self, password: &str, db: &str) -> bool {
        tokio_postgres::connect(&self.url(Some(password), db), tokio_postgres::NoTls).await.is_ok()
    }
}

impl Drop for PgLogin {
    fn drop(&mut self) {
        let role = self.role.clone();
        let _ = std::thread::spawn(move || {
            let _ = std::process::Command::new("psql")
                .arg(common::admin_url())
                .arg("-qc")
                .arg(format!(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}';
                     DROP ROLE IF EXISTS \"{role}\""
                ))
                .output();
        })
        .join();
    }
}

/// millrace's own MariaDB user, with a password, granted everything on the test's ERP database.
struct ErpLogin<'a> {
    maria: &'a MariaDb,
    user: String,
}

impl<'a> ErpLogin<'a> {
    fn create(maria: &'a MariaDb, password: &str) -> ErpLogin<'a> {
        let user = unique("mr_rot");
        maria.exec(&format!(
            "CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{password}';
             GRANT ALL PRIVILEGES ON `{}`.* TO '{user}'@'127.0.0.1';",
            maria.name
        ));
        ErpLogin { maria, user }
    }

    /// The ODBC connection string of the test server for this user, without a password.
    fn odbc(&self) -> String {
        let odbc = common::env_path("MILLRACE_TEST_ODBC");
        let server: Vec<&str> = odbc
            .split(';')
            .filter(|part| !part.trim().is_empty())
            .filter(|part| {
                let key = part.split('=').next().unwrap_or("").trim().to_ascii_lowercase();
                !matches!(key.as_str(), "user" | "uid" | "password" | "pwd")
            })
            .collect();
        format!("{};User={};Database={};", server.join(";"), self.user, self.maria.name)
    }

    /// Whether the server lets the user in with `password`.
    fn accepts(&self, password: &str) -> bool {
        let url = url::Url::parse(&common::env_path("MILLRACE_TEST_MARIADB_URL")).expect("MariaDB URL");
        std::process::Command::new("mariadb")
            .args(["-h", url.host_str().unwrap_or("127.0.0.1"), "-P", &url.port().unwrap_or(3306).to_string()])
            .args(["-u", &self.user, "-e", "SELECT 1"])
            .env("MYSQL_PWD", password)
            .output()
            .is_ok_and(|out| out.status.success())
    }

    /// The ids of the user's connections.
    fn connections(&self) -> Vec<String> {
        let ids =
            self.maria.exec(&format!("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = '{}'", self.user));
        ids.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect()
    }

    /// Ends every connection of the user, as a DBA does after a password change; how many.
    fn kill_connections(&self) -> usize {
        let mut killed = 0;
        for id in self.connections() {
            // A connection that ended meanwhile is "Unknown thread id": nothing to kill.
            if self.maria.try_exec(&format!("KILL CONNECTION {id}")).is_ok() {
                killed += 1;
            }
        }
        killed
    }
}

impl Drop for ErpLogin<'_> {
    fn drop(&mut self) {
        let _ = self.maria.try_exec(&format!("DROP USER IF EXISTS '{}'@'127.0.0.1'", self.user));
    }
}

/// Writes a secret file as an operator does (`echo new > file`: rewritten in place).
fn write_secret(path: &std::path::Path, value: &str) {
    std::fs::write(path, format!("{value}\n")).expect("write the secret file");
}

/// One GET over a fresh connection: the body.
fn get(address: SocketAddr, path: &str) -> String {
    let Ok(mut stream) = TcpStream::connect(address) else { return String::new() };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let sent = write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let mut response = String::new();
    if sent.is_err() || stream.read_to_string(&mut response).is_err() {
        return String::new();
    }
    response.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default()
}

/// `millrace_reconnects_total`, every system together.
fn reconnects(address: SocketAddr) -> f64 {
    get(address, "/metrics")
        .lines()
        .filter(|l| l.starts_with("millrace_reconnects_total{"))
        .filter_map(|l| l.rsplit(' ').next().and_then(|n| n.parse::<f64>().ok()))
        .sum()
}

/// Items made in the ERP and orders confirmed in Odoo, in the order they were made.
#[derive(Default)]
struct Made {
    items: Vec<(String, String)>,
    /// ERP order numbers and quantities.
    orders: Vec<(String, f64)>,
}

impl Made {
    fn item(&mut self, world: &RealWorld, item_no: &str, description: &str) {
        world.maria.exec(&format!(
            "INSERT INTO ITEM_MASTER (ITEM_NO, DESCRIPTION, UOM_CODE) VALUES ('{item_no}', '{description}', 'EA')"
        ));
        self.items.push((item_no.to_string(), description.to_string()));
    }

    fn rename(&mut self, world: &RealWorld, item_no: &str, description: &str) {
        world.maria.exec(&format!("UPDATE ITEM_MASTER SET DESCRIPTION = '{description}' WHERE ITEM_NO = '{item_no}'"));
        for item in self.items.iter_mut().filter(|(no, _)| no == item_no) {
            item.1 = description.to_string();
        }
    }

    async fn order(&mut self, world: &RealWorld, qty: f64) {
        let id = world.rpc().confirmed_order(DESK, qty).await;
        self.orders.push((RealWorld::erp_order_no(id), qty));
    }

    /// Everything made so far is on the other side, as made last.
    async fn arrived(&self, world: &RealWorld, odoo: &tokio_postgres::Client) -> bool {
        for (item_no, description) in &self.items {
            let row = odoo
                .query_opt(
                    "SELECT 1 FROM product_product p JOIN product_template t ON t.id = p.product_tmpl_id
                      WHERE p.default_code = $1 AND t.name->>'en_US' = $2",
                    &[item_no, description],
                )
                .await
                .unwrap();
            if row.is_none() {
                return false;
            }
        }
        let numbers: Vec<&str> = self.orders.iter().map(|(no, _)| no.as_str()).collect();
        let orders = common::sync::sql_strings(&numbers);
        let count = world.maria.exec(&format!("SELECT COUNT(*) FROM PROD_ORDER WHERE ORDER_NO IN ({orders})"));
        count.trim() == self.orders.len().to_string()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_rotate_while_running_and_no_change_is_lost() {
    let pg_before = unique("pg-before");
    let pg_after = unique("pg-after");
    let erp_before = unique("erp-before");
    let erp_after = unique("erp-after");
    let key_after = unique("key-after");
    // Declared first, dropped last: after the test's database and the service that used it.
    let pg = PgLogin::create(&pg_before).await;
    let Some(world) =
        RealWorld::new("passwords_rotate_while_running_and_no_change_is_lost", &["item", "production_order"]).await
    else {
        return;
    };
    world.forget_erp_only_orders().await;
    let erp = ErpLogin::create(&world.maria, &erp_before);
    let db = world.odoo.db.name.clone();

    // The config reaches both databases as these logins, each password in a file; the control
    // state lives in Odoo's database (no [state] url), so it uses the same login.
    let pg_file = world.dir.path().join("pg-password");
    let erp_file = world.dir.path().join("erp-password");
    let key_file = world.dir.path().join("odoo-api-key");
    write_secret(&pg_file, &pg_before);
    write_secret(&erp_file, &erp_before);
    let config = std::fs::read_to_string(&world.config).expect("read config");
    let odoo_url = format!("url = \"{}?sslmode=disable\"\n", world.odoo.db.url);
    let legacy = format!("connection_string = \"{}\"\n", world.maria.odbc());
    assert!(config.contains(&odoo_url) && config.contains(&legacy), "{config}");
    let config = config
        .replace(&odoo_url, &format!("url = \"{}\"\npassword_file = {:?}\n", pg.url(None, &db), pg_file))
        .replace(&legacy, &format!("connection_string = \"{}\"\npassword_file = {:?}\n", erp.odbc(), erp_file));
    std::fs::write(&world.config, format!("{config}\n[http]\nlisten = \"127.0.0.1:0\"\n")).expect("write config");
    assert!(!config.contains("[state]"), "the control state is in Odoo's database: {config}");

    let mut service = world.start();
    let odoo = world.odoo.db.client().await;
    let address: SocketAddr =
        eventually("the HTTP endpoint", &service, || async { service.http_address().and_then(|a| a.parse().ok()) })
            .await;
    let pid = service.pid();
    let mut made = Made::default();

    // Before: a change each way flows, through millrace's own logins.
    made.item(&world, "MR-ROT-1", "Before rotation");
    made.order(&world, 1.0).await;
    wait_for("the first item in Odoo and the first order in the ERP", &service, 90, || async {
        made.arrived(&world, &odoo).await.then_some(())
    })
    .await;
    let sessions = |role: String| {
        let odoo = &odoo;
        async move {
            odoo.query_one(
                "SELECT count(*) FILTER (WHERE backend_type = 'walsender'), count(*) FILTER (WHERE backend_type <> 'walsender')
                   FROM pg_stat_activity WHERE usename = $1",
                &[&role],
            )
            .await
            .map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1)))
            .unwrap()
        }
    };
    let (walsenders, others) = sessions(pg.role.clone()).await;
    assert!(
        walsenders == 1 && others >= 2,
        "millrace reads the slot and Odoo's database as {}: {walsenders}, {others}",
        pg.role
    );
    assert!(!erp.connections().is_empty(), "millrace reaches the ERP as {}", erp.user);
    let reconnected_before = reconnects(address);

    // The rotation: new passwords on the servers (existing sessions live on), changes keep
    // coming, the files are rewritten, and the old sessions are ended.
    odoo.batch_execute(&format!("ALTER ROLE \"{}\" PASSWORD '{pg_after}'", pg.role)).await.unwrap();
    world.maria.exec(&format!("ALTER USER '{}'@'127.0.0.1' IDENTIFIED BY '{erp_after}'", erp.user));
    made.item(&world, "MR-ROT-2", "During rotation");
    made.order(&world, 2.0).await;
    write_secret(&pg_file, &pg_after);
    write_secret(&erp_file, &erp_after);
    let terminated: (i64, i64) = odoo
        .query_one(
            "WITH ended AS (SELECT backend_type, pg_terminate_backend(pid) AS done
                              FROM pg_stat_activity WHERE usename = $1)
             SELECT count(*) FILTER (WHERE done AND backend_type = 'walsender'),
                    count(*) FILTER (WHERE done AND backend_type <> 'walsender') FROM ended",
            &[&pg.role],
        )
        .await
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    let killed = erp.kill_connections();
    assert!(terminated.0 == 1 && terminated.1 >= 1, "terminated (walsender, other sessions) {terminated:?}");
    assert!(killed >= 1, "killed ERP connections: {killed}");
    made.item(&world, "MR-ROT-3", "Right after the kill");
    made.rename(&world, "MR-ROT-1", "Renamed after the kill");
    made.order(&world, 3.0).await;

    // The integration user's key in Odoo too: the new one in the file, then Odoo told.
    write_secret(&key_file, &key_after);
    world.rpc().write("res.users", &[world.integration_uid], json!({"password": key_after})).await;

    // After: more changes both ways.
    made.item(&world, "MR-ROT-4", "After rotation");
    made.rename(&world, "MR-ROT-2", "Renamed after rotation");
    made.order(&world, 4.0).await;
    wait_for("every change made before, during and after the rotation", &service, 120, || async {
        made.arrived(&world, &odoo).await.then_some(())
    })
    .await;

    // The same process, reconnected as the new passwords: the old ones no longer let anyone in.
    assert!(service.is_running(), "millrace must not stop:\n{}", service.log_text());
    assert_eq!(service.pid(), pid);
    assert!(!pg.accepts(&pg_before, &db).await && pg.accepts(&pg_after, &db).await);
    assert!(!erp.accepts(&erp_before) && erp.accepts(&erp_after));
    let (walsenders, others) = sessions(pg.role.clone()).await;
    assert!(walsenders == 1 && others >= 2, "millrace's sessions after the rotation: {walsenders}, {others}");
    assert!(!erp.connections().is_empty(), "millrace reaches the ERP again");
    let reconnected = wait_for("millrace_reconnects_total to count the reconnections", &service, 30, || async {
        let now = reconnects(address);
        (now > reconnected_before).then_some(now)
    })
    .await;
    assert!(reconnected > reconnected_before);

    // The other way round: the sessions end while the file still holds the old password.
    // Reconnecting is refused, and retried (the replication connection too), not given up; once
    // the file is rewritten, everything flows again. PostgreSQL first (while the control state
    // refuses, the ERP is not even asked), then the ERP.
    let pg_third = unique("pg-third");
    odoo.batch_execute(&format!("ALTER ROLE \"{}\" PASSWORD '{pg_third}'", pg.role)).await.unwrap();
    let replication_refused = || {
        let log = service.log_text();
        log.lines().filter(|l| l.contains("replication connection lost") && l.contains("28P01")).count()
    };
    let refused_before = replication_refused();
    odoo.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", &[&pg.role])
        .await
        .unwrap();
    made.item(&world, "MR-ROT-5", "While the PostgreSQL file is stale");
    made.order(&world, 5.0).await;
    wait_for("the replication connection refused (stale password file)", &service, 60, || async {
        (replication_refused() > refused_before).then_some(())
    })
    .await;
    assert!(service.is_running(), "a refused password must not stop millrace:\n{}", service.log_text());
    write_secret(&pg_file, &pg_third);
    wait_for("the changes made while the PostgreSQL file was stale", &service, 120, || async {
        made.arrived(&world, &odoo).await.then_some(())
    })
    .await;

    let erp_third = unique("erp-third");
    world.maria.exec(&format!("ALTER USER '{}'@'127.0.0.1' IDENTIFIED BY '{erp_third}'", erp.user));
    let erp_refused = || service.log_text().matches("Access denied for user").count();
    let refused_before = erp_refused();
    erp.kill_connections();
    made.item(&world, "MR-ROT-6", "While the ERP file is stale");
    made.order(&world, 6.0).await;
    wait_for("the ERP refusing millrace (stale password file)", &service, 60, || async {
        (erp_refused() > refused_before).then_some(())
    })
    .await;
    assert!(service.is_running(), "a refused password must not stop millrace:\n{}", service.log_text());
    write_secret(&erp_file, &erp_third);
    wait_for("the changes made while the ERP file was stale", &service, 120, || async {
        made.arrived(&world, &odoo).await.then_some(())
    })
    .await;

    // Odoo's key the other way round: Odoo refuses the key in use before the file has the new
    // one. The change bound for Odoo waits (an outage, not bad data) until the file is rewritten.
    let key_third = unique("key-third");
    let key_refusals = || service.log_text().matches("Odoo refused the API key").count();
    let key_refused_before = key_refusals();
    world.rpc().write("res.users", &[world.integration_uid], json!({"password": key_third})).await;
    // A rename, not a create: a create refused this way would also arrive, only later (millrace
    // cannot tell a refused create from one Odoo may still commit, and waits the API timeout).
    made.rename(&world, "MR-ROT-6", "Renamed while the key file is stale");
    wait_for("Odoo refusing the stale key", &service, 60, || async {
        (key_refusals() > key_refused_before).then_some(())
    })
    .await;
    write_secret(&key_file, &key_third);
    made.rename(&world, "MR-ROT-5", "Renamed at the end");
    made.order(&world, 7.0).await;
    wait_for("the changes made while the key file was stale", &service, 120, || async {
        made.arrived(&world, &odoo).await.then_some(())
    })
    .await;
    assert!(service.is_running());
    assert_eq!(service.pid(), pid);

    // Exactly once: one Odoo product (and cross-reference) per ERP item, one ERP order per Odoo
    // order, nothing dead-lettered or waiting.
    let item_nos: Vec<String> = made.items.iter().map(|(no, _)| no.clone()).collect();
    let products: Vec<(String, i64)> = odoo
        .query(
            "SELECT default_code, count(*) FROM product_product WHERE default_code = ANY($1) GROUP BY 1 ORDER BY 1",
            &[&item_nos],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(products, item_nos.iter().map(|no| (no.clone(), 1)).collect::<Vec<_>>());
    let keys: Vec<String> = item_nos.iter().map(|no| format!("[\"{no}\"]")).collect();
    let xrefs: i64 = odoo
        .query_one(
            "SELECT count(*) FROM millrace.xref WHERE entity = 'item' AND system = 'odoo' AND key = ANY($1)",
            &[&keys],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(xrefs, item_nos.len() as i64);
    let in_erp: Vec<(String, f64)> = world
        .maria
        .exec("SELECT ORDER_NO, QTY_ORDERED FROM PROD_ORDER ORDER BY ORDER_NO")
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .filter(|(no, _)| made.orders.iter().any(|(made, _)| made == no))
        .map(|(no, qty)| (no.to_string(), qty.trim().parse().unwrap_or(f64::NAN)))
        .collect();
    assert_eq!(in_erp, made.orders, "each Odoo order in the ERP, as ordered");
    assert_eq!(world.open_dead_letters().await, Vec::<String>::new(), "an outage is not bad data");
    let parked: i64 = odoo.query_one("SELECT count(*) FROM millrace.parked", &[]).await.unwrap().get(0);
    assert_eq!(parked, 0);

    // No password, old or new, in what millrace wrote.
    let log = service.log_text();
    for secret in [&pg_before, &pg_after, &pg_third, &erp_before, &erp_after, &erp_third, &key_after, &key_third] {
        assert!(!log.contains(secret.as_str()), "a password in the log:\n{log}");
    }
    assert!(log.contains("replication connection re-established"), "{log}");
    assert_eq!(service.stop().code(), Some(0), "SIGTERM drains and exits 0");
}
