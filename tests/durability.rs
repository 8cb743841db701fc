//! Delivery guarantees through the real binary across crashes: the inbox before the 200, crash
//! recovery and replay, and the outbox across an outage and a crash.

#[path = "support/durable_daemon.rs"]
mod durable_daemon;
mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use durable_daemon::{start, PUSH, PUSH_TEXT, WAIT};
use serde_json::{json, Value};
use support::daemon::{eventually, post_signed, text_event_body, Scripts};
use support::mock_line::MockLine;

fn counts(items: &[String]) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for i in items {
        *m.entry(i.clone()).or_default() += 1;
    }
    m
}

#[tokio::test]
async fn acknowledged_events_survive_kill_9_and_are_pushed_exactly_once() {
    let mock = MockLine::start().await;
    let scripts = Scripts::new(&[("push.rhai", PUSH_TEXT)]);
    let store = tempfile::tempdir().unwrap();
    let db = store.path().join("bot.db");
    let mut d = start(&scripts, &mock, &db);

    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let url = d.url("/callback");
    let mut senders = Vec::new();
    for worker in 0..4 {
        let acked = acked.clone();
        let url = url.clone();
        senders.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            for i in 0..150 {
                let text = format!("w{worker}-{i}");
                let body = text_event_body(&format!("K{worker}-{i}"), &format!("U{worker}"), &text);
                if post_signed(&client, &url, &body).await == 200 {
                    acked.lock().unwrap().push(text);
                }
            }
        }));
    }
    assert!(eventually(WAIT, || acked.lock().unwrap().len() >= 150).await);
    d.child.kill().unwrap(); // SIGKILL, mid-stream
    d.child.wait().unwrap();
    for s in senders {
        s.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() < 600,
        "the kill came after the stream ended; nothing was tested"
    );

    let d2 = start(&scripts, &mock, &db);
    let all_arrived = eventually(WAIT, || {
        let got = counts(&mock.texts(PUSH));
        acked.iter().all(|t| got.contains_key(t))
    })
    .await;
    let got = counts(&mock.texts(PUSH));
    let missing: Vec<&String> = acked.iter().filter(|t| !got.contains_key(*t)).collect();
    assert!(
        all_arrived,
        "{} acknowledged events never pushed, e.g. {:?}\n{}",
        missing.len(),
        &missing[..missing.len().min(5)],
        d2.stderr.text()
    );
    let twice: Vec<(&String, &usize)> = got.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "accepted more than once: {twice:?}");
    let keys: Vec<String> = mock
        .accepted(PUSH)
        .iter()
        .filter_map(|r| r.retry_key().map(str::to_owned))
        .collect();
    assert_eq!(
        keys.len(),
        counts(&keys).len(),
        "a retry key was accepted twice"
    );
}

#[tokio::test]
async fn pushes_queued_during_an_outage_and_a_crash_all_arrive_once_line_recovers() {
    let mock = MockLine::start().await;
    mock.fail_next(PUSH, 500, 1_000_000);
    let scripts = Scripts::new(&[("push.rhai", PUSH_TEXT)]);
    let store = tempfile::tempdir().unwrap();
    let db = store.path().join("bot.db");
    let mut d = start(&scripts, &mock, &db);
    let client = reqwest::Client::new();
    let texts: Vec<String> = (0..10).map(|i| format!("outage-{i}")).collect();
    for (i, t) in texts.iter().enumerate() {
        assert_eq!(
            post_signed(
                &client,
                &d.url("/callback"),
                &text_event_body(&format!("O{i}"), "U1", t)
            )
            .await,
            200
        );
    }
    // LINE is failing: the push is being retried, none accepted.
    assert!(eventually(WAIT, || mock.requests_to(PUSH).len() >= 2).await);
    assert!(mock.accepted(PUSH).is_empty());
    d.child.kill().unwrap();
    d.child.wait().unwrap();

    let d2 = start(&scripts, &mock, &db);
    assert!(eventually(WAIT, || mock.requests_to(PUSH).len() >= 4).await);
    mock.heal(PUSH);
    let arrived = eventually(WAIT, || mock.texts(PUSH).len() >= texts.len()).await;
    assert!(arrived, "{:?}\n{}", mock.texts(PUSH), d2.stderr.text());
    // One user's pushes keep their order, each accepted once.
    assert_eq!(mock.texts(PUSH), texts);
}

