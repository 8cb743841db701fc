//! Command-line interface (clap derive). Every option is also settable from the environment and,
//! for `run`/`dev`, from `linebotd.toml`; `config::Config` merges and validates them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

mod local;

pub use local::{
    ChatArgs, DevArgs, LocalSettings, SimulateArgs, SimulatedEvent, TestArgs, DEV_STORE, DEV_USER,
};

/// Where the daemon listens unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Run LINE Messaging API bots written in Rhai scripts.
#[derive(Debug, Parser)]
#[command(name = "linebotd", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the bot: receive LINE webhooks and hand each event to the scripts.
    Run(Settings),
    /// Send one push message from the shell, e.g. `linebotd push --to U123 --text hello`.
    Push(PushArgs),
    /// List pushes waiting to be delivered and those LINE rejected, newest first.
    Outbox(OutboxArgs),
    /// List the schedules the scripts declare, with their zone and next run time.
    Schedules(SchedulesArgs),
    /// Compile every script in a folder and validate its schedules, without running anything.
    Check(CheckArgs),
    /// Start a new bot: linebotd.toml, an echo script with its test, and a .gitignore.
    Init(InitArgs),
    /// Write Rhai definition files for the host API (editor completion and hover docs).
    Definitions(DefinitionsArgs),
    /// Feed one event through the scripts against a fake LINE API and print the LINE calls
    /// they make, e.g. `linebotd simulate --text hi`. Needs no LINE account.
    Simulate(SimulateArgs),
    /// Run the script tests (`*.test.rhai`) of a folder against a fake LINE API.
    Test(TestArgs),
    /// Run the bot locally: hot reload, a fake LINE API that records every call, and a way to
    /// chat with the bot (`linebotd chat` in another terminal, or `--chat`).
    Dev(DevArgs),
    /// Chat with a bot started by `linebotd dev`: each line you type is sent as a text message.
    Chat(ChatArgs),
}

/// Options shared by the commands that talk to LINE or run scripts.
#[derive(Debug, Clone, Default, Args)]
pub struct Settings {
    /// Optional TOML config file; flags and environment variables override its values.
    #[arg(long, env = "LINEBOTD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Address to listen on [default: 127.0.0.1:8080, or 0.0.0.0:$PORT when PORT is set].
    #[arg(long, env = "LINEBOTD_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,

    /// Folder of `*.rhai` scripts [default: scripts].
    #[arg(long, env = "LINEBOTD_SCRIPTS", value_name = "DIR")]
    pub scripts: Option<PathBuf>,

    /// The channel secret from the LINE Developers console (verifies webhook signatures).
    #[arg(
        long,
        env = "CHANNEL_SECRET",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    pub channel_secret: Option<String>,

    /// The channel access token from the LINE Developers console (authorises API calls).
    #[arg(
        long,
        env = "CHANNEL_ACCESS_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub channel_access_token: Option<String>,

    /// Base URL of the LINE Messaging API [default: https://api.line.me].
    #[arg(long, env = "LINE_API_BASE", value_name = "URL")]
    pub line_api_base: Option<String>,

    /// Base URL of the LINE data API (message content) [default: https://api-data.line.me].
    #[arg(long, env = "LINE_DATA_API_BASE", value_name = "URL")]
    pub line_data_api_base: Option<String>,

    /// Requests per second to each LINE endpoint (LINE's limit; endpoints LINE limits lower
    /// keep their limits); 0 turns every limit off (for a local mock) [default: 2000].
    #[arg(long, env = "LINEBOTD_LINE_RATE_LIMIT", value_name = "PER_SEC")]
    pub line_rate_limit: Option<u32>,

    /// Largest message content `content(event)` downloads from LINE's data host, and largest
    /// answer of `line_get_data`, in bytes [default: 20971520, 20 MiB].
    #[arg(long, env = "LINEBOTD_CONTENT_MAX_BYTES", value_name = "BYTES")]
    pub content_max_bytes: Option<usize>,

    /// Path LINE posts webhooks to [default: /callback].
    #[arg(long, env = "LINEBOTD_WEBHOOK_PATH", value_name = "PATH")]
    pub webhook_path: Option<String>,

