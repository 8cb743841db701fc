//! The example bots run: each one in the real daemon against the mock LINE API, answering the
//! way its README says. (`check` only proves they compile.)

mod support;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};
use support::daemon::{eventually, post_signed, run_command, text_event_body, Daemon};
use support::mock_line::MockLine;

const REPLY: &str = "/v2/bot/message/reply";
const WAIT: Duration = Duration::from_secs(10);

struct Bot {
    daemon: Daemon,
    mock: MockLine,
    sent: usize,
}

impl Bot {
    async fn start(example: &str) -> Self {
        let mock = MockLine::start().await;
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(example)
            .join("scripts");
        let daemon = Daemon::spawn(run_command(&dir, &mock.url()));
        Self {
            daemon,
            mock,
            sent: 0,
        }
    }

    /// Posts one event and waits for its reply; returns the reply's first message.
    async fn reply_to(&mut self, body: String) -> Value {
        let url = self.daemon.url("/callback");
        assert_eq!(post_signed(&reqwest::Client::new(), &url, &body).await, 200);
        self.sent += 1;
        let want = self.sent;
        assert!(
            eventually(WAIT, || self.mock.accepted(REPLY).len() >= want).await,
            "no reply; daemon log:\n{}",
            self.daemon.stderr.text()
        );
        self.mock.accepted(REPLY)[want - 1].body["messages"][0].clone()
    }

    async fn text(&mut self, user: &str, text: &str) -> Value {
        let id = format!("E{}", self.sent);
        self.reply_to(text_event_body(&id, user, text)).await
    }

    async fn event(&mut self, mut event: Value) -> Value {
        let id = format!("E{}", self.sent);
        event["webhookEventId"] = json!(id);
        event["replyToken"] = json!(format!("rt-{id}"));
        event["timestamp"] = json!(1_700_000_000_000_i64);
        event["mode"] = json!("active");
        self.reply_to(json!({"destination": "Ubot", "events": [event]}).to_string())
            .await
    }
}

#[tokio::test]
async fn echo_quick_reply_echoes_with_buttons() {
    let mut bot = Bot::start("echo-quick-reply").await;
    let m = bot.text("U1", "hi").await;
    assert_eq!(m["text"], "hi");
    let items = m["quickReply"]["items"].as_array().unwrap();
    assert_eq!(items.len(), 4);
    assert_eq!(items[0]["action"]["text"], "Hello!");
    assert_eq!(items[3]["action"]["type"], "camera");
}

#[tokio::test]
async fn postback_menu_remembers_the_choice() {
    let mut bot = Bot::start("postback-menu").await;
    let menu = bot.text("U1", "Menu").await;
    assert_eq!(menu["template"]["type"], "buttons");
    assert_eq!(menu["template"]["actions"][1]["data"], "drink=tea");
    let tap = json!({"type": "postback", "source": {"type": "user", "userId": "U1"}, "postback": {"data": "drink=tea"}});
    assert_eq!(bot.event(tap.clone()).await["text"], "One tea coming up!");
    bot.event(tap).await;
    assert_eq!(
        bot.text("U1", "my order").await["text"],
        "You ordered tea (2 times so far)."
    );
    assert_eq!(
        bot.text("U2", "my order").await["text"],
        "No order yet. Write \"menu\"."
    );
}

#[tokio::test]
async fn keyword_flex_answers_with_a_card() {
    let mut bot = Bot::start("keyword-flex").await;
    let card = bot.text("U1", "What are your HOURS?").await;
    assert_eq!(card["type"], "flex");
    assert_eq!(card["altText"], "Opening hours");
    assert_eq!(
        card["contents"]["body"]["contents"][0]["text"],
        "Opening hours"
    );
    assert_eq!(
        bot.text("U1", "hello").await["text"],
        "Ask me about: address, hours, wifi"
    );
}

#[tokio::test]
async fn follower_broadcast_counts_followers() {
    let mut bot = Bot::start("follower-broadcast").await;
    let follow = |user: &str| json!({"type": "follow", "source": {"type": "user", "userId": user}, "follow": {"isUnblocked": false}});
    let welcome = bot.event(follow("U1")).await;
    assert!(
        welcome["text"].as_str().unwrap().starts_with("Welcome!"),
        "{welcome}"
    );
    bot.event(follow("U2")).await;
    assert_eq!(
        bot.text("U1", "count").await["text"],
        "2 people follow this bot."
    );
}
