//! One request from a script to the web, over a reqwest client that enforces the [`Policy`] on
//! every redirect hop and every resolved address, and caps the answer's size.

use std::error::Error as StdError;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use url::Url;

use super::policy::{Policy, Refusal};
use super::{WebConfig, MAX_REDIRECTS};

const USER_AGENT: &str = concat!("linebotd/", env!("CARGO_PKG_VERSION"));

/// A request a script makes.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: reqwest::Method,
    pub url: Url,
    /// Names as the script wrote them.
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    None,
    /// Sent as is.
    Text(String),
    /// Sent as JSON, with `Content-Type: application/json` unless the script set one.
    Json(serde_json::Value),
    /// Sent as is, with `Content-Type: application/octet-stream` unless the script set one.
    Bytes(Vec<u8>),
}

/// An answer, whatever its status.
#[derive(Debug, Clone, Default)]
pub struct Response {
    pub status: u16,
    /// Lower-case names; repeated headers joined with ", ".
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the answer says it is JSON (`application/json`, `…+json`).
    pub fn is_json(&self) -> bool {
        self.header("content-type").is_some_and(|t| {
            let t = t.split(';').next().unwrap_or("").trim();
            t.eq_ignore_ascii_case("application/json") || t.to_ascii_lowercase().ends_with("+json")
        })
    }
}

/// What went wrong with a call that got no answer. Shown to the script author: names the URL
/// (without its query string, which may hold a key), what happened and the setting involved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{url}: {message}")]
pub struct WebError {
    pub kind: WebErrorKind,
    pub url: String,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebErrorKind {
    /// The policy refused the URL, a redirect or an address.
    Refused,
    Timeout,
    /// The answer was larger than `http_max_response_bytes`.
    TooLarge,
    /// No answer: connection refused, TLS, DNS, a cut-off answer.
    Network,
    /// `linebotd test`: no fake matches.
    Unfaked,
}

impl WebErrorKind {
    /// The metrics' status label for a call that got no answer.
    pub fn label(self) -> &'static str {
        match self {
            Self::Refused => "refused",
            Self::Timeout => "timeout",
            Self::TooLarge | Self::Network | Self::Unfaked => "error",
        }
    }
}

impl WebError {
    pub fn new(kind: WebErrorKind, url: &Url, message: impl Into<String>) -> Self {
        Self {
            kind,
            url: shown(url),
            message: message.into(),
        }
    }

    pub fn refused(url: &Url, refusal: Refusal) -> Self {
        Self::new(WebErrorKind::Refused, url, refusal.0)
    }
}

/// A URL as errors and logs show it: no query string, fragment or credentials.
pub fn shown(url: &Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.set_fragment(None);
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.to_string()
}

/// The reqwest client behind real calls.
pub(super) struct Client {
    http: reqwest::Client,
}

impl Client {
    pub fn new(config: &WebConfig) -> Result<Self, WebError> {
        let hops = config.policy.clone();
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > MAX_REDIRECTS {
                let refusal = Refusal(format!("more than {MAX_REDIRECTS} redirects"));
                return attempt.error(refusal);
            }
            match hops.check_url(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(refusal) => {
                    let to = shown(attempt.url());
                    attempt.error(Refusal(format!("redirected to {to}: {}", refusal.0)))
                }
            }
        });
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .no_proxy()
            .redirect(redirects)
            .dns_resolver(Arc::new(CheckedResolver {
                policy: config.policy.clone(),
            }))
            .build()
            .map_err(|e| WebError {
                kind: WebErrorKind::Network,
                url: String::new(),
                message: format!("cannot set up the HTTP client: {e}"),
            })?;
        Ok(Self { http })
    }

    pub async fn send(
        &self,
        request: &Request,
        timeout: Duration,
        config: &WebConfig,
    ) -> Result<Response, WebError> {
        let url = &request.url;
        let exchange = async {
            let answer = self
                .build(request)?
                .send()
                .await
                .map_err(|e| from_reqwest(url, &e))?;
            read(answer, url, config.max_response_bytes).await
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(WebError::new(
                WebErrorKind::Timeout,
                url,
                format!("no answer within {} ms", timeout.as_millis()),
            )),
        }
    }

    fn build(&self, request: &Request) -> Result<reqwest::RequestBuilder, WebError> {
        let mut builder = self
            .http
            .request(request.method.clone(), request.url.clone());
        let mut has_type = false;
        for (name, value) in &request.headers {
            let bad = |what: &str| {
                WebError::new(
                    WebErrorKind::Refused,
                    &request.url,
                    format!("header `{name}` has an invalid {what}"),
                )
            };
            let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad("name"))?;
            let value = HeaderValue::from_str(value).map_err(|_| bad("value"))?;
            has_type |= header == CONTENT_TYPE;
            builder = builder.header(header, value);
        }
        let typed = |builder: reqwest::RequestBuilder, t: &'static str| {
            if has_type {
                builder
            } else {
                builder.header(CONTENT_TYPE, t)
            }
        };
        Ok(match &request.body {
            Body::None => builder,
            Body::Text(text) => builder.body(text.clone()),
            Body::Json(json) => typed(builder, "application/json").body(json.to_string()),
            Body::Bytes(bytes) => typed(builder, "application/octet-stream").body(bytes.clone()),
        })
    }
}

/// Reads an answer up to `cap` bytes.
async fn read(mut answer: reqwest::Response, url: &Url, cap: usize) -> Result<Response, WebError> {
    let too_large = || {
        WebError::new(
            WebErrorKind::TooLarge,
            url,
            format!("the answer is larger than {cap} bytes (http_max_response_bytes)"),
        )
    };
    if answer.content_length().is_some_and(|n| n > cap as u64) {
        return Err(too_large());
    }
    let mut headers: Vec<(String, String)> = Vec::new();
    for (name, value) in answer.headers() {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match headers.iter_mut().find(|(n, _)| n == name.as_str()) {
            Some((_, joined)) => {
                joined.push_str(", ");
                joined.push_str(&value);
            }
            None => headers.push((name.as_str().to_owned(), value)),
        }
    }
    let status = answer.status().as_u16();
    let mut body = Vec::new();
    while let Some(chunk) = answer.chunk().await.map_err(|e| from_reqwest(url, &e))? {
        if body.len() + chunk.len() > cap {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// A reqwest error as the script sees it: the policy's refusal when there is one in the chain,
/// else the innermost cause.
fn from_reqwest(url: &Url, e: &reqwest::Error) -> WebError {
    let mut cause: Option<&(dyn StdError + 'static)> = e.source();
    let mut innermost = None;
    while let Some(c) = cause {
        if let Some(refusal) = c.downcast_ref::<Refusal>() {
            return WebError::refused(url, refusal.clone());
        }
        innermost = Some(c);
        cause = c.source();
    }
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_redirect() {
        "redirect failed"
    } else {
        "request failed"
    };
    let message = match innermost {
        Some(c) => format!("{what}: {c}"),
        None => what.to_owned(),
    };
    WebError::new(WebErrorKind::Network, url, message)
}

/// Resolves names with the system resolver, then keeps only the addresses the policy admits.
struct CheckedResolver {
    policy: Policy,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let ips = found.map(|a| a.ip()).collect();
            let admitted = policy
                .admit_addrs(&host, ips)
                .map_err(|r| Box::new(r) as Box<dyn StdError + Send + Sync>)?;
            let addrs: Addrs = Box::new(admitted.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}
