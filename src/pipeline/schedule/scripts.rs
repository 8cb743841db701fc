//! Schedules run as script calls, with their last runs kept in the store: what ties the
//! [`runner`](super::runner), which knows nothing of scripts, to the daemon's scripts and store.

use std::sync::Arc;

use crate::pipeline::script::Runtime;
use crate::store::{self, Store};

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

/// Last run times of schedules, kept in the store so a restart can make up a missed run.
pub struct StoreLastRuns(pub Arc<dyn Store>);

impl LastRuns for StoreLastRuns {
    fn get(&self, key: &str) -> Option<i64> {
        self.0.schedule_last_run(key).unwrap_or_else(|e| {
            tracing::warn!(error = %e, key, "cannot read a schedule's last run");
            None
        })
    }

    fn set(&self, key: &str, at_ms: i64) {
        if let Err(e) = self.0.schedule_set_last_run(key, at_ms) {
            tracing::warn!(error = %e, key, "cannot record a schedule's run");
        }
    }
}
