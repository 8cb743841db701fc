//! The failures a test scripts into the fake LINE API: consulted before LINE's behaviour, in
//! the order LINE's own front end would fail a request (authentication, then the endpoint).

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use linebotd::dev::fakeline::{Answer, Fault, Faults, Incoming};
use serde_json::{json, Value};

#[derive(Default)]
pub(super) struct Script {
    /// path → statuses still to answer, one per request.
    pub(super) failures: HashMap<String, VecDeque<u16>>,
    /// path → Retry-After seconds sent with scripted failures.
    pub(super) retry_after: HashMap<String, u64>,
    /// path → (delay, how many more requests; None = all).
    pub(super) delays: HashMap<String, (Duration, Option<u32>)>,
    /// path → canned (status, body) answered instead of LINE's.
    pub(super) canned: HashMap<String, (u16, Value)>,
    pub(super) required_token: Option<String>,
}

#[derive(Default)]
pub(super) struct Scripted(Mutex<Script>);

impl Scripted {
    pub(super) fn lock(&self) -> MutexGuard<'_, Script> {
        // A test that panicked while holding the lock already failed; keep serving the others.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Faults for Scripted {
    fn inject(&self, request: &Incoming<'_>) -> Fault {
        let mut s = self.lock();
        Fault {
            stall: take_delay(&mut s, request.path),
            answer: answer(&mut s, request),
        }
    }
}

fn answer(s: &mut Script, request: &Incoming<'_>) -> Option<Answer> {
    if let Some(token) = &s.required_token {
        let sent = request.headers.get("authorization");
        if sent.and_then(|v| v.to_str().ok()) != Some(&format!("Bearer {token}")) {
            return Some(Answer::json(
                401,
                json!({"message": "Authentication failed. Confirm that the access token in the authorization header is valid."}),
            ));
        }
    }
    let path = request.path;
    if let Some(status) = s.failures.get_mut(path).and_then(VecDeque::pop_front) {
        let failure = Answer::json(status, json!({"message": format!("mock failure {status}")}));
        return Some(match s.retry_after.get(path) {
            Some(secs) => failure.with_header("retry-after", &secs.to_string()),
            None => failure,
        });
    }
    let (status, body) = s.canned.get(path)?;
    Some(Answer::json(*status, body.clone()))
}

fn take_delay(s: &mut Script, path: &str) -> Option<Duration> {
    let (delay, remaining) = s.delays.get_mut(path)?;
    match remaining {
        None => Some(*delay),
        Some(0) => None,
        Some(n) => {
            *n -= 1;
            Some(*delay)
        }
    }
}
