//! Script errors as a script author sees them: always with the file, and the line where known.

use std::fmt;

use rhai::{EvalAltResult, ParseError, ParseErrorType, Position};

/// A script that could not be loaded: a syntax error, a bad handler or a bad schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// The script's path as given (for example `scripts/echo.rhai`).
    pub path: String,
    pub line: Option<usize>,
    pub col: Option<usize>,
    pub message: String,
    /// The offending source line, when the position is known.
    pub source_line: Option<String>,
}

impl LoadError {
    pub fn at(path: &str, source: &str, pos: Position, message: String) -> Self {
        let (mut line, mut col) = (pos.line(), pos.position());
        let mut source_line = line
            .and_then(|l| source.lines().nth(l.saturating_sub(1)))
            .map(str::to_owned);
        // Past the end (a `}` missing at the end of the file): point just after the last line
        // that has anything on it, so there is still a line and a caret to look at.
        if line.is_some() && source_line.is_none() {
            if let Some((i, last)) = source
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
                .last()
            {
                line = Some(i + 1);
                col = Some(last.chars().count() + 1);
                source_line = Some(last.to_owned());
            }
        }
        Self {
            path: path.to_owned(),
            line,
            col,
            message,
            source_line,
        }
    }

    pub fn from_parse(path: &str, source: &str, err: &ParseError) -> Self {
        let message = keyword_field_hint(source, err)
            .or_else(|| newcomer_hint(source, err))
            .unwrap_or_else(|| err.err_type().to_string());
        let mut error = Self::at(path, source, err.position(), message);
        if error.line != err.position().line() {
            error.message.push_str(" (at the end of the file)");
        }
        error
    }

    /// The one-line form `path:line:col: message`.
    pub fn headline(&self) -> String {
        match (self.line, self.col) {
            (Some(l), Some(c)) => format!("{}:{l}:{c}: {}", self.path, self.message),
            (Some(l), None) => format!("{}:{l}: {}", self.path, self.message),
            _ => format!("{}: {}", self.path, self.message),
        }
    }

    /// The headline, then the source line with a caret under the column.
    pub fn render(&self) -> String {
        let mut out = self.headline();
        if let Some(src) = &self.source_line {
            let col = self.col.unwrap_or(1).max(1);
            // Keep tabs as tabs so the caret lines up in a terminal.
            let pad: String = src
                .chars()
                .take(col - 1)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            out.push_str(&format!("\n    {src}\n    {pad}^"));
        }
        out
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.headline())
    }
}

impl std::error::Error for LoadError {}

/// LINE names some fields with words Rhai reserves (`module` in module-channel events), so
/// `event.module` fails to compile with only "'module' is a reserved keyword". When the error is
/// at a property name after a `.`, say how to read the field instead.
fn keyword_field_hint(source: &str, err: &ParseError) -> Option<String> {
    if !matches!(
        err.err_type(),
        ParseErrorType::Reserved(_) | ParseErrorType::PropertyExpected
    ) {
        return None;
    }
    let pos = err.position();
    let line: Vec<char> = source
        .lines()
        .nth(pos.line()?.checked_sub(1)?)?
        .chars()
        .collect();
    let start = pos.position()?.checked_sub(1)?;
    let is_name = |c: &char| c.is_alphanumeric() || *c == '_';
    let word: String = line
        .get(start..)?
        .iter()
        .take_while(|c| is_name(c))
        .collect();
    let before: String = line.get(..start)?.iter().collect();
    let object = before.trim_end().strip_suffix('.')?;
    let object = object.strip_suffix('?').unwrap_or(object).trim_end();
    let mut name: Vec<char> = object
        .chars()
        .rev()
        .take_while(|c| is_name(c) || matches!(c, '.' | '[' | ']' | '"'))
        .collect();
    name.reverse();
    let name: String = name.into_iter().collect();
    if word.is_empty() || name.is_empty() {
        return None;
    }
    Some(format!(
        "`{word}` is a reserved word in Rhai, so `{name}.{word}` does not compile; \
         write `{name}[\"{word}\"]` to read the field"
    ))
}

