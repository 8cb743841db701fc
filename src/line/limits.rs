//! LINE's rate limits endpoint by endpoint, as the Messaging API reference lists them: which
//! bucket a request counts against and how fast that bucket refills.
//!
//! LINE counts each endpoint (method and path, whatever the IDs in it) separately per channel:
//! 2,000 requests a second unless the table below names a lower limit. An endpoint the table
//! does not know, reached through `get`/`post`, counts against one shared bucket per method at
//! the 2,000/s rate: slower than LINE allows when several are busy at once, never faster.

use std::time::Duration;

/// How fast one endpoint may be called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rate {
    /// LINE's default, 2,000 requests a second: [`LineConfig::rate_limit_per_sec`](super::LineConfig).
    Standard,
    /// The loading animation, 100 a second: [`LineConfig::loading_rate_limit_per_sec`](super::LineConfig).
    Loading,
    /// A lower limit of LINE's own: `count` requests per `per`.
    Fixed { count: u32, per: Duration },
}

/// One row of LINE's table.
#[derive(Debug)]
pub struct EndpointLimit {
    /// The bucket's name; for the endpoints `LineClient` has a method for, that method's
    /// endpoint name, so `line_post("/v2/bot/message/push", …)` shares `push`'s bucket.
    pub name: &'static str,
    pub method: &'static str,
    /// The path with `{}` for each parameter segment.
    pub path: &'static str,
    pub rate: Rate,
}

const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

const fn fixed(count: u32, per: Duration) -> Rate {
    Rate::Fixed { count, per }
}

const fn row(
    name: &'static str,
    method: &'static str,
    path: &'static str,
    rate: Rate,
) -> EndpointLimit {
    EndpointLimit {
        name,
        method,
        path,
        rate,
    }
}

