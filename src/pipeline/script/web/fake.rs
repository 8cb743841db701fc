//! The web as `linebotd test` sees it: answers set up with `http_fake(url_prefix, answer)`, and
//! a record of every call for `http_calls()`. No call reaches the network.

use std::sync::Mutex;

use super::client::{shown, Body, Request, Response, WebError, WebErrorKind};

/// What a fake answers: a status, headers and body, or an error the call throws.
#[derive(Debug, Clone, Default)]
pub struct FakeAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Thrown instead of answering (to test a script's error path).
    pub error: Option<String>,
}

/// A call a test's scripts made.
#[derive(Debug, Clone)]
pub struct RecordedCall {
    pub method: String,
    /// The whole URL, query string included.
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

#[derive(Default)]
pub struct FakeWeb {
    fakes: Mutex<Vec<(String, FakeAnswer)>>,
    calls: Mutex<Vec<RecordedCall>>,
    /// Values tests gave exposed variables (`env_fake`).
    env: Mutex<Vec<(String, String)>>,
}

impl FakeWeb {
    /// Answers calls whose URL starts with `prefix`. The longest matching prefix wins; among
    /// equal ones the latest.
    pub fn add(&self, prefix: String, answer: FakeAnswer) {
        lock(&self.fakes).push((prefix, answer));
    }

    /// Gives an exposed variable a value for this test.
    pub fn set_env_var(&self, name: String, value: String) {
        let mut env = lock(&self.env);
        env.retain(|(n, _)| *n != name);
        env.push((name, value));
    }

    pub(super) fn env_var(&self, name: &str) -> Option<String> {
        lock(&self.env)
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }

    pub fn calls(&self) -> Vec<RecordedCall> {
        lock(&self.calls).clone()
    }

    pub(super) fn answer(&self, request: &Request) -> Result<Response, WebError> {
        let url = request.url.as_str();
        lock(&self.calls).push(RecordedCall {
            method: request.method.to_string(),
            url: url.to_owned(),
            headers: request.headers.clone(),
            body: request.body.clone(),
        });
        let fakes = lock(&self.fakes);
        let found = fakes
            .iter()
            .enumerate()
            .filter(|(_, (prefix, _))| url.starts_with(prefix.as_str()))
            .max_by_key(|(i, (prefix, _))| (prefix.len(), *i))
            .map(|(_, (_, answer))| answer.clone());
        let Some(answer) = found else {
            return Err(WebError::new(
                WebErrorKind::Unfaked,
                &request.url,
                format!(
                    "no http_fake matches this {} (tests do not reach the network); add \
                     http_fake(\"{shown}\", #{{ status: 200, body: \"...\" }}) to the test",
                    request.method,
                    shown = shown(&request.url),
                ),
            ));
        };
        if let Some(error) = answer.error {
            return Err(WebError::new(WebErrorKind::Network, &request.url, error));
        }
        Ok(Response {
            status: answer.status,
            headers: answer.headers,
            body: answer.body,
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
