//! Hot reload: watch the scripts folder (not single files: editors save by rename), with its
//! `lib/` modules, and reload after changes settle.

use std::path::Path;
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
    // Event paths are absolute; compare them with the folder's real path.
    let root = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
    let mut watcher =
        notify::recommended_watcher(move |res: notify::Result<notify::Event>| match res {
            Ok(event) if matters(&root, &event) => signal.notify_one(),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "watching the scripts folder failed"),
        })?;
    // Recursive, for lib/ and its folders (also one created after the start).
    watcher.watch(dir, RecursiveMode::Recursive)?;
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

/// Could this change affect the scripts? Reads do not, and neither do hidden files and folders
/// (`.git/`, editors' `.name.swp` and temp files) however deep.
fn matters(root: &Path, event: &notify::Event) -> bool {
    if matches!(event.kind, notify::EventKind::Access(_)) {
        return false;
    }
    let hidden = |path: &Path| {
        path.strip_prefix(root).is_ok_and(|rel| {
            rel.components()
                .any(|c| c.as_os_str().to_string_lossy().starts_with('.'))
        })
    };
    event.paths.is_empty() || !event.paths.iter().all(|p| hidden(p))
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

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, EventKind, ModifyKind, RenameMode};

    fn event(kind: EventKind, paths: &[&str]) -> notify::Event {
        let mut e = notify::Event::new(kind);
        e.paths = paths.iter().map(|p| Path::new("/s").join(p)).collect();
        e
    }

    #[test]
    fn changes_in_lib_matter_and_hidden_files_do_not() {
        let root = Path::new("/s");
        let modify = EventKind::Modify(ModifyKind::Any);
        assert!(matters(root, &event(modify, &["bot.rhai"])));
        assert!(matters(root, &event(modify, &["lib/shop/prices.rhai"])));
        assert!(matters(
            root,
            &event(EventKind::Create(CreateKind::Folder), &["lib"])
        ));
        assert!(!matters(root, &event(modify, &[".git/index"])));
        assert!(!matters(root, &event(modify, &["lib/.helpers.rhai.swp"])));
        assert!(!matters(
            root,
            &event(
                EventKind::Access(notify::event::AccessKind::Any),
                &["bot.rhai"]
            )
        ));
        // An editor's save by rename: the temp file is hidden, the target is not.
        let rename = EventKind::Modify(ModifyKind::Name(RenameMode::Both));
        assert!(matters(
            root,
            &event(rename, &[".bot.rhai.tmp", "bot.rhai"])
        ));
        // Outside the folder (a path notify reports oddly): reload rather than miss it.
        let mut outside = event(modify, &[]);
        outside.paths = vec!["/elsewhere/.x".into()];
        assert!(matters(root, &outside));
    }
}
