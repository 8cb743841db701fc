//! The attempt loop around every LINE call: the endpoint's rate-limit bucket before each
//! attempt, the retry rules after it, and a 429 that holds the whole endpoint back. The wire is
//! in `transport.rs`, the endpoints in `endpoints.rs`.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use reqwest::header::HeaderValue;
use reqwest::{Method, Url};
use uuid::Uuid;

use super::error::LineError;
use super::rate::Limiter;
use super::retry::{parse_retry_after, RetryPolicy};
use super::transport::{self, TransportError, TransportKind};
use super::wire::{parse_base, Raw};
use super::LineConfig;

/// Most recipients LINE takes in one multicast request.
pub const MULTICAST_CHUNK: usize = 500;

/// Longest a caller waits on a reply or a read, retries included: reply tokens expire and
/// scripts block on these calls.
const INTERACTIVE_BUDGET: Duration = Duration::from_secs(20);
const INTERACTIVE_ATTEMPTS: u32 = 3;

/// The retry key for chunk `chunk` of a multicast: the caller's key for the first chunk, and a
/// v5 UUID derived from it for the others, so sending the same multicast again reuses every
/// chunk's key and LINE drops the chunks that already went out.
pub fn chunk_retry_key(retry_key: Uuid, chunk: usize) -> Uuid {
    if chunk == 0 {
        retry_key
    } else {
        Uuid::new_v5(&retry_key, format!("multicast chunk {chunk}").as_bytes())
    }
}

/// A LINE API client; clones share one connection pool and one set of rate limits.
#[derive(Clone)]
pub struct LineClient {
    pub(super) inner: Arc<Inner>,
    on_wait: Option<OnWait>,
}

/// Told `true` when a call starts waiting on LINE (its request sent, or a retry's backoff) and
/// `false` when that wait ends, on the thread driving the call. Waiting for a rate-limit token
/// is not reported: more callers would only wait longer for the same tokens.
pub type OnWait = Arc<dyn Fn(bool) + Send + Sync>;

/// Reports the end of a wait however the wait ends (answered, failed, or the call dropped).
struct Waiting<'a>(Option<&'a OnWait>);

impl<'a> Waiting<'a> {
    fn begin(on_wait: Option<&'a OnWait>) -> Self {
        if let Some(f) = on_wait {
            f(true);
        }
        Self(on_wait)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Some(f) = self.0 {
            f(false);
        }
    }
}

pub(super) struct Inner {
    http: reqwest::Client,
    pub(super) api_base: Url,
    pub(super) data_api_base: Url,
    pub(super) request_timeout: Duration,
    pub(super) content_max_bytes: usize,
    retry: RetryPolicy,
    limits: Limiter,
}

impl std::fmt::Debug for LineClient {
    // Hand-written so the token (inside the HTTP client's default headers) is never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineClient")
            .field("api_base", &self.inner.api_base.as_str())
            .field("data_api_base", &self.inner.data_api_base.as_str())
            .finish_non_exhaustive()
    }
}

/// How a call may be retried; see the module documentation of `line` for the reasons.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Retry {
    /// push, multicast, broadcast: LINE deduplicates by `X-Line-Retry-Key`.
    Keyed,
    /// reply: no key, so only when nothing reached LINE or LINE failed.
    Reply,
    /// Reads and harmless repeats.
    Read,
    /// Generic POST: may create something, so not after a timeout.
    Post,
}

impl Retry {
    fn on_status(self, status: u16) -> bool {
        match self {
            Self::Reply => status >= 500,
            Self::Keyed | Self::Read | Self::Post => status >= 500 || status == 429,
        }
    }

    fn on_transport(self, e: &TransportError) -> bool {
        match self {
            Self::Keyed | Self::Read => true,
            // A connect error means no byte of the request left this machine.
            Self::Reply | Self::Post => e.kind == TransportKind::Connect,
        }
    }

    fn sends_message(self) -> bool {
        matches!(self, Self::Keyed | Self::Reply)
    }

    fn policy(self, base: &RetryPolicy) -> RetryPolicy {
        match self {
            Self::Keyed => base.clone(),
            Self::Reply => base.capped(u32::MAX, INTERACTIVE_BUDGET),
            Self::Read | Self::Post => base.capped(INTERACTIVE_ATTEMPTS, INTERACTIVE_BUDGET),
        }
    }
}

