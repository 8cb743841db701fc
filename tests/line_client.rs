//! The LINE client against a mock LINE API on loopback: what goes over the wire, how retries,
//! retry keys and LINE's errors come back to the caller, and the per-endpoint rate limits.

mod support;

use std::time::{Duration, Instant};

use linebotd::line::{
    chunk_retry_key, text, Content, LineClient, LineConfig, LineError, MessageError, RetryPolicy,
};
use serde_json::{json, Value};
use support::mock_line::{MockContent, MockLine};
use uuid::Uuid;

const TOKEN: &str = "test-channel-access-token";
const PUSH: &str = "/v2/bot/message/push";
const REPLY: &str = "/v2/bot/message/reply";
const MULTICAST: &str = "/v2/bot/message/multicast";

fn config(api: &MockLine, data: &MockLine) -> LineConfig {
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

async fn setup() -> (MockLine, LineClient) {
    let mock = MockLine::start().await;
    let client = LineClient::new(config(&mock, &mock)).expect("client");
    (mock, client)
}

fn assert_common_headers(r: &support::mock_line::Recorded) {
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    let ua = r.header("user-agent").unwrap_or("");
    assert_eq!(ua, concat!("linebotd/", env!("CARGO_PKG_VERSION")));
}

#[tokio::test]
async fn push_sends_spec_path_headers_and_body() {
    let (mock, client) = setup().await;
    let key = Uuid::new_v4();
    let sent = client
        .push("U123", &[text("hi")], key, true)
        .await
        .expect("push");
    let reqs = mock.recorded();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", PUSH));
    assert_common_headers(r);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.retry_key(), Some(key.to_string().as_str()));
    assert_eq!(
        r.body,
        json!({"to": "U123", "messages": [{"type": "text", "text": "hi"}], "notificationDisabled": true})
    );
    assert!(!sent.accepted_before);
    assert_eq!(sent.request_id.as_deref(), Some(r.request_id.as_str()));
    assert_eq!(sent.body["sentMessages"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn reply_sends_token_and_no_retry_key() {
    let (mock, client) = setup().await;
    client
        .reply("tok-1", &[text("a"), text("b")], false)
        .await
        .expect("reply");
    let r = &mock.requests_to(REPLY)[0];
    assert_common_headers(r);
    assert_eq!(r.retry_key(), None);
    assert_eq!(
        r.body,
        json!({"replyToken": "tok-1", "notificationDisabled": false,
               "messages": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]})
    );
}

#[tokio::test]
async fn broadcast_and_multicast_send_spec_bodies() {
    let (mock, client) = setup().await;
    let key = Uuid::new_v4();
    client
        .broadcast(&[text("all")], key, false)
        .await
        .expect("broadcast");
    let r = &mock.requests_to("/v2/bot/message/broadcast")[0];
    assert_eq!(r.retry_key(), Some(key.to_string().as_str()));
    assert_eq!(
        r.body,
        json!({"messages": [{"type": "text", "text": "all"}], "notificationDisabled": false})
    );
    let ids = vec!["U1".to_owned(), "U2".to_owned()];
    client
        .multicast(&ids, &[text("some")], key, false)
        .await
        .expect("multicast");
    let r = &mock.requests_to(MULTICAST)[0];
    assert_eq!(r.retry_key(), Some(key.to_string().as_str()));
    assert_eq!(
        r.body,
        json!({"to": ["U1", "U2"], "messages": [{"type": "text", "text": "some"}], "notificationDisabled": false})
    );
}

#[tokio::test]
async fn profiles_use_spec_paths_and_404_is_none() {
    let (mock, client) = setup().await;
    let p = client.profile("U1").await.expect("profile");
    assert_eq!(
        p.as_ref().map(|p| p["displayName"].clone()),
        Some(json!("User U1"))
    );
    let g = client
        .group_member_profile("C9", "U2")
        .await
        .expect("group");
    assert_eq!(g.map(|p| p["userId"].clone()), Some(json!("U2")));
    client.room_member_profile("R7", "U3").await.expect("room");
    mock.set_profile_missing("Ugone");
    assert_eq!(
        client.profile("Ugone").await.expect("404 is not an error"),
        None
    );
    let paths: Vec<(String, String)> = mock
        .recorded()
        .into_iter()
        .map(|r| (r.method, r.path))
        .collect();
    let expected = [
        "/v2/bot/profile/U1",
        "/v2/bot/group/C9/member/U2",
        "/v2/bot/room/R7/member/U3",
        "/v2/bot/profile/Ugone",
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|p| ("GET".to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(paths, expected);
    assert_common_headers(&mock.recorded()[0]);
}

#[tokio::test]
async fn loading_checks_seconds_before_sending() {
    let (mock, client) = setup().await;
    client.loading("U1", 20).await.expect("loading");
    let r = &mock.recorded()[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/v2/bot/chat/loading/start")
    );
    assert_eq!(r.body, json!({"chatId": "U1", "loadingSeconds": 20}));
    for bad in [0, 3, 7, 65] {
        let err = client
            .loading("U1", bad)
            .await
            .expect_err("invalid seconds");
        assert!(matches!(
            err,
            LineError::Invalid(MessageError::LoadingSeconds { seconds }) if seconds == bad
        ));
    }
    assert_eq!(mock.recorded().len(), 1);
}

#[tokio::test]
async fn content_comes_from_the_data_api_and_202_is_not_ready() {
    let api = MockLine::start().await;
    let data = MockLine::start().await;
    let client = LineClient::new(config(&api, &data)).expect("client");
    data.set_content(
        "m1",
        MockContent::Ready {
            content_type: "image/jpeg".into(),
            bytes: vec![0xff, 0xd8, 0xff],
        },
    );
    data.set_content("m2", MockContent::NotReady);
    let c = client.content("m1").await.expect("content");
    assert_eq!(
        c,
        Content::Ready {
            content_type: Some("image/jpeg".into()),
            bytes: bytes::Bytes::from_static(&[0xff, 0xd8, 0xff])
        }
    );
    assert_eq!(
        client.content("m2").await.expect("not ready"),
        Content::NotReady
    );
    assert!(api.recorded().is_empty());
    let r = &data.recorded()[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("GET", "/v2/bot/message/m1/content")
    );
    assert_common_headers(r);
}

#[tokio::test]
async fn get_and_post_reach_any_path() {
    let (mock, client) = setup().await;
    let info = client.get("/v2/bot/info").await.expect("info");
    assert_eq!(info["basicId"], json!("@mockbot"));
    let body = json!({"size": {"width": 2500, "height": 843}});
    client.post("/v2/bot/richmenu", &body).await.expect("post");
    let r = &mock.requests_to("/v2/bot/richmenu")[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.body, body);
    mock.respond("/v2/bot/nothing", 200, Value::Null);
    assert_eq!(
        client.get("/v2/bot/nothing").await.expect("null"),
        Value::Null
    );
    assert!(client.get("/v2/bot/info?x=1").await.is_ok());
    assert_eq!(mock.recorded()[3].query.as_deref(), Some("x=1"));
    let err = client.get("/v2/bot/unknown").await.expect_err("404");
    assert_eq!(err.status(), Some(404));
    assert!(err
        .to_string()
        .starts_with("LINE rejected get (404): Not found"));
}

#[tokio::test]
async fn push_retried_after_two_500s_reuses_the_retry_key() {
    let (mock, client) = setup().await;
    mock.fail_next(PUSH, 500, 2);
    let key = Uuid::new_v4();
    let sent = client
        .push("U1", &[text("x")], key, false)
        .await
        .expect("third attempt succeeds");
    assert!(!sent.accepted_before);
    let reqs = mock.requests_to(PUSH);
    let statuses: Vec<u16> = reqs.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [500, 500, 200]);
    assert!(reqs
        .iter()
        .all(|r| r.retry_key() == Some(key.to_string().as_str())));
    assert_eq!(mock.accepted(PUSH).len(), 1);
}

#[tokio::test]
async fn conflict_after_a_timeout_counts_as_delivered() {
    let mock = MockLine::start().await;
    let mut cfg = config(&mock, &mock);
    cfg.request_timeout = Duration::from_millis(300);
    let client = LineClient::new(cfg).expect("client");
    // LINE takes the first attempt but answers too late; the retry meets the used key.
    mock.delay_next(PUSH, Duration::from_secs(2), 1);
    let key = Uuid::new_v4();
    let sent = client
        .push("U1", &[text("x")], key, false)
        .await
        .expect("409 means delivered");
    assert!(sent.accepted_before);
    let reqs = mock.requests_to(PUSH);
    // On a busy machine a retry may time out too; what matters is that the first attempt was
    // taken, every later one carried the same key, and the last was told "already accepted".
    assert!(reqs.len() >= 2, "{reqs:?}");
    assert_eq!(reqs[0].status, 200);
    assert_eq!(reqs.last().map(|r| r.status), Some(409));
    let key = key.to_string();
    assert!(reqs.iter().all(|r| r.retry_key() == Some(key.as_str())));
    assert_eq!(mock.accepted(PUSH).len(), 1);
}

#[tokio::test]
async fn bad_request_is_not_retried_and_carries_lines_message() {
    let (mock, client) = setup().await;
    mock.respond(
        PUSH,
        400,
        json!({"message": "The property, 'to', in the request body is invalid",
               "details": [{"message": "invalid user ID", "property": "to"}]}),
    );
    let err = client
        .push("nobody", &[text("x")], Uuid::new_v4(), false)
        .await
        .expect_err("400");
    assert_eq!(mock.recorded().len(), 1, "a 400 is not retried");
    let shown = err.to_string();
    assert!(
        shown.starts_with(&format!(
            "LINE rejected push (400): The property, 'to', in the request body is invalid [to: invalid user ID] (line request id {}",
            mock.recorded()[0].request_id
        )),
        "{shown}"
    );
    assert!(err.is_permanent());
    assert_eq!(err.status(), Some(400));
    assert!(!shown.contains(TOKEN));
}

#[tokio::test]
async fn too_many_requests_waits_for_retry_after() {
    let (mock, client) = setup().await;
    mock.fail_next(PUSH, 429, 1);
    mock.set_retry_after(PUSH, 1);
    let t0 = Instant::now();
    client
        .push("U1", &[text("x")], Uuid::new_v4(), false)
        .await
        .expect("retried after Retry-After");
    assert!(t0.elapsed() >= Duration::from_secs(1), "{:?}", t0.elapsed());
    let reqs = mock.requests_to(PUSH);
    assert_eq!(reqs.len(), 2);
    assert!(reqs[1].received_at - reqs[0].received_at >= Duration::from_secs(1));
}

#[tokio::test]
async fn gives_up_after_max_attempts() {
    let mock = MockLine::start().await;
    let mut cfg = config(&mock, &mock);
    cfg.retry.max_attempts = 3;
    let client = LineClient::new(cfg).expect("client");
    mock.fail_next(PUSH, 503, 10);
    let err = client
        .push("U1", &[text("x")], Uuid::new_v4(), false)
        .await
        .expect_err("always 503");
    assert!(
        matches!(
            &err,
            LineError::RetriesExhausted {
                endpoint: "push",
                attempts: 3,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.status(), Some(503));
    assert!(!err.is_permanent());
    assert_eq!(mock.recorded().len(), 3);
}

#[tokio::test]
async fn multicast_splits_into_chunks_of_500_with_deterministic_keys() {
    let (mock, client) = setup().await;
    let ids: Vec<String> = (0..1201).map(|i| format!("U{i:032}")).collect();
    let key = Uuid::new_v4();
    let first = client
        .multicast(&ids, &[text("news")], key, false)
        .await
        .expect("multicast");
    assert!(!first.accepted_before);
    let reqs = mock.requests_to(MULTICAST);
    let sizes: Vec<usize> = reqs
        .iter()
        .map(|r| r.body["to"].as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(sizes, [500, 500, 201]);
    assert_eq!(reqs[2].body["to"][200], json!(ids[1200]));
    let keys: Vec<String> = reqs
        .iter()
        .map(|r| r.retry_key().unwrap_or_default().to_owned())
        .collect();
    let expected: Vec<String> = (0..3)
        .map(|i| chunk_retry_key(key, i).to_string())
        .collect();
    assert_eq!(keys, expected);
    assert_eq!(keys[0], key.to_string());
    assert!(keys[0] != keys[1] && keys[1] != keys[2] && keys[0] != keys[2]);

    // Sending the same multicast again reuses every key, so LINE drops all three chunks.
    mock.clear();
    let again = client
        .multicast(&ids, &[text("news")], key, false)
        .await
        .expect("re-run");
    assert!(again.accepted_before);
    let reqs = mock.requests_to(MULTICAST);
    assert_eq!(reqs.iter().map(|r| r.status).collect::<Vec<_>>(), [409; 3]);
    let rerun_keys: Vec<String> = reqs
        .iter()
        .map(|r| r.retry_key().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(rerun_keys, expected);
}

#[tokio::test]
async fn second_reply_with_same_token_is_invalid_reply_token() {
    let (mock, client) = setup().await;
    client
        .reply("tok", &[text("1")], false)
        .await
        .expect("first");
    let err = client
        .reply("tok", &[text("2")], false)
        .await
        .expect_err("token used");
    assert!(err.is_invalid_reply_token(), "{err}");
    assert!(matches!(
        err,
        LineError::Rejected {
            status: 400,
            endpoint: "reply",
            ..
        }
    ));
    assert_eq!(mock.requests_to(REPLY).len(), 2, "a 400 is not retried");
}

#[tokio::test]
async fn reply_retries_a_server_error_but_not_429() {
    let (mock, client) = setup().await;
    mock.fail_next(REPLY, 500, 1);
    client
        .reply("t1", &[text("x")], false)
        .await
        .expect("retried");
    assert_eq!(mock.requests_to(REPLY).len(), 2);
    mock.clear();
    mock.fail_next(REPLY, 429, 1);
    let err = client
        .reply("t2", &[text("x")], false)
        .await
        .expect_err("429");
    assert_eq!(err.status(), Some(429));
    assert_eq!(mock.requests_to(REPLY).len(), 1);
}

#[tokio::test]
async fn invalid_messages_are_refused_before_sending() {
    let (mock, client) = setup().await;
    let six = vec![text("x"); 6];
    let err = client
        .push("U1", &six, Uuid::new_v4(), false)
        .await
        .expect_err("six");
    assert!(matches!(
        err,
        LineError::Invalid(MessageError::TooMany { count: 6 })
    ));
    let long = text(&"😀".repeat(2600));
    let err = client.reply("t", &[long], false).await.expect_err("long");
    assert!(matches!(
        err,
        LineError::Invalid(MessageError::TextTooLong {
            index: 0,
            units: 5200
        })
    ));
    let err = client
        .multicast(&[], &[text("x")], Uuid::new_v4(), false)
        .await
        .expect_err("nobody");
    assert!(matches!(
        err,
        LineError::Invalid(MessageError::NoRecipients)
    ));
    assert!(mock.recorded().is_empty());
}

#[tokio::test]
async fn unreachable_line_is_a_transport_error_without_the_token() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener); // nothing listens there now
    let mut cfg = LineConfig::new(url.clone(), url, TOKEN);
    cfg.retry.initial_backoff = Duration::from_millis(5);
    cfg.retry.max_attempts = 2;
    let client = LineClient::new(cfg).expect("client");
    let err = client.profile("U1").await.expect_err("nothing listens");
    let LineError::RetriesExhausted {
        last, attempts: 2, ..
    } = &err
    else {
        panic!("expected retries: {err:?}");
    };
    assert!(matches!(
        **last,
        LineError::Transport {
            endpoint: "profile",
            ..
        }
    ));
    assert!(!err.to_string().contains(TOKEN));
    assert!(!format!("{err:?} {client:?}").contains(TOKEN));
}

#[tokio::test]
async fn rate_limit_spaces_requests_out() {
    let mock = MockLine::start().await;
    let mut cfg = config(&mock, &mock);
    cfg.rate_limit_per_sec = 10;
    let client = LineClient::new(cfg).expect("client");
    for i in 0..13 {
        client
            .push("U1", &[text("x")], Uuid::new_v4(), false)
            .await
            .unwrap_or_else(|e| panic!("push {i}: {e}"));
    }
    assert!(mock.wait_for(13, Duration::from_secs(5)).await);
    let reqs = mock.recorded();
    // A burst of 10, then one every 100 ms.
    let spread = reqs[12].received_at - reqs[0].received_at;
    assert!(spread >= Duration::from_millis(250), "{spread:?}");
}

#[tokio::test]
async fn reply_is_not_resent_after_a_timeout() {
    let mock = MockLine::start().await;
    let mut cfg = config(&mock, &mock);
    cfg.request_timeout = Duration::from_millis(200);
    let client = LineClient::new(cfg).expect("client");
    // LINE may have delivered it; a second reply would show the message twice.
    mock.delay_next(REPLY, Duration::from_secs(1), 1);
    let err = client
        .reply("tok", &[text("x")], false)
        .await
        .expect_err("timed out");
    assert!(
        matches!(
            err,
            LineError::Transport {
                endpoint: "reply",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(mock.requests_to(REPLY).len(), 1);
}

#[tokio::test]
async fn loading_has_its_own_rate_limit() {
    let mock = MockLine::start().await;
    let mut cfg = config(&mock, &mock);
    cfg.rate_limit_per_sec = 1;
    cfg.loading_rate_limit_per_sec = 100;
    let client = LineClient::new(cfg).expect("client");
    client.profile("U1").await.expect("uses the general burst");
    let t0 = Instant::now();
    for _ in 0..5 {
        client.loading("U1", 5).await.expect("loading");
    }
    assert!(
        t0.elapsed() < Duration::from_millis(500),
        "{:?}",
        t0.elapsed()
    );
    client
        .profile("U2")
        .await
        .expect("waits for a general token");
    assert!(
        t0.elapsed() >= Duration::from_millis(700),
        "{:?}",
        t0.elapsed()
    );
}

#[tokio::test]
async fn wrong_token_is_a_permanent_rejection() {
    let (mock, client) = setup().await;
    mock.require_token("another-token");
    let err = client.get("/v2/bot/info").await.expect_err("401");
    assert_eq!(err.status(), Some(401));
    assert!(err.is_permanent());
    assert_eq!(mock.recorded().len(), 1);
}

/// A profile request for each of `n` users, all sent at once.
fn profiles(client: &LineClient, n: usize) -> Vec<tokio::task::JoinHandle<Result<(), LineError>>> {
    (0..n)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move { client.profile(&format!("U{i}")).await.map(|_| ()) })
        })
        .collect()
}

#[tokio::test]
async fn a_busy_endpoint_does_not_slow_another() {
    let mock = MockLine::start().await;
    let mut cfg = config(&mock, &mock);
    cfg.rate_limit_per_sec = 20;
    let client = LineClient::new(cfg).expect("client");
    // 60 profiles at 20/s: a burst of 20, then the rest queue for about two seconds.
    let queued = profiles(&client, 60);
    assert!(mock.wait_for(20, Duration::from_secs(5)).await);
    let t0 = Instant::now();
    client
        .reply("tok", &[text("quick")], false)
        .await
        .expect("reply");
    client
        .push("U1", &[text("quick")], Uuid::new_v4(), false)
        .await
        .expect("push");
    let took = t0.elapsed();
    // Behind profile's queue they would take about two seconds.
    assert!(
        took < Duration::from_millis(800),
        "reply and push took {took:?}"
    );
    let profiles_so_far = mock.recorded().len() - 2;
    assert!(profiles_so_far < 60, "profile was not saturated");
    for p in queued {
        p.await.expect("task").expect("profile");
    }
    let reqs = mock.recorded();
    let spread = reqs[reqs.len() - 1].received_at - reqs[0].received_at;
    assert!(
        spread >= Duration::from_millis(1500),
        "profile limited: {spread:?}"
    );
}

#[tokio::test]
async fn a_429_holds_back_every_caller_of_that_endpoint_only() {
    let (mock, client) = setup().await;
    mock.fail_next(REPLY, 429, 1);
    mock.set_retry_after(REPLY, 1);
    let err = client
        .reply("t1", &[text("x")], false)
        .await
        .expect_err("429");
    assert_eq!(err.status(), Some(429));
    // Another caller's reply waits out LINE's Retry-After; a profile does not.
    let t0 = Instant::now();
    let other = client.clone();
    let waiting = tokio::spawn(async move { other.reply("t2", &[text("y")], false).await });
    client.profile("U1").await.expect("profile");
    assert!(
        t0.elapsed() < Duration::from_millis(600),
        "{:?}",
        t0.elapsed()
    );
    waiting.await.expect("task").expect("reply after the pause");
    let replies = mock.requests_to(REPLY);
    assert_eq!(replies.len(), 2);
    let gap = replies[1].received_at - replies[0].received_at;
    assert!(gap >= Duration::from_millis(950), "{gap:?}");
}

#[tokio::test]
async fn narrowcast_by_path_keeps_lines_hourly_limit() {
    const NARROWCAST: &str = "/v2/bot/message/narrowcast";
    let (mock, client) = setup().await;
    mock.respond(NARROWCAST, 202, json!({}));
    let body = json!({"messages": [{"type": "text", "text": "sale"}]});
    for i in 0..60 {
        client
            .post(NARROWCAST, &body)
            .await
            .unwrap_or_else(|e| panic!("narrowcast {i}: {e}"));
    }
    // The 61st would wait a minute for its token, longer than a script may wait: it fails at
    // once, unsent, and says why.
    let t0 = Instant::now();
    let err = client.post(NARROWCAST, &body).await.expect_err("61st");
    assert!(
        t0.elapsed() < Duration::from_millis(500),
        "{:?}",
        t0.elapsed()
    );
    assert!(
        matches!(err, LineError::RateLimited { endpoint: "narrowcast", wait } if wait > Duration::from_secs(50)),
        "{err:?}"
    );
    assert!(!err.is_permanent());
    assert_eq!(mock.requests_to(NARROWCAST).len(), 60);
    client
        .push("U1", &[text("still fine")], Uuid::new_v4(), false)
        .await
        .expect("push has its own bucket");
}
