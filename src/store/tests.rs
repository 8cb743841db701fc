//! Behaviour of the SQLite store, through the public `Store` trait.

use serde_json::json;

use super::*;

fn mem() -> Arc<dyn Store> {
    open(":memory:").unwrap()
}

pub(super) fn ev(id: Option<&str>, payload: &str, at: i64) -> NewInboxEvent {
    NewInboxEvent {
        webhook_event_id: id.map(str::to_owned),
        conversation: "U1".to_owned(),
        payload: payload.to_owned(),
        received_ms: at,
    }
}

pub(super) fn delivery(key: &str, created_ms: i64) -> NewDelivery {
    NewDelivery {
        retry_key: key.to_owned(),
        kind: DeliveryKind::Push,
        payload: json!({"to": "U1", "messages": [{"type": "text", "text": key}]}),
        source: "echo.rhai".to_owned(),
        created_ms,
    }
}

pub(super) fn keys(list: &[Delivery]) -> Vec<&str> {
    list.iter().map(|d| d.retry_key.as_str()).collect()
}

#[test]
fn duplicate_event_id_is_rejected_within_a_batch_and_across_batches() {
    let s = mem();
    let first = s
        .inbox_insert(&[
            ev(Some("a"), "1", 10),
            ev(Some("a"), "2", 10),
            ev(Some("b"), "3", 10),
        ])
        .unwrap();
    assert!(first[0].is_some());
    assert_eq!(first[1], None);
    assert!(first[2].is_some());
    let again = s.inbox_insert(&[ev(Some("b"), "4", 20)]).unwrap();
    assert_eq!(again, vec![None]);
    let payloads: Vec<_> = s
        .inbox_pending(0, 10)
        .unwrap()
        .into_iter()
        .map(|e| e.payload)
        .collect();
    assert_eq!(payloads, ["1", "3"]);
}

#[test]
fn events_without_id_are_never_deduplicated() {
    let s = mem();
    let out = s
        .inbox_insert(&[
            ev(None, "x", 1),
            ev(None, "x", 1),
            ev(Some(""), "y", 1),
            ev(Some(""), "y", 1),
        ])
        .unwrap();
    assert!(out.iter().all(Option::is_some));
    assert_eq!(s.inbox_backlog().unwrap(), 4);
}

#[test]
fn prune_deletes_in_chunks_until_every_old_done_row_is_gone() {
    let s = mem();
    // More than one chunk of old done rows, an old pending row among them, then young rows.
    let old: Vec<_> = (0..12_001)
        .map(|i| ev(Some(&format!("old{i}")), "o", 1_000))
        .collect();
    let seqs: Vec<i64> = s
        .inbox_insert(&old)
        .unwrap()
        .into_iter()
        .flatten()
        .collect();
    let done: Vec<_> = seqs.iter().skip(1).map(|seq| (*seq, None)).collect();
    s.inbox_mark_done(&done).unwrap();
    let young = s.inbox_insert(&[ev(Some("young"), "y", 5_000)]).unwrap();
    s.inbox_mark_done(&[(young[0].unwrap(), None)]).unwrap();
    s.prune(5_500, 1_000).unwrap();
    // The old done ids are forgotten, the young one and the old pending event are kept.
    assert!(s.inbox_insert(&[ev(Some("old7"), "again", 5_600)]).unwrap()[0].is_some());
    assert!(s
        .inbox_insert(&[ev(Some("old11999"), "again", 5_600)])
        .unwrap()[0]
        .is_some());
    assert_eq!(
        s.inbox_insert(&[ev(Some("young"), "dup", 5_600)]).unwrap(),
        vec![None]
    );
    assert_eq!(
        s.inbox_insert(&[ev(Some("old0"), "dup", 5_600)]).unwrap(),
        vec![None]
    );
}

#[test]
fn prune_past_the_window_forgets_ids_and_done_rows_only() {
    let s = mem();
    s.inbox_insert(&[ev(Some("old"), "1", 1_000), ev(Some("keep"), "2", 1_000)])
        .unwrap();
    let pending = s.inbox_pending(0, 10).unwrap();
    s.inbox_mark_done(&[(pending[0].seq, None)]).unwrap();
    s.prune(1_500, 1_000).unwrap();
    // Still inside the window: the id is remembered.
    assert_eq!(
        s.inbox_insert(&[ev(Some("old"), "x", 1_600)]).unwrap(),
        vec![None]
    );
    s.prune(10_000, 1_000).unwrap();
    // The undone event is kept whatever its age; the done one is gone.
    let left = s.inbox_pending(0, 10).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].payload, "2");
    let out = s.inbox_insert(&[ev(Some("old"), "again", 10_000)]).unwrap();
    assert!(out[0].is_some());
}

