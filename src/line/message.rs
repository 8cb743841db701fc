//! LINE message objects as plain JSON values: builders for the common ones and the checks that
//! can be made before anything is sent.
//!
//! Messages stay `serde_json::Value` on purpose: scripts hand over any message object LINE
//! knows (including ones added after this was written), so only the limits LINE documents for
//! every message are checked here, and LINE itself judges the rest.

use serde_json::{json, Map, Value};

/// Most messages one reply, push, multicast or broadcast may carry.
pub const MAX_MESSAGES: usize = 5;
/// Most UTF-16 code units in a text message (LINE counts like JavaScript's `length`).
pub const MAX_TEXT_UNITS: usize = 5000;
/// Most buttons in a quick reply.
pub const MAX_QUICK_REPLY_ITEMS: usize = 13;
/// Most characters LINE shows in a quick-reply button label.
pub const MAX_LABEL_CHARS: usize = 20;

/// Why a request was refused before it was sent. `index` is the message's position (from 0).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("no messages to send: give between 1 and {MAX_MESSAGES}")]
    NoMessages,
    #[error("{count} messages in one call: LINE accepts at most {MAX_MESSAGES}")]
    TooMany { count: usize },
    #[error("message {index} is not an object (a message is a map like #{{type: \"text\", text: \"hi\"}})")]
    NotAnObject { index: usize },
    #[error("message {index} has no string `type` field")]
    MissingType { index: usize },
    #[error("text message {index} has no string `text` field")]
    TextMissing { index: usize },
    #[error("text message {index} is empty: LINE needs at least 1 character")]
    TextEmpty { index: usize },
    #[error("text message {index} is {units} UTF-16 units long: LINE accepts at most {MAX_TEXT_UNITS} (emoji count as 2)")]
    TextTooLong { index: usize, units: usize },
    #[error("message {index} has a `quickReply` that is not an object with an `items` array")]
    QuickReplyInvalid { index: usize },
    #[error("message {index} has {count} quick-reply items: LINE accepts at most {MAX_QUICK_REPLY_ITEMS}")]
    TooManyQuickReplyItems { index: usize, count: usize },
    #[error("`{field}` is empty")]
    EmptyId { field: &'static str },
    #[error("no recipients: multicast needs at least one user ID")]
    NoRecipients,
    #[error("loading animation of {seconds} s: LINE accepts 5 to 60 seconds in steps of 5")]
    LoadingSeconds { seconds: u32 },
}

/// Checks what LINE would refuse for any message: 1–5 messages, each an object with a string
/// `type`; text of 1..=5000 UTF-16 units; at most 13 quick-reply items.
pub fn validate(messages: &[Value]) -> Result<(), MessageError> {
    if messages.is_empty() {
        return Err(MessageError::NoMessages);
    }
    if messages.len() > MAX_MESSAGES {
        return Err(MessageError::TooMany {
            count: messages.len(),
        });
    }
    messages
        .iter()
        .enumerate()
        .try_for_each(|(index, m)| validate_one(index, m))
}

fn validate_one(index: usize, message: &Value) -> Result<(), MessageError> {
    let obj = message
        .as_object()
        .ok_or(MessageError::NotAnObject { index })?;
    let kind = obj
        .get("type")
        .and_then(Value::as_str)
        .ok_or(MessageError::MissingType { index })?;
    if kind == "text" {
        let text = obj
            .get("text")
            .and_then(Value::as_str)
            .ok_or(MessageError::TextMissing { index })?;
        if text.is_empty() {
            return Err(MessageError::TextEmpty { index });
        }
        let units = text.encode_utf16().count();
        if units > MAX_TEXT_UNITS {
            return Err(MessageError::TextTooLong { index, units });
        }
    }
    if let Some(quick) = obj.get("quickReply") {
        let items = quick
            .get("items")
            .and_then(Value::as_array)
            .ok_or(MessageError::QuickReplyInvalid { index })?;
        if items.len() > MAX_QUICK_REPLY_ITEMS {
            return Err(MessageError::TooManyQuickReplyItems {
                index,
                count: items.len(),
            });
        }
    }
    Ok(())
}

/// A text message.
pub fn text(s: &str) -> Value {
    json!({ "type": "text", "text": s })
}

/// A sticker message (IDs from LINE's sticker list).
pub fn sticker(package_id: &str, sticker_id: &str) -> Value {
    json!({ "type": "sticker", "packageId": package_id, "stickerId": sticker_id })
}

/// An image message: the full image and its preview, both HTTPS URLs.
pub fn image(original: &str, preview: &str) -> Value {
    json!({ "type": "image", "originalContentUrl": original, "previewImageUrl": preview })
}

/// A flex message; `alt_text` is what notifications and old clients show.
pub fn flex(alt_text: &str, contents: Value) -> Value {
    json!({ "type": "flex", "altText": alt_text, "contents": contents })
}

/// Attaches quick-reply buttons to a message. A string item becomes a button that sends that
/// text; an object item is used as-is (any LINE quick-reply item). A string `message` becomes a
/// text message first.
pub fn quick_reply(message: Value, items: Vec<Value>) -> Value {
    let mut obj = match message {
        Value::Object(obj) => obj,
        Value::String(s) => into_map(text(&s)),
        other => return other, // not a message; validate() reports it with its index
    };
    let items: Vec<Value> = items.into_iter().map(quick_reply_item).collect();
    obj.insert("quickReply".to_owned(), json!({ "items": items }));
    Value::Object(obj)
}

