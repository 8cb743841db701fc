//! A reply that cannot use its token reaches the user as a push, and the cost shows: every
//! fallback is counted by reason (`linebotd_reply_fallbacks_total`) and logged once at warn.
//! A token that is already too old is not even tried.

mod support;

use std::time::Duration;

use serde_json::json;
use support::daemon::{post_signed, start_with_env, Daemon, Scripts};
use support::mock_line::MockLine;

const ECHO: &str = r#"fn on_message(e) { reply(e, e.message.text); }"#;

fn event(id: &str, user: &str, token: Option<&str>, text: &str) -> serde_json::Value {
    let mut e = json!({
        "type": "message", "mode": "active", "timestamp": 1_700_000_000_000_i64,
        "webhookEventId": id, "deliveryContext": {"isRedelivery": false},
        "source": {"type": "user", "userId": user},
        "message": {"id": format!("m-{id}"), "type": "text", "quoteToken": "q", "text": text}
    });
    if let Some(token) = token {
        e["replyToken"] = json!(token);
    }
    e
}

fn body(events: Vec<serde_json::Value>) -> String {
    json!({"destination": "Ubot", "events": events}).to_string()
}

async fn fallbacks(d: &Daemon, reason: &str) -> u64 {
    let text = reqwest::get(d.url("/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    let series = format!("linebotd_reply_fallbacks_total{{reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn used_and_missing_tokens_fall_back_to_push_and_are_counted_by_reason() {
    let mock = MockLine::start().await;
    let scripts = Scripts::new(&[("echo.rhai", ECHO)]);
    let d = start_with_env(
        scripts.path(),
        &mock.url(),
        &[("LINEBOTD_LINE_RATE_LIMIT", "0")],
    );
    let client = reqwest::Client::new();
    let url = d.url("/callback");

    // The first event uses the token; a second event carrying the same token finds it used.
    let first = body(vec![event("e1", "U1", Some("rt-shared"), "first")]);
    assert_eq!(post_signed(&client, &url, &first).await, 200);
    assert!(mock.wait_for(1, Duration::from_secs(10)).await);
    let second = body(vec![event("e2", "U1", Some("rt-shared"), "second")]);
    assert_eq!(post_signed(&client, &url, &second).await, 200);
    let third = body(vec![event("e3", "U3", None, "no token")]);
    assert_eq!(post_signed(&client, &url, &third).await, 200);

    assert!(
        support::daemon::eventually(Duration::from_secs(10), || {
            mock.accepted("/v2/bot/message/push").len() >= 2
        })
        .await,
        "fallback pushes: {:?}",
        mock.texts("/v2/bot/message/push")
    );
    let mut pushed = mock.texts("/v2/bot/message/push");
    pushed.sort();
    assert_eq!(pushed, vec!["no token", "second"]);
    assert_eq!(mock.texts("/v2/bot/message/reply"), vec!["first"]);
    assert_eq!(fallbacks(&d, "used").await, 1);
    assert_eq!(fallbacks(&d, "missing").await, 1);
    assert_eq!(fallbacks(&d, "expired").await, 0);
    let warned = d
        .stderr
        .all()
        .into_iter()
        .filter(|l| l.contains("WARN") && l.contains("reply sent as a push"))
        .count();
    assert_eq!(warned, 2, "{}", d.stderr.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_older_than_its_reply_token_pushes_without_trying_the_reply() {
    let mock = MockLine::start().await;
    let scripts = Scripts::new(&[("echo.rhai", ECHO)]);
    let dir = tempfile::tempdir().expect("temp dir");
    let store_path = dir.path().join("bot.db");
    let store_path = store_path.to_str().expect("utf-8 path");
    {
        // Acknowledged two minutes ago, before a long outage of the daemon.
        let store = linebotd::store::open(store_path).expect("store");
        let old = linebotd::store::NewInboxEvent {
            webhook_event_id: Some("old1".into()),
            conversation: "Uold".into(),
            payload: event("old1", "Uold", Some("rt-old"), "late hello").to_string(),
            received_ms: linebotd::store::now_ms() - 120_000,
        };
        store.inbox_insert(&[old]).expect("insert");
    }
    let d = start_with_env(
        scripts.path(),
        &mock.url(),
        &[
            ("LINEBOTD_LINE_RATE_LIMIT", "0"),
            ("LINEBOTD_STORE", store_path),
        ],
    );
    assert!(
        support::daemon::eventually(Duration::from_secs(10), || {
            !mock.accepted("/v2/bot/message/push").is_empty()
        })
        .await
    );
    assert_eq!(mock.texts("/v2/bot/message/push"), vec!["late hello"]);
    assert!(
        mock.requests_to("/v2/bot/message/reply").is_empty(),
        "a doomed reply was tried"
    );
    assert_eq!(fallbacks(&d, "expired").await, 1);
}
