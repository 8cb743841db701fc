//! Each rule of the validator, with LINE's words and property paths.

use super::*;

const USER: &str = "U4af4980629a1b2c3d4e5f60718293a4b";

fn nobody(_: &str) -> bool {
    false
}

/// The `(property, message)` pairs of LINE's refusal of a push of `messages` to [`USER`].
fn push_details(messages: Value) -> Vec<(String, String)> {
    let body = json!({"to": USER, "messages": messages});
    let Some(refusal) = refusal("push", &body, &nobody) else {
        return Vec::new();
    };
    refusal["details"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            let field = |k: &str| d[k].as_str().unwrap_or_default().to_owned();
            (field("property"), field("message"))
        })
        .collect()
}

fn one(property: &str, message: &str) -> Vec<(String, String)> {
    vec![(property.to_owned(), message.to_owned())]
}

#[test]
fn accepts_every_message_type_with_its_required_fields() {
    let https = "https://example.com/a.jpg";
    let messages = json!([
        {"type": "text", "text": "hi"},
        {"type": "sticker", "packageId": "446", "stickerId": "1988"},
        {"type": "image", "originalContentUrl": https, "previewImageUrl": https},
        {"type": "location", "title": "Home", "address": "1-1", "latitude": 35.6, "longitude": 139.7},
        {"type": "flex", "altText": "menu", "contents": {"type": "bubble"}},
    ]);
    assert_eq!(push_details(messages), Vec::new());
    let more = json!([
        {"type": "video", "originalContentUrl": https, "previewImageUrl": https},
        {"type": "audio", "originalContentUrl": https, "duration": 1000},
        {"type": "template", "altText": "t", "template": {"type": "buttons"}},
        {"type": "imagemap", "baseUrl": https, "altText": "m", "baseSize": {}, "actions": []},
        {"type": "textV2", "text": "{a}"},
    ]);
    assert_eq!(push_details(more), Vec::new());
}

#[test]
fn a_made_up_type_lists_the_types_line_knows() {
    let details = push_details(json!([{"type": "gif", "url": "x"}]));
    assert_eq!(details.len(), 1);
    assert_eq!(details[0].0, "messages[0].type");
    assert!(details[0]
        .1
        .starts_with("must be one of the following values: [text, textV2, sticker"));
    assert_eq!(
        push_details(json!([{"text": "hi"}])),
        one("messages[0].type", "must be specified")
    );
}

#[test]
fn text_must_be_there_not_empty_and_at_most_5000_units() {
    assert_eq!(
        push_details(json!([{"type": "text"}])),
        one("messages[0].text", "must be specified")
    );
    assert_eq!(
        push_details(json!([{"type": "text", "text": "ok"}, {"type": "text", "text": ""}])),
        one("messages[1].text", "May not be empty")
    );
    let long = "😀".repeat(2501);
    assert_eq!(
        push_details(json!([{"type": "text", "text": long}])),
        one("messages[0].text", "Length must be between 1 and 5000")
    );
}

#[test]
fn media_urls_must_be_https_and_at_most_2000_characters() {
    let details = push_details(json!([{"type": "image",
        "originalContentUrl": "http://example.com/a.jpg",
        "previewImageUrl": format!("https://example.com/{}", "a".repeat(2000))}]));
    assert_eq!(
        details,
        vec![
            (
                "messages[0].originalContentUrl".to_owned(),
                "must be an HTTPS URL (https://…)".to_owned()
            ),
            (
                "messages[0].previewImageUrl".to_owned(),
                "Length must be between 1 and 2000".to_owned()
            ),
        ]
    );
    assert_eq!(
        push_details(json!([{"type": "video", "originalContentUrl": "https://x/v.mp4"}])),
        one("messages[0].previewImageUrl", "must be specified")
    );
}

