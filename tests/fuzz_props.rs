//! The webhook body parser's properties that the `fuzz/` targets check, run on every `cargo test`
//! so CI exercises them: valid bodies round-trip, damaged ones never panic. (The signature's
//! properties sit beside it, in `src/pipeline/webhook/signature.rs`.)

use linebotd::pipeline::webhook::{parse_body, Event};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// The fields of one event the daemon reads, as a test puts them in.
#[derive(Debug, Clone)]
struct EventSpec {
    kind: String,
    webhook_event_id: Option<String>,
    reply_token: Option<String>,
    source: Option<SourceSpec>,
    mode: Option<String>,
    timestamp: Option<i64>,
    is_redelivery: Option<bool>,
    text: String,
}

#[derive(Debug, Clone)]
struct SourceSpec {
    kind: String,
    user_id: Option<String>,
    group_id: Option<String>,
    room_id: Option<String>,
}

impl EventSpec {
    /// The event as LINE would send it; an absent field is left out, not `null`.
    fn to_json(&self) -> Value {
        let mut event = Map::new();
        event.insert("type".into(), json!(self.kind));
        let mut put = |key: &str, value: Option<Value>| {
            if let Some(v) = value {
                event.insert(key.into(), v);
            }
        };
        put(
            "webhookEventId",
            self.webhook_event_id.clone().map(Value::from),
        );
        put("replyToken", self.reply_token.clone().map(Value::from));
        put("mode", self.mode.clone().map(Value::from));
        put("timestamp", self.timestamp.map(Value::from));
        put(
            "deliveryContext",
            self.is_redelivery.map(|r| json!({ "isRedelivery": r })),
        );
        put("source", self.source.as_ref().map(SourceSpec::to_json));
        put(
            "message",
            Some(json!({ "type": "text", "text": self.text })),
        );
        Value::Object(event)
    }

    fn assert_read_back(&self, event: &Event) {
        assert_eq!(event.kind, self.kind);
        assert_eq!(event.webhook_event_id, self.webhook_event_id);
        assert_eq!(event.reply_token, self.reply_token);
        assert_eq!(event.mode, self.mode);
        assert_eq!(event.timestamp, self.timestamp);
        assert_eq!(event.is_redelivery, self.is_redelivery.unwrap_or(false));
        match (&event.source, &self.source) {
            (None, None) => {}
            (Some(got), Some(put)) => {
                assert_eq!(got.kind, put.kind);
                assert_eq!(got.user_id, put.user_id);
                assert_eq!(got.group_id, put.group_id);
                assert_eq!(got.room_id, put.room_id);
                let chat = put.group_id.as_ref().or(put.room_id.as_ref());
                let chat = chat.or(put.user_id.as_ref()).map_or("", String::as_str);
                assert_eq!(event.conversation_key(), chat);
            }
            (got, put) => panic!("source read as {got:?}, put in as {put:?}"),
        }
        // Stored and handed to scripts exactly as sent.
        assert_eq!(event.raw.get(), self.to_json().to_string());
        assert_eq!(event.json(), self.to_json());
    }
}

impl SourceSpec {
    fn to_json(&self) -> Value {
        let mut source = Map::new();
        source.insert("type".into(), json!(self.kind));
        for (key, id) in [
            ("userId", &self.user_id),
            ("groupId", &self.group_id),
            ("roomId", &self.room_id),
        ] {
            if let Some(id) = id {
                source.insert(key.into(), json!(id));
            }
        }
        Value::Object(source)
    }
}

fn source() -> impl Strategy<Value = SourceSpec> {
    let id = || proptest::option::of("[UCR][0-9a-f]{1,32}");
    ("user|group|room", id(), id(), id()).prop_map(|(kind, user_id, group_id, room_id)| {
        SourceSpec {
            kind,
            user_id,
            group_id,
            room_id,
        }
    })
}

fn event() -> impl Strategy<Value = EventSpec> {
    // Any text, so escapes, emoji and control characters go through the parser too.
    let text = || any::<String>();
    (
        prop_oneof![text(), "[a-z][a-zA-Z]{0,16}"],
        proptest::option::of(text()),
        proptest::option::of(text()),
        proptest::option::of(source()),
        proptest::option::of(prop_oneof!["active", "standby", text()]),
        proptest::option::of(any::<i64>()),
        proptest::option::of(any::<bool>()),
        text(),
    )
        .prop_map(
            |(
                kind,
                webhook_event_id,
                reply_token,
                source,
                mode,
                timestamp,
                is_redelivery,
                text,
            )| {
                EventSpec {
                    kind,
                    webhook_event_id,
                    reply_token,
                    source,
                    mode,
                    timestamp,
                    is_redelivery,
                    text,
                }
            },
        )
}

fn body(destination: &Option<String>, events: &[EventSpec]) -> Vec<u8> {
    let mut body = Map::new();
    if let Some(d) = destination {
        body.insert("destination".into(), json!(d));
    }
    let events = events.iter().map(EventSpec::to_json).collect();
    body.insert("events".into(), Value::Array(events));
    serde_json::to_vec(&Value::Object(body)).expect("a JSON value serialises")
}

proptest! {
    #[test]
    fn valid_body_round_trips_its_events(
        destination in proptest::option::of("U[0-9a-f]{32}"),
        events in proptest::collection::vec(event(), 0..5),
    ) {
        let parsed = parse_body(&body(&destination, &events)).expect("a valid body parses");
        prop_assert_eq!(&parsed.destination, &destination);
        prop_assert_eq!(parsed.events.len(), events.len());
        for (got, put) in parsed.events.iter().zip(&events) {
            put.assert_read_back(got);
        }
    }

    /// Random bytes rarely get past the first JSON error; damaging a valid body reaches the
    /// event reading and depth checks behind it.
    #[test]
    fn damaged_valid_body_never_panics(
        events in proptest::collection::vec(event(), 1..3),
        damage in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut body = body(&None, &events);
        for (at, byte) in damage {
            let at = at.index(body.len());
            body[at] = byte;
        }
        let _ = parse_body(&body);
    }

    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = parse_body(&body);
    }
}
