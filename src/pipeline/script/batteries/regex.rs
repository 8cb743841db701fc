//! Text patterns: `matches`, `captures` and `replace_regex`, with the `regex` crate.
//!
//! The `regex` crate runs in time linear in the text, so no pattern can hang a handler; the size
//! limits below stop a pattern like `\w{1000}{1000}` from taking the memory instead. Compiled
//! patterns are kept in one bounded cache shared by every script on the engine: a handler that
//! matches the same literal pattern on every message compiles it once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use regex::{Regex, RegexBuilder};
use rhai::{Array, Dynamic, Engine};

use super::{error, BatteryResult};

/// Most memory one compiled pattern may take (the regex crate's default is 10 MiB).
pub const SIZE_LIMIT: usize = 1 << 20;
/// Most memory the lazy DFA of one pattern may grow to while matching.
pub const DFA_SIZE_LIMIT: usize = 1 << 20;
/// Patterns kept compiled. Beyond it the cache starts over: scripts use a handful of literal
/// patterns, and a script building patterns from user text must not grow it without end.
const CACHE_CAPACITY: usize = 256;

/// Compiled patterns by their text.
#[derive(Default)]
pub struct Cache(Mutex<HashMap<String, Regex>>);

impl Cache {
    /// The compiled `pattern`, or an error for `function` that names the pattern.
    pub fn get(&self, function: &str, pattern: &str) -> BatteryResult<Regex> {
        // A poisoned lock only means another thread panicked mid-insert; the map is still sound.
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(re) = map.get(pattern) {
            return Ok(re.clone());
        }
        let re = compile(pattern).map_err(|why| error(function, why))?;
        if map.len() >= CACHE_CAPACITY {
            map.clear();
        }
        map.insert(pattern.to_owned(), re.clone());
        Ok(re)
    }
}

/// Compiles `pattern` under the size limits; the error says what is wrong with it.
pub fn compile(pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .size_limit(SIZE_LIMIT)
        .dfa_size_limit(DFA_SIZE_LIMIT)
        .build()
        .map_err(|e| {
            let why = match &e {
                regex::Error::CompiledTooBig(limit) => format!(
                    "it compiles to more than {} KiB; use a smaller pattern (fewer or smaller repetitions)",
                    limit / 1024
                ),
                // The syntax message draws the pattern with a caret; its last line says what.
                other => other
                    .to_string()
                    .lines()
                    .rev()
                    .find_map(|l| l.trim().strip_prefix("error: ").map(str::to_owned))
                    .unwrap_or_else(|| other.to_string()),
            };
            format!("bad pattern {pattern:?} (argument pattern): {why}")
        })
}

pub fn register(engine: &mut Engine) {
    let cache = Arc::new(Cache::default());
    let c = Arc::clone(&cache);
    engine.register_fn("matches", move |text: &str, pattern: &str| {
        Ok::<_, Box<rhai::EvalAltResult>>(c.get("matches", pattern)?.is_match(text))
    });
    let c = Arc::clone(&cache);
    engine.register_fn("captures", move |text: &str, pattern: &str| {
        captures(&c.get("captures", pattern)?, text)
    });
    engine.register_fn(
        "replace_regex",
        move |text: &str, pattern: &str, with: &str| {
            let re = cache.get("replace_regex", pattern)?;
            Ok::<_, Box<rhai::EvalAltResult>>(re.replace_all(text, with).into_owned())
        },
    );
}

/// The groups of the first match (group 0 is the whole match, a group that took no part is
/// `()`), or `()` when the pattern does not match.
fn captures(re: &Regex, text: &str) -> BatteryResult<Dynamic> {
    let Some(found) = re.captures(text) else {
        return Ok(Dynamic::UNIT);
    };
    let groups: Array = found
        .iter()
        .map(|g| g.map_or(Dynamic::UNIT, |m| Dynamic::from(m.as_str().to_owned())))
        .collect();
    Ok(Dynamic::from_array(groups))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_gives_groups_with_unit_for_the_unmatched() {
        let re = compile(r"(\d+)(x)?").unwrap();
        let groups = captures(&re, "order 42 now").unwrap().into_array().unwrap();
        assert_eq!(groups.len(), 3);
        assert_eq!(groups[0].clone().into_string().unwrap(), "42");
        assert_eq!(groups[1].clone().into_string().unwrap(), "42");
        assert!(groups[2].is_unit());
        assert!(captures(&re, "no digits").unwrap().is_unit());
    }

    #[test]
    fn a_bad_pattern_is_named_with_what_is_wrong() {
        let e = compile("(unclosed").unwrap_err();
        assert_eq!(
            e,
            "bad pattern \"(unclosed\" (argument pattern): unclosed group"
        );
        let e = Cache::default()
            .get("matches", "a[")
            .unwrap_err()
            .to_string();
        assert!(e.contains("matches: bad pattern \"a[\""), "{e}");
    }

    #[test]
    fn a_pattern_too_big_to_compile_is_refused() {
        let e = compile(r"\w{1000}{1000}").unwrap_err();
        assert!(e.contains("compiles to more than 1024 KiB"), "{e}");
    }

    #[test]
    fn the_cache_hands_back_the_same_compiled_pattern_and_stays_bounded() {
        let cache = Cache::default();
        let a = cache.get("matches", "a+").unwrap();
        let b = cache.get("matches", "a+").unwrap();
        assert_eq!(a.as_str(), b.as_str());
        for i in 0..(CACHE_CAPACITY * 2) {
            cache.get("matches", &format!("x{i}")).unwrap();
        }
        assert!(cache.0.lock().unwrap().len() <= CACHE_CAPACITY);
    }
}
