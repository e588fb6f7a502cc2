//! A real Odoo, the demo ERP and the project-local three-node NATS JetStream cluster, with
//! `capture` and `apply` configs on a pipeline of the test's own (tests/bus.rs).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;

use super::odoo::{erp_orders, odoo_orders, wait_for, RealWorld};
use super::sync::Service;

/// Desk Combination (FURN_7800): a manufactured product with a three-line BOM.
const DESK: i64 = 8;

/// The cluster's settings from `.dev/env`, or `None` (and a SKIPPED line).
pub struct Cluster {
    pub urls: Vec<String>,
    pub ctl: String,
}

pub fn cluster(test: &str) -> Option<Cluster> {
    let get = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match (get("MILLRACE_TEST_NATS_URLS"), get("MILLRACE_TEST_NATS_CTL")) {
        (Some(urls), Some(ctl)) => Some(Cluster { urls: urls.split(',').map(str::to_string).collect(), ctl }),
        _ => {
            println!(
                "SKIPPED {test}: no NATS cluster (MILLRACE_TEST_NATS_URLS is not set: scripts/dev-env.sh starts one)"
            );
            None
        }
    }
}

impl Cluster {
    pub fn ctl(&self, action: &str, node: &str) {
        let out = std::process::Command::new("bash").args([&self.ctl, action, node]).output().expect("nats-ctl.sh");
        assert!(
            out.status.success(),
            "nats-ctl.sh {action} {node}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    async fn jetstream(&self) -> async_nats::jetstream::Context {
        let servers: Vec<async_nats::ServerAddr> = self.urls.iter().map(|u| u.parse().expect("a NATS url")).collect();
        async_nats::jetstream::new(async_nats::connect(servers).await.expect("connect to NATS"))
    }

    /// Deletes the streams and lease buckets of test processes that are gone (a failed run's):
    /// left behind, their replicas keep the nodes' health checks busy.
    async fn sweep(&self) {
        use futures_util::StreamExt;
        let js = self.jetstream().await;
        let names: Vec<String> = js.stream_names().filter_map(|n| async move { n.ok() }).collect().await;
        for name in names {
            let rest = name.strip_prefix("MILLRACE_T").or_else(|| name.strip_prefix("KV_millrace_lease_t"));
            let pid = rest.and_then(|r| r.split(['x', 'X']).next()).and_then(|p| p.parse::<u32>().ok());
            if let Some(pid) = pid {
                if pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                    let _ = js.delete_stream(&name).await;
                }
            }
        }
    }

    /// Kills node `node` (SIGKILL); it is started again when the guard is dropped, also when
    /// the test fails.
    pub fn down(&self, node: &str) -> NodeDown<'_> {
        self.ctl("kill", node);
        NodeDown { cluster: self, node: node.to_string() }
    }

    /// The `[bus]` section of a pipeline of its own on these urls.
    pub fn section(&self, pipeline: &str, urls: &[String], extra: &str) -> String {
        let urls: Vec<String> = urls.iter().map(|u| format!("{u:?}")).collect();
        format!(
            "\n[http]\nlisten = \"127.0.0.1:0\"\n\n[bus]\nkind = \"nats\"\nurls = [{}]\npipeline = \"{pipeline}\"\nreplicas = 3\n{extra}",
            urls.join(", ")
        )
    }
}

/// `GET path` on a process's HTTP endpoint: the status and the body.
pub async fn http_get(service: &Service, path: &str) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let address = loop {
        if let Some(address) = service.http_address() {
            break address;
        }
        assert!(Instant::now() < deadline, "no HTTP endpoint in the log:\n{}", service.log_text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let response = reqwest::get(format!("http://{address}{path}")).await.expect("HTTP GET");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// A node of the cluster killed; started again (and caught up) when dropped.
pub struct NodeDown<'a> {
    cluster: &'a Cluster,
    node: String,
}

impl Drop for NodeDown<'_> {
    fn drop(&mut self) {
        self.cluster.ctl("start", &self.node);
    }
}

/// A real Odoo, the demo ERP and the cluster, with a capture config and an apply config (the
/// same but for `[bus]` when capture goes through a proxy).
pub struct BusWorld {
    pub world: RealWorld,
    pub cluster: Cluster,
    pub pipeline: String,
    pub capture_config: String,
    pub apply_config: String,
}

