//! The last reconcile report of each entity (`millrace.reconcile_report`), written by every
//! reconcile (the command, `run`'s schedule, a repair from the operator page) and read by the
//! operator page and `status`; and the audit rows of reconcile actions (repair, apply the
//! owner's value), which touch records, not dead letters.

use serde_json::json;

use super::audit::Actor;
use super::report::Stamp;
use super::{sql, StateError, StateStore};

/// The control table of the last reports (created with the schema).
pub(super) const DDL: &str = "
CREATE TABLE IF NOT EXISTS millrace.reconcile_report (
    entity   text PRIMARY KEY,
    ran_at   timestamptz NOT NULL DEFAULT now(),
    seconds  double precision NOT NULL,
    -- how the report was made: 'cli' | 'schedule' | 'http', and whether it repaired
    via      text NOT NULL,
    repaired boolean NOT NULL DEFAULT false,
    -- the counts per kind (only_in_odoo, only_in_erp, different, equal, …)
    counts   jsonb NOT NULL,
    -- the first findings (at most REPORT_FINDINGS), as the details files hold them
    findings jsonb NOT NULL DEFAULT '[]',
    -- how many findings there were in all
    total_findings bigint NOT NULL DEFAULT 0
);
-- ERP records the last reconcile could not tell apart from several Odoo records (or one Odoo
-- record from several ERP records): a create of one of these keys is dead-lettered, naming the
-- candidates, instead of copying a record Odoo holds. Rewritten per entity by each reconcile;
-- a key bound by hand (--pair) leaves it.
CREATE TABLE IF NOT EXISTS millrace.ambiguous (
    entity text NOT NULL,
    key    text NOT NULL,
    detail text NOT NULL,
    at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (entity, key)
);
";

/// Findings kept per entity in the control state (the details files hold them all).
pub const REPORT_FINDINGS: usize = 200;

/// One entity's last report; `T` is how its time is read (see [`Stamp`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ReconcileReport<T> {
    pub entity: String,
    pub ran_at: T,
    pub seconds: f64,
    pub via: String,
    pub repaired: bool,
    pub counts: serde_json::Value,
    pub findings: serde_json::Value,
    pub total_findings: i64,
}

impl StateStore {
    /// Replaces the last report of `entity`: its counts (`summary`, as JSON) and its first
    /// findings.
    #[allow(clippy::too_many_arguments)]
    pub async fn save_reconcile_report(
        &self,
        entity: &str,
        seconds: f64,
        via: &str,
        repaired: bool,
        counts: &serde_json::Value,
        findings: &serde_json::Value,
        total_findings: i64,
    ) -> Result<(), StateError> {
        self.client
            .execute(
                "INSERT INTO millrace.reconcile_report (entity, ran_at, seconds, via, repaired, counts, findings, total_findings)
                 VALUES ($1, now(), $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (entity) DO UPDATE SET ran_at = now(), seconds = EXCLUDED.seconds, via = EXCLUDED.via,
                        repaired = EXCLUDED.repaired, counts = EXCLUDED.counts, findings = EXCLUDED.findings,
                        total_findings = EXCLUDED.total_findings",
                &[&entity, &seconds, &via, &repaired, counts, findings, &total_findings],
            )
            .await
            .map_err(sql("saving a reconcile report"))?;
        Ok(())
    }

    /// Replaces the ambiguous keys of `entity`: (key, why).
    pub async fn save_ambiguous(&mut self, entity: &str, keys: &[(String, String)]) -> Result<(), StateError> {
        let tx = self.client.transaction().await.map_err(sql("saving ambiguous matches"))?;
        tx.execute("DELETE FROM millrace.ambiguous WHERE entity = $1", &[&entity])
            .await
            .map_err(sql("saving ambiguous matches"))?;
        if !keys.is_empty() {
            let (k, d): (Vec<&str>, Vec<&str>) = keys.iter().map(|(k, d)| (k.as_str(), d.as_str())).unzip();
            tx.execute(
                "INSERT INTO millrace.ambiguous (entity, key, detail)
                 SELECT $1, u.k, u.d FROM unnest($2::text[], $3::text[]) AS u(k, d) ON CONFLICT DO NOTHING",
                &[&entity, &k, &d],
            )
            .await
            .map_err(sql("saving ambiguous matches"))?;
        }
        tx.commit().await.map_err(sql("saving ambiguous matches"))
    }

    /// A key bound by hand is no longer ambiguous.
    pub async fn clear_ambiguous(&self, entity: &str, key: &str) -> Result<(), StateError> {
        self.client
            .execute("DELETE FROM millrace.ambiguous WHERE entity = $1 AND key = $2", &[&entity, &key])
            .await
            .map_err(sql("clearing an ambiguous match"))?;
        Ok(())
    }

    /// Records an operator action on records (not dead letters): `repair` of an entity, or
    /// `apply_owner` of a field's conflicts. `touched`: what it wrote, as JSON. Returns the
    /// audit row's id.
    pub async fn record_operator_action(
        &self,
        action: &str,
        actor: &Actor,
        touched: &serde_json::Value,
        outcome: &str,
        detail: &str,
    ) -> Result<i64, StateError> {
        let row = self
            .client
            .query_one(
                "INSERT INTO millrace.audit (action, via, client, token, touched, outcome, detail)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                &[&action, &actor.via.as_str(), &actor.client, &actor.token, touched, &outcome, &detail],
            )
            .await
            .map_err(sql("recording an operator action"))?;
        Ok(row.get(0))
    }
}

/// The last report of every entity, by entity.
pub async fn last_reports<T: Stamp>(client: &tokio_postgres::Client) -> Result<Vec<ReconcileReport<T>>, StateError> {
    let rows = client
        .query(
            &format!(
                "SELECT entity, ran_at{}, seconds, via, repaired, counts, findings, total_findings
                   FROM millrace.reconcile_report ORDER BY entity",
                T::CAST
            ),
            &[],
        )
        .await
        .map_err(sql("reading the reconcile reports"))?;
    Ok(rows
        .iter()
        .map(|r| ReconcileReport {
            entity: r.get(0),
            ran_at: r.get(1),
            seconds: r.get(2),
            via: r.get(3),
            repaired: r.get(4),
            counts: r.get(5),
            findings: r.get(6),
            total_findings: r.get(7),
        })
        .collect())
}

impl<T: serde::Serialize> ReconcileReport<T> {
    /// As the operator page's API serves it.
    pub fn to_json(&self) -> serde_json::Value {
        json!({"entity": self.entity, "ran_at": self.ran_at, "seconds": self.seconds, "via": self.via,
               "repaired": self.repaired, "counts": self.counts, "findings": self.findings,
               "total_findings": self.total_findings})
    }
}