fn quick_reply_item(item: Value) -> Value {
    match item {
        Value::String(s) => {
            // LINE refuses labels over 20 characters; the text sent can be longer, so only the
            // label is shortened and the button still sends the whole string.
            let label: String = s.chars().take(MAX_LABEL_CHARS).collect();
            json!({ "type": "action", "action": { "type": "message", "label": label, "text": s } })
        }
        other => other,
    }
}

fn into_map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_one_to_five_messages() {
        assert_eq!(validate(&[text("hi")]), Ok(()));
        assert_eq!(validate(&vec![text("hi"); 5]), Ok(()));
    }

    #[test]
    fn rejects_no_messages_and_six_messages() {
        assert_eq!(validate(&[]), Err(MessageError::NoMessages));
        assert_eq!(
            validate(&vec![text("hi"); 6]),
            Err(MessageError::TooMany { count: 6 })
        );
    }

    #[test]
    fn text_limit_is_5000_utf16_units() {
        assert_eq!(validate(&[text(&"a".repeat(5000))]), Ok(()));
        assert_eq!(
            validate(&[text("ok"), text(&"a".repeat(5001))]),
            Err(MessageError::TextTooLong {
                index: 1,
                units: 5001
            })
        );
    }

    #[test]
    fn emoji_count_as_two_units() {
        // 2,600 characters, but 5,200 UTF-16 code units: LINE refuses it.
        let s = "😀".repeat(2600);
        assert_eq!(s.chars().count(), 2600);
        assert_eq!(
            validate(&[text(&s)]),
            Err(MessageError::TextTooLong {
                index: 0,
                units: 5200
            })
        );
        assert_eq!(validate(&[text(&"😀".repeat(2500))]), Ok(()));
    }

    #[test]
    fn rejects_empty_or_missing_text() {
        assert_eq!(
            validate(&[text("")]),
            Err(MessageError::TextEmpty { index: 0 })
        );
        assert_eq!(
            validate(&[json!({"type": "text"})]),
            Err(MessageError::TextMissing { index: 0 })
        );
    }

    #[test]
    fn rejects_missing_type_and_non_objects() {
        assert_eq!(
            validate(&[text("a"), json!({"text": "hi"})]),
            Err(MessageError::MissingType { index: 1 })
        );
        assert_eq!(
            validate(&[json!({"type": 3})]),
            Err(MessageError::MissingType { index: 0 })
        );
        assert_eq!(
            validate(&[json!("hi")]),
            Err(MessageError::NotAnObject { index: 0 })
        );
    }

    #[test]
    fn quick_reply_allows_13_items_not_14() {
        let items = |n: usize| (0..n).map(|i| Value::from(format!("o{i}"))).collect();
        assert_eq!(validate(&[quick_reply(text("pick"), items(13))]), Ok(()));
        assert_eq!(
            validate(&[quick_reply(text("pick"), items(14))]),
            Err(MessageError::TooManyQuickReplyItems {
                index: 0,
                count: 14
            })
        );
        assert_eq!(
            validate(&[json!({"type": "text", "text": "x", "quickReply": {"items": 1}})]),
            Err(MessageError::QuickReplyInvalid { index: 0 })
        );
    }

    #[test]
    fn unknown_message_types_pass() {
        assert_eq!(validate(&[json!({"type": "futureThing", "x": 1})]), Ok(()));
    }

    #[test]
    fn helpers_build_lines_json() {
        assert_eq!(text("hi"), json!({"type": "text", "text": "hi"}));
        assert_eq!(
            sticker("446", "1988"),
            json!({"type": "sticker", "packageId": "446", "stickerId": "1988"})
        );
        assert_eq!(
            image("https://x/a.jpg", "https://x/p.jpg"),
            json!({"type": "image", "originalContentUrl": "https://x/a.jpg",
                   "previewImageUrl": "https://x/p.jpg"})
        );
        assert_eq!(
            flex("alt", json!({"type": "bubble"})),
            json!({"type": "flex", "altText": "alt", "contents": {"type": "bubble"}})
        );
    }

    #[test]
    fn quick_reply_turns_strings_into_message_actions_and_keeps_maps() {
        let custom = json!({"type": "action", "action": {"type": "camera", "label": "Cam"}});
        let long = "a".repeat(25);
        let m = quick_reply(
            Value::from("pick"),
            vec![
                Value::from("Yes"),
                custom.clone(),
                Value::from(long.clone()),
            ],
        );
        assert_eq!(
            m,
            json!({"type": "text", "text": "pick", "quickReply": {"items": [
                {"type": "action", "action": {"type": "message", "label": "Yes", "text": "Yes"}},
                custom,
                {"type": "action", "action": {"type": "message", "label": "a".repeat(20), "text": long}},
            ]}})
        );
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let e = MessageError::TextTooLong {
            index: 0,
            units: 5200,
        };
        assert_eq!(
            e.to_string(),
            "text message 0 is 5200 UTF-16 units long: LINE accepts at most 5000 (emoji count as 2)"
        );
        assert!(MessageError::TooMany { count: 6 }
            .to_string()
            .contains("at most 5"));
    }
}