#[test]
fn prune_keeps_the_newest_row_so_seqs_never_go_back() {
    let s = mem();
    let seqs: Vec<i64> = s
        .inbox_insert(&[ev(Some("a"), "1", 1_000), ev(Some("b"), "2", 1_000)])
        .unwrap()
        .into_iter()
        .flatten()
        .collect();
    s.inbox_mark_done(&[(seqs[0], None), (seqs[1], None)])
        .unwrap();
    // Every row is old and done; the newest stays all the same.
    s.prune(100_000, 1_000).unwrap();
    let next = s.inbox_insert(&[ev(Some("c"), "3", 100_000)]).unwrap()[0].unwrap();
    assert!(next > seqs[1], "seq {next} reused after {}", seqs[1]);
    // The older one is gone: its id may come again.
    assert!(s.inbox_insert(&[ev(Some("a"), "x", 100_000)]).unwrap()[0].is_some());
}

#[test]
fn pending_lists_undone_events_in_seq_order_and_done_removes_them() {
    let s = mem();
    let seqs: Vec<i64> = s
        .inbox_insert(&[ev(None, "a", 1), ev(None, "b", 2), ev(None, "c", 3)])
        .unwrap()
        .into_iter()
        .flatten()
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(s.inbox_pending(0, 2).unwrap().len(), 2);
    let after_first = s.inbox_pending(seqs[0], 10).unwrap();
    assert_eq!(after_first.len(), 2, "pages start after the given seq");
    assert_eq!(after_first[0].seq, seqs[1]);
    s.inbox_mark_done(&[
        (seqs[1], Some("boom at echo.rhai:3".into())),
        (seqs[0], None),
    ])
    .unwrap();
    let left = s.inbox_pending(0, 10).unwrap();
    assert_eq!(
        left,
        vec![InboxEvent {
            seq: seqs[2],
            payload: "c".into(),
            received_ms: 3,
            started: false,
        }]
    );
    assert_eq!(s.inbox_backlog().unwrap(), 1);
}

#[test]
fn outbox_enqueue_is_idempotent_on_retry_key() {
    let s = mem();
    assert!(s.outbox_enqueue(&delivery("k1", 100)).unwrap());
    let mut changed = delivery("k1", 999);
    changed.payload = json!({"to": "other"});
    assert!(!s.outbox_enqueue(&changed).unwrap());
    let due = s.outbox_due(1_000, 10).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].created_ms, 100);
    assert_eq!(due[0].payload, delivery("k1", 100).payload);
    assert_eq!(due[0].status, DeliveryStatus::Pending);
    assert_eq!(due[0].kind, DeliveryKind::Push);
    assert_eq!(due[0].source, "echo.rhai");
}

#[test]
fn outbox_due_retry_sent_failed_and_list_order() {
    let s = mem();
    for (k, at) in [("a", 100), ("b", 200), ("c", 300)] {
        s.outbox_enqueue(&delivery(k, at)).unwrap();
    }
    assert_eq!(keys(&s.outbox_due(250, 10).unwrap()), ["a", "b"]);
    assert_eq!(keys(&s.outbox_due(1_000, 10).unwrap()), ["a", "b", "c"]);

    s.outbox_mark_retry("a", 1, 5_000, "HTTP 500").unwrap();
    assert_eq!(keys(&s.outbox_due(1_000, 10).unwrap()), ["b", "c"]);
    let a = s.outbox_due(5_000, 10).unwrap().remove(0);
    assert_eq!((a.retry_key.as_str(), a.attempts), ("a", 1));
    assert_eq!(a.last_error.as_deref(), Some("HTTP 500"));

    s.outbox_mark_sent("b", Some("req-1"), 1_100).unwrap();
    s.outbox_mark_failed("c", "HTTP 400 invalid message", 1_200)
        .unwrap();
    assert_eq!(keys(&s.outbox_due(10_000, 10).unwrap()), ["a"]);
    assert_eq!(s.outbox_counts().unwrap(), (1, 1));

    // Newest first, sent rows left out.
    let list = s.outbox_list(10).unwrap();
    assert_eq!(keys(&list), ["c", "a"]);
    assert_eq!(list[0].status, DeliveryStatus::Failed);
    assert_eq!(
        list[0].last_error.as_deref(),
        Some("HTTP 400 invalid message")
    );
    assert_eq!(list[0].updated_ms, 1_200);
    assert_eq!(keys(&s.outbox_list(1).unwrap()), ["c"]);

    // A late report cannot undo an outcome; an unknown key is an error.
    s.outbox_mark_failed("b", "late", 2_000).unwrap();
    assert_eq!(s.outbox_counts().unwrap(), (1, 1));
    assert!(matches!(
        s.outbox_mark_sent("nope", None, 1),
        Err(StoreError::UnknownDelivery(_))
    ));
}

