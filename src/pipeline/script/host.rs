//! The host API scripts call: `reply`, `push`, `profile`, message helpers, `log` … (`reply`
//! itself is in `reply.rs`, the rest of the Messaging API in `line_api.rs`).
//!
//! Every function is registered once on the shared engine; the call context (which script, which
//! event) comes from [`super::context`]. LINE calls are async; scripts run on handler threads, so
//! each call waits on the runtime handle.

use std::future::Future;
use std::sync::Arc;

use rhai::{Array, Dynamic, Engine, EvalAltResult};
use serde_json::Value;
use uuid::Uuid;

use crate::line::{self, LineClient, LineError};
use crate::pipeline::outbox::Outbox;
use crate::pipeline::schedule::Timers;
use crate::store::{DeliveryKind, Store};

use super::context;
pub use super::convert::{from_json, from_json_text, to_json, to_messages};
use super::line_api::unwrap_silent;
pub use super::reply::REPLY_TOKEN_LIFETIME;
use super::web::Web;

/// Receives `(script, line)` for every script log line.
pub type LogHook = Arc<dyn Fn(&str, &str) + Send + Sync>;

/// What host functions act on.
pub struct Host {
    pub line: LineClient,
    /// The async runtime LINE calls run on; handler threads wait on it.
    pub tokio: tokio::runtime::Handle,
    /// `reply` falls back to `push` when the reply token is missing, used or expired.
    pub reply_fallback_push: bool,
    /// Script state, followers and the outbox live here.
    pub store: Arc<dyn Store>,
    /// `push`, `multicast`, `broadcast` and `narrowcast` are queued here and return at once.
    pub outbox: Arc<Outbox>,
    /// `later` and `at` store their timers here.
    pub timers: Arc<Timers>,
    /// Where script log lines go besides the daemon's log (the simulator prints them).
    pub on_log: Option<LogHook>,
    /// `http_get` and friends, and `env`.
    pub web: Arc<Web>,
    /// Told what each event's dispatch did (`dev` shows unhandled events and failed handlers
    /// in the chat); set once, after the bot is built.
    pub on_dispatched: std::sync::OnceLock<DispatchHook>,
    /// Told `(chat, why)` when a reply goes out as a push instead (the browser console marks
    /// that push as billed); set once, after the bot is built.
    pub on_fallback: std::sync::OnceLock<FallbackHook>,
}

/// Receives the chat a reply was pushed to instead, and why.
pub type FallbackHook = Arc<dyn Fn(&str, &str) + Send + Sync>;

/// Receives each dispatched event and what its handlers did.
pub type DispatchHook =
    Arc<dyn Fn(&crate::pipeline::webhook::Event, &super::Dispatched) + Send + Sync>;

impl Host {
    /// Waits on a LINE call from the handler's thread. The call runs on the shared runtime's
    /// reqwest client, so a handler waiting on LINE holds only its own thread, never an async
    /// worker, and every handler shares one connection pool. The client reports its waits on
    /// LINE to the thread pool (see [`Host::line_client`]).
    pub(super) fn wait<T, F: Future<Output = T>>(&self, call: impl FnOnce(LineClient) -> F) -> T {
        self.tokio.block_on(call(self.line.clone()))
    }

    /// `line` set up for handlers: its waits on LINE reach the handler thread's pool, which
    /// then runs another handler meanwhile.
    pub fn line_client(line: LineClient) -> LineClient {
        line.observing_waits(Arc::new(context::report_wait))
    }
}

/// Namespace of the name-based (v5) retry keys derived from an event id and a call position.
const RETRY_KEY_NAMESPACE: Uuid = Uuid::from_u128(0x6c69_6e65_626f_7464_8000_0000_0000_0001);

pub(super) type HostResult<T> = Result<T, Box<EvalAltResult>>;

pub(super) fn script_error(message: impl Into<String>) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(message.into()),
        rhai::Position::NONE,
    ))
}

