//! The LINE endpoints the daemon uses, each one the method, path and JSON body the Messaging
//! API reference names (any other path goes through `paths.rs`).

use reqwest::{Method, Url};
use serde::Serialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::client::{chunk_retry_key, Body, Request, Retry, MULTICAST_CHUNK};
use super::error::LineError;
use super::limits;
use super::message::{validate, MessageError};
use super::wire::{json_body, url_with_segments, Raw};
use super::{Content, LineClient, Sent, CONTENT_TIMEOUT};

/// The body of `POST /v2/bot/message/reply`, serialised straight from borrowed parts: every
/// reply would otherwise copy its messages into a new JSON value first.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReplyBody<'a> {
    reply_token: &'a str,
    messages: &'a [Value],
    notification_disabled: bool,
}

impl LineClient {
    /// `POST /v2/bot/message/reply`. A used or expired token fails with
    /// [`LineError::is_invalid_reply_token`].
    pub async fn reply(
        &self,
        reply_token: &str,
        messages: &[Value],
        notification_disabled: bool,
    ) -> Result<Sent, LineError> {
        validate(messages)?;
        non_empty(reply_token, "replyToken")?;
        let body = ReplyBody {
            reply_token,
            messages,
            notification_disabled,
        };
        self.send_message("reply", "reply", &body, None).await
    }

    /// `POST /v2/bot/message/push` with `X-Line-Retry-Key: retry_key` on every attempt.
    pub async fn push(
        &self,
        to: &str,
        messages: &[Value],
        retry_key: Uuid,
        notification_disabled: bool,
    ) -> Result<Sent, LineError> {
        validate(messages)?;
        non_empty(to, "to")?;
        let body = json!({
            "to": to,
            "messages": messages,
            "notificationDisabled": notification_disabled,
        });
        self.send_message("push", "push", &body, Some(retry_key))
            .await
    }

    /// `POST /v2/bot/message/multicast`, in chunks of up to 500 recipients sent one after the
    /// other; chunk `i` carries [`chunk_retry_key`]`(retry_key, i)`. If a chunk fails, the error
    /// is returned and later chunks are not sent; calling again with the same key resends only
    /// what LINE has not accepted.
    pub async fn multicast(
        &self,
        to: &[String],
        messages: &[Value],
        retry_key: Uuid,
        notification_disabled: bool,
    ) -> Result<Sent, LineError> {
        validate(messages)?;
        if to.is_empty() {
            return Err(MessageError::NoRecipients.into());
        }
        for id in to {
            non_empty(id, "to")?;
        }
        let mut request_id = None;
        let mut accepted_before = false;
        let mut bodies = Vec::with_capacity(to.len().div_ceil(MULTICAST_CHUNK));
        for (i, chunk) in to.chunks(MULTICAST_CHUNK).enumerate() {
            let body = json!({
                "to": chunk,
                "messages": messages,
                "notificationDisabled": notification_disabled,
            });
            let key = chunk_retry_key(retry_key, i);
            let sent = self
                .send_message("multicast", "multicast", &body, Some(key))
                .await?;
            request_id = request_id.or(sent.request_id);
            accepted_before |= sent.accepted_before;
            bodies.push(sent.body);
        }
        Ok(Sent {
            request_id,
            accepted_before,
            body: Value::Array(bodies),
        })
    }

    /// `POST /v2/bot/message/broadcast` to every friend of the bot.
    pub async fn broadcast(
        &self,
        messages: &[Value],
        retry_key: Uuid,
        notification_disabled: bool,
    ) -> Result<Sent, LineError> {
        validate(messages)?;
        let body = json!({ "messages": messages, "notificationDisabled": notification_disabled });
        self.send_message("broadcast", "broadcast", &body, Some(retry_key))
            .await
    }

    /// `POST /v2/bot/message/narrowcast` with `body` as the Messaging API reference gives it:
    /// `messages`, and optionally `recipient` (audiences, redelivery, and `and`/`or`/`not` of
    /// them), a demographic `filter`, a `limit` and `notificationDisabled`. LINE answers 202 and
    /// delivers later; the request id in [`Sent`] names the job for
    /// `GET /v2/bot/message/progress/narrowcast`.
    pub async fn narrowcast(&self, body: &Value, retry_key: Uuid) -> Result<Sent, LineError> {
        let messages = body
            .get("messages")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        validate(messages)?;
        self.send_message("narrowcast", "narrowcast", body, Some(retry_key))
            .await
    }

    /// `GET /v2/bot/profile/{userId}`; `None` when LINE answers 404 (not a friend, or blocked).
    pub async fn profile(&self, user_id: &str) -> Result<Option<Value>, LineError> {
        non_empty(user_id, "userId")?;
        self.get_optional("profile", &["v2", "bot", "profile", user_id])
            .await
    }

