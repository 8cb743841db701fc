//! What the fake answers, endpoint by endpoint, the way LINE does: the part of the fake a bot's
//! correctness depends on (a reply token works once, a retry key is accepted once), kept apart
//! from the HTTP server so it can be tested as a plain function.

use std::collections::{HashMap, HashSet};

use axum::http::{HeaderMap, Method};
use serde_json::{json, Value};

use super::{validate, Answer};

/// The bot's own user id, as `/v2/bot/info` gives it and webhooks name it in `destination`.
pub const BOT_USER_ID: &str = "U0b0ddef00b0ddef00b0ddef00b0ddef0";

/// Paths LINE serves beyond the ones answered specifically: a `GET`, `PUT` or `DELETE` on them
/// gets `200 {}`, anywhere else LINE's 404. (A `POST` is always accepted, with `{}`.)
const OTHER_LINE_PATHS: &[&str] = &[
    "/v2/bot/followers/",
    "/v2/bot/message/",
    "/v2/bot/insight/",
    "/v2/bot/richmenu",
    "/v2/bot/user/",
    "/v2/bot/group/",
    "/v2/bot/room/",
    "/v2/bot/channel/",
    "/v2/bot/audienceGroup",
    "/v2/bot/membership/",
    "/v2/bot/coupon",
];

/// What `GET /v2/bot/message/{id}/content` serves for one message.
#[derive(Clone, Debug, PartialEq)]
pub enum Content {
    Ready {
        content_type: String,
        bytes: Vec<u8>,
    },
    /// LINE's 202: a video or audio still being prepared.
    NotReady,
}

/// LINE's memory of the bot's channel: what it has accepted, and who and what exists.
pub(super) struct World {
    used_reply_tokens: HashSet<String>,
    /// Retry key → the request id and `sentMessages` of the request that was accepted with it.
    accepted_retry_keys: HashMap<String, (String, Value)>,
    /// User id → the profile LINE returns, or `None` for a user who is not (or no longer) a
    /// friend, whose profile is a 404.
    profiles: HashMap<String, Option<Value>>,
    /// Users, groups and rooms the channel has heard from (an event came from them): their
    /// ids are accepted whatever their shape, and users among them have a profile.
    friends: HashSet<String>,
    /// Users who unfollowed (blocked) the bot since: LINE no longer gives their profile.
    blocked: HashSet<String>,
    /// Every id exists and every user is a friend: for the daemon's integration tests, whose
    /// webhooks do not pass through the fake and whose ids are short stand-ins ("U1").
    open: bool,
    content: HashMap<String, Content>,
}

impl Default for World {
    /// A channel whose only friend is the user the local tools send events as.
    fn default() -> Self {
        Self {
            used_reply_tokens: HashSet::new(),
            accepted_retry_keys: HashMap::new(),
            profiles: HashMap::new(),
            friends: HashSet::from([crate::cli::DEV_USER.to_owned()]),
            blocked: HashSet::new(),
            open: false,
            content: HashMap::new(),
        }
    }
}

/// What LINE answers to `method path` with these headers and (JSON) body, as request
/// `request_id`. Remembers what LINE would remember.
pub(super) fn answer(
    world: &mut World,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &Value,
    request_id: &str,
) -> Answer {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    // LINE judges the body before it looks at the reply token or the retry key, so a refused
    // request uses up neither.
    if let ("POST", ["v2", "bot", "message", kind]) = (method.as_str(), segments.as_slice()) {
        let sends = ["reply", "push", "multicast", "narrowcast", "broadcast"];
        if sends.contains(kind) {
            if let Some(refusal) = validate::refusal(kind, body, &|id| world.knows(id)) {
                return Answer::json(400, refusal);
            }
        }
    }
    match (method.as_str(), segments.as_slice()) {
        ("POST", ["v2", "bot", "message", "reply"]) => {
            let token = body.get("replyToken").and_then(Value::as_str).unwrap_or("");
            if token.is_empty() || !world.used_reply_tokens.insert(token.to_owned()) {
                return Answer::json(400, json!({"message": "Invalid reply token"}));
            }
            Answer::json(200, json!({"sentMessages": sent_messages(body)}))
        }
        (
            "POST",
            ["v2", "bot", "message", kind @ ("push" | "multicast" | "narrowcast" | "broadcast")],
        ) => send(world, kind, headers, body, request_id),
        ("GET", ["v2", "bot", "profile", user]) => world.profile(user, true),
        ("GET", ["v2", "bot", "group" | "room", _, "member", user]) => world.profile(user, false),
        ("POST", ["v2", "bot", "chat", "loading", "start"]) => Answer::json(202, json!({})),
        ("GET", ["v2", "bot", "message", id, "content"]) => world.content(id),
        ("GET", ["v2", "bot", "info"]) => Answer::json(
            200,
            json!({"userId": BOT_USER_ID, "basicId": "@123abcde",
                   "displayName": "linebotd dev bot",
                   "pictureUrl": format!("https://profile.line-scdn.net/{BOT_USER_ID}"),
                   "chatMode": "bot", "markAsReadMode": "manual"}),
        ),
        ("POST", _) => Answer::json(200, json!({})),
        ("GET" | "PUT" | "DELETE", _) if OTHER_LINE_PATHS.iter().any(|p| path.starts_with(p)) => {
            Answer::json(200, json!({}))
        }
        _ => Answer::json(404, json!({"message": "Not found"})),
    }
}