/// A request's body and its `Content-Type`, serialised once so every attempt sends the same
/// bytes.
pub(super) struct Body {
    pub bytes: Bytes,
    pub content_type: HeaderValue,
}

impl Body {
    pub fn json(value: &impl serde::Serialize) -> Self {
        Self {
            // JSON values, strings and booleans always serialise.
            bytes: Bytes::from(serde_json::to_vec(value).unwrap_or_default()),
            content_type: HeaderValue::from_static("application/json"),
        }
    }
}

/// One request to make, possibly several times.
pub(super) struct Request {
    pub endpoint: &'static str,
    pub method: Method,
    pub url: Url,
    pub body: Option<Body>,
    pub retry_key: Option<Uuid>,
    pub retry: Retry,
    /// The rate-limit bucket it counts against: a row of `limits::LIMITS`, or `get`, `post`,
    /// `put` or `delete`.
    pub bucket: &'static str,
    pub timeout: Option<Duration>,
    /// Largest answer accepted (message content); a larger one fails without retries.
    pub max_bytes: Option<usize>,
}

impl LineClient {
    /// Builds the client; fails on a base URL that is not http(s) or a token that cannot be
    /// sent in a header.
    pub fn new(config: LineConfig) -> Result<Self, LineError> {
        let api_base = parse_base(&config.api_base)?;
        let data_api_base = parse_base(&config.data_api_base)?;
        let mut auth =
            HeaderValue::from_str(&format!("Bearer {}", config.access_token)).map_err(|_| {
                LineError::Setup(
                    "the channel access token contains characters not allowed in an HTTP header"
                        .to_owned(),
                )
            })?;
        auth.set_sensitive(true);
        let http = transport::http_client(&auth, config.connect_timeout, config.request_timeout)?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                api_base,
                data_api_base,
                request_timeout: config.request_timeout,
                content_max_bytes: config.content_max_bytes,
                retry: config.retry,
                limits: Limiter::new(config.rate_limit_per_sec, config.loading_rate_limit_per_sec),
            }),
            on_wait: None,
        })
    }

    /// The same client (same pool and limits), telling `on_wait` when its calls wait on LINE.
    pub fn observing_waits(mut self, on_wait: OnWait) -> Self {
        self.on_wait = Some(on_wait);
        self
    }

    /// Sends `call` until it succeeds, fails permanently, or its retry budget is spent.
    /// Success is any 2xx, and a 409 when the call carried a retry key.
    pub(super) async fn execute(&self, call: Request) -> Result<Raw, LineError> {
        let policy = call.retry.policy(&self.inner.retry);
        let bucket = self.inner.limits.bucket(call.bucket);
        let started = Instant::now();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            // A bucket that cannot give a token within the call's budget (an hourly limit used
            // up, a long Retry-After) fails the call now instead of holding its caller.
            let budget = policy.max_total.saturating_sub(started.elapsed());
            if let Err(wait) = bucket.acquire_within(budget).await {
                // Named by the bucket: "narrowcast" says more than the "post" it came through.
                let limited = LineError::RateLimited {
                    endpoint: call.bucket,
                    wait,
                };
                return Err(give_up(call.endpoint, attempt - 1, limited));
            }
            let sent_at = Instant::now();
            let answer = {
                let _waiting = Waiting::begin(self.on_wait.as_ref());
                self.send_once(&call).await
            };
            crate::ops::observe::LineCall {
                endpoint: call.endpoint,
                status: answer.as_ref().ok().map(|(raw, _)| raw.status),
                duration: sent_at.elapsed(),
            }
            .emit();
            let (err, wait) = match answer {
                Ok((raw, _)) if (200..300).contains(&raw.status) => return Ok(raw),
                Ok((raw, _)) if raw.status == 409 && call.retry_key.is_some() => return Ok(raw),
                Ok((raw, retry_after)) => {
                    let wait = policy.wait(attempt, retry_after);
                    if raw.status == 429 {
                        // Every caller of this endpoint waits, not only this one: LINE counts
                        // the endpoint's requests together. LINE rarely sends Retry-After, so
                        // without one the pause is this call's own backoff.
                        bucket.pause_until(Instant::now() + wait);
                    }
                    let retry = call.retry.on_status(raw.status);
                    // Kept in the error: a caller that retries later (the outbox) waits as long.
                    let err =
                        LineError::rejected(call.endpoint, raw.status, &raw.bytes, raw.request_id)
                            .with_retry_after(retry_after);
                    if !retry {
                        return Err(err);
                    }
                    (err, wait)
                }
                Err(TransportError {
                    kind: TransportKind::TooLarge { max },
                    ..
                }) => {
                    return Err(LineError::TooLarge {
                        endpoint: call.endpoint,
                        max,
                    })
                }
                Err(e) => {
                    let retry = call.retry.on_transport(&e);
                    let err = LineError::Transport {
                        endpoint: call.endpoint,
                        message: e.to_string(),
                    };
                    if !retry {
                        return Err(err);
                    }
                    (err, policy.wait(attempt, None))
                }
            };
            if attempt >= policy.max_attempts || started.elapsed() + wait > policy.max_total {
                return Err(give_up(call.endpoint, attempt, err));
            }
            crate::ops::observe::LineRetry {
                endpoint: call.endpoint,
                attempt,
                wait,
                error: &err,
            }
            .emit();
            let _waiting = Waiting::begin(self.on_wait.as_ref());
            tokio::time::sleep(wait).await;
        }
    }

    /// One attempt; the `Retry-After` delay comes back beside the answer.
    async fn send_once(&self, call: &Request) -> Result<(Raw, Option<Duration>), TransportError> {
        let answer = transport::send(&self.inner.http, call).await?;
        let status = answer.status;
        let bytes = match answer.body {
            Ok(bytes) => bytes,
            // LINE took the message (the status says so) but its answer was cut off: an error
            // here would make the caller send the message again.
            Err(_) if call.retry.sends_message() && (200..300).contains(&status) => Bytes::new(),
            Err(e) => return Err(e),
        };
        let retry_after = answer
            .retry_after
            .and_then(|v| parse_retry_after(&v, SystemTime::now()));
        let raw = Raw {
            status,
            request_id: answer.request_id,
            content_type: answer.content_type,
            bytes,
        };
        Ok((raw, retry_after))
    }
}

