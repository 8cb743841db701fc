//! How one attempt goes over the wire: through the pooled async client (reqwest), or, on a
//! handler thread, over that thread's own blocking connections (`blocking.rs`). Both report
//! the same [`Answer`] and [`TransportError`], so the retry rules in `client.rs` see no
//! difference.

use std::error::Error as _;

use bytes::Bytes;

/// What came back from one attempt.
#[derive(Debug)]
pub(super) struct Answer {
    pub status: u16,
    pub request_id: Option<String>,
    pub content_type: Option<String>,
    pub retry_after: Option<String>,
    /// The status and headers arrived; the body may still have failed.
    pub body: Result<Bytes, TransportError>,
}

/// An attempt that got no (whole) answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TransportError {
    pub kind: TransportKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TransportKind {
    /// No byte of the request left this machine.
    Connect,
    Timeout,
    /// The answer started but did not finish.
    CutOff,
    Other,
}

impl TransportError {
    pub fn connect(message: impl Into<String>) -> Self {
        Self::new(TransportKind::Connect, message)
    }

    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(TransportKind::Timeout, message)
    }

    pub fn cut_off(message: impl Into<String>) -> Self {
        Self::new(TransportKind::CutOff, message)
    }

    pub fn other(message: impl Into<String>) -> Self {
        Self::new(TransportKind::Other, message)
    }

    fn new(kind: TransportKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// What kind of failure, and its innermost cause.
    pub fn from_reqwest(e: &reqwest::Error) -> Self {
        let kind = if e.is_timeout() {
            TransportKind::Timeout
        } else if e.is_connect() {
            TransportKind::Connect
        } else if e.is_body() || e.is_decode() {
            TransportKind::CutOff
        } else {
            TransportKind::Other
        };
        let mut cause = e.source();
        let mut innermost = String::new();
        while let Some(c) = cause {
            innermost = c.to_string();
            cause = c.source();
        }
        Self::new(kind, innermost)
    }
}

impl std::fmt::Display for TransportError {
    /// The kind in words, then the message unless it is empty or already says so.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.kind {
            TransportKind::Connect => "connection failed",
            TransportKind::Timeout => "timed out",
            TransportKind::CutOff => "answer cut off",
            TransportKind::Other => "request failed",
        };
        if self.message.is_empty() {
            f.write_str(what)
        } else if self.message.contains(what) {
            f.write_str(&self.message)
        } else {
            write!(f, "{what}: {}", self.message)
        }
    }
}

/// One attempt through the pooled client.
pub(super) async fn pooled(
    http: &reqwest::Client,
    call: &super::client::Call,
) -> Result<Answer, TransportError> {
    let mut rb = http.request(call.method.clone(), call.url.clone());
    if let Some(key) = call.retry_key {
        rb = rb.header("X-Line-Retry-Key", key.to_string());
    }
    if let Some(body) = &call.body {
        rb = rb
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.clone());
    }
    if let Some(timeout) = call.timeout {
        rb = rb.timeout(timeout);
    }
    let resp = rb
        .send()
        .await
        .map_err(|e| TransportError::from_reqwest(&e))?;
    let headers = resp.headers();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let request_id = header("x-line-request-id");
    let content_type = header("content-type");
    let retry_after = header("retry-after");
    let status = resp.status().as_u16();
    let body = resp
        .bytes()
        .await
        .map_err(|e| TransportError::from_reqwest(&e));
    Ok(Answer {
        status,
        request_id,
        content_type,
        retry_after,
        body,
    })
}
