//! One-off timers in the store: insert-or-ignore, claims, cancel, pruning, persistence.

use serde_json::json;

use super::super::*;

fn timer(id: &str, due_ms: i64) -> Timer {
    Timer {
        id: id.to_owned(),
        script: "reminder.rhai".to_owned(),
        function: "remind".to_owned(),
        data: json!({"to": "U1", "text": id}),
        due_ms,
        created_ms: 1,
    }
}

fn ids(list: &[Timer]) -> Vec<&str> {
    list.iter().map(|t| t.id.as_str()).collect()
}

fn a_known_timer_id_is_ignored_even_after_it_ran(s: Arc<dyn Store>) {
    assert!(s.timer_add(&timer("a", 100), 10).unwrap());
    let mut changed = timer("a", 999);
    changed.data = json!("other");
    assert!(!s.timer_add(&changed, 10).unwrap());
    assert_eq!(s.timers_pending(10).unwrap(), vec![timer("a", 100)]);

    s.timer_done("a", "ran", 200).unwrap();
    assert!(s.timers_pending(10).unwrap().is_empty());
    // A replayed handler adding the same id again does not bring it back.
    assert!(!s.timer_add(&timer("a", 100), 10).unwrap());
    assert!(s.timers_pending(10).unwrap().is_empty());
}

fn pending_and_due_timers_come_earliest_first(s: Arc<dyn Store>) {
    for (id, due) in [("late", 300), ("early", 100), ("mid", 200)] {
        s.timer_add(&timer(id, due), 10).unwrap();
    }
    assert_eq!(
        ids(&s.timers_pending(10).unwrap()),
        ["early", "mid", "late"]
    );
    assert_eq!(ids(&s.timers_pending(1).unwrap()), ["early"]);
    assert_eq!(
        ids(&s.timers_take_due(250, 1_000, 10).unwrap()),
        ["early", "mid"]
    );
    assert_eq!(ids(&s.timers_take_due(1_000, 1_000, 1).unwrap()), ["late"]);
}

fn a_claimed_timer_is_handed_out_again_only_after_its_lease(s: Arc<dyn Store>) {
    s.timer_add(&timer("a", 100), 10).unwrap();
    assert_eq!(ids(&s.timers_take_due(100, 50, 10).unwrap()), ["a"]);
    assert!(s.timers_take_due(149, 50, 10).unwrap().is_empty());
    // Running: still listed, not cancellable.
    assert_eq!(ids(&s.timers_pending(10).unwrap()), ["a"]);
    assert!(!s.timer_cancel("a", 120).unwrap());
    // The run died without saying it was done: the timer comes back.
    assert_eq!(ids(&s.timers_take_due(150, 50, 10).unwrap()), ["a"]);
    s.timer_done("a", "ran", 160).unwrap();
    assert!(s.timers_take_due(10_000, 50, 10).unwrap().is_empty());
}

fn cancel_stops_a_pending_timer_once(s: Arc<dyn Store>) {
    s.timer_add(&timer("a", 100), 10).unwrap();
    assert!(s.timer_cancel("a", 50).unwrap());
    assert!(!s.timer_cancel("a", 60).unwrap());
    assert!(!s.timer_cancel("nope", 60).unwrap());
    assert!(s.timers_pending(10).unwrap().is_empty());
    assert!(s.timers_take_due(1_000, 50, 10).unwrap().is_empty());
}

fn pending_timers_are_capped_and_large_data_refused(s: Arc<dyn Store>) {
    s.timer_add(&timer("a", 100), 2).unwrap();
    s.timer_add(&timer("b", 100), 2).unwrap();
    assert_eq!(
        s.timer_add(&timer("c", 100), 2),
        Err(StoreError::TooManyTimers { limit: 2 })
    );
    // Done timers do not count.
    s.timer_done("a", "ran", 1).unwrap();
    assert!(s.timer_add(&timer("c", 100), 2).unwrap());

    let mut big = timer("big", 100);
    big.data = json!("x".repeat(MAX_VALUE_BYTES));
    assert!(matches!(
        s.timer_add(&big, 10),
        Err(StoreError::TooLarge {
            what: "timer data",
            ..
        })
    ));
}

fn prune_drops_done_timers_older_than_the_window_only(s: Arc<dyn Store>) {
    for id in ["old", "recent", "pending"] {
        s.timer_add(&timer(id, 100), 10).unwrap();
    }
    s.timer_done("old", "ran", 1_000).unwrap();
    s.timer_cancel("recent", 5_000).unwrap();
    s.prune(6_000, 2_000).unwrap();
    // "old" is forgotten (its id may be used again); "recent" is still remembered.
    assert!(s.timer_add(&timer("old", 100), 10).unwrap());
    assert!(!s.timer_add(&timer("recent", 100), 10).unwrap());
    assert_eq!(ids(&s.timers_pending(10).unwrap()), ["old", "pending"]);
}

#[test]
fn timers_survive_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db").display().to_string();
    {
        let s = open(&path).unwrap();
        s.timer_add(&timer("a", 100), 10).unwrap();
        s.timer_add(&timer("b", 200), 10).unwrap();
        s.timer_done("b", "ran", 300).unwrap();
    }
    let s = open(&path).unwrap();
    assert_eq!(s.timers_pending(10).unwrap(), vec![timer("a", 100)]);
    assert!(!s.timer_add(&timer("b", 200), 10).unwrap());
}

contract! {
    a_known_timer_id_is_ignored_even_after_it_ran,
    pending_and_due_timers_come_earliest_first,
    a_claimed_timer_is_handed_out_again_only_after_its_lease,
    cancel_stops_a_pending_timer_once,
    pending_timers_are_capped_and_large_data_refused,
    prune_drops_done_timers_older_than_the_window_only,
}
