//! Everything observable that happens in the daemon, one small struct per kind of event.
//!
//! Each `emit()` writes the event's log line and updates its metrics in one place, so logs and
//! metrics cannot drift apart (the technique of vector's `internal_events`). Callers build the
//! struct where the thing happened and call `emit()`; nothing else writes to
//! [`crate::ops::metrics`].
//!
//! None of these carry a secret: no tokens, no channel secret, no signature values.

use std::time::Duration;

use crate::ops::metrics::global;

mod schedule;

pub use schedule::{ScheduleRun, ScheduleSkipped, TimerFinished};

/// One webhook request answered. Accepted requests that carried events are reported by the
/// daemon's sink (it alone knows whether they were all redeliveries: outcome `duplicate`).
pub struct WebhookReceived {
    /// `accepted`, `duplicate`, `bad_signature` …
    pub outcome: &'static str,
    pub events: usize,
}

impl WebhookReceived {
    pub fn emit(&self) {
        global().webhooks.inc(&[self.outcome]);
        match self.outcome {
            "accepted" | "duplicate" => {
                tracing::debug!(outcome = self.outcome, events = self.events, "webhook")
            }
            _ => tracing::info!(outcome = self.outcome, "webhook not accepted"),
        }
    }
}

/// A new event was stored in the inbox and queued for the scripts.
pub struct EventReceived<'a> {
    pub kind: &'a str,
    pub webhook_event_id: Option<&'a str>,
}

impl EventReceived<'_> {
    pub fn emit(&self) {
        global().events.inc(&[self.kind]);
        tracing::debug!(
            event_type = self.kind,
            webhookEventId = self.webhook_event_id,
            "event received"
        );
    }
}

/// LINE delivered an event again that was already taken in; acknowledged, not handled again.
pub struct EventDuplicate<'a> {
    pub webhook_event_id: Option<&'a str>,
}

impl EventDuplicate<'_> {
    pub fn emit(&self) {
        tracing::info!(
            webhookEventId = self.webhook_event_id,
            "duplicate event (LINE redelivery) acknowledged, not handled again"
        );
    }
}

/// One script function call ended (a handler, a scheduled function, `on_delivery_failed`).
pub struct HandlerFinished<'a> {
    pub script: &'a str,
    pub handler: &'a str,
    pub duration: Duration,
    pub error: Option<Failure<'a>>,
}

/// How a call failed: the kind (`runtime`, `limit`) and the message shown.
#[derive(Clone, Copy)]
pub struct Failure<'a> {
    pub kind: &'static str,
    pub message: &'a dyn std::fmt::Display,
}

impl HandlerFinished<'_> {
    pub fn emit(&self) {
        let m = global();
        let outcome = if self.error.is_some() { "error" } else { "ok" };
        m.handler_runs.inc(&[self.script, self.handler, outcome]);
        m.handler_duration
            .observe(&[self.script, self.handler], self.duration.as_secs_f64());
        let duration_ms = self.duration.as_secs_f64() * 1000.0;
        match self.error {
            Some(err) => {
                m.script_errors.inc(&[self.script, err.kind]);
                tracing::warn!(
                    script = self.script,
                    handler = self.handler,
                    kind = err.kind,
                    duration_ms,
                    "{}",
                    err.message
                );
            }
            None => tracing::debug!(
                script = self.script,
                handler = self.handler,
                duration_ms,
                "handler finished"
            ),
        }
    }
}

/// A script could not be compiled or validated, at start-up or on reload.
pub struct ScriptLoadFailed<'a> {
    /// The script's path.
    pub path: &'a str,
    /// The error rendered with its line and caret.
    pub rendered: &'a str,
    /// True on reload: the script's last good version stays in force.
    pub kept_previous: bool,
}

impl ScriptLoadFailed<'_> {
    pub fn emit(&self) {
        let script = script_name(self.path);
        global().script_errors.inc(&[script, "compile"]);
        if self.kept_previous {
            tracing::error!(
                script,
                "script failed to load, keeping its last good version:\n{}",
                self.rendered
            );
        } else {
            tracing::error!(script, "script failed to load:\n{}", self.rendered);
        }
    }
}

/// A hot reload of the scripts folder finished. `ok` is false when any script failed.
pub struct Reloaded<'a> {
    pub loaded: &'a [String],
    pub removed: &'a [String],
    pub failed: usize,
}

impl Reloaded<'_> {
    pub fn emit(&self) {
        let outcome = if self.failed == 0 { "ok" } else { "error" };
        global().reloads.inc(&[outcome]);
        for script in self.loaded {
            tracing::info!(script = %script, "script loaded");
        }
        for script in self.removed {
            tracing::info!(script = %script, "script removed; its handlers stopped");
        }
    }
}

/// A hot reload could not even read the scripts folder; the scripts in force stay.
pub struct ReloadFailed<'a> {
    pub error: &'a std::io::Error,
}

impl ReloadFailed<'_> {
    pub fn emit(&self) {
        global().reloads.inc(&["error"]);
        tracing::error!(error = %self.error, "cannot read the scripts folder");
    }
}

