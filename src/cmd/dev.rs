//! `linebotd dev` (placeholder until the next commit).

use std::process::ExitCode;

pub async fn run(_args: crate::cli::DevArgs) -> ExitCode {
    eprintln!("error: `linebotd dev` is not implemented yet");
    ExitCode::FAILURE
}
