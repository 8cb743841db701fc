//! `linebotd check [DIR]`: compile every script the way the daemon would, validate its
//! schedules, and point at each mistake with file, line and column before anything runs.

use std::path::Path;
use std::process::ExitCode;

use chrono_tz::Tz;
use rhai::AST;

use crate::cli::CheckArgs;
use crate::config::Limits;
use crate::pipeline::script::engine::{self, Engines};
use crate::pipeline::script::library::{Library, ModuleName, UnknownCall};
use crate::pipeline::script::loader;
use crate::pipeline::script::resolve::{self, BadCall, Callable};
use crate::pipeline::script::suggest;
use crate::pipeline::script::LoadError;

use super::CommandError;

mod handlers;

use handlers::handler_warnings;
pub use handlers::known_handlers;

/// The most errors shown for one file: past that, a count.
const MAX_ERRORS: usize = 20;

/// What `check` found in one folder.
#[derive(Debug, Default)]
pub struct Report {
    pub scripts: usize,
    /// Modules under `lib/`, each checked on its own too.
    pub modules: usize,
    /// Rendered errors, each complete (headline, source line, caret).
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

impl Report {
    /// `N scripts, M errors`, with `, L modules` and `, K warnings` when there are any.
    pub fn summary(&self) -> String {
        let mut line = format!("{} scripts", self.scripts);
        if self.modules > 0 {
            line.push_str(&format!(", {} modules", self.modules));
        }
        line.push_str(&format!(", {} errors", self.errors.len()));
        if !self.warnings.is_empty() {
            line.push_str(&format!(", {} warnings", self.warnings.len()));
        }
        line
    }
}

pub fn run(args: &CheckArgs) -> Result<ExitCode, CommandError> {
    let file = crate::config::local_file(args.config.as_deref(), &args.dir);
    let tz = crate::config::zone_for(args.zone.timezone, file.as_deref())?;
    if !args.dir.is_dir() {
        return Err(CommandError::NoScriptsFolder(args.dir.clone()));
    }
    let report = check_dir(&args.dir, tz).map_err(|source| CommandError::ReadDir {
        path: args.dir.clone(),
        source,
    })?;
    for e in &report.errors {
        println!("{e}");
    }
    for w in &report.warnings {
        println!("{w}");
    }
    println!("{}", report.summary());
    Ok(if report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Checks every script directly in `dir` with the engines the daemon uses, then every module
/// of its `lib/`, so a broken module shows even before a script imports it.
pub fn check_dir(dir: &Path, default_tz: Tz) -> std::io::Result<Report> {
    let engines = engine::build(&Limits::default()).with_timezone(default_tz);
    let callable = Callable::new(super::definitions::declared());
    let mut report = Report::default();
    let mut library = Library::new(dir);
    for path in loader::script_files(dir)? {
        report.scripts += 1;
        let source = match std::fs::read_to_string(&path) {
            Ok(s) => s,
            Err(e) => {
                report
                    .errors
                    .push(format!("{}: cannot read: {e}", path.display()));
                continue;
            }
        };
        check_source(
            &engines,
            &callable,
            &mut library,
            &path,
            &source,
            &mut report,
        );
    }
    for name in library.module_names() {
        report.modules += 1;
        if let Err(e) = library.check_module(&engines, &name) {
            report.errors.push(e.render());
        }
        check_module_calls(&callable, &library, &name, &dir.join("lib"), &mut report);
        for part in library.script_only_parts(&name) {
            report.warnings.push(format!(
                "{}: warning: {part} in a module never runs (lib/ files are not bots); \
                 put it in a script and call the module from there",
                name.file(&dir.join("lib")).display()
            ));
        }
    }
    for file in library.unimportable() {
        report.warnings.push(format!(
            "{}: warning: no import can name this file; module names use letters, digits, _ and - only",
            file.display()
        ));
    }
    Ok(report)
}

/// Compiles one script as the daemon would (which validates its schedules too), then warns
/// about handler names no event reaches.
fn check_source(
    engines: &Engines,
    callable: &Callable,
    library: &mut Library,
    path: &Path,
    source: &str,
    report: &mut Report,
) {
    let script = match loader::compile_with(engines, library, path, source) {
        Ok(s) => s,
        Err(first) => {
            // Every handler and schedule mistake at once, not one per run of `check`.
            let all = loader::all_errors(engines, library, path, source);
            let shown = if all.is_empty() { vec![first] } else { all };
            report
                .errors
                .extend(shown.iter().take(MAX_ERRORS).map(LoadError::render));
            if shown.len() > MAX_ERRORS {
                report.errors.push(format!(
                    "{}: … and {} more errors",
                    path.display(),
                    shown.len() - MAX_ERRORS
                ));
            }
            return;
        }
    };
    let shown = path.display().to_string();
    check_calls(callable, library, &shown, source, &script.ast, report);
    report.warnings.extend(handler_warnings(&shown, &script));
}

/// A module's calls, judged like a script's: a misspelt call in `lib/` fails in every handler
/// that reaches it.
fn check_module_calls(
    callable: &Callable,
    library: &Library,
    name: &ModuleName,
    lib: &Path,
    report: &mut Report,
) {
    let Some(ast) = library.module_ast(name) else {
        return;
    };
    let file = name.file(lib);
    // It loaded a moment ago; a file changed or gone since is the next run's to report.
    let Ok(source) = std::fs::read_to_string(&file) else {
        return;
    };
    let shown = file.display().to_string();
    check_calls(callable, library, &shown, &source, ast, report);
}

/// Plain calls nothing answers are errors; calls into an imported module that it does not
/// offer are warnings (the module may be one `check` could not load).
fn check_calls(
    callable: &Callable,
    library: &Library,
    shown: &str,
    source: &str,
    ast: &AST,
    report: &mut Report,
) {
    let own: Vec<String> = ast.iter_functions().map(|f| f.name.to_owned()).collect();
    report.errors.extend(
        resolve::bad_calls(ast, callable)
            .iter()
            .map(|call| bad_call_error(shown, source, call, callable, &own)),
    );
    report.warnings.extend(
        library
            .unknown_calls(ast)
            .iter()
            .map(|call| module_call_warning(shown, call)),
    );
}

/// `repyl(event, "hi")` or `reply(event)`: would fail with "Function not found" when it runs.
fn bad_call_error(
    path: &str,
    source: &str,
    call: &BadCall,
    callable: &Callable,
    own: &[String],
) -> String {
    let name = &call.name;
    let message = if call.takes.is_empty() {
        let known: Vec<String> = callable
            .names()
            .map(str::to_owned)
            .chain(own.iter().cloned())
            .collect();
        let hint = closest(name, &known)
            .map(|n| format!("; did you mean {n}?"))
            .unwrap_or_default();
        format!("no function named {name}: not linebotd's, not Rhai's, not this script's{hint}")
    } else {
        let counts: Vec<String> = call.takes.iter().map(usize::to_string).collect();
        let plural = |n: usize| if n == 1 { "argument" } else { "arguments" };
        let usage = host_usage(name)
            .map(|u| format!(": {u}"))
            .unwrap_or_default();
        format!(
            "{name} takes {} {}, not {}{usage}",
            counts.join(" or "),
            plural(call.takes.last().copied().unwrap_or(0)),
            call.args
        )
    };
    let line = call.pos.line();
    LoadError {
        path: path.to_owned(),
        line,
        col: call.pos.position(),
        source_line: line
            .and_then(|l| source.lines().nth(l - 1))
            .map(str::to_owned),
        message,
    }
    .render()
}

/// How the host API documents `name`'s calls: `reply(event_or_token, messages)`, one per
/// overload, from the definitions `linebotd definitions` prints.
fn host_usage(name: &str) -> Option<String> {
    let usages: Vec<String> = super::definitions::DEFINITIONS
        .lines()
        .filter_map(|l| l.strip_prefix("fn ")?.strip_prefix(name)?.strip_prefix('('))
        .filter_map(|rest| rest.split_once(')').map(|(params, _)| params))
        .map(|params| {
            let names: Vec<&str> = params
                .split(',')
                .filter_map(|p| p.split(':').next())
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .collect();
            format!("{name}({})", names.join(", "))
        })
        .collect();
    (!usages.is_empty()).then(|| usages.join(" or "))
}

/// `h::greeet(x)` when module "helpers" has no public `greeet` of one parameter: Rhai would
/// only notice when the call runs.
fn module_call_warning(path: &str, call: &UnknownCall) -> String {
    let at = match (call.pos.line(), call.pos.position()) {
        (Some(l), Some(c)) => format!("{path}:{l}:{c}"),
        (Some(l), None) => format!("{path}:{l}"),
        _ => path.to_owned(),
    };
    let (alias, name, module) = (&call.alias, &call.name, &call.module);
    let arities: Vec<&str> = call
        .public
        .iter()
        .filter_map(|f| f.strip_prefix(name.as_str())?.strip_prefix('/'))
        .collect();
    if !arities.is_empty() {
        return format!(
            "{at}: warning: {alias}::{name}() is called with {} arguments, but {name} in module \"{module}\" takes {}",
            call.args,
            arities.join(" or ")
        );
    }
    let names: Vec<String> = call
        .public
        .iter()
        .filter_map(|f| f.split('/').next().map(str::to_owned))
        .collect();
    let hint = closest(name, &names)
        .map(|n| format!("; did you mean {alias}::{n}?"))
        .unwrap_or_default();
    format!(
        "{at}: warning: {alias}::{name}() is not a public function of module \"{module}\"{hint}"
    )
}

/// The known name nearest to `name`, if it is near enough to be a plausible typo.
pub(super) fn closest<'a>(name: &str, known: &'a [String]) -> Option<&'a str> {
    // `on_` is shared by all, so judge closeness on the rest of the name.
    let rest = name.len().saturating_sub(3).max(1);
    suggest::closest(name, known.iter().map(String::as_str), 3.max(rest / 3))
}
