//! The one HTTP client every LINE call goes through, and one attempt over it.
//!
//! reqwest keeps a keep-alive pool per host, speaks HTTP/2 where the server offers it (ALPN over
//! TLS, as api.line.me does; plain-http mocks stay on HTTP/1.1) and follows the proxies the
//! environment names (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` including `socks5://` and
//! `socks5h://`, with `NO_PROXY` exceptions). What went wrong in an attempt is reduced to a
//! [`TransportKind`], which the retry rules in `client.rs` decide on.

use std::error::Error as _;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};

use super::client::Request;
use super::error::LineError;

const USER_AGENT: &str = concat!("linebotd/", env!("CARGO_PKG_VERSION"));

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
    /// The answer is larger than the request's `max_bytes`; it was not read to the end.
    TooLarge {
        max: usize,
    },
    Other,
}

impl TransportError {
    /// What kind of failure, and its innermost cause.
    fn from_reqwest(e: &reqwest::Error) -> Self {
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
        Self {
            kind,
            message: innermost,
        }
    }
}

impl std::fmt::Display for TransportError {
    /// The kind in words, then the message unless it is empty or already says so.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.kind {
            TransportKind::Connect => "connection failed",
            TransportKind::Timeout => "timed out",
            TransportKind::CutOff => "answer cut off",
            TransportKind::TooLarge { .. } => "answer too large",
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

/// The shared client: the token in a default header (marked sensitive, so never logged), and
/// the proxies from the environment, which reqwest reads when the client is built.
pub(super) fn http_client(
    auth: &HeaderValue,
    connect_timeout: Duration,
    request_timeout: Duration,
) -> Result<reqwest::Client, LineError> {
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, auth.clone());
    reqwest::Client::builder()
        .default_headers(headers)
        .user_agent(USER_AGENT)
        .connect_timeout(connect_timeout)
        .timeout(request_timeout)
        .pool_idle_timeout(Duration::from_secs(90))
        // LINE's API never redirects; following nothing saves work on every call.
        .redirect(reqwest::redirect::Policy::none())
        .tcp_nodelay(true)
        .build()
        .map_err(|e| LineError::Setup(e.to_string()))
}

/// One attempt.
pub(super) async fn send(http: &reqwest::Client, call: &Request) -> Result<Answer, TransportError> {
    let mut rb = http.request(call.method.clone(), call.url.clone());
    if let Some(key) = call.retry_key {
        rb = rb.header("X-Line-Retry-Key", key.to_string());
    }
    if let Some(body) = &call.body {
        rb = rb
            .header(CONTENT_TYPE, body.content_type.clone())
            .body(body.bytes.clone());
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
    let body = match call.max_bytes {
        Some(max) => capped_body(resp, max).await,
        None => resp
            .bytes()
            .await
            .map_err(|e| TransportError::from_reqwest(&e)),
    };
    Ok(Answer {
        status,
        request_id,
        content_type,
        retry_after,
        body,
    })
}

/// The body read chunk by chunk, given up as soon as it passes `max` bytes (or its
/// `Content-Length` says it will), so an oversized answer never sits whole in memory.
async fn capped_body(mut resp: reqwest::Response, max: usize) -> Result<Bytes, TransportError> {
    let too_large = || TransportError {
        kind: TransportKind::TooLarge { max },
        message: String::new(),
    };
    if resp.content_length().is_some_and(|len| len > max as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| TransportError::from_reqwest(&e))?
    {
        if body.len() + chunk.len() > max {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_kind_once() {
        let e = |kind, message: &str| TransportError {
            kind,
            message: message.to_owned(),
        };
        assert_eq!(e(TransportKind::Timeout, "").to_string(), "timed out");
        assert_eq!(
            e(TransportKind::Connect, "tcp connect error").to_string(),
            "connection failed: tcp connect error"
        );
        assert_eq!(
            e(TransportKind::Timeout, "operation timed out").to_string(),
            "operation timed out"
        );
    }
}
