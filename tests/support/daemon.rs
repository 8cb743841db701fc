//! Runs the real `linebotd` binary on a free loopback port and kills it on drop.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub const SECRET: &str = "test_channel_secret";
pub const TOKEN: &str = "test_channel_token";

/// Captured output lines of a child process, with a way to wait for one.
#[derive(Clone, Default)]
pub struct Lines(Arc<(Mutex<Vec<String>>, Condvar)>);

impl Lines {
    fn follow(&self, reader: impl std::io::Read + Send + 'static) {
        let lines = self.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(reader).lines().map_while(Result::ok) {
                let (store, cv) = &*lines.0;
                store.lock().unwrap().push(line);
                cv.notify_all();
            }
        });
    }

    pub fn all(&self) -> Vec<String> {
        self.0 .0.lock().unwrap().clone()
    }

    pub fn text(&self) -> String {
        self.all().join("\n")
    }

    /// Waits until a line contains `needle`; returns that line.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let (store, cv) = &*self.0;
        let mut guard = store.lock().unwrap();
        loop {
            if let Some(line) = guard.iter().find(|l| l.contains(needle)) {
                return Some(line.clone());
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            guard = cv.wait_timeout(guard, deadline - now).unwrap().0;
        }
    }
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_linebotd"))
}

/// A `linebotd` child process. Killed (SIGKILL) on drop.
pub struct Daemon {
    pub child: Child,
    pub addr: String,
    pub stderr: Lines,
    pub stdout: Lines,
}

/// A `linebotd run` command with test credentials, a free port and quiet defaults.
pub fn run_command(scripts: &Path, line_api: &str) -> Command {
    let mut cmd = Command::new(bin());
    cmd.arg("run")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CHANNEL_SECRET", SECRET)
        .env("CHANNEL_ACCESS_TOKEN", TOKEN)
        .env("LINEBOTD_LISTEN", "127.0.0.1:0")
        .env("LINEBOTD_SCRIPTS", scripts)
        .env("LINEBOTD_STORE", ":memory:")
        .env("LINE_API_BASE", line_api)
        .env("LINE_DATA_API_BASE", line_api)
        .env("RUST_LOG", "info,linebotd=debug");
    cmd
}

impl Daemon {
    /// Spawns `cmd` and waits until it logs the address it listens on.
    pub fn spawn(mut cmd: Command) -> Self {
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null());
        let mut child = cmd.spawn().expect("spawn linebotd");
        let stderr = Lines::default();
        let stdout = Lines::default();
        stderr.follow(child.stderr.take().expect("stderr"));
        stdout.follow(child.stdout.take().expect("stdout"));
        let Some(line) = stderr.wait_for("listening on http://", Duration::from_secs(20)) else {
            let _ = child.kill();
            panic!("linebotd did not start; its output:\n{}", stderr.text());
        };
        let addr = line
            .split("listening on http://")
            .nth(1)
            .and_then(|rest| rest.split(|c: char| c == '/' || c.is_whitespace()).next())
            .expect("address in log line")
            .to_owned();
        Self {
            child,
            addr,
            stderr,
            stdout,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Signs `body` with the test channel secret.
pub fn sign(body: &[u8]) -> String {
    linebotd::pipeline::webhook::sign(SECRET.as_bytes(), body)
}

/// A webhook body with one text message event from `user`.
pub fn text_event_body(id: &str, user: &str, text: &str) -> String {
    serde_json::json!({
        "destination": "Ubot",
        "events": [{
            "type": "message", "mode": "active", "timestamp": 1_700_000_000_000_i64,
            "webhookEventId": id, "deliveryContext": {"isRedelivery": false},
            "replyToken": format!("rt-{id}"),
            "source": {"type": "user", "userId": user},
            "message": {"id": format!("m-{id}"), "type": "text", "quoteToken": "q", "text": text}
        }]
    })
    .to_string()
}

/// Posts a signed webhook body; returns the status code.
pub async fn post_signed(client: &reqwest::Client, url: &str, body: &str) -> u16 {
    client
        .post(url)
        .header("content-type", "application/json")
        .header("x-line-signature", sign(body.as_bytes()))
        .body(body.to_owned())
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// Polls `check` every 10 ms until it holds or `timeout` passes; true if it held.
pub async fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A scripts folder in a temp dir.
pub struct Scripts {
    pub dir: tempfile::TempDir,
}

impl Scripts {
    pub fn new(files: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let scripts = Self { dir };
        for (name, text) in files {
            scripts.write(name, text);
        }
        scripts
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `name` (a path relative to the folder, like `lib/helpers.rhai`).
    pub fn write(&self, name: &str, text: &str) {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create folder");
        }
        std::fs::write(path, text).expect("write script");
    }

    /// Writes `text` to a temp file and renames it over `name`, as many editors save.
    pub fn write_by_rename(&self, name: &str, text: &str) {
        let target = self.dir.path().join(name);
        let file = target.file_name().expect("a file name").to_string_lossy();
        let tmp = target.with_file_name(format!(".{file}.tmp"));
        std::fs::write(&tmp, text).expect("write temp");
        std::fs::rename(&tmp, target).expect("rename");
    }

    /// vim's default save: probe file `4913`, rename the original to `name~`, write anew, drop the backup.
    pub fn write_like_vim(&self, name: &str, text: &str) {
        let d = self.dir.path();
        std::fs::write(d.join("4913"), "").expect("probe");
        std::fs::remove_file(d.join("4913")).expect("probe rm");
        std::fs::write(d.join(format!(".{name}.swp")), "swap").expect("swp");
        std::fs::rename(d.join(name), d.join(format!("{name}~"))).expect("backup");
        std::fs::write(d.join(name), text).expect("write");
        std::fs::remove_file(d.join(format!("{name}~"))).expect("rm backup");
        std::fs::remove_file(d.join(format!(".{name}.swp"))).expect("rm swp");
    }

    pub fn remove(&self, name: &str) {
        std::fs::remove_file(self.dir.path().join(name)).expect("remove script");
    }
}

/// Starts `linebotd run` on `scripts` against the LINE API at `line_api`, with extra env vars.
pub fn start_with_env(scripts: &Path, line_api: &str, extra: &[(&str, &str)]) -> Daemon {
    let mut cmd = run_command(scripts, line_api);
    for (k, v) in extra {
        cmd.env(k, v);
    }
    Daemon::spawn(cmd)
}

/// Posts a signed text message from `user` to the daemon; returns the status.
pub async fn say(d: &Daemon, id: &str, user: &str, text: &str) -> u16 {
    post_signed(
        &reqwest::Client::new(),
        &d.url("/callback"),
        &text_event_body(id, user, text),
    )
    .await
}
