//! `linebotd run`: builds the pipeline from a [`Config`] and serves until SIGINT/SIGTERM.
//!
//! ingress (verify, parse) → inbox (durable, group commit) → dispatcher (per-conversation
//! order) → script runtime → LINE (reply now; push/multicast/broadcast through the outbox).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::admin::{self, AdminState};
use crate::config::Config;
use crate::dispatch::{self, Dispatcher};
use crate::inbox;
use crate::line::{LineClient, LineConfig};
use crate::observe;
use crate::outbox::Outbox;
use crate::schedule::{LastRuns, RunFn, Schedule, Scheduler};
use crate::script::web::Web;
use crate::script::{host, watch, Host, Runtime};
use crate::store::{self, Store};
use crate::webhook::{self, Outcome, OutcomeHook, WebhookState};

/// A start-up or run-time failure of the daemon as a whole.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot listen on {addr}: {source} (is another process using the port? choose another with --listen)")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot read the scripts folder {path}: {source} (create it, or point --scripts at your scripts)")]
    Scripts {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{count} script(s) failed to load and --strict is set:\n{details}")]
    Strict { count: usize, details: String },
    #[error("{0}")]
    Line(#[from] crate::line::LineError),
    #[error("{0}")]
    Store(#[from] store::StoreError),
    #[error("cannot watch the scripts folder: {0} (use --no-watch to run without hot reload)")]
    Watch(#[from] notify::Error),
    #[error("server failed: {0}")]
    Serve(std::io::Error),
    #[error("{0}")]
    Web(#[from] crate::script::web::WebError),
}

/// The LINE client for `config`.
pub fn line_client(config: &Config) -> Result<LineClient, crate::line::LineError> {
    LineClient::new(LineConfig::from_config(config))
}

/// Opens the store off the async threads.
pub async fn open_store(
    path: &str,
    options: store::Options,
) -> Result<Arc<dyn Store>, store::StoreError> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || store::open_with(&path, options))
        .await
        .map_err(|e| store::StoreError::Sqlite(e.to_string()))?
}

/// Loads the scripts and logs what failed; with `strict`, any failure is an error.
pub async fn load_runtime(config: &Config, host: Arc<Host>) -> Result<Arc<Runtime>, DaemonError> {
    let dir = config.scripts_dir.clone();
    let limits = config.limits.clone();
    let tz: chrono_tz::Tz = config.timezone.parse().unwrap_or(chrono_tz::UTC);
    let runtime = tokio::task::spawn_blocking(move || {
        let engines = crate::script::engine::build(&limits).with_timezone(tz);
        Runtime::with_engines(&dir, engines, limits, host)
    })
    .await
    .map_err(|e| DaemonError::Serve(std::io::Error::other(e)))?
    .map_err(|source| DaemonError::Scripts {
        path: config.scripts_dir.clone(),
        source,
    })?;
    let set = runtime.scripts();
    for error in set.errors.values() {
        observe::ScriptLoadFailed {
            path: &error.path,
            rendered: &error.render(),
            kept_previous: false,
        }
        .emit();
    }
    if config.strict && !set.errors.is_empty() {
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
    Ok(Arc::new(runtime))
}

/// The running pipeline behind the HTTP server.
pub struct Pipeline {
    pub runtime: Arc<Runtime>,
    pub dispatcher: Dispatcher,
    pub inbox: Arc<inbox::Inbox>,
    pub store: Arc<dyn Store>,
    pub scheduler: Arc<Scheduler>,
}

impl Pipeline {
    /// Brings the scheduler in line with a reload: changed scripts replace their schedules,
    /// deleted ones stop.
    pub fn apply_reload(&self, report: &crate::script::ReloadReport) {
        let set = self.runtime.scripts();
        for name in &report.loaded {
            if let Some(script) = set.scripts.iter().find(|s| &*s.name == name) {
                self.scheduler.replace(name, script.schedules.clone());
            }
        }
        for name in &report.removed {
            self.scheduler.replace(name, Vec::new());
        }
    }
}

/// The dispatcher's journal: the inbox writer, once it exists.
#[derive(Default)]
struct InboxJournal(std::sync::OnceLock<Arc<inbox::Inbox>>);

impl dispatch::Journal for InboxJournal {
    fn record(&self, mark: store::Mark) {
        match self.0.get() {
            Some(inbox) => inbox.mark(mark),
            None => tracing::error!(seq = mark.seq(), "inbox writer missing; mark lost"),
        }
    }

    fn record_durably(&self, mark: store::Mark) {
        match self.0.get() {
            Some(inbox) => inbox.mark_durably(mark),
            None => tracing::error!(seq = mark.seq(), "inbox writer missing; mark lost"),
        }
    }
}

/// Last run times of schedules, kept in the store so a restart can make up a missed run.
struct StoreLastRuns(Arc<dyn Store>);

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

/// A scheduled run: the script's function, no arguments, same limits and host API as handlers.
fn schedule_runner(runtime: Arc<Runtime>) -> RunFn {
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

/// Builds everything between the webhook and LINE, and re-queues events that were acknowledged
/// but not handled before the last stop.
pub async fn start_pipeline(config: &Config) -> Result<Pipeline, DaemonError> {
    let sync = config.store_sync;
    let store = open_store(&config.store, store::Options { sync }).await?;
    let line = line_client(config)?;
    let outbox = Outbox::new(store.clone());
    let host = Arc::new(Host {
        line: Host::line_client(line.clone()),
        runtime: tokio::runtime::Handle::current(),
        reply_fallback_push: config.reply_fallback_push,
        store: store.clone(),
        outbox: outbox.clone(),
        on_log: None,
        web: Arc::new(Web::real(config.web.clone())?),
    });
    let runtime = load_runtime(config, host).await?;

    // The dispatcher journals each event's progress through the writer, and the writer hands
    // new events to the dispatcher: the writer is set once both exist.
    let journal = Arc::new(InboxJournal::default());
    let dispatcher = Dispatcher::start(
        runtime.clone(),
        store.clone(),
        dispatch::Limits::new(config.limits.workers),
        journal.clone(),
    );
    let live = dispatcher.clone();
    let inbox = Arc::new(inbox::Inbox::with_hook(
        store.clone(),
        4096,
        Box::new(move |stored| live.offer(stored)),
    ));
    let _ = journal.0.set(inbox.clone());

    let failed_rt = runtime.clone();
    tokio::spawn(outbox.run(
        line,
        Arc::new(move |delivery, error| {
            let rt = failed_rt.clone();
            let arg = host::from_json(&serde_json::json!({
                "id": delivery.retry_key,
                "kind": delivery.kind.as_str(),
                "to": delivery.payload.get("to"),
                "messages": delivery.payload.get("messages"),
                "script": delivery.source,
                "error": error,
            }));
            let seed = format!("failed/{}", delivery.retry_key);
            tokio::task::spawn_blocking(move || rt.call_all("on_delivery_failed", arg, &seed));
        }),
    ));

    let scheduler = Arc::new(Scheduler::start(
        schedule_runner(runtime.clone()),
        Arc::new(StoreLastRuns(store.clone())),
        config.schedule_grace,
    ));
    for script in &runtime.scripts().scripts {
        scheduler.replace(&script.name, script.schedules.clone());
    }

    tokio::spawn(inbox::prune_daily(store.clone()));
    Ok(Pipeline {
        runtime,
        dispatcher,
        inbox,
        store,
        scheduler,
    })
}

/// Runs the daemon until a shutdown signal.
pub async fn run(config: Config) -> Result<(), DaemonError> {
    let listener = bind(config.listen).await?;
    serve(config, listener, |app| app).await
}

/// Binds the listening socket (port 0 picks a free port; see `local_addr`).
pub async fn bind(addr: std::net::SocketAddr) -> Result<TcpListener, DaemonError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| DaemonError::Bind { addr, source })
}

/// Runs the daemon on `listener` until a shutdown signal. `customize` may add routes or layers
/// to the router (`linebotd dev` adds its `/dev/...` routes).
pub async fn serve(
    config: Config,
    listener: TcpListener,
    customize: impl FnOnce(axum::Router) -> axum::Router,
) -> Result<(), DaemonError> {
    let pipeline = Arc::new(start_pipeline(&config).await?);
    let _watch = if config.watch {
        let p = pipeline.clone();
        let on_reload =
            Arc::new(move |report: &crate::script::ReloadReport| p.apply_reload(report));
        Some(watch::watch(
            pipeline.runtime.clone(),
            &config.scripts_dir,
            on_reload,
        )?)
    } else {
        None
    };

    let shutting_down = Arc::new(AtomicBool::new(false));
    let state = WebhookState {
        channel_secret: config.channel_secret.as_bytes().into(),
        max_body: config.max_body,
        sink: Arc::new(inbox::InboxSink {
            inbox: pipeline.inbox.clone(),
        }),
        shutting_down: shutting_down.clone(),
        on_outcome: Some(webhook_hook()),
    };
    let app = customize(
        webhook::router(state, &config.webhook_path).merge(admin::router(AdminState {
            runtime: pipeline.runtime.clone(),
            store: pipeline.store.clone(),
            shutting_down: shutting_down.clone(),
            token: config.admin_token.as_deref().map(Arc::from),
        })),
    );
    let local = listener.local_addr().map_err(DaemonError::Serve)?;
    tracing::info!("listening on http://{local}{}", config.webhook_path);

    let grace = config.shutdown_grace;
    let drain = pipeline.dispatcher.clone();
    let stop = async move {
        shutdown_signal().await;
        // Handlers and clients share one grace period: whatever a client is doing, the server
        // closes its connection when the period ends.
        let deadline = tokio::time::Instant::now() + grace;
        // Keep answering (503) while handlers finish, so LINE redelivers instead of seeing a
        // dropped connection; a second signal exits at once.
        shutting_down.store(true, Ordering::SeqCst);
        // Said only now, so that whoever reads it knows new webhooks get 503.
        tracing::info!("shutdown signal received");
        tokio::spawn(async {
            shutdown_signal().await;
            tracing::warn!("second signal: exiting now");
            std::process::exit(130);
        });
        if !drain.drain(grace).await {
            tracing::warn!(
                waiting = drain.in_flight(),
                "grace period over; unfinished events are handled after restart"
            );
        }
        deadline
    };
    webhook::server::serve(listener, app, client_limits(&config), stop).await;
    finish(&pipeline).await;
    Ok(())
}

/// Reports every webhook outcome except accepted requests with events: the sink reports those,
/// as `accepted` or `duplicate`.
fn webhook_hook() -> OutcomeHook {
    Arc::new(|outcome, events| {
        if !(outcome == Outcome::Accepted && events > 0) {
            observe::WebhookReceived { outcome, events }.emit();
        }
    })
}

/// After the server stopped: commit the done-marks of the handlers that finished, and say what
/// is left for the next start (the store keeps it; nothing is lost).
async fn finish(pipeline: &Pipeline) {
    pipeline.inbox.flush().await;
    let store = pipeline.store.clone();
    let left =
        tokio::task::spawn_blocking(move || (store.inbox_backlog(), store.outbox_counts())).await;
    match left {
        Ok((Ok(backlog), Ok((pending, failed)))) => tracing::info!(
            unhandled_events = backlog,
            pending_deliveries = pending,
            failed_deliveries = failed,
            "linebotd stopped; unhandled events and pending deliveries resume at the next start"
        ),
        _ => tracing::info!("linebotd stopped"),
    }
}

/// Resolves on the next SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// The configured client limits, with the connection cap lowered when the open-file limit
/// cannot hold it beside the store and the connections to LINE.
fn client_limits(config: &Config) -> webhook::ClientLimits {
    let mut limits = config.clients;
    let nofile = webhook::server::open_file_limit();
    let (cap, lowered) = webhook::server::fitting_cap(limits.max_connections, nofile);
    if lowered {
        tracing::warn!(
            max_connections = limits.max_connections,
            open_file_limit = nofile,
            using = cap,
            "max_connections lowered to fit the open-file limit; raise it (ulimit -n, systemd LimitNOFILE=) to allow more"
        );
    }
    limits.max_connections = cap;
    limits
}
