//! The operator's endpoints: `GET /metrics` (Prometheus text) and `GET /readyz`.
//!
//! With an admin token configured (`LINEBOTD_ADMIN_TOKEN` / `admin_token`):
//! - `/metrics` needs `Authorization: Bearer <token>`, else 401;
//! - `/readyz` without an `Authorization` header still answers the bare status (200/503 with
//!   `{"status": …}` only), so load balancers and orchestrators need no secret; the problem
//!   list (script names, error text, store errors) needs the token; a wrong token is 401.
//!
//! Without a token both are open: bind the daemon to a private address or set one.
//! `/healthz` (liveness) is always open and lives in the webhook router.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::ops::metrics;
use crate::store::Store;

/// An inbox commit this recent that succeeded shows the store is writable without a probe.
const INBOX_FRESH: Duration = Duration::from_secs(5);

/// Lists the scripts' problems for `/readyz`.
pub type ScriptProblems = Arc<dyn Fn() -> Vec<Value> + Send + Sync>;

/// What the admin endpoints look at.
#[derive(Clone)]
pub struct AdminState {
    /// What keeps the scripts from being ready (failed scripts, none loaded), as JSON
    /// objects; the daemon reads them from the script runtime.
    pub script_problems: ScriptProblems,
    pub store: Arc<dyn Store>,
    /// Set on shutdown: not ready any more, so load balancers stop sending.
    pub shutting_down: Arc<AtomicBool>,
    pub token: Option<Arc<str>>,
}

/// The router for `/metrics` and `/readyz`, merged into the webhook router by the daemon.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/readyz", get(readyz))
        .with_state(state)
}

/// Whether the request may see details.
#[derive(Debug, PartialEq, Eq)]
enum Access {
    Granted,
    /// No `Authorization` header while a token is configured.
    Anonymous,
    /// An `Authorization` header that does not carry the token.
    Denied,
}

fn access(token: Option<&str>, headers: &HeaderMap) -> Access {
    let Some(token) = token else {
        return Access::Granted;
    };
    let Some(given) = headers.get(header::AUTHORIZATION) else {
        return Access::Anonymous;
    };
    let given = given.as_bytes();
    let presented = given
        .strip_prefix(b"Bearer ")
        .or_else(|| given.strip_prefix(b"bearer "))
        .unwrap_or(b"");
    if constant_time_eq(presented, token.as_bytes()) {
        Access::Granted
    } else {
        Access::Denied
    }
}

/// Compares the SHA-256 digests, so neither the position of the first difference nor the
/// token's length shows in the time taken.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use sha2::{Digest, Sha256};
    let (a, b) = (Sha256::digest(a), Sha256::digest(b));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        Json(json!({ "error": "missing or wrong admin token (Authorization: Bearer <token>)" })),
    )
        .into_response()
}

async fn metrics_handler(State(state): State<AdminState>, headers: HeaderMap) -> Response {
    if access(state.token.as_deref(), &headers) != Access::Granted {
        return unauthorized();
    }
    // The gauges are read from the store now, off the async threads.
    let store = state.store.clone();
    let counts = tokio::task::spawn_blocking(move || {
        let outbox = store.outbox_counts();
        let backlog = store.inbox_backlog();
        (outbox, backlog)
    })
    .await;
    let m = metrics::global();
    match counts {
        Ok((outbox, backlog)) => {
            match outbox {
                Ok((pending, failed)) => {
                    m.outbox_pending.set(pending as f64);
                    m.outbox_failed.set(failed as f64);
                }
                Err(e) => tracing::warn!(error = %e, "metrics: cannot read the outbox counts"),
            }
            match backlog {
                Ok(n) => m.inbox_backlog.set(n as f64),
                Err(e) => tracing::warn!(error = %e, "metrics: cannot read the inbox backlog"),
            }
        }
        Err(e) => tracing::warn!(error = %e, "metrics: store read panicked"),
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        m.render(),
    )
        .into_response()
}

async fn readyz(State(state): State<AdminState>, headers: HeaderMap) -> Response {
    let details = match access(state.token.as_deref(), &headers) {
        Access::Granted => true,
        Access::Anonymous => false,
        Access::Denied => return unauthorized(),
    };
    let problems = problems(&state).await;
    let (status, word) = if problems.is_empty() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    };
    let body = if details && !problems.is_empty() {
        json!({ "status": word, "problems": problems })
    } else {
        json!({ "status": word })
    };
    (status, Json(body)).into_response()
}

/// Everything that keeps the daemon from being ready, as JSON objects for `/readyz`.
async fn problems(state: &AdminState) -> Vec<Value> {
    let mut problems = Vec::new();
    if state.shutting_down.load(Ordering::Relaxed) {
        problems.push(json!({ "shutdown": "shutting down" }));
    }
    // Ready means webhooks can be acknowledged, so the inbox must be able to commit: a store
    // that answers reads but refuses writes (a full disk, damaged pages) is not ready. Under
    // load the last commit answers this for free; when idle, a probe commit does.
    let store = state.store.clone();
    match tokio::task::spawn_blocking(move || store.inbox_writable(INBOX_FRESH)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => problems.push(json!({ "store": e.to_string() })),
        Err(e) => problems.push(json!({ "store": e.to_string() })),
    }
    problems.extend((state.script_problems)());
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_auth(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(value).expect("header"),
        );
        h
    }

    #[test]
    fn no_token_configured_grants_everyone() {
        assert_eq!(access(None, &HeaderMap::new()), Access::Granted);
    }

    #[test]
    fn token_must_match_exactly() {
        let t = Some("s3cret");
        assert_eq!(access(t, &HeaderMap::new()), Access::Anonymous);
        assert_eq!(access(t, &with_auth("Bearer s3cret")), Access::Granted);
        assert_eq!(access(t, &with_auth("Bearer s3cre")), Access::Denied);
        assert_eq!(access(t, &with_auth("Bearer s3cret2")), Access::Denied);
        assert_eq!(access(t, &with_auth("s3cret")), Access::Denied);
        assert_eq!(access(t, &with_auth("Basic s3cret")), Access::Denied);
    }
}
