//! `linebotd chat` (placeholder until the next commit).

use std::process::ExitCode;

pub async fn run(_args: crate::cli::ChatArgs) -> ExitCode {
    eprintln!("error: `linebotd chat` is not implemented yet");
    ExitCode::FAILURE
}
