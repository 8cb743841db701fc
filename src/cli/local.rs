//! The options of the commands for working on a bot locally, with a fake LINE API: `simulate`,
//! `test`, `dev` and `chat`.

use std::path::PathBuf;

use clap::Args;

use super::{WebArgs, DEFAULT_LISTEN};

/// Where `linebotd dev` keeps its store unless told otherwise (`outbox` looks there too).
pub const DEV_STORE: &str = "linebotd-dev.db";
/// The user local runs (`simulate`, `test`, `chat`) speak as unless told otherwise.
pub const DEV_USER: &str = "Udev0000000000000000000000000000";

/// The settings `dev`, `simulate` and `test` share with `run`: the scripts' web access, from
/// flags, the environment, and `linebotd.toml`.
#[derive(Debug, Clone, Default, Args)]
pub struct LocalSettings {
    /// TOML config file [default: linebotd.toml beside the scripts folder, if there is one].
    #[arg(long, env = "LINEBOTD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    pub web: WebArgs,
}

/// The event `simulate` sends: exactly one of these.
#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = false)]
pub struct SimulatedEvent {
    /// A text message from the user.
    #[arg(long, value_name = "TEXT")]
    pub text: Option<String>,

    /// The user adds the bot as a friend.
    #[arg(long)]
    pub follow: bool,

    /// The user blocks the bot.
    #[arg(long)]
    pub unfollow: bool,

    /// The user taps a postback action carrying DATA.
    #[arg(long, value_name = "DATA")]
    pub postback: Option<String>,

    /// A JSON file with one event object or a whole webhook body (`{"events": [...]}`).
    #[arg(long, value_name = "FILE.json")]
    pub event: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct SimulateArgs {
    #[command(flatten)]
    pub event: SimulatedEvent,

    /// The user the event comes from.
    #[arg(long, value_name = "ID", default_value = DEV_USER)]
    pub user: String,

    /// Folder of `*.rhai` scripts.
    #[arg(
        long,
        env = "LINEBOTD_SCRIPTS",
        value_name = "DIR",
        default_value = "scripts"
    )]
    pub scripts: PathBuf,

    /// Print one JSON object per LINE call (`{"method","path","body"}`); logs go to stderr.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub local: LocalSettings,
}

#[derive(Debug, Clone, Args)]
pub struct TestArgs {
    /// Folder holding the bot's scripts and its `*.test.rhai` files.
    #[arg(value_name = "DIR", default_value = "scripts")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub local: LocalSettings,
}

#[derive(Debug, Clone, Args)]
pub struct DevArgs {
    /// Address to listen on; port 0 picks a free one (the address is printed).
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_LISTEN)]
    pub listen: String,

    /// Folder of `*.rhai` scripts.
    #[arg(
        long,
        env = "LINEBOTD_SCRIPTS",
        value_name = "DIR",
        default_value = "scripts"
    )]
    pub scripts: PathBuf,

    /// Database file for the dev bot's state, or `:memory:`.
    #[arg(long, value_name = "FILE", default_value = DEV_STORE)]
    pub store: String,

    /// Delete the store file first: start with no state and no followers.
    #[arg(long)]
    pub fresh: bool,

    /// Chat with the bot in this terminal instead of printing every LINE call.
    #[arg(long)]
    pub chat: bool,

    /// Address of the browser console [default: the port after --listen's, 127.0.0.1:8081;
    /// port 0 picks a free one]. `GET /` on --listen's port opens it too.
    #[arg(long, value_name = "ADDR")]
    pub console: Option<std::net::SocketAddr>,
    #[command(flatten)]
    pub local: LocalSettings,
}

#[derive(Debug, Clone, Args)]
pub struct ChatArgs {
    /// Where `linebotd dev` listens.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
}
