//! The LINE client against a mock LINE API on loopback: how retries, retry keys, LINE's errors,
//! invalid messages and an unreachable LINE come back to the caller.

#[path = "support/line_setup.rs"]
mod line_setup;
mod support;

use std::time::{Duration, Instant};

use line_setup::{config, setup, MULTICAST, PUSH, REPLY, TOKEN};
use linebotd::line::{chunk_retry_key, text, LineClient, LineConfig, LineError, MessageError};
use serde_json::json;
use support::mock_line::MockLine;
use uuid::Uuid;

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
async fn wrong_token_is_a_permanent_rejection() {
    let (mock, client) = setup().await;
    mock.require_token("another-token");
    let err = client.get("/v2/bot/info").await.expect_err("401");
    assert_eq!(err.status(), Some(401));
    assert!(err.is_permanent());
    assert_eq!(mock.recorded().len(), 1);
}
