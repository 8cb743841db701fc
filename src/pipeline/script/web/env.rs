//! `env(name)`: the environment variables the operator exposed to scripts (`script_env`), and
//! the redaction that keeps their values out of logs and error messages.

use std::borrow::Cow;

/// Values shorter than this are not redacted: they cannot be secrets, and replacing every "1"
/// or "on" in a log would make it unreadable.
const MIN_REDACTED_LEN: usize = 4;

/// The exposed variables, read once when the bot starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScriptEnv {
    /// `(name, value)`; `None` for a name that is exposed but not set.
    vars: Vec<(String, Option<String>)>,
}

impl ScriptEnv {
    pub fn from_process(names: &[String]) -> Self {
        Self::from_pairs(names.iter().map(|n| (n.clone(), std::env::var(n).ok())))
    }

    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, Option<String>)>) -> Self {
        Self {
            vars: pairs.into_iter().collect(),
        }
    }

    /// The value of an exposed variable (`None` when it is not set); an error naming the
    /// setting for a name the operator did not expose.
    pub fn get(&self, name: &str) -> Result<Option<&str>, String> {
        match self.vars.iter().find(|(n, _)| n == name) {
            Some((_, value)) => Ok(value.as_deref()),
            None => Err(format!(
                "env(\"{name}\"): {name} is not exposed to scripts; add it to --script-env, \
                 LINEBOTD_SCRIPT_ENV or script_env in linebotd.toml"
            )),
        }
    }

    /// `text` with every exposed value replaced by `[env NAME]`; borrowed when none occurs, so
    /// a log line without a secret costs no copy.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for (name, value) in &self.vars {
            if let Some(value) = value.as_deref().filter(|v| v.len() >= MIN_REDACTED_LEN) {
                if out.contains(value) {
                    out = Cow::Owned(out.replace(value, &format!("[env {name}]")));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> ScriptEnv {
        ScriptEnv::from_pairs([
            (
                "OPENAI_API_KEY".to_owned(),
                Some("sk-secret-123".to_owned()),
            ),
            ("SHOP_ID".to_owned(), Some("42".to_owned())),
            ("UNSET".to_owned(), None),
        ])
    }

    #[test]
    fn only_exposed_names_are_readable() {
        let env = env();
        assert_eq!(env.get("OPENAI_API_KEY"), Ok(Some("sk-secret-123")));
        assert_eq!(env.get("UNSET"), Ok(None));
        let err = env.get("HOME").unwrap_err();
        assert!(err.contains("HOME is not exposed"), "{err}");
        assert!(err.contains("script_env"), "{err}");
    }

    #[test]
    fn values_are_redacted_by_name() {
        let env = env();
        assert_eq!(
            env.redact("key=sk-secret-123, again sk-secret-123"),
            "key=[env OPENAI_API_KEY], again [env OPENAI_API_KEY]"
        );
        // Too short to be a secret, and too common to replace.
        assert_eq!(env.redact("shop 42"), "shop 42");
        assert!(matches!(env.redact("no secret here"), Cow::Borrowed(_)));
    }
}
