//! The Markdown report: a line naming the scenario, then a table with one column per connection
//! count, one row per measurement, and the project's target (DESIGN.md) beside each, with ✓ or ✗
//! on every value that has one.

mod scenario;

use std::fmt::Write as _;
use std::time::Duration;

pub use scenario::Scenario;

/// Everything measured for one connection count.
#[derive(Default)]
pub struct RunReport {
    pub connections: usize,
    pub acked: u64,
    pub failed: u64,
    pub acked_per_s: f64,
    /// Replies accepted by the mock during the load, a second.
    pub replies_in_window_per_s: f64,
    /// All replies over the time from the start of the load to the last reply.
    pub replies_total_per_s: f64,
    pub replies: u64,
    /// Pushes accepted by the mock: the daemon's fallback when a reply failed.
    pub fallback_pushes: u64,
    /// Pushes the mock answered 409 (retry key already accepted).
    pub push_conflicts: u64,
    /// Replies the mock answered 400 because their token had been used.
    pub reused_tokens: u64,
    pub profiles: u64,
    /// Acknowledged events answered by a reply or a push, once drained.
    pub answered: u64,
    /// Events answered more than once.
    pub answered_twice: u64,
    pub busiest_second_replies: u64,
    pub p50_us: u32,
    pub p90_us: u32,
    pub p99_us: u32,
    pub max_us: u32,
    pub peak_rss_kb: u64,
    /// CPU time per answered webhook from the start of the load until the replies drained:
    /// the daemon's, and this process's (load generator and mock LINE API).
    pub daemon_cpu_us: Option<f64>,
    pub bench_cpu_us: Option<f64>,
    /// The machine's CPU time taken by the hypervisor over the same time, in percent.
    pub stolen_percent: Option<f64>,
    /// Share of the load window connections spent waiting at the backlog cap.
    pub held_back_percent: f64,
    /// Median reload latency and how many saves showed up (of how many).
    pub reload_median: Option<Duration>,
    pub reloads_seen: usize,
    pub reloads_tried: usize,
    /// The bare axum handler and the bare relay under the same load, if measured.
    pub baseline: Option<crate::baseline::Ceilings>,
}

impl RunReport {
    pub fn answered_share(&self) -> f64 {
        if self.acked == 0 {
            return 0.0;
        }
        100.0 * self.answered as f64 / self.acked as f64
    }
}

fn ms(us: u32) -> String {
    format!("{:.2} ms", f64::from(us) / 1000.0)
}

fn micros(us: Option<f64>) -> String {
    us.map_or_else(|| "unknown".into(), |us| format!("{us:.0} µs"))
}