impl BusWorld {
    pub async fn new(test: &str, capture_urls: impl FnOnce(&Cluster) -> (Vec<String>, String)) -> Option<BusWorld> {
        let cluster = cluster(test)?;
        let world = RealWorld::new(test, &["production_order"]).await?;
        world.forget_erp_only_orders().await;
        // A pipeline of its own: its stream, consumer and leases are this test's alone.
        // (`t<pid>x…`: what a test process that died left behind is found by its pid and removed.)
        let suffix: String = world.odoo.db.name.chars().filter(char::is_ascii_alphanumeric).collect();
        let pipeline = format!("t{}x{}", std::process::id(), &suffix[suffix.len().saturating_sub(6)..]);
        cluster.sweep().await;
        let base = std::fs::read_to_string(&world.config).expect("read config");
        let apply_config = world.dir.path().join("apply.toml");
        std::fs::write(&apply_config, format!("{base}{}", cluster.section(&pipeline, &cluster.urls, "")))
            .expect("write");
        let (urls, extra) = capture_urls(&cluster);
        let capture_config = world.dir.path().join("capture.toml");
        std::fs::write(&capture_config, format!("{base}{}", cluster.section(&pipeline, &urls, &extra))).expect("write");
        Some(BusWorld {
            world,
            cluster,
            pipeline,
            capture_config: capture_config.display().to_string(),
            apply_config: apply_config.display().to_string(),
        })
    }

    /// Capture and apply started and flowing: two orders made in Odoo are in the ERP. The
    /// first new order's id, the processes and the orders.
    pub async fn flowing(&self) -> (i64, Service, Service, Vec<i64>) {
        let first = self.first_new_order().await;
        let capture = self.capture();
        let apply = self.apply();
        let orders = self.orders(2).await;
        wait_for("the first orders in the ERP", &apply, 60, || async {
            erp_orders(&self.world).contains_key(&RealWorld::erp_order_no(orders[1])).then_some(())
        })
        .await;
        (first, capture, apply, orders)
    }

    /// Odoo's current WAL position.
    pub async fn current_lsn(&self) -> String {
        let odoo = self.world.odoo.db.client().await;
        odoo.query_one("SELECT pg_current_wal_lsn()::text", &[]).await.expect("current LSN").get(0)
    }

    /// Whether the slot is acknowledged past `lsn` (capture acknowledges once the bus holds
    /// the changes).
    pub async fn slot_acknowledged_past(&self, lsn: &str) -> bool {
        let odoo = self.world.odoo.db.client().await;
        odoo.query_one(
            "SELECT confirmed_flush_lsn >= $1::text::pg_lsn FROM pg_replication_slots WHERE slot_name = $2",
            &[&lsn, &self.world.odoo.db.slot()],
        )
        .await
        .expect("the slot")
        .get(0)
    }

    /// The end of a test: the processes stopped (SIGTERM: apply flushes its archive), every
    /// order applied exactly once, the stream and lease bucket deleted.
    pub async fn end(&self, services: Vec<Service>, orders: &[i64]) {
        for service in services {
            service.stop();
        }
        self.exactly_once(orders).await;
        self.finish().await;
    }

    /// Deletes this test's stream and lease bucket.
    pub async fn finish(&self) {
        let js = self.cluster.jetstream().await;
        let _ = js.delete_stream(format!("MILLRACE_{}", self.pipeline.to_ascii_uppercase())).await;
        let _ = js.delete_stream(format!("KV_millrace_lease_{}", self.pipeline)).await;
    }

    pub fn capture(&self) -> Service {
        Service::start_command(&self.capture_config, self.world.dir.path(), &[], "capture")
    }

    pub fn apply(&self) -> Service {
        Service::start_command(&self.apply_config, self.world.dir.path(), &[], "apply")
    }

    /// Confirms `n` manufacturing orders through the ORM; their ids.
    pub async fn orders(&self, n: usize) -> Vec<i64> {
        let mut ids = Vec::new();
        for i in 0..n {
            ids.push(self.world.rpc().confirmed_order(DESK, 1.0 + (i % 4) as f64).await);
        }
        ids
    }

    /// Every capture and apply log of the test so far.
    pub fn logs(&self) -> String {
        let mut paths: Vec<std::path::PathBuf> = std::fs::read_dir(self.world.dir.path())
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        paths.retain(|p| p.extension().is_some_and(|e| e == "log"));
        paths.sort();
        paths
            .iter()
            .map(|p| format!("--- {}:\n{}", p.display(), std::fs::read_to_string(p).unwrap_or_default()))
            .collect()
    }

