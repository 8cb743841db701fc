//! Running `linebotd simulate` on one script, for the web-call tests.

use std::process::Command;

use super::daemon::{bin, Scripts};

/// An exposed environment value the tests look for in every output.
pub const SECRET_VALUE: &str = "sk-test-0123456789abcdef";

/// Runs `linebotd simulate --text go` on `script` with `args`; returns (success, stdout + stderr).
pub fn simulate(script: &str, args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let scripts = Scripts::new(&[("bot.rhai", script)]);
    let out = Command::new(bin())
        .arg("simulate")
        .arg("--scripts")
        .arg(scripts.path())
        .args(["--text", "go"])
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "debug")
        .envs(env.iter().copied())
        .output()
        .expect("run linebotd simulate");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}
