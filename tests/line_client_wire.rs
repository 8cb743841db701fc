//! The LINE client against a mock LINE API on loopback: what goes over the wire for each
//! endpoint (paths, headers, bodies) and what comes back to the caller.

#[path = "support/line_setup.rs"]
mod line_setup;
mod support;

use line_setup::{assert_common_headers, config, setup, MULTICAST, PUSH, REPLY};
use linebotd::line::{text, Content, LineClient, LineError, MessageError};
use serde_json::{json, Value};
use support::mock_line::{MockContent, MockLine};
use uuid::Uuid;

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
    assert_eq!(info["basicId"], json!("@123abcde"));
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