    /// Largest webhook body accepted, in bytes [default: 1048576].
    #[arg(long, env = "LINEBOTD_MAX_BODY", value_name = "BYTES")]
    pub max_body: Option<usize>,

    /// Database file for the inbox, outbox and script state, or `:memory:`, or a
    /// `postgres://user:password@host:port/database` URL that several instances share
    /// [default: linebotd.db beside the config file, else in the current folder].
    #[arg(long, env = "LINEBOTD_STORE", value_name = "FILE|URL")]
    pub store: Option<String>,

    /// PostgreSQL only: connections this instance opens to the database at most [default: 16].
    #[arg(long, env = "LINEBOTD_STORE_POOL", value_name = "N")]
    pub store_pool: Option<usize>,

    /// PostgreSQL only: seconds an event this instance claimed stays its own without a
    /// heartbeat, i.e. how soon other instances take over the events of one that died
    /// [default: 5].
    #[arg(long, env = "LINEBOTD_STORE_LEASE", value_name = "SECONDS")]
    pub store_lease: Option<u64>,

    /// `full`: the events of a webhook reach the disk before LINE gets its 200, so acknowledged
    /// events survive a power cut or an OS crash. `normal`: faster, and still safe against the
    /// daemon crashing, but a power cut can lose the last events LINE was told we received
    /// [default: full].
    #[arg(long, env = "LINEBOTD_STORE_SYNC", value_name = "MODE")]
    pub store_sync: Option<String>,

    /// Default IANA time zone for schedules, e.g. Asia/Tokyo [default: UTC].
    #[arg(long, env = "LINEBOTD_TIMEZONE", value_name = "ZONE")]
    pub timezone: Option<String>,

    /// Log format: `text` for a terminal, `json` for log collectors [default: text].
    #[arg(long, env = "LINEBOTD_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<String>,

    /// Bearer token required by /metrics and /readyz details when set.
    #[arg(
        long,
        env = "LINEBOTD_ADMIN_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub admin_token: Option<String>,

    /// Do not watch the scripts folder for changes.
    #[arg(long, env = "LINEBOTD_NO_WATCH")]
    pub no_watch: bool,

    /// Refuse to start when any script fails to compile.
    #[arg(long, env = "LINEBOTD_STRICT")]
    pub strict: bool,

    /// Seconds a client has to send a request's head, from connecting or from the first byte
    /// of a later request on the connection; then it is closed [default: 10].
    #[arg(long, env = "LINEBOTD_HEADER_READ_TIMEOUT_SECS", value_name = "SECS")]
    pub header_read_timeout_secs: Option<u64>,

    /// Seconds a client has to send a request's whole body after its head; then it gets 408
    /// and the connection is closed [default: 10].
    #[arg(long, env = "LINEBOTD_BODY_READ_TIMEOUT_SECS", value_name = "SECS")]
    pub body_read_timeout_secs: Option<u64>,

    /// Seconds a kept-alive connection may wait for its next request; 0 closes each
    /// connection after one request [default: 60].
    #[arg(long, env = "LINEBOTD_KEEP_ALIVE_IDLE_SECS", value_name = "SECS")]
    pub keep_alive_idle_secs: Option<u64>,

    /// Client connections open at once; more are answered 503 and closed. Lowered at start
    /// when the open-file limit leaves too few descriptors for it [default: 512].
    #[arg(long, env = "LINEBOTD_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,

    #[command(flatten)]
    pub web: WebArgs,
}

