//! Shared harness for integration tests: each test gets its own database on the project-local
//! PostgreSQL started by `scripts/dev-env.sh`, and runs the real `millrace` binary against it.
#![allow(dead_code)]

use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio_postgres::{Client, NoTls};

pub mod bus;
pub mod least_privilege;
pub mod legacy;
pub mod odoo;
pub mod parquet;
pub mod proxy;
pub mod sync;

/// The superuser URL of the test server (`.dev/env` exports it).
pub fn admin_url() -> String {
    std::env::var("MILLRACE_TEST_PG_URL").unwrap_or_else(|_| {
        panic!("MILLRACE_TEST_PG_URL is not set: run `scripts/dev-env.sh` and `source .dev/env` (scripts/test.sh does both)")
    })
}

pub fn env_path(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run `scripts/dev-env.sh` and `source .dev/env`"))
}

pub async fn connect(url: &str) -> Client {
    let (client, connection) =
        tokio_postgres::connect(url, NoTls).await.unwrap_or_else(|e| panic!("connect {url}: {e}"));
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// Replaces the database name of a `postgres://` URL.
pub fn url_with_db(url: &str, db: &str) -> String {
    let mut parsed = url::Url::parse(url).expect("test URL");
    parsed.set_path(&format!("/{db}"));
    parsed.to_string()
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A database of its own, dropped (with its replication slots) when the value is dropped.
pub struct TestDb {
    pub name: String,
    pub url: String,
    admin: String,
}

impl TestDb {
    pub async fn create(prefix: &str) -> TestDb {
        let admin = admin_url();
        let name = format!("mr_{prefix}_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst));
        let client = connect(&admin).await;
        client.batch_execute(&format!("CREATE DATABASE \"{name}\"")).await.expect("create test database");
        let url = url_with_db(&admin, &name);
        TestDb { name, url, admin }
    }

    /// A copy of database `template` on the server of `admin` (a real Odoo's template). A copy
    /// fails while another session is connected to the template, so that is retried.
    pub async fn from_template(prefix: &str, admin: &str, template: &str) -> TestDb {
        let name = format!("mr_{prefix}_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst));
        let client = connect(admin).await;
        let sql = format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\"");
        let mut attempts = 0;
        loop {
            match client.batch_execute(&sql).await {
                Ok(()) => break,
                Err(e) if attempts < 100 && format!("{e:?}").contains("is being accessed by other users") => {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("{sql}: {e:?}"),
            }
        }
        let url = url_with_db(admin, &name);
        TestDb { name, url, admin: admin.to_string() }
    }

    pub async fn client(&self) -> Client {
        connect(&self.url).await
    }

    /// Slot and publication names used by `config_env`.
    pub fn slot(&self) -> String {
        format!("{}_slot", self.name)
    }

    /// Environment for the `millrace` binary pointing at this database.
    pub fn millrace_env(&self, tables: &[&str]) -> Vec<(String, String)> {
        vec![
            ("MILLRACE_ODOO_URL".into(), format!("{}?sslmode=disable", self.url)),
            ("MILLRACE_ODOO_SLOT".into(), self.slot()),
            ("MILLRACE_ODOO_PUBLICATION".into(), "millrace_pub".into()),
            ("MILLRACE_ODOO_TABLES".into(), tables.join(",")),
        ]
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let name = self.name.clone();
        // Drop runs outside any runtime guarantee; use a thread with its own runtime.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async move {
                let Ok((client, conn)) = tokio_postgres::connect(&admin, NoTls).await else { return };
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                for _ in 0..50 {
                    let dropped = client
                        .execute(
                            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active",
                            &[&name],
                        )
                        .await;
                    let remaining = client
                        .query_one("SELECT count(*) FROM pg_replication_slots WHERE database = $1", &[&name])
                        .await
                        .map(|r| r.get::<_, i64>(0))
                        .unwrap_or(0);
                    if dropped.is_ok() && remaining == 0 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await;
                // Replication origins are cluster-wide and outlive the database; each one with
                // progress holds one of the server's max_replication_slots state slots.
                let _ = client
                    .execute(
                        "SELECT pg_replication_origin_drop(roname) FROM pg_replication_origin WHERE roname LIKE $1 || '%'",
                        &[&name],
                    )
                    .await;
            });
        })
        .join();
    }
}

/// Runs the `millrace` binary with the given environment and arguments, with no config file.
pub fn millrace(env: &[(String, String)], args: &[&str]) -> Output {
    millrace_command(env, args).output().expect("run millrace")
}

pub fn millrace_command(env: &[(String, String)], args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_millrace"));
    command
        .args(args)
        .current_dir(std::env::temp_dir())
        .env_remove("MILLRACE_ODOO_PASSWORD")
        .env("MILLRACE_LOG", "info")
        .stdin(Stdio::null());
    for (k, v) in env {
        command.env(k, v);
    }
    command
}

/// `millrace setup`, asserting success.
pub fn setup(env: &[(String, String)]) {
    let out = millrace(env, &["setup"]);
    assert!(out.status.success(), "setup failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// `millrace tail --json --until-caught-up [extra]`, returning the parsed records.
pub fn tail(env: &[(String, String)], extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec!["tail", "--json", "--until-caught-up"];
    args.extend_from_slice(extra);
    let out = millrace(env, &args);
    assert!(out.status.success(), "tail failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .expect("utf-8 output")
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("bad JSON line {line:?}: {e}")))
        .collect()
}
