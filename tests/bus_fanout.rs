//! Fan-out: another system (an MES, a WMS, BI) reads a pipeline's change stream with a durable
//! consumer of its own, through the example in the README, `examples/bus_consumer.py`, run as
//! its users would run it. A real Odoo 17 driven through its ORM, the demo ERP on MariaDB,
//! `millrace capture` (no apply) and the project-local three-node NATS JetStream cluster.
//!
//! Without the cluster or the Odoo server it prints SKIPPED and passes.

mod common;

use std::collections::BTreeSet;

use serde_json::{json, Value};

use common::bus::BusWorld;
use common::odoo::{wait_for, RealWorld};

/// One JSON line of the example consumer.
#[derive(Debug, Clone)]
struct Line {
    subject: String,
    sequence: u64,
    time: String,
    msg_id: String,
    payload: Value,
}

impl Line {
    fn key(&self) -> Value {
        self.payload["key"].as_str().and_then(|k| serde_json::from_str(k).ok()).unwrap_or(Value::Null)
    }

    fn field(&self, name: &str) -> &Value {
        &self.payload["record"][name]
    }
}

/// A quantity as the payload holds it (a decimal's exact text) or as Odoo returns it.
fn number(value: &Value) -> Option<f64> {
    value.as_f64().or_else(|| value.as_str().and_then(|s| s.parse().ok()))
}

/// Runs `examples/bus_consumer.py` on the pipeline with `args`, until it has been idle for
/// three seconds: its lines, and what it said on stderr.
fn consume(bus: &BusWorld, args: &[&str]) -> (Vec<Line>, String) {
    let python = common::env_path("MILLRACE_PYTHON");
    let script = format!("{}/examples/bus_consumer.py", env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new(python)
        .arg(script)
        .args(["--urls", &bus.cluster.urls.join(","), "--pipeline", &bus.pipeline, "--idle-seconds", "3"])
        .args(args)
        .output()
        .expect("run examples/bus_consumer.py");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "bus_consumer.py {args:?} failed ({}):\n{stderr}", out.status);
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}"));
            Line {
                subject: v["subject"].as_str().unwrap_or_default().to_string(),
                sequence: v["stream_sequence"].as_u64().unwrap_or_else(|| panic!("no stream_sequence: {l}")),
                time: v["time"].as_str().unwrap_or_default().to_string(),
                msg_id: v["msg_id"].as_str().unwrap_or_default().to_string(),
                payload: v["payload"].clone(),
            }
        })
        .collect();
    (lines, stderr)
}

/// The columns a side of the shipped production_order mapping reads: the fields a record
/// published from that side holds.
fn mapped_fields(side: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(format!("{}/mappings/production_order.toml", env!("CARGO_MANIFEST_DIR")))
        .expect("read mappings/production_order.toml");
    let mapping: toml::Value = text.parse().expect("mapping TOML");
    mapping[side]["columns"].as_table().expect("the mapping's columns").keys().cloned().collect()
}

