//! The replication connection authenticates the way libpq does (trust, cleartext password, md5,
//! SCRAM-SHA-256) and honours every `sslmode`, against roles this test creates. `dev-env.sh`
//! writes the matching pg_hba.conf lines for members of the mr_auth_* group roles.

mod common;

use common::{millrace, setup, TestDb};

struct Role {
    name: String,
}

impl Role {
    async fn create(db: &TestDb, suffix: &str, group: &str, password: Option<&str>, encryption: &str) -> Role {
        let name = format!("{}_{suffix}", db.name);
        let admin = common::connect(&common::admin_url()).await;
        let password_clause = password.map(|p| format!("PASSWORD '{p}'")).unwrap_or_default();
        admin
            .batch_execute(&format!(
                "SET password_encryption = '{encryption}';
                 CREATE ROLE \"{name}\" LOGIN REPLICATION {password_clause} IN ROLE {group};"
            ))
            .await
            .unwrap();
        Role { name }
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let _ = std::process::Command::new("psql")
                .arg(common::admin_url())
                .arg("-qc")
                .arg(format!("DROP ROLE IF EXISTS \"{name}\""))
                .output();
        })
        .join();
    }
}

/// A database with one published table holding one row, set up by the superuser.
async fn prepared_db(prefix: &str) -> (TestDb, Vec<(String, String)>) {
    let db = TestDb::create(prefix).await;
    db.client().await.batch_execute("CREATE TABLE stock_move (id int PRIMARY KEY, name text)").await.unwrap();
    let env = db.millrace_env(&["public.stock_move"]);
    setup(&env);
    db.client().await.batch_execute("INSERT INTO stock_move VALUES (1, 'seen')").await.unwrap();
    (db, env)
}

fn env_with_url(env: &[(String, String)], url: String) -> Vec<(String, String)> {
    let mut env = env.to_vec();
    env[0].1 = url;
    env
}

fn url(user: &str, password: Option<&str>, host: &str, db: &str, query: &str) -> String {
    let port = common::env_path("MILLRACE_TEST_PG_PORT");
    let auth = match password {
        Some(p) => format!("{user}:{p}"),
        None => user.to_string(),
    };
    format!("postgres://{auth}@{host}:{port}/{db}?{query}")
}

fn tail_sees_the_row(env: &[(String, String)]) -> Result<(), String> {
    let out = millrace(env, &["tail", "--json", "--until-caught-up"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        return Err(stderr);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("\"name\":\"seen\""), "connected but the row is missing: {stdout} {stderr}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn each_password_method_authenticates_and_a_wrong_password_is_refused() {
    let (db, env) = prepared_db("auth").await;
    let cases = [
        ("trust", "mr_auth_trust", None, "scram-sha-256"),
        ("cleartext", "mr_auth_password", Some("pw-clear-1"), "scram-sha-256"),
        ("md5", "mr_auth_md5", Some("pw-md5-1"), "md5"),
        ("scram", "mr_auth_scram", Some("pw-scram-1"), "scram-sha-256"),
    ];
    for (suffix, group, password, encryption) in cases {
        let role = Role::create(&db, suffix, group, password, encryption).await;
        let env = env_with_url(&env, url(&role.name, password, "127.0.0.1", &db.name, "sslmode=disable"));
        tail_sees_the_row(&env).unwrap_or_else(|e| panic!("{suffix}: {e}"));

        if password.is_some() {
            let wrong = env_with_url(&env, url(&role.name, Some("wrong-pw"), "127.0.0.1", &db.name, "sslmode=disable"));
            let err = tail_sees_the_row(&wrong).expect_err(suffix);
            assert!(err.contains("28P01") && err.contains("password authentication failed"), "{suffix}: {err}");
            assert!(!err.contains("wrong-pw"), "the password must not be printed: {err}");

            let missing = env_with_url(&env, url(&role.name, None, "127.0.0.1", &db.name, "sslmode=disable"));
            let err = tail_sees_the_row(&missing).expect_err(suffix);
            assert!(err.contains("asks for a password") && err.contains(&role.name), "{suffix}: {err}");
        }
    }

    // The password may also come from a file instead of the URL.
    let role = Role::create(&db, "pwfile", "mr_auth_scram", Some("from-a-file"), "scram-sha-256").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pw");
    std::fs::write(&file, "from-a-file\n").unwrap();
    let mut env = env_with_url(&env, url(&role.name, None, "127.0.0.1", &db.name, "sslmode=disable"));
    env.push(("MILLRACE_ODOO_PASSWORD_FILE".into(), file.display().to_string()));
    tail_sees_the_row(&env).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_modes_verify_the_certificate_as_libpq_does() {
    let (db, env) = prepared_db("tls").await;
    // Members of mr_auth_tls may only connect over TLS (hostssl).
    let role = Role::create(&db, "tls", "mr_auth_tls", Some("pw-tls-1"), "scram-sha-256").await;
    let ca = common::env_path("MILLRACE_TEST_PG_CA");
    let other_ca = common::env_path("MILLRACE_TEST_PG_OTHER_CA");
    let case =
        |host: &str, query: String| env_with_url(&env, url(&role.name, Some("pw-tls-1"), host, &db.name, &query));

    // The server certificate names "localhost" only.
    tail_sees_the_row(&case("localhost", format!("sslmode=verify-full&sslrootcert={ca}")))
        .expect("verify-full, right host");
    tail_sees_the_row(&case("127.0.0.1", format!("sslmode=verify-ca&sslrootcert={ca}")))
        .expect("verify-ca ignores the host name");
    tail_sees_the_row(&case("127.0.0.1", "sslmode=require".into())).expect("require encrypts without verifying");
    tail_sees_the_row(&case("127.0.0.1", "sslmode=prefer".into())).expect("prefer uses TLS when offered");

    let err = tail_sees_the_row(&case("127.0.0.1", format!("sslmode=verify-full&sslrootcert={ca}"))).unwrap_err();
    assert!(err.contains("TLS handshake") && err.contains("not valid for name"), "wrong host name: {err}");
    let err = tail_sees_the_row(&case("localhost", format!("sslmode=verify-full&sslrootcert={other_ca}"))).unwrap_err();
    assert!(err.contains("TLS handshake") && err.contains("UnknownIssuer"), "wrong CA: {err}");
    let err = tail_sees_the_row(&case("127.0.0.1", "sslmode=disable".into())).unwrap_err();
    assert!(err.contains("28000") && err.contains("no encryption"), "hostssl-only role without TLS: {err}");

    // Ordinary SQL connections (setup) follow the same sslmode rules.
    let out = millrace(&case("localhost", format!("sslmode=verify-full&sslrootcert={ca}")), &["setup", "--print-sql"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = millrace(&case("127.0.0.1", format!("sslmode=verify-full&sslrootcert={ca}")), &["setup", "--print-sql"]);
    assert!(!out.status.success());
}
