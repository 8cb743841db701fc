//! `linebotd dev`: the real daemon with hot reload, pointed at an in-process fake LINE API, with
//! a fixed channel secret so `linebotd chat` can sign its webhooks. Needs no LINE account.
//!
//! Every call the bot makes is printed as one line and served at `GET /dev/calls?after=N` on the
//! daemon's own port (that is how `chat` sees the bot's answers). The browser console
//! (`console/`) runs beside it on a listener of its own; `GET /` here sends a browser there.

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::net::TcpListener;

use crate::cli::{DevArgs, Settings};
use crate::cmd::CommandError;
use crate::config::{Config, LogFormat};
use crate::daemon::DaemonError;
use crate::dev::fakeline::{Call, Calls, FakeLine};

use super::local::DEV_TOKEN;

/// The channel secret of `linebotd dev`; `chat` signs with it.
pub const DEV_SECRET: &str = "linebotd-dev-secret";

pub async fn run(args: DevArgs) -> Result<ExitCode, CommandError> {
    if args.fresh && args.store != ":memory:" {
        for suffix in ["", "-wal", "-shm"] {
            let path = format!("{}{suffix}", args.store);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(CommandError::DeleteFile {
                        path: path.into(),
                        source,
                    })
                }
            }
        }
    }
    let fake = FakeLine::start()
        .await
        .map_err(|e| CommandError::Local(format!("cannot start the fake LINE API: {e}")))?;
    let fake = Arc::new(fake);
    let settings = Settings {
        listen: Some(args.listen.clone()),
        scripts: Some(args.scripts.clone()),
        channel_secret: Some(DEV_SECRET.to_owned()),
        channel_access_token: Some(DEV_TOKEN.to_owned()),
        line_api_base: Some(fake.url()),
        line_data_api_base: Some(fake.url()),
        store: Some(args.store.clone()),
        config: crate::config::local_file(args.local.config.as_deref(), &args.scripts),
        web: args.local.web.clone(),
        ..Settings::default()
    };
    let config = Config::load(&settings, None)?;
    // In the chat view, request lines would interleave with the conversation: only warnings
    // (failed handlers, refused calls) and the scripts' own log lines.
    let default_filter = if args.chat {
        "warn,linebotd::script=info"
    } else {
        "info"
    };
    crate::ops::logging::init_with_default(LogFormat::Text, default_filter);
    let listener = crate::daemon::bind(config.listen).await?;
    let addr = listener
        .local_addr()
        .map_err(|e| CommandError::Daemon(DaemonError::Serve(e)))?;
    let url = format!("http://{addr}");
    let console_addr = args
        .console
        .unwrap_or_else(|| super::console::default_addr(addr));
    let console_listener = TcpListener::bind(console_addr)
        .await
        .map_err(|e| {
            CommandError::Local(format!(
                "cannot serve the browser console on {console_addr}: {e} (choose another address with --console)"
            ))
        })?;
    let console_url = console_listener
        .local_addr()
        .map(super::console::url)
        .map_err(|e| CommandError::Daemon(DaemonError::Serve(e)))?;
    let console = super::console::Console::new(fake.clone(), &config, url.clone());
    let linebotd = crate::cmd::invoked::command();
    let chat_hint = if addr.to_string() == crate::config::DEFAULT_LISTEN {
        format!("{linebotd} chat")
    } else {
        format!("{linebotd} chat --url {url}")
    };
    println!("linebotd dev: listening on {url}{}", config.webhook_path);
    println!(
        "  scripts: {} (hot reload on)   store: {}   fake LINE API: {}",
        config.scripts_dir.display(),
        config.store,
        fake.url()
    );
    println!("  channel secret: {DEV_SECRET}   recorded LINE calls: {url}/dev/calls");
    println!("  browser console: {console_url}");
    if !args.chat {
        println!("  in another terminal: {chat_hint}");
    }
    let _ = std::io::stdout().flush();

    let calls = fake.calls();
    let webhook_path = config.webhook_path.clone();
    let max_body = config.max_body;
    let secret = config.channel_secret.clone().into_bytes();
    let routes = calls.router();
    let learn = fake.clone();
    let befriend = fake.clone();
    let log = console.log.clone();
    super::console::serve(console_listener, console.router());
    let customize = move |app: axum::Router, pipeline: &Arc<crate::daemon::Pipeline>| {
        let runtime = pipeline.bot.runtime.clone();
        match pipeline.bot.store.followers() {
            Ok(followers) => followers.iter().for_each(|id| befriend.befriend(id)),
            Err(e) => tracing::warn!(error = %e, "cannot read the followers the store remembers"),
        }
        let notes = Arc::new(super::notes::Notes::default());
        console.attach(pipeline, &notes);
        let info = serde_json::json!({ "webhook_path": webhook_path.clone() });
        let run = axum::Router::new()
            .route("/dev/run/{function}", axum::routing::post(run_function))
            .with_state(runtime)
            // Where `chat` posts its webhooks: `webhook_path` in linebotd.toml moves them.
            .route(
                "/dev/info",
                axum::routing::get(move || async move { axum::Json(info) }),
            );
        app.merge(routes)
            .merge(run)
            .merge(notes.router())
            .merge(super::console::redirect(console_url))
            .layer(middleware::from_fn_with_state(
                Arc::new(Learn {
                    fake: learn,
                    path: webhook_path,
                    max_body,
                    secret,
                    log,
                }),
                learn_from_webhooks,
            ))
    };
    if args.chat {
        let server = tokio::spawn(crate::daemon::serve(config, listener, customize));
        let result = super::chat::session(&url).await;
        server.abort();
        drop(fake);
        return result;
    }
    tokio::spawn(print_calls(calls));
    let result = crate::daemon::serve(config, listener, customize).await;
    drop(fake);
    result?;
    Ok(ExitCode::SUCCESS)
}

