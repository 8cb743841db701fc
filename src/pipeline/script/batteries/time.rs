//! Time in a zone: `now`, `format_time`, `time_parts` and `parse_time`.
//!
//! Scripts carry time as epoch milliseconds (what `event.timestamp` is), and a zone is an IANA
//! name. Without one, the configured `timezone` applies: the engine is built before the
//! configuration is read, so [`set_default_zone`] stores the zone in the engine's default tag,
//! which every call's native context can read. Engines without it use UTC.

use std::fmt::Write as _;
use std::str::FromStr;

use chrono::format::{Item, Parsed, StrftimeItems};
use chrono::{DateTime, Datelike, LocalResult, NaiveTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use rhai::{Dynamic, Engine, Map, NativeCallContext, INT};

use super::{error, BatteryResult};

/// The default zone as the engine's tag; a newtype so no other tag is mistaken for it.
#[derive(Clone, Copy)]
struct DefaultZone(Tz);

/// Makes `tz` the zone of `format_time`, `time_parts` and `parse_time` calls that name none.
pub fn set_default_zone(engine: &mut Engine, tz: Tz) {
    engine.set_default_tag(Dynamic::from(DefaultZone(tz)));
}

pub fn register(engine: &mut Engine) {
    engine
        .register_fn("now", now)
        .register_fn(
            "format_time",
            |ctx: NativeCallContext, ms: INT, pattern: &str| {
                format_time(ms, pattern, default_zone(&ctx))
            },
        )
        .register_fn("format_time", |ms: INT, pattern: &str, tz: &str| {
            format_time(ms, pattern, zone("format_time", tz)?)
        })
        .register_fn("time_parts", |ctx: NativeCallContext, ms: INT| {
            time_parts(ms, default_zone(&ctx))
        })
        .register_fn("time_parts", |ms: INT, tz: &str| {
            time_parts(ms, zone("time_parts", tz)?)
        })
        .register_fn(
            "parse_time",
            |ctx: NativeCallContext, text: &str, pattern: &str| {
                parse_time(text, pattern, default_zone(&ctx))
            },
        )
        .register_fn("parse_time", |text: &str, pattern: &str, tz: &str| {
            parse_time(text, pattern, zone("parse_time", tz)?)
        });
}

/// The current time in epoch milliseconds.
pub fn now() -> INT {
    Utc::now().timestamp_millis()
}

/// `ms` as local time in `tz`, written with a strftime `pattern`.
pub fn format_time(ms: INT, pattern: &str, tz: Tz) -> BatteryResult<String> {
    const F: &str = "format_time";
    let items = items(F, pattern)?;
    let local = instant(F, ms)?.with_timezone(&tz);
    let mut out = String::new();
    // Writing, unlike `to_string`, reports a code the value cannot fill instead of panicking.
    write!(out, "{}", local.format_with_items(items.iter()))
        .map_err(|_| bad_pattern(F, pattern))?;
    Ok(out)
}

/// The calendar fields of `ms` in `tz`; `weekday` runs from 1 (Monday) to 7 (Sunday).
pub fn time_parts(ms: INT, tz: Tz) -> BatteryResult<Map> {
    let local = instant("time_parts", ms)?.with_timezone(&tz);
    let mut parts = Map::new();
    for (name, value) in [
        ("year", INT::from(local.year())),
        ("month", local.month().into()),
        ("day", local.day().into()),
        ("hour", local.hour().into()),
        ("minute", local.minute().into()),
        ("second", local.second().into()),
        ("weekday", local.weekday().number_from_monday().into()),
    ] {
        parts.insert(name.into(), Dynamic::from_int(value));
    }
    Ok(parts)
}

/// Reads `text` with a strftime `pattern` as local time in `tz` (unless the text carries its own
/// offset, `%z`), and returns epoch milliseconds. A pattern without a time of day means
/// midnight. A local time the clocks skip (spring forward) is an error; one they pass twice (fall
/// back) is taken at its first occurrence, the earlier instant.
pub fn parse_time(text: &str, pattern: &str, tz: Tz) -> BatteryResult<INT> {
    const F: &str = "parse_time";
    let items = items(F, pattern)?;
    let mut parsed = Parsed::new();
    chrono::format::parse(&mut parsed, text, items.iter()).map_err(|e| {
        error(
            F,
            format!("{text:?} does not match the pattern {pattern:?} ({e})"),
        )
    })?;
    let incomplete = |e| {
        error(
            F,
            format!("the pattern {pattern:?} does not give a full date ({e})"),
        )
    };
    if parsed.timestamp().is_some() || parsed.offset().is_some() {
        let at = parsed
            .to_datetime_with_timezone(&Utc)
            .or_else(|_| parsed.to_datetime().map(|t| t.with_timezone(&Utc)))
            .map_err(incomplete)?;
        return Ok(at.timestamp_millis());
    }
    let date = parsed.to_naive_date().map_err(incomplete)?;
    let no_time = parsed.hour_div_12().is_none() && parsed.hour_mod_12().is_none();
    let time = if no_time {
        NaiveTime::MIN
    } else {
        parsed.to_naive_time().map_err(incomplete)?
    };
    let local = date.and_time(time);
    match tz.from_local_datetime(&local) {
        LocalResult::Single(at) | LocalResult::Ambiguous(at, _) => Ok(at.timestamp_millis()),
        LocalResult::None => Err(error(
            F,
            format!(
                "{local} does not exist in {tz}: the clocks skip it (daylight saving time starts); \
                 use a time outside the skipped hour"
            ),
        )),
    }
}

fn default_zone(ctx: &NativeCallContext) -> Tz {
    ctx.tag()
        .and_then(|tag| tag.clone().try_cast::<DefaultZone>())
        .map_or(chrono_tz::UTC, |zone| zone.0)
}

fn zone(function: &str, name: &str) -> BatteryResult<Tz> {
    Tz::from_str(name).map_err(|_| {
        error(
            function,
            format!(
                "unknown time zone {name:?} (argument tz); use an IANA name such as \"Asia/Tokyo\" or \"UTC\""
            ),
        )
    })
}

fn instant(function: &str, ms: INT) -> BatteryResult<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| {
        error(
            function,
            format!("{ms} is out of range (argument ms: epoch milliseconds, as now() returns)"),
        )
    })
}

