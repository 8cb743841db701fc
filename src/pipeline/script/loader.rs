//! Finding, compiling and validating the scripts of a folder.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rhai::{Scope, AST};

use crate::pipeline::schedule::{schedules_from_ast, Schedule};

use super::engine::Engines;
use super::error::LoadError;
use super::library::{self, Compiled, Deps, Library};

/// One compiled script.
pub struct Script {
    /// The file name, e.g. `echo.rhai`: what logs and errors call the script.
    pub name: Arc<str>,
    pub path: PathBuf,
    pub ast: AST,
    /// Literal top-level constants (`const GREETING = "hi";`), visible to every handler.
    pub constants: Scope<'static>,
    /// Script-defined functions and their parameter counts (shared with each call's context,
    /// so `later` can check the function it is given).
    pub functions: Arc<HashMap<String, usize>>,
    /// The line each function is defined on, for errors that carry no position (limits).
    pub function_lines: HashMap<String, usize>,
    /// Its validated `SCHEDULES`.
    pub schedules: Vec<Schedule>,
    /// What handler calls evaluate: the functions, and the imports they need (see
    /// [`library::call_ast`]).
    pub call_ast: AST,
    content_hash: u64,
    /// The `lib/` modules it uses, with the hashes of the texts it was compiled with.
    modules: Deps,
}

impl Script {
    pub fn defines(&self, function: &str, params: usize) -> bool {
        self.functions.get(function) == Some(&params)
    }
}

/// The scripts of a folder at one moment: what runs, and what failed to load.
#[derive(Default)]
pub struct ScriptSet {
    /// In file-name order: the order handlers run in.
    pub scripts: Vec<Arc<Script>>,
    /// Scripts whose latest version failed to load, by file name. A failed script that had loaded
    /// before keeps running its last good version (it is in `scripts` too).
    pub errors: BTreeMap<String, LoadError>,
}

/// Is this file name a script? Tests, hidden files and editor leftovers are not.
pub fn is_script_name(name: &str) -> bool {
    name.ends_with(".rhai")
        && !name.ends_with(".test.rhai")
        && !name.ends_with(".d.rhai")
        && !name.starts_with('.')
}

/// Compiles one script's source and checks its handlers. Its imports come from the `lib/`
/// next to it.
pub fn compile(engines: &Engines, path: &Path, original: &str) -> Result<Script, LoadError> {
    let dir = path.parent().unwrap_or(Path::new(""));
    compile_with(engines, &mut Library::new(dir), path, original)
}

/// [`compile`] with the modules of `library`, shared with the other scripts of the same load.
pub fn compile_with(
    engines: &Engines,
    library: &mut Library,
    path: &Path,
    original: &str,
) -> Result<Script, LoadError> {
    let shown = path.display().to_string();
    let source = &*super::source::quote_call_keys(original);
    let Compiled {
        constants,
        ast,
        deps,
    } = library.compile(engines, &shown, source)?;
    if let Some(first) = handler_errors(&shown, source, &ast).into_iter().next() {
        return Err(first);
    }
    let mut functions = HashMap::new();
    let mut function_lines = HashMap::new();
    for f in ast.iter_functions() {
        functions.insert(f.name.to_owned(), f.params.len());
        if let Some(line) = find_fn_line(source, f.name) {
            function_lines.insert(f.name.to_owned(), line);
        }
    }
    let name = file_name(path, &shown);
    let schedules = schedules_from_ast(&name, &ast, engines.default_tz)
        .map_err(|e| schedule_error(&shown, &name, &e))?;
    Ok(Script {
        name: name.into(),
        path: path.to_owned(),
        call_ast: library::call_ast(&ast),
        ast,
        constants,
        functions: Arc::new(functions),
        function_lines,
        schedules,
        content_hash: hash(original),
        modules: deps,
    })
}

/// Every mistake `compile_with` would stop at, not only the first: all handlers with the
/// wrong number of parameters and all bad `SCHEDULES` entries, in line order (a parse error
/// alone when the script does not parse). For `check`, so one run shows them all.
pub fn all_errors(
    engines: &Engines,
    library: &mut Library,
    path: &Path,
    original: &str,
) -> Vec<LoadError> {
    let shown = path.display().to_string();
    let source = &*super::source::quote_call_keys(original);
    let ast = match library.compile(engines, &shown, source) {
        Ok(compiled) => compiled.ast,
        Err(e) => return vec![e],
    };
    let mut errors = handler_errors(&shown, source, &ast);
    errors.sort_by_key(|e| e.line);
    let name = file_name(path, &shown);
    errors.extend(
        super::super::schedule::schedule_errors(&name, &ast, engines.default_tz)
            .iter()
            .map(|e| schedule_error(&shown, &name, e)),
    );
    errors
}