/// Mistakes people bring from other languages, explained: single-quoted strings (`'hi'` is a
/// character in Rhai) and a top-level `let` read inside a function (functions see only their
/// parameters and top-level `const`s).
fn newcomer_hint(source: &str, err: &ParseError) -> Option<String> {
    let plain = err.err_type().to_string();
    match err.err_type() {
        ParseErrorType::BadInput(_) if plain.contains("Invalid character: '") => Some(format!(
            "{plain}: Rhai strings use double quotes (\"hi\"); single quotes hold one character"
        )),
        ParseErrorType::VariableUndefined(name) => {
            let top_level = source.lines().any(|l| {
                l.strip_prefix("let ")
                    .map(str::trim_start)
                    .and_then(|rest| rest.strip_prefix(name.as_str()))
                    .is_some_and(|rest| {
                        !rest.starts_with(|c: char| c.is_alphanumeric() || c == '_')
                    })
            });
            top_level.then(|| {
                format!(
                    "{plain}: functions cannot see top-level `let` variables; write \
                     `const {name} = …;` at the top instead, or pass it in as an argument"
                )
            })
        }
        _ => None,
    }
}

/// What kind of failure a handler run ended with (a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunErrorKind {
    /// The script threw or made a mistake (bad index, unknown function, LINE rejected a call…).
    Runtime,
    /// A safety limit stopped the script.
    Limit,
}

impl RunErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Runtime => "runtime",
            Self::Limit => "limit",
        }
    }
}

/// A handler or scheduled function that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunError {
    pub script: String,
    pub function: String,
    pub line: Option<usize>,
    /// The column of `line` the error points at, when known (the browser console draws a
    /// caret there).
    pub col: Option<usize>,
    pub kind: RunErrorKind,
    pub message: String,
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(
                f,
                "{}:{line}: in {}(): {}",
                self.script, self.function, self.message
            ),
            None => write!(
                f,
                "{}: in {}(): {}",
                self.script, self.function, self.message
            ),
        }
    }
}

impl std::error::Error for RunError {}

impl RunError {
    /// Builds the error from Rhai's, naming the innermost position and the limit when one was hit.
    pub fn from_eval(
        script: &str,
        function: &str,
        err: &EvalAltResult,
        limits: &super::limits::Limits,
    ) -> Self {
        // The innermost error has the real position; outer layers are "in function X" wrappers.
        let mut inner = err;
        let mut at = err.position();
        while let EvalAltResult::ErrorInFunctionCall(_, _, next, pos) = inner {
            at = [next.position(), *pos, at]
                .into_iter()
                .find(|p| p.line().is_some())
                .unwrap_or(at);
            inner = next;
        }
        let (line, col) = (at.line(), at.position());
        let (kind, message) = match inner {
            EvalAltResult::ErrorTooManyOperations(_) => (
                RunErrorKind::Limit,
                format!("stopped: more than {} operations (limits.max_operations)", limits.max_operations),
            ),
            EvalAltResult::ErrorTerminated(..) => (
                RunErrorKind::Limit,
                format!("stopped: ran longer than {} ms (limits.max_call_ms)", limits.max_call_ms),
            ),
            EvalAltResult::ErrorStackOverflow(_) => (
                RunErrorKind::Limit,
                format!("stopped: calls nested deeper than {} (limits.max_call_depth)", limits.max_call_depth),
            ),
            EvalAltResult::ErrorDataTooLarge(what, _) => (
                RunErrorKind::Limit,
                format!("stopped: {what} grew past its limit (limits.max_string_size / max_array_size / max_map_size)"),
            ),
            EvalAltResult::ErrorRuntime(value, _) => (RunErrorKind::Runtime, value.to_string()),
            EvalAltResult::ErrorFunctionNotFound(signature, _) => {
                let call = script_types(signature);
                let operator = !call.starts_with(|c: char| c.is_alphabetic() || c == '_');
                let message = match call.split_once('(') {
                    Some((op, types)) if operator => format!(
                        "{op} does not work on {}",
                        types.trim_end_matches(')').replace(", ", " and ")
                    ),
                    _ => format!(
                        "no function {call} (check its name and its number of arguments; \
                         `linebotd check` points at such calls)"
                    ),
                };
                (RunErrorKind::Runtime, message)
            }
            other => (RunErrorKind::Runtime, strip_position(&other.to_string())),
        };
        Self {
            script: script.to_owned(),
            function: function.to_owned(),
            line,
            col,
            kind,
            message,
        }
    }
}

