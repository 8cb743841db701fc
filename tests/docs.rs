//! Every ```rhai block in docs/scripting.md and the READMEs (the repository's and each
//! example's) is a complete script that passes `linebotd check`. A block meant to show a mistake
//! is fenced as ```text instead. A block that starts with `// scripts/lib/NAME.rhai` is a
//! module, checked at that place in `lib/` (so the scripts beside it can import it). A block
//! that starts with `// scripts/NAME.rhai` is also the bot of the test block that starts with
//! `// scripts/NAME.test.rhai` (in any of the docs): every test block names its bot, and
//! `linebotd test` runs the two together and must pass.

use std::path::Path;
use std::process::Command;

/// The bodies of the fenced blocks whose info string is exactly `rhai`.
fn rhai_blocks(markdown: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, line) in markdown.lines().enumerate() {
        let fence = line.trim_start();
        match current.take() {
            Some(block) if fence.starts_with("```") => blocks.push(block),
            Some((start, mut body)) => {
                body.push_str(line);
                body.push('\n');
                current = Some((start, body));
            }
            None if fence.trim_end() == "```rhai" => current = Some((i + 1, String::new())),
            None => {}
        }
    }
    blocks
}

#[test]
fn every_rhai_block_in_the_docs_passes_check() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let (mut count, mut modules) = (0, 0);
    let mut bots = std::collections::HashMap::new();
    let mut tests = Vec::new();
    let mut docs = vec!["docs/scripting.md".to_owned(), "README.md".to_owned()];
    for example in std::fs::read_dir(repo.join("examples")).unwrap().flatten() {
        if example.path().join("README.md").is_file() {
            let name = example.file_name().to_string_lossy().into_owned();
            docs.push(format!("examples/{name}/README.md"));
        }
    }
    docs.push("examples/README.md".to_owned());
    for doc in &docs {
        let text = std::fs::read_to_string(repo.join(doc)).unwrap();
        for (line, body) in rhai_blocks(&text) {
            let module = body
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("// scripts/lib/"))
                .and_then(|l| l.split_whitespace().next());
            if let Some(module) = module {
                let path = dir.path().join("lib").join(module);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                assert!(!path.exists(), "two docs modules named {module}");
                std::fs::write(path, body).unwrap();
                modules += 1;
                continue;
            }
            // A test file's block calls the test helpers (send_text, assert_eq …), which a
            // bot does not have: `linebotd test` runs it below, with its bot.
            let named = body
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("// scripts/"))
                .and_then(|l| l.split_whitespace().next())
                .map(str::to_owned);
            if body.contains("fn test_") {
                let bot = named.as_deref().and_then(|n| n.strip_suffix(".test.rhai"));
                let bot = bot.unwrap_or_else(|| {
                    panic!("{doc}:{line}: a test block starts with // scripts/NAME.test.rhai")
                });
                tests.push((format!("{doc}:{line}"), bot.to_owned(), body));
                continue;
            }
            if let Some(name) = named.as_deref().and_then(|n| n.strip_suffix(".rhai")) {
                let earlier = bots.insert(name.to_owned(), body.clone());
                assert!(earlier.is_none(), "two docs bots named {name}.rhai");
            }
            let name = format!("{}_line{line}.rhai", doc.replace(['/', '.'], "_"));
            std::fs::write(dir.path().join(name), body).unwrap();
            count += 1;
        }
    }
    assert!(count >= 10, "only {count} rhai blocks found");
    assert!(modules >= 1, "the lib/ example is gone");
    assert!(
        tests.len() >= 3,
        "only {} test file blocks found",
        tests.len()
    );
    let out = Command::new(env!("CARGO_BIN_EXE_linebotd"))
        .arg("check")
        .arg(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "a docs block fails check:\n{text}"
    );
    assert!(
        text.contains(&format!("{count} scripts, {modules} modules, 0 errors")),
        "{text}"
    );
    assert!(
        !text.contains("warning"),
        "a docs block has a warning:\n{text}"
    );
    for (place, bot, body) in tests {
        let script = bots.get(&bot).unwrap_or_else(|| {
            panic!("{place}: no docs block starts with // scripts/{bot}.rhai, the bot it tests")
        });
        let scripts = tempfile::tempdir().unwrap();
        std::fs::write(scripts.path().join(format!("{bot}.rhai")), script).unwrap();
        std::fs::write(scripts.path().join(format!("{bot}.test.rhai")), body).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_linebotd"))
            .arg("test")
            .arg(scripts.path())
            .current_dir(scripts.path())
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{place}: the test block fails with its bot:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn finds_only_rhai_fenced_blocks() {
    let md = "x\n```rhai\nfn a() {}\n```\n```text\nbroken(\n```\n  ```rhai\nlet b = 1;\n  ```\n";
    let blocks = rhai_blocks(md);
    assert_eq!(blocks.len(), 2);
    assert_eq!(blocks[0], (2, "fn a() {}\n".to_owned()));
    assert_eq!(blocks[1].1, "let b = 1;\n");
}

/// The guide's table of Messaging API operations names every operation of LINE's spec (kept as
/// `tests/fixtures/messaging_api_operations.txt`), with its method, path and host, and a way to
/// reach it that sends what the spec asks: no body where it has none, a blob on the data host.
#[test]
fn the_guide_shows_how_to_reach_every_messaging_api_operation() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let guide = std::fs::read_to_string(repo.join("docs/scripting.md")).unwrap();
    let spec =
        std::fs::read_to_string(repo.join("tests/fixtures/messaging_api_operations.txt")).unwrap();
    let mut count = 0;
    for line in spec.lines().filter(|l| !l.starts_with('#')) {
        let [id, method, path, host, body] = line.split(' ').collect::<Vec<_>>()[..] else {
            panic!("bad fixture line {line}");
        };
        count += 1;
        let row = guide
            .lines()
            .find(|l| l.starts_with(&format!("| `{id}` |")))
            .unwrap_or_else(|| panic!("the guide's table has no row for {id}"));
        let cells: Vec<&str> = row.split(" | ").collect();
        let data_host = if host == "data" { " (data host)" } else { "" };
        assert_eq!(cells[1], format!("`{method} {path}`{data_host}"), "{id}");
        let how = cells[2];
        let ways: &[&str] = match (method, host, body) {
            ("GET", "data", _) => &["`line_get_data(path)`", "`content(event)`"],
            ("POST", "data", "binary") => &["`line_post_data(path, blob,"],
            ("GET", "api", _) => &["`line_get(path", "`profile(user_id)`"],
            ("POST", "api", "none") => &["`line_post(path)`"],
            ("POST", "api", "json") => &[
                "`line_post(path, body)`",
                "`reply(event, messages)`",
                "`push(to, messages)`",
                "`multicast(user_ids, messages)`",
                "`broadcast(messages)`",
                "`narrowcast(messages, recipient, filter",
                "`loading(chat_id, seconds)`",
            ],
            ("PUT", "api", "none") => &["`line_put(path)`"],
            ("PUT", "api", "json") => &["`line_put(path, body)`"],
            ("DELETE", "api", "none") => &["`line_delete(path)`"],
            other => panic!("{id}: no way to reach {other:?}"),
        };
        assert!(
            ways.iter().any(|w| how.starts_with(w)),
            "{id} ({method} {host}, body {body}): the guide says {how}, expected one of {ways:?}"
        );
    }
    assert_eq!(count, 73);
    let rows = guide
        .lines()
        .filter(|l| {
            let cell = l.split(" | ").nth(1).unwrap_or_default();
            l.starts_with("| `")
                && ["`GET /", "`POST /", "`PUT /", "`DELETE /"]
                    .iter()
                    .any(|m| cell.starts_with(m))
        })
        .count();
    assert_eq!(
        rows, count,
        "the table has rows for operations the spec does not have"
    );
}
