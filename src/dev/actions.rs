//! The buttons of the bot's messages in `linebotd chat`: every action a user could tap (template
//! buttons, flex buttons, quick replies, imagemap areas), numbered, and the event a tap sends.

use serde_json::{json, Value};

use super::events;

/// Every action in `message`, in the order the message holds them: template `actions` (and
/// carousel columns), flex components' `action`, quick-reply items, imagemap areas.
pub fn actions_of(message: &Value) -> Vec<Value> {
    let mut found = Vec::new();
    collect(message, &mut found);
    found
}

fn is_action(value: &Value) -> bool {
    value.get("type").and_then(Value::as_str).is_some()
        && ["label", "data", "text", "uri", "linkUri"]
            .iter()
            .any(|k| value.get(*k).is_some())
}

fn collect(value: &Value, found: &mut Vec<Value>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                match (key.as_str(), child) {
                    ("action" | "defaultAction", a) if is_action(a) => found.push(a.clone()),
                    ("actions", Value::Array(items)) => {
                        for item in items {
                            if is_action(item) {
                                found.push(item.clone());
                            }
                            collect(item, found);
                        }
                    }
                    _ => collect(child, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect(item, found)),
        _ => {}
    }
}

/// `Coffee → postback drink=coffee`.
pub fn describe(action: &Value) -> String {
    let field = |k: &str| action.get(k).and_then(Value::as_str);
    let kind = field("type").unwrap_or("?");
    let what = match kind {
        "message" => format!("says {:?}", field("text").unwrap_or("")),
        "postback" => format!("postback {}", field("data").unwrap_or("")),
        "datetimepicker" => format!(
            "{} picker, postback {}",
            field("mode").unwrap_or("datetime"),
            field("data").unwrap_or("")
        ),
        "uri" => format!("opens {}", field("uri").or(field("linkUri")).unwrap_or("")),
        other => other.to_owned(),
    };
    let label = field("label")
        .or(field("text"))
        .or(field("data"))
        .unwrap_or(kind);
    format!("{label} → {what}")
}

/// What tapping an action does: an event for the bot, with what the user would see in the
/// chat, or only a note (a link opens in the browser, which the terminal cannot do).
#[derive(Debug, PartialEq)]
pub enum Tap {
    Event { event: Value, shows: Option<String> },
    Note(String),
}

/// The tap of `action` by `user`; `value` answers a date/time picker (`2026-12-01`, `09:30`,
/// `2026-12-01T09:30`; its initial value, or now, when absent).
pub fn tap(action: &Value, user: &str, value: Option<&str>) -> Tap {
    let field = |k: &str| action.get(k).and_then(Value::as_str);
    let shows = field("displayText").or(field("text")).map(str::to_owned);
    match field("type").unwrap_or("") {
        "message" => {
            let text = field("text").unwrap_or("");
            Tap::Event {
                event: events::text(user, text),
                shows: Some(text.to_owned()),
            }
        }
        "postback" => Tap::Event {
            event: events::postback(user, field("data").unwrap_or("")),
            shows,
        },
        "datetimepicker" => {
            let mode = field("mode").unwrap_or("datetime");
            let now = chrono::Local::now();
            let default = match mode {
                "date" => now.format("%Y-%m-%d").to_string(),
                "time" => now.format("%H:%M").to_string(),
                _ => now.format("%Y-%m-%dT%H:%M").to_string(),
            };
            let chosen = value
                .map(str::to_owned)
                .or(field("initial").map(str::to_owned))
                .unwrap_or(default);
            let mut event = events::postback(user, field("data").unwrap_or(""));
            event["postback"]["params"] = json!({ mode: chosen });
            Tap::Event { event, shows: None }
        }
        "richmenuswitch" => {
            let mut event = events::postback(user, field("data").unwrap_or(""));
            event["postback"]["params"] =
                json!({"newRichMenuAliasId": field("richMenuAliasId").unwrap_or("")});
            Tap::Event { event, shows: None }
        }
        "uri" => Tap::Note(format!(
            "(opens {} in the browser)",
            field("uri").or(field("linkUri")).unwrap_or("")
        )),
        "clipboard" => Tap::Note(format!(
            "(copies {:?})",
            field("clipboardText").unwrap_or("")
        )),
        "camera" | "cameraRoll" => {
            Tap::Note("(opens the camera; send a picture with /image)".to_owned())
        }
        "location" => Tap::Note("(opens the map; send a place with /location)".to_owned()),
        other => Tap::Note(format!("(a {other} action does nothing here)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_actions_of_templates_flex_quick_replies_and_imagemaps() {
        let template = json!({"type": "template", "altText": "menu", "template": {"type": "buttons",
            "text": "pick", "actions": [
                {"type": "postback", "label": "Tea", "data": "drink=tea", "displayText": "Tea please"},
                {"type": "uri", "label": "Site", "uri": "https://example.com"}]}});
        let labels: Vec<String> = actions_of(&template).iter().map(describe).collect();
        assert_eq!(
            labels,
            [
                "Tea → postback drink=tea",
                "Site → opens https://example.com"
            ]
        );

        let flex = json!({"type": "flex", "altText": "card", "contents": {"type": "bubble",
            "footer": {"type": "box", "layout": "vertical", "contents": [
                {"type": "button", "action": {"type": "message", "label": "Yes", "text": "yes"}}]}},
            "quickReply": {"items": [{"type": "action", "action": {"type": "datetimepicker",
                "label": "When", "data": "when", "mode": "date"}}]}});
        let labels: Vec<String> = actions_of(&flex).iter().map(describe).collect();
        assert_eq!(
            labels,
            ["Yes → says \"yes\"", "When → date picker, postback when"]
        );

        let imagemap = json!({"type": "imagemap", "actions": [
            {"type": "message", "text": "left", "area": {"x": 0, "y": 0, "width": 520, "height": 1040}}]});
        assert_eq!(actions_of(&imagemap).len(), 1);
        assert!(actions_of(&json!({"type": "text", "text": "hi"})).is_empty());
    }

    #[test]
    fn a_tap_sends_what_line_would() {
        let post = json!({"type": "postback", "label": "Tea", "data": "drink=tea", "displayText": "Tea please"});
        let Tap::Event { event, shows } = tap(&post, "U1", None) else {
            panic!("postback")
        };
        assert_eq!(event["postback"]["data"], "drink=tea");
        assert_eq!(event["source"]["userId"], "U1");
        assert_eq!(shows.as_deref(), Some("Tea please"));

        let say = json!({"type": "message", "label": "Yes", "text": "yes"});
        let Tap::Event { event, .. } = tap(&say, "U1", None) else {
            panic!("message")
        };
        assert_eq!(event["message"]["text"], "yes");

        let pick = json!({"type": "datetimepicker", "data": "when", "mode": "date"});
        let Tap::Event { event, .. } = tap(&pick, "U1", Some("2026-12-24")) else {
            panic!("picker")
        };
        assert_eq!(event["postback"]["params"], json!({"date": "2026-12-24"}));

        let link = json!({"type": "uri", "label": "Site", "uri": "https://example.com"});
        assert_eq!(
            tap(&link, "U1", None),
            Tap::Note("(opens https://example.com in the browser)".into())
        );
    }
}
