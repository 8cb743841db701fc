use chrono::{Datelike, NaiveDate, TimeZone, Timelike};
use chrono_tz::America::New_York;
use chrono_tz::Asia::Tokyo;
use rhai::{Engine, OptimizationLevel};

use super::*;

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

fn sched(cron: &str, tz: Tz) -> Schedule {
    Schedule::new("t.rhai", 0, cron, "f", tz).unwrap()
}

/// Every scheduled instant in [from, to).
fn occurrences(s: &Schedule, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let mut out = Vec::new();
    let mut t = from - chrono::Duration::seconds(1);
    while let Some(next) = s.next_after(t) {
        if next >= to {
            break;
        }
        out.push(next);
        t = next;
    }
    out
}

fn load(src: &str) -> Result<Vec<Schedule>, ScheduleError> {
    let ast = Engine::new().compile(src).unwrap();
    schedules_from_ast("echo.rhai", &ast, Tokyo)
}

fn load_err(src: &str) -> String {
    load(src).unwrap_err().to_string()
}

#[test]
fn plain_daily_time_in_zone() {
    let s = sched("0 9 * * *", Tokyo);
    // 09:00 Tokyo is 00:00 UTC.
    assert_eq!(
        s.next_after(utc(2024, 5, 1, 0, 0, 0)),
        Some(utc(2024, 5, 2, 0, 0, 0))
    );
    assert_eq!(
        s.next_after(utc(2024, 4, 30, 23, 59, 59)),
        Some(utc(2024, 5, 1, 0, 0, 0))
    );
}

#[test]
fn next_after_is_strict_even_with_fractional_seconds() {
    let s = sched("* * * * * *", Tz::UTC);
    let at = utc(2024, 5, 1, 0, 0, 0) + chrono::Duration::milliseconds(400);
    assert_eq!(s.next_after(at), Some(utc(2024, 5, 1, 0, 0, 1)));
    let exact = utc(2024, 5, 1, 0, 0, 0);
    assert_eq!(s.next_after(exact), Some(utc(2024, 5, 1, 0, 0, 1)));
}

#[test]
fn stepped_minutes() {
    let s = sched("*/15 * * * *", Tz::UTC);
    let got = occurrences(&s, utc(2024, 1, 1, 10, 0, 0), utc(2024, 1, 1, 11, 0, 0));
    let minutes: Vec<u32> = got.iter().map(|t| t.minute()).collect();
    assert_eq!(minutes, vec![0, 15, 30, 45]);
}

#[test]
fn leading_seconds_field() {
    let s = sched("*/30 * * * * *", Tz::UTC);
    let got = occurrences(&s, utc(2024, 1, 1, 10, 0, 0), utc(2024, 1, 1, 10, 2, 0));
    assert_eq!(got.len(), 4);
    assert_eq!(got[1], utc(2024, 1, 1, 10, 0, 30));
}

#[test]
fn last_day_of_month() {
    let s = sched("0 0 L * *", Tz::UTC);
    let got = occurrences(&s, utc(2024, 1, 1, 0, 0, 0), utc(2024, 5, 1, 0, 0, 0));
    let days: Vec<(u32, u32)> = got.iter().map(|t| (t.month(), t.day())).collect();
    assert_eq!(days, vec![(1, 31), (2, 29), (3, 31), (4, 30)]);
}

#[test]
fn day_31_skips_short_months() {
    let s = sched("0 0 31 * *", Tz::UTC);
    let got = occurrences(&s, utc(2024, 1, 1, 0, 0, 0), utc(2024, 9, 1, 0, 0, 0));
    let months: Vec<u32> = got.iter().map(|t| t.month()).collect();
    assert_eq!(months, vec![1, 3, 5, 7, 8]);
}

#[test]
fn month_and_weekday_names_and_nth_weekday() {
    // Mondays in January 2024: 1, 8, 15, 22, 29.
    let s = sched("0 12 * JAN MON", Tz::UTC);
    let got = occurrences(&s, utc(2024, 1, 1, 0, 0, 0), utc(2024, 12, 31, 0, 0, 0));
    let days: Vec<u32> = got.iter().map(|t| t.day()).collect();
    assert_eq!(days, vec![1, 8, 15, 22, 29]);
    // Second Friday of each month.
    let s = sched("0 12 * * FRI#2", Tz::UTC);
    let next = s.next_after(utc(2024, 3, 1, 0, 0, 0)).unwrap();
    assert_eq!(
        next.date_naive(),
        NaiveDate::from_ymd_opt(2024, 3, 8).unwrap()
    );
}

#[test]
fn fixed_time_in_spring_forward_gap_runs_once_after_the_gap() {
    // 2024-03-10 America/New_York: 02:00 EST jumps to 03:00 EDT, so 02:30 does not exist.
    let s = sched("30 2 * * *", New_York);
    let day = occurrences(&s, utc(2024, 3, 10, 5, 0, 0), utc(2024, 3, 11, 4, 0, 0));
    // 03:00 EDT is 07:00 UTC: the first valid instant after the gap.
    assert_eq!(day, vec![utc(2024, 3, 10, 7, 0, 0)]);
    // The days around it are unaffected.
    assert_eq!(
        s.next_after(utc(2024, 3, 10, 7, 0, 0)),
        Some(utc(2024, 3, 11, 6, 30, 0))
    );
}

