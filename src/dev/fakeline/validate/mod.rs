//! What LINE refuses in a request that sends messages (reply, push, multicast, broadcast,
//! narrowcast), found the way LINE reports it: every problem with the property it is about, in
//! LINE's 400 body `{"message": "The request body has N error(s)", "details": [...]}`.
//!
//! The LINE client checks part of this before sending (`crate::line::message::validate`), but
//! the fake does not rely on it: scripts also reach LINE through `line_post`, and a check the
//! client lost must still show up locally. The limits are the client's constants, so the two
//! cannot disagree; the rules come from LINE's OpenAPI spec (required fields per message type,
//! HTTPS URLs, lengths).

use serde_json::{json, Value};

use crate::line::message::{MAX_MESSAGES, MAX_QUICK_REPLY_ITEMS, MAX_TEXT_UNITS};

/// Most recipients of one multicast.
const MAX_MULTICAST_TO: usize = 500;
/// Longest URL LINE accepts in a message.
const MAX_URL_CHARS: usize = 2000;
/// Longest `altText` (what notifications show for a flex, template or imagemap message).
const MAX_ALT_TEXT_CHARS: usize = 400;

/// What one field of a message must hold.
#[derive(Clone, Copy)]
enum Field {
    /// A text of 1..=5000 UTF-16 units.
    Text,
    /// A string that is not empty.
    Str,
    /// An `https://` URL of at most 2,000 characters.
    Https,
    /// A number.
    Number,
    /// A string of 1..=400 characters.
    AltText,
    /// A JSON object.
    Object,
    /// A JSON array.
    Array,
}

/// Every message type LINE's spec knows, with its required fields.
const MESSAGE_TYPES: &[(&str, &[(&str, Field)])] = &[
    ("text", &[("text", Field::Text)]),
    ("textV2", &[("text", Field::Text)]),
    (
        "sticker",
        &[("packageId", Field::Str), ("stickerId", Field::Str)],
    ),
    (
        "image",
        &[
            ("originalContentUrl", Field::Https),
            ("previewImageUrl", Field::Https),
        ],
    ),
    (
        "video",
        &[
            ("originalContentUrl", Field::Https),
            ("previewImageUrl", Field::Https),
        ],
    ),
    (
        "audio",
        &[
            ("originalContentUrl", Field::Https),
            ("duration", Field::Number),
        ],
    ),
    (
        "location",
        &[
            ("title", Field::Str),
            ("address", Field::Str),
            ("latitude", Field::Number),
            ("longitude", Field::Number),
        ],
    ),
    (
        "imagemap",
        &[
            ("baseUrl", Field::Https),
            ("altText", Field::AltText),
            ("baseSize", Field::Object),
            ("actions", Field::Array),
        ],
    ),
    (
        "template",
        &[("altText", Field::AltText), ("template", Field::Object)],
    ),
    (
        "flex",
        &[("altText", Field::AltText), ("contents", Field::Object)],
    ),
    ("coupon", &[("couponId", Field::Str)]),
];

/// One thing wrong with a request, as an entry of LINE's `details`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Problem {
    pub property: String,
    pub message: String,
}

fn problem(property: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        property: property.into(),
        message: message.into(),
    }
}

/// LINE's 400 body for a request to `kind` ("reply", "push", "multicast", "broadcast" or
/// "narrowcast"), or `None` when LINE would accept it. `known` says whether an id that does not
/// look like LINE's is one the fake has seen (the stand-ins local tests use, such as "U1").
pub(super) fn refusal(kind: &str, body: &Value, known: &dyn Fn(&str) -> bool) -> Option<Value> {
    if !body.is_object() {
        return Some(json!({"message": "The request body could not be parsed as JSON"}));
    }
    // LINE reads `to` before judging the rest: a malformed id is a refusal of its own, without
    // details.
    if let Some(property) = invalid_recipient(kind, body, known) {
        return Some(json!({
            "message": format!("The property, '{property}', in the request body is invalid (line: -, column: -)")
        }));
    }
    let problems = problems(kind, body);
    if problems.is_empty() {
        return None;
    }
    let details: Vec<Value> = problems
        .iter()
        .map(|p| json!({"message": p.message, "property": p.property}))
        .collect();
    Some(json!({
        "message": format!("The request body has {} error(s)", problems.len()),
        "details": details,
    }))
}

/// True for an id shaped like LINE's: `U` (user), `C` (group) or `R` (room) and 32 lower-case
/// hex digits.
pub(super) fn looks_like_id(id: &str, prefixes: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| prefixes.contains(c))
        && id.len() == 33
        && chars.all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
}

/// The `to` property LINE cannot read as a recipient, if any.
fn invalid_recipient(kind: &str, body: &Value, known: &dyn Fn(&str) -> bool) -> Option<String> {
    let ok = |id: &Value, prefixes: &str| {
        id.as_str()
            .is_some_and(|id| looks_like_id(id, prefixes) || known(id))
    };
    match (kind, body.get("to")) {
        ("push", Some(to)) if !ok(to, "UCR") => Some("to".to_owned()),
        ("multicast", Some(Value::Array(to))) => to
            .iter()
            .position(|id| !ok(id, "U"))
            .map(|i| format!("to[{i}]")),
        ("multicast", Some(_)) => Some("to".to_owned()),
        _ => None,
    }
}

