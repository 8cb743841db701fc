//! An event nested deeper than a script map can hold is refused with 400 before it is stored,
//! so no handler ever receives `()` in place of an event (real binary, signed bodies).

mod support;

use std::time::Duration;

use support::daemon::{start_with_env, text_event_body, Scripts};
use support::mock_line::MockLine;

/// Pushes what it received, map or not, so a handler that got `()` would show.
const WATCH: &str = r#"
fn on_message(e) {
    let got = if type_of(e) == "map" { e.message.text } else { type_of(e) };
    push("Uwatch", "ran: " + got);
}
"#;

#[tokio::test]
async fn deeply_nested_event_is_refused_with_400_and_no_handler_runs() {
    let mock = MockLine::start().await;
    let scripts = Scripts::new(&[("watch.rhai", WATCH)]);
    let d = start_with_env(scripts.path(), &mock.url(), &[]);
    let client = reqwest::Client::new();

    let levels = 100_000;
    let deep = format!(
        r#"{{"destination":"Ubot","events":[{{"type":"message","mode":"active","timestamp":1700000000000,"webhookEventId":"deep","deliveryContext":{{"isRedelivery":false}},"replyToken":"rt-deep","source":{{"type":"user","userId":"Udeep"}},"message":{{"id":"m-deep","type":"text","text":"deep","x":{}1{}}}}}]}}"#,
        r#"{"a":"#.repeat(levels),
        "}".repeat(levels)
    );
    let answer = client
        .post(d.url("/callback"))
        .header("content-type", "application/json")
        .header("x-line-signature", support::daemon::sign(deep.as_bytes()))
        .body(deep)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 400);
    let error: serde_json::Value = answer.json().await.unwrap();
    let message = error["error"].as_str().unwrap_or_default();
    assert!(message.contains("64 levels"), "{error}");

    // The same conversation's next event runs; had the deep one been stored, its handler
    // would have run first.
    let after = text_event_body("after", "Udeep", "after");
    assert_eq!(
        support::daemon::post_signed(&client, &d.url("/callback"), &after).await,
        200
    );
    assert!(mock.wait_for(1, Duration::from_secs(10)).await);
    assert_eq!(mock.texts("/v2/bot/message/push"), ["ran: after"]);
}

/// An event nested exactly as deep as the limit is kept, and reaches scripts as a map.
#[test]
fn an_event_at_the_depth_limit_reaches_scripts_as_a_map() {
    use linebotd::pipeline::webhook::{event::MAX_EVENT_DEPTH, parse_body};
    // The event is level 1, `message` level 2, then `depth - 2` nested arrays.
    let inner = MAX_EVENT_DEPTH - 2;
    let event = format!(
        r#"{{"type":"message","source":{{"type":"user","userId":"U1"}},"message":{{"type":"text","text":"hi","data":{}1{}}}}}"#,
        "[".repeat(inner),
        "]".repeat(inner)
    );
    let body = parse_body(format!(r#"{{"events":[{event}]}}"#).as_bytes()).expect("kept");
    let value = linebotd::pipeline::script::host::from_json_text(body.events[0].raw.get());
    assert!(value.is_map(), "scripts would get {}", value.type_name());
}
