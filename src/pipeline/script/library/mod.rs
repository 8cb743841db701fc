//! Shared helper modules: `import "helpers" as h;` reads `lib/helpers.rhai` of the scripts
//! folder. Imports are resolved while a script compiles: each module is compiled and its top
//! level run once per load, shared by every script that imports it, and embedded in the
//! importer's compiled form. So a running handler never reads the disk, and a missing or broken
//! module is a load error at the `import` line, like a syntax error.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rhai::{ASTNode, Engine, Expr, Module, ParseError, Position, Scope, Shared, Stmt, AST};

use super::engine::Engines;
use super::error::{LoadError, RunError};

pub use embed::{call_ast, Resolver};
use name::lib_files;
pub use name::{Located, ModuleName, ALLOWED};

pub use calls::UnknownCall;

mod calls;
mod embed;
mod name;
#[cfg(test)]
mod tests;

/// How deep modules may import modules. Deeper is almost surely a mistake, and the bound keeps
/// a long chain from exhausting the stack.
pub const MAX_DEPTH: usize = 8;

/// The modules a compiled source uses (directly or through other modules) with the hash of
/// each one's text, so a reload can tell that an importer must be compiled again.
pub type Deps = BTreeMap<ModuleName, u64>;

/// A source compiled the way the daemon runs it, its imports resolved.
pub struct Compiled {
    /// Literal top-level constants (`const GREETING = "hi";`), visible to its functions.
    pub constants: Scope<'static>,
    /// With every imported module embedded.
    pub ast: AST,
    pub deps: Deps,
}

/// One loaded module.
struct Loaded {
    module: Shared<Module>,
    /// Its compiled form, so an importer's compile can embed the modules it imports in turn.
    ast: AST,
    /// Itself and everything it imports.
    deps: Deps,
}

/// Why a module could not be used, said at the `import` that asked for it.
#[derive(Debug, Clone)]
enum Failure {
    Refused(&'static str),
    Missing(PathBuf),
    Outside(PathBuf),
    Unreadable(PathBuf, String),
    Cycle(Vec<ModuleName>),
    TooDeep,
    /// The module's own error, at its own file and line.
    Broken(LoadError),
}

impl Failure {
    fn describe(&self, raw: &str) -> String {
        match self {
            Self::Refused(why) => format!("import \"{raw}\" refused ({why}): {ALLOWED}"),
            Self::Missing(file) => {
                format!("no module \"{raw}\": {} does not exist", file.display())
            }
            Self::Outside(file) => format!(
                "import \"{raw}\" refused ({} is a link to a file outside lib/): {ALLOWED}",
                file.display()
            ),
            Self::Unreadable(file, e) => {
                format!("module \"{raw}\": cannot read {}: {e}", file.display())
            }
            Self::Cycle(chain) => {
                let names: Vec<&str> = chain.iter().map(ModuleName::as_str).collect();
                format!(
                    "import cycle: {} (modules cannot import each other in a circle)",
                    names.join(" -> ")
                )
            }
            Self::TooDeep => {
                format!("module \"{raw}\": modules import modules more than {MAX_DEPTH} deep")
            }
            Self::Broken(e) => {
                let at = match (e.line, e.col) {
                    (Some(l), Some(c)) => format!("{}:{l}:{c}", e.path),
                    (Some(l), None) => format!("{}:{l}", e.path),
                    _ => e.path.clone(),
                };
                format!("module \"{raw}\" ({at}): {}", e.message)
            }
        }
    }
}

/// The `lib/` folder during one load of the scripts folder: each module is compiled at most
/// once however many scripts import it.
pub struct Library {
    lib: PathBuf,
    loaded: HashMap<ModuleName, Result<Arc<Loaded>, Failure>>,
    /// Hashes of module texts read during this load (`None`: unreadable).
    hashes: HashMap<ModuleName, Option<u64>>,
    /// The modules being compiled, outermost first: an import of one of them is a cycle.
    loading: Vec<ModuleName>,
}

impl Library {
    /// The library of the scripts folder `scripts_dir` (its `lib/` need not exist).
    pub fn new(scripts_dir: &Path) -> Self {
        Self {
            lib: scripts_dir.join("lib"),
            loaded: HashMap::new(),
            hashes: HashMap::new(),
            loading: Vec::new(),
        }
    }

