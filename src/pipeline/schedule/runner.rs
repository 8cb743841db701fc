//! The timer loop: fires each schedule at its times, never stacks runs, makes up one missed run.
//!
//! How a run is executed is the caller's business (a [`RunFn`]); this module only decides when.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use tokio::sync::Notify;

use super::spec::Schedule;

/// Where the start time of each schedule's last run is kept between daemon runs, by
/// [`Schedule::key`], in milliseconds since the Unix epoch.
pub trait LastRuns: Send + Sync + 'static {
    fn get(&self, key: &str) -> Option<i64>;
    /// Records the run of `key` due at `at_ms`; `false` when a run at or after that time is
    /// already recorded (by another instance sharing the store), and this one must not run.
    fn claim(&self, key: &str, at_ms: i64) -> bool;
}

/// [`LastRuns`] in memory, for tests and for running without a store.
#[derive(Debug, Default)]
pub struct MemoryLastRuns(Mutex<BTreeMap<String, i64>>);

impl LastRuns for MemoryLastRuns {
    fn get(&self, key: &str) -> Option<i64> {
        lock(&self.0).get(key).copied()
    }
    fn claim(&self, key: &str, at_ms: i64) -> bool {
        let mut runs = lock(&self.0);
        if runs.get(key).is_some_and(|last| *last >= at_ms) {
            return false;
        }
        runs.insert(key.to_owned(), at_ms);
        true
    }
}

/// Executes one run; the future completes when the run has ended.
pub type RunFn = Arc<dyn Fn(Schedule) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// Counters since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchedulerStats {
    /// Runs started, made-up runs included.
    pub runs: u64,
    /// Times skipped because the previous run of the same schedule was still going.
    pub skipped: u64,
}

/// Owns the timer task. Dropping it stops the timer (runs in progress finish on their own).
pub struct Scheduler {
    shared: Arc<Timetable>,
}

struct Timetable {
    entries: Mutex<BTreeMap<String, Entry>>,
    /// Running flags of unloaded schedules whose run is still going, so that a script removed
    /// and re-added mid-run (an editor saving by delete + create) does not start an overlapping
    /// run. Weak: the entry disappears by itself once the run ends. Locked after `entries`.
    unloaded_running: Mutex<BTreeMap<String, Weak<AtomicBool>>>,
    /// Wakes the timer to re-plan after `replace` or `shutdown`.
    wake: Notify,
    stopped: AtomicBool,
    runs: AtomicU64,
    skipped: AtomicU64,
    run: RunFn,
    last_runs: Arc<dyn LastRuns>,
    grace: Duration,
}

struct Entry {
    schedule: Schedule,
    /// When it fires next; a time in the past means "fire now" (a make-up run).
    next: Option<DateTime<Utc>>,
    /// Timetable with the run in progress, which clears it when it ends, so a reload that keeps
    /// the key also keeps "still running" and cannot start a second, overlapping run.
    running: Arc<AtomicBool>,
}

/// Longest single sleep. Tokio timers follow the monotonic clock; waking at least this often
/// re-reads the wall clock, so a suspended machine or a clock step delays a run by at most
/// this much instead of by the length of the jump.
const MAX_SLEEP: Duration = Duration::from_secs(60);

impl Scheduler {
    /// Spawns the timer task on the current tokio runtime. `grace` is how old a missed run may
    /// be and still be made up when its schedule is loaded. Must be called inside a tokio
    /// runtime (it uses `tokio::spawn`).
    pub fn start(run: RunFn, last_runs: Arc<dyn LastRuns>, grace: Duration) -> Self {
        let shared = Arc::new(Timetable {
            entries: Mutex::new(BTreeMap::new()),
            unloaded_running: Mutex::new(BTreeMap::new()),
            wake: Notify::new(),
            stopped: AtomicBool::new(false),
            runs: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            run,
            last_runs,
            grace,
        });
        tokio::spawn(timer_loop(Arc::clone(&shared)));
        Self { shared }
    }

    /// Atomically replaces the schedules of `script` (hot reload); an empty list stops them.
    ///
    /// A schedule whose key is already loaded keeps its next time (unless its cron or zone
    /// changed) and its in-flight run, so a reload never runs it twice. A key that is not
    /// loaded but has a persisted last run gets one make-up run if a scheduled time passed
    /// since then and is younger than the grace period.
    pub fn replace(&self, script: &str, schedules: Vec<Schedule>) {
        let now = Utc::now();
        let (schedules, foreign): (Vec<Schedule>, Vec<Schedule>) =
            schedules.into_iter().partition(|s| s.script == script);
        for s in foreign {
            // Accepting it would leave it behind when `script` is later emptied.
            tracing::warn!(schedule = %s.key(), script, "ignoring a schedule of another script");
        }
        let keep: Vec<String> = schedules.iter().map(Schedule::key).collect();
        let mut entries = lock(&self.shared.entries);
        let mut unloaded = lock(&self.shared.unloaded_running);
        unloaded.retain(|_, flag| flag.strong_count() > 0);
        entries.retain(|key, e| {
            let stays = e.schedule.script != script || keep.contains(key);
            if !stays && e.running.load(Ordering::SeqCst) {
                unloaded.insert(key.clone(), Arc::downgrade(&e.running));
            }
            stays
        });
        for schedule in schedules {
            let key = schedule.key();
            if let Some(entry) = entries.get_mut(&key) {
                if entry.schedule.cron != schedule.cron || entry.schedule.tz != schedule.tz {
                    entry.next = schedule.next_after(now);
                }
                entry.schedule = schedule;
                continue;
            }
            let next = self
                .missed_run(&schedule, &key, now)
                .or_else(|| schedule.next_after(now));
            let running = unloaded
                .remove(&key)
                .and_then(|flag| flag.upgrade())
                .unwrap_or_default();
            entries.insert(
                key,
                Entry {
                    schedule,
                    next,
                    running,
                },
            );
        }
        drop(unloaded);
        drop(entries);
        self.shared.wake.notify_one();
    }

