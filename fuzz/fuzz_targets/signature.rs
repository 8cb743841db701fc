//! `X-Line-Signature` verification on arbitrary secrets, bodies and header bytes: it must never
//! panic, must accept what `sign` produced, and may accept nothing else.

#![no_main]

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use linebotd::pipeline::webhook::{sign, verify};

fuzz_target!(|input: (&[u8], &[u8], Option<&[u8]>)| {
    let (secret, body, header) = input;
    let own = sign(secret, body);
    assert_eq!(verify(secret, body, Some(own.as_bytes())), Ok(()));
    if verify(secret, body, header).is_ok() {
        // Spaces around it aside, an accepted header is the body's own signature.
        let header = header.unwrap_or_default().trim_ascii();
        assert_eq!(STANDARD.decode(header).ok(), STANDARD.decode(&own).ok());
    }
});
