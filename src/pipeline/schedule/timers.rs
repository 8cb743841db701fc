//! One-off timers (`later`, `at`): kept in the store, fired by one loop that sleeps until the
//! earliest is due.
//!
//! Delivery is at least once for the call and exactly once for what it sends: a timer is
//! claimed with a lease, run, then marked done; if the daemon dies mid-run the timer runs again
//! after the lease, and its pushes, named after the timer (`timer/<id>`), get the same retry
//! keys, so LINE drops the repeats. How a timer is run is the caller's business (a [`FireFn`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};

use crate::store::{now_ms, Store, StoreError, Timer};

/// The most timers a bot may have pending at once.
pub const MAX_PENDING: u64 = 100_000;

/// Longest single sleep: the wall clock is read again at least this often, so a clock step or
/// a suspended machine delays a timer by at most this much (as with cron schedules).
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// How a due timer is rechecked while the earliest one is running (its lease holds it).
const BUSY_RECHECK: Duration = Duration::from_secs(1);

/// How a timer's run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fired {
    Ran,
    /// The call threw; not retried.
    Failed(String),
    /// The script or the function is gone; dropped.
    Gone(String),
}

/// Runs one timer; the future completes when the call has ended.
pub type FireFn = Arc<dyn Fn(Timer) -> Pin<Box<dyn Future<Output = Fired> + Send>> + Send + Sync>;

/// The timers of one bot: scripts add and cancel them here, which wakes the loop.
pub struct Timers {
    store: Arc<dyn Store>,
    wake: Notify,
}

impl Timers {
    pub fn new(store: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(Self {
            store,
            wake: Notify::new(),
        })
    }

    /// Stores `timer` (a known id is `Ok(false)`: a replayed handler's timer is not added
    /// twice) and wakes the loop, which may now have an earlier timer to wait for.
    pub fn add(&self, timer: &Timer) -> Result<bool, StoreError> {
        let added = self.store.timer_add(timer, MAX_PENDING)?;
        self.wake.notify_one();
        Ok(added)
    }

    /// Cancels a pending timer: `true` if it was pending (a running one is not stopped).
    pub fn cancel(&self, id: &str) -> Result<bool, StoreError> {
        let cancelled = self.store.timer_cancel(id, now_ms())?;
        self.wake.notify_one();
        Ok(cancelled)
    }

    pub fn pending(&self, limit: usize) -> Result<Vec<Timer>, StoreError> {
        self.store.timers_pending(limit)
    }

    /// Records how a timer's run ended, counting it and logging failures and drops with the
    /// timer's id.
    pub fn finish(&self, timer: &Timer, fired: &Fired) {
        let (label, why, outcome) = match fired {
            Fired::Ran => ("ran", None, "ran".to_owned()),
            Fired::Failed(e) => ("failed", Some(e.as_str()), format!("failed: {e}")),
            Fired::Gone(why) => ("gone", Some(why.as_str()), format!("dropped: {why}")),
        };
        crate::ops::observe::TimerFinished {
            id: &timer.id,
            script: &timer.script,
            function: &timer.function,
            outcome: label,
            why,
        }
        .emit();
        if let Err(e) = self.store.timer_done(&timer.id, &outcome, now_ms()) {
            tracing::error!(error = %e, timer = %timer.id, "cannot record that a timer ran; it may run again after its lease");
        }
    }

    /// Spawns the loop that fires due timers on the current tokio runtime, at most `parallel`
    /// at once. A timer found more than `grace` late (the daemon was down) is dropped with a
    /// log line; `lease` must outlast a run (`max_call_ms` and some). Stops when the returned
    /// handle is dropped.
    pub fn start(
        self: &Arc<Self>,
        fire: FireFn,
        grace: Duration,
        lease: Duration,
        parallel: usize,
    ) -> TimerLoop {
        let timers = Arc::clone(self);
        let slots = Arc::new(Semaphore::new(parallel.max(1)));
        let task = tokio::spawn(async move {
            loop {
                // The store's calls block (a SQLite lock, a PostgreSQL round trip): they run
                // off the runtime's threads, which serve webhooks meanwhile.
                let (t, f, s) = (Arc::clone(&timers), Arc::clone(&fire), Arc::clone(&slots));
                let sleep = tokio::task::spawn_blocking(move || t.fire_due(&f, grace, lease, &s))
                    .await
                    .unwrap_or(BUSY_RECHECK);
                tokio::select! {
                    () = tokio::time::sleep(sleep) => {}
                    () = timers.wake.notified() => {}
                }
            }
        });
        TimerLoop(task)
    }

    /// Starts every due timer there is a free slot for; returns how long to sleep.
    fn fire_due(
        self: &Arc<Self>,
        fire: &FireFn,
        grace: Duration,
        lease: Duration,
        slots: &Arc<Semaphore>,
    ) -> Duration {
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        let grace_ms = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
        loop {
            let free = slots.available_permits();
            if free == 0 {
                // A run ending wakes the loop.
                return MAX_SLEEP;
            }
            let now = now_ms();
            let due = match self.store.timers_take_due(now, lease_ms, free) {
                Ok(due) => due,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read due timers; trying again shortly");
                    return BUSY_RECHECK;
                }
            };
            let taken = due.len();
            for timer in due {
                if now.saturating_sub(timer.due_ms) > grace_ms {
                    let due = chrono::DateTime::from_timestamp_millis(timer.due_ms)
                        .map_or_else(|| format!("{} ms", timer.due_ms), |d| d.to_rfc3339());
                    let reason = format!(
                        "timer {} was due at {due}, more than schedule_grace_secs ({} s) ago \
                         (the daemon was down or too busy); dropped",
                        timer.id,
                        grace.as_secs()
                    );
                    crate::ops::observe::ScheduleSkipped {
                        script: &timer.script,
                        function: &timer.function,
                        reason: &reason,
                    }
                    .emit();
                    if let Err(e) = self.store.timer_done(&timer.id, "dropped: too late", now) {
                        tracing::error!(error = %e, timer = %timer.id, "cannot drop a late timer");
                    }
                    continue;
                }
                let Ok(permit) = Arc::clone(slots).try_acquire_owned() else {
                    // Cannot happen (we took no more than the free slots); the lease brings it back.
                    break;
                };
                tracing::info!(timer = %timer.id, script = %timer.script, handler = %timer.function, "timer fired");
                let (timers, fire) = (Arc::clone(self), Arc::clone(fire));
                tokio::spawn(async move {
                    let fired = fire(timer.clone()).await;
                    let done = Arc::clone(&timers);
                    let _ = tokio::task::spawn_blocking(move || done.finish(&timer, &fired)).await;
                    drop(permit);
                    timers.wake.notify_one();
                });
            }
            if taken < free {
                break;
            }
        }
        let now = now_ms();
        match self.store.timers_pending(1) {
            Ok(next) => match next.first() {
                None => MAX_SLEEP,
                Some(t) if t.due_ms > now => {
                    Duration::from_millis(u64::try_from(t.due_ms - now).unwrap_or(0)).min(MAX_SLEEP)
                }
                // Due but running (or claimed by a run that died): check again soon.
                Some(_) => BUSY_RECHECK,
            },
            Err(e) => {
                tracing::error!(error = %e, "cannot read pending timers; trying again shortly");
                BUSY_RECHECK
            }
        }
    }
}

/// The running timer loop; dropping it stops the loop (runs in progress finish on their own).
pub struct TimerLoop(tokio::task::JoinHandle<()>);

impl Drop for TimerLoop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests;