/// The endpoints linebotd calls by name, then every endpoint LINE lists with a lower limit
/// (<https://developers.line.biz/en/reference/messaging-api/#rate-limits>). The first row whose
/// method and path match wins, so `…/list` rows come before `…/{}` rows.
#[rustfmt::skip]
pub const LIMITS: &[EndpointLimit] = &[
    row("reply", "POST", "/v2/bot/message/reply", Rate::Standard),
    row("push", "POST", "/v2/bot/message/push", Rate::Standard),
    row("profile", "GET", "/v2/bot/profile/{}", Rate::Standard),
    row("group member profile", "GET", "/v2/bot/group/{}/member/{}", Rate::Standard),
    row("room member profile", "GET", "/v2/bot/room/{}/member/{}", Rate::Standard),
    row("content", "GET", "/v2/bot/message/{}/content", Rate::Standard),
    row("loading", "POST", "/v2/bot/chat/loading/start", Rate::Loading),
    row("multicast", "POST", "/v2/bot/message/multicast", fixed(200, SECOND)),
    row("broadcast", "POST", "/v2/bot/message/broadcast", fixed(60, HOUR)),
    row("narrowcast", "POST", "/v2/bot/message/narrowcast", fixed(60, HOUR)),
    // Statistics and the webhook test: 60 an hour.
    row("delivery count", "GET", "/v2/bot/insight/message/delivery", fixed(60, HOUR)),
    row("follower count", "GET", "/v2/bot/insight/followers", fixed(60, HOUR)),
    row("friend demographics", "GET", "/v2/bot/insight/demographic", fixed(60, HOUR)),
    row("message statistics", "GET", "/v2/bot/insight/message/event", fixed(60, HOUR)),
    row("unit statistics", "GET", "/v2/bot/insight/message/event/aggregation", fixed(60, HOUR)),
    row("webhook test", "POST", "/v2/bot/channel/webhook/test", fixed(60, HOUR)),
    // Audiences: 60 a minute.
    row("audience upload", "POST", "/v2/bot/audienceGroup/upload", fixed(60, MINUTE)),
    row("audience add", "PUT", "/v2/bot/audienceGroup/upload", fixed(60, MINUTE)),
    row("audience upload file", "POST", "/v2/bot/audienceGroup/upload/byFile", fixed(60, MINUTE)),
    row("audience add file", "PUT", "/v2/bot/audienceGroup/upload/byFile", fixed(60, MINUTE)),
    row("audience click", "POST", "/v2/bot/audienceGroup/click", fixed(60, MINUTE)),
    row("audience impression", "POST", "/v2/bot/audienceGroup/imp", fixed(60, MINUTE)),
    row("audience rename", "PUT", "/v2/bot/audienceGroup/{}/updateDescription", fixed(60, MINUTE)),
    row("audience list", "GET", "/v2/bot/audienceGroup/list", fixed(60, MINUTE)),
    row("shared audience list", "GET", "/v2/bot/audienceGroup/shared/list", fixed(60, MINUTE)),
    row("shared audience", "GET", "/v2/bot/audienceGroup/shared/{}", fixed(60, MINUTE)),
    row("audience", "GET", "/v2/bot/audienceGroup/{}", fixed(60, MINUTE)),
    row("audience delete", "DELETE", "/v2/bot/audienceGroup/{}", fixed(60, MINUTE)),
    // The webhook URL: 1,000 a minute.
    row("webhook endpoint set", "PUT", "/v2/bot/channel/webhook/endpoint", fixed(1000, MINUTE)),
    row("webhook endpoint", "GET", "/v2/bot/channel/webhook/endpoint", fixed(1000, MINUTE)),
    // Rich menus.
    row("rich menu create", "POST", "/v2/bot/richmenu", fixed(100, HOUR)),
    row("rich menu list", "GET", "/v2/bot/richmenu/list", fixed(10, SECOND)),
    row("rich menu delete", "DELETE", "/v2/bot/richmenu/{}", fixed(100, HOUR)),
    row("rich menu alias delete", "DELETE", "/v2/bot/richmenu/alias/{}", fixed(100, HOUR)),
    row("rich menu batch progress", "GET", "/v2/bot/richmenu/progress/batch", fixed(100, HOUR)),
    row("rich menu batch", "POST", "/v2/bot/richmenu/batch", fixed(3, HOUR)),
    // Memberships and coupons: 200 a second.
    row("membership", "GET", "/v2/bot/membership/subscription/{}", fixed(200, SECOND)),
    row("membership list", "GET", "/v2/bot/membership/list", fixed(200, SECOND)),
    row("coupon create", "POST", "/v2/bot/coupon", fixed(200, SECOND)),
    row("coupon list", "GET", "/v2/bot/coupon", fixed(200, SECOND)),
    row("coupon close", "PUT", "/v2/bot/coupon/{}/close", fixed(200, SECOND)),
    row("coupon", "GET", "/v2/bot/coupon/{}", fixed(200, SECOND)),
    row("stateless token", "POST", "/oauth2/v3/token", fixed(370, SECOND)),
];

/// The row for one of `LineClient`'s own endpoint names (`"reply"`, `"multicast"`…).
pub fn by_name(name: &str) -> Option<&'static EndpointLimit> {
    LIMITS.iter().find(|l| l.name == name)
}

/// The row for a request, from its method and its path below the base URL (a query string is
/// ignored, and so are the IDs in the path: LINE counts `/v2/bot/profile/U1` and `…/U2` together).
pub fn by_request(method: &str, path: &str) -> Option<&'static EndpointLimit> {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    LIMITS.iter().find(|l| {
        l.method.eq_ignore_ascii_case(method) && {
            let pattern = l.path.trim_matches('/').split('/');
            pattern.clone().count() == segments.len()
                && pattern
                    .zip(&segments)
                    .all(|(p, s)| if p == "{}" { !s.is_empty() } else { p == *s })
        }
    })
}

