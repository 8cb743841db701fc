//! The outbox, key-value state, followers and schedule runs of the store.

use serde_json::json;

use super::super::*;
use super::{delivery, keys};

fn outbox_enqueue_is_idempotent_on_retry_key(s: Arc<dyn Store>) {
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

fn outbox_due_retry_sent_failed_and_list_order(s: Arc<dyn Store>) {
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

fn prune_drops_old_sent_deliveries_only(s: Arc<dyn Store>) {
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
        DeliveryKind::Narrowcast,
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

fn kv_round_trips_nested_unicode_null_and_keeps_int_and_float_apart(s: Arc<dyn Store>) {
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

fn kv_set_overwrites_and_delete_reports_existence(s: Arc<dyn Store>) {
    s.kv_set("k", &json!(1)).unwrap();
    s.kv_set("k", &json!({"v": 2})).unwrap();
    assert_eq!(s.kv_get("k").unwrap(), Some(json!({"v": 2})));
    assert!(s.kv_delete("k").unwrap());
    assert!(!s.kv_delete("k").unwrap());
    assert_eq!(s.kv_get("k").unwrap(), None);
}

fn kv_keys_prefix_treats_percent_and_underscore_literally(s: Arc<dyn Store>) {
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

fn kv_set_enforces_size_limits_naming_which(s: Arc<dyn Store>) {
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

fn followers_follow_unfollow_follow_again(s: Arc<dyn Store>) {
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

fn a_schedule_run_is_claimed_once_per_due_time(s: Arc<dyn Store>) {
    let key = "script.rhai#0:morning";
    assert_eq!(s.schedule_last_run(key).unwrap(), None);
    assert!(s.schedule_claim_run(key, 1_000).unwrap());
    assert!(!s.schedule_claim_run(key, 1_000).unwrap(), "claimed twice");
    assert!(s.schedule_claim_run(key, 2_000).unwrap());
    assert!(
        !s.schedule_claim_run(key, 1_500).unwrap(),
        "an older time after a newer one"
    );
    assert_eq!(s.schedule_last_run(key).unwrap(), Some(2_000));
    assert_eq!(s.schedule_last_run("other").unwrap(), None);
}

contract! {
    outbox_enqueue_is_idempotent_on_retry_key,
    outbox_due_retry_sent_failed_and_list_order,
    prune_drops_old_sent_deliveries_only,
    kv_round_trips_nested_unicode_null_and_keeps_int_and_float_apart,
    kv_set_overwrites_and_delete_reports_existence,
    kv_keys_prefix_treats_percent_and_underscore_literally,
    kv_set_enforces_size_limits_naming_which,
    followers_follow_unfollow_follow_again,
    a_schedule_run_is_claimed_once_per_due_time,
}
