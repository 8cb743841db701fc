//! The outbox waits as long as LINE asks: a 429's `Retry-After` sets the stored due time of the
//! next attempt, even past the outbox's own backoff cap, and a restart keeps to it.

mod support;

use std::sync::Arc;
use std::time::Duration;

use linebotd::line::{LineClient, LineConfig, RetryPolicy};
use linebotd::pipeline::outbox::{FailedHook, Outbox, ROUNDS};
use linebotd::store::{self, Delivery, DeliveryKind, DeliveryStatus, NewDelivery, Store};
use serde_json::{json, Value};
use support::daemon::eventually;
use support::mock_line::MockLine;

const PUSH: &str = "/v2/bot/message/push";
const WAIT: Duration = Duration::from_secs(20);

fn text_push(to: &str, text: &str) -> Value {
    json!({"to": to, "messages": [{"type": "text", "text": text}]})
}

fn start_outbox(mock: &MockLine, store: Arc<dyn Store>) -> Arc<Outbox> {
    start_sending(mock, Outbox::new(store), RetryPolicy::default())
}

/// An outbox on a fresh store with one sending slot, whose client does not retry: a failure
/// goes straight to the outbox's own backoff (0.5-1 s before the next try).
fn one_slot_outbox(mock: &MockLine, dir: &tempfile::TempDir) -> Arc<Outbox> {
    let store = store::open(dir.path().join("bot.db").to_str().unwrap()).unwrap();
    let once = RetryPolicy {
        max_attempts: 1,
        ..RetryPolicy::default()
    };
    start_sending(mock, Outbox::with_parallel(store, 1), once)
}

/// Starts `outbox` sending to `mock`, its client retrying as `retry` says.
fn start_sending(mock: &MockLine, outbox: Arc<Outbox>, retry: RetryPolicy) -> Arc<Outbox> {
    let line = LineClient::new(LineConfig {
        rate_limit_per_sec: 0,
        retry,
        ..LineConfig::new(mock.url(), mock.url(), "token")
    })
    .unwrap();
    let on_failed: FailedHook = Arc::new(|_: &Delivery, _: &str| {});
    tokio::spawn(outbox.clone().run(line, on_failed));
    outbox
}

