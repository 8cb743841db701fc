//! What schedules and timers do: a cron schedule's run or skip, a timer's call ending.

use super::{global, script_name};

/// A cron schedule fired and its function is being called.
pub struct ScheduleRun<'a> {
    pub script: &'a str,
    pub function: &'a str,
    /// The due time this run is for (ms since the epoch): with several instances, each due
    /// time shows in one instance's log.
    pub due_ms: i64,
}

impl ScheduleRun<'_> {
    pub fn emit(&self) {
        global().schedule_runs.inc(&[script_name(self.script)]);
        tracing::info!(
            script = self.script,
            handler = self.function,
            due_ms = self.due_ms,
            "schedule fired"
        );
    }
}

/// A cron schedule's run was skipped (missed beyond the grace period, or still running).
pub struct ScheduleSkipped<'a> {
    pub script: &'a str,
    pub function: &'a str,
    pub reason: &'a str,
}

impl ScheduleSkipped<'_> {
    pub fn emit(&self) {
        global().schedule_skips.inc(&[script_name(self.script)]);
        tracing::warn!(
            script = self.script,
            handler = self.function,
            "scheduled run skipped: {}",
            self.reason
        );
    }
}

/// A due timer's call ended. A failed one is not retried, and a gone one (its script or
/// function was removed since it was set) is dropped; both are logged with the timer's id.
pub struct TimerFinished<'a> {
    pub id: &'a str,
    pub script: &'a str,
    pub function: &'a str,
    /// `ran`, `failed` or `gone`.
    pub outcome: &'static str,
    /// Why it failed or is gone.
    pub why: Option<&'a str>,
}

impl TimerFinished<'_> {
    pub fn emit(&self) {
        global()
            .timer_runs
            .inc(&[script_name(self.script), self.outcome]);
        let (id, script, handler) = (self.id, self.script, self.function);
        match (self.outcome, self.why) {
            ("failed", Some(e)) => {
                tracing::warn!(timer = %id, script, handler, "timer call failed (not retried): {e}");
            }
            ("gone", Some(why)) => {
                tracing::warn!(timer = %id, script, handler, "timer dropped: {why}");
            }
            _ => {}
        }
    }
}
