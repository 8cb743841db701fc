//! The registry's exposition: the names, labels and types scrapers and dashboards rely on.

use std::collections::HashSet;
use std::time::Duration;

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

/// What a fresh daemon's `/metrics` showed before the move to `prometheus-client` (scraped from
/// the hand-rolled registry), followed by the outbound HTTP families added since.
const FRESH: &str = concat!(
    "# HELP linebotd_webhooks_total Webhook requests by outcome.\n",
    "# TYPE linebotd_webhooks_total counter\n",
    "# HELP linebotd_events_total New webhook events taken into the inbox, by LINE event type.\n",
    "# TYPE linebotd_events_total counter\n",
    "# HELP linebotd_handler_runs_total Script function calls (handlers and scheduled functions) by outcome.\n",
    "# TYPE linebotd_handler_runs_total counter\n",
    "# HELP linebotd_handler_duration_seconds Time one script function call took.\n",
    "# TYPE linebotd_handler_duration_seconds histogram\n",
    "# HELP linebotd_script_errors_total Script failures: compile (at load or reload), runtime, limit.\n",
    "# TYPE linebotd_script_errors_total counter\n",
    "# HELP linebotd_reloads_total Hot reloads of the scripts folder by outcome.\n",
    "# TYPE linebotd_reloads_total counter\n",
    "# HELP linebotd_line_api_calls_total Requests to the LINE API (every attempt) by endpoint and HTTP status (\"error\" when no answer came).\n",
    "# TYPE linebotd_line_api_calls_total counter\n",
    "# HELP linebotd_line_api_duration_seconds Time one LINE API request took.\n",
    "# TYPE linebotd_line_api_duration_seconds histogram\n",
    "# HELP linebotd_line_api_retries_total LINE API requests retried after a transient failure.\n",
    "# TYPE linebotd_line_api_retries_total counter\n",
    "# HELP linebotd_reply_fallbacks_total Replies sent as a push instead (pushes are billed, replies are free), by why the reply token could not be used: missing, expired, used.\n",
    "# TYPE linebotd_reply_fallbacks_total counter\n",
    "# HELP linebotd_outbox_pending Push/multicast/broadcast deliveries not yet accepted by LINE.\n",
    "# TYPE linebotd_outbox_pending gauge\n",
    "linebotd_outbox_pending 0\n",
    "# HELP linebotd_outbox_failed Deliveries LINE rejected for good.\n",
    "# TYPE linebotd_outbox_failed gauge\n",
    "linebotd_outbox_failed 0\n",
    "# HELP linebotd_inbox_backlog Webhook events acknowledged but not yet handled.\n",
    "# TYPE linebotd_inbox_backlog gauge\n",
    "linebotd_inbox_backlog 0\n",
    "# HELP linebotd_schedule_runs_total Scheduled function calls started.\n",
    "# TYPE linebotd_schedule_runs_total counter\n",
    "# HELP linebotd_schedule_skips_total Scheduled runs skipped (missed beyond the grace period, or still running).\n",
    "# TYPE linebotd_schedule_skips_total counter\n",
    "# HELP linebotd_timer_runs_total Timers (later, at) that came due and were called, by outcome: ran, failed (the call threw; not retried) or gone (its script or function no longer exists).\n",
    "# TYPE linebotd_timer_runs_total counter\n",
    "# HELP linebotd_http_calls_total Scripts' requests to other web APIs by host and HTTP status (\"error\", \"timeout\" or \"refused\" when no answer came); hosts beyond the first 64 count as \"other\".\n",
    "# TYPE linebotd_http_calls_total counter\n",
    "# HELP linebotd_http_call_duration_seconds Time one script request to another web API took, by host (capped as in linebotd_http_calls_total).\n",
    "# TYPE linebotd_http_call_duration_seconds histogram\n",
);

#[test]
fn a_fresh_registry_lists_every_family_before_its_first_series() {
    assert_eq!(Metrics::new().render(), FRESH);
}