impl Rate {
    /// The bucket this rate gets under the configured limits, as `(count, per)`; `None` when
    /// limiting is off. `standard_per_sec` of 0 turns every bucket off; otherwise no endpoint
    /// gets more than it a second, so a small test setting slows every endpoint down alike.
    pub fn effective(self, standard_per_sec: u32, loading_per_sec: u32) -> Option<(u32, Duration)> {
        if standard_per_sec == 0 {
            return None;
        }
        match self {
            Self::Standard => Some((standard_per_sec, SECOND)),
            Self::Loading => (loading_per_sec > 0).then_some((loading_per_sec, SECOND)),
            Self::Fixed { count, per } => {
                let per_sec = f64::from(count) / per.as_secs_f64();
                if per_sec > f64::from(standard_per_sec) {
                    Some((standard_per_sec, SECOND))
                } else {
                    Some((count, per))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate_of(method: &str, path: &str) -> Option<(&'static str, Rate)> {
        by_request(method, path).map(|l| (l.name, l.rate))
    }

    #[test]
    fn message_endpoints_have_lines_limits() {
        assert_eq!(
            rate_of("POST", "/v2/bot/message/reply"),
            Some(("reply", Rate::Standard))
        );
        assert_eq!(
            rate_of("POST", "/v2/bot/message/push"),
            Some(("push", Rate::Standard))
        );
        assert_eq!(
            rate_of("POST", "/v2/bot/message/multicast"),
            Some(("multicast", fixed(200, SECOND)))
        );
        assert_eq!(
            rate_of("POST", "/v2/bot/message/broadcast"),
            Some(("broadcast", fixed(60, HOUR)))
        );
        assert_eq!(
            rate_of("POST", "/v2/bot/message/narrowcast"),
            Some(("narrowcast", fixed(60, HOUR)))
        );
        assert_eq!(
            rate_of("POST", "/v2/bot/chat/loading/start"),
            Some(("loading", Rate::Loading))
        );
    }

    #[test]
    fn ids_and_queries_do_not_make_a_new_endpoint() {
        assert_eq!(
            rate_of("GET", "/v2/bot/profile/U1").map(|r| r.0),
            Some("profile")
        );
        assert_eq!(
            rate_of("get", "/v2/bot/profile/U2?x=1").map(|r| r.0),
            Some("profile")
        );
        assert_eq!(rate_of("GET", "/v2/bot/profile/"), None, "an ID is needed");
        assert_eq!(rate_of("GET", "/v2/bot/profile/U1/extra"), None);
        assert_eq!(
            rate_of("GET", "/v2/bot/info"),
            None,
            "2,000/s, shared bucket"
        );
    }

    #[test]
    fn the_method_is_part_of_the_endpoint() {
        assert_eq!(
            rate_of("POST", "/v2/bot/richmenu"),
            Some(("rich menu create", fixed(100, HOUR)))
        );
        assert_eq!(
            rate_of("DELETE", "/v2/bot/richmenu/rm-1"),
            Some(("rich menu delete", fixed(100, HOUR)))
        );
        assert_eq!(
            rate_of("GET", "/v2/bot/richmenu/rm-1"),
            None,
            "getting one is 2,000/s"
        );
        assert_eq!(
            rate_of("GET", "/v2/bot/richmenu/list"),
            Some(("rich menu list", fixed(10, SECOND)))
        );
        assert_eq!(
            rate_of("GET", "/v2/bot/audienceGroup/list").map(|r| r.0),
            Some("audience list")
        );
        assert_eq!(
            rate_of("GET", "/v2/bot/audienceGroup/42").map(|r| r.0),
            Some("audience")
        );
    }

    #[test]
    fn names_are_unique_and_every_client_endpoint_has_a_row() {
        for (i, l) in LIMITS.iter().enumerate() {
            assert!(
                LIMITS[..i].iter().all(|o| o.name != l.name),
                "{} twice",
                l.name
            );
            let example = l.path.replace("{}", "x");
            assert_eq!(
                by_request(l.method, &example).map(|r| r.name),
                Some(l.name),
                "{} is shadowed",
                l.name
            );
        }
        for name in [
            "reply",
            "push",
            "multicast",
            "broadcast",
            "profile",
            "group member profile",
            "room member profile",
            "content",
            "loading",
        ] {
            assert!(by_name(name).is_some(), "{name}");
        }
    }

    #[test]
    fn configured_rate_caps_every_bucket_and_zero_turns_all_off() {
        assert_eq!(Rate::Standard.effective(2000, 100), Some((2000, SECOND)));
        assert_eq!(fixed(200, SECOND).effective(2000, 100), Some((200, SECOND)));
        assert_eq!(fixed(200, SECOND).effective(20, 100), Some((20, SECOND)));
        assert_eq!(fixed(60, HOUR).effective(20, 100), Some((60, HOUR)));
        assert_eq!(Rate::Loading.effective(20, 100), Some((100, SECOND)));
        assert_eq!(Rate::Loading.effective(2000, 0), None);
        for rate in [Rate::Standard, Rate::Loading, fixed(60, HOUR)] {
            assert_eq!(rate.effective(0, 100), None);
        }
    }
}
