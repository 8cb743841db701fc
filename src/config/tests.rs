use super::*;

fn creds() -> Settings {
    Settings {
        channel_secret: Some("s".into()),
        channel_access_token: Some("t".into()),
        ..Settings::default()
    }
}

#[test]
fn missing_secret_names_variable_and_fix() {
    let err = Config::load(&Settings::default(), None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "CHANNEL_SECRET is not set: export it or put channel_secret in linebotd.toml"
    );
    let only_secret = Settings {
        channel_secret: Some("s".into()),
        ..Settings::default()
    };
    let err = Config::load(&only_secret, None).unwrap_err();
    assert!(err
        .to_string()
        .starts_with("CHANNEL_ACCESS_TOKEN is not set"));
}

#[test]
fn defaults() {
    let c = Config::load(&creds(), None).unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.webhook_path, "/callback");
    assert_eq!(c.max_body, 1024 * 1024);
    assert_eq!(c.line_api_base, "https://api.line.me");
    assert_eq!(c.line_data_api_base, "https://api-data.line.me");
    assert_eq!(c.scripts_dir, PathBuf::from("scripts"));
    assert_eq!(c.store, "linebotd.db");
    assert!(c.watch && c.reply_fallback_push && !c.strict);
    assert_eq!(c.clients, DEFAULT_CLIENT_LIMITS);
}

#[test]
fn client_limits_come_from_file_and_flags_and_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("linebotd.toml");
    std::fs::write(
        &path,
        "header_read_timeout_secs = 3\nbody_read_timeout_secs = 4\nkeep_alive_idle_secs = 0\nmax_connections = 7\n",
    )
    .unwrap();
    let s = Settings {
        config: Some(path),
        max_connections: Some(9),
        ..creds()
    };
    let c = Config::load(&s, None).unwrap();
    assert_eq!(
        c.clients,
        ClientLimits {
            header_read_timeout: Duration::from_secs(3),
            body_read_timeout: Duration::from_secs(4),
            keep_alive_idle: Duration::ZERO,
            max_connections: 9,
        }
    );
    let bad = |s: Settings| Config::load(&s, None).unwrap_err().to_string();
    assert!(bad(Settings {
        header_read_timeout_secs: Some(0),
        ..creds()
    })
    .starts_with("--header-read-timeout-secs is invalid"));
    assert!(bad(Settings {
        body_read_timeout_secs: Some(u64::MAX),
        ..creds()
    })
    .starts_with("--body-read-timeout-secs is invalid"));
    assert!(bad(Settings {
        max_connections: Some(0),
        ..creds()
    })
    .starts_with("--max-connections is invalid"));
}

#[test]
fn store_sync_is_full_unless_normal_is_asked_for() {
    use crate::store::SyncMode;
    assert_eq!(
        Config::load(&creds(), None).unwrap().store_sync,
        SyncMode::Full
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("linebotd.toml");
    std::fs::write(&path, "store_sync = \"normal\"\n").unwrap();
    let from_file = Settings {
        config: Some(path),
        ..creds()
    };
    assert_eq!(
        Config::load(&from_file, None).unwrap().store_sync,
        SyncMode::Normal
    );
    let flag = Settings {
        store_sync: Some("full".into()),
        ..from_file
    };
    assert_eq!(
        Config::load(&flag, None).unwrap().store_sync,
        SyncMode::Full
    );
    let bad = Settings {
        store_sync: Some("off".into()),
        ..creds()
    };
    let err = Config::load(&bad, None).unwrap_err().to_string();
    assert!(err.starts_with("--store-sync is invalid"), "{err}");
}

#[test]
fn port_variable_listens_on_all_interfaces_unless_listen_given() {
    let c = Config::load(&creds(), Some("5000")).unwrap();
    assert_eq!(c.listen.to_string(), "0.0.0.0:5000");
    let s = Settings {
        listen: Some("127.0.0.1:9".into()),
        ..creds()
    };
    assert_eq!(
        Config::load(&s, Some("5000")).unwrap().listen.to_string(),
        "127.0.0.1:9"
    );
    assert!(Config::load(&creds(), Some("http"))
        .unwrap_err()
        .to_string()
        .contains("PORT"));
}

#[test]
fn file_values_apply_and_flags_override_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("linebotd.toml");
    std::fs::write(
        &path,
        "channel_secret = \"file-secret\"\nchannel_access_token = \"file-token\"\nlisten = \"127.0.0.1:7000\"\nscripts = \"bots\"\ntimezone = \"Asia/Tokyo\"\n[limits]\nmax_call_ms = 50\n",
    )
    .unwrap();
    let s = Settings {
        config: Some(path.clone()),
        listen: Some("127.0.0.1:7001".into()),
        ..Settings::default()
    };
    let c = Config::load(&s, None).unwrap();
    assert_eq!(c.channel_secret, "file-secret");
    assert_eq!(c.listen.to_string(), "127.0.0.1:7001");
    assert_eq!(c.scripts_dir, dir.path().join("bots"));
    assert_eq!(c.store, dir.path().join("linebotd.db").to_string_lossy());
    assert_eq!(c.timezone, "Asia/Tokyo");
    assert_eq!(c.limits.max_call_ms, 50);
    assert_eq!(c.limits.workers, Limits::default().workers);
}

