//! The daemon's Prometheus metrics, on the `prometheus-client` crate, rendered in the text
//! exposition format (0.0.4) for `GET /metrics`.
//!
//! Every family is declared here, with its name, help and labels, in the order `/metrics` shows
//! them. The events in `observe` are the only writers; `admin` sets the gauges and renders.
//! Callers pass label values as `&[&str]`: the families intern them, so recording into a series
//! seen before is a few read-locked hash lookups and an atomic add, with no allocation.

mod family;
mod values;

use std::sync::OnceLock;
use std::time::Duration;

use prometheus_client::registry::Registry;

pub use family::{CounterVec, Gauge, HistogramVec};
use values::LabelValues;

/// Buckets for script handler durations, in seconds.
pub const HANDLER_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Buckets for LINE API request durations, in seconds.
pub const LINE_BUCKETS: &[f64] = &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// Buckets for scripts' requests to other web APIs, in seconds: from a 5 ms answer on the same
/// network to a slow API a minute away.
pub const HTTP_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// Distinct `host` values kept in the outbound HTTP families; later hosts count as `other`.
pub const HTTP_HOSTS_CAP: usize = 64;

/// Every metric the daemon exports.
pub struct Metrics {
    pub webhooks: CounterVec<1>,
    pub events: CounterVec<1>,
    pub handler_runs: CounterVec<3>,
    pub handler_duration: HistogramVec<2>,
    pub script_errors: CounterVec<2>,
    pub reloads: CounterVec<1>,
    pub line_calls: CounterVec<2>,
    pub line_duration: HistogramVec<1>,
    pub line_retries: CounterVec<1>,
    pub reply_fallbacks: CounterVec<1>,
    pub outbox_pending: Gauge,
    pub outbox_failed: Gauge,
    pub inbox_backlog: Gauge,
    pub schedule_runs: CounterVec<1>,
    pub schedule_skips: CounterVec<1>,
    pub timer_runs: CounterVec<2>,
    /// Written only through [`Metrics::http_call`], which caps the hosts.
    http_calls: CounterVec<2>,
    http_duration: HistogramVec<1>,
    http_hosts: LabelValues,
    /// The families above, registered once; `/metrics` encodes it.
    registry: Registry,
}

/// The process-wide registry.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry of its own (the daemon uses [`global`]; tests build their own).
    pub fn new() -> Self {
        let mut m = Self {
            webhooks: CounterVec::new(
                "linebotd_webhooks_total",
                "Webhook requests by outcome.",
                &["outcome"],
            ),
            events: CounterVec::new(
                "linebotd_events_total",
                "New webhook events taken into the inbox, by LINE event type.",
                &["type"],
            ),
            handler_runs: CounterVec::new(
                "linebotd_handler_runs_total",
                "Script function calls (handlers and scheduled functions) by outcome.",
                &["script", "handler", "outcome"],
            ),
            handler_duration: HistogramVec::new(
                "linebotd_handler_duration_seconds",
                "Time one script function call took.",
                &["script", "handler"],
                HANDLER_BUCKETS,
            ),
            script_errors: CounterVec::new(
                "linebotd_script_errors_total",
                "Script failures: compile (at load or reload), runtime, limit.",
                &["script", "kind"],
            ),
            reloads: CounterVec::new(
                "linebotd_reloads_total",
                "Hot reloads of the scripts folder by outcome.",
                &["outcome"],
            ),
            line_calls: CounterVec::new(
                "linebotd_line_api_calls_total",
                "Requests to the LINE API (every attempt) by endpoint and HTTP status (\"error\" when no answer came).",
                &["endpoint", "status"],
            ),
            line_duration: HistogramVec::new(
                "linebotd_line_api_duration_seconds",
                "Time one LINE API request took.",
                &["endpoint"],
                LINE_BUCKETS,
            ),
            line_retries: CounterVec::new(
                "linebotd_line_api_retries_total",
                "LINE API requests retried after a transient failure.",
                &["endpoint"],
            ),
            reply_fallbacks: CounterVec::new(
                "linebotd_reply_fallbacks_total",
                "Replies sent as a push instead (pushes are billed, replies are free), by why the reply token could not be used: missing, expired, used.",
                &["reason"],
            ),
            outbox_pending: Gauge::new(
                "linebotd_outbox_pending",
                "Push/multicast/broadcast deliveries not yet accepted by LINE.",
            ),
            outbox_failed: Gauge::new(
                "linebotd_outbox_failed",
                "Deliveries LINE rejected for good.",
            ),
            inbox_backlog: Gauge::new(
                "linebotd_inbox_backlog",
                "Webhook events acknowledged but not yet handled.",
            ),
            schedule_runs: CounterVec::new(
                "linebotd_schedule_runs_total",
                "Scheduled function calls started.",
                &["script"],
            ),
            schedule_skips: CounterVec::new(
                "linebotd_schedule_skips_total",
                "Scheduled runs skipped (missed beyond the grace period, or still running).",
                &["script"],
            ),
            timer_runs: CounterVec::new(
                "linebotd_timer_runs_total",
                "Timers (later, at) that came due and were called, by outcome: ran, failed (the call threw; not retried) or gone (its script or function no longer exists).",
                &["script", "outcome"],
            ),
            http_calls: CounterVec::new(
                "linebotd_http_calls_total",
                "Scripts' requests to other web APIs by host and HTTP status (\"error\", \"timeout\" or \"refused\" when no answer came); hosts beyond the first 64 count as \"other\".",
                &["host", "status"],
            ),
            http_duration: HistogramVec::new(
                "linebotd_http_call_duration_seconds",
                "Time one script request to another web API took, by host (capped as in linebotd_http_calls_total).",
                &["host"],
                HTTP_BUCKETS,
            ),
            http_hosts: LabelValues::capped(HTTP_HOSTS_CAP, "other"),
            registry: Registry::default(),
        };
        m.register();
        m
    }

    /// Registers every family, in the order `/metrics` lists them.
    fn register(&mut self) {
        let r = &mut self.registry;
        self.webhooks.register(r);
        self.events.register(r);
        self.handler_runs.register(r);
        self.handler_duration.register(r);
        self.script_errors.register(r);
        self.reloads.register(r);
        self.line_calls.register(r);
        self.line_duration.register(r);
        self.line_retries.register(r);
        self.reply_fallbacks.register(r);
        self.outbox_pending.register(r);
        self.outbox_failed.register(r);
        self.inbox_backlog.register(r);
        self.schedule_runs.register(r);
        self.schedule_skips.register(r);
        self.timer_runs.register(r);
        self.http_calls.register(r);
        self.http_duration.register(r);
    }

    /// One request a script made to another web API. `host` is the URL's host (its first
    /// [`HTTP_HOSTS_CAP`] distinct values are kept, later ones count as `other`); `status` is
    /// the HTTP status code as text (`"200"`), or `"error"`, `"timeout"` or `"refused"` when no
    /// answer came (anything else counts as `"error"`).
    pub fn http_call(&self, host: &str, status: &str, elapsed: Duration) {
        let host = self.http_hosts.get(host);
        self.http_calls.inc(&[&host, values::http_status(status)]);
        self.http_duration.observe(&[&host], elapsed.as_secs_f64());
    }

    /// Everything in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8192);
        encode(&mut out, &self.registry);
        out
    }
}

fn encode(out: &mut String, registry: &Registry) {
    // Writing to a String cannot fail, and no label value here refuses to encode.
    let _ = prometheus_client::encoding::prometheus_text::encode(out, registry);
}

#[cfg(test)]
mod tests;
