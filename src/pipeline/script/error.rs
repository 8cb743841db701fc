//! Script errors as a script author sees them: always with the file, and the line where known.

use std::fmt;

use rhai::{EvalAltResult, ParseError, Position};

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
        let line = pos.line();
        let source_line = line
            .and_then(|l| source.lines().nth(l.saturating_sub(1)))
            .map(str::to_owned);
        Self {
            path: path.to_owned(),
            line,
            col: pos.position(),
            message,
            source_line,
        }
    }

    pub fn from_parse(path: &str, source: &str, err: &ParseError) -> Self {
        Self::at(path, source, err.position(), err.err_type().to_string())
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
        let mut line = err.position().line();
        while let EvalAltResult::ErrorInFunctionCall(_, _, next, pos) = inner {
            line = next.position().line().or(pos.line()).or(line);
            inner = next;
        }
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
            other => (RunErrorKind::Runtime, strip_position(&other.to_string())),
        };
        Self {
            script: script.to_owned(),
            function: function.to_owned(),
            line,
            kind,
            message,
        }
    }
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

    #[test]
    fn strips_rhai_position_suffix() {
        assert_eq!(
            strip_position("Variable not found: x (line 3, position 5)"),
            "Variable not found: x"
        );
        assert_eq!(strip_position("plain"), "plain");
    }
}
