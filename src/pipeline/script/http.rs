//! The script functions for other web APIs: `http_get`, `http_post`, `http_request` and `env`.
//!
//! A call waits on the handler's own thread, which tells the thread pool it is waiting, so a
//! handler waiting seconds on an LLM holds up no other conversation. A non-2xx status is an
//! answer, not an error; an error (refused, no answer, too large) throws a message that names
//! the URL without its query, what happened and the setting involved, with every exposed
//! environment value redacted.

use std::time::{Duration, Instant};

use rhai::{Blob, Dynamic, EvalAltResult, ImmutableString, Map, NativeCallContext};
use url::Url;

use super::context;
use super::host::{from_json_text, host, script_error, to_json};
use super::web::{Body, Request, Response, WebError, WebErrorKind};

type HostResult<T> = Result<T, Box<EvalAltResult>>;

/// The keys `options` (and `http_request`'s map) may hold besides `method`, `url` and `body`.
const OPTION_KEYS: [&str; 3] = ["headers", "timeout_ms", "query"];

pub fn register(engine: &mut rhai::Engine) {
    engine
        .register_fn("http_get", |ctx: NativeCallContext, url: &str| {
            call(&ctx, "http_get", "GET", url, Dynamic::UNIT, &Map::new())
        })
        .register_fn(
            "http_get",
            |ctx: NativeCallContext, url: &str, options: Map| {
                call(&ctx, "http_get", "GET", url, Dynamic::UNIT, &options)
            },
        )
        .register_fn(
            "http_post",
            |ctx: NativeCallContext, url: &str, body: Dynamic| {
                call(&ctx, "http_post", "POST", url, body, &Map::new())
            },
        )
        .register_fn(
            "http_post",
            |ctx: NativeCallContext, url: &str, body: Dynamic, options: Map| {
                call(&ctx, "http_post", "POST", url, body, &options)
            },
        )
        .register_fn("http_request", http_request)
        .register_fn("env", env);
}

fn env(name: &str) -> HostResult<Dynamic> {
    let host = host()?;
    match host.web.env_var(name) {
        Ok(Some(value)) => Ok(Dynamic::from(value)),
        Ok(None) => Ok(Dynamic::UNIT),
        Err(message) => Err(script_error(message)),
    }
}

fn http_request(ctx: NativeCallContext, spec: Map) -> HostResult<Dynamic> {
    const KEYS: [&str; 6] = ["method", "url", "headers", "body", "timeout_ms", "query"];
    if let Some(key) = spec.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(script_error(format!(
            "http_request: unknown key `{key}`; the map may hold {}",
            KEYS.join(", ")
        )));
    }
    let text = |key: &str| -> HostResult<Option<String>> {
        match spec.get(key) {
            None => Ok(None),
            Some(v) => v.clone().into_string().map(Some).map_err(|_| {
                script_error(format!(
                    "http_request: `{key}` is {}; it must be a string",
                    described(v)
                ))
            }),
        }
    };
    let url = text("url")?.ok_or_else(|| script_error("http_request: the map has no `url`"))?;
    let method = text("method")?.unwrap_or_else(|| "GET".into());
    let body = spec.get("body").cloned().unwrap_or(Dynamic::UNIT);
    let options: Map = spec
        .into_iter()
        .filter(|(k, _)| OPTION_KEYS.contains(&k.as_str()))
        .collect();
    call(&ctx, "http_request", &method, &url, body, &options)
}

fn call(
    ctx: &NativeCallContext,
    function: &str,
    method: &str,
    url: &str,
    body: Dynamic,
    options: &Map,
) -> HostResult<Dynamic> {
    let host = host()?;
    let web = &host.web;
    let fail =
        |message: String| script_error(web.redact(&format!("{function}: {message}")).into_owned());
    let request = build(method, url, body, options).map_err(fail)?;

    let requested = match options.get("timeout_ms") {
        None => web.config.timeout,
        Some(v) => match v.as_int() {
            Ok(ms) if ms > 0 => Duration::from_millis(ms as u64),
            _ => {
                return Err(fail(format!(
                    "timeout_ms must be a positive number of milliseconds, not {v}"
                )))
            }
        },
    };
    let deadline = context::current(|ctx| ctx.deadline);
    let left = deadline.map_or(requested, |d| d.saturating_duration_since(Instant::now()));
    let timeout = requested.min(left);
    if timeout.is_zero() {
        return Err(fail(format!(
            "{}: the handler's time limit (limits.max_call_ms) has run out",
            super::web::shown(&request.url)
        )));
    }

    let started = Instant::now();
    context::report_wait(true);
    let result = host.tokio.block_on(web.send(&request, timeout));
    context::report_wait(false);
    crate::ops::observe::HttpCall {
        method: request.method.as_str(),
        host: request.url.host_str().unwrap_or(""),
        path: &web.redact(request.url.path()),
        status: result
            .as_ref()
            .map(|r| r.status)
            .map_err(|e| e.kind.label()),
        duration: started.elapsed(),
    }
    .emit();
    match result {
        Ok(response) => {
            let text = std::str::from_utf8(&response.body).is_ok();
            super::limits::check_fits(ctx.engine(), response.body.len(), !text).map_err(fail)?;
            Ok(to_script(response))
        }
        Err(e) => Err(fail(explain(e, timeout < requested))),
    }
}

