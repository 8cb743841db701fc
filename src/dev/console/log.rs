//! The console's live log: what the dev daemon already records (the fake LINE API's calls, the
//! dispatcher's notes, reloads, load errors, reply fallbacks) gathered in one journal of JSON
//! entries and streamed to the browser as server-sent events.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream, StreamExt};
use serde_json::{json, Value};

use crate::dev::fakeline::{Call, Calls};
use crate::dev::notes::Journal;
use crate::pipeline::script::{LoadError, ReloadReport, RunError};

/// How long one wait for new entries lasts before the stream asks again.
const POLL: Duration = Duration::from_secs(20);

/// Endpoints LINE bills for: every message they send counts against the plan (replies are free).
const BILLED: &[&str] = &["push", "multicast", "broadcast", "narrowcast"];

/// Every entry the console shows, in order. Each is `{"kind": …, "at_ms": …, …}`.
pub struct Log {
    journal: Journal<Value>,
    /// Where the scripts are, to show the source line a run error points at.
    scripts_dir: PathBuf,
}

impl Log {
    pub fn new(scripts_dir: &Path) -> Self {
        Self {
            journal: Journal::default(),
            scripts_dir: scripts_dir.to_owned(),
        }
    }

    fn add(&self, kind: &str, mut entry: Value) {
        entry["kind"] = json!(kind);
        entry["at_ms"] = json!(crate::store::now_ms());
        self.journal.add(entry);
    }

    /// A webhook body on its way to the daemon (from the console, `chat` or anyone else).
    pub fn webhook(&self, body: Value) {
        self.add("webhook", json!({ "body": body }));
    }

    /// A call the bot made to the fake LINE API, with whether LINE bills it.
    pub fn call(&self, call: &Call) {
        let endpoint = call.path.rsplit('/').next().unwrap_or("");
        let billed = call.path.starts_with("/v2/bot/message/") && BILLED.contains(&endpoint);
        self.add(
            "call",
            json!({ "call": call, "billed": billed && call.accepted(), "refusal": call.refusal() }),
        );
    }

    pub fn note(&self, text: String) {
        self.add("note", json!({ "text": text }));
    }

    /// A reply that went out as a (billed) push to `to`.
    pub fn fallback(&self, to: &str, why: &str) {
        self.add("fallback", json!({ "to": to, "why": why }));
    }

    pub fn load_error(&self, error: &LoadError) {
        self.add(
            "error",
            place(
                &error.path,
                error.line,
                error.col,
                error.source_line.clone(),
                &error.message,
                &error.render(),
            ),
        );
    }

    /// A handler that failed, pointing at its line in the script as it is on disk now.
    pub fn run_error(&self, error: &RunError) {
        let source = error.line.and_then(|line| {
            let text = std::fs::read_to_string(self.scripts_dir.join(&error.script)).ok()?;
            text.lines().nth(line.checked_sub(1)?).map(str::to_owned)
        });
        let message = format!("in {}(): {}", error.function, error.message);
        let text = format!("a handler failed: {error}");
        self.add(
            "error",
            place(
                &error.script,
                error.line,
                error.col,
                source,
                &message,
                &text,
            ),
        );
    }

    pub fn reload(&self, report: &ReloadReport) {
        self.add(
            "reload",
            json!({ "loaded": report.loaded, "removed": report.removed,
                    "failed": report.errors.len() }),
        );
        for error in &report.errors {
            self.load_error(error);
        }
    }

    /// Copies every call the fake records into the log, for as long as the log lives.
    pub fn follow_calls(self: &Arc<Self>, calls: Calls) {
        let log = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut next = 0;
            loop {
                let new = calls.wait_after(next, POLL).await;
                let Some(log) = log.upgrade() else { return };
                for call in &new {
                    log.call(call);
                    next = call.index + 1;
                }
            }
        });
    }
}

/// An error entry: where (`file:line:col`), the message, the source line and the caret column.
fn place(
    file: &str,
    line: Option<usize>,
    col: Option<usize>,
    source: Option<String>,
    message: &str,
    text: &str,
) -> Value {
    let at = match (line, col) {
        (Some(l), Some(c)) => format!("{file}:{l}:{c}"),
        (Some(l), None) => format!("{file}:{l}"),
        _ => file.to_owned(),
    };
    json!({ "at": at, "message": message, "source": source, "col": col, "text": text })
}

/// `GET /api/log`: every entry so far, then each new one as it comes. A browser that reconnects
/// sends the last id it saw (`Last-Event-ID`) and continues after it.
pub async fn stream(
    State(log): State<Arc<Log>>,
    headers: HeaderMap,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let from = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .map_or(0, |last| last + 1);
    let batches = stream::unfold(from, move |next| {
        let log = log.clone();
        async move {
            let entries = log.journal.wait_after(next, POLL).await;
            let next = entries.last().map_or(next, |(i, _)| i + 1);
            let events: Vec<Result<Event, Infallible>> = entries
                .into_iter()
                .map(|(i, entry)| Ok(Event::default().id(i.to_string()).data(entry.to_string())))
                .collect();
            Some((stream::iter(events), next))
        }
    });
    Sse::new(batches.flatten()).keep_alive(KeepAlive::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::script::RunErrorKind;

    fn call(path: &str, status: u16) -> Call {
        Call {
            index: 0,
            method: "POST".into(),
            path: path.into(),
            body: json!({"to": "U1", "messages": [{"type": "text", "text": "hi"}]}),
            status,
            error: None,
            at_ms: 0,
            to: None,
        }
    }

    fn entries(log: &Log) -> Vec<Value> {
        log.journal.after(0).into_iter().map(|(_, e)| e).collect()
    }

    #[test]
    fn accepted_pushes_are_billed_and_replies_are_not() {
        let log = Log::new(Path::new("."));
        log.call(&call("/v2/bot/message/push", 200));
        log.call(&call("/v2/bot/message/reply", 200));
        log.call(&call("/v2/bot/message/multicast", 400));
        let billed: Vec<bool> = entries(&log)
            .iter()
            .map(|e| e["billed"].as_bool().unwrap_or_default())
            .collect();
        assert_eq!(billed, [true, false, false]);
        assert_eq!(entries(&log)[2]["refusal"], "400");
    }

    #[test]
    fn a_run_error_points_at_its_line_and_column_in_the_script() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(
            dir.path().join("bot.rhai"),
            "fn on_message(e) {\n    throw \"no\";\n}\n",
        )
        .expect("script");
        let log = Log::new(dir.path());
        log.run_error(&RunError {
            script: "bot.rhai".into(),
            function: "on_message".into(),
            line: Some(2),
            col: Some(5),
            kind: RunErrorKind::Runtime,
            message: "no".into(),
        });
        let entry = &entries(&log)[0];
        assert_eq!(entry["kind"], "error");
        assert_eq!(entry["at"], "bot.rhai:2:5");
        assert_eq!(entry["source"], "    throw \"no\";");
        assert_eq!(entry["col"], 5);
        assert_eq!(entry["message"], "in on_message(): no");
    }
}
