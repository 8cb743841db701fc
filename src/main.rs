//! The `linebotd` binary: parse the command line, run the command, turn errors into exit codes.

use std::process::ExitCode;

use clap::Parser;
use linebotd::cli::{Cli, Command};
use linebotd::config::{Config, LogFormat};

/// Exit code for start-up errors (bad configuration, port in use).
const EXIT_STARTUP: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_STARTUP);
        }
    };
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Run(settings) => {
            let config = match Config::load(&settings, std::env::var("PORT").ok().as_deref()) {
                Ok(c) => c,
                Err(e) => return startup_error(e),
            };
            linebotd::logging::init(config.log_format);
            match linebotd::daemon::run(config).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => startup_error(e),
            }
        }
        Command::Push(args) => {
            let config = match Config::load_for_sending(&args.settings) {
                Ok(c) => c,
                Err(e) => return startup_error(e),
            };
            linebotd::logging::init(LogFormat::Text);
            push(&config, &args.to, &args.text).await
        }
        Command::Outbox(args) => linebotd::cmd::outbox::run(&args),
        Command::Schedules(args) => linebotd::cmd::schedules::run(&args),
        Command::Check(args) => linebotd::cmd::check::run(&args),
        Command::Init(args) => linebotd::cmd::init::run(&args),
        Command::Definitions(args) => linebotd::cmd::definitions::run(&args),
        Command::Simulate(args) => linebotd::cmd::simulate::run(args).await,
        Command::Test(args) => linebotd::cmd::test::run(args).await,
        Command::Dev(args) => linebotd::cmd::dev::run(args).await,
        Command::Chat(args) => linebotd::cmd::chat::run(args).await,
    }
}

/// `linebotd push`: one push through the same client the daemon uses.
async fn push(config: &Config, to: &str, text: &str) -> ExitCode {
    let client = match linebotd::daemon::line_client(config) {
        Ok(c) => c,
        Err(e) => return startup_error(e),
    };
    let messages = [linebotd::line::text(text)];
    match client
        .push(to, &messages, uuid::Uuid::new_v4(), false)
        .await
    {
        Ok(sent) => {
            println!(
                "pushed to {to} (line request id {})",
                sent.request_id.as_deref().unwrap_or("none")
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn startup_error(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(EXIT_STARTUP)
}
