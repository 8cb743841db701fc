//! The mock's unit tests: request numbers read from bodies, LINE's single-use reply tokens and
//! retry keys, and thousands of delayed calls waiting at once.

use super::*;
use axum::body::Bytes;

fn state() -> MockState {
    MockState::new(&Options {
        latency: Duration::ZERO,
        capacity: 1000,
        notify_answers: false,
    })
}

#[test]
fn reads_request_numbers() {
    let body = br#"{"messages":[{"type":"text","text":"hi"}],"notificationDisabled":false,"replyToken":"rt-1234"}"#;
    assert_eq!(number_after(body, TOKEN_MARK), Some(1234));
    assert_eq!(number_after(br#"{"replyToken":"other"}"#, TOKEN_MARK), None);
    let push = br#"{"to":"U1","messages":[{"type":"text","text":"echo: hello #n=77"}]}"#;
    assert_eq!(number_after(push, TEXT_MARK.as_bytes()), Some(77));
}

#[test]
fn a_reply_token_works_once() {
    let s = state();
    let body = br#"{"replyToken":"rt-5","messages":[]}"#;
    assert_eq!(s.reply(body).status(), StatusCode::OK);
    assert_eq!(s.reply(body).status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        s.reply(br#"{"replyToken":"nope"}"#).status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!((s.replies(), s.reused_tokens(), s.unmatched()), (1, 1, 1));
    assert_eq!(s.answered(), 1);
    assert!(s.was_answered(5) && !s.was_answered(6));
}

#[test]
fn a_retry_key_is_accepted_once_and_a_push_after_a_reply_is_a_second_answer() {
    let s = state();
    let mut headers = HeaderMap::new();
    headers.insert("x-line-retry-key", "k1".parse().unwrap());
    let body = br#"{"to":"U1","messages":[{"type":"text","text":"echo: hello #n=9"}]}"#;
    assert_eq!(s.push(&headers, body).status(), StatusCode::OK);
    assert_eq!(s.push(&headers, body).status(), StatusCode::CONFLICT);
    assert_eq!((s.fallback_pushes(), s.push_conflicts()), (1, 1));
    assert_eq!((s.answered(), s.answered_twice()), (1, 0));
    // A fresh token for the same event: LINE accepts it, and the user sees two answers.
    assert_eq!(
        s.reply(br#"{"replyToken":"rt-9"}"#).status(),
        StatusCode::OK
    );
    assert_eq!((s.answered(), s.answered_twice()), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_delayed_calls_wait_at_once() {
    // Under the listen backlog (1,024): on a loaded machine the accept loop falls behind, and
    // connections beyond the backlog were refused, failing the test for no fault of the mock.
    const CALLS: usize = 1000;
    let latency = Duration::from_millis(300);
    let mock = start(&Options {
        latency,
        capacity: 64,
        notify_answers: false,
    })
    .await
    .unwrap();
    let addr = mock.url.trim_start_matches("http://").to_owned();
    let began = Instant::now();
    let calls: Vec<_> = (0..CALLS)
        .map(|i| {
            let addr = addr.clone();
            tokio::spawn(async move {
                let mut sender = crate::load::connect(&addr).await.unwrap();
                let request = hyper::Request::get(format!("{PROFILE_PREFIX}Ubenchuser{i:06}"))
                    .header(hyper::header::HOST, addr.as_str())
                    .body(http_body_util::Full::new(Bytes::new()))
                    .unwrap();
                crate::load::send(&mut sender, request).await.unwrap()
            })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap(), 200);
    }
    let took = began.elapsed();
    assert_eq!(mock.state.profiles(), CALLS as u64);
    assert!(took >= latency, "{took:?}");
    // One after the other they would take 5 minutes.
    assert!(took < latency * 10, "{took:?}");
}