impl World {
    /// Every id exists and every user is a friend (see [`World::open`]).
    pub(super) fn open(&mut self) {
        self.open = true;
    }

    /// `id` follows the bot (and no longer blocks it).
    pub(super) fn befriend(&mut self, id: &str) {
        self.friends.insert(id.to_owned());
        self.blocked.remove(id);
    }

    /// Learns from an event the channel received: its source is a friend (a user who follows
    /// again is no longer blocked), and a user who unfollowed is blocked.
    pub(super) fn saw_event(&mut self, event: &Value) {
        let source = &event["source"];
        for key in ["groupId", "roomId", "userId"] {
            if let Some(id) = source[key].as_str() {
                self.friends.insert(id.to_owned());
            }
        }
        if let Some(user) = source["userId"].as_str() {
            match event["type"].as_str() {
                Some("unfollow") => self.blocked.insert(user.to_owned()),
                _ => self.blocked.remove(user),
            };
        }
    }

    /// True for an id the channel has heard of, whatever its shape.
    fn knows(&self, id: &str) -> bool {
        self.open || self.friends.contains(id) || self.profiles.contains_key(id)
    }

    pub(super) fn set_profile(&mut self, user: &str, profile: Option<Value>) {
        self.profiles.insert(user.to_owned(), profile);
    }

    pub(super) fn set_content(&mut self, message_id: &str, content: Content) {
        self.content.insert(message_id.to_owned(), content);
    }

    /// A user's own profile (`full`) or their profile as a group or room member, which LINE
    /// gives without the status message and language.
    fn profile(&self, user: &str, full: bool) -> Answer {
        let not_found = Answer::json(404, json!({"message": "Not found"}));
        if self.blocked.contains(user) {
            return not_found;
        }
        match self.profiles.get(user) {
            Some(None) => not_found,
            Some(Some(profile)) => Answer::json(200, profile.clone()),
            None if !self.open && !self.friends.contains(user) => not_found,
            None => {
                let mut p = json!({
                    "userId": user,
                    "displayName": format!("User {user}"),
                    "pictureUrl": format!("https://profile.line-scdn.net/{user}"),
                });
                if full {
                    p["statusMessage"] = json!("Hello, LINE!");
                    p["language"] = json!("en");
                }
                Answer::json(200, p)
            }
        }
    }

    fn content(&self, id: &str) -> Answer {
        match self.content.get(id) {
            Some(Content::NotReady) => Answer::json(202, json!({})),
            Some(Content::Ready {
                content_type,
                bytes,
            }) => Answer::bytes(content_type, bytes.clone()),
            None => Answer::bytes(
                "application/octet-stream",
                format!("content of {id}").into_bytes(),
            ),
        }
    }
}

/// Push, multicast, narrowcast and broadcast. LINE accepts a retry key once: a second request
/// with it is a 409 naming the request that was accepted, and is not sent again. A key must be
/// a UUID.
fn send(
    world: &mut World,
    kind: &str,
    headers: &HeaderMap,
    body: &Value,
    request_id: &str,
) -> Answer {
    let sent = if kind == "push" {
        json!({"sentMessages": sent_messages(body)})
    } else {
        json!({})
    };
    let status = if kind == "narrowcast" { 202 } else { 200 };
    let Some(key) = headers.get("x-line-retry-key") else {
        return Answer::json(status, sent);
    };
    let key = key.to_str().unwrap_or("");
    if uuid::Uuid::parse_str(key).is_err() {
        return Answer::json(
            400,
            json!({"message": "The value for the 'X-Line-Retry-Key' header is invalid"}),
        );
    }
    if let Some((accepted_id, accepted)) = world.accepted_retry_keys.get(key) {
        let mut conflict = json!({"message": "The retry key is already accepted"});
        if let Some(messages) = accepted.get("sentMessages") {
            conflict["sentMessages"] = messages.clone();
        }
        return Answer::json(409, conflict).with_header("x-line-accepted-request-id", accepted_id);
    }
    world
        .accepted_retry_keys
        .insert(key.to_owned(), (request_id.to_owned(), sent.clone()));
    Answer::json(status, sent)
}

/// One `{"id", "quoteToken"}` per message in the request, as LINE answers a reply or a push.
fn sent_messages(body: &Value) -> Vec<Value> {
    let count = body
        .get("messages")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    (0..count)
        .map(|_| {
            json!({"id": fastrand::u64(10u64.pow(17)..10u64.pow(18)).to_string(),
                   "quoteToken": format!("q{}", fastrand::u64(..))})
        })
        .collect()
}