fn stored(store: &dyn Store, key: &str) -> Option<Delivery> {
    store
        .outbox_list(100)
        .unwrap()
        .into_iter()
        .find(|d| d.retry_key == key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_with_retry_after_delays_the_next_attempt_by_at_least_that_long() {
    // Ten minutes: ten times the outbox's backoff cap, and past the LINE client's own budget,
    // so the client hands the 429 to the outbox at once instead of waiting itself.
    const RETRY_AFTER_SECS: u64 = 600;
    assert!(Duration::from_secs(RETRY_AFTER_SECS) > ROUNDS.max_backoff * 2);
    let mock = MockLine::start().await;
    mock.fail_next(PUSH, 429, 1);
    mock.set_retry_after(PUSH, RETRY_AFTER_SECS);
    let store: Arc<dyn Store> = store::open(":memory:").unwrap();
    let outbox = start_outbox(&mock, store.clone());

    let key = uuid::Uuid::new_v4().to_string();
    let before = store::now_ms();
    outbox
        .enqueue(DeliveryKind::Push, text_push("U1", "later"), &key, "t.rhai")
        .unwrap();
    let retried = eventually(WAIT, || {
        stored(store.as_ref(), &key).is_some_and(|d| d.attempts == 1)
    })
    .await;
    assert!(
        retried,
        "the 429 was not recorded: {:?}",
        stored(store.as_ref(), &key)
    );
    let after = store::now_ms();

    let d = stored(store.as_ref(), &key).unwrap();
    assert_eq!(d.status, DeliveryStatus::Pending);
    assert!(
        d.last_error.as_deref().unwrap_or("").contains("429"),
        "{d:?}"
    );
    let wait_ms = RETRY_AFTER_SECS as i64 * 1_000;
    // Not due a moment before LINE's time is up, and due once it is (no backoff added on top).
    assert!(store
        .outbox_due(before + wait_ms - 1, 10)
        .unwrap()
        .is_empty());
    let due = store.outbox_due(after + wait_ms, 10).unwrap();
    assert_eq!(due.len(), 1, "{d:?}");
    assert_eq!(due[0].retry_key, key);
    assert_eq!(
        mock.requests_to(PUSH).len(),
        1,
        "sent again before Retry-After"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_outbox_keeps_to_the_stored_due_time() {
    let mock = MockLine::start().await;
    let store: Arc<dyn Store> = store::open(":memory:").unwrap();
    // What an earlier run left: one delivery told to wait an hour, one ready.
    let (waiting, ready) = (
        uuid::Uuid::new_v4().to_string(),
        uuid::Uuid::new_v4().to_string(),
    );
    for (key, to) in [(&waiting, "U1"), (&ready, "U2")] {
        store
            .outbox_enqueue(&NewDelivery {
                retry_key: key.clone(),
                kind: DeliveryKind::Push,
                payload: text_push(to, key),
                source: "t.rhai".into(),
                created_ms: store::now_ms(),
            })
            .unwrap();
    }
    let in_an_hour = store::now_ms() + 3_600_000;
    store
        .outbox_mark_retry(&waiting, 3, in_an_hour, "LINE rejected push (429)")
        .unwrap();

    let outbox = start_outbox(&mock, store.clone());
    // Both lanes get their turn in the first round, the waiting one's first. One more push to
    // the ready chat goes in a later round: by then the waiting one would long have gone out.
    assert!(eventually(WAIT, || !mock.accepted(PUSH).is_empty()).await);
    let later = uuid::Uuid::new_v4().to_string();
    outbox
        .enqueue(
            DeliveryKind::Push,
            text_push("U2", &later),
            &later,
            "t.rhai",
        )
        .unwrap();
    assert!(eventually(WAIT, || mock.accepted(PUSH).len() >= 2).await);
    assert_eq!(mock.texts(PUSH), [ready.clone(), later]);
    let d = stored(store.as_ref(), &waiting).unwrap();
    assert_eq!((d.status, d.attempts), (DeliveryStatus::Pending, 3));
    assert_eq!(d.next_attempt_ms, in_an_hour);
}

fn queue(outbox: &Outbox, to: &str, text: &str) -> String {
    let key = uuid::Uuid::new_v4().to_string();
    outbox
        .enqueue(DeliveryKind::Push, text_push(to, text), &key, "t.rhai")
        .unwrap();
    key
}

/// Many chats' pushes are on their way at once: at 400 ms a round trip, 200 pushes to 200 users
/// take about one round trip, not one per 16 of them (the outbox's old limit, 5.2 s here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_to_many_chats_go_out_together_at_real_latency() {
    let mock = MockLine::start().await;
    mock.set_delay(PUSH, Duration::from_millis(400));
    let dir = tempfile::tempdir().unwrap();
    let store = store::open(dir.path().join("bot.db").to_str().unwrap()).unwrap();
    let outbox = start_outbox(&mock, store);
    let started = std::time::Instant::now();
    for i in 0..200 {
        queue(&outbox, &format!("Uchat{i:03}"), "hello");
    }
    assert!(
        eventually(WAIT, || mock.accepted(PUSH).len() == 200).await,
        "{} of 200 pushes accepted",
        mock.accepted(PUSH).len()
    );
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(2_500),
        "200 pushes took {took:?}"
    );
}

/// A lane waiting out its backoff holds no sending slot: with one slot, a push to another
/// chat goes out while the first chat's push waits to be tried again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lane_waiting_out_a_backoff_leaves_its_slot_to_other_chats() {
    let mock = MockLine::start().await;
    let dir = tempfile::tempdir().unwrap();
    let outbox = one_slot_outbox(&mock, &dir);
    mock.fail_next(PUSH, 500, 1);
    queue(&outbox, "Ufirst", "first");
    assert!(eventually(WAIT, || mock.requests_to(PUSH).len() == 1).await);
    let asked = std::time::Instant::now();
    queue(&outbox, "Usecond", "second");
    assert!(eventually(WAIT, || mock.accepted(PUSH).len() == 2).await);
    // The second chat's push went first, during the first one's backoff.
    assert_eq!(mock.texts(PUSH), ["second", "first"]);
    assert!(
        asked.elapsed() > Duration::from_millis(400),
        "the first push was tried again too soon: nothing was tested"
    );
}

/// While LINE fails every push, at most four lanes per sending slot wait in hand; the others'
/// deliveries stay in the store until a lane is let go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_line_fails_only_a_bounded_number_of_lanes_wait_in_hand() {
    let mock = MockLine::start().await;
    let dir = tempfile::tempdir().unwrap();
    mock.fail_next(PUSH, 500, 1_000);
    let outbox = one_slot_outbox(&mock, &dir);
    for i in 0..10 {
        queue(&outbox, &format!("Ulane{i}"), "hi");
    }
    assert!(eventually(WAIT, || mock.requests_to(PUSH).len() >= 4).await);
    // Each tried once, now waiting 0.5-1 s before the next try: nobody else got a turn.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let tried: std::collections::HashSet<String> = mock
        .requests_to(PUSH)
        .iter()
        .map(|r| r.body["to"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(tried.len(), 4, "{tried:?}");
}
