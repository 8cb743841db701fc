//! `X-Line-Signature` verification: base64(HMAC-SHA256(channel secret, raw body)).
//!
//! Pure functions on bytes, so they can be unit-tested, fuzzed and benchmarked without a server.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

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
/// RustCrypto's `hmac` and `sha2`, as the project was specified: `verify_slice` compares in
/// constant time, and sha2 picks the CPU's SHA extensions at run time where there are any.
/// Every webhook pays for this check: `cargo bench --bench hot_paths -- signature` measures it.
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
    hmac(secret, body)
        .verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

/// Signs `body` the way LINE does. Used by `dev`/`chat`, the benchmark and tests.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    STANDARD.encode(hmac(secret, body).finalize().into_bytes())
}

/// The HMAC-SHA256 of `body` under `secret`, not yet finalised.
fn hmac(secret: &[u8], body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length (a longer one is hashed first), so whatever secret is
    // configured, this cannot fail.
    let mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.chain_update(body)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

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

    fn bytes(len: std::ops::Range<usize>) -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), len)
    }

    proptest! {
        #[test]
        fn never_panics_on_any_input(
            secret in bytes(0..80),
            body in bytes(0..512),
            header in proptest::option::of(bytes(0..100)),
        ) {
            let _ = verify(&secret, &body, header.as_deref());
        }

        #[test]
        fn own_signature_always_verifies(secret in bytes(0..80), body in bytes(0..512)) {
            let sig = sign(&secret, &body);
            prop_assert_eq!(verify(&secret, &body, Some(sig.as_bytes())), Ok(()));
        }

        #[test]
        fn any_flipped_body_byte_is_a_mismatch(
            body in bytes(1..512),
            at in any::<prop::sample::Index>(),
            flip in 1..=u8::MAX,
        ) {
            let sig = sign(SECRET, &body);
            let mut changed = body;
            let i = at.index(changed.len());
            changed[i] ^= flip;
            prop_assert_eq!(
                verify(SECRET, &changed, Some(sig.as_bytes())),
                Err(SignatureError::Mismatch)
            );
        }

        #[test]
        fn any_flipped_mac_byte_is_a_mismatch(
            body in bytes(0..512),
            at in 0..32usize,
            flip in 1..=u8::MAX,
        ) {
            let mut mac = STANDARD.decode(sign(SECRET, &body)).unwrap();
            mac[at] ^= flip;
            let sig = STANDARD.encode(mac);
            prop_assert_eq!(
                verify(SECRET, &body, Some(sig.as_bytes())),
                Err(SignatureError::Mismatch)
            );
        }

        /// A flip in the base64 text may give another letter, a non-letter, a space at either
        /// end (which is trimmed) or different padding: none of them may pass.
        #[test]
        fn any_flipped_header_byte_fails(
            body in bytes(0..512),
            at in 0..44usize,
            flip in 1..=u8::MAX,
        ) {
            let mut sig = sign(SECRET, &body).into_bytes();
            sig[at] ^= flip;
            prop_assert!(verify(SECRET, &body, Some(&sig)).is_err());
        }

        /// Text close to a real header (base64 letters, padding and spaces, about 44 characters)
        /// gets past the cheap checks into decoding and comparing.
        #[test]
        fn base64_like_headers_never_verify(
            body in bytes(0..64),
            header in "[ A-Za-z0-9+/=]{0,70}",
        ) {
            prop_assert!(verify(SECRET, &body, Some(header.as_bytes())).is_err());
        }
    }
}
