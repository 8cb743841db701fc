//! Reading a script's `SCHEDULES` declaration and computing when each entry fires (pure).
//!
//! DST behaviour comes from croner 4, which follows Vixie cron / the Open Cron Pattern
//! Specification. A *fixed-time* entry (numbers in its second, minute and hour fields, e.g.
//! `30 2 * * *`) whose wall-clock time falls in a spring-forward gap runs once, at the first
//! valid instant after the gap (03:00 in America/New_York on 2024-03-10); when the clock falls
//! back and the time happens twice, it runs once, at the first pass. An *interval* entry
//! (`*` or a step in those fields) skips the instants the gap removes and runs on both passes of
//! a repeated hour, because each of those is a real, distinct instant. Searches move along real
//! time, so a "next" time is never in the past.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use rhai::{Dynamic, Engine, OptimizationLevel, Scope, AST};

/// The name of the constant a script declares its schedules in.
pub const SCHEDULES_CONST: &str = "SCHEDULES";

/// Keys an entry may have; anything else is reported, because a typo such as `tx:` would
/// otherwise silently run the job in the wrong zone.
const KNOWN_KEYS: [&str; 3] = ["cron", "call", "tz"];

/// One validated entry of a script's `SCHEDULES`.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The script's file name, e.g. `echo.rhai`.
    pub script: String,
    /// Position in the script's `SCHEDULES` array.
    pub index: usize,
    /// The cron expression as written.
    pub cron: String,
    /// The zero-parameter function to call.
    pub call: String,
    /// The zone the cron expression is read in.
    pub tz: Tz,
    parsed: Cron,
}

impl PartialEq for Schedule {
    // `parsed` is a pure function of `cron`, so the written fields decide equality.
    fn eq(&self, other: &Self) -> bool {
        self.script == other.script
            && self.index == other.index
            && self.cron == other.cron
            && self.call == other.call
            && self.tz == other.tz
    }
}

impl Schedule {
    /// Builds a schedule from its parts, parsing the cron expression. Does not check that
    /// `call` exists; [`schedules_from_ast`] does that against the script.
    pub fn new(
        script: &str,
        index: usize,
        cron: &str,
        call: &str,
        tz: Tz,
    ) -> Result<Self, ScheduleError> {
        let parsed = parse_cron(cron).map_err(|message| ScheduleError::InvalidCron {
            script: script.to_owned(),
            index,
            entry: describe_parts(cron, call),
            message,
        })?;
        Ok(Self {
            script: script.to_owned(),
            index,
            cron: cron.to_owned(),
            call: call.to_owned(),
            tz,
            parsed,
        })
    }

    /// The identity under which the last run time is persisted: `script#index:call`.
    pub fn key(&self) -> String {
        format!("{}#{}:{}", self.script, self.index, self.call)
    }

    /// The first scheduled instant strictly after `after`, or `None` if there is none (a
    /// pattern such as `0 0 30 2 *` never matches).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Cron has whole-second resolution; searching from the floored second keeps the
        // result "strictly after" for inputs with a fractional part too.
        let floored = DateTime::<Utc>::from_timestamp(after.timestamp(), 0)?;
        let local = floored.with_timezone(&self.tz);
        let next = self.parsed.find_next_occurrence(&local, false).ok()?;
        Some(next.with_timezone(&Utc)).filter(|t| *t > after)
    }

    /// The latest scheduled instant at or before `at`, used to decide whether a run was
    /// missed while the daemon was down.
    pub fn latest_at_or_before(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let floored = DateTime::<Utc>::from_timestamp(at.timestamp(), 0)?;
        let local = floored.with_timezone(&self.tz);
        let prev = self.parsed.find_previous_occurrence(&local, true).ok()?;
        Some(prev.with_timezone(&Utc)).filter(|t| *t <= at)
    }
}

