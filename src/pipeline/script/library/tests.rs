use std::path::Path;
use std::sync::Arc;

use rhai::{CallFnOptions, Dynamic};

use crate::pipeline::script::engine::{self, Engines};
use crate::pipeline::script::loader::{self, Script, ScriptSet};
use crate::pipeline::script::{Limits, LoadError};

fn engines() -> Engines {
    engine::build(&Limits::default())
}

/// A scripts folder with `files` (paths relative to it, `lib/...` for modules).
fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        write(dir.path(), name, text);
    }
    dir
}

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// Calls `function(arg)` the way the runtime does.
fn call(engines: &Engines, script: &Script, function: &str, arg: &str) -> Result<String, String> {
    let options = CallFnOptions::new().eval_ast(true).rewind_scope(true);
    engines
        .run
        .call_fn_with_options::<Dynamic>(
            options,
            &mut script.constants.clone(),
            &script.call_ast,
            function,
            (arg.to_owned(),),
        )
        .map(|v| v.to_string())
        .map_err(|e| e.to_string())
}

fn load(engines: &Engines, dir: &Path, previous: &ScriptSet) -> ScriptSet {
    loader::load_dir(engines, dir, previous).unwrap()
}

fn only_error(set: &ScriptSet) -> &LoadError {
    assert_eq!(set.errors.len(), 1, "{:?}", set.errors);
    set.errors.values().next().unwrap()
}

const HELPERS: &str = "const GREETING = \"Hello\";\n\
                       export const SHOP = \"Sakura\";\n\
                       fn greet(name) { GREETING + \", \" + name + secret() }\n\
                       private fn secret() { \"!\" }\n";
const BOT: &str = "import \"helpers\" as h;\n\
                   fn on_message(e) { h::greet(e) }\n\
                   fn hidden(e) { h::secret() }\n\
                   fn shop(e) { h::SHOP }\n";

#[test]
fn a_script_calls_a_module_function_that_uses_the_module_constants() {
    let dir = folder(&[("bot.rhai", BOT), ("lib/helpers.rhai", HELPERS)]);
    let engines = engines();
    let set = load(&engines, dir.path(), &ScriptSet::default());
    assert!(set.errors.is_empty(), "{:?}", set.errors);
    let bot = &set.scripts[0];
    assert_eq!(
        call(&engines, bot, "on_message", "Ann").unwrap(),
        "Hello, Ann!"
    );
    assert_eq!(call(&engines, bot, "shop", "").unwrap(), "Sakura");
    let private = call(&engines, bot, "hidden", "x").unwrap_err();
    assert!(private.contains("h::secret"), "{private}");
}

#[test]
fn modules_import_modules_by_folder_and_imports_work_inside_functions() {
    let dir = folder(&[
        (
            "bot.rhai",
            "fn on_message(e) { import \"shop/prices.rhai\" as p; p::label(e) }",
        ),
        (
            "lib/shop/prices.rhai",
            "import \"money\" as m;\nfn label(item) { item + \": \" + m::yen(300) }",
        ),
        ("lib/money.rhai", "fn yen(n) { `¥${n}` }"),
    ]);
    let engines = engines();
    let set = load(&engines, dir.path(), &ScriptSet::default());
    assert!(set.errors.is_empty(), "{:?}", set.errors);
    assert_eq!(
        call(&engines, &set.scripts[0], "on_message", "tea").unwrap(),
        "tea: ¥300"
    );
}

#[test]
fn module_files_are_never_loaded_as_bots() {
    let dir = folder(&[
        ("bot.rhai", "fn on_message(e) {}"),
        ("lib/helpers.rhai", "fn on_message(e) {}"),
    ]);
    let files = loader::script_files(dir.path()).unwrap();
    assert_eq!(files, [dir.path().join("bot.rhai")]);
    let set = load(&engines(), dir.path(), &ScriptSet::default());
    let names: Vec<&str> = set.scripts.iter().map(|s| &*s.name).collect();
    assert_eq!(names, ["bot.rhai"]);
}

#[test]
fn a_missing_module_is_an_error_at_the_import_line() {
    let dir = folder(&[("bot.rhai", "// greeter\nimport \"helpers\" as h;\n")]);
    let set = load(&engines(), dir.path(), &ScriptSet::default());
    let err = only_error(&set);
    assert_eq!((err.line, err.col), (Some(2), Some(8)), "{err}");
    let file = dir.path().join("lib").join("helpers.rhai");
    assert_eq!(
        err.message,
        format!("no module \"helpers\": {} does not exist", file.display())
    );
    assert_eq!(err.source_line.as_deref(), Some("import \"helpers\" as h;"));
}

