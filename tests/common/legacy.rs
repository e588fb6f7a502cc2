//! Harness for legacy-source tests: a MariaDB database of its own (reached through the real
//! MariaDB ODBC driver by millrace, and through the `mariadb` client by the test), plus a
//! PostgreSQL database for millrace's control state.
#![allow(dead_code)]

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use super::{env_path, TestDb};

static COUNTER: AtomicU32 = AtomicU32::new(0);

pub struct MariaDb {
    pub name: String,
    host: String,
    port: String,
    user: String,
    password: String,
}

impl MariaDb {
    pub fn create(prefix: &str) -> MariaDb {
        let url = url::Url::parse(&env_path("MILLRACE_TEST_MARIADB_URL")).expect("MILLRACE_TEST_MARIADB_URL");
        let db = MariaDb {
            name: format!("mr_{prefix}_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst)),
            host: url.host_str().unwrap_or("127.0.0.1").to_string(),
            port: url.port().unwrap_or(3306).to_string(),
            user: url.username().to_string(),
            password: url.password().unwrap_or("").to_string(),
        };
        db.admin(&format!("CREATE DATABASE `{}` CHARACTER SET utf8mb4", db.name));
        db
    }

    fn client(&self, database: Option<&str>) -> Command {
        let mut c = Command::new("mariadb");
        c.args([
            "-h",
            &self.host,
            "-P",
            &self.port,
            "-u",
            &self.user,
            "--batch",
            "--skip-column-names",
            "--unbuffered",
        ]);
        c.env("MYSQL_PWD", &self.password);
        if let Some(db) = database {
            c.args(["-D", db]);
        }
        c
    }

    fn admin(&self, sql: &str) {
        let out = self.client(None).args(["-e", sql]).output().expect("run mariadb");
        assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Runs SQL in this database and returns the output rows (tab-separated).
    pub fn exec(&self, sql: &str) -> String {
        let out = self.client(Some(&self.name)).args(["-e", sql]).output().expect("run mariadb");
        assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs SQL in this database; the server's refusal is an `Err` with its message (a `KILL` of
    /// a connection that ended meanwhile, say).
    pub fn try_exec(&self, sql: &str) -> Result<String, String> {
        let out = self.client(Some(&self.name)).args(["-e", sql]).output().map_err(|e| e.to_string())?;
        match out.status.success() {
            true => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
            false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
        }
    }

    /// A client session kept open, fed statement by statement (for transactions that must stay
    /// open across a poll).
    pub fn session(&self) -> Session {
        let child = self
            .client(Some(&self.name))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start mariadb session");
        Session { child }
    }

    /// The ODBC connection string millrace uses (password in it, as a user may write it).
    pub fn odbc(&self) -> String {
        format!("{}Database={};", env_path("MILLRACE_TEST_ODBC"), self.name)
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        let _ = self.client(None).args(["-e", &format!("DROP DATABASE IF EXISTS `{}`", self.name)]).output();
    }
}

pub struct Session {
    child: Child,
}

impl Session {
    pub fn send(&mut self, sql: &str) {
        let stdin = self.child.stdin.as_mut().expect("session stdin");
        writeln!(stdin, "{sql}").expect("write to session");
        stdin.flush().expect("flush session");
    }

    /// Waits until the statements sent so far have run (a marker round trip).
    pub fn sync(&mut self) {
        self.send("SELECT 'sync-marker';");
        use std::io::BufRead;
        let stdout = self.child.stdout.as_mut().expect("session stdout");
        let mut reader = std::io::BufReader::new(stdout);
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).expect("read session") == 0 {
                panic!("session ended");
            }
            if line.trim() == "sync-marker" {
                return;
            }
        }
    }

    /// Runs a query in the session (inside its open transaction, if any) and returns its output
    /// rows (tab-separated).
    pub fn query(&mut self, sql: &str) -> Vec<String> {
        self.send(sql);
        self.send("SELECT 'sync-marker';");
        use std::io::BufRead;
        let stdout = self.child.stdout.as_mut().expect("session stdout");
        let mut reader = std::io::BufReader::new(stdout);
        let mut rows = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).expect("read session") == 0 {
                panic!("session ended");
            }
            let line = line.trim_end_matches('\n');
            if line == "sync-marker" {
                return rows;
            }
            rows.push(line.to_string());
        }
    }

    pub fn close(mut self) {
        drop(self.child.stdin.take());
        let out = self.child.wait_with_output().expect("session exit");
        assert!(out.status.success(), "session failed: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// Writes a millrace.toml for a legacy-only setup and returns its path (inside `dir`).
pub fn write_config(dir: &std::path::Path, maria: &MariaDb, state: &TestDb, tables: &str) -> String {
    let path = dir.join("millrace.toml");
    let text = format!(
        "[state]\nurl = \"{}?sslmode=disable\"\n\n[legacy]\nkind = \"odbc\"\nconnection_string = \"{}\"\npoll_interval = \"200ms\"\n\n{tables}\n",
        state.url,
        maria.odbc()
    );
    std::fs::write(&path, text).expect("write config");
    path.display().to_string()
}

/// `millrace tail --source legacy --json --until-caught-up [--ack]`: the records and stderr.
pub fn poll(config: &str, ack: bool) -> (Vec<serde_json::Value>, String) {
    let mut args = vec!["--config", config, "tail", "--source", "legacy", "--json", "--until-caught-up"];
    if ack {
        args.push("--ack");
    }
    let out = super::millrace(&[], &args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "tail --source legacy failed: {stderr}");
    let records = String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON {l:?}: {e}")))
        .collect();
    (records, stderr)
}

/// `(op, key)` of each record, for compact assertions.
pub fn ops(records: &[serde_json::Value]) -> Vec<(String, String)> {
    records
        .iter()
        .map(|r| (r["op"].as_str().unwrap_or("?").to_string(), r["source"]["key"].as_str().unwrap_or("?").to_string()))
        .collect()
}
