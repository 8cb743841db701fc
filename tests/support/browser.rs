//! Headless Chromium driven through WebDriver (the Debian `chromium` and `chromium-driver`
//! packages): a chromedriver on a free loopback port, killed on drop, and waits with deadlines.

#![allow(dead_code)]

use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const WAIT: Duration = Duration::from_secs(20);

/// A running chromedriver. Killed on drop, with the browser's profile folder.
pub struct Driver {
    child: Child,
    port: u16,
    profile: tempfile::TempDir,
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

impl Driver {
    /// Starts chromedriver. Fails the test, saying what to install, when it or Chromium is
    /// missing: a browser test that cannot run must not pass.
    pub fn start() -> Self {
        let Some(chromedriver) = find_on_path("chromedriver") else {
            panic!(
                "chromedriver is not installed: the browser console's tests need it \
                 (apt-get install -y chromium chromium-driver; .ci/run installs them)"
            );
        };
        assert!(
            std::path::Path::new(CHROMIUM).exists(),
            "{CHROMIUM} is missing: apt-get install -y chromium chromium-driver"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        // Its own process group, so that dropping the driver also ends the browsers it
        // started, even when a failing test never closed its session.
        let child = Command::new(chromedriver)
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            child,
            port,
            profile: tempfile::tempdir().expect("profile dir"),
        }
    }

    /// A new headless browser session. The flags keep Chromium from reaching out to the
    /// network on its own (on a closed network those connections are refused and slow it).
    pub async fn session(&self) -> Client {
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1280,1000",
        ];
        let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        args.push(format!("--user-data-dir={}", self.profile.path().display()));
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({ "binary": CHROMIUM, "args": args }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a Chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The elements matching `css` once one's text contains `text` (waiting up to [`WAIT`]).
pub async fn wait_text(client: &Client, css: &str, text: &str) -> Element {
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    loop {
        seen.clear();
        for e in client.find_all(Locator::Css(css)).await.unwrap_or_default() {
            let shown = e.text().await.unwrap_or_default();
            if shown.contains(text) {
                return e;
            }
            seen.push(shown);
        }
        if Instant::now() >= deadline {
            panic!("no {css} with text {text:?}; saw {seen:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The first element matching `css`, waiting up to [`WAIT`] for it.
pub async fn wait_for(client: &Client, css: &str) -> Element {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(e) = client.find(Locator::Css(css)).await {
            return e;
        }
        assert!(Instant::now() < deadline, "nothing matches {css}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits up to [`WAIT`] until `check` holds; fails the test naming `what` otherwise.
pub async fn until<F, Fut>(what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + WAIT;
    while !check().await {
        assert!(Instant::now() < deadline, "waited in vain for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits up to [`WAIT`] until the element matching `css` is displayed.
pub async fn wait_shown(client: &Client, css: &str) {
    let element = wait_for(client, css).await;
    let shown = || async { element.is_displayed().await.unwrap_or(false) };
    until(&format!("{css} to show"), shown).await;
}

/// The texts of every element matching `css`.
pub async fn texts(client: &Client, css: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in client.find_all(Locator::Css(css)).await.unwrap_or_default() {
        out.push(e.text().await.unwrap_or_default());
    }
    out
}
