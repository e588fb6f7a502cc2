//! The control state's reports (`state::report`, what `status` and the HTTP endpoint show) and
//! backfill progress (`state::backfill`), against a real PostgreSQL: rows written through the
//! engine's own batch writes read back typed, in order, within their limits, and the two forms
//! of a timestamp (a time for `status`, the server's text for the page) name the same instant.

mod common;

use chrono::{DateTime, Utc};
use common::TestDb;
use millrace::config::PgConnInfo;
use millrace::state::report;
use millrace::state::sync::{DeadLetter, NewConflict, Parked, StateWrites};
use millrace::state::StateStore;

fn dead_letter(key: &str, reason: &str) -> DeadLetter {
    DeadLetter {
        id: 0,
        entity: "item".into(),
        key: key.into(),
        source: "legacy".into(),
        op: "upsert".into(),
        record: Some(serde_json::json!({ "key": key })),
        position: "v1".into(),
        field: Some("uom".into()),
        reason: reason.into(),
        created_at: Utc::now(),
        status: "open".into(),
        resolution: None,
    }
}

fn conflict(key: &str) -> NewConflict {
    NewConflict {
        entity: "item".into(),
        key: key.into(),
        source: "odoo",
        fields: vec!["description".into()],
        policy: "reject",
        record: None,
        position: "0/16B3748".into(),
    }
}

/// The server's text of a timestamptz (`2024-05-01 12:00:00.123456+00`) as a time.
fn parse_server_text(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%#z")
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .with_timezone(&Utc)
}

