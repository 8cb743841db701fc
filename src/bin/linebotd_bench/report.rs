//! The Markdown table: one column per connection count, one row per measurement, and the
//! project's target beside each.

use std::fmt::Write as _;
use std::time::Duration;

/// Everything measured for one connection count.
#[derive(Default)]
pub struct RunReport {
    pub connections: usize,
    pub acked: u64,
    pub failed: u64,
    pub acked_per_s: f64,
    pub replies_in_window_per_s: f64,
    pub replies_total_per_s: f64,
    /// Acknowledged events whose reply reached the mock, once drained.
    pub replied: u64,
    pub duplicate_replies: u64,
    pub p50_us: u32,
    pub p90_us: u32,
    pub p99_us: u32,
    pub max_us: u32,
    pub peak_rss_kb: u64,
    /// CPU time per acknowledged webhook during the load: the daemon's, and this process's
    /// (load generator and mock LINE API).
    pub daemon_cpu_us: Option<f64>,
    pub bench_cpu_us: Option<f64>,
    /// The machine's CPU time taken by the hypervisor during the load, in percent.
    pub stolen_percent: Option<f64>,
    /// Median reload latency and how many saves showed up (of how many).
    pub reload_median: Option<Duration>,
    pub reloads_seen: usize,
    pub reloads_tried: usize,
    /// Acknowledged/s of a bare axum handler under the same load, if measured.
    pub baseline_per_s: Option<f64>,
}

impl RunReport {
    pub fn replied_share(&self) -> f64 {
        if self.acked == 0 {
            return 0.0;
        }
        100.0 * self.replied as f64 / self.acked as f64
    }
}

fn ms(us: u32) -> String {
    format!("{:.2} ms", f64::from(us) / 1000.0)
}

fn micros(us: Option<f64>) -> String {
    us.map_or_else(|| "unknown".into(), |us| format!("{us:.0} µs"))
}

fn per_s(v: f64) -> String {
    let v = v.round() as u64;
    let s = v.to_string();
    // Thousands separators: 23456 → 23,456.
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The Markdown table for `runs`.
pub fn markdown(runs: &[RunReport]) -> String {
    type Row = (&'static str, &'static str, fn(&RunReport) -> String);
    let rows: Vec<Row> = vec![
        ("webhooks acknowledged (200) /s", "≥ 20,000", |r| {
            per_s(r.acked_per_s)
        }),
        ("replies delivered to mock /s, during load", "", |r| {
            per_s(r.replies_in_window_per_s)
        }),
        (
            "replies delivered /s, until the last reply",
            "≥ 20,000",
            |r| per_s(r.replies_total_per_s),
        ),
        ("acknowledged events replied to", "100 %", |r| {
            format!("{:.3} % ({} of {})", r.replied_share(), r.replied, r.acked)
        }),
        ("failed requests / duplicate replies", "0 / 0", |r| {
            format!("{} / {}", r.failed, r.duplicate_replies)
        }),
        ("time to 200, p50", "", |r| ms(r.p50_us)),
        ("time to 200, p90", "", |r| ms(r.p90_us)),
        ("time to 200, p99", "< 5 ms at 8 conn.", |r| ms(r.p99_us)),
        ("time to 200, max", "", |r| ms(r.max_us)),
        ("daemon peak resident memory", "< 40 MB", |r| {
            format!("{:.1} MB", r.peak_rss_kb as f64 / 1024.0)
        }),
        ("daemon CPU per webhook", "", |r| micros(r.daemon_cpu_us)),
        ("load generator + mock CPU per webhook", "", |r| {
            micros(r.bench_cpu_us)
        }),
        ("CPU stolen by the host during the load", "", |r| {
            r.stolen_percent
                .map_or_else(|| "unknown".into(), |p| format!("{p:.1} %"))
        }),
        ("saved script live (median)", "< 300 ms", |r| {
            match r.reload_median {
                Some(d) => format!("{} ms ({} saves)", d.as_millis(), r.reloads_seen),
                None => format!("never ({} saves)", r.reloads_tried),
            }
        }),
    ];
    let mut rows = rows;
    if runs.iter().any(|r| r.baseline_per_s.is_some()) {
        rows.push(("bare axum handler, same load /s", "", |r| {
            r.baseline_per_s.map(per_s).unwrap_or_default()
        }));
        rows.push(("linebotd ÷ bare axum", "", |r| match r.baseline_per_s {
            Some(b) if b > 0.0 => format!("{:.0} %", 100.0 * r.acked_per_s / b),
            _ => String::new(),
        }));
    }
    let mut out = String::new();
    let _ = write!(out, "| measurement |");
    for r in runs {
        let _ = write!(out, " {} connections |", r.connections);
    }
    let _ = writeln!(out, " target |");
    let _ = write!(out, "|---|");
    for _ in runs {
        let _ = write!(out, "---:|");
    }
    let _ = writeln!(out, "---|");
    for (name, target, value) in rows {
        let _ = write!(out, "| {name} |");
        for r in runs {
            let _ = write!(out, " {} |", value(r));
        }
        let _ = writeln!(out, " {target} |");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(per_s(0.0), "0");
        assert_eq!(per_s(999.4), "999");
        assert_eq!(per_s(23456.0), "23,456");
        assert_eq!(per_s(1234567.0), "1,234,567");
    }

    #[test]
    fn one_column_per_run() {
        let runs = [
            RunReport {
                connections: 8,
                ..RunReport::default()
            },
            RunReport {
                connections: 64,
                ..RunReport::default()
            },
        ];
        let table = markdown(&runs);
        assert!(table.starts_with("| measurement | 8 connections | 64 connections | target |"));
        assert!(table
            .lines()
            .all(|l| l.matches('|').count() == runs.len() + 3));
    }
}
