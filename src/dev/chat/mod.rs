//! `linebotd chat`: talk to a bot run by `linebotd dev` from the terminal. Each line typed is
//! sent as a signed text webhook; the bot's replies and pushes are printed as they arrive.

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncBufReadExt;

use crate::cli::ChatArgs;
use crate::dev::fakeline::Call;

use super::actions::{self, Tap};
use super::events;
use crate::cmd::CommandError;

mod remote;

pub(crate) use remote::send_to;
use remote::{fetch_calls, print_calls, print_notes, run_function, webhook_path};

/// How long a poll for new calls waits on the server.
const LONG_POLL_MS: u64 = 20_000;
/// After stdin ends, how long to wait for the answer to the last line.
const LAST_ANSWER_WAIT: Duration = Duration::from_secs(3);

const HELP: &str = "\
type a message and press enter to send it as the current user. Commands:
  /follow          the user adds the bot as a friend
  /unfollow        the user blocks the bot
  /postback DATA   the user taps a postback action carrying DATA
  /tap N [VALUE]   tap button N of the bot's last answer (or /tap LABEL); VALUE answers a
                   date/time picker (2026-12-24, 09:30 or 2026-12-24T09:30)
  /sticker [PACKAGE ID]  send a sticker (446 1988 by default)
  /image           send a photo (content(event) downloads placeholder bytes)
  /location [TITLE]      send a place (Tokyo Station by default)
  /group NAME      speak in group NAME (the bot joins it first); /group alone leaves it
  /run FUNCTION    run the bot's fn FUNCTION() now, as its schedule would
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
    let webhook = webhook_path(&client, &url).await;
    let seen = Arc::new(AtomicUsize::new(start));
    let buttons: Buttons = Arc::default();
    let poller = tokio::spawn(print_calls(
        client.clone(),
        url.clone(),
        seen.clone(),
        buttons.clone(),
    ));
    let notes = tokio::spawn(print_notes(client.clone(), url.clone()));
    say(&format!(
        "chatting with the bot at {url} as {}; /help for commands",
        events::DEV_USER
    ));

    let mut user = events::DEV_USER.to_owned();
    let mut group: Option<String> = None;
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
        let mut outgoing = Vec::new();
        match parse_line(line, &user) {
            Input::Nothing => continue,
            Input::Quit => break,
            Input::Help => say(HELP),
            Input::User(id) => {
                say(&format!("now speaking as {id}"));
                user = id;
            }
            Input::Group(None) => {
                say("back in the one-to-one chat");
                group = None;
            }
            Input::Group(Some(name)) => {
                let id = events::group_id(&name);
                say(&format!(
                    "now speaking in group {name} ({id}); the bot joins it"
                ));
                outgoing.push(events::join(&id));
                group = Some(id);
            }
            Input::Tap(which, value) => {
                let action = find_button(&buttons, &which);
                match action.map(|a| actions::tap(&a, &user, value.as_deref())) {
                    None => say(&format!(
                        "no button {which} in the bot's last answer; /tap N with a number it showed"
                    )),
                    Some(Tap::Note(note)) => say(&note),
                    Some(Tap::Event { event, shows }) => {
                        if let Some(text) = shows {
                            say(&format!("you> {text}"));
                        }
                        outgoing.push(event);
                    }
                }
            }
            Input::Run(function) => {
                waiting_from = Some(seen.load(Ordering::SeqCst));
                say(&run_function(&client, &url, &function).await);
            }
            Input::Unknown(cmd) => say(&format!("unknown command {cmd}; /help lists them")),
            Input::Event(event) => outgoing.push(event),
        }
        for event in outgoing {
            // Messages and taps come from inside the group while in one; follow does not.
            let event = match (&group, event["type"].as_str()) {
                (Some(g), Some("message" | "postback")) => events::in_group(event, g),
                _ => event,
            };
            waiting_from = Some(seen.load(Ordering::SeqCst));
            if let Err(e) = send_to(&client, &url, &webhook, event).await {
                eprintln!("error: {e}");
            }
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
    notes.abort();
    Ok(ExitCode::SUCCESS)
}

/// The actions of the bot's last answer that had any, numbered from 1 in the chat.
type Buttons = Arc<Mutex<Vec<Value>>>;

/// Button `which` of the last answer: its number, or its label (any case).
fn find_button(buttons: &Buttons, which: &str) -> Option<Value> {
    let buttons = buttons.lock().unwrap_or_else(|p| p.into_inner());
    if let Ok(n) = which.parse::<usize>() {
        return n.checked_sub(1).and_then(|i| buttons.get(i)).cloned();
    }
    buttons
        .iter()
        .find(|a| {
            a.get("label")
                .and_then(Value::as_str)
                .is_some_and(|l| l.eq_ignore_ascii_case(which))
        })
        .cloned()
}

enum Input {
    Nothing,
    Quit,
    Help,
    User(String),
    /// Speak in this group (`None`: back to the one-to-one chat).
    Group(Option<String>),
    /// A button by number or label, and the value for a date/time picker.
    Tap(String, Option<String>),
    /// Run a scheduled function now.
    Run(String),
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
        "/tap" if !rest.is_empty() => {
            let (which, value) = match rest.rsplit_once(' ') {
                // `/tap 2 09:30`: a number, then the picker's value.
                Some((n, v)) if n.parse::<usize>().is_ok() => (n, Some(v.to_owned())),
                _ => (rest, None),
            };
            Input::Tap(which.to_owned(), value)
        }
        "/sticker" => {
            let (package, sticker) = rest.split_once(' ').unwrap_or(("446", "1988"));
            Input::Event(events::sticker(user, package, sticker.trim()))
        }
        "/image" => Input::Event(events::image(user)),
        "/location" => {
            let title = if rest.is_empty() {
                "Tokyo Station"
            } else {
                rest
            };
            Input::Event(events::location(user, title, 35.681236, 139.767125))
        }
        "/run" if !rest.is_empty() => Input::Run(rest.to_owned()),
        "/group" if rest.is_empty() => Input::Group(None),
        "/group" => Input::Group(Some(rest.to_owned())),
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
        assert!(
            matches!(parse_line("/tap 2 09:30", "U"), Input::Tap(n, Some(v)) if n == "2" && v == "09:30")
        );
        assert!(matches!(parse_line("/tap Iced tea", "U"), Input::Tap(l, None) if l == "Iced tea"));
        assert!(matches!(parse_line("/group", "U"), Input::Group(None)));
        match parse_line("/sticker", "U1") {
            Input::Event(e) => assert_eq!(e["message"]["packageId"], "446"),
            _ => panic!("sticker"),
        }
        match parse_line("/location Shibuya", "U1") {
            Input::Event(e) => assert_eq!(e["message"]["title"], "Shibuya"),
            _ => panic!("location"),
        }
    }
}
