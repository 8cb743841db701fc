//! "Did you mean …?": how far apart two names are, for hints at typos (`check`, `later`).

/// Edit distance (insertions, deletions, substitutions) between two strings, by characters.
pub fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut row = Vec::with_capacity(b.len() + 1);
        row.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != *cb);
            row.push(substitute.min(prev[j + 1] + 1).min(row[j] + 1));
        }
        prev = row;
    }
    prev[b.len()]
}

/// The name in `known` nearest to `name` if at most `max` edits away: the hint behind
/// "did you mean …?". Ties go to the name first in byte order, so the hint is stable.
pub fn closest<'a>(
    name: &str,
    known: impl IntoIterator<Item = &'a str>,
    max: usize,
) -> Option<&'a str> {
    known
        .into_iter()
        .map(|k| (levenshtein(name, k), k))
        .min()
        .filter(|(distance, _)| *distance <= max)
        .map(|(_, k)| k)
}

/// A value's type as a bot author calls it: "number" where Rhai says `i64` or `f64`, and
/// Rhai's own names for the rest (string, map, array, blob, bool, char, `()`).
pub fn kind(value: &rhai::Dynamic) -> &'static str {
    if value.is_int() || value.is_float() {
        "number"
    } else {
        value.type_name()
    }
}

/// The IANA zone `name` means when only its case is wrong: `asia/tokyo` → `Asia/Tokyo`.
pub fn zone_named(name: &str) -> Option<&'static str> {
    chrono_tz::TZ_VARIANTS
        .iter()
        .map(|tz| tz.name())
        .find(|known| known.eq_ignore_ascii_case(name))
}

/// What to say after "unknown time zone": the right spelling when only the case is off.
pub fn zone_hint(name: &str) -> String {
    match zone_named(name) {
        Some(known) => format!("did you mean \"{known}\"?"),
        None => "use an IANA name such as \"Asia/Tokyo\"".to_owned(),
    }
}

#[cfg(test)]
mod zone_tests {
    use super::*;

    #[test]
    fn a_zone_in_the_wrong_case_is_found() {
        assert_eq!(zone_named("asia/tokyo"), Some("Asia/Tokyo"));
        assert_eq!(zone_named("utc"), Some("UTC"));
        assert_eq!(zone_named("Mars/Olympus"), None);
        assert_eq!(
            zone_hint("america/new_york"),
            "did you mean \"America/New_York\"?"
        );
    }
}

#[cfg(test)]
mod kind_tests {
    use super::*;

    #[test]
    fn numbers_are_numbers_and_the_rest_keeps_rhai_names() {
        assert_eq!(kind(&rhai::Dynamic::from(5_i64)), "number");
        assert_eq!(kind(&rhai::Dynamic::from(1.5_f64)), "number");
        assert_eq!(kind(&rhai::Dynamic::from("x")), "string");
        assert_eq!(kind(&rhai::Dynamic::UNIT), "()");
    }
}

#[cfg(test)]
mod levenshtein_tests {
    use super::*;

    #[test]
    fn levenshtein_counts_edits() {
        assert_eq!(levenshtein("", ""), 0);
        assert_eq!(levenshtein("abc", ""), 3);
        assert_eq!(levenshtein("on_mesage", "on_message"), 1);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("on_folow", "on_follow"), 1);
    }
}
