//! How the mock answers: LINE's behaviour for the endpoints tests use, after scripted failures.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::{MockContent, Script};

pub(super) struct Answer {
    pub(super) status: u16,
    body: AnswerBody,
    retry_after: Option<u64>,
}

enum AnswerBody {
    Json(Value),
    Bytes {
        content_type: String,
        bytes: Vec<u8>,
    },
}

impl Answer {
    fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            body: AnswerBody::Json(body),
            retry_after: None,
        }
    }

    pub(super) fn into_response_with(self, request_id: String) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = match self.body {
            AnswerBody::Json(v) => (status, axum::Json(v)).into_response(),
            AnswerBody::Bytes {
                content_type,
                bytes,
            } => (status, [("content-type", content_type)], bytes).into_response(),
        };
        let headers = resp.headers_mut();
        if let Ok(v) = request_id.parse() {
            headers.insert("x-line-request-id", v);
        }
        if let Some(secs) = self.retry_after {
            headers.insert("retry-after", secs.into());
        }
        resp
    }
}

pub(super) fn take_delay(s: &mut Script, path: &str) -> Option<Duration> {
    let (delay, remaining) = s.delays.get_mut(path)?;
    let delay = *delay;
    match remaining {
        None => Some(delay),
        Some(0) => None,
        Some(n) => {
            *n -= 1;
            Some(delay)
        }
    }
}

pub(super) fn decide(
    s: &mut Script,
    method: &Method,
    path: &str,
    headers: &HashMap<String, String>,
    body: &Value,
) -> Answer {
    if let Some(token) = &s.required_token {
        if headers.get("authorization") != Some(&format!("Bearer {token}")) {
            return Answer::json(
                401,
                json!({"message": "Authentication failed. Confirm that the access token in the authorization header is valid."}),
            );
        }
    }
    if let Some(status) = s.failures.get_mut(path).and_then(VecDeque::pop_front) {
        let mut a = Answer::json(status, json!({"message": format!("mock failure {status}")}));
        a.retry_after = s.retry_after.get(path).copied();
        return a;
    }
    if let Some((status, body)) = s.canned.get(path) {
        return Answer::json(*status, body.clone());
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method.as_str(), segments.as_slice()) {
        ("POST", ["v2", "bot", "message", "reply"]) => {
            let token = body.get("replyToken").and_then(Value::as_str).unwrap_or("");
            if token.is_empty() || !s.used_reply_tokens.insert(token.to_owned()) {
                return Answer::json(400, json!({"message": "Invalid reply token"}));
            }
            Answer::json(200, sent_messages(body))
        }
        ("POST", ["v2", "bot", "message", kind @ ("push" | "multicast" | "broadcast")]) => {
            if let Some(key) = headers.get("x-line-retry-key") {
                if !s.accepted_retry_keys.insert(key.clone()) {
                    return Answer::json(
                        409,
                        json!({"message": "The retry key is already accepted", "sentMessages": []}),
                    );
                }
            }
            if *kind == "push" {
                Answer::json(200, sent_messages(body))
            } else {
                Answer::json(200, json!({}))
            }
        }
        ("GET", ["v2", "bot", "profile", user]) => profile(s, user, true),
        ("GET", ["v2", "bot", "group" | "room", _, "member", user]) => profile(s, user, false),
        ("POST", ["v2", "bot", "chat", "loading", "start"]) => Answer::json(202, json!({})),
        ("GET", ["v2", "bot", "message", id, "content"]) => {
            match s.content.get(*id).cloned().unwrap_or(MockContent::Ready {
                content_type: "application/octet-stream".to_owned(),
                bytes: format!("content of {id}").into_bytes(),
            }) {
                MockContent::NotReady => Answer::json(202, json!({})),
                MockContent::Ready {
                    content_type,
                    bytes,
                } => Answer {
                    status: 200,
                    body: AnswerBody::Bytes {
                        content_type,
                        bytes,
                    },
                    retry_after: None,
                },
            }
        }
        ("GET", ["v2", "bot", "info"]) => Answer::json(
            200,
            json!({"userId": "Ubot0000000000000000000000000000", "basicId": "@mockbot",
                   "displayName": "Mock bot", "chatMode": "bot", "markAsReadMode": "manual"}),
        ),
        ("POST", _) => Answer::json(200, json!({})),
        _ => Answer::json(404, json!({"message": "Not found"})),
    }
}

fn profile(s: &Script, user: &str, full: bool) -> Answer {
    if s.missing_profiles.contains(user) {
        return Answer::json(404, json!({"message": "Not found"}));
    }
    if let Some(p) = s.profiles.get(user) {
        return Answer::json(200, p.clone());
    }
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

/// `{"sentMessages": [{"id", "quoteToken"}, …]}`, one per message in the request.
fn sent_messages(body: &Value) -> Value {
    let n = body
        .get("messages")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let sent: Vec<Value> = (0..n)
        .map(|_| {
            json!({"id": fastrand::u64(10u64.pow(17)..10u64.pow(18)).to_string(),
                   "quoteToken": format!("q{}", fastrand::u64(..))})
        })
        .collect();
    json!({ "sentMessages": sent })
}