/// Each family with one series recorded, as `/metrics` must show it. A renamed family, a label
/// renamed, added or reordered, or a changed type fails here.
#[test]
fn every_family_keeps_its_name_labels_and_type() {
    let m = Metrics::new();
    m.webhooks.inc(&["accepted"]);
    m.events.inc(&["message"]);
    m.handler_runs.inc(&["bot.rhai", "on_message", "ok"]);
    m.handler_duration
        .observe(&["bot.rhai", "on_message"], 0.002);
    m.script_errors.inc(&["bot.rhai", "runtime"]);
    m.reloads.inc(&["ok"]);
    m.line_calls.inc(&["push", "200"]);
    m.line_duration.observe(&["push"], 0.02);
    m.line_retries.inc(&["push"]);
    m.reply_fallbacks.inc(&["expired"]);
    m.outbox_pending.set(3.0);
    m.outbox_failed.set(1.0);
    m.inbox_backlog.set(2.0);
    m.schedule_runs.inc(&["cron.rhai"]);
    m.schedule_skips.inc(&["cron.rhai"]);
    m.timer_runs.inc(&["remind.rhai", "gone"]);
    m.http_call("api.example.com", "200", Duration::from_millis(30));
    let text = m.render();
    let lines: HashSet<&str> = text.lines().collect();
    let expected = [
        "# TYPE linebotd_webhooks_total counter",
        "linebotd_webhooks_total{outcome=\"accepted\"} 1",
        "# TYPE linebotd_events_total counter",
        "linebotd_events_total{type=\"message\"} 1",
        "# TYPE linebotd_handler_runs_total counter",
        "linebotd_handler_runs_total{script=\"bot.rhai\",handler=\"on_message\",outcome=\"ok\"} 1",
        "# TYPE linebotd_handler_duration_seconds histogram",
        "linebotd_handler_duration_seconds_bucket{script=\"bot.rhai\",handler=\"on_message\",le=\"0.005\"} 1",
        "linebotd_handler_duration_seconds_count{script=\"bot.rhai\",handler=\"on_message\"} 1",
        "# TYPE linebotd_script_errors_total counter",
        "linebotd_script_errors_total{script=\"bot.rhai\",kind=\"runtime\"} 1",
        "# TYPE linebotd_reloads_total counter",
        "linebotd_reloads_total{outcome=\"ok\"} 1",
        "# TYPE linebotd_line_api_calls_total counter",
        "linebotd_line_api_calls_total{endpoint=\"push\",status=\"200\"} 1",
        "# TYPE linebotd_line_api_duration_seconds histogram",
        "linebotd_line_api_duration_seconds_bucket{endpoint=\"push\",le=\"0.025\"} 1",
        "linebotd_line_api_duration_seconds_count{endpoint=\"push\"} 1",
        "# TYPE linebotd_line_api_retries_total counter",
        "linebotd_line_api_retries_total{endpoint=\"push\"} 1",
        "# TYPE linebotd_reply_fallbacks_total counter",
        "linebotd_reply_fallbacks_total{reason=\"expired\"} 1",
        "# TYPE linebotd_outbox_pending gauge",
        "linebotd_outbox_pending 3",
        "# TYPE linebotd_outbox_failed gauge",
        "linebotd_outbox_failed 1",
        "# TYPE linebotd_inbox_backlog gauge",
        "linebotd_inbox_backlog 2",
        "# TYPE linebotd_schedule_runs_total counter",
        "linebotd_schedule_runs_total{script=\"cron.rhai\"} 1",
        "# TYPE linebotd_schedule_skips_total counter",
        "linebotd_schedule_skips_total{script=\"cron.rhai\"} 1",
        "# TYPE linebotd_timer_runs_total counter",
        "linebotd_timer_runs_total{script=\"remind.rhai\",outcome=\"gone\"} 1",
        "# TYPE linebotd_http_calls_total counter",
        "linebotd_http_calls_total{host=\"api.example.com\",status=\"200\"} 1",
        "# TYPE linebotd_http_call_duration_seconds histogram",
        "linebotd_http_call_duration_seconds_bucket{host=\"api.example.com\",le=\"0.05\"} 1",
        "linebotd_http_call_duration_seconds_count{host=\"api.example.com\"} 1",
    ];
    for line in expected {
        assert!(lines.contains(line), "missing {line:?} in\n{text}");
    }
    // Nothing beyond these families: a new one is added to this test on purpose.
    let types = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
    let expected_types = expected.iter().filter(|l| l.starts_with("# TYPE ")).count();
    assert_eq!(types, expected_types, "{text}");
}