fn thousands(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn per_s(v: f64) -> String {
    thousands(v.max(0.0).round() as u64)
}

type Value = Box<dyn Fn(&RunReport) -> String>;
type Check = Box<dyn Fn(&RunReport) -> Option<bool>>;

struct Row {
    name: &'static str,
    target: String,
    value: Value,
    /// `Some(met)` where the row has a target for this run.
    check: Check,
}

fn row(name: &'static str, value: impl Fn(&RunReport) -> String + 'static) -> Row {
    Row {
        name,
        target: String::new(),
        value: Box::new(value),
        check: Box::new(|_| None),
    }
}

impl Row {
    fn target(
        mut self,
        target: impl Into<String>,
        check: impl Fn(&RunReport) -> Option<bool> + 'static,
    ) -> Self {
        self.target = target.into();
        self.check = Box::new(check);
        self
    }
}

fn rows(scenario: &Scenario, runs: &[RunReport]) -> Vec<Row> {
    let t = scenario.targets();
    let mut rows = Vec::new();
    let acked = row("webhooks acknowledged (200) /s", |r| per_s(r.acked_per_s));
    rows.push(match t.acked_per_s {
        Some(min) => acked.target(format!("≥ {}", per_s(min)), move |r| {
            Some(r.acked_per_s >= min)
        }),
        None => acked,
    });
    rows.push(row("replies delivered", |r| thousands(r.replies)));
    rows.push(row("replies delivered /s, during the load", |r| {
        per_s(r.replies_in_window_per_s)
    }));
    let total = row("replies delivered /s, until the last reply", |r| {
        per_s(r.replies_total_per_s)
    });
    rows.push(match t.replies_per_s {
        Some(min) => total.target(format!("≥ {}", per_s(min)), move |r| {
            Some(r.replies_total_per_s >= min)
        }),
        None => total,
    });
    rows.push(
        row("events answered (by reply or fallback push)", |r| {
            format!(
                "{:.3} % ({} of {})",
                r.answered_share(),
                r.answered,
                r.acked
            )
        })
        .target("100 %", |r| Some(r.acked > 0 && r.answered == r.acked)),
    );
    let fallback = row("fallback pushes (answered 409)", |r| {
        format!("{} ({})", r.fallback_pushes, r.push_conflicts)
    });
    rows.push(if t.no_fallback {
        fallback.target("0", |r| Some(r.fallback_pushes == 0))
    } else {
        fallback
    });
    rows.push(
        row("failed requests / events answered twice", |r| {
            format!("{} / {}", r.failed, r.answered_twice)
        })
        .target("0 / 0", |r| Some(r.failed == 0 && r.answered_twice == 0)),
    );
    rows.push(row("reply tokens used again (answered 400)", |r| {
        r.reused_tokens.to_string()
    }));
    if runs.iter().any(|r| r.profiles > 0) || scenario.script == "profile" {
        rows.push(row("profile calls", |r| thousands(r.profiles)));
    }
    rows.push(row("reply calls in the busiest second", |r| {
        thousands(r.busiest_second_replies)
    }));
    rows.push(row("time to 200, p50", |r| ms(r.p50_us)));
    rows.push(row("time to 200, p90", |r| ms(r.p90_us)));
    let p99 = row("time to 200, p99", |r| ms(r.p99_us));
    rows.push(match t.p99_ms {
        Some((max, at)) => {
            let text = match at {
                Some(c) => format!("< {max} ms at {c} conn."),
                None => format!("< {max} ms"),
            };
            p99.target(text, move |r| {
                (at.is_none() || at == Some(r.connections))
                    .then(|| f64::from(r.p99_us) < max * 1000.0)
            })
        }
        None => p99,
    });
    rows.push(row("time to 200, max", |r| ms(r.max_us)));
    let rss = row("daemon peak resident memory", |r| {
        format!("{:.1} MB", r.peak_rss_kb as f64 / 1024.0)
    });
    rows.push(match t.rss_mb {
        Some(max) => rss.target(format!("< {max} MB"), move |r| {
            Some((r.peak_rss_kb as f64 / 1024.0) < max)
        }),
        None => rss,
    });
    rows.push(row("daemon CPU per answered webhook", |r| {
        micros(r.daemon_cpu_us)
    }));
    rows.push(row("load generator + mock CPU per answered webhook", |r| {
        micros(r.bench_cpu_us)
    }));
    rows.push(row("CPU stolen by the host", |r| {
        r.stolen_percent
            .map_or_else(|| "unknown".into(), |p| format!("{p:.1} %"))
    }));
    if scenario.max_backlog > 0 {
        rows.push(row("load held back by the backlog cap", |r| {
            format!("{:.0} % of the time", r.held_back_percent)
        }));
    }
    let reload = row("saved script live (median)", |r| match r.reload_median {
        Some(d) => format!("{} ms ({} saves)", d.as_millis(), r.reloads_seen),
        None => format!("never ({} saves)", r.reloads_tried),
    });
    rows.push(match t.reload_ms {
        Some(max) => reload.target(format!("< {max} ms"), move |r| {
            (r.reloads_tried > 0).then(|| {
                r.reloads_seen == r.reloads_tried
                    && r.reload_median
                        .is_some_and(|d| d.as_millis() < u128::from(max))
            })
        }),
        None => reload,
    });
    if runs.iter().any(|r| r.baseline.is_some()) {
        let ratio = |ours: f64, theirs: f64| {
            if theirs > 0.0 {
                format!("{:.0} %", 100.0 * ours / theirs)
            } else {
                String::new()
            }
        };
        rows.push(row("bare axum handler, same load /s", |r| {
            r.baseline.map(|b| per_s(b.bare_per_s)).unwrap_or_default()
        }));
        rows.push(row("linebotd ÷ bare axum (acknowledged)", move |r| {
            r.baseline
                .map(|b| ratio(r.acked_per_s, b.bare_per_s))
                .unwrap_or_default()
        }));
        rows.push(row(
            "bare relay (axum + one reqwest reply each), replies /s until the last",
            |r| {
                r.baseline
                    .map(|b| per_s(b.relay_replies_per_s))
                    .unwrap_or_default()
            },
        ));
        rows.push(row(
            "linebotd ÷ bare relay (replies until the last)",
            move |r| {
                r.baseline
                    .map(|b| ratio(r.replies_total_per_s, b.relay_replies_per_s))
                    .unwrap_or_default()
            },
        ));
    }
    rows
}

/// The Markdown table for `runs` of `scenario`, then one line per run on the targets.
pub fn markdown(scenario: &Scenario, runs: &[RunReport]) -> String {
    let rows = rows(scenario, runs);
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
    for row in &rows {
        let _ = write!(out, "| {} |", row.name);
        for r in runs {
            let mark = match (row.check)(r) {
                Some(true) => " ✓",
                Some(false) => " ✗",
                None => "",
            };
            let _ = write!(out, " {}{mark} |", (row.value)(r));
        }
        let _ = writeln!(out, " {} |", row.target);
    }
    let name = scenario.targets().name;
    let _ = writeln!(out);
    for r in runs {
        let missed: Vec<&str> = rows
            .iter()
            .filter(|row| (row.check)(r) == Some(false))
            .map(|row| row.name)
            .collect();
        let whose = if name.is_empty() {
            "correctness and reload targets (DESIGN.md names no throughput target for this scenario)"
                .to_owned()
        } else {
            format!("DESIGN.md targets ({name})")
        };
        let verdict = if missed.is_empty() {
            "all met".to_owned()
        } else {
            format!("NOT met: {}", missed.join("; "))
        };
        let _ = writeln!(out, "- {} connections, {whose}: {verdict}", r.connections);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(latency_ms: u64, users: u64) -> Scenario {
        Scenario {
            latency_ms,
            script: "echo",
            users,
            seconds: 10,
            rate_limit_off: latency_ms == 0,
            rate_per_s: 0.0,
            max_backlog: 0,
            instances: 1,
        }
    }

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
        let table = markdown(&scenario(0, 512), &runs);
        assert!(table.starts_with("| measurement | 8 connections | 64 connections | target |"));
        assert!(table
            .lines()
            .take_while(|l| l.starts_with('|'))
            .all(|l| l.matches('|').count() == runs.len() + 3));
    }

    #[test]
    fn targets_follow_the_scenario() {
        assert_eq!(scenario(0, 512).targets().acked_per_s, Some(15_000.0));
        let t = scenario(100, 512).targets();
        assert_eq!((t.replies_per_s, t.no_fallback), (Some(1_900.0), true));
        assert_eq!(scenario(1000, 512).targets().replies_per_s, Some(450.0));
        assert_eq!(scenario(1000, 64).targets().replies_per_s, None);
        assert_eq!(scenario(250, 512).targets().name, "");
        let two = Scenario {
            instances: 2,
            ..scenario(100, 512)
        };
        assert_eq!(
            (two.targets().rss_mb, scenario(100, 512).targets().rss_mb),
            (None, Some(64.0))
        );
        assert!(two.describe().ends_with(" 2 daemons on one database, each connection to one of them in turn; their CPU and peak memory are summed."), "{}", two.describe());
    }

    #[test]
    fn values_are_marked_against_their_target() {
        let run = RunReport {
            connections: 64,
            acked: 20_000,
            answered: 20_000,
            replies_total_per_s: 1_950.0,
            fallback_pushes: 3,
            p99_us: 4_000,
            peak_rss_kb: 30 * 1024,
            ..RunReport::default()
        };
        let table = markdown(&scenario(100, 512), &[run]);
        assert!(table.contains("| 1,950 ✓ | ≥ 1,900 |"), "{table}");
        assert!(table.contains("| 3 (0) ✗ | 0 |"), "{table}");
        assert!(table.contains("| 4.00 ms ✓ | < 10 ms |"), "{table}");
        assert!(table.contains("NOT met: fallback pushes"), "{table}");
    }
}