    /// `GET /v2/bot/group/{groupId}/member/{userId}`; `None` on 404.
    pub async fn group_member_profile(
        &self,
        group_id: &str,
        user_id: &str,
    ) -> Result<Option<Value>, LineError> {
        non_empty(group_id, "groupId")?;
        non_empty(user_id, "userId")?;
        let segments = ["v2", "bot", "group", group_id, "member", user_id];
        self.get_optional("group member profile", &segments).await
    }

    /// `GET /v2/bot/room/{roomId}/member/{userId}`; `None` on 404.
    pub async fn room_member_profile(
        &self,
        room_id: &str,
        user_id: &str,
    ) -> Result<Option<Value>, LineError> {
        non_empty(room_id, "roomId")?;
        non_empty(user_id, "userId")?;
        let segments = ["v2", "bot", "room", room_id, "member", user_id];
        self.get_optional("room member profile", &segments).await
    }

    /// `POST /v2/bot/chat/loading/start`: a loading animation for `seconds` (5 to 60, a
    /// multiple of 5) in a one-to-one chat. Uses its own rate limit.
    pub async fn loading(&self, chat_id: &str, seconds: u32) -> Result<(), LineError> {
        if !(5..=60).contains(&seconds) || seconds % 5 != 0 {
            return Err(MessageError::LoadingSeconds { seconds }.into());
        }
        non_empty(chat_id, "chatId")?;
        let body = json!({ "chatId": chat_id, "loadingSeconds": seconds });
        let url = url_with_segments(
            &self.inner.api_base,
            &["v2", "bot", "chat", "loading", "start"],
        );
        let call = post_call("loading", url, &body, None, Retry::Read);
        self.execute(call).await.map(|_| ())
    }

    /// `GET /v2/bot/message/{messageId}/content` from the data API. LINE's 202 (a video still
    /// being prepared) is [`Content::NotReady`].
    pub async fn content(&self, message_id: &str) -> Result<Content, LineError> {
        non_empty(message_id, "messageId")?;
        let segments = ["v2", "bot", "message", message_id, "content"];
        let mut call = get_call(
            "content",
            url_with_segments(&self.inner.data_api_base, &segments),
        );
        call.timeout = Some(self.inner.request_timeout.max(CONTENT_TIMEOUT));
        call.max_bytes = Some(self.inner.content_max_bytes);
        let raw = self.execute(call).await?;
        if raw.status == 202 {
            return Ok(Content::NotReady);
        }
        Ok(Content::Ready {
            content_type: raw.content_type,
            bytes: raw.bytes,
        })
    }

    async fn send_message(
        &self,
        endpoint: &'static str,
        last_segment: &str,
        body: &impl Serialize,
        retry_key: Option<Uuid>,
    ) -> Result<Sent, LineError> {
        let url = url_with_segments(
            &self.inner.api_base,
            &["v2", "bot", "message", last_segment],
        );
        let retry = if retry_key.is_some() {
            Retry::Keyed
        } else {
            Retry::Reply
        };
        let raw = self
            .execute(post_call(endpoint, url, body, retry_key, retry))
            .await?;
        Ok(sent(raw))
    }

    async fn get_optional(
        &self,
        endpoint: &'static str,
        segments: &[&str],
    ) -> Result<Option<Value>, LineError> {
        let url = url_with_segments(&self.inner.api_base, segments);
        match self.execute(get_call(endpoint, url)).await {
            Ok(raw) => json_body(endpoint, &raw).map(Some),
            Err(LineError::Rejected { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The answer to a message request. LINE already accepted it, so an unreadable body is kept as
/// text rather than turned into an error that would make a caller send it again.
fn sent(raw: Raw) -> Sent {
    let body = if raw.bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&raw.bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&raw.bytes).into_owned()))
    };
    Sent {
        request_id: raw.request_id,
        accepted_before: raw.status == 409,
        body,
    }
}

fn non_empty(value: &str, field: &'static str) -> Result<(), LineError> {
    if value.is_empty() {
        return Err(MessageError::EmptyId { field }.into());
    }
    Ok(())
}

/// The bucket of a `get`/`post` call: the endpoint's own when LINE's table names it (a
/// narrowcast posted by path still counts against narrowcast's 60 an hour), else `other`.
pub(super) fn bucket_for(method: &str, path: &str, other: &'static str) -> &'static str {
    limits::by_request(method, path).map_or(other, |l| l.name)
}

pub(super) fn get_call(endpoint: &'static str, url: Url) -> Request {
    Request {
        endpoint,
        method: Method::GET,
        url,
        body: None,
        retry_key: None,
        retry: Retry::Read,
        bucket: endpoint,
        timeout: None,
        max_bytes: None,
    }
}

pub(super) fn post_call(
    endpoint: &'static str,
    url: Url,
    body: &impl Serialize,
    retry_key: Option<Uuid>,
    retry: Retry,
) -> Request {
    Request {
        endpoint,
        method: Method::POST,
        url,
        // Serialised once and shared by every attempt, so retries send identical bytes.
        body: Some(Body::json(body)),
        retry_key,
        retry,
        bucket: endpoint,
        timeout: None,
        max_bytes: None,
    }
}
