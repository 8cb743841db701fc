//! What the browser asks the console to do: build the event a LINE user's action makes (with
//! the same builders `chat` and `simulate` use) and post it to the dev daemon as a signed
//! webhook, exactly as LINE would.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::dev::actions::{self, Tap};
use crate::dev::events::{self, Chat};
use crate::dev::fakeline::Content;

use super::Console;

/// One thing a user does in the chat. Fields not used by its `type` are ignored.
#[derive(Debug, Deserialize)]
pub struct Send {
    user: String,
    /// The group or room it happens in; none for the one-to-one chat.
    chat: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: String,
    #[serde(default, rename = "packageId")]
    package_id: String,
    #[serde(default, rename = "stickerId")]
    sticker_id: String,
    #[serde(default)]
    latitude: f64,
    #[serde(default)]
    longitude: f64,
    /// `join`: the name of the new group or room, and which it is.
    #[serde(default)]
    name: String,
    #[serde(default)]
    room: bool,
}

/// The event `send` stands for, or why there is none.
fn event_for(send: &Send) -> Result<Value, String> {
    let user = send.user.as_str();
    let chat = send.chat.as_deref().map(Chat::from_id);
    let event = match send.kind.as_str() {
        "text" if send.text.is_empty() => return Err("type a message first".into()),
        "text" => events::text(user, &send.text),
        "sticker" => events::sticker(user, &send.package_id, &send.sticker_id),
        "location" => events::location(user, &send.text, send.latitude, send.longitude),
        "follow" => events::follow(user),
        "refollow" => events::refollow(user),
        "unfollow" => events::unfollow(user),
        "join" => {
            let name = send.name.trim();
            if name.is_empty() {
                return Err("name the group or room".into());
            }
            let id = match send.room {
                true => Chat::Room(events::room_id(name)),
                false => Chat::Group(events::group_id(name)),
            };
            return Ok(events::joined(&id));
        }
        "memberJoined" => match &chat {
            Some(chat) => return Ok(events::member_joined(chat, user)),
            None => return Err("a user joins a group or a room, not a one-to-one chat".into()),
        },
        other => return Err(format!("the console cannot send `{other}` events")),
    };
    Ok(match &chat {
        Some(chat) => events::in_chat(event, chat),
        None => event,
    })
}

fn refuse(why: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": why }))).into_response()
}

/// Posts `event` to the daemon; answers it (or why it could not be sent) to the browser.
async fn post(console: &Console, event: Value, shows: Option<String>) -> Response {
    match console.post(event.clone()).await {
        Ok(()) => Json(json!({ "event": event, "shows": shows })).into_response(),
        Err(why) => (StatusCode::BAD_GATEWAY, Json(json!({ "error": why }))).into_response(),
    }
}

/// `POST /api/send`: a message, a follow, a join… as the user.
pub async fn send(State(console): State<Arc<Console>>, Json(send): Json<Send>) -> Response {
    match event_for(&send) {
        Ok(event) => post(&console, event, None).await,
        Err(why) => refuse(why),
    }
}

#[derive(Debug, Deserialize)]
pub struct Tapped {
    user: String,
    chat: Option<String>,
    action: Value,
    /// What a date/time picker was answered with.
    value: Option<String>,
}

/// `POST /api/tap`: the user tapped an action of the bot's message (a button, a quick-reply
/// chip, an imagemap area). Answers the event sent and the text the chat shows for it.
pub async fn tap(State(console): State<Arc<Console>>, Json(tapped): Json<Tapped>) -> Response {
    match actions::tap(&tapped.action, &tapped.user, tapped.value.as_deref()) {
        Tap::Event { event, shows } => {
            let event = match tapped.chat.as_deref() {
                Some(chat) => events::in_chat(event, &Chat::from_id(chat)),
                None => event,
            };
            post(&console, event, shows).await
        }
        // Links, cameras and the like are the browser's business; nothing reaches the bot.
        Tap::Note(note) => Json(json!({ "note": note })).into_response(),
    }
}

/// `POST /api/image?user=U&chat=C`: the picked file's bytes. The fake LINE API serves them as
/// the new message's content, so `content(event)` downloads exactly this file.
pub async fn image(
    State(console): State<Arc<Console>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let Some(user) = query.get("user") else {
        return refuse("say which user sends the image (?user=)".into());
    };
    let mut event = events::image(user);
    if let Some(chat) = query.get("chat").filter(|c| !c.is_empty()) {
        event = events::in_chat(event, &Chat::from_id(chat));
    }
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    if let Some(id) = event["message"]["id"].as_str() {
        let content = Content::Ready {
            content_type,
            bytes: bytes.to_vec(),
        };
        console.fake.set_content(id, content);
    }
    post(&console, event, None).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(kind: &str, chat: Option<&str>) -> Send {
        Send {
            user: "U1".into(),
            chat: chat.map(str::to_owned),
            kind: kind.into(),
            text: "hi".into(),
            package_id: "446".into(),
            sticker_id: "1988".into(),
            latitude: 35.0,
            longitude: 139.0,
            name: "team".into(),
            room: false,
        }
    }

    #[test]
    fn what_a_user_does_becomes_the_event_line_sends() {
        let said = event_for(&send("text", Some("C1"))).expect("text");
        assert_eq!(said["message"]["text"], "hi");
        assert_eq!(said["source"]["groupId"], "C1");
        assert_eq!(said["source"]["userId"], "U1");
        let joined = event_for(&send("join", None)).expect("join");
        assert_eq!(joined["type"], "join");
        assert_eq!(joined["source"]["groupId"], events::group_id("team"));
        let member = event_for(&send("memberJoined", Some("R1"))).expect("member");
        assert_eq!(member["source"], json!({"type": "room", "roomId": "R1"}));
        assert!(event_for(&send("memberJoined", None)).is_err());
        assert!(event_for(&send("beacon", None)).is_err());
        let mut empty = send("text", None);
        empty.text.clear();
        assert!(event_for(&empty).is_err());
    }
}
