//! Handlers that wait on a slow LINE never hold up the webhook or each other: the 200 depends
//! only on the inbox commit, handlers wait side by side, and a backlog beyond what memory holds
//! waits in the store and still runs without a restart.

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use support::daemon::{eventually, post_signed, start_with_env, Daemon, Scripts};
use support::mock_line::MockLine;

const ECHO: &str = r#"fn on_message(e) { reply(e, e.message.text); }"#;

const PROFILE_THEN_REPLY: &str = r#"
fn on_message(e) {
    let p = profile(e.source.userId);
    reply(e, "hi " + p.displayName);
}
"#;

/// A config file capping handler threads at `workers`.
fn workers_config(workers: usize) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().expect("config file");
    std::fs::write(file.path(), format!("[limits]\nworkers = {workers}\n")).expect("write config");
    file
}

fn start(scripts: &Scripts, mock: &MockLine, extra: &[(&str, &str)]) -> Daemon {
    let mut env = vec![("LINEBOTD_LINE_RATE_LIMIT", "0")];
    env.extend_from_slice(extra);
    start_with_env(scripts.path(), &mock.url(), &env)
}

/// One webhook body holding one text event from each of `users`.
fn body_from(users: impl IntoIterator<Item = String>, tag: &str) -> String {
    let events: Vec<_> = users
        .into_iter()
        .map(|user| {
            json!({
                "type": "message", "mode": "active", "timestamp": 1_700_000_000_000_i64,
                "webhookEventId": format!("{tag}-{user}"),
                "deliveryContext": {"isRedelivery": false},
                "replyToken": format!("rt-{tag}-{user}"),
                "source": {"type": "user", "userId": user},
                "message": {"id": format!("m-{tag}-{user}"), "type": "text", "quoteToken": "q", "text": format!("{tag} {user}")}
            })
        })
        .collect();
    json!({"destination": "Ubot", "events": events}).to_string()
}

