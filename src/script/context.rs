//! The per-call context of the script running on this thread.
//!
//! Rhai host functions are registered once on the shared engine, so they learn which script,
//! event and deadline they serve from here. A handler runs start to finish on one blocking
//! thread, which makes a thread-local exact: no other call can interleave on it.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Instant;

use crate::webhook::Event;

use super::host::Host;

/// What the running call is and may do.
pub struct CallContext {
    pub script: Arc<str>,
    pub deadline: Instant,
    pub host: Arc<Host>,
    /// The event being handled; `None` for scheduled runs.
    pub event: Option<Arc<Event>>,
    /// When the daemon stored the event (epoch ms), so `reply` knows how old its token is;
    /// `None` outside the daemon (`simulate`, `test`) and for scheduled runs.
    pub received_ms: Option<i64>,
    /// Seed for deterministic retry keys: a re-run of the same event (after a crash) derives the
    /// same keys, so LINE drops the repeats with 409.
    pub key_seed: String,
    /// How many keyed sends this run has made so far.
    pub sends: u32,
}

thread_local! {
    static CURRENT: RefCell<Option<CallContext>> = const { RefCell::new(None) };
}

/// Installs `ctx` for the duration of `f` on this thread.
pub fn with_context<R>(ctx: CallContext, f: impl FnOnce() -> R) -> R {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            CURRENT.with(|c| *c.borrow_mut() = None);
        }
    }
    CURRENT.with(|c| *c.borrow_mut() = Some(ctx));
    let _reset = Reset;
    f()
}

/// Runs `f` with the current context, if a script call is running on this thread.
pub fn current<R>(f: impl FnOnce(&mut CallContext) -> R) -> Option<R> {
    CURRENT.with(|c| c.borrow_mut().as_mut().map(f))
}

/// True when the running call is past its wall-clock deadline.
pub fn past_deadline() -> bool {
    CURRENT.with(|c| {
        c.borrow()
            .as_ref()
            .is_some_and(|ctx| Instant::now() >= ctx.deadline)
    })
}
