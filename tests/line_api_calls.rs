//! The rest of the Messaging API as scripts reach it (`line_post` without a body, `line_put`,
//! `line_delete`, the data host, `content`, `silent`), checked against what LINE's OpenAPI spec
//! (`messaging-api.yml`) asks of each request: method, host, no body where the operation has no
//! `requestBody`, and the content type where it has one.

mod support;

use std::time::Duration;

use linebotd::line::{Content, LineClient, LineConfig, LineError};
use serde_json::json;
use support::daemon::{eventually, say, start_with_env, Scripts};
use support::mock_line::{MockContent, MockLine, Recorded};

const WAIT: Duration = Duration::from_secs(10);
const REPLY: &str = "/v2/bot/message/reply";
const MULTICAST: &str = "/v2/bot/message/multicast";

fn client(api: &MockLine, data: &MockLine, content_max_bytes: usize) -> LineClient {
    LineClient::new(LineConfig {
        rate_limit_per_sec: 0,
        content_max_bytes,
        ..LineConfig::new(api.url(), data.url(), "token")
    })
    .expect("client")
}

/// What LINE's spec asks of an operation without a `requestBody`: nothing to parse.
fn assert_bodiless(r: &Recorded, method: &str) {
    assert_eq!(r.method, method, "{}", r.path);
    assert!(r.raw_body.is_empty(), "{} {} sent a body", r.method, r.path);
    assert_eq!(r.header("content-type"), None, "{} {}", r.method, r.path);
    assert_eq!(r.header("content-length").unwrap_or("0"), "0");
}

#[tokio::test]
async fn operations_without_a_request_body_get_none() {
    let (api, data) = (MockLine::start().await, MockLine::start().await);
    let line = client(&api, &data, 1024);
    // POSTs the spec lists without a requestBody; LINE answers 415 to `{}` on these.
    for path in [
        "/v2/bot/user/U1/richmenu/rm1",
        "/v2/bot/user/all/richmenu/rm1",
        "/v2/bot/group/G1/leave",
        "/v2/bot/user/U1/linkToken",
    ] {
        line.post_empty(path).await.expect(path);
        assert_bodiless(&api.requests_to(path)[0], "POST");
    }
    for path in [
        "/v2/bot/richmenu/rm1",
        "/v2/bot/richmenu/alias/a1",
        "/v2/bot/user/U1/richmenu",
        "/v2/bot/user/all/richmenu",
    ] {
        line.delete(path).await.expect(path);
        assert_bodiless(&api.requests_to(path)[0], "DELETE");
    }
    assert!(data.recorded().is_empty(), "nothing goes to the data host");
}

#[tokio::test]
async fn put_sends_json_where_the_spec_has_a_body_and_nothing_where_it_has_none() {
    let (api, data) = (MockLine::start().await, MockLine::start().await);
    let line = client(&api, &data, 1024);
    let endpoint = json!({"endpoint": "https://bot.example.com/callback"});
    line.put("/v2/bot/channel/webhook/endpoint", Some(&endpoint))
        .await
        .expect("set webhook");
    let r = &api.requests_to("/v2/bot/channel/webhook/endpoint")[0];
    assert_eq!(r.method, "PUT");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.body, endpoint);

    // `PUT /v2/bot/coupon/{couponId}/close` has no requestBody.
    line.put("/v2/bot/coupon/C1/close", None)
        .await
        .expect("close coupon");
    assert_bodiless(&api.requests_to("/v2/bot/coupon/C1/close")[0], "PUT");
}

#[tokio::test]
async fn data_host_uploads_keep_their_bytes_and_content_type() {
    let (api, data) = (MockLine::start().await, MockLine::start().await);
    let line = client(&api, &data, 1024);
    let png = vec![0x89, b'P', b'N', b'G', 0, 0xff];
    line.post_data(
        "/v2/bot/richmenu/rm1/content",
        png.clone().into(),
        "image/png",
    )
    .await
    .expect("upload");
    let r = &data.requests_to("/v2/bot/richmenu/rm1/content")[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.header("content-type"), Some("image/png"));
    assert_eq!(r.raw_body, png);
    assert!(
        api.recorded().is_empty(),
        "uploads go to the data host only"
    );

    let bad = line
        .post_data("/v2/bot/richmenu/rm1/content", png.into(), "png\n")
        .await;
    assert!(matches!(bad, Err(LineError::BadContentType(_))), "{bad:?}");
}

