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
        Command::Push(_args) => {
            linebotd::logging::init(LogFormat::Text);
            eprintln!("error: push is not available yet");
            ExitCode::FAILURE
        }
    }
}

fn startup_error(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(EXIT_STARTUP)
}