    /// The shop floor reports `done` units of each order in the ERP, once the ERP has the
    /// orders (up to a minute: a report needs the order).
    pub async fn report(&self, orders: &[i64], done: f64) {
        let numbers: Vec<String> = orders.iter().map(|id| RealWorld::erp_order_no(*id)).collect();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !numbers.iter().all(|n| erp_orders(&self.world).contains_key(n)) {
            assert!(Instant::now() < deadline, "orders {numbers:?} never reached the ERP:\n{}", self.logs());
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let quoted: Vec<String> = numbers.iter().map(|n| format!("'{n}'")).collect();
        self.world
            .maria
            .exec(&format!("UPDATE PROD_ORDER SET QTY_COMPLETED = {done} WHERE ORDER_NO IN ({})", quoted.join(", ")));
    }

    /// Both sides converged: every order made since `first` is in the ERP as Odoo has it, and
    /// every order reported in the ERP shows its report in Odoo. Fails with what differs and
    /// every process's log.
    pub async fn converged(&self, first: i64, reported: &BTreeMap<i64, f64>, services: &[&Service], seconds: u64) {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        loop {
            let odoo = odoo_orders(&self.world, first).await;
            let erp = erp_orders(&self.world);
            let differ: Vec<String> = odoo
                .iter()
                .filter(|(n, v)| erp.get(*n) != Some(*v))
                .map(|(n, v)| format!("{n}: Odoo {v}, ERP {:?}", erp.get(n)))
                .collect();
            let unreported: Vec<String> = reported
                .iter()
                .filter(|(id, done)| {
                    !odoo.get(&RealWorld::erp_order_no(**id)).is_some_and(|v| v.ends_with(&format!("|{done}")))
                })
                .map(|(id, done)| {
                    format!(
                        "{}: {done} done in the ERP, Odoo {:?}",
                        RealWorld::erp_order_no(*id),
                        odoo.get(&RealWorld::erp_order_no(*id))
                    )
                })
                .collect();
            if differ.is_empty() && unreported.is_empty() && !odoo.is_empty() {
                return;
            }
            if Instant::now() >= deadline {
                let logs: Vec<String> =
                    services.iter().map(|s| format!("--- {}:\n{}", s.log.display(), s.log_text())).collect();
                panic!(
                    "the sides did not converge in {seconds} s:\n{}\n{}\n{}",
                    differ.join("\n"),
                    unreported.join("\n"),
                    logs.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Every change decided once as applied (a message delivered again is `stale`, never a
    /// second `apply`), no dead letters, no conflicts. Reads the archive `apply` wrote (the
    /// apply processes must be stopped, so it is flushed).
    pub async fn exactly_once(&self, orders: &[i64]) {
        assert_eq!(self.world.open_dead_letters().await, Vec::<String>::new(), "no dead letters");
        let state = self.world.odoo.db.client().await;
        // (The demo's own orders differ between the template and the ERP's demo data — their
        // start dates — which is reconciliation's business, not this test's.)
        let keys: Vec<String> = orders.iter().map(|id| format!("[\"{}\"]", RealWorld::erp_order_no(*id))).collect();
        let conflicts: Vec<String> = state
            .query("SELECT key || ' ' || fields::text FROM millrace.conflict WHERE key = ANY($1)", &[&keys])
            .await
            .expect("conflicts")
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(conflicts, Vec::<String>::new(), "no conflicts on the orders made here");
        let archive = self.world.dir.path().join("archive").join("entity=production_order");
        let report = super::parquet::report(
            &archive,
            &[
                "SELECT _key, _position, _source_system, count(*) FROM {src} WHERE _decision = 'apply' \
                 GROUP BY 1, 2, 3 HAVING count(*) > 1",
                "SELECT DISTINCT _key FROM {src} WHERE _decision = 'apply' AND _source_system = 'odoo'",
            ],
        );
        assert_eq!(report.queries[0], Vec::<Vec<serde_json::Value>>::new(), "a change applied twice");
        let applied: Vec<String> =
            report.queries[1].iter().filter_map(|r| r.first().and_then(|v| v.as_str()).map(str::to_string)).collect();
        for id in orders {
            let key = format!("[\"{}\"]", RealWorld::erp_order_no(*id));
            assert!(applied.contains(&key), "order {id} was applied to the ERP (archive has {applied:?})");
        }
        let rows = self.world.maria.exec(&format!(
            "SELECT count(*) FROM PROD_ORDER WHERE ORDER_NO IN ({})",
            orders.iter().map(|id| format!("'{}'", RealWorld::erp_order_no(*id))).collect::<Vec<_>>().join(", ")
        ));
        assert_eq!(rows.trim(), orders.len().to_string(), "one ERP row per order");
    }

    pub async fn first_new_order(&self) -> i64 {
        self.world.rpc().search("mrp.production", json!([])).await.into_iter().max().unwrap_or(0) + 1
    }

    /// The name of the node leading this pipeline's stream (n1, n2 or n3).
    pub async fn stream_leader(&self) -> String {
        let js = self.cluster.jetstream().await;
        let stream = format!("MILLRACE_{}", self.pipeline.to_ascii_uppercase());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(mut s) = js.get_stream(&stream).await {
                if let Ok(info) = s.info().await {
                    if let Some(leader) = info.cluster.as_ref().and_then(|c| c.leader.clone()) {
                        return leader;
                    }
                }
            }
            assert!(Instant::now() < deadline, "stream {stream} has no leader");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}
