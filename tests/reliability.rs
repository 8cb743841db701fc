//! What the daemon keeps honest about its store and the events it hands on, through the real
//! binary: private store files, and numbers that reach scripts exactly as LINE sent them.

mod support;

use std::time::Duration;

use support::daemon::{eventually, post_signed, run_command, text_event_body, Daemon, Scripts};
use support::mock_line::MockLine;

const REPLY: &str = "/v2/bot/message/reply";
const WAIT: Duration = Duration::from_secs(20);

fn start(scripts: &Scripts, mock: &MockLine, db: &std::path::Path) -> Daemon {
    let mut cmd = run_command(scripts.path(), &mock.url());
    cmd.env("LINEBOTD_STORE", db);
    Daemon::spawn(cmd)
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