#[test]
fn prune_drops_old_sent_deliveries_only() {
    let s = mem();
    s.outbox_enqueue(&delivery("sent", 1)).unwrap();
    s.outbox_enqueue(&delivery("failed", 1)).unwrap();
    s.outbox_mark_sent("sent", None, 10).unwrap();
    s.outbox_mark_failed("failed", "x", 10).unwrap();
    s.prune(1_000, 100).unwrap();
    // The sent row is gone, so the key can be queued afresh.
    assert!(s.outbox_enqueue(&delivery("sent", 2_000)).unwrap());
    assert_eq!(s.outbox_counts().unwrap(), (1, 1));
}

#[test]
fn delivery_kind_and_status_round_trip_through_text() {
    for k in [
        DeliveryKind::Push,
        DeliveryKind::Multicast,
        DeliveryKind::Broadcast,
    ] {
        assert_eq!(k.as_str().parse::<DeliveryKind>().unwrap(), k);
    }
    for st in [
        DeliveryStatus::Pending,
        DeliveryStatus::Sent,
        DeliveryStatus::Failed,
    ] {
        assert_eq!(st.as_str().parse::<DeliveryStatus>().unwrap(), st);
    }
    assert!("Push".parse::<DeliveryKind>().is_err());
}

#[test]
fn kv_round_trips_nested_unicode_null_and_keeps_int_and_float_apart() {
    let s = mem();
    let nested = json!({"a": {"b": [1, 2.5, "三", null, true]}, "emoji": "🎉", "empty": {}});
    s.kv_set("nested", &nested).unwrap();
    s.kv_set("int", &json!(1)).unwrap();
    s.kv_set("float", &json!(1.0)).unwrap();
    s.kv_set("null", &json!(null)).unwrap();
    s.kv_set("ключ🔑", &json!("значение")).unwrap();
    assert_eq!(s.kv_get("nested").unwrap(), Some(nested));
    let int = s.kv_get("int").unwrap().unwrap();
    let float = s.kv_get("float").unwrap().unwrap();
    assert!(int.is_i64() && !int.is_f64());
    assert!(float.is_f64() && !float.is_i64());
    assert_ne!(int, float);
    assert_eq!(s.kv_get("null").unwrap(), Some(json!(null)));
    assert_eq!(s.kv_get("ключ🔑").unwrap(), Some(json!("значение")));
    assert_eq!(s.kv_get("missing").unwrap(), None);
}

#[test]
fn kv_set_overwrites_and_delete_reports_existence() {
    let s = mem();
    s.kv_set("k", &json!(1)).unwrap();
    s.kv_set("k", &json!({"v": 2})).unwrap();
    assert_eq!(s.kv_get("k").unwrap(), Some(json!({"v": 2})));
    assert!(s.kv_delete("k").unwrap());
    assert!(!s.kv_delete("k").unwrap());
    assert_eq!(s.kv_get("k").unwrap(), None);
}

#[test]
fn kv_keys_prefix_treats_percent_and_underscore_literally() {
    let s = mem();
    for k in ["a%b", "a%c", "axb", "a_1", "ab1", "A%b", "a", "b"] {
        s.kv_set(k, &json!(0)).unwrap();
    }
    assert_eq!(s.kv_keys("a%").unwrap(), ["a%b", "a%c"]);
    assert_eq!(s.kv_keys("a_").unwrap(), ["a_1"]);
    assert_eq!(s.kv_keys("").unwrap().len(), 8);
    assert!(s.kv_keys("zzz").unwrap().is_empty());
    s.kv_clear().unwrap();
    assert!(s.kv_keys("").unwrap().is_empty());
}