    /// Every loaded schedule with its next run time, ordered by key.
    pub fn list(&self) -> Vec<(Schedule, Option<DateTime<Utc>>)> {
        lock(&self.shared.entries)
            .values()
            .map(|e| (e.schedule.clone(), e.next))
            .collect()
    }

    /// Stops the timer; runs in progress finish on their own.
    pub fn shutdown(&self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        self.shared.wake.notify_one();
    }

    /// Runs started since [`Scheduler::start`].
    pub fn runs(&self) -> u64 {
        self.shared.runs.load(Ordering::Relaxed)
    }

    /// Scheduled times skipped because the previous run was still going.
    pub fn skipped(&self) -> u64 {
        self.shared.skipped.load(Ordering::Relaxed)
    }

    /// Both counters at once.
    pub fn stats(&self) -> SchedulerStats {
        SchedulerStats {
            runs: self.runs(),
            skipped: self.skipped(),
        }
    }

    /// The scheduled time to make up now, if any: the latest one at or before `now` that is
    /// after the persisted last run and younger than the grace period. Only the latest counts,
    /// so however long the daemon was down, at most one run is made up.
    fn missed_run(
        &self,
        schedule: &Schedule,
        key: &str,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let last_ms = self.shared.last_runs.get(key)?;
        let last = Utc.timestamp_millis_opt(last_ms).single()?;
        let missed = schedule.latest_at_or_before(now)?;
        if missed <= last {
            return None;
        }
        let age = (now - missed).to_std().unwrap_or(Duration::ZERO);
        if age <= self.shared.grace {
            tracing::info!(schedule = %key, missed = %missed, "making up a run missed while not loaded");
            Some(missed)
        } else {
            let reason = format!(
                "the run missed at {missed} is older than the grace period ({} s); not making it up",
                self.shared.grace.as_secs()
            );
            crate::ops::observe::ScheduleSkipped {
                script: &schedule.script,
                function: &schedule.call,
                reason: &reason,
            }
            .emit();
            None
        }
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.shutdown();
    }
}

async fn timer_loop(shared: Arc<Timetable>) {
    while !shared.stopped.load(Ordering::SeqCst) {
        let now = Utc::now();
        let mut earliest: Option<DateTime<Utc>> = None;
        {
            let mut entries = lock(&shared.entries);
            for entry in entries.values_mut() {
                if let Some(at) = entry.next.filter(|at| *at <= now) {
                    fire(&shared, entry, at);
                    // From `now`, not from `at`: after a stall, one run covers all the
                    // times that went by instead of a burst of catch-up runs.
                    entry.next = entry.schedule.next_after(now);
                }
                if let Some(at) = entry.next {
                    earliest = Some(earliest.map_or(at, |e| e.min(at)));
                }
            }
        }
        let sleep = earliest
            .map(|at| (at - Utc::now()).to_std().unwrap_or(Duration::ZERO))
            .unwrap_or(MAX_SLEEP)
            .min(MAX_SLEEP);
        tokio::select! {
            () = tokio::time::sleep(sleep) => {}
            () = shared.wake.notified() => {}
        }
    }
}

/// Starts one run of `entry` for scheduled time `at`, unless its previous run is still going.
fn fire(shared: &Arc<Timetable>, entry: &Entry, at: DateTime<Utc>) {
    let key = entry.schedule.key();
    if entry.running.swap(true, Ordering::SeqCst) {
        shared.skipped.fetch_add(1, Ordering::Relaxed);
        let reason = format!("the run before {at} is still going; not stacking another");
        crate::ops::observe::ScheduleSkipped {
            script: &entry.schedule.script,
            function: &entry.schedule.call,
            reason: &reason,
        }
        .emit();
        return;
    }
    let running = RunningGuard(Arc::clone(&entry.running));
    let shared = Arc::clone(shared);
    let schedule = entry.schedule.clone();
    tokio::spawn(async move {
        let _running = running;
        // Recorded before the run, so a crash mid-run is not made up again on restart; and
        // claimed, so of the instances sharing a store only one runs each due time.
        if !shared.last_runs.claim(&key, at.timestamp_millis()) {
            tracing::debug!(schedule = %key, at = %at, "this run is another instance's");
            return;
        }
        shared.runs.fetch_add(1, Ordering::Relaxed);
        crate::ops::observe::ScheduleRun {
            script: &schedule.script,
            function: &schedule.call,
            due_ms: at.timestamp_millis(),
        }
        .emit();
        (shared.run)(schedule).await;
    });
}

/// Clears the running flag when the run ends, panics included.
struct RunningGuard(Arc<AtomicBool>);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// A poisoned lock only means another thread panicked mid-update of plain data; the data is
/// still usable, and the timer must keep going.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests;