/// A call's signature as Rhai reports it, `reply (map)` or `store_gte (&str | ImmutableString |
/// String)`, in the type names scripts use: `reply(map)`, `store_gte(string)`.
fn script_types(signature: &str) -> String {
    let Some((name, args)) = signature.split_once(" (") else {
        return signature.to_owned();
    };
    let args = args.strip_suffix(')').unwrap_or(args);
    let args = args
        .replace("&str | ImmutableString | String", "string")
        .split(", ")
        .map(|t| match t {
            "i64" | "i32" | "u8" | "u16" | "u32" | "u64" => "int",
            "f64" | "f32" => "float",
            "rhai::Map" => "map",
            "rhai::Array" => "array",
            "rhai::Blob" => "blob",
            other => other,
        })
        .collect::<Vec<_>>()
        .join(", ");
    format!("{name}({args})")
}

/// Rhai appends " (line 3, position 5)"; we print the line ourselves.
fn strip_position(message: &str) -> String {
    match message.rfind(" (line ") {
        Some(i) if message.ends_with(')') => message[..i].to_owned(),
        _ => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_not_found_names_script_types() {
        assert_eq!(
            script_types("store_gte (&str | ImmutableString | String)"),
            "store_gte(string)"
        );
        assert_eq!(script_types("reply (map)"), "reply(map)");
        assert_eq!(
            script_types("- (&str | ImmutableString | String, i64)"),
            "-(string, int)"
        );
        assert_eq!(script_types("foo (f64, blob, ())"), "foo(float, blob, ())");
    }

    #[test]
    fn render_puts_a_caret_under_the_column() {
        let src = "fn on_message(e) {\n    reply(e, \"hi\"\n}\n";
        let err = LoadError::at(
            "scripts/echo.rhai",
            src,
            Position::new(2, 17),
            "Expecting ')'".into(),
        );
        assert_eq!(err.headline(), "scripts/echo.rhai:2:17: Expecting ')'");
        assert_eq!(
            err.render(),
            "scripts/echo.rhai:2:17: Expecting ')'\n        reply(e, \"hi\"\n                    ^"
        );
    }

    fn load_error(source: &str) -> LoadError {
        let engines = super::super::engine::build(&super::super::Limits::default());
        let err = engines.run.compile(source).unwrap_err();
        LoadError::from_parse("bot.rhai", source, &err)
    }

    #[test]
    fn a_reserved_word_as_a_field_says_to_use_brackets() {
        let err = load_error("fn on_event(event) {\n    let m = event.module;\n}\n");
        assert_eq!(
            err.headline(),
            "bot.rhai:2:19: `module` is a reserved word in Rhai, so `event.module` does not \
             compile; write `event[\"module\"]` to read the field"
        );
        let err = load_error("fn on_event(e) {\n  if e.source.export == 1 {}\n}\n");
        assert!(
            err.message
                .contains("write `e.source[\"export\"]` to read the field"),
            "{err}"
        );
        assert_eq!(err.line, Some(2));
    }

    #[test]
    fn other_reserved_word_errors_keep_rhai_message() {
        let err = load_error("let module = 1;\n");
        assert_eq!(err.message, "'module' is a reserved keyword");
    }

    #[test]
    fn strips_rhai_position_suffix() {
        assert_eq!(
            strip_position("Variable not found: x (line 3, position 5)"),
            "Variable not found: x"
        );
        assert_eq!(strip_position("plain"), "plain");
    }
}