/// One request to the LINE API answered (`status` is the HTTP status) or not (`None`).
pub struct LineCall {
    pub endpoint: &'static str,
    pub status: Option<u16>,
    pub duration: Duration,
}

impl LineCall {
    pub fn emit(&self) {
        let m = global();
        let status = match self.status {
            Some(200) => std::borrow::Cow::Borrowed("200"),
            Some(s) => std::borrow::Cow::Owned(s.to_string()),
            None => std::borrow::Cow::Borrowed("error"),
        };
        m.line_calls.inc(&[self.endpoint, &status]);
        m.line_duration
            .observe(&[self.endpoint], self.duration.as_secs_f64());
        tracing::debug!(
            endpoint = self.endpoint,
            status = &*status,
            duration_ms = self.duration.as_secs_f64() * 1000.0,
            "LINE call"
        );
    }
}

/// A script's call to another web API: answered with `Ok(status)`, or not, with the reason
/// (`refused`, `timeout`, `error`). The path is already redacted; the query is never shown.
pub struct HttpCall<'a> {
    pub method: &'a str,
    pub host: &'a str,
    pub path: &'a str,
    pub status: Result<u16, &'static str>,
    pub duration: Duration,
}

impl HttpCall<'_> {
    pub fn emit(&self) {
        let status = match self.status {
            Ok(s) => std::borrow::Cow::Owned(s.to_string()),
            Err(reason) => std::borrow::Cow::Borrowed(reason),
        };
        global().http_call(self.host, &status, self.duration);
        tracing::debug!(
            method = self.method,
            host = self.host,
            path = self.path,
            status = &*status,
            duration_ms = self.duration.as_secs_f64() * 1000.0,
            "http call"
        );
    }
}

/// A LINE API request failed transiently and will be sent again after `wait`.
pub struct LineRetry<'a> {
    pub endpoint: &'static str,
    pub attempt: u32,
    pub wait: Duration,
    pub error: &'a dyn std::fmt::Display,
}

impl LineRetry<'_> {
    pub fn emit(&self) {
        global().line_retries.inc(&[self.endpoint]);
        tracing::warn!(
            endpoint = self.endpoint,
            attempt = self.attempt,
            wait_ms = self.wait.as_millis() as u64,
            error = %self.error,
            "LINE call failed, retrying"
        );
    }
}

/// Why a reply could not use its reply token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProblem {
    /// The event carries no reply token (or the script passed an empty one).
    Missing,
    /// Older than a reply token lives: the event waited too long before its handler replied.
    Expired,
    /// LINE refused a young token: another reply used it first.
    Used,
}

impl TokenProblem {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Expired => "expired",
            Self::Used => "used",
        }
    }

    /// The reason in words, for logs and script errors.
    pub fn explain(self) -> &'static str {
        match self {
            Self::Missing => "the event has no reply token",
            Self::Expired => "the reply token expired before the handler replied",
            Self::Used => "LINE says the reply token was already used",
        }
    }
}

/// A reply went out as a push instead: it still reaches the user, but pushes are billed.
pub struct ReplyFallback<'a> {
    pub reason: TokenProblem,
    pub to: &'a str,
    /// How long ago the daemon stored the event, when known.
    pub age: Option<Duration>,
}

impl ReplyFallback<'_> {
    pub fn emit(&self) {
        global().reply_fallbacks.inc(&[self.reason.as_str()]);
        tracing::warn!(
            to = self.to,
            reason = self.reason.as_str(),
            event_age_ms = self.age.map(|a| a.as_millis() as u64),
            "reply sent as a push (billed): {}",
            self.reason.explain()
        );
    }
}

/// A replayed event's reply could not use its token, and no push went out instead: the run
/// before the crash may already have delivered it.
pub struct ReplyMaybeDelivered<'a> {
    pub reason: TokenProblem,
    pub to: Option<&'a str>,
}

impl ReplyMaybeDelivered<'_> {
    pub fn emit(&self) {
        tracing::warn!(
            to = self.to,
            reason = self.reason.as_str(),
            "reply not sent again: possibly delivered before the crash ({})",
            self.reason.explain()
        );
    }
}

/// LINE rejected an outbox delivery for good (kept as failed; `on_delivery_failed` runs).
pub struct DeliveryFailed<'a> {
    pub retry_key: &'a str,
    pub kind: &'a str,
    pub script: &'a str,
    pub error: &'a str,
}

impl DeliveryFailed<'_> {
    pub fn emit(&self) {
        // The gauge `linebotd_outbox_failed` is read from the store at scrape time.
        tracing::error!(
            retry_key = self.retry_key,
            kind = self.kind,
            script = self.script,
            "delivery failed for good: {}",
            self.error
        );
    }
}

/// The file name of a script path (`scripts/echo.rhai` → `echo.rhai`), the label scripts use.
pub fn script_name(path: &str) -> &str {
    std::path::Path::new(path)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_names_drop_the_folder() {
        assert_eq!(script_name("scripts/echo.rhai"), "echo.rhai");
        assert_eq!(script_name("echo.rhai"), "echo.rhai");
    }
}
