//! What only a shared store (PostgreSQL) does: claims, where one conversation's events go one
//! at a time in order whoever claims, leases that end, lane holds, and instances that open
//! (and migrate) one database at once. SQLite's dispatcher owns its whole inbox.

use std::collections::HashSet;

use super::super::*;
use super::{cluster_psql, cluster_psql_in, postgres_with_url};

fn event(conversation: &str, id: &str, at: i64) -> NewInboxEvent {
    NewInboxEvent {
        webhook_event_id: Some(id.to_owned()),
        conversation: conversation.to_owned(),
        payload: id.to_owned(),
        received_ms: at,
    }
}

fn payloads(events: &[InboxEvent]) -> Vec<&str> {
    events.iter().map(|e| e.payload.as_str()).collect()
}

#[test]
fn a_claim_takes_each_conversations_oldest_event_and_nobody_takes_it_twice() {
    let (s, _) = postgres_with_url();
    assert!(s.shared());
    s.inbox_insert(&[
        event("U1", "a", 1),
        event("U1", "b", 2),
        event("U2", "c", 3),
    ])
    .unwrap();
    let first = s.inbox_claim("A", 1_000, 5_000, 10).unwrap();
    assert_eq!(
        payloads(&first),
        ["a", "c"],
        "one event per conversation, in order"
    );
    assert!(s.inbox_claim("B", 1_000, 5_000, 10).unwrap().is_empty());
    // Once `a` is done, U1's next event is free, for any instance.
    s.inbox_mark_done(&[(first[0].seq, None)]).unwrap();
    assert_eq!(
        payloads(&s.inbox_claim("B", 1_001, 5_000, 10).unwrap()),
        ["b"]
    );
    assert!(s.inbox_claim("A", 1_002, 5_000, 10).unwrap().is_empty());
}

#[test]
fn a_dead_owners_events_are_taken_over_after_its_lease_and_a_heartbeat_keeps_them() {
    let (s, _) = postgres_with_url();
    let seq = s.inbox_insert(&[event("U1", "a", 1)]).unwrap()[0].unwrap();
    assert_eq!(s.inbox_claim("A", 1_000, 100, 10).unwrap().len(), 1);
    s.inbox_write(&[], &[Mark::Started(seq)]).unwrap();
    // A's heartbeat: still held at 2,000, long after the first lease.
    s.inbox_renew("A", &[seq], 5_000).unwrap();
    assert!(s.inbox_claim("B", 2_000, 100, 10).unwrap().is_empty());
    // A stopped renewing: B takes it over, knowing a handler started on it.
    let taken = s.inbox_claim("B", 5_000, 100, 10).unwrap();
    assert_eq!(payloads(&taken), ["a"]);
    assert!(taken[0].started, "the takeover is a replay");
}

/// An instance that finished an event but lost its done-mark (a failed commit) no longer
/// renews it: its lease runs out and the event runs again, as after a restart, instead of
/// staying claimed (and its conversation stalled) for as long as the instance lives.
#[test]
fn a_heartbeat_renews_only_the_events_still_in_hand() {
    let (s, _) = postgres_with_url();
    let seqs: Vec<i64> = s
        .inbox_insert(&[event("U1", "a", 1), event("U2", "b", 2)])
        .unwrap()
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(s.inbox_claim("A", 1_000, 100, 10).unwrap().len(), 2);
    s.inbox_renew("A", &seqs[1..], 5_000).unwrap();
    assert_eq!(
        payloads(&s.inbox_claim("B", 2_000, 100, 10).unwrap()),
        ["a"]
    );
}

