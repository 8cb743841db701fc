//! Realistic webhook events for local runs (`simulate`, `test`, `chat`): the fields LINE sends,
//! with fresh ids, reply tokens and timestamps, so scripts cannot tell them from LINE's.

use serde_json::{json, Value};

pub use crate::cli::DEV_USER;

/// A 26-character ULID-like id (Crockford base32: 48-bit time, 80 random bits), like
/// LINE's `webhookEventId`.
pub fn event_id() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut out = String::with_capacity(26);
    let time = crate::store::now_ms() as u64;
    for i in (0..10).rev() {
        out.push(ALPHABET[((time >> (i * 5)) & 31) as usize] as char);
    }
    for _ in 0..16 {
        out.push(ALPHABET[fastrand::usize(0..32)] as char);
    }
    out
}

/// A 32-hex-digit reply token.
pub fn reply_token() -> String {
    format!("{:032x}", fastrand::u128(..))
}

fn message_id() -> String {
    fastrand::u64(10u64.pow(17)..10u64.pow(18)).to_string()
}

/// The fields every event shares. `reply` is false for events LINE sends without a token.
fn base(kind: &str, user: &str, reply: bool) -> Value {
    let mut event = json!({
        "type": kind,
        "mode": "active",
        "timestamp": crate::store::now_ms(),
        "source": {"type": "user", "userId": user},
        "webhookEventId": event_id(),
        "deliveryContext": {"isRedelivery": false},
    });
    if reply {
        event["replyToken"] = json!(reply_token());
    }
    event
}

pub fn text(user: &str, text: &str) -> Value {
    let mut event = base("message", user, true);
    event["message"] = json!({
        "id": message_id(),
        "type": "text",
        "quoteToken": format!("q{}", reply_token()),
        "text": text,
    });
    event
}

pub fn follow(user: &str) -> Value {
    let mut event = base("follow", user, true);
    event["follow"] = json!({"isUnblocked": false});
    event
}

pub fn unfollow(user: &str) -> Value {
    base("unfollow", user, false)
}

pub fn postback(user: &str, data: &str) -> Value {
    let mut event = base("postback", user, true);
    event["postback"] = json!({"data": data});
    event
}

/// A webhook body carrying `events`, as LINE posts it.
pub fn body(events: Vec<Value>) -> Value {
    json!({"destination": super::fakeline::BOT_USER_ID, "events": events})
}

/// The events in a JSON file's value: a full webhook body or a single event object.
pub fn from_file_value(value: Value) -> Result<Vec<Value>, String> {
    match value {
        Value::Object(ref obj) if obj.contains_key("events") => match obj.get("events") {
            Some(Value::Array(events)) => Ok(events.clone()),
            _ => Err("`events` is not an array".to_owned()),
        },
        Value::Object(ref obj) if obj.get("type").is_some_and(Value::is_string) => Ok(vec![value]),
        _ => Err(
            "expected an event object with a string `type`, or a webhook body with `events`"
                .to_owned(),
        ),
    }
}

/// Fills in what a hand-written event leaves out (ids, token, source, timestamp), so
/// `send_event(#{type: "follow"})` is enough.
pub fn complete(mut event: Value) -> Value {
    let kind = event["type"].as_str().unwrap_or("message").to_owned();
    let base = match kind.as_str() {
        "unfollow" => unfollow(DEV_USER),
        _ => follow(DEV_USER),
    };
    if let (Some(obj), Some(base)) = (event.as_object_mut(), base.as_object()) {
        for (key, value) in base {
            if key != "type" && key != "follow" {
                obj.entry(key.clone()).or_insert_with(|| value.clone());
            }
        }
    }
    if kind == "follow" && event.get("follow").is_none() {
        event["follow"] = json!({"isUnblocked": false});
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_look_like_ulids() {
        let id = event_id();
        assert_eq!(id.len(), 26);
        assert!(id
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()));
        assert_ne!(id, event_id());
    }

    #[test]
    fn text_events_parse_as_the_daemon_parses_them() {
        let event =
            crate::pipeline::webhook::Event::from_value(text(DEV_USER, "hi")).expect("event");
        assert_eq!(event.kind, "message");
        assert_eq!(event.reply_token.as_ref().map(|t| t.len()), Some(32));
        assert_eq!(event.json()["message"]["text"], "hi");
        assert_eq!(
            event.source.and_then(|s| s.user_id).as_deref(),
            Some(DEV_USER)
        );
    }

    #[test]
    fn files_hold_one_event_or_a_body() {
        let one = from_file_value(json!({"type": "follow"})).expect("one");
        assert_eq!(one.len(), 1);
        let body = from_file_value(body(vec![follow("U1"), unfollow("U1")])).expect("body");
        assert_eq!(body.len(), 2);
        assert!(from_file_value(json!([1])).is_err());
    }

    #[test]
    fn hand_written_events_get_the_fields_line_always_sends() {
        let e = complete(serde_json::json!({"type": "postback", "postback": {"data": "x"}}));
        assert!(e["replyToken"].is_string());
        assert_eq!(e["source"]["userId"], DEV_USER);
        assert_eq!(e["postback"]["data"], "x");
        assert!(e.get("follow").is_none());
    }
}