#[tokio::test]
async fn data_host_downloads_are_binary_and_capped() {
    let (api, data) = (MockLine::start().await, MockLine::start().await);
    let jpeg: Vec<u8> = (0..=255).collect();
    data.set_content(
        "M1",
        MockContent::Ready {
            content_type: "image/jpeg".into(),
            bytes: jpeg.clone(),
        },
    );
    let line = client(&api, &data, 256);
    let got = line
        .get_data("/v2/bot/message/M1/content")
        .await
        .expect("get");
    assert_eq!(
        (got.status, got.content_type.as_deref()),
        (200, Some("image/jpeg"))
    );
    assert_eq!(got.bytes.as_ref(), jpeg.as_slice());
    let r = &data.requests_to("/v2/bot/message/M1/content")[0];
    assert_bodiless(r, "GET");

    // One byte over the cap: refused, and not asked again.
    let small = client(&api, &data, 255);
    let over = small.content("M1").await;
    assert!(
        matches!(over, Err(LineError::TooLarge { max: 255, .. })),
        "{over:?}"
    );
    assert_eq!(data.requests_to("/v2/bot/message/M1/content").len(), 2);
    assert_eq!(
        line.content("M1").await.ok(),
        Some(Content::Ready {
            content_type: Some("image/jpeg".into()),
            bytes: jpeg.into()
        })
    );
}

