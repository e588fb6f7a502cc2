//! `millrace setup`: create the publication and the slot and the control schema; or print what
//! would be run. (No replication origin: millrace writes into Odoo only through its API.)

use std::io::Write;

use anyhow::Context;

use crate::config::{Config, LegacyConfig, OdooConfig};
use crate::mapping::Mappings;
use crate::model::TableName;
use crate::source::odoo::setup;

/// The Odoo section with the tables the mappings read added to `odoo.tables`.
pub fn odoo_with_mapped_tables(config: &Config) -> anyhow::Result<OdooConfig> {
    let mut odoo = config.odoo()?.clone();
    if config.sync.mappings.is_dir() {
        let mappings = Mappings::load_dir(&config.sync.mappings)?;
        for table in mappings.odoo_tables() {
            let table = TableName::parse(&table);
            if !odoo.tables.contains(&table) {
                odoo.tables.push(table);
            }
        }
    }
    Ok(odoo)
}

/// The `[legacy]` section with the tables the mappings read added, each reading only the
/// columns the mappings use.
pub(crate) fn legacy_config(config: &Config, mappings: &Mappings) -> anyhow::Result<LegacyConfig> {
    let mut legacy = config.legacy()?.clone();
    // A table configured by hand keeps its settings but reads only what the mappings use.
    for table in &mut legacy.tables {
        table.read_only(mappings.legacy_read_columns(&table.table));
    }
    for table in mappings.legacy_tables() {
        if !legacy.tables.iter().any(|t| t.table == table.table) {
            legacy.tables.push(table);
        }
    }
    Ok(legacy)
}

/// Which database `setup --print-sql --for` prints the statements of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SetupPart {
    /// Odoo's database: the role's attributes, read rights, the publication.
    Odoo,
    /// The control state's database: the schema millrace owns.
    State,
    /// The ERP's database: read and write rights per table.
    Erp,
}

pub async fn run(config: &Config, print_sql: bool, part: Option<SetupPart>) -> anyhow::Result<()> {
    let odoo = odoo_with_mapped_tables(config)?;
    let odoo = &odoo;
    if print_sql {
        return print_sql_for(config, odoo, part).await;
    }
    let client = crate::pg::connect(&odoo.conn).await?;
    let steps = setup::plan(&client, odoo).await?;
    let mut out = std::io::stdout().lock();
    setup::apply(&client, &steps).await.context("setup failed part-way; it is safe to run again")?;
    if steps.is_empty() {
        writeln!(out, "publication {} and slot {} already in place; nothing to do", odoo.publication, odoo.slot)?;
    } else {
        for step in &steps {
            writeln!(out, "done: {}", step.sql())?;
        }
    }
    crate::state::StateStore::connect(config.state()?).await.context("creating the control schema")?;
    writeln!(out, "control schema millrace in place")?;
    Ok(())
}

/// What an administrator runs, database by database, for millrace to work with the least
/// privileges (see `sql/grants/`); nothing is run.
async fn print_sql_for(config: &Config, odoo: &OdooConfig, part: Option<SetupPart>) -> anyhow::Result<()> {
    let mappings =
        if config.sync.mappings.is_dir() { Mappings::load_dir(&config.sync.mappings)? } else { Mappings::default() };
    let legacy = match config.legacy() {
        Ok(_) => Some(legacy_config(config, &mappings)?),
        Err(_) => None,
    };
    let mut needs = crate::grants::needs(odoo, config.state()?, legacy.as_ref(), &mappings);
    let wants = |p: SetupPart| part.is_none_or(|wanted| wanted == p);
    let mut text = String::new();
    if wants(SetupPart::Odoo) {
        let client = crate::pg::connect(&odoo.conn).await?;
        let steps = setup::plan_for_administrator(&client, odoo).await?;
        // Names an expression seemed to read that are no table (`EXTRACT(… FROM x)`) are left out.
        let schemas: Vec<String> = needs.odoo_tables.iter().map(|t| t.schema.to_string()).collect();
        let names: Vec<String> = needs.odoo_tables.iter().map(|t| t.name.to_string()).collect();
        let existing: std::collections::BTreeSet<TableName> = client
            .query(
                "SELECT t.schema, t.name FROM unnest($1::text[], $2::text[]) AS t(schema, name)
                  WHERE EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                                 WHERE n.nspname = t.schema AND c.relname = t.name)",
                &[&schemas, &names],
            )
            .await
            .context("looking up the tables to grant")?
            .iter()
            .map(|r| TableName::new(r.get::<_, String>(0), r.get::<_, String>(1)))
            .collect();
        needs.odoo_tables.retain(|t| existing.contains(t));
        let superuser: bool = client
            .query_one("SELECT rolsuper FROM pg_roles WHERE rolname = current_user", &[])
            .await
            .context("reading the role's attributes")?
            .get(0);
        let mut odoo_sql = needs.odoo_sql();
        if superuser {
            // Never print a statement that would demote an administrator's own account.
            odoo_sql = odoo_sql.replace(
                "ALTER ROLE",
                "-- the configured role is a superuser: give millrace a role of its own, then\n-- ALTER ROLE",
            );
        }
        text.push_str(&odoo_sql);
        text.push_str("-- The publication (only a table's owner may publish it):\n");
        let mut published = true;
        for step in &steps {
            match step {
                // The slot is millrace's own (`millrace setup`, as its role): made by hand ahead
                // of time, it would keep WAL until millrace first reads it.
                setup::SetupStep::CreateSlot { .. } => text.push_str(&format!(
                    "-- then, as millrace's role, `millrace setup` creates the slot: {}\n",
                    step.sql()
                )),
                _ => {
                    published = false;
                    text.push_str(&step.sql());
                    text.push('\n');
                }
            }
        }
        if published {
            text.push_str(&format!("-- publication {} is in place\n", odoo.publication));
        }
    }
    if wants(SetupPart::State) {
        text.push_str(&needs.state_sql());
    }
    if wants(SetupPart::Erp) {
        match &needs.erp {
            Some(erp) => text.push_str(&erp.sql()),
            None => text.push_str("-- no [legacy] section: nothing to grant on an ERP\n"),
        }
    }
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(())
}