/// The error with the setting that applies.
fn explain(e: WebError, by_deadline: bool) -> String {
    match e.kind {
        WebErrorKind::Timeout if by_deadline => format!(
            "{e}: the handler's time limit ran out (raise limits.max_call_ms for slow APIs)"
        ),
        WebErrorKind::Timeout => {
            format!("{e} (http_timeout_ms, or timeout_ms in the call's options)")
        }
        _ => e.to_string(),
    }
}

fn build(method: &str, url: &str, body: Dynamic, options: &Map) -> Result<Request, String> {
    if let Some(key) = options.keys().find(|k| !OPTION_KEYS.contains(&k.as_str())) {
        return Err(format!(
            "unknown option `{key}`; options may hold {}",
            OPTION_KEYS.join(", ")
        ));
    }
    let method = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .map_err(|_| format!("`{method}` is not an HTTP method"))?;
    let mut url = Url::parse(url).map_err(|e| {
        let shown = url.split(['?', '#']).next().unwrap_or("");
        format!(
            "`{shown}` is not a URL ({e}); write it in full, such as https://api.example.com/v1"
        )
    })?;
    if let Some(query) = options.get("query") {
        let query = query
            .read_lock::<Map>()
            .ok_or_else(|| format!("`query` is {}; it must be a map", described(query)))?;
        let mut pairs = url.query_pairs_mut();
        for (k, v) in query.iter() {
            pairs.append_pair(k, &v.to_string());
        }
    }
    let headers = match options.get("headers") {
        None => Vec::new(),
        Some(h) => h
            .read_lock::<Map>()
            .ok_or_else(|| format!("`headers` is {}; it must be a map", described(h)))?
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    Ok(Request {
        method,
        url,
        headers,
        body: to_body(body)?,
    })
}

/// A script value as a request body.
pub fn to_body(body: Dynamic) -> Result<Body, String> {
    if body.is_unit() {
        return Ok(Body::None);
    }
    if body.is_string() {
        return Ok(Body::Text(body.into_string().unwrap_or_default()));
    }
    if body.is_blob() {
        return Ok(Body::Bytes(body.cast::<Blob>()));
    }
    if body.is_map() || body.is_array() {
        return to_json(&body)
            .map(Body::Json)
            .map_err(|e| format!("the body cannot be sent as JSON: {e}"));
    }
    Err(format!(
        "the body is {}; pass a string, a map or array (sent as JSON), or a blob",
        described(&body)
    ))
}

/// A value's kind in words a script author knows: "a number", not "i64".
fn described(value: &Dynamic) -> String {
    if value.is_int() || value.is_float() {
        format!("the number {value}")
    } else if value.is_bool() {
        format!("{value} (true or false)")
    } else if value.is_unit() {
        "() (nothing)".into()
    } else {
        format!("a {}", value.type_name())
    }
}

/// `#{ status, headers, body, json }`: `body` a string (a blob when the answer is not UTF-8),
/// `json` the parsed body when the answer is JSON, else `()`.
pub fn to_script(response: Response) -> Dynamic {
    let json = if response.is_json() {
        std::str::from_utf8(&response.body)
            .map(from_json_text)
            .unwrap_or(Dynamic::UNIT)
    } else {
        Dynamic::UNIT
    };
    let headers: Map = response
        .headers
        .into_iter()
        .map(|(k, v)| (k.into(), Dynamic::from(v)))
        .collect();
    let body = match String::from_utf8(response.body) {
        Ok(text) => Dynamic::from(ImmutableString::from(text)),
        Err(e) => Dynamic::from_blob(e.into_bytes()),
    };
    let mut map = Map::new();
    map.insert("status".into(), Dynamic::from(response.status as i64));
    map.insert("headers".into(), Dynamic::from_map(headers));
    map.insert("body".into(), body);
    map.insert("json".into(), json);
    Dynamic::from_map(map)
}

/// Lists a recorded body the way scripts sent it, for `http_calls()`.
pub fn body_to_script(body: &Body) -> Dynamic {
    match body {
        Body::None => Dynamic::UNIT,
        Body::Text(t) => Dynamic::from(t.clone()),
        Body::Json(v) => super::host::from_json(v),
        Body::Bytes(b) => Dynamic::from_blob(b.clone()),
    }
}
