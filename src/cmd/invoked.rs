//! How the user started linebotd, so that a hint naming another command can be pasted as is:
//! `cargo run --release -- chat` from the repository, `linebotd chat` when it is installed, or
//! the path it was started by (`./target/release/linebotd chat`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The command prefix to print before a subcommand: `cargo run --release --`, `linebotd`, or a
/// path to the binary.
pub fn command() -> &'static str {
    static COMMAND: OnceLock<String> = OnceLock::new();
    COMMAND.get_or_init(|| {
        let exe = std::env::current_exe().unwrap_or_default();
        let arg0 = std::env::args_os().next().unwrap_or_default();
        detect(
            under_cargo(),
            &exe,
            &arg0,
            std::env::var_os("PATH").as_deref(),
        )
    })
}

/// `cargo run` sets `CARGO` and the package's own variables for the program it runs.
fn under_cargo() -> bool {
    std::env::var_os("CARGO").is_some()
        && std::env::var("CARGO_PKG_NAME").as_deref() == Ok(env!("CARGO_PKG_NAME"))
}

/// Where the `cargo install` command for this checkout would point: the repository the running
/// binary was built from, when it still exists. `None` for an installed binary.
pub fn repository() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    dir.join("Cargo.toml").is_file().then_some(dir)
}

/// Whether `linebotd` typed in a shell would start a program.
pub fn on_path() -> bool {
    find_on_path(std::env::var_os("PATH").as_deref()).is_some()
}

fn find_on_path(path: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    std::env::split_paths(path?)
        .map(|dir| dir.join(env!("CARGO_PKG_NAME")))
        .find(|candidate| candidate.is_file())
}

fn detect(
    under_cargo: bool,
    exe: &Path,
    arg0: &OsString,
    path: Option<&std::ffi::OsStr>,
) -> String {
    if under_cargo {
        let release = exe.components().any(|c| c.as_os_str() == "release");
        return if release {
            "cargo run --release --"
        } else {
            "cargo run --"
        }
        .to_owned();
    }
    let typed = Path::new(arg0);
    // A bare name was found on the PATH by the shell.
    if typed.components().count() == 1 {
        return typed.to_string_lossy().into_owned();
    }
    // A path to the binary that is also what the PATH finds: the short name works too.
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if find_on_path(path).is_some_and(|found| same(&found, exe)) {
        return env!("CARGO_PKG_NAME").to_owned();
    }
    typed.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_command_the_way_the_user_started_it() {
        let exe = Path::new("/repo/target/release/linebotd");
        let arg0 = OsString::from("target/release/linebotd");
        assert_eq!(detect(true, exe, &arg0, None), "cargo run --release --");
        let debug = Path::new("/repo/target/debug/linebotd");
        assert_eq!(detect(true, debug, &arg0, None), "cargo run --");
        assert_eq!(
            detect(false, exe, &OsString::from("linebotd"), None),
            "linebotd"
        );
        assert_eq!(
            detect(
                false,
                exe,
                &OsString::from("./target/release/linebotd"),
                None
            ),
            "./target/release/linebotd"
        );
    }

    #[test]
    fn a_path_to_the_binary_the_path_also_finds_is_shortened() {
        let bin = tempfile::tempdir().unwrap();
        let exe = bin.path().join("linebotd");
        std::fs::write(&exe, "").unwrap();
        let path = std::env::join_paths([bin.path()]).unwrap();
        let arg0 = OsString::from(exe.as_os_str());
        assert_eq!(detect(false, &exe, &arg0, Some(&path)), "linebotd");
        assert_eq!(detect(false, &exe, &arg0, None), exe.to_string_lossy());
    }
}