/// The error after the last attempt: the failure itself when there was only one attempt.
fn give_up(endpoint: &'static str, attempts: u32, last: LineError) -> LineError {
    if attempts <= 1 {
        last
    } else {
        LineError::RetriesExhausted {
            endpoint,
            attempts,
            last: Box::new(last),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_keys_are_deterministic_and_distinct() {
        let key = Uuid::new_v4();
        assert_eq!(chunk_retry_key(key, 0), key);
        assert_eq!(chunk_retry_key(key, 1), chunk_retry_key(key, 1));
        assert_ne!(chunk_retry_key(key, 1), chunk_retry_key(key, 2));
        assert_ne!(chunk_retry_key(key, 1), key);
    }

    #[test]
    fn rejects_bad_base_urls_and_tokens() {
        let cfg = LineConfig::new("ftp://x", "https://api-data.line.me", "t");
        assert!(matches!(
            LineClient::new(cfg),
            Err(LineError::BadUrl { .. })
        ));
        let cfg = LineConfig::new("https://api.line.me", "https://api-data.line.me", "a\nb");
        let err = LineClient::new(cfg).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("could not set up the LINE client: the channel access token contains characters not allowed in an HTTP header")
        );
    }

    #[test]
    fn reply_retries_less_than_keyed_calls() {
        assert!(Retry::Keyed.on_status(429));
        assert!(!Retry::Reply.on_status(429));
        assert!(Retry::Reply.on_status(502));
        assert!(!Retry::Keyed.on_status(400));
        let base = RetryPolicy::default();
        assert_eq!(Retry::Reply.policy(&base).max_total, INTERACTIVE_BUDGET);
        assert_eq!(Retry::Read.policy(&base).max_attempts, INTERACTIVE_ATTEMPTS);
        assert_eq!(Retry::Keyed.policy(&base), base);
    }
}
