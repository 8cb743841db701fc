//! Recording a metric into a series seen before allocates nothing: the counters bumped for every
//! webhook, handler run and LINE or web API call stay hash lookups and atomic adds.
//!
//! A test binary of its own, because it swaps in a counting global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use linebotd::ops::metrics::Metrics;

/// Counts allocations made by the current thread, so other test threads cannot disturb it.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; counting touches only a
// const-initialised thread-local `Cell`, which itself never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn recording_into_known_series_does_not_allocate() {
    let m = Metrics::new();
    let record = || {
        m.webhooks.inc(&["accepted"]);
        m.events.inc(&["message"]);
        m.handler_runs.inc(&["bot.rhai", "on_message", "ok"]);
        m.handler_duration
            .observe(&["bot.rhai", "on_message"], 0.003);
        m.line_calls.inc(&["reply", "200"]);
        m.line_duration.observe(&["reply"], 0.02);
        m.http_call("api.example.com", "200", Duration::from_millis(40));
    };
    // The first call creates each series (and interns its label values): that may allocate.
    record();
    let before = allocations();
    for _ in 0..1_000 {
        record();
    }
    assert_eq!(allocations() - before, 0);
    assert_eq!(m.webhooks.get(&["accepted"]), 1_001);
}
