//! Schedules and timers run as script calls, with their last runs kept in the store: what ties
//! the [`runner`](super::runner) and [`timers`](super::timers), which know nothing of scripts,
//! to the daemon's scripts and store.

use std::sync::Arc;

use crate::pipeline::script::Runtime;
use crate::store::{self, Store, Timer};

use super::timers::{FireFn, Fired};
use super::{LastRuns, RunFn, Schedule};

/// A scheduled run: the script's function, no arguments, the same limits and host API as
/// handlers, on a blocking thread.
pub fn script_runner(runtime: Arc<Runtime>) -> RunFn {
    Arc::new(move |schedule: Schedule| {
        let runtime = runtime.clone();
        Box::pin(async move {
            let run = tokio::task::spawn_blocking(move || {
                let set = runtime.scripts();
                let Some(script) = set.scripts.iter().find(|s| *s.name == schedule.script) else {
                    return;
                };
                let seed = format!("schedule/{}/{}", schedule.key(), store::now_ms() / 1000);
                let _ = runtime.call(script, &schedule.call, Vec::new(), None, seed);
            });
            let _ = run.await;
        })
    })
}

/// A due timer: `function(data)` in the script that scheduled it, with the same limits and host
/// API as handlers, on a blocking thread.
pub fn timer_runner(runtime: Arc<Runtime>) -> FireFn {
    Arc::new(move |timer: Timer| {
        let runtime = runtime.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || fire_timer(&runtime, &timer))
                .await
                .unwrap_or_else(|e| Fired::Failed(format!("the call crashed: {e}")))
        })
    })
}

/// Runs `timer` on this thread. Its calls are named `timer/<id>/…`, so a re-run after a crash
/// sends its pushes with the same retry keys and LINE drops the repeats.
pub fn fire_timer(runtime: &Runtime, timer: &Timer) -> Fired {
    let set = runtime.scripts();
    let Some(script) = set.scripts.iter().find(|s| *s.name == timer.script) else {
        return Fired::Gone(format!(
            "script {} is gone, so {}(data) cannot run",
            timer.script, timer.function
        ));
    };
    if !script.defines(&timer.function, 1) {
        return Fired::Gone(format!(
            "{} no longer defines {}(data)",
            timer.script, timer.function
        ));
    }
    let data = crate::pipeline::script::host::from_json(&timer.data);
    let seed = format!("timer/{}", timer.id);
    match runtime.call(script, &timer.function, vec![data], None, seed) {
        Ok(_) => Fired::Ran,
        Err(e) => Fired::Failed(e.to_string()),
    }
}

/// Last run times of schedules, kept in the store so a restart can make up a missed run.
pub struct StoreLastRuns(pub Arc<dyn Store>);

impl LastRuns for StoreLastRuns {
    fn get(&self, key: &str) -> Option<i64> {
        self.0.schedule_last_run(key).unwrap_or_else(|e| {
            tracing::warn!(error = %e, key, "cannot read a schedule's last run");
            None
        })
    }

    fn claim(&self, key: &str, at_ms: i64) -> bool {
        // A run that cannot be recorded is not made: with several instances, running it
        // unrecorded could run it once per instance. The next due time tries again.
        self.0.schedule_claim_run(key, at_ms).unwrap_or_else(|e| {
            tracing::warn!(error = %e, key, "cannot record a schedule's run; skipping it");
            false
        })
    }
}