fn summary(lines: &[Line]) -> String {
    lines
        .iter()
        .map(|l| {
            format!("#{} {} {} {} {}", l.sequence, l.subject, l.payload["op"], l.payload["key"], l.payload["record"])
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Orders confirmed in Odoo and a report made in the ERP, published by `capture`, are read by a
/// durable consumer of another system from the start of the stream: on their documented
/// subjects, schema 1, with their key, their mapped fields and a `Nats-Msg-Id`. A second
/// durable replays from a later stream sequence and from a point in time; the first, run
/// again, has nothing new (it acknowledged what it read).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_system_reads_and_replays_the_change_stream() {
    let Some(bus) =
        BusWorld::new("another_system_reads_and_replays_the_change_stream", |c| (c.urls.clone(), String::new())).await
    else {
        return;
    };
    let odoo_subject = format!("millrace.{}.odoo.production_order", bus.pipeline);
    let legacy_subject = format!("millrace.{}.legacy.production_order", bus.pipeline);
    // The shop floor reports on an order released in both systems (capture alone does not take
    // Odoo's new orders to the ERP).
    let reported = bus
        .world
        .maria
        .exec("SELECT ORDER_NO FROM PROD_ORDER WHERE STATUS = 'R' ORDER BY ORDER_NO LIMIT 1")
        .trim()
        .to_string();
    let reported_id: i64 = reported.trim_start_matches("MO").parse().expect("an order released in the ERP");

    let capture = bus.capture();
    let orders = bus.orders(3).await;
    let after = bus.current_lsn().await;
    // Capture acknowledges the slot only once JetStream holds the changes.
    wait_for("the orders on the bus", &capture, 90, || async {
        bus.slot_acknowledged_past(&after).await.then_some(())
    })
    .await;
    let client = async_nats::connect(bus.cluster.urls.as_slice()).await.expect("connect to NATS");
    let js = async_nats::jetstream::new(client);
    let stream_name = format!("MILLRACE_{}", bus.pipeline.to_ascii_uppercase().replace('-', "_"));
    let last_legacy = || async {
        let stream = js.get_stream_no_info(&stream_name).await.ok()?;
        let message = stream.get_last_raw_message_by_subject(&legacy_subject).await.ok()?;
        serde_json::from_slice::<Value>(&message.payload).ok()
    };
    // The ERP's first poll published (the whole table), then the report.
    wait_for("capture's first poll of the ERP", &capture, 60, || async { last_legacy().await.map(|_| ()) }).await;
    bus.report(&[reported_id], 1.0).await;
    wait_for("the ERP's report on the bus", &capture, 60, || async {
        let last = last_legacy().await?;
        let record = &last["record"];
        (last["key"].as_str() == Some(&format!("[\"{reported}\"]")) && number(&record["qty_produced"]) == Some(1.0))
            .then_some(())
    })
    .await;
    // The stream keeps the changes whether capture runs or not: stopped, nothing more comes.
    capture.stop();

    // The MES: a durable of its own, from the beginning of the stream.
    let (lines, stderr) = consume(&bus, &["--durable", "mes"]);
    assert!(!lines.is_empty(), "the consumer read nothing:\n{stderr}");
    let listing = summary(&lines);
    for pair in lines.windows(2) {
        assert!(pair[0].sequence < pair[1].sequence, "stream order:\n{listing}");
    }
    for line in &lines {
        let p = &line.payload;
        assert_eq!(p["schema"], json!(1), "schema 1: {line:?}");
        let system = p["source_system"].as_str().unwrap_or_default();
        let entity = p["entity"].as_str().unwrap_or_default();
        assert_eq!(line.subject, format!("millrace.{}.{system}.{entity}", bus.pipeline), "subject of {line:?}");
        assert!(line.msg_id.starts_with(&format!("{system}:")), "a Nats-Msg-Id naming its source: {line:?}");
        assert!(!line.time.is_empty(), "{line:?}");
    }
    let ids: BTreeSet<&str> = lines.iter().map(|l| l.msg_id.as_str()).collect();
    assert_eq!(ids.len(), lines.len(), "each change once:\n{listing}");

    // Every order, as Odoo has it, on the Odoo subject.
    let odoo_fields = mapped_fields("odoo");
    let rows = bus
        .world
        .rpc()
        .search_read("mrp.production", json!([["id", "in", orders]]), &["product_qty", "product_id"])
        .await;
    assert_eq!(rows.len(), orders.len(), "the orders in Odoo");
    for row in &rows {
        let id = row["id"].as_i64().expect("id");
        let number_of_order = RealWorld::erp_order_no(id);
        let product = row["product_id"][0].as_i64().expect("product");
        let code =
            bus.world.rpc().search_read("product.product", json!([["id", "=", product]]), &["default_code"]).await;
        let code = code[0]["default_code"].clone();
        let line = lines
            .iter()
            .find(|l| l.key() == json!([number_of_order]) && l.field("status") == "released")
            .unwrap_or_else(|| panic!("order {id} ({number_of_order}) released is not in the stream:\n{listing}"));
        assert_eq!(line.subject, odoo_subject, "{line:?}");
        assert_eq!(line.payload["op"], "upsert", "{line:?}");
        assert_eq!(line.payload["source_id"], json!(id.to_string()), "the Odoo row id: {line:?}");
        assert_eq!(line.payload["ours"], json!(false), "a change made in Odoo is not millrace's own: {line:?}");
        let record = line.payload["record"].as_object().expect("a record object");
        let held: BTreeSet<String> = record.keys().cloned().collect();
        assert!(held.is_superset(&odoo_fields), "the record holds every mapped field {odoo_fields:?}: {line:?}");
        assert_eq!(record["order_no"], json!(number_of_order), "{line:?}");
        assert_eq!(record["item_no"], code, "the product's code: {line:?}");
        assert_eq!(number(&record["qty_ordered"]), number(&row["product_qty"]), "the quantity: {line:?}");
    }

    // The shop floor's report, as the ERP has it, on the legacy subject.
    let legacy_fields = mapped_fields("legacy");
    let report = lines
        .iter()
        .rev()
        .find(|l| l.subject == legacy_subject && l.key() == json!([reported]))
        .unwrap_or_else(|| panic!("the ERP's report on {reported} is not on {legacy_subject}:\n{listing}"));
    assert_eq!(report.payload["op"], "upsert", "{report:?}");
    assert_eq!(number(report.field("qty_produced")), Some(1.0), "the quantity reported: {report:?}");
    assert_eq!(report.field("status"), "released", "{report:?}");
    assert_eq!(report.payload["ours"], json!(false), "{report:?}");
    let held: BTreeSet<String> = report.payload["record"].as_object().expect("record").keys().cloned().collect();
    assert!(held.is_superset(&legacy_fields), "the record holds every mapped field {legacy_fields:?}: {report:?}");

    // BI: another durable, from the stream sequence of the first change of the last order.
    let last_order = RealWorld::erp_order_no(*orders.last().expect("orders"));
    let from = lines.iter().find(|l| l.key() == json!([last_order])).expect("the last order's first change");
    assert!(lines[0].sequence < from.sequence, "changes before the replay point:\n{listing}");
    let (replay, stderr) = consume(&bus, &["--durable", "bi", "--from-sequence", &from.sequence.to_string()]);
    assert_eq!(
        replay.first().map(|l| (l.sequence, l.msg_id.as_str())),
        Some((from.sequence, from.msg_id.as_str())),
        "the replay starts at the message asked for:\n{stderr}\n{}",
        summary(&replay)
    );
    let expected: Vec<(u64, &str)> =
        lines.iter().filter(|l| l.sequence >= from.sequence).map(|l| (l.sequence, l.msg_id.as_str())).collect();
    let got: Vec<(u64, &str)> = replay.iter().map(|l| (l.sequence, l.msg_id.as_str())).collect();
    assert_eq!(got, expected, "that message and everything after it, nothing before it");

    // From a point in time: just before the ERP's report, after the change published before it.
    let before = lines.iter().rev().find(|l| l.sequence < report.sequence).expect("a change before the report");
    let at = |l: &Line| chrono::DateTime::parse_from_rfc3339(&l.time).expect("an RFC 3339 time");
    let (t0, t1) = (at(before), at(report));
    assert!(
        t1 - t0 > chrono::Duration::milliseconds(2),
        "the report came after a poll interval: {before:?} {report:?}"
    );
    let point = (t0 + (t1 - t0) / 2).to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let (replay, stderr) = consume(&bus, &["--durable", "bi-time", "--from-time", &point]);
    let got: Vec<(u64, &str)> = replay.iter().map(|l| (l.sequence, l.msg_id.as_str())).collect();
    let expected: Vec<(u64, &str)> =
        lines.iter().filter(|l| l.sequence >= report.sequence).map(|l| (l.sequence, l.msg_id.as_str())).collect();
    assert_eq!(got, expected, "from {point}: the report and what follows it\n{stderr}");

    // The MES again: it acknowledged everything it read, so nothing is new.
    let (again, stderr) = consume(&bus, &["--durable", "mes"]);
    assert!(again.is_empty(), "the durable read again what it had acknowledged:\n{}\n{stderr}", summary(&again));
    assert!(stderr.contains("resumes after stream sequence"), "{stderr}");
    // The pipeline's stream, its durables and its lease bucket are this test's alone.
    bus.finish().await;
}