const REPLY_THEN_PUSH: &str = r#"
fn on_message(e) {
    reply(e, "r:" + e.message.text);
    push(e.source.userId, "p:" + e.message.text);
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_and_pushes_reach_users_once_across_four_kill_9s() {
    const REPLY: &str = "/v2/bot/message/reply";
    let mock = MockLine::start().await;
    // LINE takes the reply at once but answers 30 ms later: kills land while replies are in
    // flight, taken by LINE and not yet known to the daemon.
    mock.set_delay(REPLY, Duration::from_millis(30));
    let scripts = Scripts::new(&[("both.rhai", REPLY_THEN_PUSH)]);
    let store = tempfile::tempdir().unwrap();
    let db = store.path().join("bot.db");

    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    for round in 0..4 {
        let mut d = start(&scripts, &mock, &db);
        let url = d.url("/callback");
        let before = acked.lock().unwrap().len();
        let mut senders = Vec::new();
        for user in 0..8 {
            let (acked, url) = (acked.clone(), url.clone());
            senders.push(tokio::spawn(async move {
                let client = reqwest::Client::new();
                for i in 0..200 {
                    let text = format!("{round}-{user}-{i}");
                    let body = text_event_body(&format!("E{text}"), &format!("U{user}"), &text);
                    if post_signed(&client, &url, &body).await != 200 {
                        return;
                    }
                    acked.lock().unwrap().push(text);
                }
            }));
        }
        // Kill once handlers are busy replying and pushing.
        assert!(eventually(WAIT, || mock.requests_to(REPLY).len() >= (round + 1) * 60).await);
        d.child.kill().unwrap();
        d.child.wait().unwrap();
        for s in senders {
            s.await.unwrap();
        }
        let now = acked.lock().unwrap().len();
        assert!(now - before < 1_600, "round {round} ended before the kill");
    }

    let d = start(&scripts, &mock, &db);
    let acked = acked.lock().unwrap().clone();
    let texts = |prefix: &str| -> HashMap<String, usize> {
        let mut all = mock.texts(REPLY);
        all.extend(mock.texts(PUSH));
        counts(
            &all.into_iter()
                .filter_map(|t| t.strip_prefix(prefix).map(str::to_owned))
                .collect::<Vec<_>>(),
        )
    };
    let all_arrived = eventually(WAIT, || {
        let (replies, pushes) = (texts("r:"), texts("p:"));
        acked
            .iter()
            .all(|t| replies.contains_key(t) && pushes.contains_key(t))
    })
    .await;
    let (replies, pushes) = (texts("r:"), texts("p:"));
    let missing: Vec<&String> = acked
        .iter()
        .filter(|t| !replies.contains_key(*t) || !pushes.contains_key(*t))
        .collect();
    assert!(
        all_arrived,
        "{} acknowledged events not answered, e.g. {:?}\n{}",
        missing.len(),
        &missing[..missing.len().min(5)],
        d.stderr.text()
    );
    let twice: Vec<_> = replies
        .iter()
        .chain(pushes.iter())
        .filter(|(_, n)| **n > 1)
        .collect();
    assert!(twice.is_empty(), "delivered twice: {twice:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_event_neither_pushes_its_used_reply_nor_resends_its_push() {
    const REPLY: &str = "/v2/bot/message/reply";
    let mock = MockLine::start().await;
    let scripts = Scripts::new(&[("both.rhai", REPLY_THEN_PUSH)]);
    let store = tempfile::tempdir().unwrap();
    let db = store.path().join("bot.db");
    let db_path = db.to_str().unwrap();

    // The run before the crash: its handler started (and so may have used the token), LINE took
    // its reply and its push, and the daemon died before the event was marked done.
    let body: Value = serde_json::from_str(&text_event_body("E1", "U1", "hello")).unwrap();
    {
        let s = linebotd::store::open(db_path).unwrap();
        let seq = s
            .inbox_insert(&[linebotd::store::NewInboxEvent {
                webhook_event_id: Some("E1".into()),
                conversation: "U1".into(),
                payload: body["events"][0].to_string(),
                received_ms: linebotd::store::now_ms(),
            }])
            .unwrap()[0]
            .unwrap();
        s.inbox_write(&[], &[linebotd::store::Mark::Started(seq)])
            .unwrap();
    }
    let client = reqwest::Client::new();
    let reply = json!({"replyToken": "rt-E1", "messages": [{"type": "text", "text": "r:hello"}]});
    client
        .post(format!("{}{REPLY}", mock.url()))
        .json(&reply)
        .send()
        .await
        .unwrap();
    let push_key =
        linebotd::pipeline::script::host::retry_key(Some("E1/both.rhai/on_message/push/1"));
    let push = json!({"to": "U1", "messages": [{"type": "text", "text": "p:hello"}]});
    client
        .post(format!("{}{PUSH}", mock.url()))
        .header("X-Line-Retry-Key", push_key.to_string())
        .json(&push)
        .send()
        .await
        .unwrap();
    mock.clear();

    let d = start(&scripts, &mock, &db);
    assert!(
        d.stderr
            .wait_for("possibly delivered before the crash", WAIT)
            .is_some(),
        "{}",
        d.stderr.text()
    );
    // The push's key is the one the first run used, so LINE answers 409; nothing new arrives.
    assert!(eventually(WAIT, || !mock.requests_to(PUSH).is_empty()).await);
    let pushes = mock.requests_to(PUSH);
    assert_eq!(pushes.len(), 1, "{pushes:?}");
    assert_eq!(pushes[0].status, 409);
    assert_eq!(pushes[0].retry_key(), Some(push_key.to_string().as_str()));
    assert!(mock.accepted(REPLY).is_empty());
}
