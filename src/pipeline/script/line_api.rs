//! The rest of the Messaging API for scripts: any path by method (`line_get`, `line_post`,
//! `line_put`, `line_delete`), the data host (`line_get_data`, `line_post_data`), what a user
//! sent (`content`), silent messages (`silent`) and `narrowcast`.
//!
//! Each call sends what LINE's OpenAPI spec asks for: `line_post(path)` and `line_put(path)`
//! send no body at all (LINE answers 415 to `{}` on the operations that take none), and the
//! data host gets the script's bytes with the script's content type.

use std::time::{Duration, Instant};

use rhai::{Blob, Dynamic, Engine, Map, NativeCallContext};
use serde_json::Value;

use crate::line::{Content, DataAnswer, LineError};

use super::context;
use super::host::{
    from_json, host, next_call, queue, quieted, retry_key, script_error, to_json, to_messages,
};
use super::limits::check_fits;
use crate::store::DeliveryKind;

type HostResult<T> = Result<T, Box<rhai::EvalAltResult>>;

/// First and longest pause between two asks for content LINE is still preparing (202).
const CONTENT_POLL_FIRST: Duration = Duration::from_millis(250);
const CONTENT_POLL_MAX: Duration = Duration::from_secs(2);

/// Messages wrapped by `silent(...)`: `reply`, `push`, `multicast`, `broadcast` and
/// `narrowcast` send them with `notificationDisabled: true`. A wrapper rather than a flag
/// inside a message, because LINE sets it per request, not per message.
#[derive(Clone)]
pub struct Silent(Dynamic);

/// The messages a send was given, and whether they were wrapped by `silent`.
pub(super) fn unwrap_silent(messages: Dynamic) -> (Dynamic, bool) {
    if messages.is::<Silent>() {
        (messages.cast::<Silent>().0, true)
    } else {
        (messages, false)
    }
}

fn line_error(e: LineError) -> Box<rhai::EvalAltResult> {
    script_error(e.to_string())
}

fn line_get(path: &str) -> HostResult<Dynamic> {
    let host = host()?;
    let value = host
        .wait(|line| async move { line.get(path).await })
        .map_err(line_error)?;
    Ok(from_json(&value))
}

fn line_post(path: &str, body: Dynamic) -> HostResult<Dynamic> {
    let host = host()?;
    let body = to_json(&body)?;
    let value = host
        .wait(|line| async move { line.post(path, &body).await })
        .map_err(line_error)?;
    Ok(from_json(&value))
}

fn line_post_empty(path: &str) -> HostResult<Dynamic> {
    let host = host()?;
    let value = host
        .wait(|line| async move { line.post_empty(path).await })
        .map_err(line_error)?;
    Ok(from_json(&value))
}

fn line_put(path: &str, body: Option<Dynamic>) -> HostResult<Dynamic> {
    let host = host()?;
    let body = body.as_ref().map(to_json).transpose()?;
    let value = host
        .wait(|line| async move { line.put(path, body.as_ref()).await })
        .map_err(line_error)?;
    Ok(from_json(&value))
}

fn line_delete(path: &str) -> HostResult<Dynamic> {
    let host = host()?;
    let value = host
        .wait(|line| async move { line.delete(path).await })
        .map_err(line_error)?;
    Ok(from_json(&value))
}

/// `#{status, type, size, blob}`, plus `json` when the answer is JSON (a transcoding status).
fn data_map(answer: DataAnswer) -> Map {
    let mut map = Map::new();
    let content_type = answer
        .content_type
        .unwrap_or_else(|| "application/octet-stream".to_owned());
    if content_type.starts_with("application/json") {
        if let Ok(json) = serde_json::from_slice::<Value>(&answer.bytes) {
            map.insert("json".into(), from_json(&json));
        }
    }
    map.insert("status".into(), Dynamic::from_int(answer.status.into()));
    map.insert("type".into(), content_type.into());
    map.insert(
        "size".into(),
        Dynamic::from_int(size_int(answer.bytes.len())),
    );
    map.insert("blob".into(), Dynamic::from_blob(answer.bytes.to_vec()));
    map
}

fn size_int(len: usize) -> rhai::INT {
    rhai::INT::try_from(len).unwrap_or(rhai::INT::MAX)
}

