//! The `linebotd` binary: parse the command line, run the command, turn errors into exit codes.

use std::process::ExitCode;

use clap::Parser;
use linebotd::cli::{Cli, Command};
use linebotd::cmd::CommandError;
use linebotd::config::{Config, LogFormat};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return CommandError::Runtime(e).report(),
    };
    linebotd::cmd::exit(runtime.block_on(run(cli)))
}

async fn run(cli: Cli) -> Result<ExitCode, CommandError> {
    match cli.command {
        Command::Run(mut settings) => {
            // `init` writes linebotd.toml here, and `run` is started here.
            settings.config = settings.config.or_else(linebotd::config::default_file);
            let config = Config::load(&settings, std::env::var("PORT").ok().as_deref())?;
            linebotd::ops::logging::init(config.log_format);
            if let Some(file) = &settings.config {
                tracing::info!(file = %file.display(), "configuration file read");
            }
            linebotd::daemon::run(config).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Push(mut args) => {
            let settings = &mut args.settings;
            settings.config = settings
                .config
                .take()
                .or_else(linebotd::config::default_file);
            let config = Config::load_for_sending(&args.settings)?;
            linebotd::ops::logging::init(LogFormat::Text);
            push(&config, &args.to, &args.text).await
        }
        Command::Outbox(args) => linebotd::cmd::outbox::run(&args),
        Command::Schedules(args) => linebotd::cmd::schedules::run(&args),
        Command::Check(args) => linebotd::cmd::check::run(&args),
        Command::Init(args) => linebotd::cmd::init::run(&args),
        Command::Definitions(args) => linebotd::cmd::definitions::run(&args),
        Command::Chat(args) => linebotd::dev::chat::run(args).await,
        Command::Simulate(args) => linebotd::dev::simulate::run(args).await,
        Command::Test(args) => linebotd::dev::test::run(args).await,
        Command::Dev(args) => linebotd::dev::server::run(args).await,
    }
}

/// `linebotd push`: one push through the same client the daemon uses.
async fn push(config: &Config, to: &str, text: &str) -> Result<ExitCode, CommandError> {
    let client = linebotd::daemon::line_client(config).map_err(CommandError::LineClient)?;
    let messages = [linebotd::line::text(text)];
    let sent = client
        .push(to, &messages, uuid::Uuid::new_v4(), false)
        .await
        .map_err(CommandError::Push)?;
    println!(
        "pushed to {to} (line request id {})",
        sent.request_id.as_deref().unwrap_or("none")
    );
    Ok(ExitCode::SUCCESS)
}
