//! The per-call context of the script running on this thread.
//!
//! Rhai host functions are registered once on the shared engine, so they learn which script,
//! event and deadline they serve from here. A handler runs start to finish on one blocking
//! thread, which makes a thread-local exact: no other call can interleave on it.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use crate::pipeline::webhook::Event;

use super::host::Host;

/// Where the event being handled stands in the daemon's inbox, for `reply`.
#[derive(Clone, Default)]
pub struct Provenance {
    /// When the daemon stored the event (epoch ms): how old its reply token is.
    pub received_ms: Option<i64>,
    /// A handler ran on it before the daemon last stopped: its reply token may be used.
    pub replay: bool,
    /// Calls (reply keys) an earlier run completed: a replay skips them.
    pub sent: Arc<HashSet<String>>,
    /// Called before a reply is sent; returns once the inbox durably knows that this event's
    /// token may be used.
    pub before_reply: Option<Arc<dyn Fn() + Send + Sync>>,
    /// Records a reply LINE accepted (by its key), so a replay after a crash skips it.
    pub record_sent: Option<Arc<dyn Fn(String) + Send + Sync>>,
}

/// What the running call is and may do.
pub struct CallContext {
    pub script: Arc<str>,
    /// The running script's functions and their parameter counts.
    pub functions: Arc<HashMap<String, usize>>,
    pub deadline: Instant,
    pub host: Arc<Host>,
    /// The event being handled; `None` for scheduled runs.
    pub event: Option<Arc<Event>>,
    /// Where the event stands in the inbox (default outside the daemon and for schedules).
    pub provenance: Provenance,
    /// Seed for deterministic retry keys: a re-run of the same event (after a crash) derives the
    /// same keys, so LINE drops the repeats with 409.
    pub key_seed: String,
    /// How many calls of each kind (`reply`, `push` …) this run has made so far: a call's
    /// position among its own kind names it, so no kind of send can take another's key.
    pub calls: Vec<(&'static str, u32)>,
    /// The reply tokens LINE accepted a reply with while handling this event, each with where
    /// that reply was made (`echo.rhai:5`): shared by every handler of the event, because a
    /// token works once.
    pub replied: Replied,
}

/// Reply tokens already used, and by which reply (see [`CallContext::replied`]).
pub type Replied = Arc<std::sync::Mutex<std::collections::HashMap<String, String>>>;

/// Told when the handler on this thread starts and stops waiting, so the thread pool can run
/// another handler meanwhile (the dispatcher's handler threads set one).
pub trait WaitHook: Send + Sync {
    /// A wait on the network (LINE).
    fn begin(&self);
    fn end(&self);
    /// A wait on the store's commit. All such waits queue on one writer, so the pool makes up
    /// for only a few at once; returns whether it made up for this one.
    fn begin_commit(&self) -> bool;
    fn end_commit(&self, made_up_for: bool);
}

thread_local! {
    static CURRENT: RefCell<Option<CallContext>> = const { RefCell::new(None) };
    static WAIT_HOOK: RefCell<Option<Arc<dyn WaitHook>>> = const { RefCell::new(None) };
}

/// Sets the hook told about waits on this thread (a handler thread sets it once).
pub fn set_wait_hook(hook: Arc<dyn WaitHook>) {
    WAIT_HOOK.with(|h| *h.borrow_mut() = Some(hook));
}

/// Tells this thread's wait hook, if any, that its handler starts (`true`) or stops waiting.
/// The LINE client calls it around each request ([`crate::line::OnWait`]).
pub fn report_wait(begins: bool) {
    let hook = WAIT_HOOK.with(|h| h.borrow().clone());
    if let Some(hook) = hook {
        if begins {
            hook.begin();
        } else {
            hook.end();
        }
    }
}

/// Runs `f`, which waits on the store's commit, telling this thread's wait hook.
pub fn commit_waiting<R>(f: impl FnOnce() -> R) -> R {
    struct End(Option<(Arc<dyn WaitHook>, bool)>);
    impl Drop for End {
        fn drop(&mut self) {
            if let Some((hook, made_up_for)) = &self.0 {
                hook.end_commit(*made_up_for);
            }
        }
    }
    let hook = WAIT_HOOK.with(|h| h.borrow().clone());
    let _end = End(hook.map(|hook| {
        let made_up_for = hook.begin_commit();
        (hook, made_up_for)
    }));
    f()
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
