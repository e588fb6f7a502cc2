//! A [`RealWorld`] that millrace runs in as the least-privileged accounts the dev environment
//! makes (`millrace_svc` in PostgreSQL: LOGIN and REPLICATION only, a password, scram; and in
//! MariaDB: no right at all), given, as an administrator would, exactly what
//! `millrace setup --print-sql` prints for this world's databases.

use super::odoo::RealWorld;
use super::{connect, env_path, millrace};

pub struct LeastPrivileged {
    pub world: RealWorld,
    /// The config millrace runs with: the service accounts, passwords in files.
    pub config: String,
}

impl LeastPrivileged {
    /// `None` (after a SKIPPED line) without a real Odoo.
    pub async fn new(test: &str, mappings: &[&str]) -> Option<LeastPrivileged> {
        let world = RealWorld::new(test, mappings).await?;
        // RealWorld's setup ran as a superuser: undo it, so that what the administrator runs
        // below is all there is.
        let admin = world.odoo.db.client().await;
        admin
            .batch_execute(&format!(
                "DROP PUBLICATION millrace_pub; DROP SCHEMA millrace CASCADE; SELECT pg_drop_replication_slot('{}');",
                world.odoo.db.slot()
            ))
            .await
            .expect("undo the superuser's setup");
        let user = env_path("MILLRACE_TEST_SERVICE_USER");
        let password_file = world.dir.path().join("service-password");
        std::fs::write(&password_file, format!("{}\n", env_path("MILLRACE_TEST_SERVICE_PASSWORD")))
            .expect("password file");
        let admin_config = std::fs::read_to_string(&world.config).expect("read config");
        let url = format!(
            "postgres://{user}@127.0.0.1:{}/{}?sslmode=disable",
            env_path("MILLRACE_TEST_PG_PORT"),
            world.odoo.db.name
        );
        let odbc = format!("{}Database={};", env_path("MILLRACE_TEST_SERVICE_ODBC"), world.maria.name);
        let config_text = admin_config
            .lines()
            .map(|line| {
                if line.starts_with("url = \"postgres") {
                    format!("url = \"{url}\"\npassword_file = \"{}\"", password_file.display())
                } else if line.starts_with("connection_string = ") {
                    format!("connection_string = \"{odbc}\"\npassword_file = \"{}\"", password_file.display())
                } else {
                    line.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let config = world.dir.path().join("service.toml").display().to_string();
        std::fs::write(&config, config_text).expect("write the service config");
        let lp = LeastPrivileged { world, config };
        lp.grant().await;
        let out = millrace(&[], &["--config", &lp.config, "setup"]);
        assert!(out.status.success(), "setup as the service role: {}", String::from_utf8_lossy(&out.stderr));
        Some(lp)
    }

    /// What `millrace setup --print-sql --for <part>` prints, as the service's config.
    pub fn printed(&self, part: &str) -> String {
        let out = millrace(&[], &["--config", &self.config, "setup", "--print-sql", "--for", part]);
        assert!(out.status.success(), "setup --print-sql --for {part}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("UTF-8 statements")
    }

    /// Runs what `setup --print-sql` prints, each part on its database as its administrator.
    pub async fn grant(&self) {
        let admin = connect(&self.world.odoo.db.url).await;
        for part in ["odoo", "state"] {
            let sql = self.printed(part);
            admin.batch_execute(&sql).await.unwrap_or_else(|e| panic!("{sql}\n{e:?}"));
        }
        self.world.maria.exec(&self.printed("erp"));
    }

    pub fn start(&self) -> super::sync::Service {
        super::sync::Service::start(&self.config, self.world.dir.path())
    }
}

impl Drop for LeastPrivileged {
    fn drop(&mut self) {
        // MariaDB keeps table privileges after their database is dropped.
        let db = &self.world.maria.name;
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.world.maria.exec(&format!(
                "DELETE FROM mysql.tables_priv WHERE Db = '{db}'; DELETE FROM mysql.db WHERE Db = '{db}'; FLUSH PRIVILEGES;"
            ))
        }));
    }
}
