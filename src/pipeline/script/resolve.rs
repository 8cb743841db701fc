//! `check`'s look at every plain call (`reply(event)`, `store_gte("k")`): Rhai finds a function
//! only when the call runs, so a misspelt name or a wrong number of arguments would otherwise
//! show up first as a handler failing in production.

use std::collections::{BTreeSet, HashMap, HashSet};

use rhai::{ASTNode, Expr, Position, Stmt, AST};

/// Names Rhai handles itself: not registered functions, so not in the signatures.
const KEYWORDS: [&str; 9] = [
    "print",
    "debug",
    "type_of",
    "Fn",
    "call",
    "curry",
    "is_shared",
    "is_def_fn",
    "is_def_var",
];

/// Every function a script can call without a namespace, by name, with the numbers of
/// arguments it takes: Rhai's standard library and the host API (which `check` reads from the
/// definitions `linebotd definitions` prints; a test keeps those equal to what is registered).
pub struct Callable {
    native: HashMap<String, BTreeSet<usize>>,
}

impl Callable {
    pub fn new(host: impl IntoIterator<Item = (String, usize)>) -> Self {
        let mut native: HashMap<String, BTreeSet<usize>> = HashMap::new();
        for (name, arities) in super::rhai_functions::RHAI_FUNCTIONS {
            native
                .entry((*name).to_owned())
                .or_default()
                .extend(arities.iter());
        }
        for (name, arity) in host {
            native.entry(name).or_default().insert(arity);
        }
        Self { native }
    }

    /// Every name, for "did you mean".
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.native.keys().map(String::as_str)
    }
}

/// A call no function answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadCall {
    pub pos: Position,
    pub name: String,
    pub args: usize,
    /// The argument counts the name takes; empty when nothing has the name.
    pub takes: Vec<usize>,
}

/// Plain calls in `ast` (its functions included) that neither the script's own functions nor
/// `callable` answer, by name and number of arguments. A name that is also a variable or a
/// parameter may hold a function pointer (`let f = Fn("x"); f(1)`), so it is not judged.
pub fn bad_calls(ast: &AST, callable: &Callable) -> Vec<BadCall> {
    let mut own: HashMap<String, BTreeSet<usize>> = HashMap::new();
    let mut variables: HashSet<String> = HashSet::new();
    for f in ast.iter_functions() {
        own.entry(f.name.to_owned())
            .or_default()
            .insert(f.params.len());
        variables.extend(f.params.iter().map(|p| (*p).to_owned()));
    }
    let mut calls = Vec::new();
    ast.walk(&mut |nodes| {
        match nodes.last() {
            Some(ASTNode::Stmt(Stmt::Var(x, ..))) => {
                variables.insert(x.0.name.to_string());
            }
            Some(ASTNode::Expr(Expr::FnCall(call, pos)))
            | Some(ASTNode::Stmt(Stmt::FnCall(call, pos)))
                if call.namespace.is_empty() && !call.is_operator_call() =>
            {
                calls.push((call.name.to_string(), call.args.len(), *pos));
            }
            _ => {}
        }
        true
    });
    calls
        .into_iter()
        .filter(|(name, ..)| !KEYWORDS.contains(&name.as_str()) && !variables.contains(name))
        .filter_map(|(name, args, pos)| {
            let takes: BTreeSet<usize> = own
                .get(&name)
                .into_iter()
                .chain(callable.native.get(&name))
                .flatten()
                .copied()
                .collect();
            (!takes.contains(&args)).then(|| BadCall {
                pos,
                name,
                args,
                takes: takes.into_iter().collect(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_misspelt_names_and_wrong_argument_counts_only() {
        let engines = super::super::engine::build(&super::super::Limits::default());
        let host = [("reply", 2), ("store_set", 2), ("store_get", 1)];
        let callable = Callable::new(host.map(|(n, a)| (n.to_owned(), a)));
        let ast = engines
            .run
            .compile(
                r#"
fn on_message(event) {
    reply(event, "ok");
    repyl(event, "hi");
    reply(event);
    store_set("k");
    let f = Fn("helper");
    f(1);
    helper(1);
    helper(1, 2);
    let n = parse_int("4") + len([1]);
    print(type_of(n));
    event.message.text.to_upper();
}
fn helper(x) { x }
"#,
            )
            .unwrap();
        let bad: Vec<(String, usize, Vec<usize>, Option<usize>)> = bad_calls(&ast, &callable)
            .into_iter()
            .map(|b| (b.name, b.args, b.takes, b.pos.line()))
            .collect();
        assert_eq!(
            bad,
            [
                ("repyl".to_owned(), 2, vec![], Some(4)),
                ("reply".to_owned(), 1, vec![2], Some(5)),
                ("store_set".to_owned(), 1, vec![2], Some(6)),
                ("helper".to_owned(), 2, vec![1], Some(10)),
            ]
        );
    }
}
