//! `linebotd run`: builds the pipeline from a [`Config`] and serves until SIGINT/SIGTERM.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::config::Config;
use crate::webhook::{self, Event, EventSink, SinkError, WebhookState};

/// A start-up or run-time failure of the daemon as a whole.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot listen on {addr}: {source} (is another process using the port? choose another with --listen)")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("server failed: {0}")]
    Serve(std::io::Error),
}

/// Bounded hand-off to the dispatcher: a full queue makes the webhook wait (back-pressure),
/// never grow without bound.
struct ChannelSink(mpsc::Sender<Event>);

impl EventSink for ChannelSink {
    fn accept(
        &self,
        events: Vec<Event>,
    ) -> Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send + '_>> {
        Box::pin(async move {
            for event in events {
                self.0
                    .send(event)
                    .await
                    .map_err(|_| SinkError("dispatcher stopped".into()))?;
            }
            Ok(())
        })
    }
}

/// Runs the daemon until a shutdown signal.
pub async fn run(config: Config) -> Result<(), DaemonError> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| DaemonError::Bind {
            addr: config.listen,
            source,
        })?;
    let (tx, mut rx) = mpsc::channel::<Event>(4096);
    tokio::spawn(async move {
        while let Some(event) = rx.recv().await {
            tracing::debug!(event_type = %event.kind, id = ?event.webhook_event_id, "event received");
        }
    });
    let state = WebhookState {
        channel_secret: config.channel_secret.as_bytes().into(),
        max_body: config.max_body,
        sink: Arc::new(ChannelSink(tx)),
        shutting_down: Arc::new(AtomicBool::new(false)),
        on_outcome: None,
    };
    let app = webhook::router(state, &config.webhook_path);
    let local = listener.local_addr().map_err(DaemonError::Serve)?;
    tracing::info!("listening on http://{local}{}", config.webhook_path);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(DaemonError::Serve)?;
    tracing::info!("linebotd stopped");
    Ok(())
}

/// Resolves on the first SIGINT or SIGTERM.
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
    tracing::info!("shutdown signal received");
}
