//! Which URLs scripts may call: the operator's allow list (`http_allow`), and the addresses no
//! script reaches unless the operator names them (loopback, private, link-local, metadata).
//!
//! A URL is checked twice: its scheme, host and port here before a request (and before each
//! redirect hop), and every address its name resolves to in [`Policy::admit_addrs`], which the
//! client's resolver calls, so a public name cannot lead a script to an internal service.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// One `http_allow` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Rule {
    /// `*`: any host, over https, at a public address.
    Any,
    /// `*.example.com`: names below `example.com`, over https, at public addresses.
    Suffix { suffix: String, port: Option<u16> },
    /// `api.example.com`, `127.0.0.1:9000`, `[::1]:8080`: this host, also over plain http and
    /// at any address, since the operator named it.
    Exact { host: String, port: Option<u16> },
}

/// What scripts may call, from `http_allow`. `None` (the default) is any https host at a public
/// address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    rules: Option<Vec<Rule>>,
}

/// Why a URL is refused: a sentence a script author can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

impl Policy {
    /// Parses `http_allow` entries: `host`, `host:port`, `*.domain`, `*`, IPv6 in brackets.
    pub fn parse<S: AsRef<str>>(entries: Option<&[S]>) -> Result<Self, String> {
        let Some(entries) = entries else {
            return Ok(Self::default());
        };
        let rules = entries
            .iter()
            .map(|e| parse_rule(e.as_ref().trim()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { rules: Some(rules) })
    }

    /// Checks a URL a script (or a redirect) asks for, before any connection.
    pub fn check_url(&self, url: &Url) -> Result<(), Refusal> {
        let scheme = url.scheme();
        if scheme != "https" && scheme != "http" {
            return Err(Refusal(format!(
                "only http and https URLs can be called, not {scheme}:"
            )));
        }
        let Some(host) = url.host() else {
            return Err(Refusal("the URL has no host".into()));
        };
        let name = host_key(&host);
        let port = url.port_or_known_default().unwrap_or(443);
        let exact = self.listed_exactly(&name, port);
        let matched = exact || self.matches(&name, port);
        if !matched {
            return Err(Refusal(format!(
                "{name} is not in http_allow (add it to --http-allow, LINEBOTD_HTTP_ALLOW or \
                 http_allow in linebotd.toml)"
            )));
        }
        if scheme == "http" && !exact {
            return Err(Refusal(format!(
                "plain http is refused unless the host is listed by name in http_allow \
                 (use https, or add {name} to http_allow)"
            )));
        }
        let literal = match host {
            Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
            Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
            Host::Domain(_) => None,
        };
        if let Some(ip) = literal.filter(|ip| !exact && !is_public(*ip)) {
            return Err(internal_refusal(&name, ip));
        }
        Ok(())
    }

    /// Keeps the addresses `name` resolved to that scripts may reach: all of them when the
    /// operator listed the name, else only public ones. Refuses when none is left.
    pub fn admit_addrs(&self, name: &str, addrs: Vec<IpAddr>) -> Result<Vec<IpAddr>, Refusal> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if self.names_exactly(&name) {
            return Ok(addrs);
        }
        let first = addrs.first().copied();
        let public: Vec<IpAddr> = addrs.into_iter().filter(|ip| is_public(*ip)).collect();
        match (public.is_empty(), first) {
            (false, _) => Ok(public),
            (true, Some(ip)) => Err(internal_refusal(&name, ip)),
            (true, None) => Err(Refusal(format!("{name} has no address"))),
        }
    }

    fn rules(&self) -> &[Rule] {
        self.rules.as_deref().unwrap_or(&[Rule::Any])
    }

    fn listed_exactly(&self, name: &str, port: u16) -> bool {
        self.rules().iter().any(|r| match r {
            Rule::Exact { host, port: p } => host == name && p.is_none_or(|p| p == port),
            _ => false,
        })
    }

    fn names_exactly(&self, name: &str) -> bool {
        self.rules()
            .iter()
            .any(|r| matches!(r, Rule::Exact { host, .. } if host == name))
    }

    fn matches(&self, name: &str, port: u16) -> bool {
        self.rules().iter().any(|r| match r {
            Rule::Any => true,
            Rule::Suffix { suffix, port: p } => {
                name.len() > suffix.len() + 1
                    && name.ends_with(suffix.as_str())
                    && name.as_bytes()[name.len() - suffix.len() - 1] == b'.'
                    && p.is_none_or(|p| p == port)
            }
            Rule::Exact { .. } => false,
        })
    }
}

fn internal_refusal(name: &str, ip: IpAddr) -> Refusal {
    Refusal(format!(
        "{name} is a loopback, private, link-local or metadata address ({ip}); scripts reach \
         such addresses only when http_allow lists the host by name or address"
    ))
}

/// The host as rules name it: lower-case names without a trailing dot, bare IP addresses.
fn host_key(host: &Host<&str>) -> String {
    match host {
        Host::Domain(d) => d.trim_end_matches('.').to_ascii_lowercase(),
        Host::Ipv4(ip) => ip.to_string(),
        Host::Ipv6(ip) => ip.to_string(),
    }
}

fn parse_rule(entry: &str) -> Result<Rule, String> {
    if entry == "*" {
        return Ok(Rule::Any);
    }
    let bad = |why: &str| Err(format!("`{entry}` {why}"));
    if entry.is_empty() {
        return bad("is empty; write a host such as api.example.com");
    }
    if entry.contains("://") || entry.contains('/') {
        return bad("must be a host with an optional port, such as api.example.com or 127.0.0.1:9000, without a scheme or path");
    }
    // Parse as a URL authority, which handles ports, IPv6 brackets and name normalisation.
    let (wild, rest) = match entry.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, entry),
    };
    if rest.contains('*') {
        return bad("may use * only as a whole first label, as in *.example.com");
    }
    let url = Url::parse(&format!("https://{rest}/"))
        .map_err(|e| format!("`{entry}` is not a host[:port]: {e}"))?;
    let Some(host) = url.host() else {
        return bad("has no host");
    };
    let port = url.port();
    if rest.ends_with(":443") {
        // Url drops a scheme's default port; keep what the operator wrote.
        return Ok(make_rule(wild, host_key(&host), Some(443)));
    }
    if wild && !matches!(host, Host::Domain(_)) {
        return bad("uses * with an address; wildcards are for names");
    }
    Ok(make_rule(wild, host_key(&host), port))
}

fn make_rule(wild: bool, host: String, port: Option<u16>) -> Rule {
    if wild {
        Rule::Suffix { suffix: host, port }
    } else {
        Rule::Exact { host, port }
    }
}

/// Whether an address is on the public internet. Loopback, private, shared (CGNAT),
/// link-local (where cloud metadata services answer), documentation, benchmarking, multicast
/// and reserved ranges are not, nor IPv6 addresses that embed one of those.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        || a >= 240
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b == 18 || b == 19)))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    // NAT64 (64:ff9b::/96) carries an IPv4 address in its last 32 bits.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
        return is_public_v4(v4);
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local, including fd00:ec2::254
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || s[..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible (deprecated)
}

#[cfg(test)]
mod tests;
