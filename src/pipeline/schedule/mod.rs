//! Cron schedules declared by scripts: reading them from a script's AST and firing them on time.
//!
//! A script declares them in a literal constant; `call` is a reserved word in Rhai, so that
//! key must be quoted (`call: "…"` does not compile):
//!
//! ```rhai
//! const SCHEDULES = [
//!     #{ cron: "0 9 * * *", "call": "morning", tz: "Asia/Tokyo" },
//!     #{ cron: "*/30 * * * * *", "call": "tick" },  // optional leading seconds field
//! ];
//! fn morning() { push("U1", "おはよう!") }
//! fn tick() { }
//! ```
//!
//! [`spec`] is pure (parse, validate, compute the next time); [`runner`] is the timer loop that
//! calls a [`runner::RunFn`] at those times and knows nothing about how a call is executed.
//! [`timers`] fires the one-off timers scripts set with `later` and `at`.

pub mod runner;
pub mod scripts;
pub mod spec;
pub mod timers;

pub use runner::{LastRuns, MemoryLastRuns, RunFn, Scheduler, SchedulerStats};
pub use scripts::{fire_timer, script_runner, timer_runner, StoreLastRuns};
pub use spec::{schedule_errors, schedules_from_ast, Schedule, ScheduleError, SCHEDULES_CONST};
pub use timers::{Fired, TimerLoop, Timers};
