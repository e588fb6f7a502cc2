//! `capture` and `apply` through a real three-node NATS JetStream cluster (`scripts/dev-env.sh`
//! starts it; `MILLRACE_TEST_NATS_*` name it), a real Odoo 17 driven through its ORM and the
//! demo ERP on MariaDB. Each test takes something away mid-stream — the stream's leader node,
//! the active apply process, the network between capture and the cluster, the apply side for a
//! minute — while both systems keep changing, and ends with both sides converged and every
//! business change applied exactly once (the archive holds one `apply` per change).
//!
//! Without the cluster or the Odoo server they print SKIPPED and pass.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::bus::{cluster, http_get, BusWorld};
use common::odoo::{erp_orders, wait_for, RealWorld};

/// The stream's leader node crashes while capture publishes and apply consumes: the other two
/// elect a new leader, publishing and consuming resume (a publish that was not acknowledged is
/// sent again and de-duplicated), and the node rejoins when started again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_leader_killed_mid_stream() {
    let Some(bus) = BusWorld::new("the_stream_leader_killed_mid_stream", |c| (c.urls.clone(), String::new())).await
    else {
        return;
    };
    let first = bus.first_new_order().await;
    let capture = bus.capture();
    let apply = bus.apply();
    let mut orders = bus.orders(2).await;
    // Flowing: the first orders are through; the shop floor reports on them while the leader
    // of the stream dies and more orders come.
    bus.report(&orders[..2], 1.0).await;
    let leader = bus.stream_leader().await;
    let down = bus.cluster.down(leader.trim_start_matches('n'));
    orders.extend(bus.orders(4).await);
    bus.report(&orders[2..4], 1.0).await;
    drop(down);
    orders.extend(bus.orders(2).await);
    let reported: BTreeMap<i64, f64> = orders[..4].iter().map(|id| (*id, 1.0)).collect();
    bus.converged(first, &reported, &[&capture, &apply], 120).await;
    assert_ne!(bus.stream_leader().await, leader, "another node leads the stream");
    bus.end(vec![capture, apply], &orders).await;
}

/// Two apply processes and two capture processes: one of each is active, the other waits. The
/// active ones are killed (SIGKILL) mid-stream — apply with messages delivered and not
/// acknowledged, capture with changes read and not acknowledged; each standby takes over within
/// 10 seconds (the new apply gets the unacknowledged messages first), and nothing is lost or
/// applied twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standbys_take_over_from_a_killed_capture_and_apply() {
    let Some(bus) =
        BusWorld::new("standbys_take_over_from_a_killed_capture_and_apply", |c| (c.urls.clone(), String::new())).await
    else {
        return;
    };
    let first = bus.first_new_order().await;
    let first_capture = bus.capture();
    let one = bus.apply();
    // The first to start takes the role; the second finds it held.
    for service in [&first_capture, &one] {
        wait_for("the first one active", service, 60, || async {
            service.log_text().contains("this process is now the active one").then_some(())
        })
        .await;
    }
    let capture = bus.capture();
    let two = bus.apply();
    for service in [&capture, &two] {
        wait_for("the second one standing by", service, 60, || async {
            service.log_text().contains("standby: another process is active").then_some(())
        })
        .await;
    }
    // Each says which it is.
    let (_, metrics) = http_get(&one, "/metrics").await;
    assert!(metrics.contains("millrace_bus_active{role=\"apply\"} 1"), "the active apply's metrics:\n{metrics}");
    let (_, metrics) = http_get(&two, "/metrics").await;
    assert!(metrics.contains("millrace_bus_active{role=\"apply\"} 0"), "the standby's metrics:\n{metrics}");
    let mut orders = bus.orders(4).await;
    wait_for("the first orders in the ERP", &one, 60, || async {
        let erp = erp_orders(&bus.world);
        erp.contains_key(&RealWorld::erp_order_no(orders[0])).then_some(())
    })
    .await;
    // Killed mid-stream: more orders and a report are on their way.
    orders.extend(bus.orders(2).await);
    bus.report(&orders[..2], 1.0).await;
    let killed = Instant::now();
    one.kill();
    first_capture.kill();
    for service in [&two, &capture] {
        wait_for("the standby active", service, 30, || async {
            service.log_text().contains("this process is now the active one").then_some(())
        })
        .await;
        let took = killed.elapsed();
        println!("a standby took over {took:?} after the kill");
        assert!(took <= Duration::from_secs(10), "the standby took over after {took:?}");
    }
    orders.extend(bus.orders(2).await);
    let reported: BTreeMap<i64, f64> = orders[..2].iter().map(|id| (*id, 1.0)).collect();
    bus.converged(first, &reported, &[&capture, &two], 120).await;
    let (_, metrics) = http_get(&two, "/metrics").await;
    assert!(metrics.contains("millrace_bus_active{role=\"apply\"} 1"), "the new active apply's metrics:\n{metrics}");
    let consumed = metric(&metrics, "millrace_bus_consumed_total");
    assert!(consumed > 0.0, "the new active apply consumed: {metrics}");
    let (_, metrics) = http_get(&capture, "/metrics").await;
    assert!(metric(&metrics, "millrace_bus_published_total{source=\"odoo\"}") >= orders.len() as f64, "{metrics}");
    bus.end(vec![capture, two], &orders).await;
}