#[test]
fn an_import_out_of_lib_is_refused_at_its_line() {
    let dir = folder(&[
        ("bot.rhai", "\n\nimport \"../etc/passwd\" as p;\n"),
        ("etc/passwd.rhai", "fn x() {}"),
    ]);
    let err = only_error(&load(&engines(), dir.path(), &ScriptSet::default())).clone();
    assert_eq!(err.line, Some(3), "{err}");
    assert_eq!(
        err.message,
        "import \"../etc/passwd\" refused (\"..\" is not allowed): modules come from the \
         scripts folder's lib/ only, by a relative name like \"helpers\" or \"shop/prices\""
    );
}

#[cfg(unix)]
#[test]
fn a_link_out_of_lib_is_refused() {
    let dir = folder(&[
        ("bot.rhai", "import \"sneaky\" as s;"),
        ("secret.rhai", "fn x() {}"),
        ("lib/ok.rhai", ""),
    ]);
    let lib = dir.path().join("lib");
    std::os::unix::fs::symlink(dir.path().join("secret.rhai"), lib.join("sneaky.rhai")).unwrap();
    let err = only_error(&load(&engines(), dir.path(), &ScriptSet::default())).clone();
    assert!(
        err.message.contains("is a link to a file outside lib/"),
        "{err}"
    );
}

#[test]
fn a_broken_module_is_reported_at_the_import_and_in_the_module() {
    let dir = folder(&[
        ("bot.rhai", "// bot\nimport \"helpers\" as h;\n"),
        ("lib/helpers.rhai", "fn greet(n) {\n    n +\n}\n"),
    ]);
    let err = only_error(&load(&engines(), dir.path(), &ScriptSet::default())).clone();
    let module = dir.path().join("lib").join("helpers.rhai");
    assert_eq!(
        err.headline(),
        format!(
            "{}:2:8: module \"helpers\" ({}:3:1): Unexpected '}}'",
            dir.path().join("bot.rhai").display(),
            module.display()
        )
    );
}

#[test]
fn a_module_failing_at_its_top_level_names_the_line() {
    let dir = folder(&[
        ("bot.rhai", "import \"helpers\" as h;"),
        ("lib/helpers.rhai", "let a = [1];\n\nlet b = a[5];\n"),
    ]);
    let err = only_error(&load(&engines(), dir.path(), &ScriptSet::default())).clone();
    assert!(
        err.message.contains("helpers.rhai:3:") && err.message.contains("out of bounds"),
        "{err}"
    );
}

#[test]
fn an_import_cycle_is_an_error_not_a_crash() {
    let dir = folder(&[
        ("bot.rhai", "import \"a\" as a;"),
        ("lib/a.rhai", "import \"b\" as b;"),
        ("lib/b.rhai", "import \"a\" as a;"),
    ]);
    let err = only_error(&load(&engines(), dir.path(), &ScriptSet::default())).clone();
    assert!(err.message.contains("import cycle: a -> b -> a"), "{err}");
    assert_eq!(err.line, Some(1));
}

#[test]
fn a_module_importing_itself_and_a_too_deep_chain_are_errors() {
    let dir = folder(&[
        ("self.rhai", "import \"me\" as m;"),
        ("lib/me.rhai", "import \"me\" as m;"),
    ]);
    let err = only_error(&load(&engines(), dir.path(), &ScriptSet::default())).clone();
    assert!(err.message.contains("import cycle: me -> me"), "{err}");

    let mut files = vec![("bot.rhai".to_owned(), "import \"m0\" as m;".to_owned())];
    for i in 0..12 {
        files.push((
            format!("lib/m{i}.rhai"),
            format!("import \"m{}\" as m;", i + 1),
        ));
    }
    files.push(("lib/m12.rhai".into(), String::new()));
    let refs: Vec<(&str, &str)> = files.iter().map(|(a, b)| (&**a, &**b)).collect();
    let dir = folder(&refs);
    let err = only_error(&load(&engines(), dir.path(), &ScriptSet::default())).clone();
    assert!(err.message.contains("more than 8 deep"), "{err}");
}

#[test]
fn an_import_must_name_its_module_in_quotes() {
    let dir = folder(&[("bot.rhai", "let n = \"helpers\";\nimport n as h;")]);
    let err = only_error(&load(&engines(), dir.path(), &ScriptSet::default())).clone();
    assert_eq!(err.line, Some(2));
    assert!(err.message.contains("in quotes"), "{err}");
}

