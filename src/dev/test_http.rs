//! The web in `linebotd test`: `http_fake(url_prefix, answer)` sets up what the bot's
//! `http_get`/`http_post`/`http_request` calls get, and `http_calls()` lists the calls it made.
//! No test reaches the network: an unfaked call throws, naming the URL. Nor does a test read
//! the shell's environment: exposed variables are unset until `env_fake(name, value)`.

use std::sync::Arc;

use rhai::{Array, Dynamic, Engine, EvalAltResult, Map};

use crate::pipeline::script::host::to_json;
use crate::pipeline::script::http::body_to_script;
use crate::pipeline::script::web::{Body, FakeAnswer, Web};

type RhaiResult<T> = Result<T, Box<EvalAltResult>>;

/// The keys an `http_fake` answer may hold.
const ANSWER_KEYS: [&str; 4] = ["status", "headers", "body", "error"];

/// Registers `http_fake`, `env_fake` and `http_calls`; `web` gives the running test's bot's web, if any.
pub fn register(
    engine: &mut Engine,
    web: impl Fn() -> Option<Arc<Web>> + Clone + Send + Sync + 'static,
) {
    let current = web.clone();
    engine.register_fn(
        "http_fake",
        move |prefix: &str, answer: Map| -> RhaiResult<()> {
            let web = current().ok_or_else(|| error("http_fake only works inside a test"))?;
            let fakes = web
                .fakes()
                .ok_or_else(|| error("http_fake: this bot calls the real network"))?;
            fakes.add(prefix.to_owned(), to_answer(answer).map_err(error)?);
            Ok(())
        },
    );
    let current = web.clone();
    engine.register_fn(
        "env_fake",
        move |name: &str, value: &str| -> RhaiResult<()> {
            let web = current().ok_or_else(|| error("env_fake only works inside a test"))?;
            web.env.get(name).map_err(error)?;
            if let Some(fakes) = web.fakes() {
                fakes.set_env_var(name.to_owned(), value.to_owned());
            }
            Ok(())
        },
    );
    engine.register_fn("http_calls", move || -> RhaiResult<Array> {
        let web = web().ok_or_else(|| error("http_calls only works inside a test"))?;
        let calls = web.fakes().map(|f| f.calls()).unwrap_or_default();
        Ok(calls
            .iter()
            .map(|call| {
                let headers: Map = call
                    .headers
                    .iter()
                    .map(|(k, v)| (k.to_ascii_lowercase().into(), Dynamic::from(v.clone())))
                    .collect();
                let json = match &call.body {
                    Body::Json(_) => body_to_script(&call.body),
                    _ => Dynamic::UNIT,
                };
                let mut map = Map::new();
                map.insert("method".into(), call.method.clone().into());
                map.insert("url".into(), call.url.clone().into());
                map.insert("headers".into(), Dynamic::from_map(headers));
                map.insert("body".into(), body_to_script(&call.body));
                map.insert("json".into(), json);
                Dynamic::from_map(map)
            })
            .collect())
    });
}

fn error(message: impl Into<String>) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(message.into()),
        rhai::Position::NONE,
    ))
}

/// `#{ status, headers, body, error }` as a fake answer. A map or array body is sent as JSON.
fn to_answer(answer: Map) -> Result<FakeAnswer, String> {
    if let Some(key) = answer.keys().find(|k| !ANSWER_KEYS.contains(&k.as_str())) {
        return Err(format!(
            "http_fake: unknown key `{key}`; an answer may hold {}",
            ANSWER_KEYS.join(", ")
        ));
    }
    let status = match answer.get("status") {
        None => 200,
        Some(s) => match s.as_int() {
            Ok(n @ 100..=599) => n as u16,
            _ => return Err(format!("http_fake: status {s} is not an HTTP status")),
        },
    };
    let mut headers: Vec<(String, String)> = match answer.get("headers") {
        None => Vec::new(),
        Some(h) => h
            .read_lock::<Map>()
            .ok_or("http_fake: `headers` must be a map")?
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
            .collect(),
    };
    let body = answer.get("body").cloned().unwrap_or(Dynamic::UNIT);
    let bytes = if body.is_map() || body.is_array() {
        if !headers.iter().any(|(k, _)| k == "content-type") {
            headers.push(("content-type".into(), "application/json".into()));
        }
        to_json(&body)
            .map_err(|e| e.to_string())?
            .to_string()
            .into_bytes()
    } else if body.is_blob() {
        body.cast::<rhai::Blob>()
    } else if body.is_unit() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    let error = answer.get("error").map(|e| e.to_string());
    Ok(FakeAnswer {
        status,
        headers,
        body: bytes,
        error,
    })
}
