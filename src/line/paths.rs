//! Any path of the Messaging API (`api_base`) or of its data host (`data_api_base`), for the
//! endpoints without a method of their own: scripts reach the rest of LINE's API through these.
//!
//! Each sends what LINE's OpenAPI spec asks for: a JSON body only where the operation has one
//! (several POSTs, such as linking a rich menu to a user, take none and LINE answers 415 to a
//! JSON body), and the caller's content type for binary uploads to the data host.

use bytes::Bytes;
use reqwest::header::HeaderValue;
use reqwest::Method;
use serde_json::Value;

use super::client::{Body, Request, Retry};
use super::endpoints::{bucket_for, get_call, post_call};
use super::error::LineError;
use super::wire::{json_body, url_with_path, Raw};
use super::{LineClient, CONTENT_TIMEOUT};

/// What the data host answered to a `GET`: binary content (an image, a video…) or JSON (a
/// transcoding status), as it came.
#[derive(Clone, Debug, PartialEq)]
pub struct DataAnswer {
    /// 200, or 202 while a video or audio is still being prepared.
    pub status: u16,
    pub content_type: Option<String>,
    pub bytes: Bytes,
}

impl LineClient {
    /// `GET {api_base}{path}` for any endpoint without its own method, e.g. `/v2/bot/info`.
    /// An empty answer is `Value::Null`.
    pub async fn get(&self, path: &str) -> Result<Value, LineError> {
        let mut call = get_call("get", url_with_path(&self.inner.api_base, path)?);
        call.bucket = bucket_for("GET", path, "get");
        let raw = self.execute(call).await?;
        json_body("get", &raw)
    }

    /// `POST {api_base}{path}` with a JSON body. Not retried after a timeout: the first
    /// request may have created something.
    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, LineError> {
        let url = url_with_path(&self.inner.api_base, path)?;
        let mut call = post_call("post", url, body, None, Retry::Post);
        call.bucket = bucket_for("POST", path, "post");
        let raw = self.execute(call).await?;
        json_body("post", &raw)
    }

    /// `POST {api_base}{path}` with no body and no `Content-Type`, for the operations whose
    /// spec has no request body (link a rich menu, leave a group, issue a link token…).
    pub async fn post_empty(&self, path: &str) -> Result<Value, LineError> {
        let raw = self
            .bodiless(Method::POST, "post", path, Retry::Post)
            .await?;
        json_body("post", &raw)
    }

    /// `PUT {api_base}{path}` with a JSON body (set the webhook URL…), or with none when
    /// `body` is `None` (close a coupon). Retried like a read: a PUT sets a state, so doing it
    /// twice does the same.
    pub async fn put(&self, path: &str, body: Option<&Value>) -> Result<Value, LineError> {
        let raw = match body {
            Some(body) => {
                let url = url_with_path(&self.inner.api_base, path)?;
                let mut call = post_call("put", url, body, None, Retry::Read);
                call.method = Method::PUT;
                call.bucket = bucket_for("PUT", path, "put");
                self.execute(call).await?
            }
            None => self.bodiless(Method::PUT, "put", path, Retry::Read).await?,
        };
        json_body("put", &raw)
    }

    /// `DELETE {api_base}{path}` (delete a rich menu or alias, unlink a menu…). Retried like a
    /// read: deleting twice leaves the same state.
    pub async fn delete(&self, path: &str) -> Result<Value, LineError> {
        let raw = self
            .bodiless(Method::DELETE, "delete", path, Retry::Read)
            .await?;
        json_body("delete", &raw)
    }

    /// `GET {data_api_base}{path}`: a rich menu's image, a message's content or preview, a
    /// transcoding status. A 202 (content not ready yet) is returned, not an error.
    pub async fn get_data(&self, path: &str) -> Result<DataAnswer, LineError> {
        let mut call = get_call("get data", url_with_path(&self.inner.data_api_base, path)?);
        call.bucket = bucket_for("GET", path, "get");
        call.timeout = Some(self.inner.request_timeout.max(CONTENT_TIMEOUT));
        call.max_bytes = Some(self.inner.content_max_bytes);
        let raw = self.execute(call).await?;
        Ok(DataAnswer {
            status: raw.status,
            content_type: raw.content_type,
            bytes: raw.bytes,
        })
    }

    /// `POST {data_api_base}{path}` with `bytes` as `content_type` (a rich menu's image as
    /// `image/png` or `image/jpeg`…). Not retried after a timeout, like [`LineClient::post`].
    pub async fn post_data(
        &self,
        path: &str,
        bytes: Bytes,
        content_type: &str,
    ) -> Result<Value, LineError> {
        let content_type = HeaderValue::from_str(content_type)
            .ok()
            .filter(|_| content_type.contains('/'))
            .ok_or_else(|| LineError::BadContentType(content_type.to_owned()))?;
        let url = url_with_path(&self.inner.data_api_base, path)?;
        let mut call = get_call("post data", url);
        call.method = Method::POST;
        call.body = Some(Body {
            bytes,
            content_type,
        });
        call.retry = Retry::Post;
        call.bucket = bucket_for("POST", path, "post");
        call.timeout = Some(self.inner.request_timeout.max(CONTENT_TIMEOUT));
        let raw = self.execute(call).await?;
        json_body("post data", &raw)
    }

    async fn bodiless(
        &self,
        method: Method,
        endpoint: &'static str,
        path: &str,
        retry: Retry,
    ) -> Result<Raw, LineError> {
        let url = url_with_path(&self.inner.api_base, path)?;
        let call = Request {
            bucket: bucket_for(method.as_str(), path, endpoint),
            method,
            retry,
            ..get_call(endpoint, url)
        };
        self.execute(call).await
    }
}