const SCRIPT: &str = r#"
fn on_message(event) {
    let said = event.message.text;
    if said == "menu" {
        line_post("/v2/bot/user/U1/richmenu/rm1");
        line_delete("/v2/bot/richmenu/alias/a1");
        line_put("/v2/bot/channel/webhook/endpoint", #{ endpoint: "https://bot.example.com/cb" });
        let blob = blob(3, 0x2a);
        line_post_data("/v2/bot/richmenu/rm1/content", blob, "image/jpeg");
        let image = line_get_data("/v2/bot/richmenu/rm1/content");
        reply(event, silent(text(`menu ${image.status}`)));
        push("U2", silent([text("quiet push")]));
        multicast(["U3", "U4"], silent("quiet multicast"));
    } else {
        let c = content(event);
        reply(event, `${c.type} ${c.size} ${c.blob[0]}`);
    }
}
"#;

#[tokio::test]
async fn scripts_reach_every_method_and_send_silently() {
    let mock = MockLine::start().await;
    let scripts = Scripts::new(&[("bot.rhai", SCRIPT)]);
    let d = start_with_env(scripts.path(), &mock.url(), &[]);
    assert_eq!(say(&d, "E1", "U1", "menu").await, 200);
    assert!(
        eventually(WAIT, || mock.accepted("/v2/bot/message/push").len() == 1).await,
        "{}",
        d.stderr.text()
    );
    assert_bodiless(&mock.requests_to("/v2/bot/user/U1/richmenu/rm1")[0], "POST");
    assert_bodiless(&mock.requests_to("/v2/bot/richmenu/alias/a1")[0], "DELETE");
    let put = &mock.requests_to("/v2/bot/channel/webhook/endpoint")[0];
    assert_eq!(
        (put.method.as_str(), put.header("content-type")),
        ("PUT", Some("application/json"))
    );
    let upload = &mock.requests_to("/v2/bot/richmenu/rm1/content")[0];
    assert_eq!(upload.header("content-type"), Some("image/jpeg"));
    assert_eq!(upload.raw_body, vec![0x2a; 3]);

    let reply = &mock.accepted(REPLY)[0];
    assert_eq!(reply.body["messages"][0]["text"], "menu 200");
    assert_eq!(reply.body["notificationDisabled"], true);
    let push = &mock.accepted("/v2/bot/message/push")[0];
    assert_eq!(push.body["notificationDisabled"], true);
    assert_eq!(push.body["messages"][0]["text"], "quiet push");
    assert!(
        eventually(WAIT, || mock.accepted(MULTICAST).len() == 1).await,
        "{}",
        d.stderr.text()
    );
    let multicast = &mock.accepted(MULTICAST)[0];
    assert_eq!(multicast.body["notificationDisabled"], true);
}

#[tokio::test]
async fn content_waits_out_lines_not_ready_answer() {
    let mock = MockLine::start().await;
    let path = "/v2/bot/message/m-C1/content";
    mock.set_content(
        "m-C1",
        MockContent::Ready {
            content_type: "video/mp4".into(),
            bytes: vec![7; 5],
        },
    );
    // LINE's 202 while the video is prepared, until the test sees the first ask.
    mock.respond(path, 202, json!({}));
    let scripts = Scripts::new(&[("bot.rhai", SCRIPT)]);
    let d = start_with_env(scripts.path(), &mock.url(), &[]);
    assert_eq!(say(&d, "C1", "U1", "a video").await, 200);
    assert!(
        eventually(WAIT, || !mock.requests_to(path).is_empty()).await,
        "{}",
        d.stderr.text()
    );
    mock.heal(path);
    assert!(
        eventually(WAIT, || mock.accepted(REPLY).len() == 1).await,
        "{}",
        d.stderr.text()
    );
    assert_eq!(
        mock.accepted(REPLY)[0].body["messages"][0]["text"],
        "video/mp4 5 7"
    );
    let asks = mock.requests_to(path);
    assert!(asks.len() >= 2, "{asks:?}");
    assert_eq!(asks[0].status, 202);
    assert!(asks
        .iter()
        .all(|r| r.method == "GET" && r.raw_body.is_empty()));
}

const NARROWCAST: &str = "/v2/bot/message/narrowcast";

const NARROWCAST_SCRIPT: &str = r#"
fn on_message(event) {
    let said = event.message.text;
    if said == "targeted" {
        narrowcast(
            silent("sale"),
            #{ type: "audience", audienceGroupId: 1234 },
            #{ demographic: #{ type: "gender", oneOf: ["female"] } },
            100,
        );
    } else if said == "everyone" {
        narrowcast("hello all");
    } else {
        let errors = [];
        for bad in [|| narrowcast("x", #{ audienceGroupId: 1 }, ()),
                    || narrowcast("x", (), #{ type: "gender" }),
                    || narrowcast("x", "audience", ()),
                    || narrowcast("x", (), (), 0)] {
            try { bad.call(); errors.push("sent"); } catch (e) { errors.push(e); }
        }
        reply(event, errors.reduce(|all, e| all + e + "\n", ""));
    }
}
"#;

/// `narrowcast` goes through the outbox like `push`: one request per call, with a retry key,
/// LINE's 202 taken as accepted, and the body the spec's `NarrowcastRequest` names (parts the
/// script left out are absent, not null).
#[tokio::test]
async fn narrowcast_is_queued_with_a_retry_key_and_the_specs_body() {
    let mock = MockLine::start().await;
    let scripts = Scripts::new(&[("bot.rhai", NARROWCAST_SCRIPT)]);
    let d = start_with_env(scripts.path(), &mock.url(), &[]);
    assert_eq!(say(&d, "N1", "U1", "targeted").await, 200);
    assert_eq!(say(&d, "N2", "U1", "everyone").await, 200);
    assert!(
        eventually(WAIT, || mock.accepted(NARROWCAST).len() == 2).await,
        "{}",
        d.stderr.text()
    );
    let sent = mock.accepted(NARROWCAST);
    let targeted = sent
        .iter()
        .find(|r| r.body["messages"][0]["text"] == "sale")
        .expect("the targeted narrowcast");
    assert_eq!(targeted.status, 202);
    assert_eq!(targeted.header("content-type"), Some("application/json"));
    assert!(targeted.retry_key().is_some_and(|k| k.len() == 36));
    assert_eq!(
        targeted.body,
        json!({
            "messages": [{"type": "text", "text": "sale"}],
            "recipient": {"type": "audience", "audienceGroupId": 1234},
            "filter": {"demographic": {"type": "gender", "oneOf": ["female"]}},
            "limit": {"max": 100},
            "notificationDisabled": true,
        })
    );
    let everyone = sent
        .iter()
        .find(|r| r.body["messages"][0]["text"] == "hello all")
        .expect("the narrowcast to everyone");
    assert_eq!(
        everyone.body,
        json!({"messages": [{"type": "text", "text": "hello all"}]})
    );
    assert_ne!(targeted.retry_key(), everyone.retry_key());
}

#[tokio::test]
async fn narrowcast_explains_a_bad_recipient_filter_or_limit() {
    let mock = MockLine::start().await;
    let scripts = Scripts::new(&[("bot.rhai", NARROWCAST_SCRIPT)]);
    let d = start_with_env(scripts.path(), &mock.url(), &[]);
    assert_eq!(say(&d, "N3", "U1", "bad").await, 200);
    assert!(
        eventually(WAIT, || mock.accepted(REPLY).len() == 1).await,
        "{}",
        d.stderr.text()
    );
    let text = mock.texts(REPLY).join("");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[0].contains("recipient needs type"), "{text}");
    assert!(lines[1].contains("filter is #{demographic"), "{text}");
    assert!(lines[2].contains("recipient must be a map or ()"), "{text}");
    assert!(
        lines[3].contains("limit is the most friends to reach"),
        "{text}"
    );
    assert!(mock.requests_to(NARROWCAST).is_empty());
}

/// A photo bigger than a script may hold as a blob (`limits.max_array_size`, 100,000 by
/// default) is an error `try` catches, naming the setting, so the bot can still answer.
#[tokio::test]
async fn content_too_big_for_a_script_is_a_catchable_error() {
    let mock = MockLine::start().await;
    mock.set_content(
        "m-big",
        MockContent::Ready {
            content_type: "image/jpeg".into(),
            bytes: vec![1; 200_000],
        },
    );
    let script = r#"
fn on_message(event) {
    try { let c = content(event); reply(event, `got ${c.size}`); }
    catch (e) { reply(event, `${e}`); }
}
"#;
    let scripts = Scripts::new(&[("bot.rhai", script)]);
    let d = start_with_env(scripts.path(), &mock.url(), &[]);
    assert_eq!(say(&d, "big", "U1", "a photo").await, 200);
    assert!(
        eventually(WAIT, || mock.accepted(REPLY).len() == 1).await,
        "{}",
        d.stderr.text()
    );
    let text = &mock.texts(REPLY)[0];
    assert!(
        text.starts_with("content: the answer is 200000 bytes, more than a script may hold as a blob (limits.max_array_size is 100000)"),
        "{text}"
    );
}
