//! `linebotd simulate`: one event through the scripts against the fake LINE API; prints the
//! LINE calls they made and their log lines.

use std::io::Write as _;
use std::process::ExitCode;

use serde_json::{json, Value};

use crate::cli::{SimulateArgs, SimulatedEvent};
use crate::cmd::CommandError;
use crate::dev::fakeline::Call;

use super::events;
use super::local::{LocalBot, LocalError, LocalSetup, LogLine};

pub async fn run(args: SimulateArgs) -> Result<ExitCode, CommandError> {
    let events = build_events(&args.event, &args.user).map_err(CommandError::Local)?;
    let setup = LocalSetup::load(&args.local, &args.scripts, false)?;
    let bot = match LocalBot::start(&args.scripts, &setup).await {
        Ok(bot) => bot,
        // Printed as the compiler's report, with carets; not a start-up error.
        Err(e @ LocalError::Load(_)) => {
            eprintln!("{e}");
            return Ok(ExitCode::FAILURE);
        }
        Err(e) => return Err(e.into()),
    };
    let json_out = args.json;
    let scripts = args.scripts.display().to_string();
    let ran = tokio::task::spawn_blocking(move || {
        let mut failed = false;
        let mut seen = std::collections::HashSet::new();
        for event in events {
            let kind = event["type"].as_str().unwrap_or("?").to_owned();
            // The daemon handles an event id once: LINE's redeliveries are dropped.
            if let Some(id) = event["webhookEventId"].as_str() {
                if !seen.insert(id.to_owned()) {
                    eprintln!(
                        "note: skipped a `{kind}` event: webhookEventId {id} came before, and the \
                         daemon handles each event id once (LINE's redeliveries are dropped)"
                    );
                    continue;
                }
            }
            let outcome = bot.send_blocking(event)?;
            print_outcome(&outcome.calls, &outcome.logs, json_out, &|t| bot.redact(t));
            if outcome.handlers_run == 0 {
                eprintln!(
                    "note: no script in {scripts} handles `{kind}` events (define {} or on_event)",
                    crate::pipeline::webhook::handler_name(&kind)
                );
            } else if outcome.calls.is_empty() && !json_out {
                println!("(no LINE calls)");
            }
            for e in &outcome.errors {
                eprintln!("error: {e}");
                failed = true;
            }
            if outcome.undelivered > 0 {
                eprintln!(
                    "error: {} push(es) still queued after waiting",
                    outcome.undelivered
                );
                failed = true;
            }
        }
        if !json_out {
            note_timers(&bot.pending_timers()?);
        }
        Ok::<_, String>(failed)
    })
    .await;
    let _ = std::io::stdout().flush();
    Ok(match ran {
        Ok(Ok(false)) => ExitCode::SUCCESS,
        Ok(Ok(true)) => ExitCode::FAILURE,
        Ok(Err(e)) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: the simulation crashed: {e}");
            ExitCode::FAILURE
        }
    })
}

/// Timers the events set do not run here (simulate ends at once); says which are pending.
fn note_timers(pending: &[crate::store::Timer]) {
    // After the calls printed above, not among them.
    let _ = std::io::stdout().flush();
    let now = crate::store::now_ms();
    for t in pending {
        eprintln!(
            "note: timer {} will call {}(data) of {} in {} s; simulate does not wait for timers \
             (in a *.test.rhai test, run_timers() runs them)",
            t.id,
            t.function,
            t.script,
            (t.due_ms - now).max(0) / 1000
        );
    }
}

fn build_events(event: &SimulatedEvent, user: &str) -> Result<Vec<Value>, String> {
    if let Some(text) = &event.text {
        return Ok(vec![events::text(user, text)]);
    }
    if event.follow {
        return Ok(vec![events::follow(user)]);
    }
    if event.unfollow {
        return Ok(vec![events::unfollow(user)]);
    }
    if let Some(data) = &event.postback {
        return Ok(vec![events::postback(user, data)]);
    }
    let Some(path) = &event.event else {
        return Err(
            "say which event to send: --text, --follow, --unfollow, --postback or --event".into(),
        );
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not valid JSON: {e}", path.display()))?;
    let found = events::from_file_value(value).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(found.into_iter().map(events::complete).collect())
}

/// Calls in order, each script log line printed where it was written among them.
/// Prints the calls and log lines in order, with exposed environment values redacted.
fn print_outcome(
    calls: &[Call],
    logs: &[LogLine],
    json_out: bool,
    redact: &dyn Fn(&str) -> String,
) {
    let mut out = std::io::stdout().lock();
    let print_logs_before = |index: usize, out: &mut std::io::StdoutLock| {
        for log in logs.iter().filter(|l| l.after_calls == index) {
            let line = format!("[{}] {}", log.script, log.text);
            if json_out {
                eprintln!("{line}");
            } else {
                let _ = writeln!(out, "{line}");
            }
        }
    };
    for (i, call) in calls.iter().enumerate() {
        print_logs_before(i, &mut out);
        if json_out {
            let mut line = json!({"method": call.method, "path": call.path, "body": call.body, "status": call.status});
            if let Some(error) = &call.error {
                line["error"] = error.clone();
            }
            let _ = writeln!(out, "{}", redact(&line.to_string()));
        } else {
            let status = call
                .refusal()
                .map(|why| format!("  → LINE refused it: {why}"))
                .unwrap_or_default();
            let _ = writeln!(out, "{} {}{status}", call.method, call.path);
            if !call.body.is_null() {
                let body = serde_json::to_string_pretty(&call.body).unwrap_or_default();
                let _ = writeln!(out, "{}", redact(&body));
            }
        }
    }
    // Logs written after the last call (or when there were no calls).
    for log in logs.iter().filter(|l| l.after_calls >= calls.len()) {
        let line = format!("[{}] {}", log.script, log.text);
        if json_out {
            eprintln!("{line}");
        } else {
            let _ = writeln!(out, "{line}");
        }
    }
}