/// What scripts may reach with `http_get`, `http_post`, `http_request` and `env`. The same for
/// `run`, `dev`, `simulate` and `test`.
#[derive(Debug, Clone, Default, Args)]
pub struct WebArgs {
    /// Hosts scripts may call, comma-separated: `api.example.com`, `host:port`, `*.example.com`,
    /// or `*` for any https host. Plain http and loopback or private addresses are refused
    /// unless a host is listed by name or address [default: any https host at a public address].
    #[arg(
        long,
        env = "LINEBOTD_HTTP_ALLOW",
        value_name = "HOSTS",
        value_delimiter = ','
    )]
    pub http_allow: Option<Vec<String>>,

    /// Environment variables scripts may read with `env(NAME)`, comma-separated. Their values
    /// are redacted from logs and error messages.
    #[arg(
        long,
        env = "LINEBOTD_SCRIPT_ENV",
        value_name = "NAMES",
        value_delimiter = ','
    )]
    pub script_env: Option<Vec<String>>,

    /// Default timeout of a script's web call in ms, at most `limits.max_call_ms`
    /// [default: 10000].
    #[arg(long, env = "LINEBOTD_HTTP_TIMEOUT_MS", value_name = "MS")]
    pub http_timeout_ms: Option<u64>,

    /// Largest answer a script's web call accepts, in bytes [default: 5242880].
    #[arg(long, env = "LINEBOTD_HTTP_MAX_RESPONSE_BYTES", value_name = "BYTES")]
    pub http_max_response_bytes: Option<usize>,
}

#[derive(Debug, Clone, Args)]
pub struct PushArgs {
    /// User, group or room id to push to.
    #[arg(long, value_name = "ID")]
    pub to: String,

    /// Text of the message.
    #[arg(long, value_name = "TEXT")]
    pub text: String,

    #[command(flatten)]
    pub settings: Settings,
}

#[derive(Debug, Clone, Args)]
pub struct OutboxArgs {
    /// The store file to read [default: the daemon's, as `run` finds it (`store` in
    /// linebotd.toml, else linebotd.db); else `dev`'s linebotd-dev.db when only that exists].
    #[arg(long, env = "LINEBOTD_STORE", value_name = "FILE")]
    pub store: Option<String>,

    /// The daemon's config file, to find its store [default: linebotd.toml in this folder].
    #[arg(long, env = "LINEBOTD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Show at most this many deliveries.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,

    /// Print one JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct SchedulesArgs {
    /// Folder of `*.rhai` scripts.
    #[arg(
        long,
        env = "LINEBOTD_SCRIPTS",
        value_name = "DIR",
        default_value = "scripts"
    )]
    pub scripts: PathBuf,

    #[command(flatten)]
    pub zone: ZoneArg,

    /// The daemon's config file, for its `timezone` and its store (the pending timers)
    /// [default: linebotd.toml beside the scripts folder].
    #[arg(long, env = "LINEBOTD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// The daemon's store file, whose pending timers are listed [default: as `run` finds it:
    /// `store` in the config file, else linebotd.db beside it or in the current folder].
    #[arg(long, env = "LINEBOTD_STORE", value_name = "FILE")]
    pub store: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// Folder of `*.rhai` scripts to check.
    #[arg(default_value = "scripts", value_name = "DIR")]
    pub dir: PathBuf,

    #[command(flatten)]
    pub zone: ZoneArg,

    /// The bot's config file, for its `timezone` [default: linebotd.toml beside DIR].
    #[arg(long, env = "LINEBOTD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct InitArgs {
    /// Folder to create the bot in (created if missing).
    #[arg(default_value = ".", value_name = "DIR")]
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct DefinitionsArgs {
    /// Write to this file instead of standard output, e.g. `scripts/linebotd.d.rhai`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// The helpers of `*.test.rhai` files (send_text, assert_eq …) instead of the host API,
    /// e.g. `--tests --out scripts/linebotd-test.d.rhai`.
    #[arg(long)]
    pub tests: bool,
}

/// The default zone of schedules, for the commands that read them.
#[derive(Debug, Clone, Args)]
pub struct ZoneArg {
    /// Zone of schedules that name no `tz`: an IANA name such as Asia/Tokyo [default:
    /// `timezone` in linebotd.toml, else UTC].
    #[arg(long = "timezone", env = "LINEBOTD_TIMEZONE", value_name = "ZONE", value_parser = parse_zone)]
    pub timezone: Option<chrono_tz::Tz>,
}

fn parse_zone(name: &str) -> Result<chrono_tz::Tz, String> {
    name.parse().map_err(|_| {
        let hint = crate::pipeline::script::suggest::zone_named(name)
            .map(|known| format!("; did you mean {known}?"))
            .unwrap_or_default();
        format!("`{name}` is not an IANA time zone name such as Asia/Tokyo or UTC{hint}")
    })
}