/// Why a script's `SCHEDULES` was rejected. Entry-level variants carry the script, the
/// entry's index and a short rendering of the entry so the message points at the line to fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScheduleError {
    #[error("{script}: SCHEDULES must be an array of maps like #{{ cron: \"0 9 * * *\", call: \"morning\" }}, found {found}")]
    NotAnArray { script: String, found: String },
    #[error("{script}: SCHEDULES[{index}] ({entry}): must be a map like #{{ cron: \"0 9 * * *\", call: \"morning\" }}, found {found}")]
    NotAMap {
        script: String,
        index: usize,
        entry: String,
        found: String,
    },
    #[error("{script}: SCHEDULES[{index}] ({entry}): missing \"{field}\" (a string)")]
    MissingField {
        script: String,
        index: usize,
        entry: String,
        field: &'static str,
    },
    #[error("{script}: SCHEDULES[{index}] ({entry}): \"{field}\" must be a string, found {found}")]
    NotAString {
        script: String,
        index: usize,
        entry: String,
        field: &'static str,
        found: String,
    },
    #[error(
        "{script}: SCHEDULES[{index}] ({entry}): unknown key \"{key}\" (allowed: cron, call, tz)"
    )]
    UnknownKey {
        script: String,
        index: usize,
        entry: String,
        key: String,
    },
    #[error("{script}: SCHEDULES[{index}] ({entry}): invalid cron expression: {message}")]
    InvalidCron {
        script: String,
        index: usize,
        entry: String,
        message: String,
    },
    #[error(
        "{script}: SCHEDULES[{index}] ({entry}): unknown time zone \"{tz}\" ({})",
        crate::pipeline::script::suggest::zone_hint(tz)
    )]
    UnknownTimeZone {
        script: String,
        index: usize,
        entry: String,
        tz: String,
    },
    #[error(
        "{script}: SCHEDULES[{index}] ({entry}): function {call}() is not defined in this script"
    )]
    FunctionNotDefined {
        script: String,
        index: usize,
        entry: String,
        call: String,
    },
    #[error("{script}: SCHEDULES[{index}] ({entry}): function {call} takes {params} parameter{plural}; scheduled functions take none", plural = if *params == 1 { "" } else { "s" })]
    WrongArity {
        script: String,
        index: usize,
        entry: String,
        call: String,
        params: usize,
    },
}

/// Reads and validates the `SCHEDULES` constant of a compiled script without running any of
/// its code. A script without `SCHEDULES` has no schedules.
///
/// rhai exposes only top-level constants whose value is a literal. Entries built from other
/// constants or from operators on literals (`tz: ZONE`, `"0 " + "9 * * *"`) become literals
/// when the AST is optimised, which is also done here if the engine compiled without
/// optimisation. A `SCHEDULES` that needs a function call to compute is not visible.
pub fn schedules_from_ast(
    script: &str,
    ast: &AST,
    default_tz: Tz,
) -> Result<Vec<Schedule>, ScheduleError> {
    let Some(value) = schedules_value(ast) else {
        return Ok(Vec::new());
    };
    let Some(entries) = value.clone().try_cast::<rhai::Array>() else {
        return Err(ScheduleError::NotAnArray {
            script: script.to_owned(),
            found: crate::pipeline::script::suggest::kind(&value).to_owned(),
        });
    };
    entries
        .iter()
        .enumerate()
        .map(|(index, entry)| entry_to_schedule(script, index, entry, ast, default_tz))
        .collect()
}

/// Every error of `SCHEDULES`, not only the first: one per bad entry (or the one that the
/// constant is not an array). For `check`, so one run shows them all.
pub fn schedule_errors(script: &str, ast: &AST, default_tz: Tz) -> Vec<ScheduleError> {
    match schedules_from_ast(script, ast, default_tz) {
        Ok(_) => return Vec::new(),
        Err(e @ ScheduleError::NotAnArray { .. }) => return vec![e],
        Err(_) => {}
    }
    let entries = schedules_value(ast)
        .and_then(|v| v.try_cast::<rhai::Array>())
        .unwrap_or_default();
    entries
        .iter()
        .enumerate()
        .filter_map(|(index, entry)| entry_to_schedule(script, index, entry, ast, default_tz).err())
        .collect()
}

/// The value of `SCHEDULES`: a literal constant, or one that folds to a literal (simple
/// optimisation folds constants and built-in operators only; it calls no script function and
/// runs no statement).
fn schedules_value(ast: &AST) -> Option<Dynamic> {
    find_schedules(ast).or_else(|| {
        let optimised =
            Engine::new_raw().optimize_ast(&Scope::new(), ast.clone(), OptimizationLevel::Simple);
        find_schedules(&optimised)
    })
}

