//! `linebotd run`: builds the pipeline from a [`Config`] and serves until SIGINT/SIGTERM.
//!
//! ingress (verify, parse) → inbox (durable, group commit) → dispatcher (per-conversation
//! order) → script runtime → LINE (reply now; push/multicast/broadcast through the outbox).
//!
//! The composition root: [`Bot`] builds what every way of running a bot shares (`run`, `dev`,
//! `simulate`, `test`), [`start_pipeline`] adds the inbox, dispatcher and scheduler around it,
//! [`app`] is the whole HTTP surface, and [`serve`] runs it all until a signal.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::config::Config;
use crate::pipeline::script::watch;
use crate::pipeline::webhook;
use crate::store;

mod app;
mod bot;
mod pipeline;

pub use app::app;
pub use bot::{line_client, open_store, Bot, BotParts};
pub use pipeline::{start_pipeline, Pipeline};

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
    Web(#[from] crate::pipeline::script::web::WebError),
}

/// Runs the daemon until a shutdown signal.
pub async fn run(config: Config) -> Result<(), DaemonError> {
    let listener = bind(config.listen).await?;
    serve(config, listener, |app, _| app).await
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
    customize: impl FnOnce(axum::Router, &Arc<Pipeline>) -> axum::Router,
) -> Result<(), DaemonError> {
    let pipeline = Arc::new(start_pipeline(&config).await?);
    let _watch = if config.watch {
        let p = pipeline.clone();
        let on_reload =
            Arc::new(move |report: &crate::pipeline::script::ReloadReport| p.apply_reload(report));
        Some(watch::watch(
            pipeline.bot.runtime.clone(),
            &config.scripts_dir,
            on_reload,
        )?)
    } else {
        None
    };

    let shutting_down = Arc::new(AtomicBool::new(false));
    let app = customize(
        app::app(&config, &pipeline, shutting_down.clone()),
        &pipeline,
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

/// After the server stopped: commit the done-marks of the handlers that finished, and say what
/// is left for the next start (the store keeps it; nothing is lost).
async fn finish(pipeline: &Pipeline) {
    pipeline.inbox.flush().await;
    let store = pipeline.bot.store.clone();
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
