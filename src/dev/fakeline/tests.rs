use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, Method};
use serde_json::{json, Value};

use super::line::{answer, World};
use super::*;

/// A user id shaped like LINE's.
const USER: &str = "U4af4980629a1b2c3d4e5f60718293a4b";

async fn post(url: impl reqwest::IntoUrl, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .expect("post");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// LINE's answer to `method path` with `headers` and `body`, as request `id`.
fn ask(
    world: &mut World,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Value,
) -> Answer {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.insert(
            HeaderName::try_from(*name).expect("name"),
            HeaderValue::try_from(*value).expect("value"),
        );
    }
    answer(world, &method, path, &map, &body, "req-1")
}

fn get(world: &mut World, path: &str) -> Answer {
    ask(world, Method::GET, path, &[], Value::Null)
}

fn header<'a>(answer: &'a Answer, name: &str) -> Option<&'a str> {
    let (_, value) = answer.headers.iter().find(|(n, _)| n == name)?;
    value.to_str().ok()
}

#[tokio::test]
async fn a_reply_token_works_once_and_every_call_is_recorded() {
    let fake = FakeLine::start().await.expect("fake");
    let url = format!("{}/v2/bot/message/reply", fake.url());
    let body = json!({"replyToken": "t1", "messages": [{"type": "text", "text": "hi"}]});
    let (status, sent) = post(&url, body.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(sent["sentMessages"].as_array().map(Vec::len), Some(1));
    let (status, answer) = post(&url, body).await;
    assert_eq!(status, 400);
    assert_eq!(answer["message"], "Invalid reply token");
    let calls = fake.calls().all();
    assert_eq!(calls.len(), 2);
    assert_eq!((calls[0].index, calls[0].status), (0, 200));
    assert_eq!(calls[1].status, 400);
    assert_eq!(calls[0].messages()[0]["text"], "hi");
}

#[tokio::test]
async fn profiles_loading_and_waiting_for_calls() {
    let fake = FakeLine::start().await.expect("fake");
    let calls = fake.calls();
    let mut rx = calls.subscribe();
    fake.saw_event(&json!({"type": "follow", "source": {"type": "user", "userId": "U1"}}));
    let profile: Value = reqwest::get(format!("{}/v2/bot/profile/U1", fake.url()))
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(profile["displayName"], "User U1");
    assert_eq!(profile["language"], "en");
    let loading = format!("{}/v2/bot/chat/loading/start", fake.url());
    assert_eq!(post(&loading, json!({"chatId": "U1"})).await.0, 202);
    assert_eq!(rx.recv().await.expect("first").path, "/v2/bot/profile/U1");
    assert_eq!(calls.wait_after(1, Duration::from_secs(5)).await.len(), 1);
    assert!(calls
        .wait_after(2, Duration::from_millis(10))
        .await
        .is_empty());
}

#[test]
fn a_retry_key_is_accepted_once_and_a_reuse_names_the_accepted_request() {
    let mut world = World::default();
    let key = "123e4567-e89b-42d3-a456-426614174000";
    let push = json!({"to": USER, "messages": [{"type": "text", "text": "hi"}]});
    let path = "/v2/bot/message/push";
    let first = answer(
        &mut world,
        &Method::POST,
        path,
        &retry_key(key),
        &push,
        "req-1",
    );
    assert_eq!(first.status(), 200);
    let again = answer(
        &mut world,
        &Method::POST,
        path,
        &retry_key(key),
        &push,
        "req-2",
    );
    assert_eq!(again.status(), 409);
    assert_eq!(header(&again, "x-line-accepted-request-id"), Some("req-1"));
    let body = again.json_body().expect("json");
    assert_eq!(body["message"], "The retry key is already accepted");
    assert_eq!(
        body["sentMessages"],
        first.json_body().expect("json")["sentMessages"]
    );
    let other = ask(&mut world, Method::POST, path, &[], push.clone());
    assert_eq!(other.status(), 200, "no key, no deduplication");
    let multicast = "/v2/bot/message/multicast";
    let to_many = json!({"to": [USER], "messages": push["messages"]});
    assert_eq!(
        answer(
            &mut world,
            &Method::POST,
            multicast,
            &retry_key(key),
            &to_many,
            "req-3"
        )
        .status(),
        409,
        "a key is the channel's, whatever the endpoint"
    );
}

fn retry_key(key: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("x-line-retry-key", HeaderValue::try_from(key).expect("key"));
    headers
}

#[test]
fn a_retry_key_that_is_not_a_uuid_is_rejected() {
    let mut world = World::default();
    let push = json!({"to": USER, "messages": [{"type": "text", "text": "hi"}]});
    let a = ask(
        &mut world,
        Method::POST,
        "/v2/bot/message/push",
        &[("x-line-retry-key", "k1")],
        push,
    );
    assert_eq!(a.status(), 400);
    assert!(a.json_body().expect("json")["message"]
        .as_str()
        .is_some_and(|m| m.contains("X-Line-Retry-Key")));
}

#[test]
fn sends_to_many_answer_like_line() {
    let mut world = World::default();
    let body = json!({"to": [USER], "messages": [{"type": "text", "text": "x"}]});
    for (kind, status) in [("multicast", 200), ("broadcast", 200), ("narrowcast", 202)] {
        let a = ask(
            &mut world,
            Method::POST,
            &format!("/v2/bot/message/{kind}"),
            &[],
            body.clone(),
        );
        assert_eq!(
            (a.status(), a.json_body()),
            (status, Some(&json!({}))),
            "{kind}"
        );
    }
}

#[test]
fn profiles_can_be_set_or_missing_and_members_have_fewer_fields() {
    let mut world = World::default();
    world.saw_event(
        &json!({"type": "message", "source": {"type": "group", "groupId": "C1", "userId": "U2"}}),
    );
    let member = get(&mut world, "/v2/bot/group/C1/member/U2");
    let member = member.json_body().expect("json");
    assert_eq!(
        (&member["userId"], &member["displayName"]),
        (&json!("U2"), &json!("User U2"))
    );
    assert!(member.get("statusMessage").is_none() && member.get("language").is_none());
    world.set_profile("U3", Some(json!({"userId": "U3", "displayName": "Mika"})));
    assert_eq!(
        get(&mut world, "/v2/bot/profile/U3")
            .json_body()
            .expect("json")["displayName"],
        "Mika"
    );
    world.set_profile("Ugone", None);
    for path in ["/v2/bot/profile/Ugone", "/v2/bot/room/R1/member/Ugone"] {
        let a = get(&mut world, path);
        assert_eq!(
            (a.status(), a.json_body()),
            (404, Some(&json!({"message": "Not found"})))
        );
    }
}

#[test]
fn content_is_bytes_or_202_while_not_ready() {
    let mut world = World::default();
    let default = get(&mut world, "/v2/bot/message/m0/content");
    assert_eq!(default.status(), 200);
    assert!(matches!(&default.body, Body::Bytes { bytes, .. } if bytes == b"content of m0"));
    let jpeg = Content::Ready {
        content_type: "image/jpeg".into(),
        bytes: vec![0xff, 0xd8],
    };
    world.set_content("m1", jpeg);
    let ready = get(&mut world, "/v2/bot/message/m1/content");
    assert!(
        matches!(&ready.body, Body::Bytes { content_type, .. } if content_type == "image/jpeg")
    );
    world.set_content("m2", Content::NotReady);
    assert_eq!(get(&mut world, "/v2/bot/message/m2/content").status(), 202);
}

#[test]
fn paths_line_does_not_serve_are_404() {
    let mut world = World::default();
    assert_eq!(get(&mut world, "/v2/bot/followers/ids").status(), 200);
    assert_eq!(get(&mut world, "/v2/bot/unknown").status(), 404);
    let endpoint = "/v2/bot/channel/webhook/endpoint";
    assert_eq!(
        ask(&mut world, Method::PUT, endpoint, &[], json!({})).status(),
        200
    );
    assert_eq!(
        ask(&mut world, Method::POST, "/v2/bot/richmenu", &[], json!({})).status(),
        200
    );
}

/// Fails the first request with a 429, then holds every answer for a minute.
struct FirstFailsThenStall(std::sync::atomic::AtomicBool);

impl Faults for FirstFailsThenStall {
    fn inject(&self, _: &Incoming<'_>) -> Fault {
        if !self.0.swap(true, std::sync::atomic::Ordering::SeqCst) {
            let answer =
                Answer::json(429, json!({"message": "slow down"})).with_header("retry-after", "7");
            return Fault {
                answer: Some(answer),
                stall: None,
            };
        }
        Fault {
            answer: None,
            stall: Some(Duration::from_secs(60)),
        }
    }
}

#[tokio::test]
async fn faults_answer_before_line_and_a_stalled_call_is_recorded_before_its_answer() {
    let faults = Arc::new(FirstFailsThenStall(Default::default()));
    let fake = FakeLine::start_with(faults).await.expect("fake");
    let url = format!("{}/v2/bot/message/reply", fake.url());
    let body = json!({"replyToken": "t1", "messages": [{"type": "text", "text": "hi"}]});
    let failed = reqwest::Client::new()
        .post(&url)
        .json(&body)
        .send()
        .await
        .expect("post");
    assert_eq!(failed.status().as_u16(), 429);
    assert_eq!(failed.headers()["retry-after"], "7");
    let request_id = failed.headers()["x-line-request-id"]
        .to_str()
        .expect("id")
        .to_owned();

    // The token was not used by the failed call: the stalled retry is accepted (and recorded)
    // while its answer is still held back.
    let retry = tokio::spawn(post(url.clone(), body.clone()));
    let calls = fake.calls().wait_after(1, Duration::from_secs(10)).await;
    assert_eq!(calls.first().map(|c| c.status), Some(200));
    assert!(!retry.is_finished());
    retry.abort();

    let received = fake.calls().received_after(0);
    assert_eq!(received[0].call.status, 429);
    assert_eq!(received[0].request_id, request_id);
    assert_eq!(received[0].headers["content-type"], "application/json");
    assert_eq!(
        received[0].raw_body,
        serde_json::to_vec(&body).expect("bytes")
    );
}

/// `(status, body)` of a raw POST of `body` to `path` of `fake`.
async fn post_to(fake: &FakeLine, path: &str, body: Value) -> (u16, Value) {
    post(format!("{}{path}", fake.url()), body).await
}

#[tokio::test]
async fn sends_line_would_refuse_are_400_with_lines_details() {
    let fake = FakeLine::start().await.expect("fake");
    let push = |messages: Value| json!({"to": USER, "messages": messages});
    let cases = [
        (
            push(json!([{"type": "gif", "url": "https://x/a.gif"}])),
            "messages[0].type",
        ),
        (
            push(json!([{"type": "text", "text": ""}])),
            "messages[0].text",
        ),
        (
            push(
                json!([{"type": "image", "originalContentUrl": "http://x/a.jpg",
                         "previewImageUrl": "https://x/p.jpg"}]),
            ),
            "messages[0].originalContentUrl",
        ),
        (
            push(json!(vec![json!({"type": "text", "text": "x"}); 6])),
            "messages",
        ),
    ];
    for (body, property) in cases {
        let (status, answer) = post_to(&fake, "/v2/bot/message/push", body).await;
        assert_eq!(status, 400, "{property}");
        assert_eq!(answer["message"], "The request body has 1 error(s)");
        assert_eq!(answer["details"][0]["property"], property);
        assert!(answer["details"][0]["message"].is_string());
    }
    let calls = fake.calls().all();
    assert!(calls.iter().all(|c| c.status == 400 && c.error.is_some()));
    assert_eq!(
        calls[1].refusal().as_deref(),
        Some("400 The request body has 1 error(s) [messages[0].text: May not be empty]")
    );
}

#[tokio::test]
async fn a_refused_reply_keeps_its_token_and_a_bad_recipient_is_named() {
    let fake = FakeLine::start().await.expect("fake");
    let bad = json!({"replyToken": "t1", "messages": [{"type": "text", "text": ""}]});
    assert_eq!(post_to(&fake, "/v2/bot/message/reply", bad).await.0, 400);
    let good = json!({"replyToken": "t1", "messages": [{"type": "text", "text": "hi"}]});
    assert_eq!(post_to(&fake, "/v2/bot/message/reply", good).await.0, 200);

    let to_name = json!({"to": "Alice", "messages": [{"type": "text", "text": "hi"}]});
    let (status, answer) = post_to(&fake, "/v2/bot/message/push", to_name).await;
    assert_eq!(status, 400);
    assert_eq!(
        answer["message"],
        "The property, 'to', in the request body is invalid (line: -, column: -)"
    );
    // A user the bot heard from is a valid recipient, whatever their id looks like.
    fake.saw_event(&json!({"type": "message", "source": {"type": "user", "userId": "Alice"}}));
    let to_alice = json!({"to": "Alice", "messages": [{"type": "text", "text": "hi"}]});
    assert_eq!(
        post_to(&fake, "/v2/bot/message/push", to_alice).await.0,
        200
    );
}

#[tokio::test]
async fn only_friends_have_profiles_and_the_bot_has_info() {
    let fake = FakeLine::start().await.expect("fake");
    let get = |path: &str| {
        let url = format!("{}{path}", fake.url());
        async move {
            let r = reqwest::get(url).await.expect("get");
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, body) = get(&format!("/v2/bot/profile/{USER}")).await;
    assert_eq!((status, body), (404, json!({"message": "Not found"})));
    let dev = crate::cli::DEV_USER;
    assert_eq!(get(&format!("/v2/bot/profile/{dev}")).await.0, 200);

    fake.saw_event(&json!({"type": "follow", "source": {"type": "user", "userId": USER}}));
    let (status, profile) = get(&format!("/v2/bot/profile/{USER}")).await;
    assert_eq!((status, &profile["userId"]), (200, &json!(USER)));
    fake.saw_event(&json!({"type": "unfollow", "source": {"type": "user", "userId": USER}}));
    assert_eq!(get(&format!("/v2/bot/profile/{USER}")).await.0, 404);

    let (status, info) = get("/v2/bot/info").await;
    assert_eq!(status, 200);
    let bot_id = info["userId"].as_str().unwrap_or_default();
    assert!(validate::looks_like_id(bot_id, "U"), "{bot_id}");
    assert_eq!(info["basicId"], "@123abcde");
    assert_eq!(info["displayName"], "linebotd dev bot");
    assert_eq!(info["chatMode"], "bot");
    assert!(info["pictureUrl"]
        .as_str()
        .is_some_and(|u| u.starts_with("https://")));
}

#[tokio::test]
async fn an_armed_failure_answers_the_next_call_before_line() {
    let fake = FakeLine::start().await.expect("fake");
    fake.fail_next("reply", 400, "Invalid reply token")
        .expect("armed");
    let body = json!({"replyToken": "t1", "messages": [{"type": "text", "text": "hi"}]});
    let (status, answer) = post_to(&fake, "/v2/bot/message/reply", body.clone()).await;
    assert_eq!(
        (status, answer),
        (400, json!({"message": "Invalid reply token"}))
    );
    // The failure used no token: the same reply now goes through.
    assert_eq!(post_to(&fake, "/v2/bot/message/reply", body).await.0, 200);
}

#[tokio::test]
async fn knowing_everyone_accepts_stand_in_ids_but_still_judges_messages() {
    let fake = FakeLine::start().await.expect("fake");
    fake.know_everyone();
    let push = json!({"to": "U1", "messages": [{"type": "text", "text": "hi"}]});
    assert_eq!(post_to(&fake, "/v2/bot/message/push", push).await.0, 200);
    let profile = reqwest::get(format!("{}/v2/bot/profile/U9", fake.url()))
        .await
        .expect("get");
    assert_eq!(profile.status().as_u16(), 200);
    let empty = json!({"to": "U1", "messages": [{"type": "text", "text": ""}]});
    assert_eq!(post_to(&fake, "/v2/bot/message/push", empty).await.0, 400);
}
