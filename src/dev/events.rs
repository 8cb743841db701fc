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

/// A follow by a user who had blocked the bot: LINE marks it `isUnblocked`.
pub fn refollow(user: &str) -> Value {
    let mut event = follow(user);
    event["follow"]["isUnblocked"] = json!(true);
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

pub fn sticker(user: &str, package_id: &str, sticker_id: &str) -> Value {
    let mut event = base("message", user, true);
    event["message"] = json!({
        "id": message_id(),
        "type": "sticker",
        "quoteToken": format!("q{}", reply_token()),
        "packageId": package_id,
        "stickerId": sticker_id,
        "stickerResourceType": "STATIC",
        "keywords": [],
    });
    event
}

/// An image sent from the user's phone; `content(event)` downloads it from the fake LINE.
pub fn image(user: &str) -> Value {
    let mut event = base("message", user, true);
    event["message"] = json!({
        "id": message_id(),
        "type": "image",
        "quoteToken": format!("q{}", reply_token()),
        "contentProvider": {"type": "line"},
    });
    event
}

pub fn location(user: &str, title: &str, latitude: f64, longitude: f64) -> Value {
    let mut event = base("message", user, true);
    event["message"] = json!({
        "id": message_id(),
        "type": "location",
        "title": title,
        "address": title,
        "latitude": latitude,
        "longitude": longitude,
    });
    event
}

/// The bot joined `group`.
pub fn join(group: &str) -> Value {
    joined(&Chat::Group(group.to_owned()))
}

/// `event`, sent by its user from inside `group`.
pub fn in_group(event: Value, group: &str) -> Value {
    in_chat(event, &Chat::Group(group.to_owned()))
}

/// A conversation with more than the bot and one user: a group, or a room (a chat of several
/// users that was never made a group). Its id starts with `C` or `R`, as LINE's do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chat {
    Group(String),
    Room(String),
}

impl Chat {
    /// The group or room with this id, told apart by its first letter.
    pub fn from_id(id: &str) -> Self {
        match id.starts_with('R') {
            true => Self::Room(id.to_owned()),
            false => Self::Group(id.to_owned()),
        }
    }

    fn source(&self) -> Value {
        match self {
            Self::Group(id) => json!({"type": "group", "groupId": id}),
            Self::Room(id) => json!({"type": "room", "roomId": id}),
        }
    }
}

/// `event`, sent by its user from inside `chat`.
pub fn in_chat(mut event: Value, chat: &Chat) -> Value {
    let user = event["source"]["userId"].clone();
    event["source"] = chat.source();
    event["source"]["userId"] = user;
    event
}

/// The bot was added to `chat`: LINE sends `join` from the chat itself.
pub fn joined(chat: &Chat) -> Value {
    let mut event = base("join", DEV_USER, true);
    event["source"] = chat.source();
    event
}

/// `user` was added to `chat`, where the bot already is.
pub fn member_joined(chat: &Chat, user: &str) -> Value {
    let mut event = base("memberJoined", user, true);
    event["source"] = chat.source();
    event["joined"] = json!({"members": [{"type": "user", "userId": user}]});
    event
}

/// A group id that looks like LINE's (`C` and 32 hex digits), the same for the same name.
pub fn group_id(name: &str) -> String {
    chat_id('C', name)
}

/// A room id that looks like LINE's (`R` and 32 hex digits), the same for the same name.
pub fn room_id(name: &str) -> String {
    chat_id('R', name)
}

fn chat_id(prefix: char, name: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut h);
    let a = h.finish();
    a.hash(&mut h);
    format!("{prefix}{a:016x}{:016x}", h.finish())
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

/// Event types LINE sends with a `replyToken` (webhook.yml); every other type, including
/// types LINE adds later, has none, so `reply` fails on them locally as it does in production.
const WITH_REPLY_TOKEN: &[&str] = &[
    "message",
    "follow",
    "join",
    "memberJoined",
    "postback",
    "videoPlayComplete",
    "beacon",
    "accountLink",
    "membership",
];

