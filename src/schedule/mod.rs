//! Cron schedules declared by scripts: reading them from a script's AST and firing them on time.
//!
//! [`spec`] is pure (parse, validate, compute the next time); [`runner`] is the timer loop that
//! calls a [`runner::RunFn`] at those times and knows nothing about how a call is executed.

pub mod runner;
pub mod spec;

pub use runner::{LastRuns, MemoryLastRuns, RunFn, Scheduler, SchedulerStats};
pub use spec::{schedules_from_ast, Schedule, ScheduleError, SCHEDULES_CONST};
