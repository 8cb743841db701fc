//! Behaviour of the group-committing `InboxWriter`, against a store that counts transactions.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;

use super::super::*;

/// Delegates to a real store, counting inbox transactions and optionally failing them.
struct Counting {
    inner: Arc<dyn Store>,
    inserts: AtomicUsize,
    dones: AtomicUsize,
    fail: bool,
}

impl Counting {
    fn new(fail: bool) -> Arc<Self> {
        Arc::new(Self {
            inner: open(":memory:").unwrap(),
            inserts: AtomicUsize::new(0),
            dones: AtomicUsize::new(0),
            fail,
        })
    }
}

impl Store for Counting {
    fn inbox_write(
        &self,
        new: &[NewInboxEvent],
        done: &[Mark],
    ) -> Result<Vec<Option<i64>>, StoreError> {
        if !new.is_empty() {
            self.inserts.fetch_add(1, Ordering::SeqCst);
            // Slow commits, like a busy disk: requests pile up and must be batched.
            std::thread::sleep(Duration::from_millis(20));
        }
        if !done.is_empty() {
            self.dones.fetch_add(1, Ordering::SeqCst);
        }
        if self.fail {
            return Err(StoreError::Database("disk I/O error".into()));
        }
        self.inner.inbox_write(new, done)
    }
    fn inbox_pending(&self, after_seq: i64, limit: usize) -> Result<Vec<InboxEvent>, StoreError> {
        self.inner.inbox_pending(after_seq, limit)
    }
    fn inbox_sent_calls(&self, seq: i64) -> Result<Vec<String>, StoreError> {
        self.inner.inbox_sent_calls(seq)
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
    fn outbox_due(&self, now_ms: i64, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        self.inner.outbox_due(now_ms, limit)
    }
    fn outbox_lanes(&self, after: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        self.inner.outbox_lanes(after, limit)
    }
    fn outbox_next(&self, lane: &str) -> Result<Option<Delivery>, StoreError> {
        self.inner.outbox_next(lane)
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
    fn outbox_list(&self, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        self.inner.outbox_list(limit)
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

fn ev(id: &str, payload: String) -> (NewInboxEvent, ()) {
    let event = NewInboxEvent {
        webhook_event_id: Some(id.to_owned()),
        conversation: "U1".into(),
        payload,
        received_ms: 1,
    };
    (event, ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_inserts_are_batched_and_each_caller_gets_its_answers() {
    let store = Counting::new(false);
    let writer = Arc::new(InboxWriter::start(store.clone(), 64));
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let writer = Arc::clone(&writer);
            tokio::spawn(async move {
                // Every caller also sends the same shared id: exactly one of them may win it.
                let items = vec![
                    ev(&format!("e{i}"), format!("own {i}")),
                    ev("shared", format!("shared {i}")),
                ];
                (i, writer.insert(items).await.unwrap())
            })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }

    let payload_of: std::collections::HashMap<i64, String> = store
        .inbox_pending(0, 1_000)
        .unwrap()
        .into_iter()
        .map(|e| (e.seq, e.payload))
        .collect();
    let mut shared_winners = Vec::new();
    let mut seqs = HashSet::new();
    for (i, answer) in &answers {
        assert_eq!(answer.len(), 2);
        let own = answer[0].expect("own id is new");
        assert_eq!(payload_of[&own], format!("own {i}"));
        assert!(seqs.insert(own));
        if let Some(seq) = answer[1] {
            assert_eq!(payload_of[&seq], format!("shared {i}"));
            shared_winners.push(seq);
        }
    }
    assert_eq!(shared_winners.len(), 1);
    assert_eq!(payload_of.len(), 201);
    let transactions = store.inserts.load(Ordering::SeqCst);
    assert!(
        transactions < 200,
        "{transactions} transactions for 200 calls"
    );

    // Done-marks are batched too and reach the store before close returns.
    for seq in payload_of.keys() {
        writer.mark_done(*seq, None);
    }
    let writer = Arc::try_unwrap(writer).ok().unwrap();
    writer.close().await;
    assert_eq!(store.inbox_backlog().unwrap(), 0);
    assert!(store.dones.load(Ordering::SeqCst) < 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_error_reaches_every_caller_of_the_batch() {
    let store = Counting::new(true);
    let writer = Arc::new(InboxWriter::start(store.clone(), 64));
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let writer = Arc::clone(&writer);
            tokio::spawn(async move { writer.insert(vec![ev(&format!("e{i}"), "p".into())]).await })
        })
        .collect();
    for t in tasks {
        let err = t.await.unwrap().unwrap_err();
        assert_eq!(err, StoreError::Database("disk I/O error".into()));
    }
    assert_eq!(store.inbox_backlog().unwrap(), 0);
}

#[tokio::test]
async fn close_finishes_queued_done_marks_and_empty_insert_is_a_no_op() {
    let store = Counting::new(false);
    let writer = InboxWriter::start(store.clone(), 4);
    assert!(writer.insert(Vec::new()).await.unwrap().is_empty());
    assert_eq!(store.inserts.load(Ordering::SeqCst), 0);
    let seqs = writer
        .insert((0..10).map(|i| ev(&format!("e{i}"), "p".into())).collect())
        .await
        .unwrap();
    for seq in seqs.into_iter().flatten() {
        writer.mark_done(seq, Some("script error".into()));
    }
    writer.close().await;
    assert_eq!(store.inbox_backlog().unwrap(), 0);
}

#[tokio::test]
async fn flush_commits_every_done_mark_queued_before_it() {
    let store = Counting::new(false);
    let writer = InboxWriter::start(store.clone(), 4);
    let seqs = writer
        .insert((0..50).map(|i| ev(&format!("f{i}"), "p".into())).collect())
        .await
        .unwrap();
    for seq in seqs.into_iter().flatten() {
        writer.mark_done(seq, None);
    }
    // The writer stays usable after a flush: it is not a close.
    writer.flush().await;
    assert_eq!(store.inbox_backlog().unwrap(), 0);
    let more = writer.insert(vec![ev("after", "p".into())]).await.unwrap();
    assert_eq!(more.len(), 1);
    writer.flush().await;
    writer.close().await;
}

/// Not a benchmark: one event per call from many tasks, through the writer into a file store.
/// `cargo test --release --lib writer_throughput_sanity -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn writer_throughput_sanity() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path().join("t.db").to_str().unwrap()).unwrap();
    let writer = Arc::new(InboxWriter::start(store, 1024));
    let start = std::time::Instant::now();
    let tasks: Vec<_> = (0..200)
        .map(|t| {
            let writer = Arc::clone(&writer);
            tokio::spawn(async move {
                for i in 0..100 {
                    let payload = r#"{"type":"message"}"#.to_owned();
                    writer
                        .insert(vec![ev(&format!("{t}-{i}"), payload)])
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "20000 single-event inserts in {secs:.2}s = {:.0}/s",
        20_000.0 / secs
    );
}

#[tokio::test]
async fn lone_done_marks_are_committed_soon_without_a_flush() {
    let store = Counting::new(false);
    let writer = InboxWriter::start(store.clone(), 4);
    for round in 0..3 {
        let seqs = writer
            .insert(vec![ev(&format!("lone{round}"), "p".into())])
            .await
            .unwrap();
        writer.mark_done(seqs[0].unwrap(), None);
        // Only the first mark after a commit wakes the writer; it must still commit on its own.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while store.inbox_backlog().unwrap() > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "round {round}: mark never committed"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    writer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_hook_gets_new_events_in_seq_order_even_when_the_caller_gave_up() {
    let store = Counting::new(false);
    let (tx, rx) = std::sync::mpsc::channel();
    let writer = InboxWriter::with_hook(
        store.clone(),
        16,
        Box::new(
            move |stored: Vec<super::super::batch::Stored<&'static str>>| {
                let _ = tx.send(
                    stored
                        .into_iter()
                        .map(|s| (s.seq, s.item))
                        .collect::<Vec<_>>(),
                );
            },
        ),
    );
    let first = writer
        .insert(vec![
            (ev("a", "1".into()).0, "a"),
            (ev("b", "2".into()).0, "b"),
        ])
        .await
        .unwrap();
    let handed = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(
        handed,
        vec![(first[0].unwrap(), "a"), (first[1].unwrap(), "b")]
    );

    // A duplicate is not handed on; a new event is, even though its caller stopped waiting.
    let dropped = writer.insert(vec![
        (ev("a", "again".into()).0, "dup"),
        (ev("c", "3".into()).0, "c"),
    ]);
    drop(tokio::time::timeout(Duration::ZERO, dropped).await);
    let handed = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(handed.len(), 1);
    assert_eq!(handed[0].1, "c");
    assert!(handed[0].0 > first[1].unwrap());
}
