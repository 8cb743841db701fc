//! Webhook bodies and events, kept as LINE's own JSON plus the few typed fields the daemon needs.
//!
//! Unknown and future event types pass through untouched: only `type` is required of an event.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

/// Why a (correctly signed) body could not be read as a LINE webhook.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("body is not valid JSON: {0}")]
    Json(String),
    #[error("body is not a JSON object with an `events` array")]
    NoEvents,
    #[error("event {index} is not an object with a string `type`")]
    BadEvent { index: usize },
    #[error("event {index} nests objects and arrays more than {MAX_EVENT_DEPTH} levels deep")]
    TooDeep { index: usize },
}

/// How deeply an event may nest objects and arrays, the event itself being level 1. LINE's
/// events nest about five levels; a script receives the event as a map built by serde_json,
/// which gives up at 128 levels, so a deeper event would reach its handler as `()`. Refusing it
/// before it is stored keeps that from ever happening.
pub const MAX_EVENT_DEPTH: usize = 64;

/// Where an event came from: a user's one-to-one chat, a group or a room.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Source {
    pub kind: String,
    pub user_id: Option<String>,
    pub group_id: Option<String>,
    pub room_id: Option<String>,
}

impl Source {
    /// The chat a reply or push goes to: the group or room if any, else the user.
    pub fn chat_id(&self) -> Option<&str> {
        self.group_id
            .as_deref()
            .or(self.room_id.as_deref())
            .or(self.user_id.as_deref())
    }
}

/// One webhook event.
#[derive(Debug, Clone)]
pub struct Event {
    /// LINE's `type` (`message`, `follow`, `memberJoined`, …).
    pub kind: String,
    pub webhook_event_id: Option<String>,
    pub reply_token: Option<String>,
    pub source: Option<Source>,
    pub mode: Option<String>,
    pub timestamp: Option<i64>,
    pub is_redelivery: bool,
    /// The event exactly as LINE sent it: stored as is, and handed to scripts as a map.
    pub raw: Box<RawValue>,
}

/// The fields the daemon reads; the rest of an event is skipped without being built. A field
/// of an unexpected JSON type reads as absent (only `type` is required).
#[derive(Deserialize)]
struct Fields {
    #[serde(rename = "type")]
    kind: Option<Value>,
    #[serde(rename = "webhookEventId")]
    webhook_event_id: Option<Value>,
    #[serde(rename = "replyToken")]
    reply_token: Option<Value>,
    source: Option<Value>,
    mode: Option<Value>,
    timestamp: Option<Value>,
    #[serde(rename = "deliveryContext")]
    delivery_context: Option<Value>,
}

fn string(v: Option<Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) => Some(s),
        _ => None,
    }
}

impl Event {
    /// Reads one event from its JSON text; `None` unless it is an object with a string `type`.
    pub fn from_raw(raw: Box<RawValue>) -> Option<Self> {
        // Serde would also read a struct from an array; an event is an object.
        if !raw.get().starts_with('{') {
            return None;
        }
        let fields: Fields = serde_json::from_str(raw.get()).ok()?;
        let kind = string(fields.kind)?;
        let source = match fields.source {
            Some(Value::Object(mut s)) => {
                let mut take = |k: &str| string(s.remove(k));
                Some(Source {
                    kind: take("type").unwrap_or_default(),
                    user_id: take("userId"),
                    group_id: take("groupId"),
                    room_id: take("roomId"),
                })
            }
            _ => None,
        };
        Some(Self {
            kind,
            webhook_event_id: string(fields.webhook_event_id),
            reply_token: string(fields.reply_token),
            source,
            mode: string(fields.mode),
            timestamp: fields.timestamp.as_ref().and_then(Value::as_i64),
            is_redelivery: fields
                .delivery_context
                .as_ref()
                .and_then(|d| d.get("isRedelivery"))
                .and_then(Value::as_bool)
                .unwrap_or(false),
            raw,
        })
    }

