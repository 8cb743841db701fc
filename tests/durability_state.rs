//! Delivery guarantees through the real binary that outlive a restart: deduplication, script
//! state, followers, and the outbox as the `outbox` command lists it.

#[path = "support/durable_daemon.rs"]
mod durable_daemon;
mod support;

use durable_daemon::{start, PUSH, PUSH_TEXT, WAIT};
use serde_json::{json, Value};
use support::daemon::{eventually, post_signed, text_event_body, Scripts};
use support::mock_line::MockLine;

#[tokio::test]
async fn a_redelivered_event_is_acknowledged_but_handled_once() {
    let mock = MockLine::start().await;
    let scripts = Scripts::new(&[("push.rhai", PUSH_TEXT)]);
    let store = tempfile::tempdir().unwrap();
    let d = start(&scripts, &mock, &store.path().join("bot.db"));
    let client = reqwest::Client::new();
    let first = text_event_body("R1", "U1", "once");
    let mut again: Value = serde_json::from_str(&first).unwrap();
    again["events"][0]["deliveryContext"]["isRedelivery"] = json!(true);
    assert_eq!(post_signed(&client, &d.url("/callback"), &first).await, 200);
    assert_eq!(
        post_signed(&client, &d.url("/callback"), &again.to_string()).await,
        200
    );
    assert!(d.stderr.wait_for("duplicate event", WAIT).is_some());
    // A different event after it is handled, so the first one certainly was too.
    assert_eq!(
        post_signed(
            &client,
            &d.url("/callback"),
            &text_event_body("R2", "U1", "next")
        )
        .await,
        200
    );
    assert!(eventually(WAIT, || mock.texts(PUSH).len() == 2).await);
    assert_eq!(mock.texts(PUSH), ["once", "next"]);
}

#[tokio::test]
async fn script_state_survives_a_restart_and_round_trips_exactly() {
    let mock = MockLine::start().await;
    let scripts = Scripts::new(&[(
        "state.rhai",
        r#"
        fn on_message(e) {
            if e.message.text == "save" {
                store_set("profile:U1", #{ name: "さくら 🌸", visits: 3, ratio: 1.0, tags: ["a", #{ deep: [1, 2.5, ()] }], nothing: (), ok: true });
                store_set("plain", 42);
                store_set("gone", "x");
                store_delete("gone");
                push("U1", "saved");
            } else {
                let p = store_get("profile:U1");
                push("U1", `${type_of(p.visits)} ${type_of(p.ratio)} ${p.name} ${p.tags[1].deep[1]} ${type_of(p.tags[1].deep[2])} ${type_of(p.nothing)} ${p.ok}`);
                push("U1", `${store_get("plain") + 1} ${type_of(store_get("gone"))} ${store_keys("p")}`);
            }
        }"#,
    )]);
    let store = tempfile::tempdir().unwrap();
    let db = store.path().join("bot.db");
    let client = reqwest::Client::new();
    {
        let d = start(&scripts, &mock, &db);
        assert_eq!(
            post_signed(
                &client,
                &d.url("/callback"),
                &text_event_body("S1", "U1", "save")
            )
            .await,
            200
        );
        assert!(
            eventually(WAIT, || mock.texts(PUSH) == ["saved"]).await,
            "{}",
            d.stderr.text()
        );
    }
    let d = start(&scripts, &mock, &db);
    assert_eq!(
        post_signed(
            &client,
            &d.url("/callback"),
            &text_event_body("S2", "U1", "read")
        )
        .await,
        200
    );
    assert!(
        eventually(WAIT, || mock.texts(PUSH).len() == 3).await,
        "{}",
        d.stderr.text()
    );
    assert_eq!(
        mock.texts(PUSH)[1..],
        [
            "i64 f64 さくら 🌸 2.5 () () true",
            "43 () [\"plain\", \"profile:U1\"]"
        ]
    );
}

#[tokio::test]
async fn followers_track_follow_unfollow_and_follow_again() {
    let mock = MockLine::start().await;
    let scripts = Scripts::new(&[(
        "f.rhai",
        r#"
        fn on_postback(e) { push("Uadmin", `${follower_count()} ${followers()}`); }
        fn on_follow(e) { push("Ulog", "follow"); }
        fn on_unfollow(e) { push("Ulog", "unfollow"); }
        "#,
    )]);
    let store = tempfile::tempdir().unwrap();
    let d = start(&scripts, &mock, &store.path().join("bot.db"));
    let client = reqwest::Client::new();
    let event = |kind: &str, id: &str, user: &str, ts: i64| {
        json!({"events": [{"type": kind, "webhookEventId": id, "timestamp": ts, "replyToken": "rt", "source": {"type": "user", "userId": user}, "follow": {"isUnblocked": kind == "follow" && id == "F4"}, "postback": {"data": "x"}}]}).to_string()
    };
    let url = d.url("/callback");
    let mut ts = 1_700_000_000_000_i64;
    for (kind, id, user) in [
        ("follow", "F1", "Ua"),
        ("follow", "F2", "Ub"),
        ("postback", "P1", "Ua"),
        ("unfollow", "F3", "Ua"),
        ("postback", "P2", "Ub"),
        ("follow", "F4", "Ua"),
        ("postback", "P3", "Ua"),
    ] {
        ts += 1000;
        // Every event pushes once; wait for it so the next event sees its effect.
        let n = mock.texts(PUSH).len() + 1;
        assert_eq!(
            post_signed(&client, &url, &event(kind, id, user, ts)).await,
            200
        );
        assert!(
            eventually(WAIT, || mock.texts(PUSH).len() == n).await,
            "{}",
            d.stderr.text()
        );
    }
    let admin: Vec<String> = mock
        .accepted(PUSH)
        .iter()
        .filter(|r| r.body["to"] == "Uadmin")
        .map(|r| {
            r.body["messages"][0]["text"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(
        admin,
        ["2 [\"Ua\", \"Ub\"]", "1 [\"Ub\"]", "2 [\"Ua\", \"Ub\"]"]
    );
}

#[test]
fn outbox_command_lists_pending_and_failed_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bot.db");
    let store = linebotd::store::open(db.to_str().unwrap()).unwrap();
    for (i, key) in ["k-old", "k-new"].iter().enumerate() {
        store
            .outbox_enqueue(&linebotd::store::NewDelivery {
                retry_key: (*key).into(),
                kind: linebotd::store::DeliveryKind::Push,
                payload: json!({"to": "U1", "messages": [{"type": "text", "text": "hi"}]}),
                source: "bot.rhai".into(),
                created_ms: 1_700_000_000_000 + i as i64 * 1000,
            })
            .unwrap();
    }
    store
        .outbox_mark_failed(
            "k-old",
            "LINE rejected push (400): bad to",
            1_700_000_005_000,
        )
        .unwrap();
    drop(store);
    let out = std::process::Command::new(support::daemon::bin())
        .args(["outbox", "--store", db.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let new_at = text.find("k-new").expect("pending listed");
    let old_at = text.find("k-old").expect("failed listed");
    assert!(new_at < old_at, "newest first:\n{text}");
    assert!(
        text.contains("failed") && text.contains("LINE rejected push (400): bad to"),
        "{text}"
    );
}
