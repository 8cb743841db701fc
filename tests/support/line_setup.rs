//! What every LINE client test file sets up: a client pointed at a mock LINE API on loopback,
//! with quick retries, and the headers every call must carry.
#![allow(dead_code)] // each test file uses a different part of it

use std::time::Duration;

use linebotd::line::{LineClient, LineConfig, RetryPolicy};

use crate::support::mock_line::{MockLine, Recorded};

pub const TOKEN: &str = "test-channel-access-token";
pub const PUSH: &str = "/v2/bot/message/push";
pub const REPLY: &str = "/v2/bot/message/reply";
pub const MULTICAST: &str = "/v2/bot/message/multicast";

pub fn config(api: &MockLine, data: &MockLine) -> LineConfig {
    let mut cfg = LineConfig::new(api.url(), data.url(), TOKEN);
    cfg.request_timeout = Duration::from_secs(2);
    cfg.retry = RetryPolicy {
        max_attempts: 5,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(100),
        max_total: Duration::from_secs(10),
    };
    cfg
}

pub async fn setup() -> (MockLine, LineClient) {
    let mock = MockLine::start().await;
    let client = LineClient::new(config(&mock, &mock)).expect("client");
    (mock, client)
}

pub fn assert_common_headers(r: &Recorded) {
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    let ua = r.header("user-agent").unwrap_or("");
    assert_eq!(ua, concat!("linebotd/", env!("CARGO_PKG_VERSION")));
}
