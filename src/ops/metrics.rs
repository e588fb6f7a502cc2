//! Process metrics, rendered in the Prometheus text format by `/metrics`.
//!
//! Counters and gauges the running service updates as it goes; gauges that live in a database
//! (slot lag, parked, dead letters) are read when scraped and passed to [`Metrics::render`].

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::history::{History, Reading};

/// Upper bounds (seconds) of the apply-latency histogram.
const BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The last scheduled reconcile: finished at (unix seconds), took (seconds), counts per
/// (entity, kind).
#[derive(Debug)]
struct LastReconcile {
    finished: f64,
    took: f64,
    counts: BTreeMap<(String, String), u64>,
}

#[derive(Debug, Default)]
struct Inner {
    changes_read: BTreeMap<String, u64>,
    decisions: BTreeMap<(String, String, String), u64>,
    applied: BTreeMap<(String, String), u64>,
    apply_failures: BTreeMap<(String, String), u64>,
    reconnects: BTreeMap<String, u64>,
    up: BTreeMap<String, bool>,
    batch_seconds: BTreeMap<String, Histogram>,
    /// Commit time (unix seconds) of the Odoo transaction being handled, while one is.
    odoo_commit_in_flight: Option<f64>,
    /// The longest commit-to-handled time of the Odoo transactions finished since the last
    /// history sample (seconds).
    odoo_lag_peak: f64,
    /// The operator page's charts (`GET /api/history`).
    history: History,
    /// Row changes handled so far of the large Odoo transaction being handled in parts.
    odoo_txn_done: Option<u64>,
    /// Records decided so far of the Odoo batch in hand, while it goes in slices.
    odoo_batch_done: Option<u64>,
    /// Per legacy table: unix seconds of the last poll whose changes were all handled.
    legacy_polled: BTreeMap<String, f64>,
    /// Why the service is not ready, per side, with the time it started.
    failing: BTreeMap<String, (String, f64)>,
    /// Items read but not yet handled, per source.
    queued: BTreeMap<String, u64>,
    archive_files: u64,
    archive_rows: u64,
    /// The last scheduled reconcile: when it finished, how long it took, its counts per
    /// (entity, kind).
    reconcile: Option<LastReconcile>,
    reconcile_failures: u64,
    /// Per source system: changes published to the bus, and of them those the bus already
    /// held (a re-publish after a restart, dropped by its de-duplication).
    bus_published: BTreeMap<String, (u64, u64)>,
    /// Messages `apply` consumed (decided and acknowledged).
    bus_consumed: u64,
    /// Per consumer: messages the bus holds for it not yet acknowledged.
    bus_pending: BTreeMap<String, u64>,
    /// Per bus role (`capture`, `apply`): whether this process is the active one.
    bus_roles: BTreeMap<String, bool>,
}

/// Shared by the engine loop and the HTTP endpoint.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// Gauges read from the databases at scrape time.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Scraped {
    pub replication_lag_bytes: Option<i64>,
    pub parked: Option<i64>,
    pub dlq_open: Option<i64>,
}

/// Why the service is not ready.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NotReady {
    pub system: String,
    pub reason: String,
    pub since_seconds: f64,
}

