//! `millrace check`, rights: per connection, what the configured role lacks (an error naming the
//! table, the right and the GRANT that gives it) and what it holds beyond what the mappings need
//! (a warning: superuser, write rights on tables millrace never writes). What is needed comes
//! from [`crate::grants`]; `millrace setup --print-sql` prints the statements.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context;
use tokio_postgres::Client;

use crate::erp::odbc::OdbcConnection;
use crate::erp::{Dialect, LegacyConnection, ReadRow};
use crate::grants::{ErpNeeds, Needs};
use crate::model::row_change::quote_ident;
use crate::model::Value;

/// What the rights check found.
#[derive(Debug, Default)]
pub struct Findings {
    pub problems: Vec<String>,
    pub warnings: Vec<String>,
}

/// Up to five names, and how many more.
fn some_of(names: &[String]) -> String {
    let mut text = names.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > 5 {
        text.push_str(&format!(" and {} more", names.len() - 5));
    }
    text
}

/// The role on Odoo's database: REPLICATION, SELECT on every mapped table, and no write right.
pub async fn odoo(client: &Client, needs: &Needs, findings: &mut Findings) -> anyhow::Result<()> {
    let row = client
        .query_one(
            "SELECT current_user::text, rolsuper, rolreplication FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .context("reading the role's attributes")?;
    let (role, superuser, replication): (String, bool, bool) = (row.get(0), row.get(1), row.get(2));
    let quoted = quote_ident(&role);
    if superuser {
        findings.warnings.push(format!(
            "odoo.url: role {role} is a superuser; millrace needs only LOGIN, REPLICATION and SELECT on the mapped tables \
             (`millrace setup --print-sql --for odoo` prints the grants)"
        ));
        return Ok(());
    }
    if !replication {
        findings.problems.push(format!(
            "odoo.url: role {role} lacks the REPLICATION attribute, needed to stream changes from its slot: ALTER ROLE {quoted} REPLICATION;"
        ));
    }
    let schemas: Vec<String> = needs.odoo_tables.iter().map(|t| t.schema.to_string()).collect();
    let names: Vec<String> = needs.odoo_tables.iter().map(|t| t.name.to_string()).collect();
    let rows = client
        .query(
            "SELECT t.schema, t.name, has_schema_privilege(n.oid, 'USAGE'), has_table_privilege(c.oid, 'SELECT')
               FROM unnest($1::text[], $2::text[]) AS t(schema, name)
               JOIN pg_namespace n ON n.nspname = t.schema
               JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = t.name",
            &[&schemas, &names],
        )
        .await
        .context("reading the role's rights on the mapped tables")?;
    let mut no_usage = BTreeSet::new();
    for row in &rows {
        let (schema, name, usage, select): (String, String, bool, bool) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        if !usage && no_usage.insert(schema.clone()) {
            findings.problems.push(format!(
                "odoo.url: role {role} lacks USAGE on schema {schema}: GRANT USAGE ON SCHEMA {} TO {quoted};",
                quote_ident(&schema)
            ));
        }
        if !select {
            findings.problems.push(format!(
                "odoo.url: role {role} lacks SELECT on table {schema}.{name}, which the mappings read: GRANT SELECT ON {}.{} TO {quoted};",
                quote_ident(&schema),
                quote_ident(&name)
            ));
        }
    }
    // Any write right on Odoo's tables is beyond need: millrace writes into Odoo through its API.
    let rows = client
        .query(
            "SELECT n.nspname::text || '.' || c.relname::text, c.relowner = r.oid
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, pg_roles r
              WHERE r.rolname = current_user AND c.relkind IN ('r', 'p')
                AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'millrace') AND n.nspname NOT LIKE 'pg_toast%'
                AND has_table_privilege(c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')
              ORDER BY 1",
            &[],
        )
        .await
        .context("reading the role's write rights")?;
    let writable: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    let owned = rows.iter().filter(|r| r.get::<_, bool>(1)).count();
    if owned > 0 {
        findings.warnings.push(format!(
            "odoo.url: role {role} owns {owned} of Odoo's tables (is it Odoo's own role?), so it may write them all; \
             millrace writes into Odoo only through its API: give it a role of its own (`millrace setup --print-sql --for odoo`)"
        ));
    } else if !writable.is_empty() {
        findings.warnings.push(format!(
            "odoo.url: role {role} may write {} of Odoo's tables ({}), which millrace never writes (it writes into Odoo only \
             through its API): REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON them FROM {quoted};",
            writable.len(),
            some_of(&writable)
        ));
    }
    Ok(())
}

/// The role of the control state: owner of the schema `millrace` and its tables, or allowed to
/// create it.
pub async fn state(client: &Client, findings: &mut Findings) -> anyhow::Result<()> {
    let row = client
        .query_one(
            "SELECT current_user::text, r.rolsuper, n.oid IS NOT NULL,
                    coalesce(has_schema_privilege(n.oid, 'CREATE, USAGE'), false),
                    has_database_privilege(current_database(), 'CREATE')
               FROM pg_roles r LEFT JOIN pg_namespace n ON n.nspname = 'millrace'
              WHERE r.rolname = current_user",
            &[],
        )
        .await
        .context("reading the control state role's rights")?;
    let (role, superuser, exists, usable, can_create): (String, bool, bool, bool, bool) =
        (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
    let quoted = quote_ident(&role);
    if superuser {
        // Said once for Odoo's connection when it is the same role; a state elsewhere says it here.
        return Ok(());
    }
    if !exists {
        if !can_create {
            findings.problems.push(format!(
                "state: role {role} may not create the control schema millrace: CREATE SCHEMA millrace AUTHORIZATION {quoted}; (as an administrator)"
            ));
        }
        return Ok(());
    }
    if !usable {
        findings.problems.push(format!(
            "state: role {role} may not use the control schema millrace: ALTER SCHEMA millrace OWNER TO {quoted};"
        ));
    }
    let foreign: Vec<String> = client
        .query(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = 'millrace' AND tableowner <> current_user ORDER BY 1",
            &[],
        )
        .await
        .context("reading the control tables' owners")?
        .iter()
        .map(|r| format!("millrace.{}", r.get::<_, String>(0)))
        .collect();
    if !foreign.is_empty() {
        findings.problems.push(format!(
            "state: {} control tables ({}) belong to another role, so role {role} cannot migrate them: ALTER TABLE … OWNER TO {quoted}; for each",
            foreign.len(),
            some_of(&foreign)
        ));
    }
    Ok(())
}

fn cell_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::Text(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        Value::Bool(b) => Some(if *b { "1" } else { "0" }.into()),
        Value::Decimal(d) => Some(d.to_string()),
        _ => None,
    }
}

/// Rows of a catalog query as text cells.
fn query_text(
    conn: &mut OdbcConnection,
    what: &str,
    sql: &str,
    params: &[Value],
) -> Result<Vec<Vec<Option<String>>>, String> {
    let mut out = Vec::new();
    conn.select(what, sql, params, &mut |batch| {
        for row in batch.rows {
            let values = match row {
                ReadRow::Ok(values) => values,
                ReadRow::Bad { values, .. } => values,
            };
            out.push((0..values.len()).map(|i| cell_text(values.get(i))).collect());
        }
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    Ok(out)
}

/// The ERP account: the rights each table needs, and none to write where nothing is written.
pub fn erp(conn: &mut OdbcConnection, needs: &ErpNeeds, findings: &mut Findings) {
    let result = match conn.dialect() {
        Dialect::MySql => erp_mysql(conn, needs, findings),
        Dialect::Postgres => erp_per_table(conn, needs, findings, PerTable::Postgres),
        Dialect::MsSql => erp_per_table(conn, needs, findings, PerTable::MsSql),
        Dialect::Ansi => {
            findings.warnings.push(
                "legacy: this database's rights cannot be read by millrace (not MariaDB/MySQL, SQL Server or PostgreSQL); \
                 `millrace setup --print-sql --for erp` prints what the account needs"
                    .into(),
            );
            Ok(())
        }
    };
    if let Err(error) = result {
        findings.warnings.push(format!("legacy: the account's rights could not be read: {error}"));
    }
}

fn missing(findings: &mut Findings, user: &str, table: &str, right: &str, why: &str, grant: String) {
    findings.problems.push(format!("legacy: user {user} lacks {right} on table {table} ({why}): {grant}"));
}

fn why(right: &str) -> &'static str {
    match right {
        "SELECT" => "it is polled or looked up",
        "DELETE" => "an Odoo delete deletes its rows (on_delete = \"delete\")",
        _ => "the mappings write it",
    }
}

/// MariaDB/MySQL: the account's privileges from `information_schema`, global, per database and
/// per table.
fn erp_mysql(conn: &mut OdbcConnection, needs: &ErpNeeds, findings: &mut Findings) -> Result<(), String> {
    const GRANTEE: &str = "CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')";
    let sql = format!(
        "SELECT 'global', NULL, NULL, PRIVILEGE_TYPE, CURRENT_USER(), DATABASE() FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = {GRANTEE}
         UNION ALL SELECT 'schema', TABLE_SCHEMA, NULL, PRIVILEGE_TYPE, CURRENT_USER(), DATABASE() FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = {GRANTEE}
         UNION ALL SELECT 'table', TABLE_SCHEMA, TABLE_NAME, PRIVILEGE_TYPE, CURRENT_USER(), DATABASE() FROM information_schema.TABLE_PRIVILEGES WHERE GRANTEE = {GRANTEE}"
    );
    let rows = query_text(conn, "information_schema privileges", &sql, &[])?;
    let user = rows.first().and_then(|r| r.get(4).cloned().flatten()).unwrap_or_else(|| "(this account)".into());
    let current_db = rows.first().and_then(|r| r.get(5).cloned().flatten()).or_else(|| needs.database.clone());
    let mut global: BTreeSet<String> = BTreeSet::new();
    let mut schema: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut table: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for r in rows {
        let get = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
        let privilege = get(3).to_ascii_uppercase();
        match get(0).as_str() {
            "global" => {
                global.insert(privilege);
            }
            "schema" => {
                schema.entry(get(1).to_ascii_lowercase()).or_default().insert(privilege);
            }
            _ => {
                table.entry((get(1).to_ascii_lowercase(), get(2).to_ascii_lowercase())).or_default().insert(privilege);
            }
        }
    }
    // Where a mapping's table lives: `db.table`, or the connection's database.
    let place = |name: &str| -> (String, String) {
        match name.rsplit_once('.') {
            Some((db, t)) => (db.to_ascii_lowercase(), t.to_ascii_lowercase()),
            None => (current_db.clone().unwrap_or_default().to_ascii_lowercase(), name.to_ascii_lowercase()),
        }
    };
    let has = |name: &str, right: &str| {
        let (db, t) = place(name);
        global.contains(right)
            || schema.get(&db).is_some_and(|p| p.contains(right))
            || table.get(&(db, t)).is_some_and(|p| p.contains(right))
    };
    for (name, rights) in &needs.tables {
        for right in rights.names() {
            if !has(name, right) {
                let grant = format!("GRANT {right} ON {} TO {};", needs.grant_table(name), mysql_grantee(&user));
                missing(findings, &user, name, right, why(right), grant);
            }
        }
    }
    const WRITES: [&str; 7] = ["INSERT", "UPDATE", "DELETE", "DROP", "ALTER", "CREATE", "TRUNCATE"];
    let beyond: Vec<&String> = global.iter().filter(|p| p.as_str() != "USAGE").collect();
    if !beyond.is_empty() {
        let list = beyond.iter().map(|s| s.as_str()).collect::<Vec<_>>();
        findings.warnings.push(format!(
            "legacy: user {user} holds global privileges ({}) on every database; millrace needs only the per-table rights \
             `millrace setup --print-sql --for erp` prints",
            some_of(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        ));
        return Ok(());
    }
    for (db, privileges) in &schema {
        let writes: Vec<String> = privileges.iter().filter(|p| WRITES.contains(&p.as_str())).cloned().collect();
        if !writes.is_empty() {
            findings.warnings.push(format!(
                "legacy: user {user} may {} every table of database {db}; millrace needs write rights only on the tables the \
                 mappings write (`millrace setup --print-sql --for erp`)",
                writes.join(", ")
            ));
        }
    }
    for ((db, t), privileges) in &table {
        let needed = needs.tables.iter().find(|(name, _)| place(name) == (db.clone(), t.clone())).map(|(_, r)| *r);
        let extra: Vec<&str> = privileges
            .iter()
            .map(String::as_str)
            .filter(|p| WRITES.contains(p))
            .filter(|p| match needed {
                Some(r) => !r.names().contains(p),
                None => true,
            })
            .collect();
        if !extra.is_empty() {
            findings.warnings.push(format!(
                "legacy: user {user} may {} table {db}.{t}, which no mapping needs it to: REVOKE {} ON `{db}`.`{t}` FROM {};",
                extra.join(", "),
                extra.join(", "),
                mysql_grantee(&user)
            ));
        }
    }
    Ok(())
}

/// `user@host` as a GRANT names it: `'user'@'host'`.
fn mysql_grantee(current_user: &str) -> String {
    match current_user.rsplit_once('@') {
        Some((user, host)) => format!("'{}'@'{}'", user.replace('\'', "''"), host.replace('\'', "''")),
        None => format!("'{}'", current_user.replace('\'', "''")),
    }
}

#[derive(Clone, Copy)]
enum PerTable {
    Postgres,
    MsSql,
}

/// PostgreSQL and SQL Server answer per table and right (`has_table_privilege`,
/// `HAS_PERMS_BY_NAME`).
fn erp_per_table(
    conn: &mut OdbcConnection,
    needs: &ErpNeeds,
    findings: &mut Findings,
    kind: PerTable,
) -> Result<(), String> {
    let (who, superuser) = match kind {
        PerTable::Postgres => ("SELECT current_user, CASE WHEN rolsuper THEN 1 ELSE 0 END FROM pg_roles WHERE rolname = current_user", "superuser"),
        PerTable::MsSql => (
            "SELECT USER_NAME(), CASE WHEN IS_SRVROLEMEMBER('sysadmin') = 1 OR IS_ROLEMEMBER('db_owner') = 1 THEN 1 ELSE 0 END",
            "sysadmin or db_owner",
        ),
    };
    let rows = query_text(conn, "the account", who, &[])?;
    let user = rows.first().and_then(|r| r.first().cloned().flatten()).unwrap_or_else(|| "(this account)".into());
    if rows.first().and_then(|r| r.get(1).cloned().flatten()).as_deref() == Some("1") {
        findings.warnings.push(format!(
            "legacy: user {user} is {superuser}; millrace needs only the per-table rights `millrace setup --print-sql --for erp` prints"
        ));
        return Ok(());
    }
    let dialect = needs.dialect;
    for (name, rights) in &needs.tables {
        let quoted = dialect.quote_table(name);
        let ask = |right: &str| match kind {
            PerTable::Postgres => format!("SELECT CASE WHEN has_table_privilege(?, '{right}') THEN 1 ELSE 0 END"),
            PerTable::MsSql => format!("SELECT HAS_PERMS_BY_NAME(?, 'OBJECT', '{right}')"),
        };
        let mut check = |right: &str, needed: bool| -> Result<(), String> {
            let rows = query_text(conn, name, &ask(right), &[Value::Text(quoted.clone())])?;
            let has = rows.first().and_then(|r| r.first().cloned().flatten()).as_deref() == Some("1");
            if needed && !has {
                let grant = format!("GRANT {right} ON {quoted} TO {};", dialect.quote(&user));
                missing(findings, &user, name, right, why(right), grant);
            } else if !needed && has {
                findings.warnings.push(format!(
                    "legacy: user {user} may {right} table {name}, which no mapping needs it to: REVOKE {right} ON {quoted} FROM {};",
                    dialect.quote(&user)
                ));
            }
            Ok(())
        };
        for right in ["SELECT", "INSERT", "UPDATE", "DELETE"] {
            check(right, rights.names().contains(&right))?;
        }
        if rights.view_change_tracking && matches!(kind, PerTable::MsSql) {
            check("VIEW CHANGE TRACKING", true)?;
        }
    }
    Ok(())
}
