//! The daemon under test: the real `linebotd` release binary in a temp folder of its own (the
//! benchmark's script, fresh store), its address, and its memory as `/proc` reports it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

pub const SECRET: &str = "bench_channel_secret";
pub const TOKEN: &str = "bench_channel_token";

/// The bot the daemon runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Script {
    /// `on_message` replies once: `prefix` before the user's text.
    Echo,
    /// `on_message` asks LINE for the sender's profile, then replies once with its name.
    Profile,
}

impl Script {
    pub fn name(self) -> &'static str {
        match self {
            Self::Echo => "echo",
            Self::Profile => "profile",
        }
    }

    fn file(self) -> String {
        format!("{}.rhai", self.name())
    }

    /// The script's source, with `prefix` at the start of every reply.
    pub fn source(self, prefix: &str) -> String {
        match self {
            Self::Echo => format!(
                "fn on_message(event) {{\n    reply(event, \"{prefix}\" + event.message.text);\n}}\n"
            ),
            Self::Profile => format!(
                "fn on_message(event) {{\n    let p = profile(event.source.userId);\n    \
                 reply(event, \"{prefix}\" + p.displayName + \": \" + event.message.text);\n}}\n"
            ),
        }
    }
}

/// How the daemon is configured.
pub struct Settings<'a> {
    pub line_api: &'a str,
    pub tag: &'a str,
    pub script: Script,
    /// Sets `LINEBOTD_LINE_RATE_LIMIT=0` (client-side LINE rate limits off). Otherwise the
    /// daemon runs with its default configuration.
    pub rate_limit_off: bool,
    /// A PostgreSQL URL to use instead of a fresh SQLite file.
    pub store: Option<&'a str>,
}

/// Refuses more than one daemon on anything but a PostgreSQL URL: a SQLite file belongs to one
/// process.
pub fn check_instances(instances: usize, store: Option<&str>) -> Result<(), String> {
    if instances > 1 && !store.is_some_and(linebotd::store::is_postgres) {
        return Err(format!(
            "--instances {instances} needs --store postgres://…: several daemons share one \
             PostgreSQL database, while a SQLite store belongs to one process"
        ));
    }
    Ok(())
}

/// The release `linebotd` to measure: `cargo bench` builds it with the bench's own (release)
/// profile before it builds this, so the one documented command always measures the current
/// source.
pub fn binary() -> Result<PathBuf, String> {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_linebotd"));
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!(
            "{} not found: start the benchmark with `cargo bench --bench e2e`, which builds it",
            bin.display()
        ))
    }
}

/// The commit the daemon's source is at, and how many of its files differ from it
/// (`871cc99`, `871cc99 + 3 file(s) not committed`), when `git` can say. The benchmark's own
/// files (under `benches/`) do not count.
pub fn source_revision() -> Option<String> {
    let dir = env!("CARGO_MANIFEST_DIR");
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let commit = git(&["rev-parse", "--short", "HEAD"])?;
    let changed = git(&[
        "status",
        "--porcelain",
        "--",
        "src",
        "Cargo.toml",
        "Cargo.lock",
    ])?;
    Some(if changed.is_empty() {
        commit
    } else {
        format!(
            "{commit} + {} file(s) not committed",
            changed.lines().count()
        )
    })
}

