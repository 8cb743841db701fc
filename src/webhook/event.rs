//! Webhook bodies and events, kept as LINE's own JSON plus the few typed fields the daemon needs.
//!
//! Unknown and future event types pass through untouched: only `type` is required of an event.

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
}

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
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// LINE's `type` (`message`, `follow`, `memberJoined`, …).
    pub kind: String,
    pub webhook_event_id: Option<String>,
    pub reply_token: Option<String>,
    pub source: Option<Source>,
    pub mode: Option<String>,
    pub timestamp: Option<i64>,
    pub is_redelivery: bool,
    /// The event exactly as LINE sent it.
    pub raw: Value,
}

impl Event {
    /// Reads the typed fields out of one event object; `None` if it has no string `type`.
    pub fn from_value(raw: Value) -> Option<Self> {
        let obj = raw.as_object()?;
        let kind = obj.get("type")?.as_str()?.to_owned();
        let str_field = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
        let source = obj
            .get("source")
            .and_then(Value::as_object)
            .map(|s| Source {
                kind: str_field(s.get("type")).unwrap_or_default(),
                user_id: str_field(s.get("userId")),
                group_id: str_field(s.get("groupId")),
                room_id: str_field(s.get("roomId")),
            });
        Some(Self {
            kind,
            webhook_event_id: str_field(obj.get("webhookEventId")),
            reply_token: str_field(obj.get("replyToken")),
            source,
            mode: str_field(obj.get("mode")),
            timestamp: obj.get("timestamp").and_then(Value::as_i64),
            is_redelivery: obj
                .get("deliveryContext")
                .and_then(|d| d.get("isRedelivery"))
                .and_then(Value::as_bool)
                .unwrap_or(false),
            raw,
        })
    }

    /// The key that orders events: events with the same key are handled in arrival order.
    /// Events with no source (none of LINE's today) share one key.
    pub fn conversation_key(&self) -> &str {
        self.source.as_ref().and_then(Source::chat_id).unwrap_or("")
    }
}

/// A parsed webhook request body.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookBody {
    pub destination: Option<String>,
    pub events: Vec<Event>,
}

/// Parses a webhook body. Call only after the signature was verified.
pub fn parse_body(body: &[u8]) -> Result<WebhookBody, ParseError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| ParseError::Json(e.to_string()))?;
    let Value::Object(mut obj) = value else {
        return Err(ParseError::NoEvents);
    };
    let destination = obj
        .get("destination")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let Some(Value::Array(raw_events)) = obj.remove("events") else {
        return Err(ParseError::NoEvents);
    };
    let events = raw_events
        .into_iter()
        .enumerate()
        .map(|(index, raw)| Event::from_value(raw).ok_or(ParseError::BadEvent { index }))
        .collect::<Result<_, _>>()?;
    Ok(WebhookBody {
        destination,
        events,
    })
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
mod tests {
    use super::*;

    #[test]
    fn handler_names_follow_snake_case_of_line_types() {
        let cases = [
            ("message", "on_message"),
            ("unsend", "on_unsend"),
            ("follow", "on_follow"),
            ("unfollow", "on_unfollow"),
            ("join", "on_join"),
            ("leave", "on_leave"),
            ("memberJoined", "on_member_joined"),
            ("memberLeft", "on_member_left"),
            ("postback", "on_postback"),
            ("videoPlayComplete", "on_video_play_complete"),
            ("beacon", "on_beacon"),
            ("accountLink", "on_account_link"),
            ("membership", "on_membership"),
            ("module", "on_module"),
            ("activated", "on_activated"),
            ("deactivated", "on_deactivated"),
            ("botSuspended", "on_bot_suspended"),
            ("botResumed", "on_bot_resumed"),
            ("delivery", "on_delivery"),
            ("fooBar", "on_foo_bar"),
        ];
        for (t, h) in cases {
            assert_eq!(handler_name(t), h, "type {t}");
        }
        assert_eq!(KNOWN_EVENT_TYPES.len(), cases.len() - 1);
    }

    #[test]
    fn weird_type_names_still_give_identifiers() {
        assert_eq!(handler_name("a-b.c"), "on_a_b_c");
        assert_eq!(handler_name("XMLThing"), "on_x_m_l_thing");
    }

    #[test]
    fn conversation_key_prefers_group_then_room_then_user() {
        let ev = |src: Value| {
            Event::from_value(serde_json::json!({"type":"message","source":src})).unwrap()
        };
        assert_eq!(
            ev(serde_json::json!({"type":"group","groupId":"G","userId":"U"})).conversation_key(),
            "G"
        );
        assert_eq!(
            ev(serde_json::json!({"type":"room","roomId":"R","userId":"U"})).conversation_key(),
            "R"
        );
        assert_eq!(
            ev(serde_json::json!({"type":"user","userId":"U"})).conversation_key(),
            "U"
        );
    }

    #[test]
    fn rejects_bodies_without_events() {
        assert!(matches!(parse_body(b"not json"), Err(ParseError::Json(_))));
        assert_eq!(parse_body(b"[]"), Err(ParseError::NoEvents));
        assert_eq!(
            parse_body(br#"{"destination":"U1"}"#),
            Err(ParseError::NoEvents)
        );
        assert_eq!(parse_body(br#"{"events":{}}"#), Err(ParseError::NoEvents));
        assert_eq!(
            parse_body(br#"{"events":[{"no":"type"}]}"#),
            Err(ParseError::BadEvent { index: 0 })
        );
        assert_eq!(
            parse_body(br#"{"events":[1]}"#),
            Err(ParseError::BadEvent { index: 0 })
        );
    }

    #[test]
    fn verify_button_body_has_no_events() {
        let body = parse_body(br#"{"destination":"Uxxx","events":[]}"#).unwrap();
        assert_eq!(body.destination.as_deref(), Some("Uxxx"));
        assert!(body.events.is_empty());
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics(body in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = parse_body(&body);
        }

        #[test]
        fn parser_never_panics_on_json_like_text(body in r#"\{("events"|"type"|"source"|\[|\]|\{|\}|:|,|"x"|1|null|true)*"#) {
            let _ = parse_body(body.as_bytes());
        }
    }
}
