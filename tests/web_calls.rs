//! Scripts calling other web APIs: `http_get`, `http_post`, `http_request` against a real local
//! server, the allow list and address checks, size and time caps, and handlers that wait on a
//! slow API side by side. `env()`, the settings and `linebotd test`'s fakes: `web_settings.rs`.

mod support;

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use serde_json::json;
use support::daemon::{eventually, post_signed, start_with_env, text_event_body, Scripts};
use support::mock_line::MockLine;
use support::web::{simulate, SECRET_VALUE};

/// A small web API on 127.0.0.1: echoes, statuses, a slow answer, a big answer, redirects.
async fn web_api() -> String {
    let app = Router::new()
        .route(
            "/hello",
            get(|RawQuery(q): RawQuery, headers: HeaderMap| async move {
                let token = headers.get("x-token").and_then(|v| v.to_str().ok());
                Json(json!({"hello": "world", "query": q, "token": token}))
            }),
        )
        .route(
            "/echo",
            any(|headers: HeaderMap, body: Bytes| async move {
                let kind = headers.get("content-type").and_then(|v| v.to_str().ok());
                Json(json!({"type": kind, "body": String::from_utf8_lossy(&body), "len": body.len()}))
            }),
        )
        .route(
            "/status/{code}",
            get(|Path(code): Path<u16>| async move {
                (StatusCode::from_u16(code).unwrap(), format!("status {code}"))
            }),
        )
        .route("/text", get(|| async { "plain words" }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        )
        .route(
            "/wait",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(1)).await;
                "waited"
            }),
        )
        .route("/big", get(|| async { "x".repeat(64 * 1024) }))
        // Under http_max_response_bytes (5 MiB), over the default limits.max_string_size.
        .route("/huge", get(|| async { "x".repeat(1536 * 1024) }))
        .route(
            "/to/{port}",
            get(|Path(port): Path<u16>| async move {
                Redirect::temporary(&format!("http://127.0.0.2:{port}/hello")).into_response()
            }),
        )
        .route(
            "/hop/{n}",
            get(|Path(n): Path<u32>| async move {
                let to = if n == 0 { "/hello".to_owned() } else { format!("/hop/{}", n - 1) };
                Response::builder()
                    .status(302)
                    .header("location", to)
                    .body(axum::body::Body::empty())
                    .unwrap()
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("127.0.0.1:{}", addr.port())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_get_and_post_and_see_statuses_headers_and_json() {
    let host = web_api().await;
    let script = format!(
        r#"
fn on_message(e) {{
    let base = "http://{host}";
    let r = http_get(base + "/hello", #{{ query: #{{ city: "Tokyo & Osaka", n: 2 }}, headers: #{{ "X-Token": "t1" }} }});
    log(`get ${{r.status}} ${{r.json.hello}} ${{r.json.query}} ${{r.json.token}} ${{r.headers["content-type"]}}`);
    let p = http_post(base + "/echo", #{{ item: "tea", count: 2 }});
    log(`json ${{p.json.type}} ${{p.json.body}}`);
    let s = http_post(base + "/echo", "a=1&b=2", #{{ headers: #{{ "Content-Type": "application/x-www-form-urlencoded" }} }});
    log(`string ${{s.json.type}} ${{s.json.body}}`);
    let b = http_post(base + "/echo", blob(3, 65));
    log(`blob ${{b.json.type}} ${{b.json.body}}`);
    let q = http_request(#{{ method: "PUT", url: base + "/echo", body: [1, 2] }});
    log(`put ${{q.status}} ${{q.json.body}}`);
    log(`404 ${{http_get(base + "/status/404").status}} 500 ${{http_get(base + "/status/500").body}}`);
    let t = http_get(base + "/text");
    log(`text ${{t.body}} json=${{type_of(t.json)}}`);
    let h = http_get(base + "/hop/3");
    log(`hops ${{h.status}} ${{h.json.hello}}`);
}}
"#
    );
    let (ok, out) = simulate(&script, &["--http-allow", &host], &[]);
    assert!(ok, "{out}");
    for want in [
        "get 200 world city=Tokyo+%26+Osaka&n=2 t1 application/json",
        r#"json application/json {"count":2,"item":"tea"}"#,
        "string application/x-www-form-urlencoded a=1&b=2",
        "blob application/octet-stream AAA",
        "put 200 [1,2]",
        "404 404 500 status 500",
        "text plain words json=()",
        "hops 200 world",
    ] {
        assert!(out.contains(want), "missing `{want}` in:\n{out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_size_caps_and_refused_redirects_throw_naming_the_url() {
    let host = web_api().await;
    let port = host.rsplit(':').next().unwrap();
    let script = format!(
        r#"
fn on_message(e) {{
    let base = "http://{host}";
    for path in ["/slow?key=hidden", "/big", "/to/{port}", "/hop/9"] {{
        try {{ let r = http_get(base + path, #{{ timeout_ms: 300 }}); log(`no error ${{r.status}}`); }}
        catch (err) {{ log(`caught ${{err}}`); }}
    }}
    try {{ http_get("not a url"); }} catch (err) {{ log(`caught ${{err}}`); }}
    try {{ http_get(base + "/hello", #{{ timeot_ms: 5 }}); }} catch (err) {{ log(`caught ${{err}}`); }}
    try {{ http_post(base + "/echo", 5); }} catch (err) {{ log(`caught ${{err}}`); }}
}}
"#
    );
    let started = Instant::now();
    let (ok, out) = simulate(
        &script,
        &["--http-allow", &host, "--http-max-response-bytes", "1000"],
        &[],
    );
    assert!(ok, "{out}");
    assert!(started.elapsed() < Duration::from_secs(20), "{out}");
    let wants: [String; 7] = [
        format!("caught http_get: http://{host}/slow: no answer within 300 ms (http_timeout_ms"),
        format!("caught http_get: http://{host}/big: the answer is larger than 1000 bytes (http_max_response_bytes)"),
        format!("caught http_get: http://{host}/to/{port}: redirected to http://127.0.0.2:{port}/hello: 127.0.0.2 is not in http_allow"),
        "more than 5 redirects".into(),
        "caught http_get: `not a url` is not a URL".into(),
        "caught http_get: unknown option `timeot_ms`; options may hold headers, timeout_ms, query".into(),
        "caught http_post: the body is the number 5; pass a string, a map or array (sent as JSON), or a blob".into(),
    ];
    for want in &wants {
        assert!(out.contains(want.as_str()), "missing `{want}` in:\n{out}");
    }
    assert!(
        !out.contains("key=hidden"),
        "a query string was shown:\n{out}"
    );
    assert!(!out.contains("no error"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_allow_list_loopback_and_plain_http_are_refused() {
    let host = web_api().await;
    let port = host.rsplit(':').next().unwrap();
    let script = format!(
        r#"
fn on_message(e) {{
    for url in ["http://{host}/hello", "https://{host}/hello", "https://localhost:{port}/hello", "https://[::1]:{port}/"] {{
        try {{ http_get(url); log("reached " + url); }} catch (err) {{ log(`caught ${{err}}`); }}
    }}
}}
"#
    );
    let (ok, out) = simulate(&script, &[], &[]);
    assert!(ok, "{out}");
    assert!(!out.contains("reached"), "{out}");
    assert!(
        out.contains(&format!(
            "caught http_get: http://{host}/hello: plain http is refused"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "caught http_get: https://{host}/hello: 127.0.0.1 is a loopback, private, link-local or metadata address"
        )),
        "{out}"
    );
    // A name is checked by the addresses it resolves to.
    assert!(
        out.contains("localhost is a loopback, private, link-local or metadata address"),
        "{out}"
    );
    assert!(out.contains("::1 is a loopback"), "{out}");
}

/// 200 conversations whose handlers each wait 1 s on a web API finish in a few seconds, not
/// 200, and nothing the daemon logs at debug level shows an exposed value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_wait_on_web_apis_side_by_side_and_the_log_stays_clean() {
    const USERS: usize = 200;
    let host = web_api().await;
    let mock = MockLine::start().await;
    let script = format!(
        r#"
fn on_message(e) {{
    let r = http_get("http://{host}/wait", #{{ query: #{{ key: env("MY_API_KEY") }} }});
    log("called with " + env("MY_API_KEY"));
    reply(e, r.body);
}}
"#
    );
    let scripts = Scripts::new(&[("bot.rhai", &script)]);
    let d = start_with_env(
        scripts.path(),
        &mock.url(),
        &[
            ("LINEBOTD_LINE_RATE_LIMIT", "0"),
            ("LINEBOTD_HTTP_ALLOW", &host),
            ("LINEBOTD_SCRIPT_ENV", "MY_API_KEY"),
            ("MY_API_KEY", SECRET_VALUE),
            ("RUST_LOG", "debug"),
        ],
    );
    let client = reqwest::Client::new();
    let started = Instant::now();
    for i in 0..USERS {
        let body = text_event_body(&format!("ev-{i}"), &format!("U{i:04}"), "hi");
        assert_eq!(post_signed(&client, &d.url("/callback"), &body).await, 200);
    }
    let all_replied = eventually(Duration::from_secs(30), || {
        mock.texts("/v2/bot/message/reply").len() >= USERS
    })
    .await;
    let elapsed = started.elapsed();
    assert!(all_replied, "{}", d.stderr.text());
    assert!(
        elapsed < Duration::from_secs(10),
        "200 one-second calls took {elapsed:?}"
    );
    assert!(mock
        .texts("/v2/bot/message/reply")
        .iter()
        .all(|t| t == "waited"));
    let log = d.stderr.text();
    assert!(log.contains("http call"), "one debug line per call:\n{log}");
    assert!(!log.contains(SECRET_VALUE), "the value leaked into the log");
    assert!(log.contains("called with [env MY_API_KEY]"));
    let metrics = client
        .get(d.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(&format!(
            "linebotd_http_calls_total{{host=\"127.0.0.1\",status=\"200\"}} {USERS}"
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains("linebotd_http_call_duration_seconds_count{host=\"127.0.0.1\"}"),
        "{metrics}"
    );
}

/// An answer the HTTP cap lets through but a script cannot hold (over `limits.max_string_size`)
/// throws an error `try` catches, naming the setting, instead of stopping the handler.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_too_big_for_a_script_is_a_catchable_error() {
    let host = web_api().await;
    let script = format!(
        r#"
fn on_message(e) {{
    try {{ let r = http_get("http://{host}/huge"); log(`no error ${{r.body.len()}}`); }}
    catch (err) {{ log(`caught ${{err}}`); }}
    log("the handler goes on");
}}
"#
    );
    let (ok, out) = simulate(&script, &["--http-allow", &host], &[]);
    assert!(ok, "{out}");
    let want = format!(
        "caught http_get: the answer is {} bytes, more than a script may hold as a string \
         (limits.max_string_size is 1048576)",
        1536 * 1024
    );
    assert!(out.contains(&want), "missing `{want}` in:\n{out}");
    assert!(out.contains("the handler goes on"), "{out}");
}