#[test]
fn http_calls_count_by_host_and_status_with_buckets_from_5ms_to_60s() {
    let m = Metrics::new();
    m.http_call("api.example.com", "200", Duration::from_millis(3));
    m.http_call("api.example.com", "503", Duration::from_millis(700));
    m.http_call("api.example.com", "timeout", Duration::from_secs(61));
    let text = m.render();
    let lines: HashSet<&str> = text.lines().collect();
    for line in [
        "linebotd_http_calls_total{host=\"api.example.com\",status=\"200\"} 1",
        "linebotd_http_calls_total{host=\"api.example.com\",status=\"503\"} 1",
        "linebotd_http_calls_total{host=\"api.example.com\",status=\"timeout\"} 1",
        "linebotd_http_call_duration_seconds_bucket{host=\"api.example.com\",le=\"0.005\"} 1",
        "linebotd_http_call_duration_seconds_bucket{host=\"api.example.com\",le=\"1\"} 2",
        "linebotd_http_call_duration_seconds_bucket{host=\"api.example.com\",le=\"60\"} 2",
        "linebotd_http_call_duration_seconds_bucket{host=\"api.example.com\",le=\"+Inf\"} 3",
        "linebotd_http_call_duration_seconds_count{host=\"api.example.com\"} 3",
    ] {
        assert!(lines.contains(line), "missing {line:?} in\n{text}");
    }
    let first = text
        .lines()
        .find(|l| l.starts_with("linebotd_http_call_duration_seconds_bucket"));
    assert_eq!(
        first,
        Some("linebotd_http_call_duration_seconds_bucket{host=\"api.example.com\",le=\"0.005\"} 1")
    );
}

#[test]
fn hosts_beyond_the_cap_are_counted_as_other() {
    let m = Metrics::new();
    let ms = Duration::from_millis(10);
    for i in 0..HTTP_HOSTS_CAP + 6 {
        m.http_call(&format!("h{i}.example"), "200", ms);
    }
    // A host seen before the cap was reached keeps its own series.
    m.http_call("h0.example", "200", ms);
    assert_eq!(m.http_calls.get(&["h0.example", "200"]), 2);
    let last = format!("h{}.example", HTTP_HOSTS_CAP - 1);
    assert_eq!(m.http_calls.get(&[&last, "200"]), 1);
    assert_eq!(m.http_calls.get(&["other", "200"]), 6);
    assert_eq!(m.http_duration.count(&["other"]), 6);
    let first_over = format!("h{HTTP_HOSTS_CAP}.example");
    assert_eq!(m.http_calls.get(&[&first_over, "200"]), 0);

    let text = m.render();
    let hosts: HashSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("linebotd_http_calls_total{host=\""))
        .filter_map(|l| l.split('"').next())
        .collect();
    assert_eq!(hosts.len(), HTTP_HOSTS_CAP + 1, "{hosts:?}");
    assert!(hosts.contains("other"));
}

#[test]
fn an_http_status_that_is_neither_a_code_nor_a_known_word_counts_as_error() {
    let m = Metrics::new();
    let ms = Duration::from_millis(1);
    m.http_call("a.example", "404", ms);
    m.http_call("a.example", "refused", ms);
    m.http_call("a.example", "connection reset by peer", ms);
    m.http_call("a.example", "20x", ms);
    assert_eq!(m.http_calls.get(&["a.example", "404"]), 1);
    assert_eq!(m.http_calls.get(&["a.example", "refused"]), 1);
    assert_eq!(m.http_calls.get(&["a.example", "error"]), 2);
}