#[tokio::test(flavor = "multi_thread")]
async fn reports_read_back_what_the_engine_wrote() {
    let db = TestDb::create("statereport").await;
    let info = PgConnInfo::parse(&format!("{}?sslmode=disable", db.url)).expect("URL");
    let client = db.client().await;
    assert!(!StateStore::schema_exists(&client).await.expect("schema_exists"), "no control schema yet");
    let mut store = StateStore::connect(&info).await.expect("control schema");
    assert!(StateStore::schema_exists(&client).await.expect("schema_exists"));

    // Empty: no rows, zero counts.
    assert!(report::source_statuses(&client).await.expect("sources").is_empty());
    assert!(report::decision_counts::<String>(&client).await.expect("decisions").is_empty());
    let parked = report::parked_summary(&client).await.expect("parked");
    assert_eq!((parked.count, parked.oldest), (0, None));
    assert_eq!(
        report::queue_depths(&client).await.expect("depths"),
        report::QueueDepths { parked: 0, dead_letters: 0 }
    );

    let mut writes = StateWrites {
        dead_letters: (0..5).map(|i| dead_letter(&format!("[\"K{i}\"]"), &format!("failure {i}"))).collect(),
        conflicts: (0..25).map(|i| conflict(&format!("[\"C{i:02}\"]"))).collect(),
        park: vec![Parked {
            entity: "bom".into(),
            key: "[\"P1\"]".into(),
            source: "legacy".into(),
            op: "upsert".into(),
            record: None,
            position: "v2".into(),
            reason: "item P1 not replicated yet".into(),
            parked_at: Utc::now(),
            attempts: 0,
        }],
        source_position: Some(("odoo", "0/16B3748".into())),
        ..StateWrites::default()
    };
    writes.count("item", "legacy", "apply");
    writes.count("item", "legacy", "apply");
    writes.count("bom", "odoo", "conflict");
    store.commit_writes(&writes).await.expect("commit");
    // One letter marked for retry, one discarded (no longer open).
    let ids: Vec<i64> = store.dead_letters(false).await.expect("letters").iter().map(|d| d.id).collect();
    assert_eq!(store.set_dead_letter_status(Some(&ids[1..2]), "retry").await.expect("retry"), 1);
    assert_eq!(store.set_dead_letter_status(Some(&ids[4..5]), "discarded").await.expect("discard"), 1);

    let sources = report::source_statuses(&client).await.expect("sources");
    assert_eq!(sources.len(), 1);
    assert_eq!((sources[0].source.as_str(), sources[0].position.as_deref()), ("odoo", Some("0/16B3748")));
    assert!(sources[0].last_batch.is_some() && sources[0].last_error.is_none());

    let decisions = report::decision_counts::<DateTime<Utc>>(&client).await.expect("decisions");
    let as_text = report::decision_counts::<String>(&client).await.expect("decisions as text");
    let names: Vec<(&str, &str, &str, i64)> =
        decisions.iter().map(|d| (d.entity.as_str(), d.source.as_str(), d.decision.as_str(), d.n)).collect();
    assert_eq!(names, [("bom", "odoo", "conflict", 1), ("item", "legacy", "apply", 2)], "by entity, source, decision");
    for (time, text) in decisions.iter().zip(&as_text) {
        assert_eq!((&time.entity, time.n), (&text.entity, text.n));
        assert_eq!(parse_server_text(&text.last_at), time.last_at, "{}", text.last_at);
    }

    let parked = report::parked_summary(&client).await.expect("parked");
    assert_eq!(parked.count, 1);
    assert!(parked.oldest.is_some());
    let letters = report::dead_letter_counts(&client).await.expect("letter counts");
    assert_eq!(letters, report::DeadLetterCounts { open: 3, retry: 1 });
    assert_eq!(
        report::queue_depths(&client).await.expect("depths"),
        report::QueueDepths { parked: 1, dead_letters: 4 },
        "open and marked for retry"
    );

    let open = report::open_dead_letters::<String>(&client, 3).await.expect("open letters");
    let keys: Vec<(&str, &str)> = open.iter().map(|d| (d.key.as_str(), d.status.as_str())).collect();
    assert_eq!(keys, [("[\"K0\"]", "open"), ("[\"K1\"]", "retry"), ("[\"K2\"]", "open")], "oldest first, limited");
    assert_eq!(open[0].record, Some(serde_json::json!({ "key": "[\"K0\"]" })));
    assert_eq!((open[0].field.as_deref(), open[0].reason.as_str()), (Some("uom"), "failure 0"));
    let all_open = report::open_dead_letters::<DateTime<Utc>>(&client, 200).await.expect("open letters");
    assert_eq!(all_open.len(), 4, "the discarded letter is not listed");
    assert_eq!(parse_server_text(&open[0].created_at), all_open[0].created_at);

    let conflicts = report::recent_conflicts::<DateTime<Utc>>(&client, 10).await.expect("conflicts");
    assert_eq!(conflicts.len(), 10);
    assert_eq!(conflicts[0].key, "[\"C24\"]", "newest first");
    assert_eq!(conflicts[9].key, "[\"C15\"]");
    assert_eq!(
        (conflicts[0].fields.clone(), conflicts[0].policy.as_str(), conflicts[0].position.as_str()),
        (vec!["description".to_string()], "reject", "0/16B3748")
    );
    let page = report::recent_conflicts::<String>(&client, 20).await.expect("conflicts as text");
    assert_eq!(page.len(), 20);
    assert_eq!(parse_server_text(&page[0].at), conflicts[0].at);

    // Backfill progress: saved per chunk, a failure keeps it (unfinished), finishing clears the
    // error, forgetting starts over.
    assert_eq!(store.backfill_checkpoint("item").await.expect("checkpoint"), None);
    let key = serde_json::json!(["A100"]);
    store.save_backfill_checkpoint("item", "legacy", &key, 1000, "snapshot", false).await.expect("save");
    store.record_backfill_failure("item", "legacy", "the ERP went away").await.expect("failure");
    let checkpoint = store.backfill_checkpoint("item").await.expect("checkpoint").expect("saved");
    assert_eq!((checkpoint.last_key, checkpoint.rows, checkpoint.finished), (Some(key.clone()), 1000, false));
    let error: Option<String> =
        client.query_one("SELECT error FROM millrace.backfill WHERE entity = 'item'", &[]).await.expect("error").get(0);
    assert_eq!(error.as_deref(), Some("the ERP went away"));
    store.record_backfill_failure("bom", "legacy", "never started").await.expect("failure before a chunk");
    store.save_backfill_checkpoint("item", "legacy", &key, 1500, "snapshot", true).await.expect("finish");
    let progress = report::backfill_progress(&client).await.expect("progress");
    let rows: Vec<(&str, &str, i64, bool)> =
        progress.iter().map(|b| (b.entity.as_str(), b.source.as_str(), b.rows, b.finished_at.is_some())).collect();
    assert_eq!(rows, [("bom", "legacy", 0, false), ("item", "legacy", 1500, true)], "by entity");
    let error: Option<String> =
        client.query_one("SELECT error FROM millrace.backfill WHERE entity = 'item'", &[]).await.expect("error").get(0);
    assert_eq!(error, None, "finishing clears the error");
    assert_eq!(store.forget_backfills(&["item".to_string(), "lot".to_string()]).await.expect("forget"), 1);
    assert_eq!(store.backfill_checkpoint("item").await.expect("checkpoint"), None);
    assert_eq!(report::backfill_progress(&client).await.expect("progress").len(), 1);
}