fn items<'a>(function: &str, pattern: &'a str) -> BatteryResult<Vec<Item<'a>>> {
    StrftimeItems::new(pattern)
        .parse()
        .map_err(|_| bad_pattern(function, pattern))
}

fn bad_pattern(function: &str, pattern: &str) -> Box<rhai::EvalAltResult> {
    error(
        function,
        format!(
            "bad pattern {pattern:?} (argument pattern); use strftime codes such as \"%Y-%m-%d %H:%M\""
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEW_YORK: Tz = chrono_tz::America::New_York;

    fn utc_ms(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> INT {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
            .unwrap()
            .timestamp_millis()
    }

    fn hms(parts: &Map) -> (INT, INT, INT) {
        let get = |k: &str| parts[k].as_int().unwrap();
        (get("hour"), get("minute"), get("second"))
    }

    #[test]
    fn now_is_epoch_milliseconds() {
        let before = Utc::now().timestamp_millis();
        let n = now();
        assert!(n >= before && n - before < 5_000);
    }

    #[test]
    fn formats_in_the_given_zone() {
        let ms = utc_ms(2026, 1, 5, 0, 0, 0); // a Monday, 09:00 in Tokyo
        let tokyo = chrono_tz::Asia::Tokyo;
        assert_eq!(format_time(ms, "%A %H:%M", tokyo).unwrap(), "Monday 09:00");
        assert_eq!(
            format_time(ms, "%Y-%m-%d %H:%M", chrono_tz::UTC).unwrap(),
            "2026-01-05 00:00"
        );
    }

    #[test]
    fn format_time_jumps_over_the_spring_forward_hour_in_new_york() {
        // 01:59:59 EST is 06:59:59 UTC; one second later it is 03:00:00 EDT.
        let before = utc_ms(2026, 3, 8, 6, 59, 59);
        let f = |ms| format_time(ms, "%H:%M:%S %Z", NEW_YORK).unwrap();
        assert_eq!(f(before), "01:59:59 EST");
        assert_eq!(f(before + 1000), "03:00:00 EDT");
    }

    #[test]
    fn format_time_shows_the_repeated_fall_back_hour_twice_in_new_york() {
        let first = utc_ms(2026, 11, 1, 5, 30, 0);
        let second = utc_ms(2026, 11, 1, 6, 30, 0);
        let f = |ms| format_time(ms, "%H:%M %Z", NEW_YORK).unwrap();
        assert_eq!(f(first), "01:30 EDT");
        assert_eq!(f(second), "01:30 EST");
    }

    #[test]
    fn time_parts_across_the_new_york_transitions() {
        let spring = utc_ms(2026, 3, 8, 6, 59, 59);
        assert_eq!(hms(&time_parts(spring, NEW_YORK).unwrap()), (1, 59, 59));
        let after = time_parts(spring + 1000, NEW_YORK).unwrap();
        assert_eq!(hms(&after), (3, 0, 0));
        assert_eq!(after["weekday"].as_int().unwrap(), 7); // a Sunday
        assert_eq!(after["day"].as_int().unwrap(), 8);
        let first = time_parts(utc_ms(2026, 11, 1, 5, 30, 0), NEW_YORK).unwrap();
        let second = time_parts(utc_ms(2026, 11, 1, 6, 30, 0), NEW_YORK).unwrap();
        assert_eq!(hms(&first), (1, 30, 0));
        assert_eq!(hms(&second), (1, 30, 0));
    }

    #[test]
    fn time_parts_counts_weekdays_from_monday() {
        let parts = time_parts(utc_ms(2026, 1, 5, 12, 0, 0), chrono_tz::UTC).unwrap();
        assert_eq!(parts["weekday"].as_int().unwrap(), 1);
        assert_eq!(parts["year"].as_int().unwrap(), 2026);
        assert_eq!(parts["month"].as_int().unwrap(), 1);
    }

    #[test]
    fn parse_time_reads_local_time_in_the_zone() {
        let ms = parse_time("2026-01-05 09:00", "%Y-%m-%d %H:%M", chrono_tz::Asia::Tokyo).unwrap();
        assert_eq!(ms, utc_ms(2026, 1, 5, 0, 0, 0));
        let midnight = parse_time("05/01/2026", "%d/%m/%Y", chrono_tz::UTC).unwrap();
        assert_eq!(midnight, utc_ms(2026, 1, 5, 0, 0, 0));
        let offset = parse_time("2026-01-05 09:00 +0900", "%Y-%m-%d %H:%M %z", NEW_YORK).unwrap();
        assert_eq!(offset, utc_ms(2026, 1, 5, 0, 0, 0));
    }

    #[test]
    fn parse_time_refuses_a_skipped_time_and_takes_the_first_of_a_repeated_one() {
        let e = parse_time("2026-03-08 02:30", "%Y-%m-%d %H:%M", NEW_YORK).unwrap_err();
        assert!(
            e.to_string().contains("does not exist in America/New_York"),
            "{e}"
        );
        let repeated = parse_time("2026-11-01 01:30", "%Y-%m-%d %H:%M", NEW_YORK).unwrap();
        assert_eq!(repeated, utc_ms(2026, 11, 1, 5, 30, 0));
    }

    #[test]
    fn errors_name_the_argument() {
        let e = zone("format_time", "Asia/Tokio").unwrap_err().to_string();
        assert!(
            e.contains("format_time: unknown time zone \"Asia/Tokio\" (argument tz)"),
            "{e}"
        );
        let e = format_time(0, "%Q", chrono_tz::UTC)
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad pattern \"%Q\" (argument pattern)"), "{e}");
        let e = parse_time("soon", "%Y-%m-%d", chrono_tz::UTC)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("\"soon\" does not match the pattern \"%Y-%m-%d\""),
            "{e}"
        );
        let e = parse_time("09:00", "%H:%M", chrono_tz::UTC)
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not give a full date"), "{e}");
        let e = time_parts(INT::MAX, chrono_tz::UTC)
            .unwrap_err()
            .to_string();
        assert!(e.contains("(argument ms"), "{e}");
    }
}
