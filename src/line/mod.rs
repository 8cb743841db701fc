//! The LINE Messaging API client: endpoints, message values, retries, rate limits and errors.
//!
//! One [`LineClient`] (cheap to clone) holds the one pooled HTTP client (reqwest, HTTP/2 where
//! LINE offers it, proxies from the environment) and the rate limits for the whole daemon.
//!
//! Retry rules, by what a repeat could do:
//! - `push`, `multicast`, `broadcast` carry an `X-Line-Retry-Key`, so LINE itself drops a
//!   duplicate: they retry on 5xx, 429, timeouts and connection errors, and a 409 on the key
//!   means an earlier attempt got through ([`Sent::accepted_before`]).
//! - `reply` has no key and its token works once: it retries only when no byte reached LINE
//!   (a connection error) or LINE answered 5xx, and only for about 20 s, since the token dies
//!   soon anyway.
//! - `get`, `profile`, `content` and `loading` read data or repeat a harmless effect: they retry
//!   on 5xx, 429, timeouts and connection errors, at most 3 attempts within 20 s (a script is
//!   waiting on them).
//! - `post` and `post_data` may create things (a rich menu…): like the reads, but a timeout is
//!   not retried because the first request may have been carried out.
//! - `put` and `delete` set or remove a state, which is the same done twice: like the reads.

mod client;
mod endpoints;
mod error;
pub mod limits;
pub mod message;
mod paths;
mod rate;
mod retry;
mod transport;
mod wire;

use std::time::Duration;

pub use client::{chunk_retry_key, LineClient, OnWait, MULTICAST_CHUNK};
pub use error::LineError;
pub use message::{flex, image, quick_reply, sticker, text, validate, MessageError};
pub use paths::DataAnswer;
pub use rate::TokenBucket;
pub use retry::{backoff, parse_retry_after, RetryPolicy};

/// Where LINE is and how patiently to talk to it. `Debug` hides the access token.
#[derive(Clone)]
pub struct LineConfig {
    /// `https://api.line.me` in production; a mock's URL in tests.
    pub api_base: String,
    /// `https://api-data.line.me`: message content is served from here.
    pub data_api_base: String,
    pub access_token: String,
    pub connect_timeout: Duration,
    /// Per attempt. Content downloads get at least [`CONTENT_TIMEOUT`].
    pub request_timeout: Duration,
    pub retry: RetryPolicy,
    /// Requests a second to each endpoint of LINE's 2,000/s class (`reply`, `push`,
    /// `profile`…), each endpoint counted on its own. Endpoints with a lower limit of LINE's
    /// ([`limits::LIMITS`]: multicast 200/s, broadcast and narrowcast 60 an hour…) keep it, but
    /// never get more than this. 0 turns every limit off, the loading animation's included
    /// (for a local mock).
    pub rate_limit_per_sec: u32,
    /// Requests a second to the loading animation endpoint; 0 turns its limit off.
    pub loading_rate_limit_per_sec: u32,
    /// Largest answer accepted from the data host (message content, rich-menu images): a
    /// larger one fails with [`LineError::TooLarge`] before it is read whole.
    pub content_max_bytes: usize,
}

impl std::fmt::Debug for LineConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineConfig")
            .field("api_base", &self.api_base)
            .field("data_api_base", &self.data_api_base)
            .field("access_token", &"<redacted>")
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("retry", &self.retry)
            .field("rate_limit_per_sec", &self.rate_limit_per_sec)
            .field(
                "loading_rate_limit_per_sec",
                &self.loading_rate_limit_per_sec,
            )
            .field("content_max_bytes", &self.content_max_bytes)
            .finish()
    }
}

/// Default of [`LineConfig::content_max_bytes`], 20 MiB.
pub const DEFAULT_CONTENT_MAX_BYTES: usize = 20 * 1024 * 1024;

/// Shortest per-attempt timeout for content downloads: videos are large.
pub const CONTENT_TIMEOUT: Duration = Duration::from_secs(120);

impl LineConfig {
    /// Defaults: 5 s to connect, 15 s per request, 5 attempts within 2 minutes, and LINE's
    /// published limits per endpoint (2,000 requests/s unless [`limits::LIMITS`] names a lower
    /// one, 100/s for the loading animation).
    pub fn new(
        api_base: impl Into<String>,
        data_api_base: impl Into<String>,
        access_token: impl Into<String>,
    ) -> Self {
        Self {
            api_base: api_base.into(),
            data_api_base: data_api_base.into(),
            access_token: access_token.into(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(15),
            retry: RetryPolicy::default(),
            rate_limit_per_sec: 2000,
            loading_rate_limit_per_sec: 100,
            content_max_bytes: DEFAULT_CONTENT_MAX_BYTES,
        }
    }
}

/// LINE accepted a message request.
#[derive(Clone, Debug, PartialEq)]
pub struct Sent {
    /// LINE's `x-line-request-id`, for LINE's support and the delivery log.
    pub request_id: Option<String>,
    /// True when a 409 on the retry key said an earlier attempt was already accepted.
    pub accepted_before: bool,
    /// LINE's answer (`{"sentMessages": [...]}` for push and reply). For multicast: an array
    /// with one answer per chunk of up to 500 recipients.
    pub body: serde_json::Value,
}

/// A message's content (image, video, audio, file) as the data API serves it.
#[derive(Clone, Debug, PartialEq)]
pub enum Content {
    Ready {
        content_type: Option<String>,
        bytes: bytes::Bytes,
    },
    /// LINE answered 202: a video or audio is still being prepared; ask again later.
    NotReady,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_token() {
        let cfg = LineConfig::new("https://api.line.me", "https://api-data.line.me", "s3cret");
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("api.line.me"));
    }
}