#[test]
fn fixed_time_in_fall_back_overlap_runs_once_at_first_pass() {
    // 2024-11-03 America/New_York: 01:00–02:00 happens twice (EDT then EST).
    let s = sched("30 1 * * *", New_York);
    let day = occurrences(&s, utc(2024, 11, 3, 4, 0, 0), utc(2024, 11, 4, 5, 0, 0));
    // 01:30 EDT = 05:30 UTC; the second 01:30 (EST, 06:30 UTC) is not used.
    assert_eq!(day, vec![utc(2024, 11, 3, 5, 30, 0)]);
    // Asking from inside the second pass does not return the first pass (in the past).
    assert_eq!(
        s.next_after(utc(2024, 11, 3, 6, 10, 0)),
        Some(utc(2024, 11, 4, 6, 30, 0))
    );
}

#[test]
fn interval_jobs_follow_real_time_across_dst() {
    let s = sched("0 * * * *", New_York);
    // Spring forward: a 23-hour day, the 02:00 hour is skipped.
    let spring = occurrences(&s, utc(2024, 3, 10, 5, 0, 0), utc(2024, 3, 11, 4, 0, 0));
    assert_eq!(spring.len(), 23);
    // Fall back: a 25-hour day, 01:00 runs on both passes.
    let fall = occurrences(&s, utc(2024, 11, 3, 4, 0, 0), utc(2024, 11, 4, 5, 0, 0));
    assert_eq!(fall.len(), 25);
    assert!(fall.contains(&utc(2024, 11, 3, 5, 0, 0)) && fall.contains(&utc(2024, 11, 3, 6, 0, 0)));
}

#[test]
fn latest_at_or_before_finds_the_missed_time() {
    let s = sched("0 9 * * *", Tz::UTC);
    assert_eq!(
        s.latest_at_or_before(utc(2024, 5, 2, 8, 0, 0)),
        Some(utc(2024, 5, 1, 9, 0, 0))
    );
    assert_eq!(
        s.latest_at_or_before(utc(2024, 5, 2, 9, 0, 0)),
        Some(utc(2024, 5, 2, 9, 0, 0))
    );
}

#[test]
fn key_names_script_index_and_call() {
    let s = Schedule::new("echo.rhai", 2, "0 9 * * *", "morning", Tokyo).unwrap();
    assert_eq!(s.key(), "echo.rhai#2:morning");
}

const FNS: &str = "fn morning() { } fn tick() { } fn greet(name) { } fn two(a, b) { }";

#[test]
fn reads_schedules_without_running_top_level_code() {
    let src = format!(
        r#"
        const SCHEDULES = [
            #{{ cron: "0 9 * * *", "call": "morning", tz: "America/New_York" }},
            #{{ cron: "*/30 * * * * *", "call": "tick" }},
        ];
        throw "top-level code must not run";
        {FNS}"#
    );
    for level in [
        OptimizationLevel::None,
        OptimizationLevel::Simple,
        OptimizationLevel::Full,
    ] {
        let mut engine = Engine::new();
        engine.set_optimization_level(level);
        let ast = engine.compile(&src).unwrap();
        let got = schedules_from_ast("echo.rhai", &ast, Tokyo).unwrap();
        assert_eq!(got.len(), 2, "optimization level {level:?}");
        assert_eq!((got[0].call.as_str(), got[0].tz), ("morning", New_York));
        assert_eq!((got[1].cron.as_str(), got[1].tz), ("*/30 * * * * *", Tokyo));
        assert_eq!(got[1].key(), "echo.rhai#1:tick");
    }
}

