//! What the daemon keeps honest about its store and the events it hands on, through the real
//! binary: readiness of a store that refuses writes, private store files, and numbers that
//! reach scripts exactly as LINE sent them.

mod support;

use std::io::{Seek, SeekFrom, Write};
use std::time::Duration;

use linebotd::store::{self, NewInboxEvent};
use serde_json::{json, Value};
use support::daemon::{eventually, post_signed, run_command, text_event_body, Daemon, Scripts};
use support::mock_line::MockLine;

const REPLY: &str = "/v2/bot/message/reply";
const WAIT: Duration = Duration::from_secs(20);

fn start(scripts: &Scripts, mock: &MockLine, db: &std::path::Path) -> Daemon {
    let mut cmd = run_command(scripts.path(), &mock.url());
    cmd.env("LINEBOTD_STORE", db);
    Daemon::spawn(cmd)
}

async fn get(url: &str) -> (u16, Value) {
    let resp = reqwest::get(url).await.expect("GET");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_location_events_coordinates_reach_the_script_exactly() {
    let mock = MockLine::start().await;
    let scripts = Scripts::new(&[(
        "where.rhai",
        r#"fn on_message(e) { reply(e, `${e.message.latitude} ${e.message.longitude}`); }"#,
    )]);
    let dir = tempfile::tempdir().unwrap();
    let d = start(&scripts, &mock, &dir.path().join("bot.db"));
    // Shortest decimal forms of doubles that a fast but inexact parser rounds to a neighbour.
    let body = r#"{"destination":"Ubot","events":[{"type":"message","mode":"active",
        "timestamp":1700000000000,"webhookEventId":"L1","deliveryContext":{"isRedelivery":false},
        "replyToken":"rt-L1","source":{"type":"user","userId":"U1"},
        "message":{"id":"m1","type":"location","title":"Shibuya","address":"Tokyo",
                   "latitude":35.65910807942215,"longitude":139.70372892916203}}]}"#;
    let client = reqwest::Client::new();
    assert_eq!(post_signed(&client, &d.url("/callback"), body).await, 200);
    assert!(eventually(WAIT, || !mock.texts(REPLY).is_empty()).await);
    assert_eq!(mock.texts(REPLY), ["35.65910807942215 139.70372892916203"]);
}

#[cfg(unix)]
#[tokio::test]
async fn the_store_and_its_wal_and_shm_files_are_private_to_the_owner() {
    use std::os::unix::fs::PermissionsExt;
    let mock = MockLine::start().await;
    let scripts = Scripts::new(&[("echo.rhai", r#"fn on_message(e) { reply(e, "ok"); }"#)]);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bot.db");
    let d = start(&scripts, &mock, &db);
    let client = reqwest::Client::new();
    let body = text_event_body("P1", "U1", "my secret text");
    assert_eq!(post_signed(&client, &d.url("/callback"), &body).await, 200);
    assert!(eventually(WAIT, || mock.texts(REPLY).len() == 1).await);
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{}{suffix}", db.display());
        let mode = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{path} is {mode:o}");
    }
}

/// A store whose inbox table is damaged: its root page overwritten, everything else intact.
fn store_with_damaged_inbox(db: &std::path::Path) {
    let path = db.to_str().unwrap();
    {
        let s = store::open(path).unwrap();
        // Enough handled events for the inbox to span several pages.
        let events: Vec<NewInboxEvent> = (0..300)
            .map(|i| NewInboxEvent {
                webhook_event_id: Some(format!("old-{i}")),
                conversation: "U1".into(),
                payload: json!({"n": i, "pad": "x".repeat(200)}).to_string(),
                received_ms: store::now_ms(),
            })
            .collect();
        let seqs: Vec<i64> = s
            .inbox_insert(&events)
            .unwrap()
            .into_iter()
            .flatten()
            .collect();
        let done: Vec<_> = seqs.into_iter().map(|seq| (seq, None)).collect();
        s.inbox_mark_done(&done).unwrap();
    }
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    let page_size: u64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap();
    let root: u64 = conn
        .query_row(
            "SELECT rootpage FROM sqlite_schema WHERE type = 'table' AND name = 'inbox'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    drop(conn);
    let mut file = std::fs::OpenOptions::new().write(true).open(db).unwrap();
    file.seek(SeekFrom::Start((root - 1) * page_size)).unwrap();
    file.write_all(&vec![0x5a; page_size as usize]).unwrap();
    file.sync_all().unwrap();
}

#[tokio::test]
async fn readyz_is_not_ready_while_the_inbox_cannot_commit() {
    let mock = MockLine::start().await;
    let scripts = Scripts::new(&[("echo.rhai", r#"fn on_message(e) { reply(e, "ok"); }"#)]);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bot.db");
    store_with_damaged_inbox(&db);
    let d = start(&scripts, &mock, &db);

    // The store opens and answers reads, but no event can be stored.
    let (status, body) = get(&d.url("/readyz")).await;
    assert_eq!(status, 503, "{body}");
    let problems = body["problems"].to_string();
    assert!(problems.contains("store"), "{body}");
    let client = reqwest::Client::new();
    let webhook = text_event_body("N1", "U1", "hi");
    assert_eq!(
        post_signed(&client, &d.url("/callback"), &webhook).await,
        503
    );
    let (status, body) = get(&d.url("/readyz")).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "not ready");
}

#[tokio::test]
async fn readyz_is_ready_with_a_healthy_store_before_and_after_traffic() {
    let mock = MockLine::start().await;
    let scripts = Scripts::new(&[("echo.rhai", r#"fn on_message(e) { reply(e, "ok"); }"#)]);
    let dir = tempfile::tempdir().unwrap();
    let d = start(&scripts, &mock, &dir.path().join("bot.db"));
    assert_eq!(get(&d.url("/readyz")).await.0, 200);
    let client = reqwest::Client::new();
    let webhook = text_event_body("H1", "U1", "hi");
    assert_eq!(
        post_signed(&client, &d.url("/callback"), &webhook).await,
        200
    );
    assert!(eventually(WAIT, || mock.texts(REPLY).len() == 1).await);
    let (status, body) = get(&d.url("/readyz")).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ready")));
}