/// A running daemon; killed on drop.
pub struct Daemon {
    child: Child,
    pub addr: String,
    pub scripts: PathBuf,
    script: Script,
    /// Its stderr (warnings and errors only: it runs with `RUST_LOG=warn`).
    pub log: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Daemon {
    /// Starts `bin` against the mock LINE API and waits until it listens.
    pub fn start(bin: &Path, settings: &Settings<'_>) -> Result<Self, String> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("linebotd-bench-{}-", settings.tag))
            .tempdir()
            .map_err(|e| format!("temp folder: {e}"))?;
        let scripts = dir.path().join("scripts");
        std::fs::create_dir_all(&scripts).map_err(|e| format!("scripts folder: {e}"))?;
        let script = settings.script;
        std::fs::write(scripts.join(script.file()), script.source("echo: "))
            .map_err(|e| format!("writing the {} script: {e}", script.name()))?;
        let line_api = settings.line_api;
        let mut command = Command::new(bin);
        command
            .arg("run")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("CHANNEL_SECRET", SECRET)
            .env("CHANNEL_ACCESS_TOKEN", TOKEN)
            .env("LINEBOTD_LISTEN", "127.0.0.1:0")
            .env("LINEBOTD_SCRIPTS", &scripts)
            .env(
                "LINEBOTD_STORE",
                settings
                    .store
                    .map_or_else(|| dir.path().join("store.db"), PathBuf::from),
            )
            .env("LINE_API_BASE", line_api)
            .env("LINE_DATA_API_BASE", line_api)
            // warn: the per-request info line would dominate. The daemon module stays at info
            // for the one "listening on" line this waits for.
            .env("RUST_LOG", "warn,linebotd::daemon=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if settings.rate_limit_off {
            // The instant mock is local: LINE's 2,000 requests/s limit does not apply to it.
            command.env("LINEBOTD_LINE_RATE_LIMIT", "0");
        }
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let (addr_tx, addr_rx) = mpsc::channel();
        if let Some(stderr) = child.stderr.take() {
            let log = log.clone();
            // Keeps reading until the daemon exits, so its stderr pipe never fills.
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Some(rest) = line.split("listening on http://").nth(1) {
                        let addr = rest.split(['/', ' ']).next().unwrap_or_default();
                        let _ = addr_tx.send(addr.to_owned());
                    }
                    let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
                    if log.len() < 1000 {
                        log.push(line);
                    }
                }
            });
        }
        let mut daemon = Self {
            child,
            addr: String::new(),
            scripts,
            script,
            log,
            _dir: dir,
        };
        match addr_rx.recv_timeout(Duration::from_secs(20)) {
            Ok(addr) => daemon.addr = addr,
            Err(_) => {
                return Err(format!(
                    "linebotd did not start within 20 s; its output:\n{}",
                    daemon.log_text()
                ))
            }
        }
        Ok(daemon)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_text(&self) -> String {
        self.log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .join("\n")
    }

    /// Saves the script with a new reply prefix, the way an editor writes in place.
    pub fn save_script(&self, prefix: &str) -> std::io::Result<()> {
        std::fs::write(
            self.scripts.join(self.script.file()),
            self.script.source(prefix),
        )
    }

    /// Still running?
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Samples a process's resident memory every 100 ms until dropped.
pub struct MemoryProbe {
    stop: Arc<AtomicBool>,
    max_rss_kb: Arc<AtomicU64>,
    pid: u32,
}

impl MemoryProbe {
    pub fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let max_rss_kb = Arc::new(AtomicU64::new(0));
        let (s, m) = (stop.clone(), max_rss_kb.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Some(kb) = status_kb(pid, "VmRSS:") {
                    m.fetch_max(kb, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Self {
            stop,
            max_rss_kb,
            pid,
        }
    }

    /// The highest resident memory seen: the kernel's high-water mark (VmHWM) if readable,
    /// else the largest 100 ms sample, in KiB.
    pub fn peak_kb(&self) -> u64 {
        let sampled = self.max_rss_kb.load(Ordering::Relaxed);
        status_kb(self.pid, "VmHWM:").map_or(sampled, |hwm| hwm.max(sampled))
    }
}

impl Drop for MemoryProbe {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A `kB` field of `/proc/<pid>/status`.
fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..].split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_instances_need_postgres() {
        assert!(check_instances(1, None).is_ok());
        assert!(check_instances(1, Some("postgres://u@h/db")).is_ok());
        assert!(check_instances(3, Some("postgresql://u@h/db")).is_ok());
        let refused = check_instances(2, None).unwrap_err();
        assert!(
            refused.contains("--instances 2 needs --store postgres://"),
            "{refused}"
        );
        assert!(check_instances(2, Some("/tmp/store.db")).is_err());
    }
}
