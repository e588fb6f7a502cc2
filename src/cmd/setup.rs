//! `millrace setup`: create the publication and the slot and the control schema; or print what
//! would be run. (No replication origin: millrace writes into Odoo only through its API.)

use std::io::Write;

use anyhow::Context;

use crate::config::{Config, OdooConfig};
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

pub async fn run(config: &Config, print_sql: bool) -> anyhow::Result<()> {
    let odoo = odoo_with_mapped_tables(config)?;
    let odoo = &odoo;
    let client = crate::pg::connect(&odoo.conn).await?;
    let steps = setup::plan(&client, odoo).await?;
    let mut out = std::io::stdout().lock();
    if print_sql {
        let state = crate::pg::connect(config.state()?).await?;
        let schema_exists =
            crate::state::StateStore::schema_exists(&state).await.context("reading the control schema")?;
        if steps.is_empty() && schema_exists {
            writeln!(out, "-- nothing to do: publication {} and slot {} are in place", odoo.publication, odoo.slot)?;
        }
        for step in &steps {
            writeln!(out, "{}", step.sql())?;
        }
        if !schema_exists {
            writeln!(out, "CREATE SCHEMA millrace; -- and the control tables (CREATE TABLE IF NOT EXISTS …)")?;
        }
        return Ok(());
    }
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