/// The bus's counters and gauges (`capture` and `apply`); nothing for `run`.
fn render_bus(m: &Inner, out: &mut String) {
    if !m.bus_published.is_empty() {
        let _ = writeln!(out, "# HELP millrace_bus_published_total Changes published to the bus.\n# TYPE millrace_bus_published_total counter");
        for (system, (n, _)) in &m.bus_published {
            let _ = writeln!(out, "millrace_bus_published_total{{source=\"{}\"}} {n}", escape(system));
        }
        let _ = writeln!(out, "# HELP millrace_bus_duplicates_total Changes published again that the bus already held (dropped by id).\n# TYPE millrace_bus_duplicates_total counter");
        for (system, (_, d)) in &m.bus_published {
            let _ = writeln!(out, "millrace_bus_duplicates_total{{source=\"{}\"}} {d}", escape(system));
        }
    }
    if m.bus_roles.contains_key("apply") {
        let _ = writeln!(out, "# HELP millrace_bus_consumed_total Bus messages decided and acknowledged by apply.\n# TYPE millrace_bus_consumed_total counter\nmillrace_bus_consumed_total {}", m.bus_consumed);
    }
    if !m.bus_pending.is_empty() {
        let _ = writeln!(out, "# HELP millrace_bus_pending Messages the bus holds for a consumer, not yet acknowledged.\n# TYPE millrace_bus_pending gauge");
        for (consumer, n) in &m.bus_pending {
            let _ = writeln!(out, "millrace_bus_pending{{consumer=\"{}\"}} {n}", escape(consumer));
        }
    }
    if !m.bus_roles.is_empty() {
        let _ = writeln!(out, "# HELP millrace_bus_active Whether this process is the active one of its role (1) or a standby (0).\n# TYPE millrace_bus_active gauge");
        for (role, active) in &m.bus_roles {
            let _ = writeln!(out, "millrace_bus_active{{role=\"{}\"}} {}", escape(role), u8::from(*active));
        }
    }
}

