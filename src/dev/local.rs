//! A bot running locally against the fake LINE API: the real runtime, host API and outbox, a
//! `:memory:` store, and one event at a time. `simulate` and `test` are built on it.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::task::JoinHandle;

use crate::cli::LocalSettings;
use crate::config::Limits;
use crate::daemon::{Bot, BotParts, DaemonError};
use crate::dev::fakeline::{Call, FakeLine};
use crate::line::{LineClient, LineConfig};
use crate::pipeline::outbox::FailedHook;
use crate::pipeline::schedule::{self, Fired, Timers};
use crate::pipeline::script::host::LogHook;
use crate::pipeline::script::web::{Web, WebConfig};
use crate::pipeline::script::{LoadError, RunError, Runtime};
use crate::pipeline::webhook::Event;
use crate::store::{self, Store, Timer};

/// How long queued pushes may take to reach the fake before a run gives up waiting.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// The token the local LINE client sends; the fake accepts any.
pub const DEV_TOKEN: &str = "linebotd-dev-token";

/// Why a local bot could not start.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error(
        "cannot read the scripts folder {path}: {source} (pass the folder of your *.rhai files)"
    )]
    Scripts {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start the fake LINE API: {0}")]
    Fake(std::io::Error),
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("{0}")]
    Web(#[from] crate::pipeline::script::web::WebError),
    #[error("{0}")]
    Bot(String),
    #[error("{0}")]
    Line(#[from] crate::line::LineError),
    #[error("{0}")]
    Store(#[from] store::StoreError),
    /// Scripts that failed to compile, each already rendered with its caret.
    #[error("{}", .0.iter().map(LoadError::render).collect::<Vec<_>>().join("\n"))]
    Load(Vec<LoadError>),
}

/// What a local bot runs under: the daemon's limits and web settings, from the same flags,
/// environment variables and `linebotd.toml`.
#[derive(Debug, Clone, Default)]
pub struct LocalSetup {
    pub web: WebConfig,
    pub limits: Limits,
    /// `timezone` from the configuration file (UTC without one).
    pub timezone: chrono_tz::Tz,
    /// `linebotd test`: web calls are answered by `http_fake` only, never the network.
    pub fake_web: bool,
}

impl LocalSetup {
    pub fn load(
        settings: &LocalSettings,
        scripts: &Path,
        fake_web: bool,
    ) -> Result<Self, LocalError> {
        let local = crate::config::load_local(settings.config.as_deref(), scripts, &settings.web)?;
        Ok(Self {
            web: local.web,
            limits: local.limits,
            timezone: local.timezone,
            fake_web,
        })
    }
}

/// A script log line, and how many LINE calls had been made when it was written (to print it
/// in the right place among the calls).
#[derive(Debug, Clone)]
pub struct LogLine {
    pub script: String,
    pub text: String,
    pub after_calls: usize,
}

/// What one event did.
#[derive(Debug, Default)]
pub struct Report {
    pub handlers_run: usize,
    pub errors: Vec<RunError>,
    pub calls: Vec<Call>,
    pub logs: Vec<LogLine>,
    /// Pushes still queued when the wait ended (0 unless a failure armed with `line_fails` made
    /// the outbox wait to try again).
    pub undelivered: u64,
}

pub struct LocalBot {
    /// Shared so test helpers can reach it without holding the test's lock.
    pub fake: Arc<FakeLine>,
    pub runtime: Arc<Runtime>,
    pub store: Arc<dyn Store>,
    /// Timers the scripts set; they run only when [`LocalBot::run_timers_blocking`] says so.
    pub timers: Arc<Timers>,
    logs: Arc<Mutex<Vec<LogLine>>>,
    /// The `on_delivery_failed` runs started so far, one per failed delivery.
    failure_handlers: Arc<Mutex<Vec<JoinHandle<()>>>>,
    sender: JoinHandle<()>,
}

impl Drop for LocalBot {
    fn drop(&mut self) {
        self.sender.abort();
    }
}

impl LocalBot {
    /// Loads the scripts of `dir` with the daemon's engine and limits. Any compile error fails.
    /// Must run inside a tokio runtime; handlers then run on the calling (blocking) thread.
    pub async fn start(dir: &Path, setup: &LocalSetup) -> Result<Self, LocalError> {
        let fake = FakeLine::start().await.map_err(LocalError::Fake)?;
        let mut config = LineConfig::new(fake.url(), fake.url(), DEV_TOKEN);
        config.rate_limit_per_sec = 0;
        config.loading_rate_limit_per_sec = 0;
        let line = LineClient::new(config)?;
        let logs = Arc::new(Mutex::new(Vec::<LogLine>::new()));
        let (log_sink, calls) = (logs.clone(), fake.calls());
        let on_log: LogHook = Arc::new(move |script: &str, text: &str| {
            let line = LogLine {
                script: script.to_owned(),
                text: text.to_owned(),
                after_calls: calls.len(),
            };
            log_sink
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(line);
        });
        let bot = Bot::build(BotParts {
            store: store::open(":memory:")?,
            line,
            web: if setup.fake_web {
                Web::fake(setup.web.clone())
            } else {
                Web::real(setup.web.clone())?
            },
            scripts_dir: dir.to_owned(),
            limits: setup.limits.clone(),
            timezone: setup.timezone,
            reply_fallback_push: true,
            on_log: Some(on_log),
        })
        .await
        .map_err(|e| match e {
            DaemonError::Scripts { path, source } => LocalError::Scripts { path, source },
            other => LocalError::Bot(other.to_string()),
        })?;
        let errors: Vec<LoadError> = bot.runtime.scripts().errors.values().cloned().collect();
        if !errors.is_empty() {
            return Err(LocalError::Load(errors));
        }
        // Like `Bot::deliver`, keeping each `on_delivery_failed` run so a step can wait for it.
        let failure_handlers = Arc::new(Mutex::new(Vec::new()));
        let (runtime, handlers) = (bot.runtime.clone(), failure_handlers.clone());
        let on_failed: FailedHook = Arc::new(move |delivery, error| {
            let run = runtime.delivery_failed(delivery, error);
            lock(&handlers).push(run);
        });
        let sender = tokio::spawn(bot.outbox.clone().run(bot.line.clone(), on_failed));
        Ok(Self {
            fake: Arc::new(fake),
            runtime: bot.runtime,
            store: bot.store,
            timers: bot.timers,
            logs,
            failure_handlers,
            sender,
        })
    }

    /// `text` with the exposed environment values redacted, for printing.
    pub fn redact(&self, text: &str) -> String {
        self.runtime.host().web.redact(text).into_owned()
    }

    /// How the scripts reach the web (the fakes of `linebotd test`).
    pub fn web(&self) -> Arc<Web> {
        self.runtime.host().web.clone()
    }

    /// Names of the loaded scripts.
    pub fn script_names(&self) -> Vec<String> {
        let set = self.runtime.scripts();
        set.scripts.iter().map(|s| s.name.to_string()).collect()
    }

    /// Runs one event through every handler and waits until its pushes reached the fake.
    /// Blocking: call it from a blocking thread (it waits on LINE calls).
    pub fn send_blocking(&self, event: Value) -> Result<Report, String> {
        // LINE only sends events from users it knows: they are friends of the bot from now on.
        self.fake.saw_event(&event);
        let event =
            Event::from_value(event).ok_or("an event must be an object with a string `type`")?;
        self.run_blocking(|runtime| {
            let dispatched = runtime.dispatch(Arc::new(event), Default::default());
            (dispatched.handlers_run, dispatched.errors)
        })
    }

    /// Calls `function()` of every script that defines it with no arguments, as a schedule
    /// does, and waits until its pushes reached the fake.
    pub fn call_blocking(&self, function: &str) -> Result<Report, String> {
        let set = self.runtime.scripts();
        let scripts: Vec<_> = set
            .scripts
            .iter()
            .filter(|s| s.defines(function, 0))
            .collect();
        if scripts.is_empty() {
            return Err(format!("no script defines {function}() without parameters"));
        }
        self.run_blocking(|runtime| {
            let errors = scripts
                .iter()
                .filter_map(|s| {
                    let seed = format!("test/{}/{function}", s.name);
                    runtime.call(s, function, Vec::new(), None, seed).err()
                })
                .collect();
            (scripts.len(), errors)
        })
    }

    /// Timers not yet run, earliest first.
    pub fn pending_timers(&self) -> Result<Vec<Timer>, String> {
        self.timers
            .pending(schedule::timers::MAX_PENDING as usize)
            .map_err(|e| e.to_string())
    }

    /// Runs every pending timer now, earliest first, as if its time had come (timers they set
    /// stay pending), and waits until their pushes reached the fake. A timer whose call fails
    /// or whose function is gone is an error.
    pub fn run_timers_blocking(&self) -> Result<Report, String> {
        let due = self.pending_timers()?;
        let mut failure = None;
        let report = self.run_blocking(|runtime| {
            for timer in &due {
                let fired = schedule::fire_timer(runtime, timer);
                self.timers.finish(timer, &fired);
                if let Fired::Failed(why) | Fired::Gone(why) = fired {
                    failure.get_or_insert(format!(
                        "timer {}(data) of {} failed: {why}",
                        timer.function, timer.script
                    ));
                }
            }
            (due.len(), Vec::new())
        })?;
        match failure {
            Some(why) => Err(why),
            None => Ok(report),
        }
    }

    fn run_blocking(
        &self,
        run: impl FnOnce(&Runtime) -> (usize, Vec<crate::pipeline::script::RunError>),
    ) -> Result<Report, String> {
        let calls = self.fake.calls();
        let first_call = calls.len();
        let first_log = self.logs.lock().unwrap_or_else(|p| p.into_inner()).len();
        let (handlers_run, errors) = run(&self.runtime);
        let undelivered = self.wait_drained()?;
        let logs = lock(&self.logs);
        Ok(Report {
            handlers_run,
            errors,
            calls: calls.after(first_call),
            logs: logs
                .iter()
                .skip(first_log)
                .map(|l| LogLine {
                    after_calls: l.after_calls.saturating_sub(first_call),
                    ..l.clone()
                })
                .collect(),
            undelivered,
        })
    }

    /// Polls the outbox until nothing is pending and the `on_delivery_failed` of every failed
    /// delivery has run; returns what is still pending at the deadline.
    fn wait_drained(&self) -> Result<u64, String> {
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        loop {
            // Handlers first, then the outbox: what a finished handler queued is then counted
            // as pending. A delivery is marked failed before its handler starts, so a failure
            // without a handler yet shows as fewer handlers than failures.
            let (started, finished) = {
                let handlers = lock(&self.failure_handlers);
                let finished = handlers.iter().all(JoinHandle::is_finished);
                (handlers.len() as u64, finished)
            };
            let (pending, failed) = self.store.outbox_counts().map_err(|e| e.to_string())?;
            let handled = finished && started >= failed;
            if (pending == 0 && handled) || Instant::now() >= deadline {
                return Ok(pending);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Each holder makes one push or one read: a panic leaves nothing half-done.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl From<LocalError> for crate::cmd::CommandError {
    fn from(e: LocalError) -> Self {
        Self::Local(e.to_string())
    }
}
