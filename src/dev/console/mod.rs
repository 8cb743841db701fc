//! The browser console of `linebotd dev`: a LINE-like chat that renders what the bot sends
//! (flex, templates, quick replies, imagemaps) with working buttons, beside a live log of every
//! webhook, LINE API call, script error and reload.
//!
//! It has its own listener, so the daemon's router (what `run` serves) never carries it, and a
//! browser tab left open never holds up the daemon's shutdown. The page is plain HTML, CSS and
//! JavaScript compiled into the binary: nothing is fetched at run time and nothing is built.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::header;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;

use crate::daemon::Pipeline;
use crate::dev::fakeline::FakeLine;
use crate::dev::notes::Notes;

mod api;
pub mod log;

pub use log::Log;

/// The page and its parts, served as they are.
const ASSETS: &[(&str, &str, &str)] = &[
    ("/", "text/html; charset=utf-8", include_str!("index.html")),
    (
        "/console.css",
        "text/css; charset=utf-8",
        include_str!("console.css"),
    ),
    (
        "/render.js",
        "text/javascript; charset=utf-8",
        include_str!("render.js"),
    ),
    (
        "/console.js",
        "text/javascript; charset=utf-8",
        include_str!("console.js"),
    ),
];

/// What the console's requests act on.
pub struct Console {
    pub log: Arc<Log>,
    fake: Arc<FakeLine>,
    /// The dev daemon's URL and webhook path, where events are posted as signed webhooks.
    daemon: String,
    webhook_path: String,
    client: reqwest::Client,
}

impl Console {
    /// A console for the daemon at `daemon` run with `config`, whose LINE is `fake`; its log
    /// follows the fake's calls from now on.
    pub fn new(fake: Arc<FakeLine>, config: &crate::config::Config, daemon: String) -> Arc<Self> {
        let log = Arc::new(Log::new(&config.scripts_dir));
        log.follow_calls(fake.calls());
        Arc::new(Self {
            log,
            fake,
            daemon,
            webhook_path: config.webhook_path.clone(),
            client: reqwest::Client::new(),
        })
    }

    /// Hooks the log to the pipeline: failed handlers and unhandled events (told to `notes`
    /// too, for `chat`), reply fallbacks, reloads, and the load errors of the start.
    pub fn attach(&self, pipeline: &Pipeline, notes: &Arc<Notes>) {
        let host = pipeline.bot.runtime.host();
        let (log, noted) = (self.log.clone(), notes.hook());
        // Set once, right after the bot is built (events replayed from the store at start
        // may come before it and go unnoted).
        let _ = host.on_dispatched.set(Arc::new(move |event, dispatched| {
            noted(event, dispatched);
            if dispatched.handlers_run == 0 {
                log.note(crate::dev::notes::unhandled(&event.kind));
            }
            for error in &dispatched.errors {
                log.run_error(error);
            }
        }));
        let log = self.log.clone();
        let _ = host
            .on_fallback
            .set(Arc::new(move |to, why| log.fallback(to, why)));
        let log = self.log.clone();
        let _ = pipeline
            .on_reload
            .set(Arc::new(move |report| log.reload(report)));
        for error in pipeline.bot.runtime.scripts().errors.values() {
            self.log.load_error(error);
        }
    }

    /// Sends `event` to the daemon the way LINE does.
    async fn post(&self, event: serde_json::Value) -> Result<(), String> {
        crate::dev::chat::send_to(&self.client, &self.daemon, &self.webhook_path, event).await
    }

    pub fn router(self: &Arc<Self>) -> Router {
        let mut router = Router::new()
            .route("/api/log", get(log::stream).with_state(self.log.clone()))
            .route("/api/send", post(api::send))
            .route("/api/tap", post(api::tap))
            .route("/api/image", post(api::image));
        for &(path, content_type, body) in ASSETS {
            let page = move || async move { ([(header::CONTENT_TYPE, content_type)], body) };
            router = router.route(path, get(page));
        }
        // A picked photo may be large; LINE takes images up to 10 MB.
        router
            .layer(axum::extract::DefaultBodyLimit::max(10 * 1024 * 1024))
            .with_state(self.clone())
    }
}

/// Where the console listens unless `--console` says: beside `--listen`, on the next port
/// (port 0, "pick one", stays 0).
pub fn default_addr(listen: SocketAddr) -> SocketAddr {
    let port = match listen.port() {
        0 => 0,
        port => port.wrapping_add(1),
    };
    SocketAddr::new(listen.ip(), port)
}

/// Serves `router` on `listener` until the process ends.
pub fn serve(listener: TcpListener, router: Router) {
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::warn!(error = %e, "the browser console stopped");
        }
    });
}

/// `GET /` on the daemon's own port: sends a browser to the console.
pub fn redirect(console_url: String) -> Router {
    Router::new().route(
        "/",
        get(move || async move { Redirect::temporary(&console_url).into_response() }),
    )
}

/// The console's URL as a browser reaches it: a wildcard address is reached on loopback.
pub fn url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".parse().unwrap_or(ip),
        ip if ip.is_unspecified() => "::1".parse().unwrap_or(ip),
        ip => ip,
    };
    format!("http://{}/", SocketAddr::new(ip, addr.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_sits_on_the_port_after_the_daemon() {
        let listen: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert_eq!(default_addr(listen).to_string(), "127.0.0.1:8081");
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        assert_eq!(default_addr(any).port(), 0);
        let wild: SocketAddr = "0.0.0.0:9000".parse().unwrap();
        assert_eq!(url(wild), "http://127.0.0.1:9000/");
    }
}