fn escape(label: &str) -> String {
    label.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl Metrics {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        // A panic while holding the lock leaves plain counters behind: still usable.
        let mut guard = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut guard)
    }

    pub fn read(&self, source: &str, n: u64) {
        self.with(|m| *m.changes_read.entry(source.to_string()).or_default() += n);
    }

    pub fn decision(&self, entity: &str, source: &str, decision: &str) {
        self.with(|m| *m.decisions.entry((entity.into(), source.into(), decision.into())).or_default() += 1);
    }

    pub fn applied(&self, entity: &str, direction: &str) {
        self.with(|m| *m.applied.entry((entity.into(), direction.into())).or_default() += 1);
    }

    pub fn apply_failed(&self, entity: &str, direction: &str) {
        self.with(|m| *m.apply_failures.entry((entity.into(), direction.into())).or_default() += 1);
    }

    /// Items a source has handed over that wait to be handled.
    pub fn queued(&self, source: &str, depth: u64) {
        self.with(|m| {
            m.queued.insert(source.to_string(), depth);
        });
    }

    /// A flush made `files` archive files holding `rows` changes durable.
    pub fn archived(&self, files: u64, rows: u64) {
        self.with(|m| {
            m.archive_files += files;
            m.archive_rows += rows;
        });
    }

    /// A scheduled reconcile finished: its counts per (entity, kind) replace the last ones.
    pub fn reconciled(&self, counts: BTreeMap<(String, String), u64>, took: Duration) {
        self.with(|m| m.reconcile = Some(LastReconcile { finished: now(), took: took.as_secs_f64(), counts }));
    }

    pub fn reconcile_failed(&self) {
        self.with(|m| m.reconcile_failures += 1);
    }

    /// `n` changes of `system` published to the bus, `duplicates` of them already there.
    pub fn bus_published(&self, system: &str, n: u64, duplicates: u64) {
        self.with(|m| {
            let entry = m.bus_published.entry(system.to_string()).or_default();
            entry.0 += n;
            entry.1 += duplicates;
        });
    }

    pub fn bus_consumed(&self, n: u64) {
        self.with(|m| m.bus_consumed += n);
    }

    pub fn bus_pending(&self, consumer: &str, pending: u64) {
        self.with(|m| m.bus_pending.insert(consumer.to_string(), pending));
    }

    /// This process became the active one of `role` (`true`) or a standby.
    pub fn bus_role(&self, role: &str, active: bool) {
        self.with(|m| m.bus_roles.insert(role.to_string(), active));
    }

    pub fn reconnect(&self, system: &str) {
        self.with(|m| *m.reconnects.entry(system.to_string()).or_default() += 1);
    }

    /// A side answered (`None`) or failed with a reason.
    pub fn side(&self, system: &str, failure: Option<&str>) {
        self.with(|m| {
            m.up.insert(system.to_string(), failure.is_none());
            match failure {
                None => {
                    m.failing.remove(system);
                }
                Some(reason) => {
                    let since = m.failing.get(system).map(|f| f.1).unwrap_or_else(now);
                    m.failing.insert(system.to_string(), (reason.to_string(), since));
                }
            }
        });
    }

    /// Drops a side that is fine again from the report altogether (a legacy table that could
    /// not be polled, say: not worth a gauge while it works).
    pub fn forget_side(&self, system: &str) {
        self.with(|m| {
            m.up.remove(system);
            m.failing.remove(system);
        });
    }

    pub fn batch_took(&self, source: &str, took: Duration) {
        let seconds = took.as_secs_f64();
        self.with(|m| {
            let h = m.batch_seconds.entry(source.to_string()).or_default();
            for (i, bound) in BUCKETS.iter().enumerate() {
                if seconds <= *bound {
                    h.counts[i] += 1;
                }
            }
            h.count += 1;
            h.sum += seconds;
        });
    }

    /// The Odoo transaction being handled (its commit time), or `None` once it is acknowledged.
    pub fn odoo_in_flight(&self, commit_unix_seconds: Option<f64>) {
        let t = now();
        self.with(|m| {
            // The one in hand is done (or given up): how long after its commit that was is the
            // Odoo side's lag for the history, which samples far less often than transactions end.
            if let Some(commit) = m.odoo_commit_in_flight {
                m.odoo_lag_peak = m.odoo_lag_peak.max(t - commit);
            }
            m.odoo_commit_in_flight = commit_unix_seconds;
        });
    }

    /// How many row changes of the large Odoo transaction in hand are handled (`None` once it
    /// is acknowledged).
    pub fn odoo_txn_progress(&self, changes_done: Option<u64>) {
        self.with(|m| m.odoo_txn_done = changes_done);
    }

    /// How many records of the Odoo batch in hand (one that re-emits many) are decided (`None`
    /// once it is done).
    pub fn odoo_batch_progress(&self, records_done: Option<u64>) {
        self.with(|m| m.odoo_batch_done = records_done);
    }

    /// Every change of a poll of these tables has been handled.
    pub fn legacy_polled(&self, tables: &[String]) {
        let t = now();
        self.with(|m| {
            for table in tables {
                m.legacy_polled.insert(table.clone(), t);
            }
        });
    }

    /// What keeps the service from being ready (empty when ready).
    pub fn not_ready(&self) -> Vec<NotReady> {
        let t = now();
        self.with(|m| {
            let mut out: Vec<NotReady> = m
                .failing
                .iter()
                .map(|(system, (reason, since))| NotReady {
                    system: system.clone(),
                    reason: reason.clone(),
                    since_seconds: (t - since).max(0.0),
                })
                .collect();
            for system in ["odoo", "legacy", "state"] {
                if !m.up.contains_key(system) {
                    out.push(NotReady {
                        system: system.into(),
                        reason: "not connected yet".into(),
                        since_seconds: 0.0,
                    });
                }
            }
            out
        })
    }

    /// Seconds since each legacy table's last fully handled poll.
    pub fn legacy_lag(&self) -> BTreeMap<String, f64> {
        let t = now();
        self.with(|m| m.legacy_polled.iter().map(|(table, at)| (table.clone(), (t - at).max(0.0))).collect())
    }

    /// Adds a sample to the history the operator page charts: the applied counters per
    /// direction (the page's rates are their differences), the Odoo side's lag (the longest
    /// commit-to-handled time since the last sample, or the age of the transaction in hand if
    /// longer), the replication slot's lag in bytes (read by the caller, `None` if it could not
    /// be), and the largest legacy poll lag. Called every `history::HISTORY_EVERY`.
    pub fn sample_history(&self, odoo_lag_bytes: Option<i64>) {
        let t = now();
        self.with(|m| {
            let total = |direction: &str| m.applied.iter().filter(|((_, d), _)| d == direction).map(|(_, n)| n).sum();
            let in_hand = m.odoo_commit_in_flight.map(|c| t - c).unwrap_or(0.0);
            let reading = Reading {
                at: t,
                applied: (total("odoo_to_legacy"), total("legacy_to_odoo")),
                odoo_lag_seconds: m.odoo_lag_peak.max(in_hand).max(0.0),
                odoo_lag_bytes,
                legacy_lag_seconds: m.legacy_polled.values().map(|at| (t - at).max(0.0)).reduce(f64::max),
            };
            m.odoo_lag_peak = 0.0;
            m.history.push(reading);
        });
    }

    /// The history as `GET /api/history` serves it.
    pub fn history_json(&self) -> serde_json::Value {
        let t = now();
        self.with(|m| m.history.to_json(t))
    }

    /// The Prometheus text exposition.
    pub fn render(&self, scraped: &Scraped) -> String {
        let t = now();
        let mut out = String::new();
        self.with(|m| {
            let _ = writeln!(out, "# HELP millrace_changes_read_total Row changes read from a source.\n# TYPE millrace_changes_read_total counter");
            for (source, n) in &m.changes_read {
                let _ = writeln!(out, "millrace_changes_read_total{{source=\"{}\"}} {n}", escape(source));
            }
            let _ = writeln!(out, "# HELP millrace_decisions_total Entity changes decided, by decision.\n# TYPE millrace_decisions_total counter");
            for ((entity, source, decision), n) in &m.decisions {
                let _ = writeln!(
                    out,
                    "millrace_decisions_total{{entity=\"{}\",source=\"{}\",decision=\"{}\"}} {n}",
                    escape(entity),
                    escape(source),
                    escape(decision)
                );
            }
            for (name, map, help) in [
                ("millrace_applied_total", &m.applied, "Changes applied to the other side."),
                ("millrace_apply_failures_total", &m.apply_failures, "Changes the other side refused (dead-lettered)."),
            ] {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
                for ((entity, direction), n) in map {
                    let _ = writeln!(out, "{name}{{entity=\"{}\",direction=\"{}\"}} {n}", escape(entity), escape(direction));
                }
            }
            if let Some(LastReconcile { finished, took, counts }) = &m.reconcile {
                let _ = writeln!(out, "# HELP millrace_reconcile_differences Records of the last scheduled reconcile, by entity and kind (equal included).\n# TYPE millrace_reconcile_differences gauge");
                for ((entity, kind), n) in counts {
                    let _ = writeln!(out, "millrace_reconcile_differences{{entity=\"{}\",kind=\"{}\"}} {n}", escape(entity), escape(kind));
                }
                let _ = writeln!(out, "# HELP millrace_reconcile_last_run_timestamp_seconds When the last scheduled reconcile finished (unix seconds).\n# TYPE millrace_reconcile_last_run_timestamp_seconds gauge\nmillrace_reconcile_last_run_timestamp_seconds {finished:.3}");
                let _ = writeln!(out, "# HELP millrace_reconcile_last_run_seconds How long the last scheduled reconcile took.\n# TYPE millrace_reconcile_last_run_seconds gauge\nmillrace_reconcile_last_run_seconds {took:.3}");
            }
            let _ = writeln!(out, "# HELP millrace_reconcile_failures_total Scheduled reconciles that failed (logged).\n# TYPE millrace_reconcile_failures_total counter\nmillrace_reconcile_failures_total {}", m.reconcile_failures);
            let _ = writeln!(out, "# HELP millrace_reconnects_total Connections re-established after a failure.\n# TYPE millrace_reconnects_total counter");
            for (system, n) in &m.reconnects {
                let _ = writeln!(out, "millrace_reconnects_total{{system=\"{}\"}} {n}", escape(system));
            }
            let _ = writeln!(out, "# HELP millrace_archive_files_total Archive files written.\n# TYPE millrace_archive_files_total counter\nmillrace_archive_files_total {}", m.archive_files);
            let _ = writeln!(out, "# HELP millrace_archive_rows_total Changes written to the archive.\n# TYPE millrace_archive_rows_total counter\nmillrace_archive_rows_total {}", m.archive_rows);
            let _ = writeln!(out, "# HELP millrace_up Whether the last attempt to reach a system succeeded.\n# TYPE millrace_up gauge");
            for (system, up) in &m.up {
                let _ = writeln!(out, "millrace_up{{system=\"{}\"}} {}", escape(system), u8::from(*up));
            }
            render_bus(m, &mut out);
            let _ = writeln!(out, "# HELP millrace_batch_apply_seconds Time to decide, apply and record one batch.\n# TYPE millrace_batch_apply_seconds histogram");
            for (source, h) in &m.batch_seconds {
                let source = escape(source);
                for (i, bound) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(out, "millrace_batch_apply_seconds_bucket{{source=\"{source}\",le=\"{bound}\"}} {}", h.counts[i]);
                }
                let _ = writeln!(out, "millrace_batch_apply_seconds_bucket{{source=\"{source}\",le=\"+Inf\"}} {}", h.count);
                let _ = writeln!(out, "millrace_batch_apply_seconds_sum{{source=\"{source}\"}} {}", h.sum);
                let _ = writeln!(out, "millrace_batch_apply_seconds_count{{source=\"{source}\"}} {}", h.count);
            }
            let _ = writeln!(out, "# HELP millrace_queue_depth Items read from a source and waiting to be handled.\n# TYPE millrace_queue_depth gauge");
            for (source, depth) in &m.queued {
                let _ = writeln!(out, "millrace_queue_depth{{source=\"{}\"}} {depth}", escape(source));
            }
            let lag_seconds = m.odoo_commit_in_flight.map(|c| (t - c).max(0.0)).unwrap_or(0.0);
            let _ = writeln!(out, "# HELP millrace_replication_lag_seconds Age of the Odoo transaction being handled (0 when caught up).\n# TYPE millrace_replication_lag_seconds gauge\nmillrace_replication_lag_seconds {lag_seconds}");
            let _ = writeln!(out, "# HELP millrace_odoo_txn_changes_done Row changes handled so far of the large Odoo transaction being applied in parts (0 when none is).\n# TYPE millrace_odoo_txn_changes_done gauge\nmillrace_odoo_txn_changes_done {}", m.odoo_txn_done.unwrap_or(0));
            let _ = writeln!(out, "# HELP millrace_odoo_batch_records_done Records decided so far of the Odoo batch in hand, while a large one goes in slices (0 when none does).\n# TYPE millrace_odoo_batch_records_done gauge\nmillrace_odoo_batch_records_done {}", m.odoo_batch_done.unwrap_or(0));
            let _ = writeln!(out, "# HELP millrace_legacy_poll_lag_seconds Seconds since a table's last fully handled poll.\n# TYPE millrace_legacy_poll_lag_seconds gauge");
            for (table, at) in &m.legacy_polled {
                let _ = writeln!(out, "millrace_legacy_poll_lag_seconds{{table=\"{}\"}} {}", escape(table), (t - at).max(0.0));
            }
        });
        for (name, help, value) in [
            (
                "millrace_replication_lag_bytes",
                "WAL between the server's position and the slot's confirmed flush.",
                scraped.replication_lag_bytes,
            ),
            ("millrace_parked", "Changes parked until a dependency arrives.", scraped.parked),
            ("millrace_dlq_open", "Dead letters open or marked for retry.", scraped.dlq_open),
        ] {
            if let Some(v) = value {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_bus_only_for_bus_roles() {
        let m = Metrics::default();
        assert!(!m.render(&Scraped::default()).contains("millrace_bus_"), "run shows no bus metrics");
        m.bus_role("apply", false);
        m.bus_published("odoo", 5, 2);
        m.bus_consumed(7);
        m.bus_pending("millrace-apply-p", 3);
        let text = m.render(&Scraped::default());
        assert!(text.contains("millrace_bus_active{role=\"apply\"} 0"), "{text}");
        assert!(text.contains("millrace_bus_published_total{source=\"odoo\"} 5"), "{text}");
        assert!(text.contains("millrace_bus_duplicates_total{source=\"odoo\"} 2"), "{text}");
        assert!(text.contains("millrace_bus_consumed_total 7"), "{text}");
        assert!(text.contains("millrace_bus_pending{consumer=\"millrace-apply-p\"} 3"), "{text}");
        m.bus_role("apply", true);
        assert!(m.render(&Scraped::default()).contains("millrace_bus_active{role=\"apply\"} 1"));
    }

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.read("legacy", 3);
        m.decision("item", "legacy", "apply");
        m.applied("item", "legacy_to_odoo");
        m.batch_took("legacy", Duration::from_millis(30));
        m.side("odoo", None);
        m.side("legacy", Some("connection refused"));
        m.legacy_polled(&["ITEM_MASTER".into()]);
        let text = m.render(&Scraped { replication_lag_bytes: Some(128), parked: Some(0), dlq_open: Some(2) });
        assert!(text.contains("millrace_changes_read_total{source=\"legacy\"} 3"), "{text}");
        assert!(text.contains("millrace_decisions_total{entity=\"item\",source=\"legacy\",decision=\"apply\"} 1"));
        assert!(text.contains("millrace_batch_apply_seconds_bucket{source=\"legacy\",le=\"0.025\"} 0"));
        assert!(text.contains("millrace_batch_apply_seconds_bucket{source=\"legacy\",le=\"0.05\"} 1"));
        assert!(text.contains("millrace_up{system=\"legacy\"} 0"));
        assert!(text.contains("millrace_dlq_open 2"));
        assert!(text.contains("millrace_legacy_poll_lag_seconds{table=\"ITEM_MASTER\"}"));
        let not_ready = m.not_ready();
        assert!(not_ready.iter().any(|n| n.system == "legacy" && n.reason == "connection refused"));
        assert!(not_ready.iter().any(|n| n.system == "state"), "never connected counts too");
    }

    #[test]
    fn history_samples_rates_per_direction_and_the_odoo_lag_of_handled_transactions() {
        let m = Metrics::default();
        m.sample_history(Some(10));
        for _ in 0..4 {
            m.applied("production_order", "odoo_to_legacy");
        }
        m.applied("item", "legacy_to_odoo");
        // A transaction committed 2.5 s ago, handled now.
        m.odoo_in_flight(Some(now() - 2.5));
        m.odoo_in_flight(None);
        m.legacy_polled(&["ITEM_MASTER".into()]);
        m.sample_history(None);
        let h = m.history_json();
        assert_eq!(h["at"].as_array().map(Vec::len), Some(2), "{h}");
        assert_eq!(h["odoo_to_legacy"]["per_second"][0], serde_json::Value::Null, "{h}");
        assert!(h["odoo_to_legacy"]["per_second"][1].as_f64().is_some_and(|r| r > 0.0), "{h}");
        assert!(h["legacy_to_odoo"]["per_second"][1].as_f64().is_some_and(|r| r > 0.0), "{h}");
        let lag = h["odoo_to_legacy"]["lag_seconds"][1].as_f64().unwrap_or_default();
        assert!((2.4..10.0).contains(&lag), "{h}");
        assert_eq!(h["odoo_to_legacy"]["lag_bytes"], serde_json::json!([10, null]));
        assert_eq!(h["legacy_to_odoo"]["lag_seconds"][0], serde_json::Value::Null, "no poll yet: {h}");
        assert!(h["legacy_to_odoo"]["lag_seconds"][1].as_f64().is_some(), "{h}");
        m.sample_history(None);
        let h = m.history_json();
        assert_eq!(h["odoo_to_legacy"]["lag_seconds"][2], serde_json::json!(0.0), "the peak is per sample: {h}");
    }
}