/// The last literal `const SCHEDULES`, as the last declaration is what a run would see.
fn find_schedules(ast: &AST) -> Option<Dynamic> {
    ast.iter_literal_variables(true, false)
        .filter(|(name, ..)| *name == SCHEDULES_CONST)
        .map(|(.., value)| value)
        .last()
}

fn entry_to_schedule(
    script: &str,
    index: usize,
    entry: &Dynamic,
    ast: &AST,
    default_tz: Tz,
) -> Result<Schedule, ScheduleError> {
    let Some(map) = entry.read_lock::<rhai::Map>() else {
        return Err(ScheduleError::NotAMap {
            script: script.to_owned(),
            index,
            entry: entry.to_string(),
            found: crate::pipeline::script::suggest::kind(entry).to_owned(),
        });
    };
    let text = describe_map(&map);
    let field = |name: &'static str| -> Result<Option<String>, ScheduleError> {
        match map.get(name) {
            None => Ok(None),
            Some(v) => match v.clone().into_immutable_string() {
                Ok(s) => Ok(Some(s.to_string())),
                Err(found) => Err(ScheduleError::NotAString {
                    script: script.to_owned(),
                    index,
                    entry: text.clone(),
                    field: name,
                    found: found.to_owned(),
                }),
            },
        }
    };
    let required = |name: &'static str| -> Result<String, ScheduleError> {
        field(name)?.ok_or_else(|| ScheduleError::MissingField {
            script: script.to_owned(),
            index,
            entry: text.clone(),
            field: name,
        })
    };

    if let Some(key) = map.keys().find(|k| !KNOWN_KEYS.contains(&k.as_str())) {
        return Err(ScheduleError::UnknownKey {
            script: script.to_owned(),
            index,
            entry: text.clone(),
            key: key.to_string(),
        });
    }
    let cron = required("cron")?;
    let call = required("call")?;
    let tz = match field("tz")? {
        None => default_tz,
        Some(name) => Tz::from_str(&name).map_err(|_| ScheduleError::UnknownTimeZone {
            script: script.to_owned(),
            index,
            entry: text.clone(),
            tz: name.clone(),
        })?,
    };
    let schedule = Schedule::new(script, index, &cron, &call, tz)?;
    check_function(ast, &schedule)?;
    Ok(schedule)
}

/// The function must exist with zero parameters; overloads with other arities do not count.
fn check_function(ast: &AST, schedule: &Schedule) -> Result<(), ScheduleError> {
    let mut arities = ast
        .iter_functions()
        .filter(|f| f.name == schedule.call && f.this_type.is_none())
        .map(|f| f.params.len())
        .peekable();
    if arities.peek().is_none() {
        return Err(ScheduleError::FunctionNotDefined {
            script: schedule.script.clone(),
            index: schedule.index,
            entry: describe_parts(&schedule.cron, &schedule.call),
            call: schedule.call.clone(),
        });
    }
    let arities: Vec<usize> = arities.collect();
    if arities.contains(&0) {
        return Ok(());
    }
    Err(ScheduleError::WrongArity {
        script: schedule.script.clone(),
        index: schedule.index,
        entry: describe_parts(&schedule.cron, &schedule.call),
        call: schedule.call.clone(),
        params: arities.into_iter().min().unwrap_or(0),
    })
}

fn describe_parts(cron: &str, call: &str) -> String {
    format!("cron {cron:?}, call {call:?}")
}

/// `cron "…", call "…", tz "…"` first, then any other keys, so error messages read the same
/// however the script ordered its map.
fn describe_map(map: &rhai::Map) -> String {
    let shown = |v: &Dynamic| match v.clone().into_immutable_string() {
        Ok(s) => format!("{:?}", s.as_str()),
        Err(_) => v.to_string(),
    };
    let known = KNOWN_KEYS
        .iter()
        .filter_map(|k| map.get(*k).map(|v| format!("{k} {}", shown(v))));
    let others = map
        .iter()
        .filter(|(k, _)| !KNOWN_KEYS.contains(&k.as_str()))
        .map(|(k, v)| format!("{k} {}", shown(v)));
    known.chain(others).collect::<Vec<_>>().join(", ")
}

mod cron;
#[cfg(test)]
mod tests;

use cron::parse_cron;