    /// Compiles a script or module text (already through `source::quote_call_keys`): first its
    /// literal top-level constants, then the modules it imports, then the strict compile that
    /// may use both. `shown` is the file as errors name it.
    pub fn compile(
        &mut self,
        engines: &Engines,
        shown: &str,
        source: &str,
    ) -> Result<Compiled, LoadError> {
        let parse_error = |e: &ParseError| LoadError::from_parse(shown, source, e);
        let loose = engines
            .constants
            .compile(source)
            .map_err(|e| parse_error(&e))?;
        let constants = loose.iter_literal_variables(true, false).fold(
            Scope::new(),
            |mut scope, (name, _, value)| {
                scope.push_constant_dynamic(name.to_owned(), value);
                scope
            },
        );
        let deps = self.resolve_imports(engines, shown, source, &loose)?;
        let ast = if deps.is_empty() {
            engines
                .run
                .compile_with_scope(&constants, source)
                .map_err(|e| parse_error(&e))?
        } else {
            embed::compile(&engines.run, &constants, self.ready(), shown, source)?
        };
        check_literal_patterns(shown, source, &ast)?;
        Ok(Compiled {
            constants,
            ast,
            deps,
        })
    }

    /// Compiles a test file on its own `engine` (the one with the test helpers), with the
    /// modules it imports compiled as the bot's scripts see them.
    pub fn compile_test(
        &mut self,
        engines: &Engines,
        engine: &Engine,
        shown: &str,
        source: &str,
    ) -> Result<AST, LoadError> {
        let parse_error = |e: &ParseError| LoadError::from_parse(shown, source, e);
        let ast = engine.compile(source).map_err(|e| parse_error(&e))?;
        if self
            .resolve_imports(engines, shown, source, &ast)?
            .is_empty()
        {
            return Ok(ast);
        }
        embed::compile(engine, &Scope::new(), self.ready(), shown, source)
    }

    /// Loads every module `ast` imports; an error is at the `import` that failed.
    fn resolve_imports(
        &mut self,
        engines: &Engines,
        shown: &str,
        source: &str,
        ast: &AST,
    ) -> Result<Deps, LoadError> {
        let mut deps = Deps::new();
        for import in imports_of(ast) {
            let Some(raw) = import.path else {
                return Err(LoadError::at(
                    shown,
                    source,
                    import.pos,
                    "import needs the module's name in quotes, like import \"helpers\" as h;"
                        .into(),
                ));
            };
            let loaded = self
                .load(engines, &raw)
                .map_err(|f| LoadError::at(shown, source, import.pos, f.describe(&raw)))?;
            deps.extend(loaded.deps.iter().map(|(n, h)| (n.clone(), *h)));
        }
        Ok(deps)
    }

    /// Compiles the module `name` as an import would, for `check`: its error is its own, at
    /// its own file and line.
    pub fn check_module(&mut self, engines: &Engines, name: &ModuleName) -> Result<(), LoadError> {
        match self.load(engines, name.as_str()) {
            Ok(_) => Ok(()),
            Err(Failure::Broken(e)) => Err(e),
            Err(other) => Err(LoadError {
                path: name.file(&self.lib).display().to_string(),
                line: None,
                col: None,
                message: other.describe(name.as_str()),
                source_line: None,
            }),
        }
    }

    /// What a loaded module defines that only a script can use: handlers (`on_*` with one
    /// parameter) and `SCHEDULES`. In a module they never run, which is surely not meant.
    pub fn script_only_parts(&self, name: &ModuleName) -> Vec<String> {
        let Some(Ok(loaded)) = self.loaded.get(name) else {
            return Vec::new();
        };
        let mut parts: Vec<String> = loaded
            .ast
            .iter_functions()
            .filter(|f| f.name.starts_with("on_") && f.params.len() == 1)
            .map(|f| format!("{}()", f.name))
            .collect();
        let schedules = loaded
            .ast
            .statements()
            .iter()
            .any(|s| matches!(s, Stmt::Var(x, ..) if x.0.name == "SCHEDULES"));
        if schedules {
            parts.push("SCHEDULES".into());
        }
        parts
    }

    /// The module files under `lib/`, by name, sorted; hidden files, tests and files whose
    /// name `import` cannot spell are left out (the latter reported by [`unimportable`]).
    pub fn module_names(&self) -> Vec<ModuleName> {
        lib_files(&self.lib)
            .into_iter()
            .filter_map(|rel| ModuleName::parse(&rel).ok())
            .collect()
    }

    /// Files under `lib/` that look like modules but that no `import` can name, e.g.
    /// `lib/my helpers.rhai`.
    pub fn unimportable(&self) -> Vec<PathBuf> {
        lib_files(&self.lib)
            .into_iter()
            .filter(|rel| ModuleName::parse(rel).is_err())
            .map(|rel| self.lib.join(rel))
            .collect()
    }

