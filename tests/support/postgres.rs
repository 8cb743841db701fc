//! A throwaway PostgreSQL cluster for tests: `initdb` into a temporary folder, `pg_ctl start` on
//! a free loopback port, stopped and deleted on drop.
//!
//! Uses Debian's `postgresql` package (`pg_config --bindir`, else `/usr/lib/postgresql/*/bin`).
//! Without it, [`Cluster::start`] panics saying how to install it: the PostgreSQL tests fail
//! rather than pass without having run. PostgreSQL refuses to run as root, so as root (CI
//! runs as root) the cluster runs as `nobody`, in a folder that user owns.
//!
//! Shared by the store's unit tests (`src/store/tests`, through `#[path]`) and the
//! integration tests, so it uses the standard library and `tempfile` only.

#![allow(dead_code)]

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The user the cluster runs as when the tests run as root.
const UNPRIVILEGED: &str = "nobody";

/// A running cluster. Dropping it stops the server (immediate mode) and deletes its files.
pub struct Cluster {
    bin: PathBuf,
    /// The temporary folder; the data directory is `data` inside it.
    dir: tempfile::TempDir,
    pub port: u16,
    as_user: Option<&'static str>,
    /// Stops the server if this process dies without dropping the cluster (a panic that
    /// aborts, a `static` that is never dropped, a kill): it waits for its stdin to close,
    /// which happens when this process exits however it exits.
    _watchdog: Option<Child>,
    databases: AtomicUsize,
}

impl Cluster {
    /// Starts a new cluster. Panics with what to install when PostgreSQL is missing.
    pub fn start() -> Self {
        let bin = bindir().unwrap_or_else(|| {
            panic!(
                "the PostgreSQL tests need PostgreSQL's server programs (initdb, pg_ctl), and \
                 none were found (tried `pg_config --bindir` and /usr/lib/postgresql/*/bin): \
                 install them with `apt-get install postgresql` (.ci/run does)"
            )
        });
        let as_user = is_root().then_some(UNPRIVILEGED);
        let dir = tempfile::Builder::new()
            .prefix("linebotd-pg")
            .tempdir()
            .expect("temporary folder for PostgreSQL");
        let data = dir.path().join("data");
        std::fs::create_dir(&data).expect("data folder");
        if let Some(user) = as_user {
            // The server's user must reach its folder and own the data directory.
            set_mode(dir.path(), 0o755);
            run(Command::new("chown").arg(user).arg(&data), "chown");
        }
        let mut init = command(&bin, "initdb", as_user);
        init.arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-sync",
        ]);
        init.arg("--locale=C");
        run(&mut init, "initdb");
        let port = free_port();
        start_server(&bin, &data, port, as_user);
        let watchdog = watchdog(&bin, dir.path(), as_user);
        Self {
            bin,
            dir,
            port,
            as_user,
            _watchdog: watchdog,
            databases: AtomicUsize::new(0),
        }
    }

    /// The URL of database `name` (which [`Cluster::create_database`] made).
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates a new, empty database and returns its URL: each test gets its own.
    pub fn create_database(&self) -> String {
        let name = format!(
            "t{}_{}",
            std::process::id(),
            self.databases.fetch_add(1, Ordering::SeqCst)
        );
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        self.url(&name)
    }

    /// Runs `sql` in database `db` with `psql`, panicking on failure.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1"])
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-p",
                &self.port.to_string(),
            ])
            .args(["-d", db, "-c", sql])
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql `{sql}` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Stops the server, closing every connection (an outage, for outage tests). A clean
    /// stop: the tests' speed settings (no fsync, asynchronous commit) would lose the last
    /// commits to an immediate one.
    pub fn stop(&self) {
        self.pg_ctl_stop("fast");
    }

    /// Starts the server again after [`Cluster::stop`], on the same port.
    pub fn restart(&self) {
        start_server(&self.bin, &self.data(), self.port, self.as_user);
    }

    fn pg_ctl_stop(&self, mode: &str) {
        let _ = command(&self.bin, "pg_ctl", self.as_user)
            .arg("-D")
            .arg(self.data())
            .args(["-m", mode, "-w", "stop"])
            .stdout(Stdio::null())
            .status();
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Nothing of it is kept: no need to wait for a checkpoint.
        self.pg_ctl_stop("immediate");
    }
}

/// `pg_ctl start` on `port`, loopback only, no Unix socket (a user without a home may not
/// write the default folder), and without durability: the tests never crash the server and a
/// lost machine loses the temporary folder anyway.
fn start_server(bin: &Path, data: &Path, port: u16, as_user: Option<&str>) {
    let options = format!(
        "-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories='' \
         -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
         -c max_connections=200"
    );
    let ok = command(bin, "pg_ctl", as_user)
        .arg("-D")
        .arg(data)
        .arg("-l")
        .arg(data.join("server.log"))
        .args(["-o", &options, "-w", "-t", "60", "start"])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        let log = std::fs::read_to_string(data.join("server.log")).unwrap_or_default();
        panic!("pg_ctl start failed; the server's log:\n{log}");
    }
}

/// Where `initdb` and `pg_ctl` are.
fn bindir() -> Option<PathBuf> {
    let has_server = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if let Some(dir) = from_pg_config.filter(|d| has_server(d)) {
        return Some(dir);
    }
    // Debian installs the server's programs per major version, newest last once sorted.
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|d| has_server(d))
        .collect();
    versions.sort();
    versions.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `program` from `bin`, run as `user` when given (through `runuser`, part of util-linux).
fn command(bin: &Path, program: &str, user: Option<&str>) -> Command {
    let path = bin.join(program);
    let mut cmd = match user {
        Some(user) => {
            let mut c = Command::new("runuser");
            c.args(["-u", user, "--"]).arg(path);
            c
        }
        None => Command::new(path),
    };
    // Somewhere the server's user may read: the tests' own folder may be root's alone.
    cmd.stdin(Stdio::null()).current_dir(std::env::temp_dir());
    cmd
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .expect("set folder permissions");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A shell that stops the server and deletes `dir` once our end of its stdin closes, i.e. when
/// this process exits by any means. `None` if it cannot start (the cluster is then stopped on
/// drop only).
fn watchdog(bin: &Path, dir: &Path, user: Option<&str>) -> Option<Child> {
    let pg_ctl = command(bin, "pg_ctl", user);
    let mut line: Vec<String> = std::iter::once(pg_ctl.get_program())
        .chain(pg_ctl.get_args())
        .map(|a| format!("'{}'", a.to_string_lossy()))
        .collect();
    line.extend(["-D".into(), format!("'{}/data'", dir.display())]);
    line.extend(["-m", "immediate", "-w", "stop"].map(|a| a.to_owned()));
    let script = format!(
        "cat >/dev/null; {} >/dev/null 2>&1; rm -rf '{}'",
        line.join(" "),
        dir.display()
    );
    let mut child = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    // Nothing is ever written: only the closing matters.
    let _ = child.stdin.as_mut().map(|s| s.flush());
    Some(child)
}
