//! Hot reload: watch the scripts folder (not single files: editors save by rename) and reload
//! after changes settle.

use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::Notify;

use super::runtime::{ReloadReport, Runtime};

/// Quiet time after the last change before reloading: editors write a file in several steps
/// (vim: write `4913`, rename to `x~`, write `x`), and one reload should see the end result.
const SETTLE: Duration = Duration::from_millis(40);

/// Keeps the watch alive; dropping it stops watching.
pub struct WatchHandle {
    _watcher: notify::RecommendedWatcher,
    _task: tokio::task::JoinHandle<()>,
}

/// Called after every reload that changed something.
pub type ReloadHook = Arc<dyn Fn(&ReloadReport) + Send + Sync>;

/// Starts watching the runtime's folder. Must be called inside a tokio runtime.
pub fn watch(
    runtime: Arc<Runtime>,
    dir: &std::path::Path,
    on_reload: ReloadHook,
) -> Result<WatchHandle, notify::Error> {
    let changed = Arc::new(Notify::new());
    let signal = changed.clone();
    let mut watcher =
        notify::recommended_watcher(move |res: notify::Result<notify::Event>| match res {
            Ok(event) if !matches!(event.kind, notify::EventKind::Access(_)) => signal.notify_one(),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "watching the scripts folder failed"),
        })?;
    watcher.watch(dir, RecursiveMode::NonRecursive)?;
    let task = tokio::spawn(async move {
        loop {
            changed.notified().await;
            // Wait until the folder is quiet for SETTLE.
            while tokio::time::timeout(SETTLE, changed.notified())
                .await
                .is_ok()
            {}
            let rt = runtime.clone();
            match tokio::task::spawn_blocking(move || rt.reload()).await {
                Ok(Ok(report)) => {
                    log_report(&report);
                    on_reload(&report);
                }
                Ok(Err(e)) => crate::ops::observe::ReloadFailed { error: &e }.emit(),
                Err(e) => tracing::error!(error = %e, "reload panicked"),
            }
        }
    });
    Ok(WatchHandle {
        _watcher: watcher,
        _task: task,
    })
}

/// Logs what a reload did and counts it.
pub fn log_report(report: &ReloadReport) {
    crate::ops::observe::Reloaded {
        loaded: &report.loaded,
        removed: &report.removed,
        failed: report.errors.len(),
    }
    .emit();
    for error in &report.errors {
        crate::ops::observe::ScriptLoadFailed {
            path: &error.path,
            rendered: &error.render(),
            kept_previous: true,
        }
        .emit();
    }
}
