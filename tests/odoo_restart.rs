//! A server restart in the middle of streaming: `millrace tail --ack` reconnects by itself,
//! resumes from the slot, and every committed row comes out exactly once. Alone in its test
//! binary because it restarts the shared test server.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{setup, TestDb};

async fn insert_with_retry(url: &str, id: i32) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let attempt = async {
            let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            client.execute("INSERT INTO stock_move VALUES ($1, 'row')", &[&id]).await
        };
        match attempt.await {
            Ok(_) => return,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("insert {id}: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn server_restart_mid_stream_loses_and_repeats_nothing() {
    let db = TestDb::create("restart").await;
    db.client().await.batch_execute("CREATE TABLE stock_move (id int PRIMARY KEY, name text)").await.unwrap();
    let env = db.millrace_env(&["public.stock_move"]);
    setup(&env);

    let mut child = common::millrace_command(&env, &["tail", "--json", "--ack"])
        .env("MILLRACE_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<i64>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            tx.send(v["after"]["id"].as_i64().unwrap()).unwrap();
        }
    });
    let log = std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            text.push_str(&line);
            text.push('\n');
        }
        text
    });

    // One row per transaction; restart the server in the middle.
    for id in 1..=200 {
        insert_with_retry(&db.url, id).await;
        if id == 100 {
            let status =
                std::process::Command::new(common::env_path("MILLRACE_TEST_PG_CTL")).arg("restart").status().unwrap();
            assert!(status.success(), "pg-ctl.sh restart failed");
        }
    }

    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    while seen.len() < 200 && Instant::now() < deadline {
        if let Ok(id) = rx.recv_timeout(Duration::from_millis(500)) {
            seen.push(id);
        }
    }
    // A sentinel row committed after the 200: the stream hands rows over in commit order, so a
    // duplicate of any of them comes before it.
    insert_with_retry(&db.url, 201).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.last() != Some(&201) {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(id) => seen.push(id),
            Err(_) => panic!("the sentinel row 201 did not arrive; seen {} rows: {seen:?}", seen.len()),
        }
    }
    let _ = std::process::Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let status = child.wait().unwrap();
    reader.join().unwrap();
    // And whatever it printed before it stopped.
    seen.extend(rx.try_iter());
    let log = log.join().unwrap();
    assert!(status.success(), "tail should exit 0 on SIGTERM: {log}");
    assert!(log.contains("reconnecting"), "the restart should have been noticed: {log}");

    let expected: Vec<i64> = (1..=201).collect();
    assert_eq!(seen, expected, "every row once, in commit order");

    // Everything printed was acknowledged: a new run has nothing to repeat.
    let again = common::tail(&env, &[]);
    assert!(again.is_empty(), "repeated after ack: {again:?}");
}
