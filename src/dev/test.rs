//! `linebotd test [DIR]`: runs every `fn test_*()` of the `*.test.rhai` files in DIR against the
//! bot scripts of DIR, each test with a fresh bot (fresh `:memory:` store, fresh fake LINE).
//!
//! Test files run on their own engine with the test helpers (`test_engine.rs`); the bot's
//! scripts run on the daemon's engine, so a bot behaves in tests exactly as it does in
//! production.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use rhai::{CallFnOptions, Dynamic, EvalAltResult, Scope};

use crate::cli::TestArgs;
use crate::cmd::CommandError;
use crate::pipeline::script::library::Library;

use super::local::{LocalBot, LocalSetup};
use super::test_engine::{at, lock, test_engine, TestBot, TestState};

pub async fn run(args: TestArgs) -> Result<ExitCode, CommandError> {
    let setup = LocalSetup::load(&args.local, &args.dir, true)?;
    match tokio::task::spawn_blocking(move || run_blocking(&args.dir, &setup)).await {
        Ok(result) => result,
        Err(e) => {
            eprintln!("error: the test run crashed: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn run_blocking(dir: &Path, setup: &LocalSetup) -> Result<ExitCode, CommandError> {
    let files = test_files(dir).map_err(|source| CommandError::ReadDir {
        path: dir.to_owned(),
        source,
    })?;
    if files.is_empty() {
        println!(
            "no test files in {} (write NAME.test.rhai with fn test_something() {{ ... }})",
            dir.display()
        );
        println!("0 passed, 0 failed");
        // Nothing tested is not a pass: a CI job with a typo in the folder would go green.
        return Ok(ExitCode::FAILURE);
    }
    let handle = tokio::runtime::Handle::current();
    // Compile the bot once up front so a broken script is one clear error, not one per test.
    if let Err(e) = handle.block_on(LocalBot::start(dir, setup)) {
        eprintln!("{e}");
        println!("0 passed, 1 failed");
        return Ok(ExitCode::FAILURE);
    }

    let state: TestBot = Arc::default();
    let (mut passed, mut failed) = (0usize, 0usize);
    // Modules a test file imports from lib/ are compiled as the bot's scripts see them; their
    // functions then run on the test engine, so the test helpers are there and the host API
    // (reply, push …) is not.
    let engines =
        crate::pipeline::script::engine::build(&setup.limits).with_timezone(setup.timezone);
    let mut library = Library::new(dir);
    for file in files {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let engine = test_engine(&name, state.clone(), setup.timezone);
        let source = match std::fs::read_to_string(&file) {
            Ok(s) => s,
            Err(e) => {
                println!("FAIL {name} — cannot read: {e}");
                failed += 1;
                continue;
            }
        };
        let ast = match library.compile_test(&engines, &engine, &name, &source) {
            Ok(ast) => ast,
            Err(err) => {
                println!("FAIL {name} — {}", err.render());
                failed += 1;
                continue;
            }
        };
        let mut tests: Vec<String> = ast
            .iter_functions()
            .filter(|f| f.name.starts_with("test_") && f.params.is_empty())
            .map(|f| f.name.to_owned())
            .collect();
        tests.sort();
        for test in tests {
            let fresh = match handle.block_on(LocalBot::start(dir, setup)) {
                Ok(bot) => bot,
                Err(e) => {
                    println!("FAIL {name}::{test} — {e}");
                    failed += 1;
                    continue;
                }
            };
            *lock(&state) = TestState {
                bot: Some(fresh),
                texts: Vec::new(),
            };
            // Top-level statements run before each test, like a setup block.
            let options = CallFnOptions::new().eval_ast(true).rewind_scope(true);
            let result =
                engine.call_fn_with_options::<Dynamic>(options, &mut Scope::new(), &ast, &test, ());
            *lock(&state) = TestState::default();
            match result {
                Ok(_) => {
                    println!("ok   {name}::{test}");
                    passed += 1;
                }
                Err(e) => {
                    println!("FAIL {name}::{test} — {}", describe(&name, &e));
                    failed += 1;
                }
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `*.test.rhai` directly in `dir`, in name order.
fn test_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".test.rhai") && !n.starts_with('.'))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// A failed test as `file:line: message`: our assertions carry their own position; other errors
/// are located at the innermost position Rhai knows.
fn describe(file: &str, err: &EvalAltResult) -> String {
    let mut inner = err;
    let mut line = err.position().line();
    while let EvalAltResult::ErrorInFunctionCall(_, _, next, pos) = inner {
        line = next.position().line().or(pos.line()).or(line);
        inner = next;
    }
    match inner {
        EvalAltResult::ErrorRuntime(value, _) if value.is_string() => {
            let text = value.to_string();
            if text.starts_with(&format!("{file}:")) {
                text
            } else {
                at(file, line, &text)
            }
        }
        other => {
            let text = other.to_string();
            let text = match text.rfind(" (line ") {
                Some(i) if text.ends_with(')') => text[..i].to_owned(),
                _ => text,
            };
            at(file, line, &text)
        }
    }
}
