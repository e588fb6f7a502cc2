//! `millrace reconcile`: compare both sides of each mapped entity (see [`crate::reconcile`]),
//! print a summary per entity, write the details as Parquet and CSV, and with `--bind` record the
//! cross-references the mapping's match rules find; with `--repair`, show (and with `--apply`
//! write) the owner's version of each difference on the other side. Exit 0 when the sides
//! agreed, 3 when they differed (a repair's effect shows in the next reconcile).

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
    /// `ENTITY:KEY=ODOO_ID` bindings made by hand before comparing.
    pub pairs: Vec<String>,
    pub repair: rc::Repair,
}

/// Parses `ENTITY:KEY=ODOO_ID` (a key of several fields comma-separated) against the mappings:
/// (entity, canonical key text, Odoo id).
fn parse_pair(mappings: &Mappings, text: &str) -> Result<(String, String, i64), CommandError> {
    let invalid =
        |message: String| CommandError::from(crate::config::ConfigError::Invalid { field: "--pair", message });
    let (entity, rest) = text.split_once(':').ok_or_else(|| invalid(format!("{text:?} is not ENTITY:KEY=ODOO_ID")))?;
    let (key, id) = rest.rsplit_once('=').ok_or_else(|| invalid(format!("{text:?} is not ENTITY:KEY=ODOO_ID")))?;
    let m = mappings
        .entities
        .iter()
        .find(|m| m.entity == entity)
        .ok_or_else(|| invalid(format!("no mapping for entity {entity:?} in {text:?}")))?;
    let id: i64 = id.trim().parse().map_err(|_| invalid(format!("{id:?} is not an Odoo id in {text:?}")))?;
    let parts: Vec<&str> = key.split(',').map(str::trim).collect();
    if parts.len() != m.key.len() {
        return Err(invalid(format!(
            "{entity}'s key has {} field(s) ({}); {key:?} has {}",
            m.key.len(),
            m.key.iter().map(|k| m.fields[*k].name.as_str()).collect::<Vec<_>>().join(", "),
            parts.len()
        )));
    }
    let mut values = Vec::new();
    for (field, part) in m.key.iter().zip(&parts) {
        let value = crate::mapping::transform::coerce(crate::model::Value::Text(part.to_string()), m.fields[*field].ty)
            .map_err(|e| invalid(format!("{}: {part:?}: {e}", m.fields[*field].name)))?;
        values.push(value);
    }
    let refs: Vec<&crate::model::Value> = values.iter().collect();
    Ok((entity.to_string(), crate::model::key_text(&refs), id))
}

