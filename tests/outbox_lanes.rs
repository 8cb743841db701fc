//! The outbox sends each delivery once, even when its reads of the store are slow and stale,
//! and one chat's backlog does not hold up another chat.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use linebotd::line::{LineClient, LineConfig};
use linebotd::pipeline::outbox::{FailedHook, Outbox};
use linebotd::store::{
    self, Delivery, DeliveryKind, InboxEvent, Mark, NewDelivery, NewInboxEvent, Store, StoreError,
    Timer,
};
use serde_json::{json, Value};
use support::daemon::{eventually, post_signed, run_command, text_event_body, Daemon, Scripts};
use support::mock_line::MockLine;

const PUSH: &str = "/v2/bot/message/push";
const WAIT: Duration = Duration::from_secs(20);

/// A store whose outbox reads are slow, and stale when they return: what they read is only
/// handed back `delay` later, as a busy disk or a long queue for the connection would do.
struct SlowReads {
    inner: Arc<dyn Store>,
    delay: Duration,
}

impl SlowReads {
    fn stale<T>(&self, read: T) -> T {
        std::thread::sleep(self.delay);
        read
    }
}

impl Store for SlowReads {
    fn outbox_due(&self, now_ms: i64, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        self.stale(self.inner.outbox_due(now_ms, limit))
    }
    fn outbox_lanes(&self, after: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        self.stale(self.inner.outbox_lanes(after, limit))
    }
    fn outbox_next(&self, lane: &str) -> Result<Option<Delivery>, StoreError> {
        self.stale(self.inner.outbox_next(lane))
    }
    fn outbox_list(&self, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        self.stale(self.inner.outbox_list(limit))
    }

    fn inbox_write(
        &self,
        new: &[NewInboxEvent],
        marks: &[Mark],
    ) -> Result<Vec<Option<i64>>, StoreError> {
        self.inner.inbox_write(new, marks)
    }
    fn inbox_sent_calls(&self, seq: i64) -> Result<Vec<String>, StoreError> {
        self.inner.inbox_sent_calls(seq)
    }
    fn inbox_pending(&self, after_seq: i64, limit: usize) -> Result<Vec<InboxEvent>, StoreError> {
        self.inner.inbox_pending(after_seq, limit)
    }
    fn inbox_backlog(&self) -> Result<u64, StoreError> {
        self.inner.inbox_backlog()
    }
    fn inbox_writable(&self, fresh: Duration) -> Result<(), StoreError> {
        self.inner.inbox_writable(fresh)
    }
    fn prune(&self, now_ms: i64, keep: i64) -> Result<(), StoreError> {
        self.inner.prune(now_ms, keep)
    }
    fn outbox_enqueue(&self, d: &NewDelivery) -> Result<bool, StoreError> {
        self.inner.outbox_enqueue(d)
    }
    fn outbox_mark_sent(&self, k: &str, r: Option<&str>, now: i64) -> Result<(), StoreError> {
        self.inner.outbox_mark_sent(k, r, now)
    }
    fn outbox_mark_retry(&self, k: &str, a: u32, n: i64, e: &str) -> Result<(), StoreError> {
        self.inner.outbox_mark_retry(k, a, n, e)
    }
    fn outbox_mark_failed(&self, k: &str, e: &str, now: i64) -> Result<(), StoreError> {
        self.inner.outbox_mark_failed(k, e, now)
    }
    fn outbox_counts(&self) -> Result<(u64, u64), StoreError> {
        self.inner.outbox_counts()
    }
    fn kv_get(&self, key: &str) -> Result<Option<Value>, StoreError> {
        self.inner.kv_get(key)
    }
    fn kv_set(&self, key: &str, value: &Value) -> Result<(), StoreError> {
        self.inner.kv_set(key, value)
    }
    fn kv_delete(&self, key: &str) -> Result<bool, StoreError> {
        self.inner.kv_delete(key)
    }
    fn kv_keys(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.inner.kv_keys(prefix)
    }
    fn kv_clear(&self) -> Result<(), StoreError> {
        self.inner.kv_clear()
    }
    fn follower_set(&self, u: &str, f: bool, at: i64) -> Result<(), StoreError> {
        self.inner.follower_set(u, f, at)
    }
    fn followers(&self) -> Result<Vec<String>, StoreError> {
        self.inner.followers()
    }
    fn follower_count(&self) -> Result<u64, StoreError> {
        self.inner.follower_count()
    }
    fn schedule_last_run(&self, key: &str) -> Result<Option<i64>, StoreError> {
        self.inner.schedule_last_run(key)
    }
    fn schedule_claim_run(&self, key: &str, at: i64) -> Result<bool, StoreError> {
        self.inner.schedule_claim_run(key, at)
    }
    fn timer_add(&self, t: &Timer, max: u64) -> Result<bool, StoreError> {
        self.inner.timer_add(t, max)
    }
    fn timers_pending(&self, limit: usize) -> Result<Vec<Timer>, StoreError> {
        self.inner.timers_pending(limit)
    }
    fn timers_take_due(&self, now: i64, lease: i64, n: usize) -> Result<Vec<Timer>, StoreError> {
        self.inner.timers_take_due(now, lease, n)
    }
    fn timer_cancel(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        self.inner.timer_cancel(id, now)
    }
    fn timer_done(&self, id: &str, outcome: &str, now: i64) -> Result<(), StoreError> {
        self.inner.timer_done(id, outcome, now)
    }
}