/// `POST /dev/run/{function}`: calls `function()` of every script that defines it without
/// parameters, now, as its schedule would (`/run` in chat). Answers `{"ran": n, "errors": [...]}`;
/// 404 when no script defines it.
async fn run_function(
    State(runtime): State<Arc<crate::pipeline::script::Runtime>>,
    axum::extract::Path(function): axum::extract::Path<String>,
) -> Response {
    let ran = tokio::task::spawn_blocking(move || {
        let set = runtime.scripts();
        let scripts: Vec<_> = set
            .scripts
            .iter()
            .filter(|s| s.defines(&function, 0))
            .collect();
        let errors: Vec<String> = scripts
            .iter()
            .filter_map(|s| {
                let seed = format!("dev-run/{}/{function}/{}", s.name, crate::store::now_ms());
                runtime.call(s, &function, Vec::new(), None, seed).err()
            })
            .map(|e| e.to_string())
            .collect();
        (function, scripts.len(), errors)
    })
    .await;
    match ran {
        Ok((function, 0, _)) => (
            axum::http::StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({
                "error": format!("no script defines {function}() without parameters")
            })),
        )
            .into_response(),
        Ok((_, ran, errors)) => {
            axum::Json(serde_json::json!({"ran": ran, "errors": errors})).into_response()
        }
        Err(e) => (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(serde_json::json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}

/// Prints each LINE call as it happens.
async fn print_calls(calls: Calls) {
    let mut rx = calls.subscribe();
    loop {
        match rx.recv().await {
            Ok(call) => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{}", summary(&call));
                let _ = out.flush();
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                println!("… {n} calls not shown (see /dev/calls)");
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// One line per call: `→ reply to Udev…: hello`.
pub fn summary(call: &Call) -> String {
    let status = call
        .refusal()
        .map(|why| format!("  ✗ LINE answered {why}"))
        .unwrap_or_default();
    let kind = call.path.rsplit('/').next().unwrap_or("");
    if !call.path.starts_with("/v2/bot/message/") || call.messages().is_empty() {
        return format!("→ {} {}{status}", call.method, call.path);
    }
    let to = match (&call.to, call.body.get("to")) {
        (Some(chat), _) => format!(" to {}", short(chat)),
        (None, Some(Value::String(id))) => format!(" to {}", short(id)),
        (None, Some(Value::Array(ids))) => format!(" to {} users", ids.len()),
        _ => String::new(),
    };
    let texts: Vec<String> = call
        .messages()
        .iter()
        .map(super::chat::describe_message)
        .collect();
    format!("→ {kind}{to}: {}{status}", texts.join(" / "))
}

/// LINE ids are long; the first characters are enough to tell users apart in a terminal.
fn short(id: &str) -> String {
    match id.char_indices().nth(10) {
        Some((i, _)) if id.len() > 14 => format!("{}…", &id[..i]),
        _ => id.to_owned(),
    }
}

/// What [`learn_from_webhooks`] tells about each webhook, and where it is posted.
struct Learn {
    fake: Arc<FakeLine>,
    path: String,
    max_body: usize,
    /// Only a signed webhook is learnt from and shown: the daemon refuses the others.
    secret: Vec<u8>,
    log: Arc<super::console::Log>,
}

/// Tells the fake about each incoming event: who it came from (they are friends of the bot, so
/// their profile exists and pushes to them are accepted), and which chat its reply token belongs
/// to, so the call log can say who a reply went to. The browser console's log gets the body.
/// Only a webhook signed with the channel secret counts: the daemon refuses the others, so they
/// must not show as messages in the console. The body is read here and handed on unchanged.
async fn learn_from_webhooks(
    State(learn): State<Arc<Learn>>,
    request: Request,
    next: Next,
) -> Response {
    let Learn {
        fake,
        path,
        max_body,
        secret,
        log,
    } = &*learn;
    if request.uri().path() != path {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, *max_body).await else {
        // Over the limit (or unreadable): answer as the webhook itself would.
        return (
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            axum::Json(serde_json::json!({"error": "body too large"})),
        )
            .into_response();
    };
    let signature = parts.headers.get("x-line-signature").map(|v| v.as_bytes());
    let signed = crate::pipeline::webhook::verify(secret, &bytes, signature).is_ok();
    let body = signed
        .then(|| serde_json::from_slice::<Value>(&bytes).ok())
        .flatten();
    if let Some(body) = body {
        for event in body["events"].as_array().into_iter().flatten() {
            fake.saw_event(event);
            let token = event["replyToken"].as_str();
            let source = &event["source"];
            let chat = ["groupId", "roomId", "userId"]
                .iter()
                .find_map(|k| source[*k].as_str());
            if let (Some(token), Some(chat)) = (token, chat) {
                fake.expect_reply_token(token, chat);
            }
        }
        log.webhook(body);
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(path: &str, body: Value, to: Option<&str>) -> Call {
        Call {
            index: 0,
            method: "POST".into(),
            path: path.into(),
            body,
            status: 200,
            error: None,
            at_ms: 0,
            to: to.map(str::to_owned),
        }
    }

    #[test]
    fn summaries_name_the_kind_the_recipient_and_the_messages() {
        let msgs = json!([{"type": "text", "text": "hello"}, {"type": "sticker", "packageId": "1", "stickerId": "2"}]);
        let reply = call(
            "/v2/bot/message/reply",
            json!({"replyToken": "t", "messages": msgs}),
            Some("Udev0000000000000000000000000000"),
        );
        assert_eq!(
            summary(&reply),
            "→ reply to Udev000000…: hello / [sticker 1/2]"
        );
        let push = call(
            "/v2/bot/message/push",
            json!({"to": "U1", "messages": [{"type": "text", "text": "x"}]}),
            None,
        );
        assert_eq!(summary(&push), "→ push to U1: x");
        let other = call("/v2/bot/richmenu", json!({}), None);
        assert_eq!(summary(&other), "→ POST /v2/bot/richmenu");
    }

    #[test]
    fn a_refused_call_shows_lines_answer() {
        let mut push = call(
            "/v2/bot/message/push",
            json!({"to": "U1", "messages": [{"type": "text", "text": ""}]}),
            None,
        );
        push.status = 400;
        push.error = Some(json!({"message": "The request body has 1 error(s)",
            "details": [{"message": "May not be empty", "property": "messages[0].text"}]}));
        assert_eq!(
            summary(&push),
            "→ push to U1:   ✗ LINE answered 400 The request body has 1 error(s) \
             [messages[0].text: May not be empty]"
        );
    }
}
