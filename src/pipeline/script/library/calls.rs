//! `check`'s look at calls into modules: Rhai finds `h::greet(x)` only when the call runs, so a
//! misspelt or private module function would otherwise show up first as a failing handler.

use rhai::{ASTNode, Expr, FnAccess, Position, Stmt, AST};

use super::{Library, ModuleName};

/// A call `alias::name(args)` that no public function of the imported module answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCall {
    pub pos: Position,
    pub alias: String,
    pub name: String,
    pub args: usize,
    pub module: String,
    /// The module's public functions, `name/arity`, to suggest from.
    pub public: Vec<String>,
}

impl Library {
    /// A loaded module's compiled form (for `check` to look at its calls), `None` unless it
    /// loaded.
    pub fn module_ast(&self, name: &ModuleName) -> Option<&AST> {
        match self.loaded.get(name) {
            Some(Ok(loaded)) => Some(&loaded.ast),
            _ => None,
        }
    }

    /// Calls in `ast` to functions its imported modules do not offer (by name and number of
    /// arguments). Modules that failed to load are skipped: their error is reported already.
    pub fn unknown_calls(&self, ast: &AST) -> Vec<UnknownCall> {
        let mut aliases: Vec<(String, ModuleName)> = Vec::new();
        let mut calls = Vec::new();
        ast.walk(&mut |nodes| {
            match nodes.last() {
                Some(ASTNode::Stmt(Stmt::Import(x, _))) => {
                    if let (Expr::StringConstant(path, _), alias) = (&x.0, &x.1) {
                        if let Ok(name) = ModuleName::parse(path) {
                            aliases.push((alias.name.to_string(), name));
                        }
                    }
                }
                // A call is a statement of its own (`h::greet(e);`) or part of an expression.
                Some(ASTNode::Expr(Expr::FnCall(call, pos)))
                | Some(ASTNode::Stmt(Stmt::FnCall(call, pos)))
                    if call.namespace.path.len() == 1 =>
                {
                    calls.push((
                        call.namespace.root().to_owned(),
                        call.name.to_string(),
                        call.args.len(),
                        *pos,
                    ));
                }
                _ => {}
            }
            true
        });
        calls
            .into_iter()
            .filter_map(|(alias, name, args, pos)| {
                let mut modules = aliases.iter().filter(|(a, _)| *a == alias).map(|(_, m)| m);
                let module = modules.next()?;
                // One alias for two modules (imports in different functions): not judged.
                if modules.any(|m| m != module) {
                    return None;
                }
                let Some(Ok(loaded)) = self.loaded.get(module) else {
                    return None;
                };
                let public: Vec<(String, usize)> = loaded
                    .ast
                    .iter_functions()
                    .filter(|f| f.access == FnAccess::Public)
                    .map(|f| (f.name.to_owned(), f.params.len()))
                    .collect();
                if public.iter().any(|(n, p)| *n == name && *p == args) {
                    return None;
                }
                Some(UnknownCall {
                    pos,
                    alias,
                    name,
                    args,
                    module: module.to_string(),
                    public: public.iter().map(|(n, p)| format!("{n}/{p}")).collect(),
                })
            })
            .collect()
    }
}
