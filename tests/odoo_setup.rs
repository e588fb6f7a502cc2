//! `millrace setup`: creates the publication and slot idempotently, prints its SQL on request,
//! and refuses, with the fix spelled out, when the database cannot feed a logical slot.

mod common;

use common::{millrace, TestDb};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn print_sql_shows_the_statements_and_runs_nothing_then_setup_is_idempotent() {
    let db = TestDb::create("setup_idem").await;
    let c = db.client().await;
    c.batch_execute("CREATE TABLE stock_move (id int PRIMARY KEY); CREATE TABLE stock_lot (id int PRIMARY KEY);")
        .await
        .unwrap();
    let env = db.millrace_env(&["public.stock_move"]);

    let out = millrace(&env, &["setup", "--print-sql"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let sql = stdout(&out);
    assert!(sql.contains("CREATE PUBLICATION \"millrace_pub\" FOR TABLE \"public\".\"stock_move\";"), "{sql}");
    assert!(sql.contains(&format!("SELECT pg_create_logical_replication_slot('{}', 'pgoutput');", db.slot())), "{sql}");
    let publications: i64 = c.query_one("SELECT count(*) FROM pg_publication", &[]).await.unwrap().get(0);
    assert_eq!(publications, 0, "--print-sql must not create anything");

    let out = millrace(&env, &["setup"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let slot_plugin: String = c
        .query_one("SELECT plugin::text FROM pg_replication_slots WHERE slot_name = $1", &[&db.slot()])
        .await
        .unwrap()
        .get(0);
    assert_eq!(slot_plugin, "pgoutput");

    let out = millrace(&env, &["setup"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("nothing to do"), "{}", stdout(&out));

    // Adding a table to the configuration updates the publication, and only that.
    let env = db.millrace_env(&["public.stock_move", "public.stock_lot"]);
    let out = millrace(&env, &["setup", "--print-sql", "--for", "odoo"]);
    let sql = stdout(&out);
    let statements: Vec<&str> = sql.lines().filter(|l| !l.starts_with("--")).collect();
    assert!(
        statements.contains(
            &"ALTER PUBLICATION \"millrace_pub\" SET TABLE \"public\".\"stock_lot\", \"public\".\"stock_move\";"
        ),
        "{sql}"
    );
    assert!(!sql.contains("CREATE PUBLICATION") && !sql.contains("pg_create_logical_replication_slot"), "{sql}");
    // The rights of the configured role to read both tables, and no write right.
    assert!(statements.contains(&"GRANT SELECT ON \"public\".\"stock_lot\" TO \"postgres\";"), "{sql}");
    assert!(!sql.contains("INSERT"), "{sql}");
    assert!(!statements.iter().any(|s| s.contains("NOSUPERUSER")), "never demotes a superuser: {sql}");
    assert!(millrace(&env, &["setup"]).status.success());
    let published: i64 = c
        .query_one("SELECT count(*) FROM pg_publication_tables WHERE pubname = 'millrace_pub'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(published, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn refuses_missing_tables_and_tables_without_a_key_naming_the_fix() {
    let db = TestDb::create("setup_refuse").await;
    let c = db.client().await;
    c.batch_execute("CREATE TABLE keyless (a int); CREATE TABLE nothing_identity (id int PRIMARY KEY); ALTER TABLE nothing_identity REPLICA IDENTITY NOTHING; CREATE VIEW v AS SELECT 1 AS x;")
        .await
        .unwrap();
    let env = db.millrace_env(&["public.keyless", "public.no_such_table", "public.nothing_identity", "public.v"]);
    let out = millrace(&env, &["setup"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("table public.keyless has no primary key and the default replica identity: updates and deletes would arrive without a key; run ALTER TABLE \"public\".\"keyless\" REPLICA IDENTITY FULL;"),
        "{err}"
    );
    assert!(err.contains("table public.no_such_table (in odoo.tables) does not exist in this database"), "{err}");
    assert!(err.contains("table public.nothing_identity has REPLICA IDENTITY NOTHING"), "{err}");
    assert!(err.contains("public.v (in odoo.tables) is a view, not a table"), "{err}");
    // Nothing was created while problems remained.
    let slots: i64 = c
        .query_one("SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", &[&db.slot()])
        .await
        .unwrap()
        .get(0);
    assert_eq!(slots, 0);

    c.batch_execute("ALTER TABLE keyless REPLICA IDENTITY FULL").await.unwrap();
    let env = db.millrace_env(&["public.keyless"]);
    let out = millrace(&env, &["setup"]);
    assert!(out.status.success(), "after the fix setup succeeds: {}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn refuses_a_role_without_replication() {
    let db = TestDb::create("setup_role").await;
    let c = db.client().await;
    let role = format!("{}_norepl", db.name);
    c.batch_execute(&format!(
        "CREATE TABLE stock_move (id int PRIMARY KEY);
         CREATE ROLE \"{role}\" LOGIN;
         GRANT CREATE ON DATABASE \"{}\" TO \"{role}\";
         ALTER TABLE stock_move OWNER TO \"{role}\";",
        db.name
    ))
    .await
    .unwrap();
    let mut env = db.millrace_env(&["public.stock_move"]);
    let url = url::Url::parse(&db.url).unwrap();
    let mut as_role = url.clone();
    as_role.set_username(&role).unwrap();
    env[0].1 = format!("{as_role}?sslmode=disable");
    let out = millrace(&env, &["setup"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!(
            "role {role} lacks the REPLICATION attribute needed to stream changes: run ALTER ROLE \"{role}\" REPLICATION;"
        )),
        "{}",
        stderr(&out)
    );
    drop(db);
    let admin = common::connect(&common::admin_url()).await;
    admin.batch_execute(&format!("DROP ROLE IF EXISTS \"{role}\"")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn refuses_a_server_without_wal_level_logical() {
    // dev-env.sh runs a second, throwaway server with the default wal_level=replica for this.
    let url = common::env_path("MILLRACE_TEST_PG_REPLICA_URL");
    let admin = common::connect(&url).await;
    admin.batch_execute("DROP TABLE IF EXISTS stock_move; CREATE TABLE stock_move (id int PRIMARY KEY)").await.unwrap();
    let env = vec![
        ("MILLRACE_ODOO_URL".to_string(), format!("{url}?sslmode=disable")),
        ("MILLRACE_ODOO_TABLES".to_string(), "public.stock_move".to_string()),
    ];
    let out = millrace(&env, &["setup"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("wal_level is 'replica', logical replication needs 'logical': run ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_configuration_exits_2_and_names_the_field() {
    let env = vec![("MILLRACE_ODOO_URL".to_string(), "postgres://u:topsecret@localhost/db?sslmode=maybe".to_string())];
    let out = millrace(&env, &["setup"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("odoo.url") && err.contains("sslmode=\"maybe\""), "{err}");
    assert!(!err.contains("topsecret"), "the password must not be printed: {err}");

    let out = millrace(&[], &["--config", "/nonexistent/millrace.toml", "setup"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("/nonexistent/millrace.toml"), "{}", stderr(&out));
}