fn text_push(to: &str, text: &str) -> Value {
    json!({"to": to, "messages": [{"type": "text", "text": text}]})
}

fn requests_with_key(mock: &MockLine, key: &str) -> usize {
    mock.requests_to(PUSH)
        .iter()
        .filter(|r| r.retry_key() == Some(key))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_delivery_is_sent_and_reported_once_when_outbox_reads_are_stale() {
    let mock = MockLine::start().await;
    // LINE rejects every push, and takes a while to say so for the first one.
    mock.respond(
        PUSH,
        400,
        json!({"message": "The property, 'to', in the request body is invalid"}),
    );
    mock.delay_next(PUSH, Duration::from_millis(150), 1);
    let store: Arc<dyn Store> = Arc::new(SlowReads {
        inner: store::open(":memory:").unwrap(),
        delay: Duration::from_millis(300),
    });
    let outbox = Outbox::new(store);
    let line = LineClient::new(LineConfig {
        rate_limit_per_sec: 0,
        ..LineConfig::new(mock.url(), mock.url(), "token")
    })
    .unwrap();
    let reported = Arc::new(Mutex::new(HashMap::<String, usize>::new()));
    let seen = reported.clone();
    let on_failed: FailedHook = Arc::new(move |d: &Delivery, _error: &str| {
        *seen.lock().unwrap().entry(d.retry_key.clone()).or_default() += 1;
    });
    tokio::spawn(outbox.clone().run(line, on_failed));

    let (a, b, c) = (
        uuid::Uuid::new_v4().to_string(),
        uuid::Uuid::new_v4().to_string(),
        uuid::Uuid::new_v4().to_string(),
    );
    outbox
        .enqueue(DeliveryKind::Push, text_push("U1", "a"), &a, "t.rhai")
        .unwrap();
    // While LINE is still answering A, B (another chat) makes the sender read the outbox
    // again; that read returns after A has finished.
    assert!(eventually(WAIT, || requests_with_key(&mock, &a) == 1).await);
    outbox
        .enqueue(DeliveryKind::Push, text_push("U2", "b"), &b, "t.rhai")
        .unwrap();
    assert!(eventually(WAIT, || requests_with_key(&mock, &b) == 1).await);
    // C goes after anything else sent to A's chat, so once it is out, a second A would be too.
    outbox
        .enqueue(DeliveryKind::Push, text_push("U1", "c"), &c, "t.rhai")
        .unwrap();
    assert!(eventually(WAIT, || reported.lock().unwrap().contains_key(&c)).await);

    assert_eq!(requests_with_key(&mock, &a), 1, "A was sent again");
    let reported = reported.lock().unwrap().clone();
    assert_eq!(reported.get(&a), Some(&1), "{reported:?}");
    assert_eq!(reported.get(&b), Some(&1), "{reported:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_of_pushes_to_one_user_does_not_delay_another_users_push() {
    const BACKLOG: usize = 3_000;
    let mock = MockLine::start().await;
    // LINE answers each push after 20 ms: one chat's 3,000 take a minute at the least.
    mock.set_delay(PUSH, Duration::from_millis(20));
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bot.db");
    {
        // Queued by an earlier run of the daemon (NORMAL only to fill it quickly).
        let options = store::Options {
            sync: store::SyncMode::Normal,
            ..store::Options::default()
        };
        let s = store::open_with(db.to_str().unwrap(), options).unwrap();
        for i in 0..BACKLOG {
            s.outbox_enqueue(&NewDelivery {
                retry_key: uuid::Uuid::new_v4().to_string(),
                kind: DeliveryKind::Push,
                payload: text_push("Ubusy", &format!("backlog {i}")),
                source: "flood.rhai".into(),
                created_ms: store::now_ms(),
            })
            .unwrap();
        }
    }
    let scripts = Scripts::new(&[(
        "push.rhai",
        r#"fn on_message(e) { push(e.source.userId, e.message.text); }"#,
    )]);
    let mut cmd = run_command(scripts.path(), &mock.url());
    cmd.env("LINEBOTD_STORE", &db);
    let d = Daemon::spawn(cmd);
    assert!(eventually(WAIT, || mock.requests_to(PUSH).len() >= 10).await);

    let client = reqwest::Client::new();
    let body = text_event_body("F1", "Uquiet", "hello from another chat");
    assert_eq!(post_signed(&client, &d.url("/callback"), &body).await, 200);
    let acknowledged = Instant::now();
    let arrived = eventually(WAIT, || {
        mock.texts(PUSH)
            .iter()
            .any(|t| t == "hello from another chat")
    })
    .await;
    let waited = acknowledged.elapsed();
    let texts = mock.texts(PUSH);
    let backlog_sent = texts.iter().filter(|t| t.starts_with("backlog ")).count();
    assert!(
        arrived && waited < Duration::from_secs(2),
        "the other chat's push waited {waited:?} behind {backlog_sent} of the backlog\n{}",
        d.stderr.text()
    );
    assert!(
        backlog_sent < BACKLOG,
        "the backlog was gone: nothing was tested"
    );
    // The busy chat still gets its messages in the order they were queued.
    let busy: Vec<&String> = texts.iter().filter(|t| t.starts_with("backlog ")).collect();
    let expected: Vec<String> = (0..busy.len()).map(|i| format!("backlog {i}")).collect();
    assert!(
        busy.iter().zip(&expected).all(|(a, b)| *a == b),
        "out of order"
    );
}

/// Not a check: how fast one chat's backlog drains against a mock that answers at once.
/// `cargo test --release --test outbox_lanes -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn one_lane_drain_rate() {
    const BACKLOG: usize = 1_000;
    let mock = MockLine::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bot.db");
    {
        let s = store::open(db.to_str().unwrap()).unwrap();
        for i in 0..BACKLOG {
            s.outbox_enqueue(&NewDelivery {
                retry_key: uuid::Uuid::new_v4().to_string(),
                kind: DeliveryKind::Push,
                payload: text_push("Ubusy", &format!("backlog {i}")),
                source: "flood.rhai".into(),
                created_ms: store::now_ms(),
            })
            .unwrap();
        }
    }
    let scripts = Scripts::new(&[("none.rhai", "fn on_message(e) {}")]);
    let mut cmd = run_command(scripts.path(), &mock.url());
    cmd.env("LINEBOTD_STORE", &db);
    let _d = Daemon::spawn(cmd);
    assert!(
        eventually(Duration::from_secs(120), || mock.accepted(PUSH).len()
            == BACKLOG)
        .await
    );
    let pushes = mock.accepted(PUSH);
    let span = pushes[BACKLOG - 1].received_at - pushes[0].received_at;
    println!(
        "one lane: {BACKLOG} pushes in {span:.2?} = {:.0}/s",
        (BACKLOG - 1) as f64 / span.as_secs_f64()
    );
}