    /// Has any of these modules changed on disk since they were compiled?
    pub fn changed(&mut self, deps: &Deps) -> bool {
        deps.iter()
            .any(|(name, hash)| self.current_hash(name) != Some(*hash))
    }

    /// Loads the module `raw` names, compiling it (and its imports) on first use.
    fn load(&mut self, engines: &Engines, raw: &str) -> Result<Arc<Loaded>, Failure> {
        let name = ModuleName::parse(raw).map_err(Failure::Refused)?;
        if let Some(done) = self.loaded.get(&name) {
            return done.clone();
        }
        if let Some(i) = self.loading.iter().position(|n| *n == name) {
            let mut chain = self.loading[i..].to_vec();
            chain.push(name);
            return Err(Failure::Cycle(chain));
        }
        if self.loading.len() >= MAX_DEPTH {
            return Err(Failure::TooDeep);
        }
        self.loading.push(name.clone());
        let result = self.build(engines, &name).map(Arc::new);
        self.loading.pop();
        self.loaded.insert(name, result.clone());
        result
    }

    fn build(&mut self, engines: &Engines, name: &ModuleName) -> Result<Loaded, Failure> {
        let file = match name.locate(&self.lib) {
            Located::File(file) => file,
            Located::Missing(file) => return Err(Failure::Missing(file)),
            Located::Outside(file) => return Err(Failure::Outside(file)),
        };
        let original = std::fs::read_to_string(&file)
            .map_err(|e| Failure::Unreadable(file.clone(), e.to_string()))?;
        let hash = super::loader::hash(&original);
        self.hashes.insert(name.clone(), Some(hash));
        let shown = file.display().to_string();
        let source = super::source::quote_call_keys(&original);
        let mut compiled = self
            .compile(engines, &shown, &source)
            .map_err(Failure::Broken)?;
        // The module's top level runs now, once: its `let`/`const` values become the module's
        // variables and its own imports its sub-modules.
        let module = embed::serve(self.ready(), || {
            Module::eval_ast_as_new(Scope::new(), &compiled.ast, &engines.run)
        })
        .map_err(|e| {
            let run = RunError::from_eval(&shown, "", &e, &engines.limits);
            let pos = e.position();
            let mut err = LoadError::at(&shown, &source, pos, run.message);
            err.line = err.line.or(run.line);
            Failure::Broken(err)
        })?;
        compiled.deps.insert(name.clone(), hash);
        Ok(Loaded {
            module: Shared::new(module),
            ast: compiled.ast,
            deps: compiled.deps,
        })
    }

    fn current_hash(&mut self, name: &ModuleName) -> Option<u64> {
        let lib = &self.lib;
        *self.hashes.entry(name.clone()).or_insert_with(|| {
            std::fs::read_to_string(name.file(lib))
                .ok()
                .map(|s| super::loader::hash(&s))
        })
    }

    /// The modules loaded so far, for the resolver.
    fn ready(&self) -> HashMap<ModuleName, Arc<Loaded>> {
        self.loaded
            .iter()
            .filter_map(|(n, r)| Some((n.clone(), r.as_ref().ok()?.clone())))
            .collect()
    }
}

/// A bad literal regex is a mistake in the text, like a syntax error; a script's own function
/// of the same name takes no regex.
fn check_literal_patterns(shown: &str, source: &str, ast: &AST) -> Result<(), LoadError> {
    let bad = super::batteries::literal::bad_literal_patterns(source)
        .into_iter()
        .find(|b| !ast.iter_functions().any(|f| f.name == b.function));
    match bad {
        None => Ok(()),
        Some(bad) => Err(LoadError {
            path: shown.to_owned(),
            line: Some(bad.line),
            col: Some(bad.col),
            source_line: source.lines().nth(bad.line - 1).map(str::to_owned),
            message: bad.message,
        }),
    }
}

/// One `import` statement: the name as written (`None` when it is not a plain string) and
/// where the name is.
struct Import {
    path: Option<String>,
    pos: Position,
}

/// Every `import` of a compiled text, at the top level and inside functions.
fn imports_of(ast: &AST) -> Vec<Import> {
    let mut found = Vec::new();
    ast.walk(&mut |nodes| {
        if let Some(ASTNode::Stmt(Stmt::Import(x, pos))) = nodes.last() {
            found.push(match &x.0 {
                Expr::StringConstant(s, at) => Import {
                    path: Some(s.to_string()),
                    pos: *at,
                },
                _ => Import {
                    path: None,
                    pos: *pos,
                },
            });
        }
        true
    });
    found
}