#[test]
fn reads_schedules_built_from_other_constants_at_any_optimisation_level() {
    let src = r#"
        const ZONE = "America/New_York";
        const SCHEDULES = [#{ cron: "0 " + "9 * * *", "call": "morning", tz: ZONE }];
        fn morning() { }"#;
    for level in [OptimizationLevel::None, OptimizationLevel::Simple] {
        let mut engine = Engine::new();
        engine.set_optimization_level(level);
        let ast = engine.compile(src).unwrap();
        let got = schedules_from_ast("echo.rhai", &ast, Tokyo).unwrap();
        assert_eq!(got.len(), 1, "optimization level {level:?}");
        assert_eq!((got[0].cron.as_str(), got[0].tz), ("0 9 * * *", New_York));
    }
}

#[test]
fn no_schedules_constant_means_no_schedules() {
    assert_eq!(load(&format!("let x = 1; {FNS}")).unwrap(), vec![]);
    assert_eq!(load("const SCHEDULES = [];").unwrap(), vec![]);
}

#[test]
fn rejects_schedules_that_is_not_an_array() {
    assert_eq!(
        load_err(r#"const SCHEDULES = #{ cron: "0 9 * * *", "call": "morning" };"#),
        "echo.rhai: SCHEDULES must be an array of maps like #{ cron: \"0 9 * * *\", call: \"morning\" }, found map"
    );
}

#[test]
fn rejects_entry_that_is_not_a_map() {
    assert_eq!(
        load_err(r#"const SCHEDULES = ["0 9 * * *"];"#),
        "echo.rhai: SCHEDULES[0] (0 9 * * *): must be a map like #{ cron: \"0 9 * * *\", call: \"morning\" }, found string"
    );
}

#[test]
fn rejects_missing_and_non_string_fields() {
    let src = format!(r#"const SCHEDULES = [#{{ cron: "0 9 * * *" }}]; {FNS}"#);
    assert_eq!(
        load_err(&src),
        "echo.rhai: SCHEDULES[0] (cron \"0 9 * * *\"): missing \"call\" (a string)"
    );
    let src = format!(r#"const SCHEDULES = [#{{ cron: 9, "call": "morning" }}]; {FNS}"#);
    assert_eq!(
        load_err(&src),
        "echo.rhai: SCHEDULES[0] (cron 9, call \"morning\"): \"cron\" must be a string, found i64"
    );
}

#[test]
fn rejects_unknown_key() {
    let src = format!(
        r#"const SCHEDULES = [#{{ cron: "0 9 * * *", "call": "morning", tx: "UTC" }}]; {FNS}"#
    );
    assert_eq!(
        load_err(&src),
        "echo.rhai: SCHEDULES[0] (cron \"0 9 * * *\", call \"morning\", tx \"UTC\"): unknown key \"tx\" (allowed: cron, call, tz)"
    );
}

#[test]
fn rejects_invalid_cron() {
    let src = format!(
        r#"const SCHEDULES = [#{{ cron: "0 9 * * *", "call": "morning" }}, #{{ cron: "*/61 * * * *", "call": "tick" }}]; {FNS}"#
    );
    let msg = load_err(&src);
    assert!(
        msg.starts_with("echo.rhai: SCHEDULES[1] (cron \"*/61 * * * *\", call \"tick\"): invalid cron expression: "),
        "{msg}"
    );
    assert!(
        msg.ends_with("step 61 in the minute field is larger than its 60 values"),
        "{msg}"
    );
    for bad in [
        "0 9 * *",
        "1 2 3 4 5 6 7",
        "0 25 * * *",
        "hello",
        "*/0 * * * *",
        "0 0 1-40/32 * *",
    ] {
        let src = format!(r#"const SCHEDULES = [#{{ cron: "{bad}", "call": "tick" }}]; {FNS}"#);
        assert!(
            matches!(load(&src), Err(ScheduleError::InvalidCron { .. })),
            "{bad} should be invalid"
        );
    }
}

#[test]
fn rejects_unknown_time_zone() {
    let src = format!(
        r#"const SCHEDULES = [#{{ cron: "0 9 * * *", "call": "morning", tz: "Asia/Tokio" }}]; {FNS}"#
    );
    assert_eq!(
        load_err(&src),
        "echo.rhai: SCHEDULES[0] (cron \"0 9 * * *\", call \"morning\", tz \"Asia/Tokio\"): unknown time zone \"Asia/Tokio\" (use an IANA name such as \"Asia/Tokyo\")"
    );
}

#[test]
fn rejects_undefined_function() {
    let src = r#"const SCHEDULES = [#{ cron: "* * * * *", "call": "tick" }]; fn tock() { }"#;
    assert_eq!(
        load_err(src),
        "echo.rhai: SCHEDULES[0] (cron \"* * * * *\", call \"tick\"): function tick() is not defined in this script"
    );
}

#[test]
fn rejects_function_with_parameters() {
    let src = format!(r#"const SCHEDULES = [#{{ cron: "* * * * *", "call": "greet" }}]; {FNS}"#);
    assert_eq!(
        load_err(&src),
        "echo.rhai: SCHEDULES[0] (cron \"* * * * *\", call \"greet\"): function greet takes 1 parameter; scheduled functions take none"
    );
    let src = format!(r#"const SCHEDULES = [#{{ cron: "* * * * *", "call": "two" }}]; {FNS}"#);
    assert!(
        load_err(&src).ends_with("function two takes 2 parameters; scheduled functions take none")
    );
    // An overload with no parameters is what gets called, so it is accepted.
    let src = r#"const SCHEDULES = [#{ cron: "* * * * *", "call": "f" }]; fn f(x) { } fn f() { }"#;
    assert_eq!(load(src).unwrap().len(), 1);
}

#[test]
fn unquoted_call_key_does_not_compile_in_rhai() {
    // Documents why scripts must write `"call": …`: rhai reserves `call`.
    let err = Engine::new()
        .compile(r#"const SCHEDULES = [#{ cron: "* * * * *", call: "tick" }];"#)
        .unwrap_err();
    assert!(err.to_string().contains("call"), "{err}");
}
