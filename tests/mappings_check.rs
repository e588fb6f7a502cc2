//! `millrace check` against live databases: the shipped mappings (mappings/) hold against a
//! real Odoo 17 schema (sql/odoo17) and the demo legacy ERP in MariaDB, reached through the
//! real ODBC driver; a mapping naming a column that does not exist fails the check, naming the
//! file and the column.

mod common;

use std::path::Path;

use common::legacy::MariaDb;
use common::{millrace, TestDb};

fn load_odoo_fixture(db: &TestDb) {
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

fn load_legacy_demo(maria: &MariaDb) {
    let root = env!("CARGO_MANIFEST_DIR");
    for file in ["schema.sql", "demo-data.sql"] {
        let sql = std::fs::read_to_string(format!("{root}/sql/legacy/mariadb/{file}")).expect("read legacy sql");
        maria.exec(&sql);
    }
}

/// The test database's URL with a password in it. The dev server trusts local connections, so
/// the password is never checked, but it must never be printed either.
fn url_with_password(url: &str, password: &str) -> String {
    let mut parsed = url::Url::parse(url).expect("test URL");
    parsed.set_password(Some(password)).expect("URL takes a password");
    format!("{parsed}?sslmode=disable")
}

/// The MariaDB password the ODBC connection string carries.
fn mariadb_password() -> String {
    let url = url::Url::parse(&common::env_path("MILLRACE_TEST_MARIADB_URL")).expect("MILLRACE_TEST_MARIADB_URL");
    url.password().unwrap_or_default().to_string()
}

fn write_config(dir: &Path, odoo: &TestDb, maria: &MariaDb, mappings: &Path) -> String {
    let url = url_with_password(&odoo.url, "odoo-pw-never-shown");
    let text = format!(
        "[odoo]\nurl = \"{url}\"\nslot = \"{slot}\"\npublication = \"millrace_check_pub\"\n\n\
         [legacy]\nkind = \"odbc\"\nconnection_string = \"{odbc}\"\n\n\
         [state]\nurl = \"{url}\"\n\n\
         [sync]\nmappings = \"{mappings}\"\n",
        slot = odoo.slot(),
        odbc = maria.odbc(),
        mappings = mappings.display(),
    );
    let path = dir.join("millrace.toml");
    std::fs::write(&path, text).expect("write config");
    path.display().to_string()
}

fn assert_no_secrets(what: &str, text: &str) {
    for secret in ["odoo-pw-never-shown".to_string(), mariadb_password()] {
        assert!(secret.is_empty() || !text.contains(&secret), "{what} shows a password: {text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn shipped_mappings_hold_against_both_databases_and_a_wrong_column_is_named() {
    let odoo = TestDb::create("mapcheck").await;
    load_odoo_fixture(&odoo);
    let maria = MariaDb::create("mapcheck");
    load_legacy_demo(&maria);
    let dir = tempfile::tempdir().expect("temp dir");
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings");
    let count = std::fs::read_dir(&shipped)
        .expect("mappings/")
        .filter(|e| e.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "toml")))
        .count();
    assert!(count >= 10, "the shipped mappings are all there ({count})");

    let config = write_config(dir.path(), &odoo, &maria, &shipped);
    let out = millrace(&[], &["--config", &config, "check"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "check of the shipped mappings failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains(&format!("ok: {count} mappings checked against both databases")), "{stdout}");
    assert!(!stdout.contains("error:"), "{stdout}");
    // Without [odoo.api] nothing can be written into Odoo: said, as a warning.
    assert!(stdout.contains("warning: odoo.api: not configured, so nothing is written into Odoo"), "{stdout}");
    // No slot or publication yet: warnings, not errors.
    assert!(
        stdout.contains(&format!("warning: odoo: replication slot {} does not exist yet", odoo.slot())),
        "{stdout}"
    );
    assert_no_secrets("check", &format!("{stdout}{stderr}"));

    // A copy of the mappings with one Odoo column and one legacy column misspelt.
    let broken = dir.path().join("mappings");
    std::fs::create_dir(&broken).expect("mkdir");
    for entry in std::fs::read_dir(&shipped).expect("mappings/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|x| x == "toml") {
            std::fs::copy(&path, broken.join(path.file_name().expect("file name"))).expect("copy mapping");
        }
    }
    let edit = |file: &str, from: &str, to: &str| {
        let path = broken.join(file);
        let text = std::fs::read_to_string(&path).expect("read mapping");
        assert!(text.contains(from), "{file} holds {from:?}");
        std::fs::write(&path, text.replacen(from, to, 1)).expect("write mapping");
    };
    edit("bom.toml", "column = \"product_qty\"", "column = \"product_quantity\"");
    edit("lot.toml", "column = \"LOT_NO\"", "column = \"LOT_NUMBER\"");
    let config = write_config(dir.path(), &odoo, &maria, &broken);
    let out = millrace(&[], &["--config", &config, "check"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "check must fail:\n{stdout}\n{stderr}");
    let odoo_line = stdout
        .lines()
        .find(|l| l.contains("product_quantity"))
        .unwrap_or_else(|| panic!("no line names the Odoo column:\n{stdout}"));
    assert!(odoo_line.starts_with("error: "), "{odoo_line}");
    assert!(odoo_line.contains(&broken.join("bom.toml").display().to_string()), "{odoo_line}");
    assert!(
        odoo_line.contains("entity bom, odoo side: column mrp_bom.product_quantity does not exist (field base_qty)"),
        "{odoo_line}"
    );
    let legacy_line = stdout
        .lines()
        .find(|l| l.contains("LOT_NUMBER"))
        .unwrap_or_else(|| panic!("no line names the legacy column:\n{stdout}"));
    assert!(legacy_line.contains(&broken.join("lot.toml").display().to_string()), "{legacy_line}");
    assert!(
        legacy_line.contains("entity lot, legacy side: column LOT_MASTER.LOT_NUMBER does not exist (field lot_no)"),
        "{legacy_line}"
    );
    // Both misspellings, nothing else.
    let errors: Vec<&str> = stdout.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 2, "{stdout}");
    assert!(stderr.contains("2 problems"), "{stderr}");
    assert!(!stdout.contains("ok:"), "{stdout}");
    assert_no_secrets("check", &format!("{stdout}{stderr}"));
}

/// Mappings that refer to each other in a cycle have no backfill order: `check` reports the
/// cycle, naming its entities in order, and `backfill` refuses to start with the same message,
/// before it creates anything.
#[tokio::test(flavor = "multi_thread")]
async fn a_mapping_cycle_is_reported_by_check_and_refused_by_backfill() {
    let odoo = TestDb::create("mapcycle").await;
    load_odoo_fixture(&odoo);
    let maria = MariaDb::create("mapcycle");
    load_legacy_demo(&maria);
    let dir = tempfile::tempdir().expect("temp dir");
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings");
    let cyclic = dir.path().join("mappings");
    std::fs::create_dir(&cyclic).expect("mkdir");
    for entry in std::fs::read_dir(&shipped).expect("mappings/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|x| x == "toml") {
            std::fs::copy(&path, cyclic.join(path.file_name().expect("file name"))).expect("copy mapping");
        }
    }
    // Items name their unit (item.toml's uom looks up uom_uom); now units look up items too
    // (nonsense, but every column it names exists, so the cycle is the only problem).
    let uom = cyclic.join("uom.toml");
    let text = std::fs::read_to_string(&uom).expect("read uom.toml");
    let from = "active = \"active\"";
    assert_eq!(text.matches(from).count(), 1, "uom.toml maps active once on the Odoo side");
    let to = "active = { column = \"active\", lookup = { table = \"product_product\", value = \"active\" } }";
    std::fs::write(&uom, text.replacen(from, to, 1)).expect("write uom.toml");
    let config = write_config(dir.path(), &odoo, &maria, &cyclic);
    let expected = "mapping cycle: item -> uom -> item (item -> uom: field uom looks up odoo table uom_uom; \
                    uom -> item: field active looks up odoo table product_product)";

    let out = millrace(&[], &["--config", &config, "check"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "check must fail:\n{stdout}\n{stderr}");
    let errors: Vec<&str> = stdout.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 1, "the cycle and nothing else:\n{stdout}");
    assert!(errors[0].starts_with(&format!("error: {expected}")), "{}", errors[0]);
    assert!(stderr.contains("1 problem"), "{stderr}");

    let out = millrace(&[], &["--config", &config, "backfill"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "backfill must refuse the mappings:\n{stdout}\n{stderr}");
    assert!(stderr.contains(expected), "{stderr}");
    assert!(stdout.is_empty(), "nothing was copied: {stdout}");
    // Refused before it started: no slot, no control schema.
    let client = odoo.client().await;
    let slot = client
        .query_opt("SELECT 1 FROM pg_replication_slots WHERE slot_name = $1", &[&odoo.slot()])
        .await
        .expect("read slots");
    assert!(slot.is_none(), "backfill created the slot");
    let schema =
        client.query_opt("SELECT 1 FROM pg_namespace WHERE nspname = 'millrace'", &[]).await.expect("read schemas");
    assert!(schema.is_none(), "backfill created the control schema");
    // Naming entities outside the cycle does not help: the mappings are wrong.
    let out = millrace(&[], &["--config", &config, "backfill", "--entity", "work_center"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(expected));
}
