//! `X-Line-Signature` verification: base64(HMAC-SHA256(channel secret, raw body)).
//!
//! Pure functions on bytes, so they can be unit-tested, fuzzed and benchmarked without a server.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ring::hmac;

/// Why a webhook's signature was not accepted. Never carries the secret or the signature value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("X-Line-Signature header is missing")]
    Missing,
    #[error("X-Line-Signature is not valid base64 of a 32-byte HMAC")]
    Malformed,
    #[error(
        "X-Line-Signature does not match the body (wrong channel secret, or the body was changed)"
    )]
    Mismatch,
}

/// Verifies `signature` (the header value) against the raw `body`.
///
/// The comparison is constant-time (`ring::hmac::verify`). ring's assembly SHA-256 is about twice
/// as fast as the `sha2` crate's portable one on CPUs without SHA extensions, and every webhook
/// pays for it (`cargo bench --bench hot_paths -- signature`).
pub fn verify(secret: &[u8], body: &[u8], signature: Option<&[u8]>) -> Result<(), SignatureError> {
    let signature = match signature {
        None => return Err(SignatureError::Missing),
        Some(s) if s.trim_ascii().is_empty() => return Err(SignatureError::Missing),
        Some(s) => s.trim_ascii(),
    };
    // A SHA-256 HMAC is 32 bytes = 44 base64 characters; anything longer is not worth decoding.
    if signature.len() > 64 {
        return Err(SignatureError::Malformed);
    }
    let expected = STANDARD
        .decode(signature)
        .map_err(|_| SignatureError::Malformed)?;
    if expected.len() != 32 {
        return Err(SignatureError::Malformed);
    }
    hmac::verify(&key(secret), body, &expected).map_err(|_| SignatureError::Mismatch)
}

/// Signs `body` the way LINE does. Used by `dev`/`chat`, the benchmark and tests.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    STANDARD.encode(hmac::sign(&key(secret), body))
}

fn key(secret: &[u8]) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA256, secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"test_secret";

    #[test]
    fn known_vector_from_line_docs() {
        let body = br#"{"hello":"world"}"#;
        assert_eq!(
            sign(SECRET, body),
            "t7Hn4ZDHqs6e+wdvI5TyQIvzie0DmMUmuXEBqyyE/tM="
        );
        let sig = b"t7Hn4ZDHqs6e+wdvI5TyQIvzie0DmMUmuXEBqyyE/tM=";
        assert_eq!(verify(SECRET, body, Some(sig)), Ok(()));
    }

    #[test]
    fn verifies_raw_bytes_with_escaped_emoji_not_reserialized_json() {
        // LINE signs the bytes it sent; re-serialising would turn \uD83E\uDD28 into raw UTF-8.
        let body =
            br#"{"events":[{"type":"message","message":{"type":"text","text":"\uD83E\uDD28"}}]}"#;
        let sig = sign(SECRET, body);
        assert_eq!(verify(SECRET, body, Some(sig.as_bytes())), Ok(()));
        let reparsed: serde_json::Value = serde_json::from_slice(body).unwrap();
        let reserialized = serde_json::to_vec(&reparsed).unwrap();
        assert_ne!(reserialized.as_slice(), body.as_slice());
        assert_eq!(
            verify(SECRET, &reserialized, Some(sig.as_bytes())),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn rejects_body_signed_with_other_secret() {
        let body = br#"{"events":[]}"#;
        let sig = sign(b"other_secret", body);
        assert_eq!(
            verify(SECRET, body, Some(sig.as_bytes())),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn rejects_changed_body() {
        let sig = sign(SECRET, br#"{"events":[]}"#);
        assert_eq!(
            verify(SECRET, br#"{"events":[ ]}"#, Some(sig.as_bytes())),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn rejects_truncated_and_garbage_base64() {
        let body = br#"{"hello":"world"}"#;
        let good = "t7Hn4ZDHqs6e+wdvI5TyQIvzie0DmMUmuXEBqyyE/tM=";
        assert_eq!(
            verify(SECRET, body, Some(&good.as_bytes()[..20])),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(SECRET, body, Some(b"!!!not base64!!!")),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(SECRET, body, Some(&[0xff, 0xfe, 0x00])),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(SECRET, body, Some(&[b'A'; 4096])),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn empty_or_missing_header_is_missing() {
        let body = b"{}";
        assert_eq!(verify(SECRET, body, None), Err(SignatureError::Missing));
        assert_eq!(
            verify(SECRET, body, Some(b"")),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify(SECRET, body, Some(b"   ")),
            Err(SignatureError::Missing)
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_any_input(secret in proptest::collection::vec(proptest::num::u8::ANY, 0..80),
                                     body in proptest::collection::vec(proptest::num::u8::ANY, 0..512),
                                     header in proptest::option::of(proptest::collection::vec(proptest::num::u8::ANY, 0..100))) {
            let _ = verify(&secret, &body, header.as_deref());
        }

        #[test]
        fn own_signature_always_verifies(secret in proptest::collection::vec(proptest::num::u8::ANY, 0..80),
                                         body in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let sig = sign(&secret, &body);
            proptest::prop_assert_eq!(verify(&secret, &body, Some(sig.as_bytes())), Ok(()));
        }
    }
}
