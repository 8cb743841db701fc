//! The daemon's whole HTTP surface as one axum [`Router`]: the webhook, `/healthz`,
//! `/metrics` and `/readyz`. Built apart from the server, so tests can drive it with `oneshot`
//! without binding a port.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use axum::Router;

use crate::config::Config;
use crate::ops::admin::{self, AdminState};
use crate::ops::observe;
use crate::pipeline::inbox;
use crate::pipeline::script::Runtime;
use crate::pipeline::webhook::{self, Outcome, OutcomeHook, WebhookState};

use super::Pipeline;

/// The router for `pipeline`. `shutting_down` turns webhooks away with 503 and `/readyz` to
/// not ready.
pub fn app(config: &Config, pipeline: &Pipeline, shutting_down: Arc<AtomicBool>) -> Router {
    let state = WebhookState {
        channel_secret: config.channel_secret.as_bytes().into(),
        max_body: config.max_body,
        sink: Arc::new(inbox::InboxSink {
            inbox: pipeline.inbox.clone(),
        }),
        shutting_down: shutting_down.clone(),
        on_outcome: Some(webhook_hook()),
    };
    webhook::router(state, &config.webhook_path).merge(admin::router(AdminState {
        script_problems: script_problems(pipeline.bot.runtime.clone()),
        store: pipeline.bot.store.clone(),
        shutting_down,
        token: config.admin_token.as_deref().map(Arc::from),
    }))
}

/// The scripts' problems for `/readyz`: each script that failed to load, or none loaded.
fn script_problems(runtime: Arc<Runtime>) -> admin::ScriptProblems {
    Arc::new(move || {
        let set = runtime.scripts();
        let mut problems: Vec<serde_json::Value> = set
            .errors
            .iter()
            .map(|(name, error)| serde_json::json!({ "script": name, "error": error.headline() }))
            .collect();
        if set.scripts.is_empty() && set.errors.is_empty() {
            problems.push(serde_json::json!({
                "scripts": "no scripts loaded: add a .rhai file to the scripts folder"
            }));
        }
        problems
    })
}

/// Reports every webhook outcome except accepted requests with events: the sink reports those,
/// as `accepted` or `duplicate`.
fn webhook_hook() -> OutcomeHook {
    Arc::new(|outcome, events| {
        if !(outcome == Outcome::Accepted && events > 0) {
            observe::WebhookReceived {
                outcome: outcome.as_str(),
                events,
            }
            .emit();
        }
    })
}
