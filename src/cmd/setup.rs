//! `millrace setup`: create the publication and the slot, the control schema and the replication
//! origin millrace writes into Odoo under; or print what would be run.

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
    let origin = &config.origin();
    if print_sql {
        let origin_exists = client
            .query_opt("SELECT 1 FROM pg_replication_origin WHERE roname = $1", &[origin])
            .await
            .context("reading replication origins")?
            .is_some();
        let state = crate::pg::connect(config.state()?).await?;
        let schema_exists =
            crate::state::StateStore::schema_exists(&state).await.context("reading the control schema")?;
        if steps.is_empty() && origin_exists && schema_exists {
            writeln!(out, "-- nothing to do: publication {} and slot {} are in place", odoo.publication, odoo.slot)?;
        }
        for step in &steps {
            writeln!(out, "{}", step.sql())?;
        }
        if !schema_exists {
            writeln!(out, "CREATE SCHEMA millrace; -- and the control tables (CREATE TABLE IF NOT EXISTS …)")?;
        }
        if !origin_exists {
            writeln!(out, "SELECT pg_replication_origin_create('{origin}');")?;
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
    client
        .execute(crate::sink::postgres::CREATE_ORIGIN_SQL, &[origin])
        .await
        .with_context(|| format!("creating replication origin {origin} (needs superuser)"))?;
    writeln!(out, "control schema millrace and replication origin {origin} in place")?;
    Ok(())
}
