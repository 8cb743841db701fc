//! `linebotd schedules`: every schedule the scripts declare, with its zone and next run.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use chrono::Utc;

use crate::cli::SchedulesArgs;
use crate::config::Limits;
use crate::pipeline::script::{engine, loader};

use super::CommandError;

pub fn run(args: &SchedulesArgs) -> Result<ExitCode, CommandError> {
    let tz = args.zone.timezone;
    let (text, errors) = render(&args.scripts, tz).map_err(|source| CommandError::ReadScripts {
        path: args.scripts.clone(),
        source,
    })?;
    print!("{text}");
    Ok(if errors {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
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
