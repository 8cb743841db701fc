//! How compiled modules reach an importer: the engine's resolver hands out, on this thread and
//! only while a script compiles, the modules the [`Library`](super::Library) has loaded, and
//! Rhai embeds them in the importer's compiled form. Handler calls then find them there.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use rhai::{Engine, EvalAltResult, Module, ParseError, Position, Scope, Shared, Stmt, AST};

use super::{Loaded, ModuleName};
use crate::pipeline::script::error::LoadError;

/// Compiles `source` on `engine` with `modules` embedded (every module it imports must be
/// among them: the resolver only hands them out).
pub(super) fn compile(
    engine: &Engine,
    constants: &Scope,
    modules: HashMap<ModuleName, Arc<Loaded>>,
    shown: &str,
    source: &str,
) -> Result<AST, LoadError> {
    serve(modules, || {
        engine.compile_into_self_contained(constants, source)
    })
    .map_err(|e| match *e {
        EvalAltResult::ErrorParsing(kind, pos) => {
            LoadError::from_parse(shown, source, &ParseError(Box::new(kind), pos))
        }
        other => LoadError::at(shown, source, other.position(), other.to_string()),
    })
}

/// What a handler call evaluates: the script's functions and its top-level imports (a script's
/// other top-level code never runs at call time; the imports must, so `h::greet()` finds `h`).
/// The modules come from the copies embedded at compile time.
pub fn call_ast(ast: &AST) -> AST {
    let imports: Vec<Stmt> = ast
        .statements()
        .iter()
        .filter(|s| matches!(s, Stmt::Import(..)))
        .cloned()
        .collect();
    AST::new(imports, Module::new()).merge(&ast.clone_functions_only())
}

thread_local! {
    /// The modules the engine's resolver may hand out on this thread: set only while a script
    /// or module compiles, empty while handlers run.
    static SERVING: RefCell<HashMap<ModuleName, Arc<Loaded>>> = RefCell::new(HashMap::new());
}

/// Runs `f` with `modules` available to [`Resolver`] on this thread.
pub(super) fn serve<T>(modules: HashMap<ModuleName, Arc<Loaded>>, f: impl FnOnce() -> T) -> T {
    struct Restore(HashMap<ModuleName, Arc<Loaded>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = std::mem::take(&mut self.0);
            SERVING.with(|s| *s.borrow_mut() = previous);
        }
    }
    let _restore = Restore(SERVING.with(|s| s.replace(modules)));
    f()
}

fn serving(path: &str) -> Option<Arc<Loaded>> {
    let name = ModuleName::parse(path).ok()?;
    SERVING.with(|s| s.borrow().get(&name).cloned())
}

/// The engine's module resolver: hands out modules the loader has already compiled, never
/// reads the disk. Outside a compile it knows no module at all.
pub struct Resolver;

impl rhai::ModuleResolver for Resolver {
    fn resolve(
        &self,
        _engine: &Engine,
        _source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<Shared<Module>, Box<EvalAltResult>> {
        serving(path)
            .map(|m| m.module.clone())
            .ok_or_else(|| EvalAltResult::ErrorModuleNotFound(path.to_owned(), pos).into())
    }

    fn resolve_ast(
        &self,
        _engine: &Engine,
        _source: Option<&str>,
        path: &str,
        _pos: Position,
    ) -> Option<Result<AST, Box<EvalAltResult>>> {
        serving(path).map(|m| Ok(m.ast.clone()))
    }
}
