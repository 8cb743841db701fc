//! Source fix-ups applied before compiling, so scripts can be written the way the docs show.

use std::borrow::Cow;

/// Quotes the map key `call` (`#{ cron: "0 9 * * *", call: "morning" }`): `call` is a reserved
/// word in Rhai, so without this the schedule syntax of the docs would not compile. Only a
/// `call` that follows `{` or `,` and is followed by `:` is touched, never one inside a string
/// or a comment. Columns after it on the same line shift by two in error messages.
pub fn quote_call_keys(source: &str) -> Cow<'_, str> {
    if !source.contains("call") {
        return Cow::Borrowed(source);
    }
    let bytes = source.as_bytes();
    let mut out = String::with_capacity(source.len() + 16);
    let mut last_significant = 0u8;
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i = source[i..].find('\n').map_or(bytes.len(), |n| i + n);
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = skip_block_comment(bytes, i);
                continue;
            }
            b'"' | b'`' | b'\'' => {
                i = skip_string(bytes, i, b);
                last_significant = b;
                continue;
            }
            b'c' if bytes[i..].starts_with(b"call")
                && matches!(last_significant, b'{' | b',')
                && !bytes
                    .get(i + 4)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_') =>
            {
                let rest = &source[i + 4..];
                let after = rest.trim_start();
                if after.starts_with(':') && !after.starts_with("::") {
                    out.push_str(&source[copied..i]);
                    out.push_str("\"call\"");
                    i += 4;
                    copied = i;
                    last_significant = b'"';
                    continue;
                }
            }
            _ => {}
        }
        if !b.is_ascii_whitespace() {
            last_significant = b;
        }
        i += 1;
    }
    if copied == 0 {
        return Cow::Borrowed(source);
    }
    out.push_str(&source[copied..]);
    Cow::Owned(out)
}

/// Index after the block comment starting at `start` (Rhai block comments nest).
fn skip_block_comment(bytes: &[u8], start: usize) -> usize {
    let mut depth = 0;
    let mut i = start;
    while i + 1 < bytes.len() {
        match (bytes[i], bytes[i + 1]) {
            (b'/', b'*') => {
                depth += 1;
                i += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    bytes.len()
}

/// Index after the string or character literal opened by `quote` at `start`.
fn skip_string(bytes: &[u8], start: usize, quote: u8) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            c if c == quote => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_call_keys_in_maps_only() {
        let src =
            "const SCHEDULES = [#{ cron: \"0 9 * * *\", call: \"morning\" },\n  #{call : \"x\"}];";
        assert_eq!(
            quote_call_keys(src),
            "const SCHEDULES = [#{ cron: \"0 9 * * *\", \"call\": \"morning\" },\n  #{\"call\" : \"x\"}];"
        );
    }

    #[test]
    fn leaves_strings_comments_and_other_uses_alone() {
        for src in [
            "let s = \"#{ call: 1 }\";",
            "// #{ call: 1 }\nlet x = 1;",
            "/* #{ /* nested */ call: 1 } */ let x = 1;",
            "let f = Fn(\"a\"); f.call(1);",
            "let m = #{ caller: 1, recall: 2 };",
            "fn f(a, call) { }",
            "let x = `#{call: 1}`;",
        ] {
            assert_eq!(quote_call_keys(src), src, "{src}");
        }
    }
}
