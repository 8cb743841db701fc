//! CPU time as Linux's `/proc` reports it: per process, and for the whole machine (to see how much
//! the host took away). Throughput on a shared machine swings with its neighbours; CPU time per
//! webhook does much less, so it is what to compare between builds.

use std::time::Duration;

/// `/proc` counts in USER_HZ ticks, which Linux fixes at 100 per second for user space.
const TICK: Duration = Duration::from_millis(10);

/// User plus system time a process has used so far, or `None` where `/proc` is not readable.
pub fn process(pid: u32) -> Option<Duration> {
    parse_process(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// `/proc/<pid>/stat`: the command name is in parentheses and may hold spaces, so fields are
/// counted after the last `)`. utime and stime are fields 14 and 15.
fn parse_process(stat: &str) -> Option<Duration> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u32 = fields.next()?.parse().ok()?;
    let stime: u32 = fields.next()?.parse().ok()?;
    Some(TICK * (utime + stime))
}

/// The machine's CPU ticks so far: all of them, and those stolen by the hypervisor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Machine {
    pub total: u64,
    pub steal: u64,
}

impl Machine {
    pub fn now() -> Option<Self> {
        parse_machine(&std::fs::read_to_string("/proc/stat").ok()?)
    }

    /// The share of CPU time stolen between `earlier` and `self`, in percent.
    pub fn stolen_since(&self, earlier: &Machine) -> Option<f64> {
        let total = self.total.checked_sub(earlier.total)?;
        let steal = self.steal.checked_sub(earlier.steal)?;
        (total > 0).then(|| 100.0 * steal as f64 / total as f64)
    }
}

/// The first line of `/proc/stat`: `cpu user nice system idle iowait irq softirq steal …`.
fn parse_machine(stat: &str) -> Option<Machine> {
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    // guest and guest_nice (fields 9 and 10) are already counted in user and nice.
    Some(Machine {
        total: ticks.iter().take(8).sum(),
        steal: *ticks.get(7)?,
    })
}

/// CPU used between two readings, per event, in microseconds.
pub fn per_event_us(before: Option<Duration>, after: Option<Duration>, events: u64) -> Option<f64> {
    let used = after?.checked_sub(before?)?;
    (events > 0).then(|| used.as_secs_f64() * 1e6 / events as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_time_counts_after_the_command_name() {
        // A command name with spaces and a parenthesis must not shift the fields.
        let stat = "4242 (linebotd (x) y) S 1 4242 4242 0 -1 4194560 900 0 0 0 150 25 0 0 20 0 22";
        assert_eq!(parse_process(stat), Some(Duration::from_millis(1750)));
        assert_eq!(parse_process("4242 (truncated) S 1 2"), None);
    }

    #[test]
    fn machine_steal_share() {
        let before = parse_machine("cpu  100 0 50 800 10 0 5 35 0 0\ncpu0 1 2 3\n").unwrap();
        assert_eq!(
            before,
            Machine {
                total: 1000,
                steal: 35
            }
        );
        let after = Machine {
            total: 1200,
            steal: 85,
        };
        assert_eq!(after.stolen_since(&before), Some(25.0));
        assert_eq!(before.stolen_since(&after), None);
        assert_eq!(parse_machine("intr 1 2 3\n"), None);
    }

    #[test]
    fn per_event() {
        let (a, b) = (Duration::from_millis(100), Duration::from_millis(600));
        assert_eq!(per_event_us(Some(a), Some(b), 10_000), Some(50.0));
        assert_eq!(per_event_us(Some(a), Some(b), 0), None);
        assert_eq!(per_event_us(None, Some(b), 10), None);
    }
}
