//! `linebotd push` from the shell, against the mock LINE API.

mod support;

use std::process::Command;

use support::daemon::{bin, TOKEN};
use support::mock_line::MockLine;

fn push_command(mock: &MockLine, to: &str, text: &str) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args(["push", "--to", to, "--text", text])
        .env_clear()
        .env("CHANNEL_ACCESS_TOKEN", TOKEN)
        .env("LINE_API_BASE", mock.url())
        .env("LINE_DATA_API_BASE", mock.url());
    cmd
}

#[tokio::test]
async fn push_sends_one_message_and_prints_lines_request_id() {
    let mock = MockLine::start().await;
    let out = tokio::task::spawn_blocking({
        let mock = mock.clone();
        move || push_command(&mock, "U123", "hello").output().unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pushes = mock.accepted("/v2/bot/message/push");
    assert_eq!(pushes.len(), 1);
    assert_eq!(pushes[0].body["to"], "U123");
    assert_eq!(pushes[0].body["messages"][0]["text"], "hello");
    assert!(pushes[0].retry_key().is_some());
    let request_id = &pushes[0].request_id;
    assert!(
        stdout.contains(&format!("line request id {request_id}")),
        "{stdout} (LINE sent {request_id})"
    );
}

#[tokio::test]
async fn push_rejected_by_line_exits_non_zero_with_lines_message() {
    let mock = MockLine::start().await;
    mock.respond(
        "/v2/bot/message/push",
        400,
        serde_json::json!({"message": "The property, 'to', in the request body is invalid"}),
    );
    let out = tokio::task::spawn_blocking({
        let mock = mock.clone();
        move || push_command(&mock, "bad", "hello").output().unwrap()
    })
    .await
    .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("400") && stderr.contains("'to', in the request body is invalid"),
        "{stderr}"
    );
    assert_eq!(
        mock.requests_to("/v2/bot/message/push").len(),
        1,
        "a 400 is not retried"
    );
}

#[test]
fn push_without_a_token_names_the_variable() {
    let out = Command::new(bin())
        .args(["push", "--to", "U1", "--text", "hi"])
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("CHANNEL_ACCESS_TOKEN is not set"));
}
