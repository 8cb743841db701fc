//! Failures armed ahead of time (`line_fails` in `linebotd test`): the next call to an endpoint
//! answers a chosen status with LINE's error body, so a test can reach what a bot does when LINE
//! refuses (a push that ends in `on_delivery_failed`, a reply that throws).

use std::collections::{HashMap, VecDeque};

use serde_json::json;

use super::Answer;

/// The endpoints `line_fails` knows by name, and the path each stands for. A path ending in `/`
/// matches every path under it (`profile` is the profile of any user).
const ENDPOINTS: &[(&str, &str)] = &[
    ("reply", "/v2/bot/message/reply"),
    ("push", "/v2/bot/message/push"),
    ("multicast", "/v2/bot/message/multicast"),
    ("broadcast", "/v2/bot/message/broadcast"),
    ("narrowcast", "/v2/bot/message/narrowcast"),
    ("profile", "/v2/bot/profile/"),
    ("loading", "/v2/bot/chat/loading/start"),
];

/// Why a failure could not be armed, worded for a test author.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArmError {
    #[error("unknown endpoint {0:?}: use one of reply, push, multicast, broadcast, narrowcast, profile, loading, or a path such as \"/v2/bot/info\"")]
    UnknownEndpoint(String),
    #[error("status {0} is not an error LINE answers: use 400 to 599")]
    NotAnError(i64),
}

/// Armed failures by path (or path prefix), each used once, in the order they were armed.
#[derive(Default)]
pub(super) struct Armed {
    by_path: HashMap<String, VecDeque<Answer>>,
}

impl Armed {
    /// Makes the next call to `endpoint` (a name of [`ENDPOINTS`] or a path) answer `status`
    /// with LINE's error body carrying `message`.
    pub(super) fn arm(
        &mut self,
        endpoint: &str,
        status: i64,
        message: &str,
    ) -> Result<(), ArmError> {
        let path = path_of(endpoint)?;
        let status = u16::try_from(status)
            .ok()
            .filter(|s| (400..=599).contains(s))
            .ok_or(ArmError::NotAnError(status))?;
        let answer = Answer::json(status, json!({ "message": message }));
        self.by_path.entry(path).or_default().push_back(answer);
        Ok(())
    }

    /// The armed answer for a call to `path`, if any; it is used up.
    pub(super) fn take(&mut self, path: &str) -> Option<Answer> {
        let key = self
            .by_path
            .iter()
            .find(|(armed, queue)| !queue.is_empty() && matches(armed, path))
            .map(|(armed, _)| armed.clone())?;
        self.by_path.get_mut(&key)?.pop_front()
    }
}

fn path_of(endpoint: &str) -> Result<String, ArmError> {
    if endpoint.starts_with('/') {
        return Ok(endpoint.to_owned());
    }
    ENDPOINTS
        .iter()
        .find(|(name, _)| *name == endpoint)
        .map(|(_, path)| (*path).to_owned())
        .ok_or_else(|| ArmError::UnknownEndpoint(endpoint.to_owned()))
}

fn matches(armed: &str, path: &str) -> bool {
    if armed.ends_with('/') {
        path.starts_with(armed)
    } else {
        armed == path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_armed_failure_answers_the_next_call_once() {
        let mut armed = Armed::default();
        armed
            .arm("push", 400, "Failed to send messages")
            .expect("armed");
        assert!(armed.take("/v2/bot/message/reply").is_none());
        let answer = armed.take("/v2/bot/message/push").expect("failure");
        assert_eq!(answer.status(), 400);
        assert_eq!(
            answer.json_body(),
            Some(&json!({"message": "Failed to send messages"}))
        );
        assert!(armed.take("/v2/bot/message/push").is_none());
    }

    #[test]
    fn profile_means_any_user_and_paths_are_exact() {
        let mut armed = Armed::default();
        armed.arm("profile", 500, "Internal error").expect("armed");
        armed.arm("/v2/bot/info", 403, "Forbidden").expect("armed");
        assert!(armed.take("/v2/bot/info/x").is_none());
        assert_eq!(
            armed.take("/v2/bot/profile/U1").map(|a| a.status()),
            Some(500)
        );
        assert_eq!(armed.take("/v2/bot/info").map(|a| a.status()), Some(403));
    }

    #[test]
    fn unknown_endpoints_and_non_error_statuses_are_refused() {
        let mut armed = Armed::default();
        let e = armed.arm("send", 400, "x").expect_err("unknown");
        assert!(e.to_string().contains("reply, push, multicast"));
        assert_eq!(armed.arm("push", 200, "x"), Err(ArmError::NotAnError(200)));
        assert_eq!(
            armed.arm("push", 70_000, "x"),
            Err(ArmError::NotAnError(70_000))
        );
    }
}