#[test]
fn stickers_locations_and_alt_texts_need_their_fields() {
    assert_eq!(
        push_details(json!([{"type": "sticker", "packageId": "1"}])),
        one("messages[0].stickerId", "must be specified")
    );
    assert_eq!(
        push_details(json!([{"type": "location", "title": "t", "address": "a",
                              "latitude": "35", "longitude": 1}])),
        one("messages[0].latitude", "must be a number")
    );
    assert_eq!(
        push_details(json!([{"type": "flex", "altText": "a".repeat(401), "contents": {}}])),
        one("messages[0].altText", "Length must be between 1 and 400")
    );
    assert_eq!(
        push_details(json!([{"type": "template", "altText": "a"}])),
        one("messages[0].template", "must be specified")
    );
}

#[test]
fn one_to_five_messages_and_at_most_13_quick_replies() {
    let text = json!({"type": "text", "text": "x"});
    assert_eq!(
        push_details(json!(vec![text.clone(); 6])),
        one("messages", "Size must be between 1 and 5")
    );
    assert_eq!(
        push_details(json!([])),
        one("messages", "Size must be between 1 and 5")
    );
    let items = vec![json!({"type": "action"}); 14];
    assert_eq!(
        push_details(json!([{"type": "text", "text": "x", "quickReply": {"items": items}}])),
        one(
            "messages[0].quickReply.items",
            "Size must be between 1 and 13"
        )
    );
}

#[test]
fn every_problem_is_counted_in_the_message() {
    let body = json!({"messages": [{"type": "text", "text": ""}, {"type": "nope"}]});
    let refusal = refusal("reply", &body, &nobody).expect("refused");
    assert_eq!(refusal["message"], "The request body has 3 error(s)");
    assert_eq!(refusal["details"][0]["property"], "replyToken");
    assert_eq!(refusal["details"][1]["property"], "messages[0].text");
    assert_eq!(refusal["details"][2]["property"], "messages[1].type");
}

#[test]
fn recipients_must_look_like_line_ids_unless_known() {
    let messages = json!([{"type": "text", "text": "x"}]);
    let push = |to: Value, known: &dyn Fn(&str) -> bool| {
        refusal("push", &json!({"to": to, "messages": messages}), known)
    };
    assert_eq!(push(json!(USER), &nobody), None);
    assert_eq!(
        push(json!("C4af4980629a1b2c3d4e5f60718293a4b"), &nobody),
        None
    );
    assert_eq!(
        push(json!("Alice"), &nobody),
        Some(
            json!({"message": "The property, 'to', in the request body is invalid (line: -, column: -)"})
        )
    );
    assert_eq!(push(json!("U1"), &|id| id == "U1"), None);
    assert!(push(json!(USER.to_uppercase()), &nobody).is_some());

    let multicast = |to: Value| {
        refusal(
            "multicast",
            &json!({"to": to, "messages": messages}),
            &nobody,
        )
    };
    assert_eq!(multicast(json!([USER])), None);
    let group = "C4af4980629a1b2c3d4e5f60718293a4b";
    assert!(multicast(json!([USER, group])).expect("refused")["message"]
        .as_str()
        .is_some_and(|m| m.contains("'to[1]'")));
    assert_eq!(
        multicast(json!([])).expect("refused")["details"][0],
        json!({"property": "to", "message": "Size must be between 1 and 500"})
    );
    assert_eq!(
        multicast(json!(vec![USER; 501])).expect("refused")["details"][0]["property"],
        "to"
    );
}

#[test]
fn broadcasts_need_only_messages_and_a_body_must_be_json() {
    let body = json!({"messages": [{"type": "text", "text": "x"}]});
    assert_eq!(refusal("broadcast", &body, &nobody), None);
    assert_eq!(refusal("narrowcast", &body, &nobody), None);
    assert_eq!(
        refusal("broadcast", &json!({}), &nobody).expect("refused")["details"][0]["property"],
        "messages"
    );
    assert!(refusal("push", &Value::Null, &nobody).is_some());
}