#[test]
fn saving_a_module_recompiles_its_importers_only() {
    let dir = folder(&[
        ("bot.rhai", BOT),
        ("other.rhai", "fn on_follow(e) {}"),
        ("lib/helpers.rhai", HELPERS),
    ]);
    let engines = engines();
    let first = load(&engines, dir.path(), &ScriptSet::default());
    let same = load(&engines, dir.path(), &first);
    assert!(Arc::ptr_eq(&first.scripts[0], &same.scripts[0]));
    assert!(Arc::ptr_eq(&first.scripts[1], &same.scripts[1]));

    write(
        dir.path(),
        "lib/helpers.rhai",
        "fn greet(name) { \"Hi \" + name }",
    );
    let changed = load(&engines, dir.path(), &same);
    assert!(changed.errors.is_empty(), "{:?}", changed.errors);
    assert!(!Arc::ptr_eq(&same.scripts[0], &changed.scripts[0]));
    assert!(Arc::ptr_eq(&same.scripts[1], &changed.scripts[1]));
    assert_eq!(
        call(&engines, &changed.scripts[0], "on_message", "Bo").unwrap(),
        "Hi Bo"
    );
}

#[test]
fn a_change_two_imports_away_recompiles_the_script() {
    let dir = folder(&[
        (
            "bot.rhai",
            "import \"a\" as a;\nfn on_message(e) { a::f() }",
        ),
        ("lib/a.rhai", "import \"b\" as b;\nfn f() { b::g() }"),
        ("lib/b.rhai", "fn g() { 1 }"),
    ]);
    let engines = engines();
    let first = load(&engines, dir.path(), &ScriptSet::default());
    write(dir.path(), "lib/b.rhai", "fn g() { 2 }");
    let second = load(&engines, dir.path(), &first);
    assert_eq!(
        call(&engines, &second.scripts[0], "on_message", "").unwrap(),
        "2"
    );
}

#[test]
fn a_module_that_stops_compiling_leaves_its_importers_on_their_last_good_version() {
    let dir = folder(&[("bot.rhai", BOT), ("lib/helpers.rhai", HELPERS)]);
    let engines = engines();
    let good = load(&engines, dir.path(), &ScriptSet::default());
    write(dir.path(), "lib/helpers.rhai", "fn greet(name) { ");
    let broken = load(&engines, dir.path(), &good);
    assert!(Arc::ptr_eq(&good.scripts[0], &broken.scripts[0]));
    let err = only_error(&broken);
    assert!(err.message.starts_with("module \"helpers\" ("), "{err}");
    assert_eq!(
        call(&engines, &broken.scripts[0], "on_message", "Cy").unwrap(),
        "Hello, Cy!"
    );
    // Deleting it is the same: the last good version keeps running.
    std::fs::remove_file(dir.path().join("lib/helpers.rhai")).unwrap();
    let gone = load(&engines, dir.path(), &broken);
    assert!(Arc::ptr_eq(&good.scripts[0], &gone.scripts[0]));
    assert!(only_error(&gone).message.starts_with("no module"));
}

#[test]
fn a_handler_never_reads_lib_at_run_time() {
    let dir = folder(&[("bot.rhai", BOT), ("lib/helpers.rhai", HELPERS)]);
    let engines = engines();
    let set = load(&engines, dir.path(), &ScriptSet::default());
    std::fs::remove_dir_all(dir.path().join("lib")).unwrap();
    assert_eq!(
        call(&engines, &set.scripts[0], "on_message", "Di").unwrap(),
        "Hello, Di!"
    );
}

#[test]
fn a_scheduled_function_and_the_constants_of_a_script_work_with_imports() {
    let bot = "import \"helpers\" as h;\n\
               const WHO = \"everyone\";\n\
               const SCHEDULES = [#{ cron: \"0 9 * * *\", call: \"morning\" }];\n\
               fn morning() { h::greet(WHO) }\n";
    let dir = folder(&[("bot.rhai", bot), ("lib/helpers.rhai", HELPERS)]);
    let engines = engines();
    let set = load(&engines, dir.path(), &ScriptSet::default());
    assert!(set.errors.is_empty(), "{:?}", set.errors);
    let script = &set.scripts[0];
    assert_eq!(script.schedules.len(), 1);
    let options = CallFnOptions::new().eval_ast(true).rewind_scope(true);
    let said = engines
        .run
        .call_fn_with_options::<String>(
            options,
            &mut script.constants.clone(),
            &script.call_ast,
            "morning",
            (),
        )
        .unwrap();
    assert_eq!(said, "Hello, everyone!");
}
