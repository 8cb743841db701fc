//! Scripts' calls to other web APIs (`http_get`, `http_post`, `http_request`) and their view of
//! the environment (`env`).
//!
//! Script calls use their own reqwest client, apart from the LINE client: script URLs are
//! untrusted, so this one checks every URL and redirect hop against the operator's [`Policy`],
//! checks every address a name resolves to, caps answers, and ignores proxy variables (a proxy
//! would resolve names where the address check cannot see them). Both clients run on the same
//! tokio runtime, and a handler waiting on either holds only its own thread.

mod client;
mod env;
mod fake;
pub mod policy;

use std::time::Duration;

pub use client::{shown, Body, Request, Response, WebError, WebErrorKind};
pub use env::ScriptEnv;
pub use fake::{FakeAnswer, FakeWeb, RecordedCall};
pub use policy::Policy;

/// Default `http_timeout_ms`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default `http_max_response_bytes`: 5 MiB.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 5 * 1024 * 1024;
/// Redirects followed at most, each checked again.
pub const MAX_REDIRECTS: usize = 5;

/// The operator's settings for what scripts may reach.
#[derive(Debug, Clone, PartialEq)]
pub struct WebConfig {
    /// `http_allow`.
    pub policy: Policy,
    /// `script_env`: the variables `env()` may read.
    pub script_env: Vec<String>,
    /// `http_timeout_ms`: a call's default timeout (a call may ask for less or more, never past
    /// the handler's own time limit).
    pub timeout: Duration,
    /// `http_max_response_bytes`.
    pub max_response_bytes: usize,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            policy: Policy::default(),
            script_env: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

/// What the host API calls for the web: a real client, or (in `linebotd test`) the fakes a
/// test set up, which answer every call and record it.
pub struct Web {
    pub config: WebConfig,
    pub env: ScriptEnv,
    mode: Mode,
}

enum Mode {
    Real(client::Client),
    Fake(FakeWeb),
}

impl Web {
    /// Calls go to the network, under `config`. `env` is read from the process now.
    pub fn real(config: WebConfig) -> Result<Self, WebError> {
        let client = client::Client::new(&config)?;
        Ok(Self {
            env: ScriptEnv::from_process(&config.script_env),
            config,
            mode: Mode::Real(client),
        })
    }

    /// Calls are answered by fakes only (`linebotd test`): an unfaked call is an error. The
    /// exposed variables read as unset unless a test sets them (`env_fake`), so tests do not
    /// depend on the shell they run in.
    pub fn fake(config: WebConfig) -> Self {
        Self {
            env: ScriptEnv::from_pairs(config.script_env.iter().map(|n| (n.clone(), None))),
            config,
            mode: Mode::Fake(FakeWeb::default()),
        }
    }

    /// The fakes, when calls are faked.
    pub fn fakes(&self) -> Option<&FakeWeb> {
        match &self.mode {
            Mode::Fake(fake) => Some(fake),
            Mode::Real(_) => None,
        }
    }

    /// `env(name)`: the value of an exposed variable (`None` when unset), or an error naming
    /// the setting for a name the operator did not expose.
    pub fn env_var(&self, name: &str) -> Result<Option<String>, String> {
        let value = self.env.get(name)?;
        Ok(match &self.mode {
            Mode::Fake(fake) => fake.env_var(name),
            Mode::Real(_) => value.map(str::to_owned),
        })
    }

    /// Sends `request`, giving up after `timeout` (already capped by the handler's deadline).
    pub async fn send(&self, request: &Request, timeout: Duration) -> Result<Response, WebError> {
        self.config
            .policy
            .check_url(&request.url)
            .map_err(|r| WebError::refused(&request.url, r))?;
        match &self.mode {
            Mode::Real(client) => client.send(request, timeout, &self.config).await,
            Mode::Fake(fake) => fake.answer(request),
        }
    }

    /// `text` with the value of every exposed variable replaced by its name, for logs and
    /// error messages.
    pub fn redact<'a>(&self, text: &'a str) -> std::borrow::Cow<'a, str> {
        self.env.redact(text)
    }
}