#[test]
fn unknown_file_key_is_an_error_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("linebotd.toml");
    std::fs::write(&path, "channel_secret = \"s\"\nlisten_adress = \"x\"\n").unwrap();
    let s = Settings {
        config: Some(path),
        ..Settings::default()
    };
    let msg = Config::load(&s, None).unwrap_err().to_string();
    assert!(
        msg.contains("listen_adress") && msg.contains("line 2"),
        "{msg}"
    );
}

#[test]
fn invalid_values_are_named() {
    let bad = |s: Settings| Config::load(&s, None).unwrap_err().to_string();
    assert!(bad(Settings {
        listen: Some("localhost".into()),
        ..creds()
    })
    .starts_with("--listen is invalid"));
    assert!(bad(Settings {
        webhook_path: Some("callback".into()),
        ..creds()
    })
    .starts_with("--webhook-path"));
    assert!(bad(Settings {
        line_api_base: Some("ftp://x".into()),
        ..creds()
    })
    .starts_with("LINE_API_BASE"));
    assert!(bad(Settings {
        timezone: Some("Mars/Base".into()),
        ..creds()
    })
    .starts_with("timezone"));
    assert!(bad(Settings {
        log_format: Some("xml".into()),
        ..creds()
    })
    .starts_with("--log-format"));
    assert!(bad(Settings {
        max_body: Some(10),
        ..creds()
    })
    .starts_with("--max-body"));
}

#[test]
fn trailing_slash_on_base_url_is_dropped() {
    let s = Settings {
        line_api_base: Some("http://127.0.0.1:9/".into()),
        ..creds()
    };
    assert_eq!(
        Config::load(&s, None).unwrap().line_api_base,
        "http://127.0.0.1:9"
    );
}

#[test]
fn content_max_bytes_comes_from_file_and_flags_reaches_the_line_client_and_is_checked() {
    let c = Config::load(&creds(), None).unwrap();
    assert_eq!(c.content_max_bytes, 20 * 1024 * 1024);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("linebotd.toml");
    std::fs::write(&path, "content_max_bytes = 1000\n").unwrap();
    let from_file = Settings {
        config: Some(path.clone()),
        ..creds()
    };
    let c = Config::load(&from_file, None).unwrap();
    assert_eq!(c.line().content_max_bytes, 1000);
    let flag = Settings {
        config: Some(path),
        content_max_bytes: Some(2000),
        ..creds()
    };
    assert_eq!(Config::load(&flag, None).unwrap().content_max_bytes, 2000);
    let zero = Settings {
        content_max_bytes: Some(0),
        ..creds()
    };
    let err = Config::load(&zero, None).unwrap_err().to_string();
    assert!(err.starts_with("content_max_bytes is invalid"), "{err}");
}