fn line_get_data(ctx: NativeCallContext, path: &str) -> HostResult<Map> {
    let host = host()?;
    let answer = host
        .wait(|line| async move { line.get_data(path).await })
        .map_err(line_error)?;
    check_fits(ctx.engine(), answer.bytes.len(), true)
        .map_err(|e| script_error(format!("line_get_data: {e}")))?;
    Ok(data_map(answer))
}

fn line_post_data(path: &str, blob: Dynamic, content_type: &str) -> HostResult<Dynamic> {
    let bytes = if blob.is_blob() {
        blob.cast::<Blob>()
    } else if blob.is_string() {
        blob.to_string().into_bytes()
    } else {
        return Err(script_error(format!(
            "line_post_data sends a blob or a string, not {}",
            super::suggest::kind(&blob)
        )));
    };
    let host = host()?;
    let value = host
        .wait(|line| async move { line.post_data(path, bytes.into(), content_type).await })
        .map_err(line_error)?;
    Ok(from_json(&value))
}

/// The message id of `content(event)` (its `message.id`) or of `content(id)`.
fn message_id(target: &Dynamic) -> HostResult<String> {
    if let Some(event) = target.read_lock::<Map>() {
        let id = event
            .get("message")
            .and_then(|m| m.read_lock::<Map>().and_then(|m| m.get("id").cloned()));
        return match id {
            Some(id) if id.is_string() => Ok(id.to_string()),
            _ => Err(script_error(
                "content needs a message event (with message.id), or a message id",
            )),
        };
    }
    if target.is_string() {
        return Ok(target.to_string());
    }
    Err(script_error(format!(
        "content takes a message event or a message id, not {}",
        super::suggest::kind(target)
    )))
}

/// Downloads what the user sent. LINE answers 202 while a video or audio is being prepared:
/// asks again with growing pauses until it is ready or the handler's deadline (`max_call_ms`)
/// would pass during the next pause.
fn content(ctx: NativeCallContext, target: Dynamic) -> HostResult<Map> {
    let id = message_id(&target)?;
    let host = host()?;
    let deadline = context::current(|ctx| ctx.deadline)
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(10));
    let got = host.wait(|line| async move {
        let mut pause = CONTENT_POLL_FIRST;
        loop {
            match line.content(&id).await? {
                Content::Ready {
                    content_type,
                    bytes,
                } => return Ok(Some((content_type, bytes))),
                Content::NotReady if Instant::now() + pause < deadline => {
                    context::report_wait(true);
                    tokio::time::sleep(pause).await;
                    context::report_wait(false);
                    pause = (pause * 2).min(CONTENT_POLL_MAX);
                }
                Content::NotReady => return Ok(None),
            }
        }
    });
    let Some((content_type, bytes)) = got.map_err(line_error)? else {
        return Err(script_error(
            "content not ready: LINE is still preparing this video or audio (202) and the \
             handler's time limit (max_call_ms) is near; try again later, e.g. from a schedule",
        ));
    };
    check_fits(ctx.engine(), bytes.len(), true)
        .map_err(|e| script_error(format!("content: {e}")))?;
    let mut map = data_map(DataAnswer {
        status: 200,
        content_type,
        bytes,
    });
    map.remove("status");
    Ok(map)
}

/// `narrowcast(messages, recipient, filter[, limit])`: queued like `broadcast`. `recipient`
/// and `filter` are LINE's objects as maps, or `()` for none; `limit` is a number (the most
/// friends to reach) or LINE's map (`#{max: 100, upToRemainingQuota: true}`).
fn narrowcast(
    messages: Dynamic,
    recipient: Dynamic,
    filter: Dynamic,
    limit: Dynamic,
) -> HostResult<Dynamic> {
    let host = host()?;
    let (messages, quiet) = unwrap_silent(messages);
    let messages = to_messages(&messages)?;
    let mut payload = serde_json::json!({ "messages": messages });
    if let Some(recipient) = narrowcast_part(&recipient, "recipient")? {
        let kind = recipient.get("type").and_then(Value::as_str);
        if !matches!(kind, Some("audience" | "redelivery" | "operator")) {
            return Err(script_error(format!(
                "narrowcast's recipient needs type \"audience\", \"redelivery\" or \"operator\", \
                 e.g. #{{type: \"audience\", audienceGroupId: 1234}}; got {recipient}"
            )));
        }
        payload["recipient"] = recipient;
    }
    if let Some(filter) = narrowcast_part(&filter, "filter")? {
        if filter.get("demographic").is_none() {
            return Err(script_error(format!(
                "narrowcast's filter is #{{demographic: …}}, e.g. \
                 #{{demographic: #{{type: \"gender\", oneOf: [\"female\"]}}}}; got {filter}"
            )));
        }
        payload["filter"] = filter;
    }
    if limit.is_int() {
        let max = limit.as_int().unwrap_or_default();
        if max < 1 {
            return Err(script_error(format!(
                "narrowcast's limit is the most friends to reach, 1 or more; got {max}"
            )));
        }
        payload["limit"] = serde_json::json!({ "max": max });
    } else if let Some(limit) = narrowcast_part(&limit, "limit")? {
        payload["limit"] = limit;
    }
    let payload = quieted(payload, quiet);
    let key = retry_key(next_call("narrowcast").as_deref());
    queue(&host, DeliveryKind::Narrowcast, payload, &messages, key)
}