#[test]
fn kv_set_enforces_size_limits_naming_which() {
    let s = mem();
    let long_key = "k".repeat(MAX_KEY_BYTES + 1);
    let err = s.kv_set(&long_key, &json!(1)).unwrap_err();
    assert_eq!(
        err,
        StoreError::TooLarge {
            what: "key",
            limit: MAX_KEY_BYTES,
            actual: MAX_KEY_BYTES + 1
        }
    );
    s.kv_set(&"k".repeat(MAX_KEY_BYTES), &json!(1)).unwrap();
    // The JSON text of a string is its content plus two quotes.
    let big = json!("v".repeat(MAX_VALUE_BYTES - 1));
    match s.kv_set("big", &big).unwrap_err() {
        StoreError::TooLarge { what, actual, .. } => {
            assert_eq!((what, actual), ("value", MAX_VALUE_BYTES + 1));
        }
        other => panic!("unexpected {other}"),
    }
    assert_eq!(s.kv_get("big").unwrap(), None);
    s.kv_set("big", &json!("v".repeat(MAX_VALUE_BYTES - 2)))
        .unwrap();
}

#[test]
fn followers_follow_unfollow_follow_again() {
    let s = mem();
    s.follower_set("U2", true, 200).unwrap();
    s.follower_set("U1", true, 100).unwrap();
    s.follower_set("U3", true, 100).unwrap();
    assert_eq!(s.followers().unwrap(), ["U1", "U3", "U2"]);
    s.follower_set("U1", false, 300).unwrap();
    assert_eq!(s.followers().unwrap(), ["U3", "U2"]);
    assert_eq!(s.follower_count().unwrap(), 2);
    s.follower_set("U1", true, 400).unwrap();
    // Ordered by the first follow, which a re-follow keeps.
    assert_eq!(s.followers().unwrap(), ["U1", "U3", "U2"]);
    assert_eq!(s.follower_count().unwrap(), 3);
    // A redelivered older unfollow does not undo the newer follow.
    s.follower_set("U1", false, 300).unwrap();
    assert_eq!(s.follower_count().unwrap(), 3);
    // A user first seen unfollowing is not a follower.
    s.follower_set("U9", false, 500).unwrap();
    assert_eq!(s.follower_count().unwrap(), 3);
}

#[test]
fn schedule_last_run_is_recorded_and_overwritten() {
    let s = mem();
    let key = "script.rhai#0:morning";
    assert_eq!(s.schedule_last_run(key).unwrap(), None);
    s.schedule_set_last_run(key, 1_000).unwrap();
    s.schedule_set_last_run(key, 2_000).unwrap();
    assert_eq!(s.schedule_last_run(key).unwrap(), Some(2_000));
    assert_eq!(s.schedule_last_run("other").unwrap(), None);
}

#[test]
fn started_and_sent_marks_survive_until_the_event_is_done() {
    let s = mem();
    let seqs: Vec<i64> = s
        .inbox_insert(&[ev(Some("a"), "1", 1), ev(Some("b"), "2", 2)])
        .unwrap()
        .into_iter()
        .flatten()
        .collect();
    s.inbox_write(
        &[],
        &[
            Mark::Started(seqs[0]),
            Mark::Sent {
                seq: seqs[0],
                call: "a/echo.rhai/on_message/reply/1".into(),
            },
        ],
    )
    .unwrap();
    let pending = s.inbox_pending(0, 10).unwrap();
    assert!(pending[0].started, "a handler ran on the first event");
    assert!(!pending[1].started);
    assert_eq!(
        s.inbox_sent_calls(seqs[0]).unwrap(),
        vec!["a/echo.rhai/on_message/reply/1"]
    );
    assert!(s.inbox_sent_calls(seqs[1]).unwrap().is_empty());
    // Once done, nothing replays it: its records go.
    s.inbox_mark_done(&[(seqs[0], None)]).unwrap();
    assert!(s.inbox_sent_calls(seqs[0]).unwrap().is_empty());
}
