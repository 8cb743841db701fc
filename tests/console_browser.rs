//! `linebotd dev`'s browser console in a real (headless) Chromium: one session walks through
//! what a script author does, against the real binary, the fake LINE API and real files.

#[path = "support/browser.rs"]
mod browser;
mod support;

use std::path::Path;
use std::process::Command;

use browser::{texts, until, wait_for, wait_shown, wait_text, Driver};
use fantoccini::{Client, Locator};
use support::daemon::{bin, Daemon};

const BOT: &str = r##"
fn on_message(e) {
    if e.message.type == "sticker" {
        reply(e, `sticker ${e.message.packageId}/${e.message.stickerId}`);
        return;
    }
    if e.message.type == "location" { reply(e, `at ${e.message.title}`); return; }
    if e.message.type == "image" {
        let c = content(e);
        reply(e, `got ${c.type} ${c.size} bytes`);
        return;
    }
    if e.message.type != "text" { return; }
    let t = e.message.text;
    if e.source.type == "group" { reply(e, `group heard ${t}`); return; }
    if t == "card" {
        reply(e, flex("A card", #{ type: "bubble",
            header: #{ type: "box", layout: "vertical", contents: [
                #{ type: "text", text: "Menu", weight: "bold", size: "xl" }] },
            body: #{ type: "box", layout: "vertical", spacing: "md", contents: [
                #{ type: "box", layout: "horizontal", contents: [
                    #{ type: "text", text: "Coffee", flex: 2 },
                    #{ type: "text", text: "$3", align: "end", flex: 1 }] },
                #{ type: "separator" },
                #{ type: "box", layout: "baseline", contents: [
                    #{ type: "icon", url: "https://example.com/star.png" },
                    #{ type: "text", text: "4.5 stars", size: "sm", color: "#999999" }] }] },
            footer: #{ type: "box", layout: "vertical", contents: [
                #{ type: "button", style: "primary",
                   action: #{ type: "message", label: "Order", text: "order coffee" } }] } }));
    } else if t == "menu" {
        reply(e, #{ type: "template", altText: "Drinks", template: #{ type: "buttons",
            title: "Drinks", text: "Pick one", actions: [
                #{ type: "postback", label: "Tea", data: "drink=tea", displayText: "Tea please" },
                #{ type: "datetimepicker", label: "When", data: "when", mode: "date" },
                #{ type: "uri", label: "Site", uri: "http://127.0.0.1:9/site" }] } });
    } else if t == "more" {
        let micro = |word| #{ type: "bubble", size: "micro", body: #{ type: "box",
            layout: "vertical", contents: [#{ type: "text", text: word }] } };
        reply(e, [
            #{ type: "flex", altText: "Two", contents: #{ type: "carousel",
               contents: [micro.call("One"), micro.call("Two")] } },
            #{ type: "template", altText: "Sure?", template: #{ type: "confirm", text: "Sure?",
               actions: [#{ type: "message", label: "Yes", text: "yes" },
                         #{ type: "message", label: "No", text: "no" }] } },
            #{ type: "imagemap", baseUrl: "https://example.com/map", altText: "Map",
               baseSize: #{ width: 1040, height: 520 }, actions: [
                 #{ type: "message", text: "left", area: #{ x: 0, y: 0, width: 520, height: 520 } },
                 #{ type: "message", text: "right", area: #{ x: 520, y: 0, width: 520, height: 520 } }] },
            #{ type: "textV2", text: "Hi {me}{smile}", substitution: #{
               me: #{ type: "mention", mentionee: #{ type: "user", userId: "U1" } },
               smile: #{ type: "emoji", productId: "5ac1bfd5040ab15980c9b435", emojiId: "002" } } },
            #{ type: "sticker", packageId: "446", stickerId: "1988" }]);
    } else if t == "late" {
        // As if the token had expired: the reply goes out as a (billed) push.
        let copy = e;
        copy.remove("replyToken");
        reply(copy, "pushed instead");
    } else if t == "slow" {
        loading(e.source.userId, 5);
    } else if t == "boom" {
        throw "boom!";
    } else if t == "quick" {
        reply(e, #{ type: "text", text: "Sure?", quickReply: #{ items: [
            #{ type: "action", action: #{ type: "message", label: "Yes!", text: "yes" } }] } });
    } else {
        reply(e, `echo: ${t}`);
    }
}
fn on_postback(e) { reply(e, `chose ${e.postback.data} ${e.postback.params?.date ?? ""}`); }
fn on_join(e) { reply(e, "hello group"); }
fn on_follow(e) { reply(e, if e.follow.isUnblocked { "welcome back" } else { "welcome" }); }
fn on_member_joined(e) { reply(e, `welcome ${e.joined.members[0].userId}`); }
"##;

/// The bot's messages in the conversation on screen.
const BOT_SAYS: &str = ".messages:not([hidden]) .msg.bot";

fn start_dev(work: &Path) -> (Daemon, String) {
    let mut cmd = Command::new(bin());
    cmd.args(["dev", "--listen", "127.0.0.1:0", "--console", "127.0.0.1:0"])
        .current_dir(work)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    let dev = Daemon::spawn(cmd);
    let line = dev
        .stdout
        .wait_for("browser console: ", browser::WAIT)
        .expect("the banner names the console");
    let url = line
        .split("browser console: ")
        .nth(1)
        .expect("url")
        .trim()
        .to_owned();
    (dev, url)
}

async fn type_and_send(client: &Client, text: &str) {
    let input = client.find(Locator::Id("text")).await.expect("message box");
    input.send_keys(text).await.expect("type");
    click_id(client, "send").await;
}

async fn click_id(client: &Client, id: &str) {
    let button = client.find(Locator::Id(id)).await.expect("the button");
    button.click().await.expect("click");
}

async fn click_text(client: &Client, css: &str, text: &str) {
    wait_text(client, css, text)
        .await
        .click()
        .await
        .expect("click");
}

fn save_screenshot(name: &str, png: &[u8]) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    std::fs::write(dir.join(name), png).expect("write screenshot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_author_chats_taps_and_fixes_a_script_in_the_browser() {
    let driver = Driver::start();
    let work = tempfile::tempdir().expect("temp dir");
    let scripts = work.path().join("scripts");
    std::fs::create_dir(&scripts).expect("scripts dir");
    std::fs::write(scripts.join("bot.rhai"), BOT).expect("script");
    // The console posts to the daemon's webhook wherever it is configured.
    std::fs::write(
        work.path().join("linebotd.toml"),
        "webhook_path = \"/line/webhook\"\n",
    )
    .expect("config");
    let (dev, url) = start_dev(work.path());
    let client = driver.session().await;
    // The daemon's own address opens the console, which has its own port.
    client.goto(&dev.url("/")).await.expect("open the console");
    wait_for(&client, "body.live").await;
    let opened = client.current_url().await.expect("url");
    assert_eq!(opened.as_str(), url);
    assert_ne!(
        opened.port(),
        dev.addr.rsplit(':').next().and_then(|p| p.parse().ok())
    );

    echo_and_flex(&client).await;
    templates_and_pickers(&client).await;
    other_messages(&client).await;
    user_side(&client, work.path()).await;
    log_and_errors(&client, &scripts).await;
    group_chat(&client).await;
    another_user(&client).await;
    narrow_window(&client).await;
    client.close().await.expect("close the browser");
    drop(dev);
}

/// Typing, Enter, and a flex bubble drawn by LINE's layout rules, whose button works.
async fn echo_and_flex(client: &Client) {
    // Type a message, press Enter, and see the echo.
    let input = client.find(Locator::Id("text")).await.expect("message box");
    input
        .send_keys("hello\u{E007}")
        .await
        .expect("type and press Enter");
    wait_text(client, ".messages:not([hidden]) .msg.user", "hello").await;
    wait_text(client, BOT_SAYS, "echo: hello").await;

    // A flex bubble: its texts and button labels, laid out as LINE lays them out.
    type_and_send(client, "card").await;
    let bubble = wait_for(client, ".flex-bubble").await;
    let row = texts(client, ".flex-block.body .flex-box.horizontal > .flex-text").await;
    assert_eq!(row, ["Coffee", "$3"]);
    let baseline = texts(client, ".flex-box.baseline > .flex-text").await;
    assert_eq!(baseline, ["4.5 stars"]);
    assert_eq!(
        texts(client, ".flex-block.header .flex-text").await,
        ["Menu"]
    );
    assert_eq!(texts(client, ".flex-button.primary").await, ["Order"]);
    assert!(client.find(Locator::Css(".flex-separator")).await.is_ok());
    // flex 2 against flex 1: the first text takes two thirds of the row.
    let widths = client
        .execute(
            "return [...document.querySelectorAll('.flex-block.body .flex-box.horizontal > .flex-text')]
                .map(e => e.getBoundingClientRect().width)",
            vec![],
        )
        .await
        .expect("widths");
    let w: Vec<f64> = serde_json::from_value(widths).expect("numbers");
    assert!((w[0] / w[1] - 2.0).abs() < 0.1, "flex 2:1 widths {w:?}");
    save_screenshot("flex.png", &bubble.screenshot().await.expect("screenshot"));
    // Its button is a message action: the tap sends its text.
    click_text(client, ".flex-button", "Order").await;
    wait_text(client, BOT_SAYS, "echo: order coffee").await;
}

/// A template's postback and date picker, a URI action, a quick-reply chip.
async fn templates_and_pickers(client: &Client) {
    // A template's postback button: the displayText shows, the script's reply follows.
    type_and_send(client, "menu").await;
    let template = wait_for(client, ".template.buttons").await;
    save_screenshot("template.png", &template.screenshot().await.expect("shot"));
    click_text(client, ".template-action", "Tea").await;
    wait_text(client, ".messages:not([hidden]) .msg.user", "Tea please").await;
    wait_text(client, BOT_SAYS, "chose drink=tea").await;
    save_screenshot("console.png", &client.screenshot().await.expect("shot"));

    // A datetime picker sends postback.params.
    click_text(client, ".template-action", "When").await;
    let date = wait_for(client, "#ask input[name=value]").await;
    client
        .execute(
            "arguments[0].value = '2026-12-24'",
            vec![serde_json::to_value(&date).expect("element")],
        )
        .await
        .expect("pick a date");
    click_id(client, "ask-ok").await;
    wait_text(client, BOT_SAYS, "chose when 2026-12-24").await;

    // A URI action opens a new tab.
    let tabs = || async { client.windows().await.expect("tabs").len() };
    let before = tabs().await;
    click_text(client, ".template-action", "Site").await;
    until("a new tab for the URI action", || async {
        tabs().await > before
    })
    .await;

    // A quick-reply chip sends its text, and the chips go away.
    type_and_send(client, "quick").await;
    click_text(client, "#quick-reply .chip", "Yes!").await;
    wait_text(client, BOT_SAYS, "echo: yes").await;
    assert!(texts(client, "#quick-reply .chip").await.is_empty());
}

/// Carousels, confirm templates, imagemaps, textV2, stickers; a reply that became a push.
async fn other_messages(client: &Client) {
    // A carousel, a confirm template, an imagemap, textV2 and a sticker in one reply.
    type_and_send(client, "more").await;
    wait_text(client, BOT_SAYS, "package 446, sticker 1988").await;
    let bubbles = texts(client, ".flex-carousel > .flex-bubble").await;
    assert_eq!(bubbles, ["One", "Two"]);
    let confirm = texts(client, ".template.confirm .side-by-side .template-action").await;
    assert_eq!(confirm, ["Yes", "No"]);
    wait_text(client, BOT_SAYS, "Hi @U1(5ac1bfd5040ab15980c9b435/002)").await;
    // The imagemap's right half sends "right".
    let area = client
        .execute(
            "const a = [...document.querySelectorAll('.imagemap-area')].map(e => e.style.left);
             return a",
            vec![],
        )
        .await
        .expect("areas");
    assert_eq!(area, serde_json::json!(["0%", "50%"]));
    click_text(client, ".imagemap-area", "right").await;
    wait_text(client, BOT_SAYS, "echo: right").await;
    save_screenshot("more.png", &client.screenshot().await.expect("shot"));

    // A reply without its token falls back to a push, which the log marks as billed.
    type_and_send(client, "late").await;
    wait_text(client, BOT_SAYS, "pushed instead").await;
    wait_text(client, "#log .entry.fallback", "sent as a push (billed)").await;
    wait_text(
        client,
        "#log .entry.call",
        "/v2/bot/message/push → 200 fallback push billed",
    )
    .await;
}

/// loading(), a sticker, a location, a photo picked from disk, following and blocking.
async fn user_side(client: &Client, work: &Path) {
    // loading() shows the bot typing.
    type_and_send(client, "slow").await;
    wait_shown(client, "#typing").await;

    // A sticker and a location, each through its form.
    click_id(client, "sticker").await;
    wait_for(client, "#ask input[name=packageId]").await;
    click_id(client, "ask-ok").await;
    wait_text(client, BOT_SAYS, "sticker 446/1988").await;
    click_id(client, "location").await;
    wait_for(client, "#ask input[name=latitude]").await;
    click_id(client, "ask-ok").await;
    wait_text(client, BOT_SAYS, "at Tokyo Station").await;

    // A photo picked from disk: content(event) downloads exactly its bytes.
    let photo = work.join("photo.png");
    std::fs::write(&photo, vec![7u8; 1234]).expect("photo");
    let picker = client.find(Locator::Id("file")).await.expect("file input");
    picker
        .send_keys(&photo.display().to_string())
        .await
        .expect("pick the photo");
    wait_text(client, BOT_SAYS, "got image/png 1234 bytes").await;

    // Following the bot.
    click_id(client, "follow").await;
    wait_text(client, BOT_SAYS, "welcome").await;
    wait_text(
        client,
        ".messages:not([hidden]) .msg.system",
        "added the bot",
    )
    .await;
    // Blocking, then following again: LINE marks that follow `isUnblocked`.
    click_id(client, "unfollow").await;
    let system = ".messages:not([hidden]) .msg.system";
    wait_text(client, system, "blocked the bot").await;
    click_id(client, "follow").await;
    wait_text(client, BOT_SAYS, "welcome back").await;
}

/// The log: webhooks, calls, a handler's error, a broken script and its fix.
async fn log_and_errors(client: &Client, scripts: &Path) {
    // The log shows the webhooks and the calls.
    wait_text(client, "#log .entry.webhook", "message text “hello”").await;
    wait_text(client, "#log .entry.call", "/v2/bot/message/reply → 200").await;

    // A handler that throws: where, and the line with a caret under the throw.
    type_and_send(client, "boom").await;
    let error = wait_text(client, "#log .entry.error", "boom!").await;
    let shown = error.text().await.expect("text");
    assert!(
        shown.contains("bot.rhai:62:9: in on_message(): boom!"),
        "{shown}"
    );
    assert!(shown.contains("throw \"boom!\";\n        ^"), "{shown}");

    // A broken script shows its error with file:line:col and a caret; the fix, the reload.
    std::fs::write(
        scripts.join("bot.rhai"),
        "fn on_message(e) {\n    reply(e, \"x\"\n}\n",
    )
    .expect("break");
    let error = wait_text(client, "#log .entry.error", "bot.rhai:3:1").await;
    let shown = error.text().await.expect("text");
    assert!(shown.contains('^'), "{shown}");
    std::fs::write(scripts.join("bot.rhai"), BOT).expect("fix");
    wait_text(client, "#log .entry.reload", "loaded bot.rhai").await;
}

/// A group: join first, then the bot's reply goes to the group.
async fn group_chat(client: &Client) {
    let in_group = ".messages[data-chat^=C]:not([hidden]) .msg.bot";
    click_id(client, "new-group").await;
    wait_for(client, "#ask input[name=name]").await;
    click_id(client, "ask-ok").await;
    wait_text(client, in_group, "hello group").await;
    wait_text(client, "#log .entry.webhook", "join").await;
    wait_text(client, "#chat-list .current", "group: team").await;
    // Adding a user to it sends memberJoined from the group.
    click_id(client, "add-member").await;
    wait_text(client, in_group, "welcome Udev0000").await;
    type_and_send(client, "hi all").await;
    wait_text(client, in_group, "group heard hi all").await;
    // … and was pushed nowhere else.
    let reply_to = client
        .execute(
            "return [...document.querySelectorAll('.msg.bot')].filter(m => m.textContent.includes('group heard'))
                .map(m => m.closest('.messages').dataset.chat)",
            vec![],
        )
        .await
        .expect("chats");
    let chats: Vec<String> = serde_json::from_value(reply_to).expect("ids");
    assert_eq!(chats.len(), 1, "{chats:?}");
    assert!(chats[0].starts_with('C'), "{chats:?}");
}

/// A second simulated user has a conversation of their own.
async fn another_user(client: &Client) {
    click_id(client, "new-user").await;
    wait_for(client, "#ask input[name=name]").await;
    click_id(client, "ask-ok").await;
    wait_text(client, "#chat-title", "as alice").await;
    type_and_send(client, "hi from alice").await;
    let alice = ".messages[data-chat='Udev-alice']:not([hidden]) .msg.bot";
    wait_text(client, alice, "echo: hi from alice").await;
    // Hidden conversations have no WebDriver text: read what they hold.
    let elsewhere = client
        .execute(
            "return [...document.querySelectorAll('.messages:not([data-chat=\"Udev-alice\"])')]
                .map(list => list.textContent).join(' ')",
            vec![],
        )
        .await
        .expect("other chats");
    let elsewhere = elsewhere.as_str().unwrap_or_default();
    assert!(elsewhere.contains("echo: hello"), "{elsewhere}");
    assert!(!elsewhere.contains("alice"), "{elsewhere}");
}

/// In a narrow window nothing spills sideways and the message box stays on screen.
async fn narrow_window(client: &Client) {
    client
        .set_window_size(400, 800)
        .await
        .expect("narrow window");
    let fits = client
        .execute(
            "const box = document.getElementById('text').getBoundingClientRect();
             return document.documentElement.scrollWidth <= window.innerWidth
                 && box.right <= window.innerWidth && box.width > 100",
            vec![],
        )
        .await
        .expect("layout");
    assert_eq!(
        fits,
        serde_json::json!(true),
        "the console overflows a 400 px window"
    );
    save_screenshot("narrow.png", &client.screenshot().await.expect("shot"));
}
