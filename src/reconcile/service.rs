//! Reconcile inside `run`: on the `[reconcile] every` schedule (counts to /metrics), and the
//! operator page's actions (repair an entity, apply the owner's value of a field in conflict),
//! each recorded in the audit trail. One task, on connections of its own, beside replication
//! (which it never stops). Differences are data, not an outage: /ready is untouched, a failed run
//! is logged and counted.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc;

use super::{Options, Repair, Report};
use crate::config::{Config, LegacyConfig};
use crate::mapping::Mappings;
use crate::ops::actions::{ReconcileJob, ReconcileRequest};
use crate::ops::metrics::Metrics;

/// Starts the task (on the current `LocalSet`: the ERP's ODBC connection stays on this thread).
pub fn spawn(
    config: Config,
    mappings: Arc<Mappings>,
    legacy: LegacyConfig,
    every: Option<Duration>,
    mut jobs: mpsc::Receiver<ReconcileJob>,
    metrics: Arc<Metrics>,
    shutdown: Arc<AtomicBool>,
) {
    tokio::task::spawn_local(async move {
        let all: Vec<usize> = (0..mappings.entities.len()).collect();
        let mut next = every.map(|every| tokio::time::Instant::now() + every);
        let mut page_open = true;
        loop {
            if shutdown.load(Ordering::SeqCst) {
                return;
            }
            let tick = tokio::time::sleep(Duration::from_millis(500));
            tokio::select! {
                job = jobs.recv(), if page_open => match job {
                    Some(job) => {
                        let answer = act(&config, &mappings, &legacy, &job).await;
                        // The page may have given up waiting: nothing to tell it then.
                        let _ = job.reply.send(answer);
                    }
                    // No HTTP endpoint (or it is gone): only the schedule is left. (A closed
                    // channel answers at once: asked again, it would keep a core busy.)
                    None => page_open = false,
                },
                _ = tick => {}
            }
            let (Some(at), Some(every)) = (next, every) else { continue };
            if tokio::time::Instant::now() < at {
                continue;
            }
            let started = std::time::Instant::now();
            match super::run::reconcile(&config, mappings.clone(), &legacy, &all, &Options::compare_only("schedule"))
                .await
            {
                Ok(report) => {
                    let differing: Vec<&str> =
                        report.summaries.iter().filter(|s| s.differs()).map(|s| s.entity.as_str()).collect();
                    tracing::info!(took_ms = started.elapsed().as_millis() as u64, differing = ?differing, "scheduled reconcile done");
                    let counts = report
                        .summaries
                        .iter()
                        .flat_map(|s| s.counts().map(|(kind, n)| ((s.entity.clone(), kind.to_string()), n)))
                        .collect();
                    metrics.reconciled(counts, started.elapsed());
                }
                Err(error) => {
                    tracing::warn!(
                        error = format!("{error:#}"),
                        "scheduled reconcile failed; trying again at the next interval"
                    );
                    metrics.reconcile_failed();
                }
            }
            next = Some(tokio::time::Instant::now() + every);
        }
    });
}

/// Runs one operator action and records it in the audit trail: the answer the page shows.
async fn act(
    config: &Config,
    mappings: &Arc<Mappings>,
    legacy: &LegacyConfig,
    job: &ReconcileJob,
) -> Result<serde_json::Value, String> {
    let (entity, field, action) = match &job.request {
        ReconcileRequest::Repair { entity } => (entity, None, "repair"),
        ReconcileRequest::ApplyOwner { entity, field, .. } => (entity, field.clone(), "apply_owner"),
    };
    let Some(index) = mappings.entities.iter().position(|m| &m.entity == entity) else {
        return Err(format!("no mapping for entity {entity:?}"));
    };
    if let Some(name) = &field {
        if !mappings.entities[index].fields.iter().any(|f| &f.name == name) {
            return Err(format!("entity {entity} has no field {name:?}"));
        }
    }
    let options = Options {
        bind: false,
        repair: Repair::Apply,
        repair_fields: field.clone().map(|f| vec![f]),
        tty: false,
        via: "http",
    };
    let started = std::time::Instant::now();
    let result: anyhow::Result<Report> = match &job.request {
        ReconcileRequest::Repair { .. } => {
            super::run::reconcile(config, mappings.clone(), legacy, &[index], &options).await
        }
        ReconcileRequest::ApplyOwner { keys, .. } => {
            super::run::repair_keys(config, mappings.clone(), legacy, index, keys, &options).await
        }
    };
    let (outcome, detail, answer) = match &result {
        Ok(report) => {
            let repaired = report.repairs.iter().filter(|r| r.outcome == "repair").count();
            let failed = report.repairs.len() - repaired;
            let detail = format!(
                "{action} entity={entity}{}: {repaired} record(s) written from their owner{}",
                field.as_deref().map(|f| format!(" field={f}")).unwrap_or_default(),
                if failed > 0 { format!(", {failed} parked or dead-lettered") } else { String::new() }
            );
            let answer = json!({
                "ok": true, "action": action, "entity": entity, "field": field,
                "repaired": repaired, "failed": failed,
                "repairs": report.repairs.iter().take(200).collect::<Vec<_>>(),
                "summary": report.summaries.first(),
                "seconds": started.elapsed().as_secs_f64(),
            });
            ("done", detail, Ok(answer))
        }
        Err(error) => {
            let text = format!("{error:#}");
            ("failed", format!("{action} entity={entity}: {text}"), Err(text))
        }
    };
    // The keys that now hold the owner's value: for apply_owner every key asked for (those
    // already equal included) but the ones whose write was parked or dead-lettered, which stay
    // outstanding on the page; for a repair, what it wrote.
    let keys: Vec<&str> = match (&result, &job.request) {
        (Ok(report), ReconcileRequest::ApplyOwner { keys, .. }) => keys
            .iter()
            .filter(|k| !report.repairs.iter().any(|r| &r.key == *k && r.outcome != "repair"))
            .map(String::as_str)
            .collect(),
        (Ok(report), ReconcileRequest::Repair { .. }) => {
            report.repairs.iter().filter(|r| r.outcome == "repair").map(|r| r.key.as_str()).take(1000).collect()
        }
        (Err(_), _) => Vec::new(),
    };
    let touched = json!({"entity": entity, "field": field, "keys": keys});
    let recorded = async {
        let store = crate::state::StateStore::connect(config.state()?).await?;
        store.record_operator_action(action, &job.actor, &touched, outcome, &detail).await.map_err(anyhow::Error::from)
    };
    match recorded.await {
        Ok(audit) => {
            tracing::info!(action, %entity, actor = %job.actor, audit, %detail, "operator reconcile action");
            answer.map(|mut a| {
                a["audit"] = json!(audit);
                a
            })
        }
        Err(error) => {
            tracing::error!(action, %entity, error = format!("{error:#}"), %detail, "the operator action is done but not recorded in millrace.audit");
            answer
        }
    }
}
