//! What both durability test files share: the real binary on a store file the test keeps across
//! restarts, and the script that pushes every text back to its sender.
#![allow(dead_code)] // each test file uses a different part of it

use std::time::Duration;

use crate::support::daemon::{run_command, Daemon, Scripts};
use crate::support::mock_line::MockLine;

pub const PUSH: &str = "/v2/bot/message/push";
pub const WAIT: Duration = Duration::from_secs(20);

pub fn start(scripts: &Scripts, mock: &MockLine, store: &std::path::Path) -> Daemon {
    let mut cmd = run_command(scripts.path(), &mock.url());
    cmd.env("LINEBOTD_STORE", store);
    Daemon::spawn(cmd)
}

pub const PUSH_TEXT: &str = r#"fn on_message(e) { push(e.source.userId, e.message.text); }"#;