/// A narrowcast's `recipient`, `filter` or `limit`: a map, or `()` for none.
fn narrowcast_part(value: &Dynamic, what: &str) -> HostResult<Option<Value>> {
    if value.is_unit() {
        return Ok(None);
    }
    if !value.is_map() {
        return Err(script_error(format!(
            "narrowcast's {what} must be a map or () for none, not {}",
            super::suggest::kind(value)
        )));
    }
    to_json(value).map(Some)
}

/// Registers the functions above on `engine`.
pub fn register(engine: &mut Engine) {
    engine
        .register_type_with_name::<Silent>("Silent")
        .register_fn("silent", Silent)
        .register_fn("narrowcast", |messages: Dynamic| {
            narrowcast(messages, Dynamic::UNIT, Dynamic::UNIT, Dynamic::UNIT)
        })
        .register_fn(
            "narrowcast",
            |messages: Dynamic, recipient: Dynamic, filter: Dynamic| {
                narrowcast(messages, recipient, filter, Dynamic::UNIT)
            },
        )
        .register_fn("narrowcast", narrowcast)
        .register_fn("line_get", line_get)
        .register_fn("line_post", line_post)
        .register_fn("line_post", line_post_empty)
        .register_fn("line_put", |path: &str, body: Dynamic| {
            line_put(path, Some(body))
        })
        .register_fn("line_put", |path: &str| line_put(path, None))
        .register_fn("line_delete", line_delete)
        .register_fn("line_get_data", line_get_data)
        .register_fn("line_post_data", line_post_data)
        .register_fn("content", content);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(script: &str) -> Dynamic {
        let engines = super::super::engine::build(&super::super::Limits::default());
        engines.run.eval::<Dynamic>(script).expect(script)
    }

    #[test]
    fn silent_wraps_the_messages_and_sends_unwrap_them() {
        let (messages, quiet) = unwrap_silent(eval(r#"silent(["a", "b"])"#));
        assert!(quiet);
        assert_eq!(messages.into_array().map(|a| a.len()), Ok(2));
        let (messages, quiet) = unwrap_silent(eval(r#""plain""#));
        assert!(!quiet);
        assert_eq!(messages.to_string(), "plain");
    }

    #[test]
    fn content_takes_a_message_event_or_an_id() {
        let event = eval(r#"#{ type: "message", message: #{ id: "M1", type: "image" } }"#);
        assert_eq!(message_id(&event).ok().as_deref(), Some("M1"));
        assert_eq!(message_id(&Dynamic::from("M2")).ok().as_deref(), Some("M2"));
        let follow = eval(r#"#{ type: "follow" }"#);
        let err = message_id(&follow).err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("message.id")));
        assert!(message_id(&Dynamic::from_int(5)).is_err());
    }

    #[test]
    fn data_answers_become_blobs_with_their_type_and_json() {
        let map = data_map(DataAnswer {
            status: 202,
            content_type: Some("application/json".into()),
            bytes: bytes::Bytes::from_static(br#"{"status":"processing"}"#),
        });
        assert_eq!(map["status"].as_int(), Ok(202));
        assert_eq!(map["type"].to_string(), "application/json");
        assert_eq!(map["size"].as_int(), Ok(23));
        assert!(map["blob"].is_blob());
        let json = map["json"]
            .read_lock::<Map>()
            .map(|m| m["status"].to_string());
        assert_eq!(json.as_deref(), Some("processing"));

        let map = data_map(DataAnswer {
            status: 200,
            content_type: None,
            bytes: bytes::Bytes::from_static(&[1, 2]),
        });
        assert_eq!(map["type"].to_string(), "application/octet-stream");
        assert!(!map.contains_key("json"));
    }
}