/// An operator action and its audit row commit together: when the row cannot be written, the
/// dead letter is left as it was. The audit reads back newest first, its time in both forms.
#[tokio::test(flavor = "multi_thread")]
async fn an_operator_action_and_its_audit_row_commit_together() {
    use millrace::state::audit::{self, Action, Actor, Target, Via};

    let db = TestDb::create("stateaudit").await;
    let info = PgConnInfo::parse(&format!("{}?sslmode=disable", db.url)).expect("URL");
    let client = db.client().await;
    let mut store = StateStore::connect(&info).await.expect("control schema");
    let writes = StateWrites { dead_letters: vec![dead_letter("[\"K0\"]", "failure")], ..StateWrites::default() };
    store.commit_writes(&writes).await.expect("commit");
    let id = store.dead_letters(false).await.expect("letters")[0].id;
    let actor = Actor { via: Via::Http, client: "192.0.2.7:40112".into(), token: Some("alice".into()) };

    let done = store.act_on_dead_letters(Action::Discard, Target::One(id), &actor).await.expect("discard");
    assert_eq!((done.touched.len(), done.refused), (1, None));
    let again = store.act_on_dead_letters(Action::Retry, Target::One(id), &actor).await.expect("refused retry");
    assert!(again.refused.is_some() && again.touched.is_empty());
    let recent = audit::recent_actions::<DateTime<Utc>>(&client, 10).await.expect("audit");
    let as_text = audit::recent_actions::<String>(&client, 10).await.expect("audit as text");
    let summary: Vec<(&str, &str, &str)> =
        recent.iter().map(|a| (a.action.as_str(), a.outcome.as_str(), a.detail.as_str())).collect();
    let refusal = format!("dead letter {id} is discarded: discarded by an operator");
    assert_eq!(summary, [("retry", "refused", refusal.as_str()), ("discard", "done", "1 dead letter discarded")]);
    assert_eq!(
        (recent[1].via.as_str(), recent[1].client.as_str(), recent[1].token.as_deref()),
        ("http", "192.0.2.7:40112", Some("alice"))
    );
    assert_eq!(recent[1].dead_letters, [id]);
    assert_eq!(parse_server_text(&as_text[1].at), recent[1].at);
    assert_eq!(store.audit_to_archive(10).await.expect("to archive").len(), 1, "only what was done is archived");

    // No audit row, no action: the dead letter stays open.
    let writes = StateWrites { dead_letters: vec![dead_letter("[\"K1\"]", "failure")], ..StateWrites::default() };
    store.commit_writes(&writes).await.expect("commit");
    let open = store.dead_letters(false).await.expect("letters")[0].id;
    client.batch_execute("DROP TABLE millrace.audit").await.expect("drop the audit trail");
    let error = store.act_on_dead_letters(Action::Retry, Target::AllOpen, &actor).await.expect_err("no audit table");
    assert!(error.to_string().contains("recording an operator action"), "{error}");
    let status: String =
        client.query_one("SELECT status FROM millrace.dlq WHERE id = $1", &[&open]).await.expect("status").get(0);
    assert_eq!(status, "open");
}
