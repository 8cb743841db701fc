//! `linebotd schedules`: every schedule the scripts declare, with its zone and next run, and
//! the timers (`later`, `at`) pending in the daemon's store.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use chrono::{TimeZone, Utc};

use crate::cli::SchedulesArgs;
use crate::config::Limits;
use crate::pipeline::script::{engine, loader};
use crate::store::{self, Timer};

use super::CommandError;

pub fn run(args: &SchedulesArgs) -> Result<ExitCode, CommandError> {
    let file = crate::config::local_file(args.config.as_deref(), &args.scripts);
    let tz = crate::config::zone_for(args.zone.timezone, file.as_deref())?;
    let (text, errors) = render(&args.scripts, tz).map_err(|source| CommandError::ReadScripts {
        path: args.scripts.clone(),
        source,
    })?;
    print!("{text}");
    let path = crate::config::store_path(args.store.clone(), file.as_deref())?;
    // Reading must not create a store where the daemon has none.
    if !store::exists(&path) {
        println!("no pending timers (no store at {path})");
    } else {
        let pending = store::open(&path)?.timers_pending(MAX_LISTED)?;
        print!("{}", render_timers(&pending, tz));
    }
    Ok(if errors {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The most pending timers listed (earliest first).
const MAX_LISTED: usize = 1000;

/// The pending timers as a table, due times in `tz`.
pub fn render_timers(pending: &[Timer], tz: chrono_tz::Tz) -> String {
    let mut out = String::new();
    if pending.is_empty() {
        let _ = writeln!(out, "no pending timers");
        return out;
    }
    let _ = writeln!(
        out,
        "\n{:<36} {:<27} {:<20} FUNCTION",
        "TIMER", "DUE", "SCRIPT"
    );
    for t in pending {
        let due = tz
            .timestamp_millis_opt(t.due_ms)
            .single()
            .map(|d| d.format("%Y-%m-%d %H:%M:%S %Z").to_string())
            .unwrap_or_else(|| format!("{} ms", t.due_ms));
        let _ = writeln!(
            out,
            "{:<36} {:<27} {:<20} {}(data)",
            t.id, due, t.script, t.function
        );
    }
    if pending.len() == MAX_LISTED {
        let _ = writeln!(out, "(the first {MAX_LISTED} shown)");
    }
    out
}

/// The listing, and whether any script failed to load.
pub fn render(dir: &Path, tz: chrono_tz::Tz) -> std::io::Result<(String, bool)> {
    let engines = engine::build(&Limits::default()).with_timezone(tz);
    let set = loader::load_dir(&engines, dir, &loader::ScriptSet::default())?;
    let now = Utc::now();
    let mut out = String::new();
    let schedules: Vec<_> = set
        .scripts
        .iter()
        .flat_map(|s| s.schedules.iter())
        .collect();
    if schedules.is_empty() {
        let _ = writeln!(out, "no schedules in {}", dir.display());
    } else {
        let _ = writeln!(
            out,
            "{:<20} {:<16} {:<18} {:<18} NEXT RUN",
            "SCRIPT", "FUNCTION", "CRON", "ZONE"
        );
        for s in schedules {
            let next = s
                .next_after(now)
                .map(|t| {
                    t.with_timezone(&s.tz)
                        .format("%Y-%m-%d %H:%M:%S %Z")
                        .to_string()
                })
                .unwrap_or_else(|| "never".into());
            let _ = writeln!(
                out,
                "{:<20} {:<16} {:<18} {:<18} {next}",
                s.script,
                format!("{}()", s.call),
                s.cron,
                s.tz.name()
            );
        }
    }
    for err in set.errors.values() {
        let _ = writeln!(out, "{}", err.render());
    }
    Ok((out, !set.errors.is_empty()))
}
