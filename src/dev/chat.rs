//! `linebotd chat`: talk to a bot run by `linebotd dev` from the terminal. Each line typed is
//! sent as a signed text webhook; the bot's replies and pushes are printed as they arrive.

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncBufReadExt;

use crate::cli::ChatArgs;
use crate::dev::fakeline::Call;

use super::events;
use super::server::DEV_SECRET;
use crate::cmd::CommandError;

/// How long a poll for new calls waits on the server.
const LONG_POLL_MS: u64 = 20_000;
/// After stdin ends, how long to wait for the answer to the last line.
const LAST_ANSWER_WAIT: Duration = Duration::from_secs(3);

const HELP: &str = "\
type a message and press enter to send it as the current user. Commands:
  /follow          the user adds the bot as a friend
  /unfollow        the user blocks the bot
  /postback DATA   the user taps a postback action carrying DATA
  /user NAME       speak as another user (Udev-NAME)
  /help            this text
  /quit            leave (so does end of input, Ctrl-D)";

pub async fn run(args: ChatArgs) -> Result<ExitCode, CommandError> {
    chat(&args.url).await
}

/// [`chat`] for `linebotd dev --chat`.
pub async fn session(url: &str) -> Result<ExitCode, CommandError> {
    chat(url).await
}

/// The chat loop against the dev daemon at `url`, reading stdin until EOF or `/quit`.
async fn chat(url: &str) -> Result<ExitCode, CommandError> {
    let url = url.trim_end_matches('/').to_owned();
    let client = reqwest::Client::new();
    let start = fetch_calls(&client, &url, 0, 0)
        .await
        .map_err(|source| CommandError::DevDaemonUnreachable {
            url: url.clone(),
            source,
        })?
        .len();
    let seen = Arc::new(AtomicUsize::new(start));
    let poller = tokio::spawn(print_calls(client.clone(), url.clone(), seen.clone()));
    say(&format!(
        "chatting with the bot at {url} as {}; /help for commands",
        events::DEV_USER
    ));

    let mut user = events::DEV_USER.to_owned();
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut waiting_from = None;
    loop {
        let line = match lines.next_line().await {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(e) => {
                eprintln!("error: cannot read input: {e}");
                break;
            }
        };
        let line = line.trim();
        let event = match parse_line(line, &user) {
            Input::Nothing => continue,
            Input::Quit => break,
            Input::Help => {
                say(HELP);
                continue;
            }
            Input::User(id) => {
                say(&format!("now speaking as {id}"));
                user = id;
                continue;
            }
            Input::Unknown(cmd) => {
                say(&format!("unknown command {cmd}; /help lists them"));
                continue;
            }
            Input::Event(event) => event,
        };
        waiting_from = Some(seen.load(Ordering::SeqCst));
        if let Err(e) = send(&client, &url, event).await {
            eprintln!("error: {e}");
        }
    }
    // Piped input ends right after the last line: give its answer a moment to arrive.
    if let Some(mark) = waiting_from {
        let deadline = tokio::time::Instant::now() + LAST_ANSWER_WAIT;
        while seen.load(Ordering::SeqCst) <= mark && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    poller.abort();
    Ok(ExitCode::SUCCESS)
}

enum Input {
    Nothing,
    Quit,
    Help,
    User(String),
    Unknown(String),
    Event(Value),
}

fn parse_line(line: &str, user: &str) -> Input {
    let (command, rest) = line.split_once(' ').unwrap_or((line, ""));
    let rest = rest.trim();
    match command {
        "" => Input::Nothing,
        "/quit" | "/exit" => Input::Quit,
        "/help" => Input::Help,
        "/follow" => Input::Event(events::follow(user)),
        "/unfollow" => Input::Event(events::unfollow(user)),
        "/postback" => Input::Event(events::postback(user, rest)),
        "/user" if !rest.is_empty() => Input::User(format!("Udev-{rest}")),
        "/user" => Input::User(events::DEV_USER.to_owned()),
        c if c.starts_with('/') && !c.starts_with("//") => Input::Unknown(c.to_owned()),
        // `//text` sends a text that starts with a slash.
        _ => Input::Event(events::text(
            user,
            line.strip_prefix('/')
                .filter(|_| line.starts_with("//"))
                .unwrap_or(line),
        )),
    }
}

fn say(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

async fn send(client: &reqwest::Client, url: &str, event: Value) -> Result<(), String> {
    let body = events::body(vec![event]).to_string();
    let signature = crate::pipeline::webhook::sign(DEV_SECRET.as_bytes(), body.as_bytes());
    let response = client
        .post(format!("{url}/callback"))
        .header("content-type", "application/json")
        .header("x-line-signature", signature)
        .body(body)
        .send()
        .await
        .map_err(|e| {
            format!("cannot reach the dev daemon at {url}: {e} (is `linebotd dev` still running?)")
        })?;
    if !response.status().is_success() {
        return Err(format!(
            "the dev daemon answered {} (was it started with `linebotd dev`? its channel secret must be {DEV_SECRET})",
            response.status()
        ));
    }
    Ok(())
}

async fn fetch_calls(
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

/// Prints the bot's messages as they reach the fake LINE API.
async fn print_calls(client: reqwest::Client, url: String, seen: Arc<AtomicUsize>) {
    loop {
        let after = seen.load(Ordering::SeqCst);
        match fetch_calls(&client, &url, after, LONG_POLL_MS).await {
            Ok(calls) => {
                for call in &calls {
                    for line in bot_lines(call) {
                        say(&line);
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

/// What the user would see of one call: a line per message it delivered.
pub fn bot_lines(call: &Call) -> Vec<String> {
    if let Some(why) = call.refusal() {
        // Nothing reached the user; say so, with LINE's reason, instead of staying silent.
        let what = match call.path.strip_prefix("/v2/bot/message/") {
            Some(kind) if !kind.contains('/') => kind.to_owned(),
            _ => format!("{} {}", call.method, call.path),
        };
        return vec![format!("(LINE refused the {what}: {why})")];
    }
    let prefix = match call.path.rsplit('/').next() {
        Some("multicast") => "bot (multicast)> ",
        Some("broadcast") => "bot (broadcast)> ",
        Some("narrowcast") => "bot (narrowcast)> ",
        _ => "bot> ",
    };
    call.messages()
        .iter()
        .map(|m| format!("{prefix}{}", describe_message(m)))
        .collect()
}

/// A message as one line: text verbatim, other types as a bracketed summary.
pub fn describe_message(message: &Value) -> String {
    let field = |k: &str| message.get(k).and_then(Value::as_str).unwrap_or("");
    let kind = field("type");
    let mut line = match kind {
        "text" => field("text").to_owned(),
        "sticker" => format!("[sticker {}/{}]", field("packageId"), field("stickerId")),
        "image" | "video" | "audio" => format!("[{kind} {}]", field("originalContentUrl")),
        "flex" | "template" => format!("[{kind}: {}]", field("altText")),
        "location" => format!("[location: {} {}]", field("title"), field("address")),
        other => format!("[{other}]"),
    };
    if let Some(items) = message
        .pointer("/quickReply/items")
        .and_then(Value::as_array)
    {
        let labels: Vec<&str> = items
            .iter()
            .filter_map(|i| i.pointer("/action/label").and_then(Value::as_str))
            .collect();
        line.push_str(&format!(" [quick reply: {}]", labels.join(" | ")));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_read_as_one_line_each() {
        assert_eq!(
            describe_message(&json!({"type": "text", "text": "hi"})),
            "hi"
        );
        assert_eq!(
            describe_message(&json!({"type": "sticker", "packageId": "446", "stickerId": "1988"})),
            "[sticker 446/1988]"
        );
        assert_eq!(
            describe_message(&json!({"type": "flex", "altText": "menu", "contents": {}})),
            "[flex: menu]"
        );
        let quick = json!({"type": "text", "text": "pick", "quickReply": {"items": [
            {"type": "action", "action": {"type": "message", "label": "a", "text": "a"}},
            {"type": "action", "action": {"type": "message", "label": "b", "text": "b"}}
        ]}});
        assert_eq!(describe_message(&quick), "pick [quick reply: a | b]");
    }

    #[test]
    fn a_refused_call_is_shown_with_lines_reason() {
        let call = Call {
            index: 0,
            method: "POST".into(),
            path: "/v2/bot/message/reply".into(),
            body: json!({"replyToken": "t", "messages": [{"type": "gif"}]}),
            status: 400,
            error: Some(json!({"message": "The request body has 1 error(s)",
                "details": [{"property": "messages[0].type", "message": "must be one of the following values: [text]"}]})),
            at_ms: 0,
            to: None,
        };
        assert_eq!(
            bot_lines(&call),
            [
                "(LINE refused the reply: 400 The request body has 1 error(s) \
              [messages[0].type: must be one of the following values: [text]])"
            ]
        );
    }

    #[test]
    fn commands_become_events_and_text_is_sent_as_is() {
        assert!(matches!(parse_line("/quit", "U"), Input::Quit));
        assert!(matches!(parse_line("/user alice", "U"), Input::User(id) if id == "Udev-alice"));
        match parse_line("/postback action=buy", "U1") {
            Input::Event(e) => assert_eq!(e["postback"]["data"], "action=buy"),
            _ => panic!("postback"),
        }
        match parse_line("//etc", "U1") {
            Input::Event(e) => assert_eq!(e["message"]["text"], "/etc"),
            _ => panic!("text"),
        }
        assert!(matches!(parse_line("/nope", "U"), Input::Unknown(_)));
    }
}
