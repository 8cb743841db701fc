//! Why a command could not do its job. `main` prints every one the same way, as one
//! `error: …` line, and exits with its code, so the commands only say what went wrong.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::ConfigError;
use crate::daemon::DaemonError;
use crate::line::LineError;
use crate::store::StoreError;

/// Exit code when a command cannot start or cannot read what it was pointed at.
const EXIT_STARTUP: u8 = 2;

/// A command's failure. A command that ran and answers "no" (`check` found errors, `test` had a
/// failing case) returns `Ok(ExitCode::FAILURE)` instead, after printing its own report.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The LINE client could not be built from the configuration.
    #[error(transparent)]
    LineClient(LineError),
    /// LINE refused the push, or could not be reached.
    #[error(transparent)]
    Push(LineError),
    #[error("no scripts folder at {} (pass the folder that holds your .rhai files: {} check DIR)", .0.display(), super::invoked::command())]
    NoScriptsFolder(PathBuf),
    #[error("cannot read {}: {source}", path.display())]
    ReadDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the scripts folder {}: {source}", path.display())]
    ReadScripts {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no store at {0} (pass --store with the daemon's store file)")]
    NoStore(String),
    #[error("cannot reach the dev daemon at {url} ({source}); start it with `{} dev` in another terminal, or pass --url", super::invoked::command())]
    DevDaemonUnreachable { url: String, source: reqwest::Error },
    #[error("cannot create {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// `dev`, `simulate` or `test` could not set up its local bot or its input.
    #[error("{0}")]
    Local(String),
    #[error("cannot delete {} for --fresh: {source}", path.display())]
    DeleteFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    WriteFile {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl CommandError {
    /// The process's exit code: 2 for start-up and input errors; 1 where the command had
    /// already begun its work (a push LINE refused, a file `init` or `definitions` could not
    /// write), as these commands have always exited.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::Push(_) | Self::CreateDir { .. } | Self::WriteFile { .. } => ExitCode::FAILURE,
            _ => ExitCode::from(EXIT_STARTUP),
        }
    }

    /// Prints the error as `error: …` on stderr and returns its exit code.
    pub fn report(&self) -> ExitCode {
        eprintln!("error: {self}");
        self.exit_code()
    }
}

/// What `main` does with a command's result.
pub fn exit(result: Result<ExitCode, CommandError>) -> ExitCode {
    result.unwrap_or_else(|e| e.report())
}
