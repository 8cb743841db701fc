//! The outbox's lanes: the sender goes round the recipients with work, and reads each lane's
//! oldest delivery directly.

use serde_json::json;

use super::super::*;
use super::delivery;

fn push(key: &str, to: &str, created_ms: i64) -> NewDelivery {
    NewDelivery {
        payload: json!({"to": to, "messages": [{"type": "text", "text": key}]}),
        ..delivery(key, created_ms)
    }
}

#[test]
fn a_push_lane_is_its_recipient_and_other_kinds_are_alone() {
    let to = json!({"to": "U1"});
    assert_eq!(lane(DeliveryKind::Push, &to, "k1"), "to:U1");
    assert_eq!(lane(DeliveryKind::Push, &to, "k2"), "to:U1");
    assert_eq!(
        lane(DeliveryKind::Multicast, &json!({"to": ["U1"]}), "k3"),
        "key:k3"
    );
    assert_eq!(lane(DeliveryKind::Broadcast, &json!({}), "k4"), "key:k4");
    assert_eq!(lane(DeliveryKind::Narrowcast, &json!({}), "k5"), "key:k5");
}

fn lanes_with_pending_deliveries_are_listed_once_each_after_the_cursor(s: Arc<dyn Store>) {
    // A deep lane first, then others: each lane shows once however much it holds.
    for i in 0..3_000 {
        s.outbox_enqueue(&push(&format!("a{i}"), "U1", i)).unwrap();
    }
    s.outbox_enqueue(&push("b", "U2", 5_000)).unwrap();
    s.outbox_enqueue(&push("c", "U3", 5_001)).unwrap();
    s.outbox_enqueue(&NewDelivery {
        kind: DeliveryKind::Broadcast,
        payload: json!({"messages": [{"type": "text", "text": "all"}]}),
        ..delivery("d", 5_002)
    })
    .unwrap();
    assert_eq!(
        s.outbox_lanes("", 10).unwrap(),
        ["key:d", "to:U1", "to:U2", "to:U3"]
    );
    assert_eq!(s.outbox_lanes("to:U1", 10).unwrap(), ["to:U2", "to:U3"]);
    assert_eq!(s.outbox_lanes("", 2).unwrap(), ["key:d", "to:U1"]);
    assert!(s.outbox_lanes("to:U3", 10).unwrap().is_empty());
    assert!(s.outbox_lanes("", 0).unwrap().is_empty());
    // A lane whose deliveries all left `pending` is not listed.
    s.outbox_mark_sent("b", None, 6_000).unwrap();
    s.outbox_mark_failed("c", "400", 6_000).unwrap();
    assert_eq!(s.outbox_lanes("to:U1", 10).unwrap(), Vec::<String>::new());
}

fn next_in_a_lane_is_its_oldest_pending_delivery(s: Arc<dyn Store>) {
    s.outbox_enqueue(&push("second", "U1", 20)).unwrap();
    s.outbox_enqueue(&push("other", "U2", 5)).unwrap();
    s.outbox_enqueue(&push("first", "U1", 10)).unwrap();
    s.outbox_enqueue(&push("third", "U1", 20)).unwrap();
    let next = |lane: &str| s.outbox_next(lane).unwrap().map(|d| d.retry_key);
    assert_eq!(next("to:U1").as_deref(), Some("first"));
    s.outbox_mark_sent("first", None, 30).unwrap();
    // Same time: the one queued first.
    assert_eq!(next("to:U1").as_deref(), Some("second"));
    s.outbox_mark_failed("second", "400", 30).unwrap();
    assert_eq!(next("to:U1").as_deref(), Some("third"));
    // A retry keeps its place.
    s.outbox_mark_retry("third", 1, 99, "500").unwrap();
    assert_eq!(next("to:U1").as_deref(), Some("third"));
    s.outbox_mark_sent("third", None, 40).unwrap();
    assert_eq!(next("to:U1"), None);
    assert_eq!(next("to:U2").as_deref(), Some("other"));
    assert_eq!(next("to:nobody"), None);
}

contract! {
    lanes_with_pending_deliveries_are_listed_once_each_after_the_cursor,
    next_in_a_lane_is_its_oldest_pending_delivery,
}
