//! What one table measured: the scenario the benchmark ran, the sentence that names it, and the
//! targets DESIGN.md sets for it.

use super::thousands;

/// What was run: the same for every column of one table.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub latency_ms: u64,
    pub script: &'static str,
    pub users: u64,
    pub seconds: u64,
    /// The daemon ran with `LINEBOTD_LINE_RATE_LIMIT=0`; otherwise with its defaults.
    pub rate_limit_off: bool,
    /// Offered webhooks a second; 0: as fast as the 200s come back.
    pub rate_per_s: f64,
    /// Most acknowledged events left unanswered before the generator waits; 0: no cap.
    pub max_backlog: u64,
    /// Daemons on one PostgreSQL database, the connections spread over them in turn.
    pub instances: usize,
}

impl Scenario {
    /// One sentence for above the table.
    pub fn describe(&self) -> String {
        let line = if self.latency_ms == 0 {
            "mock LINE API answers at once".to_owned()
        } else {
            format!(
                "mock LINE API answers every call after {} ms",
                thousands(self.latency_ms)
            )
        };
        let limit = if self.rate_limit_off {
            "client-side LINE rate limits off (`LINEBOTD_LINE_RATE_LIMIT=0`)"
        } else {
            "daemon in its default configuration (LINE rate limits on)"
        };
        let pace = if self.rate_per_s > 0.0 {
            format!(
                "paced at {} webhooks/s",
                thousands(self.rate_per_s.round() as u64)
            )
        } else {
            "each connection sends its next webhook when the last one's 200 arrives".to_owned()
        };
        let backlog = if self.max_backlog > 0 {
            format!(
                ", and waits while {} acknowledged events are unanswered",
                thousands(self.max_backlog)
            )
        } else {
            String::new()
        };
        let instances = if self.instances > 1 {
            format!(
                " {} daemons on one database, each connection to one of them in turn; their \
                 CPU and peak memory are summed.",
                self.instances
            )
        } else {
            String::new()
        };
        format!(
            "Script `{}`, {} users, {} s per run; {line}; {limit}; load: {pace}{backlog}.\
             {instances}",
            self.script,
            thousands(self.users),
            self.seconds,
        )
    }

    /// DESIGN.md's targets for this scenario, if it is one the design names.
    pub fn targets(&self) -> Targets {
        let mut t = Targets {
            reload_ms: Some(300),
            ..Targets::default()
        };
        if self.script != "echo" {
            return t;
        }
        match self.latency_ms {
            0 if self.rate_limit_off => {
                t.name = "instant mock";
                t.acked_per_s = Some(15_000.0);
                t.replies_per_s = Some(15_000.0);
                t.p99_ms = Some((5.0, Some(8)));
                t.rss_mb = Some(40.0);
            }
            100 => {
                t.name = "100 ms";
                t.replies_per_s = Some(1_900.0);
                t.no_fallback = true;
                t.p99_ms = Some((10.0, None));
                t.rss_mb = Some(64.0);
            }
            1000 if self.users == 512 => {
                t.name = "1,000 ms, 512 users";
                t.replies_per_s = Some(450.0);
                t.p99_ms = Some((10.0, None));
            }
            _ => {}
        }
        if self.instances > 1 {
            // The design's memory target is one daemon's; the table shows the instances' sum.
            t.rss_mb = None;
        }
        t
    }
}

/// Targets from DESIGN.md; `None` where the design names none for the scenario.
#[derive(Clone, Debug, Default)]
pub struct Targets {
    pub name: &'static str,
    pub acked_per_s: Option<f64>,
    /// Replies a second until the last reply.
    pub replies_per_s: Option<f64>,
    pub no_fallback: bool,
    /// p99 time to 200 below this many ms, at this connection count only (or at all).
    pub p99_ms: Option<(f64, Option<usize>)>,
    pub rss_mb: Option<f64>,
    pub reload_ms: Option<u64>,
}