pub(super) fn line_error(e: LineError) -> Box<EvalAltResult> {
    script_error(e.to_string())
}

pub(super) fn host() -> HostResult<Arc<Host>> {
    context::current(|ctx| ctx.host.clone())
        .ok_or_else(|| script_error("LINE calls are only available while a handler runs"))
}

/// Logs a line from the running script, tagged with its file name.
/// The values of the environment variables exposed to scripts are redacted.
pub fn script_log(text: &str) {
    let tagged = context::current(|ctx| (ctx.script.clone(), ctx.host.clone()));
    match tagged {
        Some((script, host)) => {
            let text = host.web.redact(text);
            tracing::info!(target: "linebotd::script", script = %script, "{text}");
            if let Some(on_log) = &host.on_log {
                on_log(&script, &text);
            }
        }
        None => tracing::info!(target: "linebotd::script", "{text}"),
    }
}

/// Names this run's next call of `kind` (`reply`, `push` …) by its position among calls of
/// that kind: `{event id}/{script}/{handler}/{kind}/{n}`. A re-run of the same event (after a
/// crash) names its calls the same way, whatever else it does differently, so a send can never
/// take another kind's key. `None` outside a script call.
pub fn next_call(kind: &'static str) -> Option<String> {
    context::current(|ctx| {
        let n = match ctx.calls.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                ctx.calls.push((kind, 1));
                1
            }
        };
        format!("{}/{kind}/{n}", ctx.key_seed)
    })
}

/// The `X-Line-Retry-Key` for a named call: the same name always gives the same key. A call
/// with no name (outside a script run) gets a random one.
pub fn retry_key(call: Option<&str>) -> Uuid {
    call.map_or_else(Uuid::new_v4, |call| {
        Uuid::new_v5(&RETRY_KEY_NAMESPACE, call.as_bytes())
    })
}

fn str_arg(value: &Dynamic, what: &str) -> HostResult<String> {
    if value.is_string() {
        return Ok(value.to_string());
    }
    if value.is_int() {
        return Ok(value.to_string());
    }
    Err(script_error(format!(
        "{what} must be a string, not {}",
        super::suggest::kind(value)
    )))
}

/// Validates what LINE would reject anyway (so the script hears of it now), then queues.
pub(super) fn queue(
    host: &Host,
    kind: DeliveryKind,
    payload: Value,
    messages: &[Value],
    key: Uuid,
) -> HostResult<Dynamic> {
    line::validate(messages)
        .map_err(|e| script_error(format!("{} not sent: {e}", kind.as_str())))?;
    let key = key.to_string();
    let source = context::current(|ctx| ctx.script.to_string()).unwrap_or_default();
    host.outbox
        .enqueue(kind, payload, &key, &source)
        .map_err(|e| script_error(format!("{} not queued: {e}", kind.as_str())))?;
    Ok(Dynamic::from(key))
}

/// `payload` plus `notificationDisabled: true` when the messages were wrapped by `silent`
/// (the outbox reads it back when it sends).
pub(super) fn quieted(mut payload: Value, quiet: bool) -> Value {
    if quiet {
        payload["notificationDisabled"] = Value::Bool(true);
    }
    payload
}

pub(super) fn send_push(
    host: &Host,
    to: &str,
    messages: Vec<Value>,
    quiet: bool,
    key: Uuid,
) -> HostResult<Dynamic> {
    let payload = quieted(serde_json::json!({ "to": to, "messages": messages }), quiet);
    queue(host, DeliveryKind::Push, payload, &messages, key)
}

fn push(to: Dynamic, messages: Dynamic) -> HostResult<Dynamic> {
    let host = host()?;
    let to = str_arg(&to, "push's first argument (the user, group or room id)")?;
    if to.is_empty() {
        return Err(script_error(
            "push needs a user, group or room id; got an empty string",
        ));
    }
    let (messages, quiet) = unwrap_silent(messages);
    let messages = to_messages(&messages)?;
    let key = retry_key(next_call("push").as_deref());
    send_push(&host, &to, messages, quiet, key)
}

