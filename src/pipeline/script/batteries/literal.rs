//! Finds the regex patterns written as string literals (`matches(text, "a(b")`), so `check` and
//! loading report a bad one at its line instead of the first message that reaches it.
//!
//! rhai exposes no walk over the AST without its `internals` feature, so this reads the source
//! the way `source::quote_call_keys` does: comments and strings are skipped, and only a call
//! whose pattern argument is one plain literal (`"…"` or a back-tick string without `${`) is
//! checked. A pattern built at run time is checked when it runs.

/// The regex functions and which argument is the pattern when called as `f(text, pattern)`.
const FUNCTIONS: [&str; 3] = ["matches", "captures", "replace_regex"];

/// A literal pattern that does not compile.
#[derive(Debug, PartialEq, Eq)]
pub struct BadPattern {
    pub function: &'static str,
    /// 1-based line and column of the literal's opening quote.
    pub line: usize,
    pub col: usize,
    pub message: String,
}

/// Every bad literal pattern passed to a regex function in `source`, in source order.
pub fn bad_literal_patterns(source: &str) -> Vec<BadPattern> {
    let chars: Vec<char> = source.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '/' if chars.get(i + 1) == Some(&'/') => {
                i = skip_while(&chars, i, |c| c != '\n');
            }
            '/' if chars.get(i + 1) == Some(&'*') => i = skip_block_comment(&chars, i),
            '"' | '`' | '\'' => i = skip_string(&chars, i),
            c if is_name(c) => {
                let end = skip_while(&chars, i, is_name);
                let word: String = chars[i..end].iter().collect();
                if let Some(function) = FUNCTIONS.iter().find(|f| **f == word) {
                    let method = previous_significant(&chars, i) == Some('.');
                    if let Some((at, message)) = check_call(&chars, end, function, method) {
                        let before = &chars[..at];
                        found.push(BadPattern {
                            function,
                            line: before.iter().filter(|c| **c == '\n').count() + 1,
                            col: before.iter().rev().take_while(|c| **c != '\n').count() + 1,
                            message,
                        });
                    }
                }
                i = end;
            }
            _ => i += 1,
        }
    }
    found
}

/// Checks the call whose name ends at `at`: the pattern is the first argument of a method call
/// (`text.matches(p)`), else the second. A bad literal gives its index and what is wrong.
fn check_call(chars: &[char], at: usize, function: &str, method: bool) -> Option<(usize, String)> {
    let mut i = skip_while(chars, at, char::is_whitespace);
    if chars.get(i) != Some(&'(') {
        return None;
    }
    i += 1;
    if !method {
        i = skip_argument(chars, i)?;
        if chars.get(i) != Some(&',') {
            return None;
        }
        i += 1;
    }
    let start = skip_while(chars, i, char::is_whitespace);
    let (pattern, end) = string_literal(chars, start)?;
    let after = skip_while(chars, end, char::is_whitespace);
    if !matches!(chars.get(after), Some(',' | ')')) {
        return None; // `"a" + x`: not the whole argument
    }
    let message = super::regex::compile(&pattern).err()?;
    Some((start, format!("{function}: {message}")))
}