/// The network between capture and the cluster is cut for 30 s (a TCP proxy before each node)
/// while Odoo and the ERP keep changing: capture cannot publish, so it acknowledges nothing
/// (the slot keeps the WAL), and once the network is back everything flows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_cut_from_the_cluster_for_thirty_seconds() {
    let Some(cluster) = cluster("capture_cut_from_the_cluster_for_thirty_seconds") else { return };
    let mut proxies = Vec::new();
    for url in &cluster.urls {
        let port: u16 = url.rsplit(':').next().and_then(|p| p.parse().ok()).expect("a port in the NATS url");
        proxies.push(common::proxy::Proxy::start(([127, 0, 0, 1], port).into()).await);
    }
    let proxied: Vec<String> = proxies.iter().map(|p| format!("nats://127.0.0.1:{}", p.port)).collect();
    let Some(bus) = BusWorld::new("capture_cut_from_the_cluster_for_thirty_seconds", |_| {
        // The proxies are the only way in: the servers the cluster announces are not used.
        (proxied, "discover_servers = false\n".to_string())
    })
    .await
    else {
        return;
    };
    let (first, capture, apply, mut orders) = bus.flowing().await;
    for proxy in &proxies {
        proxy.cut();
    }
    let cut = Instant::now();
    orders.extend(bus.orders(3).await);
    // Capture says why it is not ready: the bus.
    let mut ready = (0, String::new());
    while cut.elapsed() < Duration::from_secs(20) {
        ready = http_get(&capture, "/ready").await;
        if ready.0 == 503 && ready.1.contains("\"system\":\"bus\"") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(ready.0, 503, "capture not ready while the bus is cut off: {}", ready.1);
    assert!(ready.1.contains("\"system\":\"bus\""), "/ready names the bus: {}", ready.1);
    bus.report(&orders[..2], 1.0).await;
    let after = bus.current_lsn().await;
    while cut.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_secs(2)).await;
        // Nothing published, nothing acknowledged: the slot still holds the WAL of the orders.
        let held = !bus.slot_acknowledged_past(&after).await;
        assert!(held, "the slot was acknowledged past changes the bus never received:\n{}", capture.log_text());
        let erp = erp_orders(&bus.world);
        assert!(!erp.contains_key(&RealWorld::erp_order_no(orders[4])), "an order crossed a cut network");
    }
    for proxy in &proxies {
        proxy.restore();
    }
    orders.extend(bus.orders(1).await);
    let reported: BTreeMap<i64, f64> = orders[..2].iter().map(|id| (*id, 1.0)).collect();
    bus.converged(first, &reported, &[&capture, &apply], 120).await;
    bus.end(vec![capture, apply], &orders).await;
}

/// The apply side is stopped for a minute while capture goes on: the bus keeps what capture
/// publishes (and Odoo's WAL is released, the slot acknowledged as the bus takes it); apply
/// started again catches up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_stopped_for_a_minute_then_started() {
    let Some(bus) = BusWorld::new("apply_stopped_for_a_minute_then_started", |c| (c.urls.clone(), String::new())).await
    else {
        return;
    };
    let (first, capture, apply, mut orders) = bus.flowing().await;
    apply.stop();
    let stopped = Instant::now();
    orders.extend(bus.orders(4).await);
    bus.report(&orders[..2], 1.0).await;
    let after = bus.current_lsn().await;
    // Capture takes the changes to the bus and acknowledges them: the WAL does not pile up.
    wait_for("the slot acknowledged while apply is down", &capture, 60, || async {
        bus.slot_acknowledged_past(&after).await.then_some(())
    })
    .await;
    while stopped.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let erp = erp_orders(&bus.world);
        assert!(!erp.contains_key(&RealWorld::erp_order_no(orders[5])), "nothing applies while apply is down");
    }
    let apply = bus.apply();
    let reported: BTreeMap<i64, f64> = orders[..2].iter().map(|id| (*id, 1.0)).collect();
    bus.converged(first, &reported, &[&capture, &apply], 120).await;
    bus.end(vec![capture, apply], &orders).await;
}

/// The value of one series in Prometheus text (0 when absent).
fn metric(text: &str, series: &str) -> f64 {
    text.lines().find_map(|l| l.strip_prefix(series).and_then(|rest| rest.trim().parse().ok())).unwrap_or(0.0)
}