fn multicast(ids: Array, messages: Dynamic) -> HostResult<Dynamic> {
    let host = host()?;
    let ids = ids
        .iter()
        .map(|v| str_arg(v, "each multicast id"))
        .collect::<HostResult<Vec<_>>>()?;
    if ids.is_empty() {
        return Err(script_error("multicast needs at least one user id"));
    }
    let (messages, quiet) = unwrap_silent(messages);
    let messages = to_messages(&messages)?;
    let payload = quieted(
        serde_json::json!({ "to": ids, "messages": messages }),
        quiet,
    );
    let key = retry_key(next_call("multicast").as_deref());
    queue(&host, DeliveryKind::Multicast, payload, &messages, key)
}

fn broadcast(messages: Dynamic) -> HostResult<Dynamic> {
    let host = host()?;
    let (messages, quiet) = unwrap_silent(messages);
    let messages = to_messages(&messages)?;
    let payload = quieted(serde_json::json!({ "messages": messages }), quiet);
    let key = retry_key(next_call("broadcast").as_deref());
    queue(&host, DeliveryKind::Broadcast, payload, &messages, key)
}

fn profile(user_id: Dynamic) -> HostResult<Dynamic> {
    let host = host()?;
    let user_id = str_arg(&user_id, "profile's user id")?;
    match host
        .wait(|line| async move { line.profile(&user_id).await })
        .map_err(line_error)?
    {
        Some(p) => Ok(from_json(&p)),
        None => Ok(Dynamic::UNIT),
    }
}

fn loading(chat_id: Dynamic, seconds: i64) -> HostResult<Dynamic> {
    let host = host()?;
    let chat_id = str_arg(&chat_id, "loading's chat id")?;
    let seconds =
        u32::try_from(seconds).map_err(|_| script_error("loading seconds must be 5 to 60"))?;
    host.wait(|line| async move { line.loading(&chat_id, seconds).await })
        .map_err(line_error)?;
    Ok(Dynamic::UNIT)
}

fn quick_reply(message: Dynamic, items: Array) -> HostResult<Dynamic> {
    let message = to_messages(&message)?
        .into_iter()
        .next()
        .ok_or_else(|| script_error("quick_reply needs a message"))?;
    let items = items.iter().map(to_json).collect::<HostResult<Vec<_>>>()?;
    Ok(from_json(&line::message::quick_reply(message, items)))
}

/// Registers the host API on `engine`.
pub fn register(engine: &mut Engine) {
    super::state::register(engine);
    super::timers::register(engine);
    engine
        .register_fn("reply", super::reply::reply)
        .register_fn("push", push)
        .register_fn("multicast", multicast)
        .register_fn("broadcast", broadcast)
        .register_fn("profile", profile)
        .register_fn("loading", loading)
        .register_fn("text", |s: &str| from_json(&line::message::text(s)))
        .register_fn(
            "sticker",
            |package: Dynamic, sticker: Dynamic| -> HostResult<Dynamic> {
                let package = str_arg(&package, "sticker's package id")?;
                let sticker = str_arg(&sticker, "sticker's sticker id")?;
                Ok(from_json(&line::message::sticker(&package, &sticker)))
            },
        )
        .register_fn("image", |url: &str, preview: &str| {
            from_json(&line::message::image(url, preview))
        })
        .register_fn("image", |url: &str| {
            from_json(&line::message::image(url, url))
        })
        .register_fn(
            "flex",
            |alt: &str, contents: Dynamic| -> HostResult<Dynamic> {
                Ok(from_json(&line::message::flex(alt, to_json(&contents)?)))
            },
        )
        .register_fn("quick_reply", quick_reply)
        .register_fn("log", |value: Dynamic| script_log(&value.to_string()));
}