fn one(user: &str, tag: &str) -> String {
    body_from([user.to_owned()], tag)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_answered_at_once_while_every_handler_waits_on_line() {
    const BUSY: usize = 1_200;
    let mock = MockLine::start().await;
    // The first two replies are held by LINE for 3 s; the rest are answered at once.
    mock.delay_next("/v2/bot/message/reply", Duration::from_secs(3), 2);
    let scripts = Scripts::new(&[("echo.rhai", ECHO)]);
    let config = workers_config(2);
    let d = start(
        &scripts,
        &mock,
        &[("LINEBOTD_CONFIG", config.path().to_str().unwrap())],
    );
    let client = reqwest::Client::new();
    let url = d.url("/callback");

    // Both handler threads wait on LINE, and more events arrive than memory holds: the
    // second webhook is still acknowledged as soon as it is stored.
    for part in 0..2 {
        let users = (0..BUSY / 2).map(|i| format!("U{part}-{i:04}"));
        let started = Instant::now();
        assert_eq!(
            post_signed(&client, &url, &body_from(users, "busy")).await,
            200
        );
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(1),
            "600 events took {took:?} to acknowledge"
        );
    }
    assert!(
        mock.wait_for(2, Duration::from_secs(5)).await,
        "both handlers should be waiting on LINE"
    );

    let mut times = Vec::new();
    for i in 0..5 {
        let started = Instant::now();
        let status = post_signed(&client, &url, &one(&format!("V{i}"), "late")).await;
        times.push(started.elapsed());
        assert_eq!(status, 200);
    }
    times.sort();
    assert!(
        times[2] < Duration::from_millis(50),
        "acknowledgements waited on busy handlers: {times:?}"
    );
    // Nothing was lost behind the busy handlers: every event gets its reply, once.
    let all = eventually(Duration::from_secs(30), || {
        mock.requests_to("/v2/bot/message/reply").len() >= BUSY + 5
    })
    .await;
    let texts = mock.texts("/v2/bot/message/reply");
    assert!(all, "{} replies", texts.len());
    assert_eq!(texts.iter().collect::<HashSet<_>>().len(), BUSY + 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_to_many_conversations_wait_on_line_side_by_side() {
    const USERS: usize = 100;
    let mock = MockLine::start().await;
    mock.set_delay("/v2/bot/message/reply", Duration::from_millis(500));
    for i in 0..USERS {
        mock.set_delay(
            &format!("/v2/bot/profile/U{i:03}"),
            Duration::from_millis(500),
        );
    }
    let scripts = Scripts::new(&[("profile.rhai", PROFILE_THEN_REPLY)]);
    let d = start(&scripts, &mock, &[]);
    let client = reqwest::Client::new();

    let started = Instant::now();
    let users = (0..USERS).map(|i| format!("U{i:03}"));
    let status = post_signed(&client, &d.url("/callback"), &body_from(users, "m")).await;
    assert_eq!(status, 200);
    // Each reply is sent only after its profile call's 500 ms answer; one after the other, or
    // sixteen at a time, that would take many seconds.
    let all = eventually(Duration::from_secs(20), || {
        mock.requests_to("/v2/bot/message/reply").len() >= USERS
    })
    .await;
    let took = started.elapsed();
    assert!(
        all,
        "only {} replies",
        mock.requests_to("/v2/bot/message/reply").len()
    );
    assert!(
        took < Duration::from_millis(2_500),
        "{USERS} profile calls of 500 ms each took {took:?} before every reply went out"
    );
    let replied: HashSet<String> = mock.texts("/v2/bot/message/reply").into_iter().collect();
    assert_eq!(replied.len(), USERS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_beyond_memory_waits_in_the_store_and_runs_without_a_restart() {
    const EVENTS: usize = 1_500;
    let mock = MockLine::start().await;
    let scripts = Scripts::new(&[("echo.rhai", ECHO)]);
    let config = workers_config(1);
    let d = start(
        &scripts,
        &mock,
        &[("LINEBOTD_CONFIG", config.path().to_str().unwrap())],
    );
    let client = reqwest::Client::new();
    // Three webhooks of 500 events: more than the 1,024 the dispatcher keeps in memory.
    for part in 0..3 {
        let users = (0..EVENTS / 3).map(|i| format!("U{part}-{i:04}"));
        let status = post_signed(&client, &d.url("/callback"), &body_from(users, "b")).await;
        assert_eq!(status, 200);
    }
    let all = eventually(Duration::from_secs(60), || {
        mock.requests_to("/v2/bot/message/reply").len() >= EVENTS
    })
    .await;
    let texts = mock.texts("/v2/bot/message/reply");
    assert!(all, "{} of {EVENTS} replies", texts.len());
    let unique: HashSet<&String> = texts.iter().collect();
    assert_eq!(unique.len(), EVENTS, "an event ran twice");
    assert_eq!(texts.len(), EVENTS, "an event ran twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_whose_webhook_request_was_dropped_still_runs() {
    use linebotd::pipeline::webhook::{parse_body, EventSink};

    let mock = MockLine::start().await;
    let scripts = Scripts::new(&[("echo.rhai", ECHO)]);
    let settings = linebotd::cli::Settings {
        scripts: Some(scripts.path().to_owned()),
        channel_secret: Some(support::daemon::SECRET.into()),
        channel_access_token: Some(support::daemon::TOKEN.into()),
        line_api_base: Some(mock.url()),
        line_data_api_base: Some(mock.url()),
        line_rate_limit: Some(0),
        store: Some(":memory:".into()),
        no_watch: true,
        ..Default::default()
    };
    let config = linebotd::config::Config::load(&settings, None).expect("config");
    let pipeline = linebotd::daemon::start_pipeline(&config)
        .await
        .expect("pipeline");
    let sink = linebotd::pipeline::inbox::InboxSink {
        inbox: Arc::clone(&pipeline.inbox),
    };
    let body = parse_body(one("Udrop", "dropped").as_bytes()).expect("parse");

    // The request future is polled once (the event is on its way to the commit) and dropped, as
    // when LINE hangs up before the 200. Nothing after that first poll may be needed for the
    // event to run.
    let accept = sink.accept(body.events);
    drop(tokio::time::timeout(Duration::ZERO, accept).await);

    assert!(
        mock.wait_for(1, Duration::from_secs(10)).await,
        "the dropped request's event never ran"
    );
    assert_eq!(mock.texts("/v2/bot/message/reply"), vec!["dropped Udrop"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_stored_event_is_marked_done_instead_of_read_at_every_start() {
    let mock = MockLine::start().await;
    let scripts = Scripts::new(&[("echo.rhai", ECHO)]);
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("bot.db");
    let db = db.to_str().expect("utf-8 path");
    let store = linebotd::store::open(db).expect("store");
    let garbage = linebotd::store::NewInboxEvent {
        webhook_event_id: Some("bad".into()),
        conversation: "U1".into(),
        payload: "not an event".into(),
        received_ms: linebotd::store::now_ms(),
    };
    store.inbox_insert(&[garbage]).expect("insert");
    assert_eq!(store.inbox_backlog().expect("backlog"), 1);

    let d = start(&scripts, &mock, &[("LINEBOTD_STORE", db)]);
    assert!(
        eventually(Duration::from_secs(10), || store.inbox_backlog().ok()
            == Some(0))
        .await,
        "the unreadable event is still pending\n{}",
        d.stderr.text()
    );
    assert!(d.stderr.text().contains("stored event is unreadable"));
    assert!(mock.recorded().is_empty());
}