/// The index of the `,` or `)` that ends the argument starting at `i`.
fn skip_argument(chars: &[char], mut i: usize) -> Option<usize> {
    let mut depth = 0usize;
    while i < chars.len() {
        match chars[i] {
            '"' | '`' | '\'' => {
                i = skip_string(chars, i);
                continue;
            }
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' if depth == 0 => return Some(i),
            ')' | ']' | '}' => depth -= 1,
            ',' if depth == 0 => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// The value of a plain string literal at `i` and the index after it.
fn string_literal(chars: &[char], i: usize) -> Option<(String, usize)> {
    let quote = *chars.get(i)?;
    let mut out = String::new();
    let mut j = i + 1;
    match quote {
        // Back-tick strings take their text as written; one with `${` is built at run time.
        '`' => loop {
            match *chars.get(j)? {
                '`' => return Some((out, j + 1)),
                '$' if chars.get(j + 1) == Some(&'{') => return None,
                c => out.push(c),
            }
            j += 1;
        },
        '"' => loop {
            match *chars.get(j)? {
                '"' => return Some((out, j + 1)),
                '\\' => {
                    let (c, next) = escape(chars, j + 1)?;
                    out.extend(c);
                    j = next;
                    continue;
                }
                c => out.push(c),
            }
            j += 1;
        },
        _ => None,
    }
}

/// The character an escape stands for (none for a line continuation) and the index after it.
fn escape(chars: &[char], i: usize) -> Option<(Option<char>, usize)> {
    let hex = |len: usize| {
        let digits: String = chars.get(i + 1..i + 1 + len)?.iter().collect();
        let c = char::from_u32(u32::from_str_radix(&digits, 16).ok()?)?;
        Some((Some(c), i + 1 + len))
    };
    match *chars.get(i)? {
        'n' => Some((Some('\n'), i + 1)),
        't' => Some((Some('\t'), i + 1)),
        'r' => Some((Some('\r'), i + 1)),
        '0' => Some((Some('\0'), i + 1)),
        'x' => hex(2),
        'u' => hex(4),
        'U' => hex(8),
        '\n' => Some((None, skip_while(chars, i + 1, char::is_whitespace))),
        c => Some((Some(c), i + 1)),
    }
}

fn is_name(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn skip_while(chars: &[char], mut i: usize, keep: impl Fn(char) -> bool) -> usize {
    while i < chars.len() && keep(chars[i]) {
        i += 1;
    }
    i
}

fn previous_significant(chars: &[char], i: usize) -> Option<char> {
    chars[..i]
        .iter()
        .rev()
        .find(|c| !c.is_whitespace())
        .copied()
}

/// Index after the (nesting) block comment starting at `start`.
fn skip_block_comment(chars: &[char], start: usize) -> usize {
    let mut depth = 0;
    let mut i = start;
    while i + 1 < chars.len() {
        match (chars[i], chars[i + 1]) {
            ('/', '*') => {
                depth += 1;
                i += 2;
            }
            ('*', '/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    chars.len()
}

/// Index after the string or character literal starting at `start`.
fn skip_string(chars: &[char], start: usize) -> usize {
    let quote = chars[start];
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '\\' if quote != '`' => i += 2,
            c if c == quote => return i + 1,
            _ => i += 1,
        }
    }
    chars.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn positions(source: &str) -> Vec<(&'static str, usize, usize)> {
        bad_literal_patterns(source)
            .into_iter()
            .map(|b| (b.function, b.line, b.col))
            .collect()
    }

    #[test]
    fn finds_bad_literals_in_both_call_forms() {
        let src = "fn on_message(event) {\n    let t = event.message.text;\n    if matches(t, \"(oops\") {}\n    let c = t.captures(`[a-`);\n    let r = replace_regex(f(t, [1, 2]), \"a)\", \"b\");\n}\n";
        assert_eq!(
            positions(src),
            vec![
                ("matches", 3, 19),
                ("captures", 4, 24),
                ("replace_regex", 5, 41)
            ]
        );
        let bad = &bad_literal_patterns(src)[0];
        assert_eq!(
            bad.message,
            "matches: bad pattern \"(oops\" (argument pattern): unclosed group"
        );
    }

    #[test]
    fn leaves_good_built_and_hidden_patterns_alone() {
        for src in [
            "let ok = matches(\"a1\", \"^a\\\\d$\");",
            "let p = \"(\"; let x = matches(\"a\", p);",
            "let x = matches(\"a\", \"(\" + \")\");",
            "let x = matches(\"a\", `${1}(`);",
            "// matches(t, \"(\")\nlet s = \"matches(t, \\\"(\\\")\";",
            "/* captures(t, \"(\") */ let y = 1;",
            "let ok = replace_regex(\"a\", \"\\u0041+\", \"b\");",
        ] {
            assert!(positions(src).is_empty(), "{src}");
        }
    }

    #[test]
    fn decodes_escapes_before_compiling() {
        // "\\(" is the pattern \( (a literal parenthesis); "\(" would not compile in Rhai.
        assert!(positions("let x = matches(\"(a)\", \"\\\\(\");").is_empty());
        assert_eq!(positions("let x = matches(\"a\", \"\\\\\");").len(), 1);
    }
}