/// `on_*` functions that do not take exactly one parameter (the event).
fn handler_errors(shown: &str, source: &str, ast: &rhai::AST) -> Vec<LoadError> {
    ast.iter_functions()
        .filter(|f| f.name.starts_with("on_") && f.params.len() != 1)
        .map(|f| {
            // Position::new panics on line 0: an unknown line is no position.
            let pos = find_fn_line(source, f.name)
                .and_then(|line| u16::try_from(line).ok())
                .map_or(rhai::Position::NONE, |line| rhai::Position::new(line, 1));
            LoadError::at(
                shown,
                source,
                pos,
                format!(
                    "handler {}() takes {} parameters; handlers take exactly one (the event): fn {}(event)",
                    f.name,
                    f.params.len(),
                    f.name
                ),
            )
        })
        .collect()
}

fn file_name(path: &Path, shown: &str) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| shown.to_owned())
}

/// A schedule error as a load error of the script (its message without the script's name).
fn schedule_error(
    shown: &str,
    name: &str,
    e: &crate::pipeline::schedule::ScheduleError,
) -> LoadError {
    let message = e.to_string();
    let message = message
        .strip_prefix(&format!("{name}: "))
        .unwrap_or(&message)
        .to_owned();
    LoadError {
        path: shown.to_owned(),
        line: None,
        col: None,
        message,
        source_line: None,
    }
}

fn find_fn_line(source: &str, name: &str) -> Option<usize> {
    source
        .lines()
        .position(|l| {
            let l = l.trim_start();
            let l = l.strip_prefix("private ").map_or(l, str::trim_start);
            let Some(rest) = l.strip_prefix("fn ") else {
                return false;
            };
            rest.trim_start()
                .strip_prefix(name)
                .is_some_and(|r| r.trim_start().starts_with('('))
        })
        .map(|i| i + 1)
}

pub(super) fn hash(source: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    source.hash(&mut h);
    h.finish()
}

/// The script files directly in `dir`, sorted by name. Files in sub-folders (`lib/` modules
/// among them) are never bots.
pub fn script_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
        .filter(|e| is_script_name(&e.file_name().to_string_lossy()))
        .map(|e| e.path())
        .collect();
    files.sort();
    Ok(files)
}

/// Loads `dir`, reusing unchanged scripts from `previous` and keeping the last good version of a
/// script whose new content fails to load. A script is unchanged when its text and the texts of
/// every module it imports are: saving a module reloads each script that imports it.
pub fn load_dir(
    engines: &Engines,
    dir: &Path,
    previous: &ScriptSet,
) -> Result<ScriptSet, std::io::Error> {
    let old: HashMap<&str, &Arc<Script>> = previous.scripts.iter().map(|s| (&*s.name, s)).collect();
    let mut set = ScriptSet::default();
    let mut library = Library::new(dir);
    for path in script_files(dir)? {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // A file can vanish between listing and reading (editors save by rename): skip it now,
        // the next change event brings it back.
        let Ok(source) = std::fs::read_to_string(&path) else {
            if let Some(s) = old.get(name.as_str()) {
                set.scripts.push(Arc::clone(s));
            }
            continue;
        };
        let previous = old.get(name.as_str()).copied();
        let unchanged =
            |s: &&Arc<Script>| s.content_hash == hash(&source) && !library.changed(&s.modules);
        if let Some(s) = previous.filter(unchanged) {
            set.scripts.push(Arc::clone(s));
            continue;
        }
        match compile_with(engines, &mut library, &path, &source) {
            Ok(script) => set.scripts.push(Arc::new(script)),
            Err(e) => {
                if let Some(s) = previous {
                    set.scripts.push(Arc::clone(s));
                }
                set.errors.insert(name, e);
            }
        }
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_line_of_a_function() {
        let src = "// on_x\nfn helper() {}\n\nfn  on_x (e) {}\n";
        assert_eq!(find_fn_line(src, "on_x"), Some(4));
        assert_eq!(find_fn_line(src, "on"), None);
        assert_eq!(find_fn_line(src, "helper"), Some(2));
        assert_eq!(find_fn_line("\nprivate fn on_x(a, b) {}", "on_x"), Some(2));
    }

    #[test]
    fn a_handler_with_two_parameters_is_an_error_wherever_it_is_written() {
        let engines = super::super::engine::build(&super::super::Limits::default());
        for src in ["private fn on_message(a, b) {}", "fn\non_message(a, b) {}"] {
            let err = compile(&engines, Path::new("x.rhai"), src).err().unwrap();
            assert!(err.message.contains("takes 2 parameters"), "{src}: {err}");
        }
    }
}
