//! `millrace setup`: create the publication and the slot, or print what would be run.

use std::io::Write;

use anyhow::Context;

use crate::config::OdooConfig;
use crate::source::odoo::setup;

pub async fn run(odoo: &OdooConfig, print_sql: bool) -> anyhow::Result<()> {
    let client = crate::pg::connect(&odoo.conn).await?;
    let steps = setup::plan(&client, odoo).await?;
    let mut out = std::io::stdout().lock();
    if print_sql {
        if steps.is_empty() {
            writeln!(out, "-- nothing to do: publication {} and slot {} are in place", odoo.publication, odoo.slot)?;
        }
        for step in &steps {
            writeln!(out, "{}", step.sql())?;
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
    Ok(())
}
