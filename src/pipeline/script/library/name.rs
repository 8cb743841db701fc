//! Which names `import` accepts. A module is a file under the scripts folder's `lib/`, named
//! relative to it (`import "shop/prices" as p;` reads `lib/shop/prices.rhai`), so a script can
//! never make the daemon read anything else from disk.

use std::fmt;
use std::path::{Path, PathBuf};

/// What every refusal says is allowed.
pub const ALLOWED: &str = "modules come from the scripts folder's lib/ only, by a relative name \
                           like \"helpers\" or \"shop/prices\"";

/// A checked module name: plain segments joined by `/`, without the `.rhai` suffix.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModuleName(String);

/// Where a name leads, once checked against the disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Located {
    File(PathBuf),
    /// No such file (or not a file).
    Missing(PathBuf),
    /// A link under `lib/` that points outside it.
    Outside(PathBuf),
}

impl ModuleName {
    /// Checks an import path as written. The error says what is wrong with it, in words.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        if raw.contains('\\') {
            return Err("a backslash is not allowed; separate folders with /");
        }
        if raw.starts_with('/') {
            return Err("an absolute path is not allowed");
        }
        let name = raw.strip_suffix(".rhai").unwrap_or(raw);
        if name.is_empty() {
            return Err("the name is empty");
        }
        for segment in name.split('/') {
            match segment {
                "" => return Err("empty folder names (//, or / at the end) are not allowed"),
                ".." => return Err("\"..\" is not allowed"),
                "." => return Err("\".\" is not allowed"),
                s if !s
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') =>
                {
                    return Err("names use letters, digits, _ and - only, with / between folders")
                }
                _ => {}
            }
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `lib/<name>.rhai`, however the name is spelled on this OS.
    pub fn file(&self, lib: &Path) -> PathBuf {
        let mut path = lib.to_owned();
        path.extend(self.0.split('/'));
        path.set_extension("rhai");
        path
    }

    /// Finds the module's file under `lib`, refusing a link that leads out of it.
    pub fn locate(&self, lib: &Path) -> Located {
        let file = self.file(lib);
        let (Ok(real), Ok(real_lib)) = (file.canonicalize(), lib.canonicalize()) else {
            return Located::Missing(file);
        };
        if !real.starts_with(&real_lib) {
            return Located::Outside(file);
        }
        if !real.is_file() {
            return Located::Missing(file);
        }
        Located::File(file)
    }
}

impl fmt::Display for ModuleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `*.rhai` files under `lib` (following no links to folders), as `/`-separated paths
/// relative to it, sorted.
pub(super) fn lib_files(lib: &Path) -> Vec<String> {
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let rel = format!("{prefix}{name}");
            if name.starts_with('.') {
                continue;
            }
            if kind.is_dir() {
                walk(&entry.path(), &format!("{rel}/"), out);
            } else if crate::pipeline::script::loader::is_script_name(&name) {
                out.push(rel);
            }
        }
    }
    let mut out = Vec::new();
    walk(lib, "", &mut out);
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_relative_names_with_or_without_the_suffix() {
        for (raw, name) in [
            ("helpers", "helpers"),
            ("helpers.rhai", "helpers"),
            ("shop/prices", "shop/prices"),
            ("a-b_c/D9", "a-b_c/D9"),
        ] {
            assert_eq!(ModuleName::parse(raw).map(|n| n.0), Ok(name.to_owned()));
        }
    }

    #[test]
    fn refuses_anything_that_could_leave_lib() {
        for (raw, why) in [
            ("../etc/passwd", "\"..\""),
            ("shop/../../x", "\"..\""),
            ("/etc/passwd", "absolute"),
            ("./helpers", "\".\""),
            ("shop\\prices", "backslash"),
            ("shop//prices", "empty folder"),
            ("shop/", "empty folder"),
            ("", "empty"),
            (".rhai", "empty"),
            ("C:/x", "letters, digits"),
            ("my helpers", "letters, digits"),
            ("helpers.txt", "letters, digits"),
            ("~/x", "letters, digits"),
        ] {
            let err = ModuleName::parse(raw).expect_err(raw);
            assert!(err.contains(why), "{raw}: {err}");
        }
    }

    #[test]
    fn locates_files_in_lib_and_refuses_links_out_of_it() {
        let dir = tempfile::tempdir().unwrap();
        let lib = dir.path().join("lib");
        std::fs::create_dir_all(lib.join("shop")).unwrap();
        std::fs::write(lib.join("shop/prices.rhai"), "").unwrap();
        std::fs::write(dir.path().join("secret.rhai"), "").unwrap();
        let name = |s| ModuleName::parse(s).unwrap();
        assert_eq!(
            name("shop/prices").locate(&lib),
            Located::File(lib.join("shop").join("prices.rhai"))
        );
        assert_eq!(
            name("nothing").locate(&lib),
            Located::Missing(lib.join("nothing.rhai"))
        );
        // A folder is no module.
        std::fs::create_dir(lib.join("dir.rhai")).unwrap();
        assert!(matches!(name("dir").locate(&lib), Located::Missing(_)));
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(dir.path().join("secret.rhai"), lib.join("out.rhai"))
                .unwrap();
            assert!(matches!(name("out").locate(&lib), Located::Outside(_)));
            std::os::unix::fs::symlink(lib.join("shop/prices.rhai"), lib.join("in.rhai")).unwrap();
            assert!(matches!(name("in").locate(&lib), Located::File(_)));
        }
    }
}