/// Everything wrong with the body apart from the recipient's shape.
fn problems(kind: &str, body: &Value) -> Vec<Problem> {
    let mut found = Vec::new();
    match kind {
        "reply" if !has_text(body, "replyToken") => {
            found.push(problem("replyToken", "must be specified"))
        }
        "push" if body.get("to").is_none() => found.push(problem("to", "must be specified")),
        "multicast" => match body.get("to").and_then(Value::as_array) {
            None => found.push(problem("to", "must be specified")),
            Some(to) if to.is_empty() || to.len() > MAX_MULTICAST_TO => found.push(problem(
                "to",
                format!("Size must be between 1 and {MAX_MULTICAST_TO}"),
            )),
            Some(_) => {}
        },
        _ => {}
    }
    match body.get("messages") {
        None | Some(Value::Null) => found.push(problem("messages", "must be specified")),
        Some(Value::Array(messages)) => {
            if messages.is_empty() || messages.len() > MAX_MESSAGES {
                found.push(problem(
                    "messages",
                    format!("Size must be between 1 and {MAX_MESSAGES}"),
                ));
            }
            for (i, message) in messages.iter().enumerate() {
                check_message(&format!("messages[{i}]"), message, &mut found);
            }
        }
        Some(_) => found.push(problem("messages", "must be an array of message objects")),
    }
    found
}

fn has_text(body: &Value, key: &str) -> bool {
    body.get(key)
        .and_then(Value::as_str)
        .is_some_and(|t| !t.is_empty())
}

fn check_message(at: &str, message: &Value, found: &mut Vec<Problem>) {
    let Some(obj) = message.as_object() else {
        found.push(problem(at, "must be a message object"));
        return;
    };
    let Some(kind) = obj.get("type").and_then(Value::as_str) else {
        found.push(problem(format!("{at}.type"), "must be specified"));
        return;
    };
    let Some((_, fields)) = MESSAGE_TYPES.iter().find(|(name, _)| *name == kind) else {
        let names: Vec<&str> = MESSAGE_TYPES.iter().map(|(name, _)| *name).collect();
        found.push(problem(
            format!("{at}.type"),
            format!(
                "must be one of the following values: [{}]",
                names.join(", ")
            ),
        ));
        return;
    };
    for (name, field) in *fields {
        if let Some(message) = check_field(*field, obj.get(*name)) {
            found.push(problem(format!("{at}.{name}"), message));
        }
    }
    if let Some(quick) = obj.get("quickReply") {
        match quick.get("items").and_then(Value::as_array) {
            None => found.push(problem(
                format!("{at}.quickReply.items"),
                "must be specified",
            )),
            Some(items) if items.is_empty() || items.len() > MAX_QUICK_REPLY_ITEMS => {
                found.push(problem(
                    format!("{at}.quickReply.items"),
                    format!("Size must be between 1 and {MAX_QUICK_REPLY_ITEMS}"),
                ))
            }
            Some(_) => {}
        }
    }
}

/// LINE's complaint about one field's value, if any.
fn check_field(field: Field, value: Option<&Value>) -> Option<String> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Some("must be specified".to_owned());
    };
    let text = value.as_str();
    match field {
        Field::Text => match text {
            None => Some("must be a string".to_owned()),
            Some("") => Some("May not be empty".to_owned()),
            Some(t) if t.encode_utf16().count() > MAX_TEXT_UNITS => {
                Some(format!("Length must be between 1 and {MAX_TEXT_UNITS}"))
            }
            Some(_) => None,
        },
        Field::Str => match text {
            None => Some("must be a string".to_owned()),
            Some("") => Some("May not be empty".to_owned()),
            Some(_) => None,
        },
        Field::AltText => match text {
            None => Some("must be a string".to_owned()),
            Some(t) if t.is_empty() || t.chars().count() > MAX_ALT_TEXT_CHARS => {
                Some(format!("Length must be between 1 and {MAX_ALT_TEXT_CHARS}"))
            }
            Some(_) => None,
        },
        Field::Https => match text {
            Some(url) if !url.starts_with("https://") => {
                Some("must be an HTTPS URL (https://…)".to_owned())
            }
            Some(url) if url.chars().count() > MAX_URL_CHARS => {
                Some(format!("Length must be between 1 and {MAX_URL_CHARS}"))
            }
            Some(_) => None,
            None => Some("must be an HTTPS URL (https://…)".to_owned()),
        },
        Field::Number => (!value.is_number()).then(|| "must be a number".to_owned()),
        Field::Object => (!value.is_object()).then(|| "must be an object".to_owned()),
        Field::Array => (!value.is_array()).then(|| "must be an array".to_owned()),
    }
}

#[cfg(test)]
mod tests;