pub async fn run(config: &Config, options: ReconcileOptions) -> Result<(), CommandError> {
    let mappings = Arc::new(
        Mappings::load_dir(&config.sync.mappings)
            .with_context(|| format!("loading mappings from {}", config.sync.mappings.display()))?,
    );
    let selected = super::entity_indices(config, &mappings, &options.entities)?
        .unwrap_or_else(|| (0..mappings.entities.len()).collect());
    let legacy_config = super::setup::legacy_config(config, &mappings)?;
    let pairs: Vec<(String, String, i64)> =
        options.pairs.iter().map(|p| parse_pair(&mappings, p)).collect::<Result<_, _>>()?;
    if !pairs.is_empty() {
        let store = crate::state::StateStore::connect(config.state()?).await.context("opening the control state")?;
        for (entity, key, id) in &pairs {
            let bound = store.bind_odoo_ids(entity, &[(key.clone(), *id)]).await.context("binding a pair")?;
            store.clear_ambiguous(entity, key).await.context("binding a pair")?;
            if bound == 0 {
                eprintln!("millrace: {entity} {key} or Odoo record {id} is bound already; left as it is");
            }
        }
    }
    let tty = std::io::stderr().is_terminal() && !options.json;
    let run_options = rc::Options { bind: options.bind, repair: options.repair, repair_fields: None, tty, via: "cli" };
    let report = crate::reconcile::run::reconcile(config, mappings, &legacy_config, &selected, &run_options).await?;
    if options.repair == rc::Repair::Apply {
        record_repair(config, &report).await;
    }
    let (summaries, findings, repairs) = (report.summaries, report.findings, report.repairs);
    if let Some(dir) = &options.out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let csv = dir.join("differences.csv");
        std::fs::write(&csv, rc::to_csv(&findings)).with_context(|| format!("writing {}", csv.display()))?;
        let parquet = dir.join("differences.parquet");
        rc::write_parquet(&parquet, &findings).with_context(|| format!("writing {}", parquet.display()))?;
        if options.repair != rc::Repair::Off {
            let path = dir.join("repairs.csv");
            std::fs::write(&path, rc::repairs_csv(&repairs)).with_context(|| format!("writing {}", path.display()))?;
        }
    }
    let mut out = std::io::stdout().lock();
    if options.json {
        let json = serde_json::json!({
            "entities": summaries,
            "agree": !summaries.iter().any(Summary::differs),
            "details": options.out.as_ref().map(|d| d.display().to_string()),
            "repair": match options.repair {
                rc::Repair::Off => serde_json::Value::Null,
                rc::Repair::DryRun => "dry_run".into(),
                rc::Repair::Apply => "applied".into(),
            },
            "repairs": repairs,
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
        if options.repair != rc::Repair::Off {
            let verb =
                if options.repair == rc::Repair::Apply { "written" } else { "would write (dry run; --apply writes)" };
            writeln!(out, "repair: the owner's version {verb}:").context("writing to stdout")?;
            for r in &repairs {
                let arrow = if r.direction == "erp_to_odoo" { "ERP -> Odoo" } else { "Odoo -> ERP" };
                let detail = match (r.outcome, &r.detail) {
                    ("repair", _) | (_, None) => String::new(),
                    (_, Some(d)) => format!(": {d}"),
                };
                writeln!(
                    out,
                    "  {:<20} {:<32} {arrow}  {} [{}]{detail}",
                    r.entity,
                    r.key,
                    r.fields.join(", "),
                    r.outcome
                )
                .context("writing to stdout")?;
            }
            if repairs.is_empty() {
                writeln!(out, "  nothing").context("writing to stdout")?;
            }
        }
    }
    let differing: Vec<&str> = summaries.iter().filter(|s| s.differs()).map(|s| s.entity.as_str()).collect();
    if differing.is_empty() {
        Ok(())
    } else {
        Err(CommandError::Differences(format!("the two sides differ on {}", differing.join(", "))))
    }
}

/// A repair from the command line is an operator action: recorded in the audit trail like a
/// retry (a failure to record it is logged; the repair itself is done).
async fn record_repair(config: &Config, report: &rc::Report) {
    let entities: Vec<&str> = report.summaries.iter().map(|s| s.entity.as_str()).collect();
    let written = report.repairs.iter().filter(|r| r.outcome == "repair").count();
    let keys: Vec<serde_json::Value> = report
        .repairs
        .iter()
        .take(1000)
        .map(|r| serde_json::json!({"entity": r.entity, "key": r.key, "direction": r.direction, "outcome": r.outcome}))
        .collect();
    let detail = format!("repair entities={}: {written} record(s) written from their owner", entities.join(","));
    let actor =
        crate::state::audit::Actor { via: crate::state::audit::Via::Cli, client: super::dlq::os_user(), token: None };
    let recorded = async {
        let store = crate::state::StateStore::connect(config.state()?).await?;
        store
            .record_operator_action(
                "repair",
                &actor,
                &serde_json::json!({"entities": entities, "repairs": keys}),
                "done",
                &detail,
            )
            .await
            .map_err(anyhow::Error::from)
    };
    if let Err(error) = recorded.await {
        tracing::error!(error = format!("{error:#}"), %detail, "the repair is done but not recorded in millrace.audit");
    }
}