/// Channel-level event types: LINE sends them with no `source`. Every other known type comes
/// from a chat; unknown types get no source either (nothing says where they come from).
const CHANNEL_EVENTS: &[&str] = &[
    "module",
    "activated",
    "deactivated",
    "botSuspended",
    "botResumed",
    "delivery",
];

fn has_source(kind: &str) -> bool {
    crate::pipeline::webhook::event::KNOWN_EVENT_TYPES.contains(&kind)
        && !CHANNEL_EVENTS.contains(&kind)
}

/// Events about a group the bot is in: LINE sends them from the group, not from a user.
const FROM_A_GROUP: &[&str] = &["join", "leave", "memberJoined", "memberLeft"];

/// The group hand-written group events come from.
pub const DEV_GROUP: &str = "Cdev0000000000000000000000000000";

/// Fills in what a hand-written event leaves out, and only what LINE sends for its type:
/// the fields every event has (id, timestamp, mode, delivery context), a `source` for chat
/// events (the group for join/leave/memberJoined/memberLeft), a reply token for the types that
/// carry one. So `send_event(#{type: "follow"})` is enough, and `reply` to a `leave` fails
/// locally as it does in production.
pub fn complete(mut event: Value) -> Value {
    let kind = event["type"].as_str().unwrap_or("message").to_owned();
    let mut base = base(&kind, DEV_USER, WITH_REPLY_TOKEN.contains(&kind.as_str()));
    if FROM_A_GROUP.contains(&kind.as_str()) {
        base["source"] = json!({"type": "group", "groupId": DEV_GROUP});
    }
    if !has_source(&kind) {
        base.as_object_mut().map(|b| b.remove("source"));
    }
    if kind == "follow" {
        base["follow"] = json!({"isUnblocked": false});
    }
    if let (Some(obj), Some(base)) = (event.as_object_mut(), base.as_object()) {
        for (key, value) in base {
            obj.entry(key.clone()).or_insert_with(|| value.clone());
        }
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
    fn room_events_come_from_the_room_and_member_joins_name_the_member() {
        let room = Chat::from_id(&room_id("trip"));
        let said = in_chat(text("U1", "hi"), &room);
        assert_eq!(said["source"]["type"], "room");
        assert_eq!(said["source"]["userId"], "U1");
        assert!(said["source"]["roomId"]
            .as_str()
            .is_some_and(|id| id.starts_with('R')));
        let joined = member_joined(&Chat::Group("C1".into()), "U2");
        assert_eq!(joined["source"], json!({"type": "group", "groupId": "C1"}));
        assert_eq!(joined["joined"]["members"][0]["userId"], "U2");
        assert_eq!(refollow("U1")["follow"]["isUnblocked"], true);
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
    fn hand_written_events_get_a_reply_token_and_a_source_only_where_line_sends_them() {
        for kind in ["leave", "memberLeft", "unsend", "unfollow"] {
            let e = complete(json!({"type": kind}));
            assert!(e.get("replyToken").is_none(), "{kind}: {e}");
            assert!(e["source"].is_object(), "{kind}: {e}");
        }
        for kind in [
            "module",
            "activated",
            "botSuspended",
            "delivery",
            "somethingNew",
        ] {
            let e = complete(json!({"type": kind}));
            assert!(e.get("replyToken").is_none(), "{kind}: {e}");
            assert!(e.get("source").is_none(), "{kind}: {e}");
            assert!(
                e["webhookEventId"].is_string() && e["timestamp"].is_i64(),
                "{kind}"
            );
        }
        for kind in ["join", "memberJoined", "beacon", "message"] {
            let e = complete(json!({"type": kind}));
            assert!(e["replyToken"].is_string(), "{kind}: {e}");
        }
        assert_eq!(
            complete(json!({"type": "join"}))["source"]["groupId"],
            DEV_GROUP
        );
        assert_eq!(
            complete(json!({"type": "leave"}))["source"]["type"],
            "group"
        );
        // What the file says wins.
        let given = json!({"type": "leave", "source": {"type": "room", "roomId": "R1"}});
        assert_eq!(complete(given)["source"]["roomId"], "R1");
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
