//! A small Prometheus registry: labelled counters, gauges and fixed-bucket histograms, rendered
//! in the text exposition format for `GET /metrics`.
//!
//! Hand-rolled rather than a crate: the daemon needs a dozen series, and the hot path is one
//! read-locked map lookup plus an atomic add. The write lock is only taken the first time a
//! label combination is seen. Events in [`crate::observe`] are the only writers.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

/// Buckets for script handler durations, in seconds.
pub const HANDLER_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Buckets for LINE API request durations, in seconds.
pub const LINE_BUCKETS: &[f64] = &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Every metric the daemon exports.
pub struct Metrics {
    pub webhooks: CounterVec,
    pub events: CounterVec,
    pub handler_runs: CounterVec,
    pub handler_duration: HistogramVec,
    pub script_errors: CounterVec,
    pub reloads: CounterVec,
    pub line_calls: CounterVec,
    pub line_duration: HistogramVec,
    pub line_retries: CounterVec,
    pub reply_fallbacks: CounterVec,
    pub outbox_pending: Gauge,
    pub outbox_failed: Gauge,
    pub inbox_backlog: Gauge,
    pub schedule_runs: CounterVec,
    pub schedule_skips: CounterVec,
}

/// The process-wide registry.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

impl Metrics {
    fn new() -> Self {
        Self {
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
        }
    }

    /// Everything in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        self.webhooks.render(&mut out);
        self.events.render(&mut out);
        self.handler_runs.render(&mut out);
        self.handler_duration.render(&mut out);
        self.script_errors.render(&mut out);
        self.reloads.render(&mut out);
        self.line_calls.render(&mut out);
        self.line_duration.render(&mut out);
        self.line_retries.render(&mut out);
        self.reply_fallbacks.render(&mut out);
        self.outbox_pending.render(&mut out);
        self.outbox_failed.render(&mut out);
        self.inbox_backlog.render(&mut out);
        self.schedule_runs.render(&mut out);
        self.schedule_skips.render(&mut out);
        out
    }
}

/// Series of one metric family, keyed by label values (in the family's label order).
struct Series<T> {
    map: RwLock<BTreeMap<Vec<String>, Arc<T>>>,
}

impl<T> Series<T> {
    fn new() -> Self {
        Self {
            map: RwLock::new(BTreeMap::new()),
        }
    }

    /// Runs `f` on the series with these label values, creating it first if needed. The hot
    /// path (an existing series) takes only the shared lock and clones nothing.
    fn with<R>(&self, values: &[&str], make: impl FnOnce() -> T, f: impl FnOnce(&T) -> R) -> R {
        {
            let map = self.map.read().unwrap_or_else(|p| p.into_inner());
            // BTreeMap<Vec<String>> cannot be looked up by &[&str]; compare element-wise.
            if let Some((_, s)) = map.iter().find(|(k, _)| keys_equal(k, values)) {
                return f(s);
            }
        }
        let key: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        f(map.entry(key).or_insert_with(|| Arc::new(make())))
    }

    fn snapshot(&self) -> Vec<(Vec<String>, Arc<T>)> {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

fn keys_equal(key: &[String], values: &[&str]) -> bool {
    key.len() == values.len() && key.iter().zip(values).all(|(a, b)| a == b)
}

/// A counter family with labels.
pub struct CounterVec {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    series: Series<AtomicU64>,
}

impl CounterVec {
    pub fn new(name: &'static str, help: &'static str, labels: &'static [&'static str]) -> Self {
        Self {
            name,
            help,
            labels,
            series: Series::new(),
        }
    }

    /// Adds one to the series with these label values (one per label, in order).
    pub fn inc(&self, values: &[&str]) {
        self.add(values, 1);
    }

    pub fn add(&self, values: &[&str], n: u64) {
        debug_assert_eq!(values.len(), self.labels.len(), "{}", self.name);
        self.series.with(
            values,
            || AtomicU64::new(0),
            |c| c.fetch_add(n, Ordering::Relaxed),
        );
    }

    /// The current value of one series (0 if never incremented).
    pub fn get(&self, values: &[&str]) -> u64 {
        self.series
            .snapshot()
            .into_iter()
            .find(|(k, _)| keys_equal(k, values))
            .map_or(0, |(_, v)| v.load(Ordering::Relaxed))
    }

    fn render(&self, out: &mut String) {
        header(out, self.name, self.help, "counter");
        for (values, v) in self.series.snapshot() {
            out.push_str(self.name);
            labels(out, self.labels, &values, None);
            let _ = writeln!(out, " {}", v.load(Ordering::Relaxed));
        }
    }
}

/// A gauge without labels, holding an `f64`.
pub struct Gauge {
    name: &'static str,
    help: &'static str,
    bits: AtomicU64,
}

impl Gauge {
    pub fn new(name: &'static str, help: &'static str) -> Self {
        Self {
            name,
            help,
            bits: AtomicU64::new(0f64.to_bits()),
        }
    }

    pub fn set(&self, value: f64) {
        self.bits.store(value.to_bits(), Ordering::Relaxed);
    }

    pub fn get(&self) -> f64 {
        f64::from_bits(self.bits.load(Ordering::Relaxed))
    }