#[test]
fn instances_claiming_at_once_split_the_heads_between_them() {
    let (first, url) = postgres_with_url();
    let items: Vec<_> = (0..200)
        .map(|i| event(&format!("U{}", i % 50), &format!("e{i}"), i))
        .collect();
    first.inbox_insert(&items).unwrap();
    let stores: Vec<Arc<dyn Store>> = (0..4).map(|_| open(&url).unwrap()).collect();
    let claimed: Vec<Vec<InboxEvent>> = std::thread::scope(|scope| {
        let handles: Vec<_> = stores
            .iter()
            .enumerate()
            .map(|(i, s)| scope.spawn(move || s.inbox_claim(&format!("I{i}"), 1_000, 60_000, 100)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().unwrap())
            .collect()
    });
    let all: Vec<&str> = claimed.iter().flat_map(|c| payloads(c)).collect();
    let distinct: HashSet<&str> = all.iter().copied().collect();
    assert_eq!(all.len(), distinct.len(), "an event claimed twice: {all:?}");
    // Exactly the 50 heads, e0..e49, between the four.
    let heads: HashSet<String> = (0..50).map(|i| format!("e{i}")).collect();
    assert_eq!(distinct, heads.iter().map(String::as_str).collect());
}

#[test]
fn an_outbox_lane_is_held_by_one_instance_until_it_lets_go_or_its_lease_ends() {
    let (s, _) = postgres_with_url();
    assert!(s.outbox_hold("to:U1", "A", 1_000, 2_000).unwrap());
    assert!(
        !s.outbox_hold("to:U1", "B", 1_500, 2_500).unwrap(),
        "A holds it"
    );
    assert!(
        s.outbox_hold("to:U2", "B", 1_500, 2_500).unwrap(),
        "lanes are apart"
    );
    // A's heartbeat keeps it past its first lease.
    s.outbox_renew("A", 4_000).unwrap();
    assert!(!s.outbox_hold("to:U1", "B", 3_000, 5_000).unwrap());
    // A died: once its lease ended, B takes the lane.
    assert!(s.outbox_hold("to:U1", "B", 4_000, 6_000).unwrap());
    s.outbox_release("to:U1", "B").unwrap();
    assert!(
        s.outbox_hold("to:U1", "C", 4_001, 6_000).unwrap(),
        "given back"
    );
}

#[test]
fn instances_opening_a_new_database_at_once_migrate_it_once() {
    let (first, url) = postgres_with_url();
    drop(first);
    // A second database, empty: four instances start on it together.
    let fresh = url
        .rsplit_once('/')
        .map(|(base, db)| format!("{base}/{db}x"))
        .unwrap();
    let name = fresh.rsplit('/').next().unwrap().to_owned();
    cluster_psql(&format!("CREATE DATABASE {name}"));
    let opened: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4).map(|_| scope.spawn(|| open(&fresh))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for store in &opened {
        let store = store.as_ref().expect("every instance opens");
        assert_eq!(store.inbox_backlog().unwrap(), 0);
    }
}

#[test]
fn a_database_from_a_newer_linebotd_is_refused_and_a_bad_url_is_named() {
    let (s, url) = postgres_with_url();
    drop(s);
    let name = url.rsplit('/').next().unwrap().to_owned();
    cluster_psql_in(&name, "UPDATE schema_version SET version = 999");
    let err = open(&url).err().expect("refused");
    assert!(
        matches!(err, StoreError::TooNew { found: 999, .. }),
        "{err}"
    );
    let err = open("postgres://nobody@127.0.0.1:1/x?bad_option=1")
        .err()
        .expect("refused");
    assert!(err.to_string().contains("PostgreSQL URL"), "{err}");
}

#[test]
fn instances_taking_due_timers_at_once_each_get_different_ones() {
    let (first, url) = postgres_with_url();
    for i in 0..100 {
        let timer = Timer {
            id: format!("t{i}"),
            script: "reminder.rhai".to_owned(),
            function: "remind".to_owned(),
            data: serde_json::Value::Null,
            due_ms: i,
            created_ms: 0,
        };
        assert!(first.timer_add(&timer, 1_000).unwrap());
    }
    let stores: Vec<Arc<dyn Store>> = (0..4).map(|_| open(&url).unwrap()).collect();
    let taken: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = stores
            .iter()
            .map(|s| scope.spawn(move || s.timers_take_due(1_000, 60_000, 40).unwrap()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .map(|t| t.id)
            .collect()
    });
    let distinct: HashSet<&String> = taken.iter().collect();
    assert_eq!(distinct.len(), taken.len(), "a timer taken twice");
    assert_eq!(taken.len(), 100, "every due timer taken once between them");
}
