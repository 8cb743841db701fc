//! The webhook body parser on arbitrary bytes: it must never panic, and every event it accepts
//! must read back the same from the text that is stored for it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use linebotd::pipeline::webhook::{parse_body, Event};

fuzz_target!(|body: &[u8]| {
    let Ok(parsed) = parse_body(body) else {
        return;
    };
    for event in parsed.events {
        // What the inbox stores is `raw`; the feeder reads it back with `from_json`.
        let stored = Event::from_json(event.raw.get()).expect("a stored event reads back");
        assert_eq!(stored.kind, event.kind);
        assert_eq!(stored.webhook_event_id, event.webhook_event_id);
        assert_eq!(stored.conversation_key(), event.conversation_key());
    }
});