    fn render(&self, out: &mut String) {
        header(out, self.name, self.help, "gauge");
        let _ = writeln!(out, "{} {}", self.name, number(self.get()));
    }
}

/// One histogram series: per-bucket counts (not cumulative; summed when rendered), sum, count.
pub struct Histogram {
    buckets: Vec<AtomicU64>,
    sum_bits: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn new(buckets: usize) -> Self {
        Self {
            buckets: (0..buckets).map(|_| AtomicU64::new(0)).collect(),
            sum_bits: AtomicU64::new(0f64.to_bits()),
            count: AtomicU64::new(0),
        }
    }
}

/// A histogram family with labels and fixed buckets (upper bounds, ascending).
pub struct HistogramVec {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    bounds: &'static [f64],
    series: Series<Histogram>,
}

impl HistogramVec {
    pub fn new(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
        bounds: &'static [f64],
    ) -> Self {
        Self {
            name,
            help,
            labels,
            bounds,
            series: Series::new(),
        }
    }

    /// Records one observation (seconds).
    pub fn observe(&self, values: &[&str], value: f64) {
        debug_assert_eq!(values.len(), self.labels.len(), "{}", self.name);
        let bucket = self.bounds.iter().position(|b| value <= *b);
        self.series.with(
            values,
            || Histogram::new(self.bounds.len()),
            |h| {
                if let Some(i) = bucket {
                    h.buckets[i].fetch_add(1, Ordering::Relaxed);
                }
                // An f64 has no atomic add: compare-and-swap until no other writer got in between.
                let _ = h
                    .sum_bits
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                        Some((f64::from_bits(bits) + value).to_bits())
                    });
                h.count.fetch_add(1, Ordering::Relaxed);
            },
        );
    }

    /// Observations recorded in one series.
    pub fn count(&self, values: &[&str]) -> u64 {
        self.series
            .snapshot()
            .into_iter()
            .find(|(k, _)| keys_equal(k, values))
            .map_or(0, |(_, h)| h.count.load(Ordering::Relaxed))
    }

    fn render(&self, out: &mut String) {
        header(out, self.name, self.help, "histogram");
        for (values, h) in self.series.snapshot() {
            let mut cumulative = 0;
            for (bound, n) in self.bounds.iter().zip(&h.buckets) {
                cumulative += n.load(Ordering::Relaxed);
                let _ = write!(out, "{}_bucket", self.name);
                labels(out, self.labels, &values, Some(&number(*bound)));
                let _ = writeln!(out, " {cumulative}");
            }
            let count = h.count.load(Ordering::Relaxed);
            let _ = write!(out, "{}_bucket", self.name);
            labels(out, self.labels, &values, Some("+Inf"));
            let _ = writeln!(out, " {count}");
            let _ = write!(out, "{}_sum", self.name);
            labels(out, self.labels, &values, None);
            let sum = f64::from_bits(h.sum_bits.load(Ordering::Relaxed));
            let _ = writeln!(out, " {}", number(sum));
            let _ = write!(out, "{}_count", self.name);
            labels(out, self.labels, &values, None);
            let _ = writeln!(out, " {count}");
        }
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn labels(out: &mut String, names: &[&str], values: &[String], le: Option<&str>) {
    if names.is_empty() && le.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    for (name, value) in names.iter().zip(values) {
        if !first {
            out.push(',');
        }
        first = false;
        let _ = write!(out, "{name}=\"{}\"", escape_value(value));
    }
    if let Some(le) = le {
        if !first {
            out.push(',');
        }
        let _ = write!(out, "le=\"{le}\"");
    }
    out.push('}');
}

/// Label values escape backslash, double quote and newline.
fn escape_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// HELP text escapes backslash and newline.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

fn number(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_with_help_type_and_escaped_labels() {
        let c = CounterVec::new("x_total", "Things.", &["a", "b"]);
        c.inc(&["1", "q\"uote"]);
        c.add(&["1", "q\"uote"], 2);
        c.inc(&["0", "back\\slash\nnl"]);
        let mut out = String::new();
        c.render(&mut out);
        assert_eq!(
            out,
            "# HELP x_total Things.\n# TYPE x_total counter\n\
             x_total{a=\"0\",b=\"back\\\\slash\\nnl\"} 1\n\
             x_total{a=\"1\",b=\"q\\\"uote\"} 3\n"
        );
        assert_eq!(c.get(&["1", "q\"uote"]), 3);
        assert_eq!(c.get(&["9", "9"]), 0);
    }

    #[test]
    fn histograms_are_cumulative_with_inf_sum_and_count() {
        let h = HistogramVec::new("d_seconds", "Durations.", &["e"], &[0.1, 1.0]);
        h.observe(&["x"], 0.05);
        h.observe(&["x"], 0.5);
        h.observe(&["x"], 3.0);
        let mut out = String::new();
        h.render(&mut out);
        assert_eq!(
            out,
            "# HELP d_seconds Durations.\n# TYPE d_seconds histogram\n\
             d_seconds_bucket{e=\"x\",le=\"0.1\"} 1\n\
             d_seconds_bucket{e=\"x\",le=\"1\"} 2\n\
             d_seconds_bucket{e=\"x\",le=\"+Inf\"} 3\n\
             d_seconds_sum{e=\"x\"} 3.55\n\
             d_seconds_count{e=\"x\"} 3\n"
        );
        assert_eq!(h.count(&["x"]), 3);
    }

    #[test]
    fn gauges_render_plain_numbers() {
        let g = Gauge::new("g", "A gauge.");
        g.set(42.0);
        let mut out = String::new();
        g.render(&mut out);
        assert_eq!(out, "# HELP g A gauge.\n# TYPE g gauge\ng 42\n");
    }
}
