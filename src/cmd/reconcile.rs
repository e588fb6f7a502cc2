//! `millrace reconcile`: compare both sides of each mapped entity (see [`crate::reconcile`]),
//! print a summary per entity, write the details as Parquet and CSV, and with `--bind` record the
//! cross-references the mapping's match rules find. Exit 0 when the sides agree, 3 when they
//! differ.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;

use super::CommandError;
use crate::config::Config;
use crate::mapping::Mappings;
use crate::reconcile::{self as rc, Summary};

pub struct ReconcileOptions {
    pub entities: Vec<String>,
    pub out: Option<PathBuf>,
    pub json: bool,
    pub bind: bool,
}

pub async fn run(config: &Config, options: ReconcileOptions) -> Result<(), CommandError> {
    let mappings = Arc::new(
        Mappings::load_dir(&config.sync.mappings)
            .with_context(|| format!("loading mappings from {}", config.sync.mappings.display()))?,
    );
    let selected = super::entity_indices(config, &mappings, &options.entities)?
        .unwrap_or_else(|| (0..mappings.entities.len()).collect());
    let legacy_config = super::setup::legacy_config(config, &mappings)?;
    let tty = std::io::stderr().is_terminal() && !options.json;
    let (summaries, findings) =
        crate::reconcile::run::reconcile(config, mappings, &legacy_config, &selected, options.bind, tty).await?;
    if let Some(dir) = &options.out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let csv = dir.join("differences.csv");
        std::fs::write(&csv, rc::to_csv(&findings)).with_context(|| format!("writing {}", csv.display()))?;
        let parquet = dir.join("differences.parquet");
        rc::write_parquet(&parquet, &findings).with_context(|| format!("writing {}", parquet.display()))?;
    }
    let mut out = std::io::stdout().lock();
    if options.json {
        let json = serde_json::json!({
            "entities": summaries,
            "agree": !summaries.iter().any(Summary::differs),
            "details": options.out.as_ref().map(|d| d.display().to_string()),
        });
        writeln!(out, "{json}").context("writing to stdout")?;
    } else {
        writeln!(
            out,
            "{:<24} {:>12} {:>12} {:>10} {:>10} {:>10} {:>10} {:>8}",
            "entity", "only in Odoo", "only in ERP", "different", "equal", "by rule", "ambiguous", "bound"
        )
        .context("writing to stdout")?;
        for s in &summaries {
            writeln!(
                out,
                "{:<24} {:>12} {:>12} {:>10} {:>10} {:>10} {:>10} {:>8}",
                s.entity, s.only_in_odoo, s.only_in_erp, s.different, s.equal, s.matched_by_rule, s.ambiguous, s.bound
            )
            .context("writing to stdout")?;
        }
        if let Some(dir) = &options.out {
            writeln!(out, "details: {0}/differences.parquet, {0}/differences.csv", dir.display())
                .context("writing to stdout")?;
        }
    }
    let differing: Vec<&str> = summaries.iter().filter(|s| s.differs()).map(|s| s.entity.as_str()).collect();
    if differing.is_empty() {
        Ok(())
    } else {
        Err(CommandError::Differences(format!("the two sides differ on {}", differing.join(", "))))
    }
}
