use super::*;

#[test]
fn handler_names_follow_snake_case_of_line_types() {
    let cases = [
        ("message", "on_message"),
        ("unsend", "on_unsend"),
        ("follow", "on_follow"),
        ("unfollow", "on_unfollow"),
        ("join", "on_join"),
        ("leave", "on_leave"),
        ("memberJoined", "on_member_joined"),
        ("memberLeft", "on_member_left"),
        ("postback", "on_postback"),
        ("videoPlayComplete", "on_video_play_complete"),
        ("beacon", "on_beacon"),
        ("accountLink", "on_account_link"),
        ("membership", "on_membership"),
        ("module", "on_module"),
        ("activated", "on_activated"),
        ("deactivated", "on_deactivated"),
        ("botSuspended", "on_bot_suspended"),
        ("botResumed", "on_bot_resumed"),
        ("delivery", "on_delivery"),
        ("fooBar", "on_foo_bar"),
    ];
    for (t, h) in cases {
        assert_eq!(handler_name(t), h, "type {t}");
    }
    assert_eq!(KNOWN_EVENT_TYPES.len(), cases.len() - 1);
}

#[test]
fn weird_type_names_still_give_identifiers() {
    assert_eq!(handler_name("a-b.c"), "on_a_b_c");
    assert_eq!(handler_name("XMLThing"), "on_x_m_l_thing");
}

#[test]
fn conversation_key_prefers_group_then_room_then_user() {
    let ev =
        |src: Value| Event::from_value(serde_json::json!({"type":"message","source":src})).unwrap();
    assert_eq!(
        ev(serde_json::json!({"type":"group","groupId":"G","userId":"U"})).conversation_key(),
        "G"
    );
    assert_eq!(
        ev(serde_json::json!({"type":"room","roomId":"R","userId":"U"})).conversation_key(),
        "R"
    );
    assert_eq!(
        ev(serde_json::json!({"type":"user","userId":"U"})).conversation_key(),
        "U"
    );
}

#[test]
fn rejects_bodies_without_events() {
    assert!(matches!(parse_body(b"not json"), Err(ParseError::Json(_))));
    assert_eq!(parse_body(b"[]").err(), Some(ParseError::NoEvents));
    assert_eq!(
        parse_body(br#"{"destination":"U1"}"#).err(),
        Some(ParseError::NoEvents)
    );
    assert_eq!(
        parse_body(br#"{"events":{}}"#).err(),
        Some(ParseError::NoEvents)
    );
    assert_eq!(
        parse_body(br#"{"events":[{"no":"type"}]}"#).err(),
        Some(ParseError::BadEvent { index: 0 })
    );
    assert_eq!(
        parse_body(br#"{"events":[1]}"#).err(),
        Some(ParseError::BadEvent { index: 0 })
    );
    // Serde reads structs from arrays too; neither a body nor an event may be one.
    assert_eq!(
        parse_body(br#"[null, [{"type":"message"}]]"#).err(),
        Some(ParseError::NoEvents)
    );
    assert_eq!(
        parse_body(br#"{"events":[["message"]]}"#).err(),
        Some(ParseError::BadEvent { index: 0 })
    );
    assert_eq!(
        parse_body(br#"{"events":[{"type":7}]}"#).err(),
        Some(ParseError::BadEvent { index: 0 })
    );
}

#[test]
fn keeps_the_event_text_exactly_and_reads_odd_fields_as_absent() {
    let text = r#"{"type":"message", "mode":7,"timestamp":"x","source":{"type":"user","userId":"U\u0031"},"message":{"text":"\ud83e\udd28"}}"#;
    let body = parse_body(format!(r#"{{"events":[{text}]}}"#).as_bytes()).unwrap();
    let event = &body.events[0];
    assert_eq!(event.raw.get(), text);
    assert_eq!(event.mode, None);
    assert_eq!(event.timestamp, None);
    assert_eq!(event.conversation_key(), "U1");
    assert_eq!(event.json()["message"]["text"], "\u{1F928}");
}

#[test]
fn verify_button_body_has_no_events() {
    let body = parse_body(br#" {"destination":"Uxxx","events":[]}"#).unwrap();
    assert_eq!(body.destination.as_deref(), Some("Uxxx"));
    assert!(body.events.is_empty());
}

/// An event whose `message.data` nests `depth - 2` arrays: the event itself is level 1,
/// `message` level 2.
fn event_nested(depth: usize) -> String {
    let inner = depth - 2;
    format!(
        r#"{{"type":"message","source":{{"type":"user","userId":"U1"}},"message":{{"type":"text","text":"{{[\"","data":{}1{}}}}}"#,
        "[".repeat(inner),
        "]".repeat(inner)
    )
}

/// `tests/nested_events.rs` shows such an event reaches scripts as a map.
#[test]
fn event_at_the_depth_limit_is_kept() {
    let text = event_nested(MAX_EVENT_DEPTH);
    assert!(!nests_deeper_than(&text, MAX_EVENT_DEPTH));
    assert!(nests_deeper_than(&text, MAX_EVENT_DEPTH - 1));
    let body = parse_body(format!(r#"{{"events":[{text}]}}"#).as_bytes()).unwrap();
    assert_eq!(body.events.len(), 1);
}

#[test]
fn refuses_an_event_nested_deeper_than_the_limit() {
    let deep = event_nested(MAX_EVENT_DEPTH + 1);
    let body = format!(r#"{{"events":[{},{deep}]}}"#, event_nested(3));
    let err = parse_body(body.as_bytes()).unwrap_err();
    assert_eq!(err, ParseError::TooDeep { index: 1 });
    assert!(err.to_string().contains("64 levels"), "{err}");
}

#[test]
fn refuses_a_hundred_thousand_levels_without_overflowing_the_stack() {
    let levels = 100_000;
    let body = format!(
        r#"{{"events":[{{"type":"message","x":{}1{}}}]}}"#,
        "{\"a\":".repeat(levels),
        "}".repeat(levels)
    );
    assert_eq!(
        parse_body(body.as_bytes()).unwrap_err(),
        ParseError::TooDeep { index: 0 }
    );
}

#[test]
fn brackets_inside_strings_do_not_count_as_levels() {
    assert!(!nests_deeper_than(r#"{"a":"[[[{{{","b":"\"[["}"#, 1));
    assert!(nests_deeper_than(r#"{"a":"\\","b":[1]}"#, 1));
}

proptest::proptest! {
    #[test]
    fn parser_never_panics(body in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
        let _ = parse_body(&body);
    }

    #[test]
    fn parser_never_panics_on_json_like_text(body in r#"\{("events"|"type"|"source"|\[|\]|\{|\}|:|,|"x"|1|null|true)*"#) {
        let _ = parse_body(body.as_bytes());
    }
}
