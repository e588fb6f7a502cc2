//! `millrace export`: entities (through their mappings) or whole tables as Parquet files in
//! `--out`, one file per entity or table, each replaced atomically.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;

use crate::config::{Config, ConfigError};

use crate::export;
use crate::mapping::{Mappings, System};

pub struct ExportOptions {
    /// Entities to export; all mapped ones when empty and no table is named.
    pub entities: Vec<String>,
    /// Raw tables to export instead.
    pub tables: Vec<String>,
    /// Which side to read; for entities, each entity's system of record by default.
    pub side: Option<System>,
    pub out: PathBuf,
}

pub async fn run(config: &Config, options: ExportOptions) -> Result<(), super::CommandError> {
    let mut out = std::io::stdout().lock();
    std::fs::create_dir_all(&options.out)
        .with_context(|| format!("cannot create the output directory {}", options.out.display()))?;
    if !options.tables.is_empty() {
        if !options.entities.is_empty() {
            return Err(ConfigError::Invalid {
                field: "--table",
                message: "give --entity or --table, not both".into(),
            }
            .into());
        }
        let side = options.side.unwrap_or(System::Odoo);
        let odoo = match side {
            System::Odoo => {
                Some(crate::pg::connect(&config.odoo()?.conn).await.context("connecting to Odoo's database")?)
            }
            System::Legacy => None,
        };
        for table in &options.tables {
            let path = export::output_path(&options.out, table);
            let started = Instant::now();
            let rows = match &odoo {
                Some(client) => export::export_pg_table(client, table, &path).await,
                None => export::export_odbc_table(config.legacy()?, table, &path).await,
            }
            .with_context(|| format!("exporting {} table {table}", side.as_str()))?;
            summary(&mut out, &format!("{} table {table}", side.as_str()), rows, &path, started)?;
        }
        return Ok(());
    }
    let mappings = Arc::new(
        Mappings::load_dir(&config.sync.mappings)
            .with_context(|| format!("loading mappings from {}", config.sync.mappings.display()))?,
    );
    let selected = match super::entity_indices(config, &mappings, &options.entities)? {
        Some(named) => named,
        None => (0..mappings.entities.len()).collect(),
    };
    let mut odoo: Option<tokio_postgres::Client> = None;
    for index in selected {
        let m = &mappings.entities[index];
        let side = options.side.unwrap_or(m.owner);
        let path = export::output_path(&options.out, &m.entity);
        let started = Instant::now();
        let result = match side {
            System::Odoo => {
                if odoo.is_none() {
                    odoo =
                        Some(crate::pg::connect(&config.odoo()?.conn).await.context("connecting to Odoo's database")?);
                }
                let client = odoo.as_ref().context("Odoo connection")?;
                export::export_odoo_entity(client, m, &path).await
            }
            System::Legacy => export::export_legacy_entity(config.legacy()?, &mappings, m, &path).await,
        }
        .with_context(|| format!("exporting entity {} from {}", m.entity, side.as_str()))?;
        for problem in result.unreadable.iter().chain(&result.misfits).take(20) {
            tracing::warn!(entity = %m.entity, side = side.as_str(), problem = %problem, "row or value left out of the export");
        }
        let left_out = result.unreadable.len();
        summary(&mut out, &format!("entity {} from {}", m.entity, side.as_str()), result.rows, &path, started)?;
        if left_out > 0 || !result.misfits.is_empty() {
            writeln!(
                out,
                "  {left_out} rows could not be read as {} and {} values did not fit their column (see the warnings above; `millrace check` names the mapping problems)",
                m.entity,
                result.misfits.len()
            )
            .context("writing to stdout")?;
        }
    }
    Ok(())
}

fn summary(
    out: &mut impl Write,
    what: &str,
    rows: u64,
    path: &std::path::Path,
    started: Instant,
) -> anyhow::Result<()> {
    let seconds = started.elapsed().as_secs_f64();
    writeln!(
        out,
        "exported {what}: {rows} rows to {} in {seconds:.2} s ({:.0} rows/s)",
        path.display(),
        rows as f64 / seconds.max(1e-9)
    )
    .context("writing to stdout")
}
