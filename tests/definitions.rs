//! The Rhai definitions for editors: the committed file is current, and it names exactly the
//! host functions the engine registers.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use linebotd::cmd::definitions::{declared, DEFINITIONS};

#[test]
fn committed_definitions_match_the_command_output() {
    let out = Command::new(env!("CARGO_BIN_EXE_linebotd"))
        .arg("definitions")
        .output()
        .unwrap();
    assert!(out.status.success());
    let generated = String::from_utf8(out.stdout).unwrap();
    assert_eq!(generated, DEFINITIONS);
    let committed =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/linebotd.d.rhai"))
            .unwrap_or_default();
    assert!(
        committed == generated,
        "docs/linebotd.d.rhai is out of date: run `cargo run -- definitions --out docs/linebotd.d.rhai`"
    );
}

#[test]
fn committed_test_definitions_match_the_command_output() {
    let out = Command::new(env!("CARGO_BIN_EXE_linebotd"))
        .args(["definitions", "--tests"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let generated = String::from_utf8(out.stdout).unwrap();
    assert!(generated.contains("fn send_text(text: String) -> Array;"));
    let committed = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/linebotd-test.d.rhai"),
    )
    .unwrap_or_default();
    assert!(
        committed == generated,
        "docs/linebotd-test.d.rhai is out of date: run `cargo run -- definitions --tests --out docs/linebotd-test.d.rhai`"
    );
}

#[test]
fn definitions_start_as_a_static_module() {
    assert!(DEFINITIONS.starts_with("module static;\n"));
}

/// A literal of a definition parameter type, to call the function with.
fn sample(ty: &str) -> &'static str {
    match ty.trim() {
        "int" => "5",
        "bool" => "true",
        "Array" => "[]",
        "Map" => "#{}",
        _ => "\"x\"", // String and `?` (any)
    }
}

/// Every defined function is called with arguments of its declared types. Outside a handler
/// the LINE and store functions throw "only available while a handler runs", which is fine;
/// only "function not found" means the definition names something the engine lacks (a
/// missing, renamed or re-typed host function).
#[test]
fn every_defined_function_is_registered_on_the_engine() {
    let engines = linebotd::pipeline::script::engine::build(&linebotd::config::Limits::default());
    let mut checked = 0;
    for line in DEFINITIONS.lines().filter_map(|l| l.strip_prefix("fn ")) {
        let (name, rest) = line.split_once('(').unwrap();
        let params = rest.split_once(')').unwrap().0;
        let args: Vec<&str> = params
            .split(',')
            .filter(|p| !p.trim().is_empty())
            .map(|p| sample(p.split_once(':').map_or("?", |(_, t)| t)))
            .collect();
        let call = format!("{name}({})", args.join(", "));
        if let Err(e) = engines.run.eval::<rhai::Dynamic>(&call) {
            assert!(
                !matches!(*e, rhai::EvalAltResult::ErrorFunctionNotFound(..)),
                "`fn {line}` is in the definitions but `{call}` is not registered: {e}"
            );
        }
        checked += 1;
    }
    assert_eq!(checked, declared().len());
    assert!(checked >= 20);
}

/// The other direction: every name registered in the host API source is defined.
#[test]
fn every_registered_host_function_is_defined() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let names: BTreeSet<String> = declared().into_iter().map(|(n, _)| n).collect();
    let mut registered = BTreeSet::new();
    for file in [
        "src/pipeline/script/host.rs",
        "src/pipeline/script/state.rs",
        "src/pipeline/script/http.rs",
        "src/pipeline/script/pause.rs",
        "src/pipeline/script/timers.rs",
        "src/pipeline/script/line_api.rs",
        "src/pipeline/script/batteries/time.rs",
        "src/pipeline/script/batteries/regex.rs",
        "src/pipeline/script/batteries/random.rs",
    ] {
        let source = std::fs::read_to_string(repo.join(file)).unwrap();
        for piece in source.split(".register_fn(").skip(1) {
            let piece = piece.trim_start().strip_prefix('"').unwrap_or_default();
            if let Some((name, _)) = piece.split_once('"') {
                registered.insert(name.to_owned());
            }
        }
    }
    assert!(registered.len() >= 20, "{registered:?}");
    let undocumented: Vec<_> = registered.difference(&names).collect();
    assert!(
        undocumented.is_empty(),
        "host functions missing from src/cmd/definitions.rs: {undocumented:?}"
    );
}
