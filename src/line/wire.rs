//! What goes over the wire: URLs built from the base URLs, and answers read back.

use bytes::Bytes;
use reqwest::Url;
use serde_json::Value;

use super::error::LineError;

/// LINE's answer to an attempt that counts as done.
pub(super) struct Raw {
    pub status: u16,
    pub request_id: Option<String>,
    pub content_type: Option<String>,
    pub bytes: Bytes,
}

/// A base URL from the configuration; only http(s) URLs that can take a path.
pub(super) fn parse_base(base: &str) -> Result<Url, LineError> {
    let url = Url::parse(base).map_err(|e| LineError::BadUrl {
        url: base.to_owned(),
        message: e.to_string(),
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(LineError::BadUrl {
            url: base.to_owned(),
            message: "expected an http:// or https:// base URL".to_owned(),
        });
    }
    Ok(url)
}

/// `base` plus path segments, each percent-encoded (IDs come from webhooks and scripts).
pub(super) fn url_with_segments(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url
}

/// `base` plus a caller-given path such as `/v2/bot/followers/ids?limit=10`.
pub(super) fn url_with_path(base: &Url, path: &str) -> Result<Url, LineError> {
    if !path.starts_with('/') {
        return Err(LineError::BadUrl {
            url: path.to_owned(),
            message: "the path must start with `/`, like /v2/bot/info".to_owned(),
        });
    }
    let joined = format!("{}{}", base.as_str().trim_end_matches('/'), path);
    Url::parse(&joined).map_err(|e| LineError::BadUrl {
        url: joined,
        message: e.to_string(),
    })
}

/// JSON of an answer: `Null` for an empty body.
pub(super) fn json_body(endpoint: &'static str, raw: &Raw) -> Result<Value, LineError> {
    if raw.bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&raw.bytes).map_err(|e| LineError::BadResponse {
        endpoint,
        status: raw.status,
        message: format!("not JSON: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_base_prefix_and_encode_ids() {
        let base = Url::parse("http://127.0.0.1:9/mock/").unwrap();
        let u = url_with_segments(&base, &["v2", "bot", "profile", "U a/b"]);
        assert_eq!(
            u.as_str(),
            "http://127.0.0.1:9/mock/v2/bot/profile/U%20a%2Fb"
        );
        let u = url_with_path(&base, "/v2/bot/info?x=1").unwrap();
        assert_eq!(u.as_str(), "http://127.0.0.1:9/mock/v2/bot/info?x=1");
        assert!(url_with_path(&base, "v2/bot/info").is_err());
    }
}
