//! What can go wrong talking to LINE, with LINE's own answer kept in the error.

use std::time::Duration;

use serde_json::Value;

use super::message::MessageError;

/// Longest slice of a non-JSON error body kept in an error (proxies answer with whole HTML pages).
const MAX_TEXT_BODY: usize = 300;

/// A failed LINE call. Never carries the channel access token.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    /// LINE (or whatever answered at its address) refused the request.
    #[error("LINE rejected {endpoint} ({status}): {message}{}{}", fmt_details(.details), fmt_request_id(.request_id))]
    Rejected {
        endpoint: &'static str,
        status: u16,
        message: String,
        /// `(property, message)` pairs from LINE's `details`.
        details: Vec<(Option<String>, String)>,
        request_id: Option<String>,
        /// LINE's `Retry-After`: not worth asking again before this much time has passed.
        retry_after: Option<Duration>,
    },
    /// Refused before sending: LINE would reject it anyway.
    #[error("not sent: {0}")]
    Invalid(#[from] MessageError),
    /// No answer from LINE: connection failed or timed out.
    #[error("could not reach LINE for {endpoint}: {message}")]
    Transport {
        endpoint: &'static str,
        message: String,
    },
    /// Every allowed attempt failed with an error worth retrying.
    #[error("gave up on {endpoint} after {attempts} attempts: {last}")]
    RetriesExhausted {
        endpoint: &'static str,
        attempts: u32,
        last: Box<LineError>,
    },
    /// Not sent: LINE's rate limit for the endpoint (or a 429's `Retry-After`) allows the next
    /// request only after `wait`, later than this call can wait. Try again later.
    #[error("not sent to LINE: the rate limit of {endpoint} allows the next request in {} s, later than this call can wait", .wait.as_secs_f64().ceil())]
    RateLimited {
        endpoint: &'static str,
        wait: Duration,
    },
    /// LINE said yes, but its answer could not be read.
    #[error("unreadable answer from LINE for {endpoint} ({status}): {message}")]
    BadResponse {
        endpoint: &'static str,
        status: u16,
        message: String,
    },
    /// A base URL or path that does not make a URL.
    #[error("bad LINE URL {url:?}: {message}")]
    BadUrl { url: String, message: String },
    /// The HTTP client could not be built (bad token characters, TLS set-up).
    #[error("could not set up the LINE client: {0}")]
    Setup(String),
    /// A content type that cannot be sent in a header.
    #[error("`{0}` is not a content type, such as image/png or text/plain")]
    BadContentType(String),
    /// An answer larger than the caller accepts (message content over `content_max_bytes`).
    #[error("LINE's answer to {endpoint} is over the limit of {max} bytes (content_max_bytes)")]
    TooLarge { endpoint: &'static str, max: usize },
}

impl LineError {
    /// The HTTP status LINE answered, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Rejected { status, .. } | Self::BadResponse { status, .. } => Some(*status),
            Self::RetriesExhausted { last, .. } => last.status(),
            _ => None,
        }
    }

    /// True when sending the same request again cannot succeed: a 4xx other than 408/429, a
    /// message refused before sending, or a set-up error. Transient failures (5xx, 429, no
    /// answer, retries used up) are not permanent; an outbox may try them again later.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Rejected { status, .. } => {
                (400..500).contains(status) && *status != 408 && *status != 429
            }
            Self::Invalid(_)
            | Self::BadUrl { .. }
            | Self::Setup(_)
            | Self::BadContentType(_)
            | Self::TooLarge { .. } => true,
            Self::Transport { .. }
            | Self::RetriesExhausted { .. }
            | Self::BadResponse { .. }
            | Self::RateLimited { .. } => false,
        }
    }

    /// How long LINE asked to be left alone (a 429's `Retry-After`, or the endpoint's
    /// rate-limit pause): whoever tries again later should wait at least this long.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Rejected { retry_after, .. } => *retry_after,
            Self::RateLimited { wait, .. } => Some(*wait),
            Self::RetriesExhausted { last, .. } => last.retry_after(),
            _ => None,
        }
    }

    /// True for LINE's answer to a reply token that is unknown, expired or already used,
    /// the case where a reply may fall back to a push.
    pub fn is_invalid_reply_token(&self) -> bool {
        match self {
            Self::Rejected {
                status: 400,
                message,
                ..
            } => message.to_ascii_lowercase().contains("invalid reply token"),
            _ => false,
        }
    }

    /// Builds `Rejected` from an error answer: LINE's JSON error body when there is one, else
    /// the body as (shortened) text.
    pub(crate) fn rejected(
        endpoint: &'static str,
        status: u16,
        body: &[u8],
        request_id: Option<String>,
    ) -> Self {
        let (message, details) = parse_error_body(body);
        Self::Rejected {
            endpoint,
            status,
            message,
            details,
            request_id,
            retry_after: None,
        }
    }

    /// The same error, with LINE's `Retry-After` kept in it when it is a rejection.
    pub(crate) fn with_retry_after(mut self, after: Option<Duration>) -> Self {
        if let Self::Rejected { retry_after, .. } = &mut self {
            *retry_after = after;
        }
        self
    }
}

