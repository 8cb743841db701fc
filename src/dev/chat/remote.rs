//! The chat's side of the dev daemon's HTTP API: signed webhooks in, and long polls of the
//! calls the bot made (`/dev/calls`) and of the daemon's notes (`/dev/notes`), plus `/run`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::dev::fakeline::Call;
use crate::dev::notes::Note;
use crate::dev::server::DEV_SECRET;
use crate::dev::{actions, events};

use super::{bot_lines, say, Buttons, LONG_POLL_MS};

/// The dev daemon's webhook path (`/callback` unless linebotd.toml's `webhook_path` says
/// otherwise), from its `/dev/info`.
pub(super) async fn webhook_path(client: &reqwest::Client, url: &str) -> String {
    let info = client
        .get(format!("{url}/dev/info"))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status);
    let info = match info {
        Ok(answer) => answer.json::<Value>().await.ok(),
        Err(_) => None,
    };
    info.as_ref()
        .and_then(|i| i["webhook_path"].as_str())
        .unwrap_or("/callback")
        .to_owned()
}

/// [`send`] to the webhook at `path` (the browser console knows the daemon's real path).
pub(crate) async fn send_to(
    client: &reqwest::Client,
    url: &str,
    path: &str,
    event: Value,
) -> Result<(), String> {
    let body = events::body(vec![event]).to_string();
    let signature = crate::pipeline::webhook::sign(DEV_SECRET.as_bytes(), body.as_bytes());
    let response = client
        .post(format!("{url}{path}"))
        .header("content-type", "application/json")
        .header("x-line-signature", signature)
        .body(body)
        .send()
        .await
        .map_err(|e| {
            format!(
                "cannot reach the dev daemon at {url}: {e} (is `{} dev` still running?)",
                crate::cmd::invoked::command()
            )
        })?;
    if !response.status().is_success() {
        return Err(format!(
            "the dev daemon answered {} (was it started with `{} dev`? its channel secret must be {DEV_SECRET})",
            response.status(),
            crate::cmd::invoked::command()
        ));
    }
    Ok(())
}

/// Asks the dev daemon to run `function()` now; what it says back, as a line for the chat.
pub(super) async fn run_function(client: &reqwest::Client, url: &str, function: &str) -> String {
    let answer = client
        .post(format!("{url}/dev/run/{function}"))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status);
    let body: Value = match answer {
        Ok(response) => response.json().await.unwrap_or(Value::Null),
        Err(e) if e.status() == Some(reqwest::StatusCode::NOT_FOUND) => {
            return format!("no script defines {function}() without parameters");
        }
        Err(e) => return format!("could not run {function}(): {e}"),
    };
    let errors: Vec<&str> = body["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if errors.is_empty() {
        format!("ran {function}() in {} script(s)", body["ran"])
    } else {
        format!("ran {function}(): {}", errors.join("; "))
    }
}

pub(super) async fn fetch_calls(
    client: &reqwest::Client,
    url: &str,
    after: usize,
    wait_ms: u64,
) -> Result<Vec<Call>, reqwest::Error> {
    client
        .get(format!("{url}/dev/calls?after={after}&wait_ms={wait_ms}"))
        .timeout(Duration::from_millis(wait_ms + 10_000))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await
}

/// Prints the bot's messages as they reach the fake LINE API, each answer's buttons numbered
/// for `/tap`.
pub(super) async fn print_calls(
    client: reqwest::Client,
    url: String,
    seen: Arc<AtomicUsize>,
    buttons: Buttons,
) {
    loop {
        let after = seen.load(Ordering::SeqCst);
        match fetch_calls(&client, &url, after, LONG_POLL_MS).await {
            Ok(calls) => {
                for call in &calls {
                    for line in bot_lines(call) {
                        say(&line);
                    }
                    let tappable: Vec<Value> = if call.accepted() {
                        call.messages()
                            .iter()
                            .flat_map(actions::actions_of)
                            .collect()
                    } else {
                        Vec::new()
                    };
                    if !tappable.is_empty() {
                        // Kept before they are shown, so a quick `/tap` finds them.
                        let shown: Vec<String> = tappable.iter().map(actions::describe).collect();
                        *buttons.lock().unwrap_or_else(|p| p.into_inner()) = tappable;
                        for (i, line) in shown.iter().enumerate() {
                            say(&format!("    [{}] {line}", i + 1));
                        }
                    }
                }
                if let Some(last) = calls.last() {
                    seen.store(last.index + 1, Ordering::SeqCst);
                }
            }
            Err(e) => {
                eprintln!("warning: lost the dev daemon at {url} ({e}); retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Prints what the dev daemon notes besides the bot's messages: an event no script handles, a
/// handler that failed. Notes from before the chat started are skipped.
pub(super) async fn print_notes(client: reqwest::Client, url: String) {
    let poll = |after: usize, wait_ms: u64| {
        let request = client
            .get(format!("{url}/dev/notes?after={after}&wait_ms={wait_ms}"))
            .timeout(Duration::from_millis(wait_ms + 10_000));
        async move {
            request
                .send()
                .await?
                .error_for_status()?
                .json::<Vec<Note>>()
                .await
        }
    };
    let Ok(before) = poll(0, 0).await else {
        return;
    };
    let mut after = before.len();
    loop {
        match poll(after, LONG_POLL_MS).await {
            Ok(notes) => {
                for note in &notes {
                    say(&format!("note: {}", note.text));
                }
                after = notes.last().map_or(after, |n| n.index + 1);
            }
            Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
}