    /// Reads one event from JSON text (a stored event); `None` as for [`Event::from_raw`].
    pub fn from_json(json: &str) -> Option<Self> {
        RawValue::from_string(json.to_owned())
            .ok()
            .and_then(Self::from_raw)
    }

    /// Reads one event from a JSON value; `None` as for [`Event::from_raw`].
    pub fn from_value(value: Value) -> Option<Self> {
        serde_json::value::to_raw_value(&value)
            .ok()
            .and_then(Self::from_raw)
    }

    /// The event as a JSON value (for tests and tools; handlers get a map built from `raw`).
    pub fn json(&self) -> Value {
        serde_json::from_str(self.raw.get()).unwrap_or(Value::Null)
    }

    /// The key that orders events: events with the same key are handled in arrival order.
    /// Events with no source (none of LINE's today) share one key.
    pub fn conversation_key(&self) -> &str {
        self.source.as_ref().and_then(Source::chat_id).unwrap_or("")
    }
}

/// A parsed webhook request body.
#[derive(Debug, Clone)]
pub struct WebhookBody {
    pub destination: Option<String>,
    pub events: Vec<Event>,
}

#[derive(Deserialize)]
struct Body<'a> {
    destination: Option<Value>,
    #[serde(borrow)]
    events: Option<Vec<&'a RawValue>>,
}

/// Parses a webhook body. Call only after the signature was verified.
pub fn parse_body(body: &[u8]) -> Result<WebhookBody, ParseError> {
    let parsed: Body<'_> = serde_json::from_slice(body).map_err(|e| match e.classify() {
        // Valid JSON of the wrong shape (not an object, `events` not an array).
        serde_json::error::Category::Data => ParseError::NoEvents,
        _ => ParseError::Json(e.to_string()),
    })?;
    // Serde would also read the struct from an array; a webhook body is an object.
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err(ParseError::NoEvents);
    }
    let raw_events = parsed.events.ok_or(ParseError::NoEvents)?;
    let events = raw_events
        .into_iter()
        .enumerate()
        .map(|(index, raw)| {
            // Before building anything from it: serde_json skips values it does not build
            // without counting levels, so the body parsed whatever its depth.
            if nests_deeper_than(raw.get(), MAX_EVENT_DEPTH) {
                return Err(ParseError::TooDeep { index });
            }
            Event::from_raw(raw.to_owned()).ok_or(ParseError::BadEvent { index })
        })
        .collect::<Result<_, _>>()?;
    Ok(WebhookBody {
        destination: string(parsed.destination),
        events,
    })
}

/// Whether valid JSON `text` nests objects and arrays more than `limit` levels. One pass, no
/// recursion, stops at the first level too many.
fn nests_deeper_than(text: &str, limit: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in text.as_bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Maps a LINE event type to the script handler that receives it:
/// `message` → `on_message`, `memberJoined` → `on_member_joined`, `fooBar` → `on_foo_bar`.
pub fn handler_name(event_type: &str) -> String {
    let mut name = String::with_capacity(event_type.len() + 6);
    name.push_str("on_");
    for (i, c) in event_type.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 && !name.ends_with('_') {
                name.push('_');
            }
            name.push(c.to_ascii_lowercase());
        } else if c.is_ascii_alphanumeric() {
            name.push(c);
        } else if !name.ends_with('_') {
            name.push('_');
        }
    }
    name
}

/// Every event type in LINE's webhook spec, for "did you mean" hints and documentation.
pub const KNOWN_EVENT_TYPES: &[&str] = &[
    "message",
    "unsend",
    "follow",
    "unfollow",
    "join",
    "leave",
    "memberJoined",
    "memberLeft",
    "postback",
    "videoPlayComplete",
    "beacon",
    "accountLink",
    "membership",
    "module",
    "activated",
    "deactivated",
    "botSuspended",
    "botResumed",
    "delivery",
];

#[cfg(test)]
mod tests;