/// Reads LINE's `{"message": "...", "details": [{"message", "property"}]}`.
fn parse_error_body(body: &[u8]) -> (String, Vec<(Option<String>, String)>) {
    if let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(body) {
        if let Some(message) = obj.get("message").and_then(Value::as_str) {
            let details = obj
                .get("details")
                .and_then(Value::as_array)
                .map(|list| {
                    list.iter()
                        .map(|d| {
                            let property = d.get("property").and_then(Value::as_str);
                            let message = d.get("message").and_then(Value::as_str).unwrap_or("");
                            (property.map(str::to_owned), message.to_owned())
                        })
                        .collect()
                })
                .unwrap_or_default();
            return (message.to_owned(), details);
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return ("(empty body)".to_owned(), Vec::new());
    }
    let mut short: String = text.chars().take(MAX_TEXT_BODY).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    (short, Vec::new())
}

fn fmt_details(details: &[(Option<String>, String)]) -> String {
    if details.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = details
        .iter()
        .map(|(property, message)| match property {
            Some(p) => format!("{p}: {message}"),
            None => message.clone(),
        })
        .collect();
    format!(" [{}]", parts.join("; "))
}

fn fmt_request_id(request_id: &Option<String>) -> String {
    request_id
        .as_deref()
        .map(|id| format!(" (line request id {id})"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejected_display_carries_lines_message_details_and_request_id() {
        let body = br#"{"message":"The request body has 1 error(s)","details":[{"message":"May not be empty","property":"messages[0].text"}]}"#;
        let e = LineError::rejected("push", 400, body, Some("7d3c".into()));
        assert_eq!(
            e.to_string(),
            "LINE rejected push (400): The request body has 1 error(s) \
             [messages[0].text: May not be empty] (line request id 7d3c)"
        );
        assert_eq!(e.status(), Some(400));
        assert!(e.is_permanent());
    }

    #[test]
    fn non_json_error_body_is_kept_as_short_text() {
        let body = format!("<html>{}</html>", "x".repeat(1000));
        let e = LineError::rejected("reply", 502, body.as_bytes(), None);
        let LineError::Rejected { message, .. } = &e else {
            panic!("not Rejected: {e:?}");
        };
        assert!(message.starts_with("<html>xxx"));
        assert_eq!(message.chars().count(), MAX_TEXT_BODY + 1);
        assert!(!e.is_permanent());
        let e = LineError::rejected("reply", 500, b"", None);
        assert!(e.to_string().ends_with("(500): (empty body)"));
    }

    #[test]
    fn retry_after_is_kept_through_giving_up() {
        let e = LineError::rejected("push", 429, b"{}", None)
            .with_retry_after(Some(Duration::from_secs(30)));
        let ex = LineError::RetriesExhausted {
            endpoint: "push",
            attempts: 5,
            last: Box::new(e),
        };
        assert_eq!(ex.retry_after(), Some(Duration::from_secs(30)));
        let limited = LineError::RateLimited {
            endpoint: "push",
            wait: Duration::from_secs(7),
        };
        assert_eq!(limited.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(
            LineError::rejected("push", 503, b"", None).retry_after(),
            None
        );
    }

    #[test]
    fn invalid_reply_token_is_recognised() {
        let e = LineError::rejected("reply", 400, br#"{"message":"Invalid reply token"}"#, None);
        assert!(e.is_invalid_reply_token());
        let e = LineError::rejected("reply", 400, br#"{"message":"Bad text"}"#, None);
        assert!(!e.is_invalid_reply_token());
    }

    #[test]
    fn transient_failures_are_not_permanent() {
        let t = LineError::Transport {
            endpoint: "push",
            message: "timed out".into(),
        };
        assert!(!t.is_permanent());
        let e = LineError::rejected("push", 429, b"{\"message\":\"slow down\"}", None);
        assert!(!e.is_permanent());
        let ex = LineError::RetriesExhausted {
            endpoint: "push",
            attempts: 3,
            last: Box::new(e),
        };
        assert_eq!(ex.status(), Some(429));
        assert!(ex
            .to_string()
            .starts_with("gave up on push after 3 attempts: LINE rejected push (429): slow down"));
        let limited = LineError::RateLimited {
            endpoint: "broadcast",
            wait: std::time::Duration::from_millis(59_500),
        };
        assert!(!limited.is_permanent());
        assert_eq!(limited.status(), None);
        assert_eq!(
            limited.to_string(),
            "not sent to LINE: the rate limit of broadcast allows the next request in 60 s, later than this call can wait"
        );
        let inv = LineError::from(MessageError::NoMessages);
        assert!(inv.is_permanent());
        assert!(inv.to_string().starts_with("not sent: no messages"));
    }
}
