//! What every way of running a bot is made of: the store, the LINE client, the outbox, and the
//! scripts with their host API. `run` and `dev` put the inbox, dispatcher and scheduler around
//! it ([`super::start_pipeline`]); `simulate` and `test` drive it one event at a time.

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::Config;
use crate::line::LineClient;
use crate::ops::observe;
use crate::pipeline::outbox::Outbox;
use crate::pipeline::schedule::{self, TimerLoop, Timers};
use crate::pipeline::script::host::LogHook;
use crate::pipeline::script::web::Web;
use crate::pipeline::script::{engine, Host, Limits, Runtime};
use crate::store::{self, Store};

use super::DaemonError;

/// The most timers that run at once.
const MAX_PARALLEL_TIMERS: usize = 16;

/// A bot's parts, ready to handle events.
pub struct Bot {
    pub store: Arc<dyn Store>,
    pub line: LineClient,
    pub outbox: Arc<Outbox>,
    /// The timers scripts set with `later` and `at`; [`Bot::fire_timers`] fires them.
    pub timers: Arc<Timers>,
    pub runtime: Arc<Runtime>,
}

/// What a bot is built from.
pub struct BotParts {
    pub store: Arc<dyn Store>,
    pub line: LineClient,
    pub web: Web,
    pub scripts_dir: PathBuf,
    pub limits: Limits,
    /// The zone of schedules that name none.
    pub timezone: chrono_tz::Tz,
    /// `reply` falls back to `push` when the reply token is missing, used or expired.
    pub reply_fallback_push: bool,
    /// Where script log lines go besides the log (`simulate` and `test` print them).
    pub on_log: Option<LogHook>,
}

impl Bot {
    /// Loads the scripts (off the async threads); a script that fails to compile is reported
    /// in `runtime.scripts().errors`, the others load. Must run inside a tokio runtime.
    pub async fn build(parts: BotParts) -> Result<Self, DaemonError> {
        let outbox = Outbox::new(parts.store.clone());
        let timers = Timers::new(parts.store.clone());
        let host = Arc::new(Host {
            line: Host::line_client(parts.line.clone()),
            tokio: tokio::runtime::Handle::current(),
            reply_fallback_push: parts.reply_fallback_push,
            store: parts.store.clone(),
            outbox: outbox.clone(),
            timers: timers.clone(),
            on_log: parts.on_log,
            web: Arc::new(parts.web),
            on_dispatched: Default::default(),
            on_fallback: Default::default(),
        });
        let (dir, limits, tz) = (parts.scripts_dir.clone(), parts.limits, parts.timezone);
        let runtime = tokio::task::spawn_blocking(move || {
            let engines = engine::build(&limits).with_timezone(tz);
            Runtime::with_engines(&dir, engines, limits, host)
        })
        .await
        .map_err(|e| DaemonError::Serve(std::io::Error::other(e)))?
        .map_err(|source| DaemonError::Scripts {
            path: parts.scripts_dir,
            source,
        })?;
        Ok(Self {
            store: parts.store,
            line: parts.line,
            outbox,
            timers,
            runtime: Arc::new(runtime),
        })
    }

    /// Delivers the outbox until the runtime stops; a delivery LINE refuses for good is handed
    /// to the scripts' `on_delivery_failed`.
    pub fn deliver(&self) -> tokio::task::JoinHandle<()> {
        let runtime = self.runtime.clone();
        tokio::spawn(self.outbox.clone().run(
            self.line.clone(),
            Arc::new(move |delivery, error| {
                runtime.delivery_failed(delivery, error);
            }),
        ))
    }

    /// Fires due timers until the returned loop is dropped. A timer more than `grace` late
    /// (due while the daemon was down) is dropped with a log line, like a missed cron run.
    pub fn fire_timers(&self, grace: std::time::Duration) -> TimerLoop {
        // A run holds its timer for its time limit and a margin; past that it is taken as
        // dead (the daemon stopped mid-run) and the timer runs again.
        let lease = std::time::Duration::from_millis(self.runtime.limits().max_call_ms)
            + std::time::Duration::from_secs(30);
        self.timers.start(
            schedule::timer_runner(self.runtime.clone()),
            grace,
            lease,
            // Timers share the machine with handlers: a burst of them waits its turn.
            self.runtime.limits().workers.clamp(1, MAX_PARALLEL_TIMERS),
        )
    }

    /// Logs the scripts that failed to load; with `strict`, any failure is an error.
    pub fn report_load(&self, strict: bool) -> Result<(), DaemonError> {
        let set = self.runtime.scripts();
        for error in set.errors.values() {
            observe::ScriptLoadFailed {
                path: &error.path,
                rendered: &error.render(),
                kept_previous: false,
            }
            .emit();
        }
        if strict && !set.errors.is_empty() {
            let details = set
                .errors
                .values()
                .map(|e| e.render())
                .collect::<Vec<_>>()
                .join("\n");
            return Err(DaemonError::Strict {
                count: set.errors.len(),
                details,
            });
        }
        let names: Vec<&str> = set.scripts.iter().map(|s| &*s.name).collect();
        if set.errors.is_empty() {
            tracing::info!(scripts = ?names, "scripts loaded");
        } else {
            tracing::warn!(scripts = ?names, failed = set.errors.len(), "started with the scripts that loaded; fix the others and save to reload");
        }
        Ok(())
    }
}

/// The LINE client for `config`.
pub fn line_client(config: &Config) -> Result<LineClient, crate::line::LineError> {
    LineClient::new(config.line())
}

/// Opens the store off the async threads.
pub async fn open_store(
    path: &str,
    options: store::Options,
) -> Result<Arc<dyn Store>, store::StoreError> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || store::open_with(&path, options))
        .await
        .map_err(|e| store::StoreError::Database(e.to_string()))?
}
