use super::*;

fn policy(entries: &[&str]) -> Policy {
    Policy::parse(Some(entries)).unwrap()
}

fn url(s: &str) -> Url {
    Url::parse(s).unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn by_default_any_https_host_is_allowed_and_plain_http_is_not() {
    let p = Policy::default();
    assert!(p.check_url(&url("https://api.openai.com/v1/chat")).is_ok());
    assert!(p.check_url(&url("https://8.8.8.8/")).is_ok());
    let err = p.check_url(&url("http://example.com/")).unwrap_err();
    assert!(err.0.contains("plain http"), "{err}");
    assert!(p.check_url(&url("ftp://example.com/")).is_err());
}

#[test]
fn internal_addresses_are_refused_unless_listed() {
    let p = Policy::default();
    for u in [
        "https://127.0.0.1/",
        "https://10.1.2.3/",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/",
        "https://[fd00:ec2::254]/",
        "https://[::ffff:127.0.0.1]/",
        "https://100.100.100.200/",
    ] {
        let err = p.check_url(&url(u)).unwrap_err();
        assert!(err.0.contains("http_allow"), "{u}: {err}");
    }
    let listed = policy(&["127.0.0.1:9000"]);
    assert!(listed.check_url(&url("http://127.0.0.1:9000/x")).is_ok());
    assert!(listed.check_url(&url("http://127.0.0.1:9001/x")).is_err());
    assert!(listed.check_url(&url("https://api.openai.com/")).is_err());
}

#[test]
fn a_list_allows_only_its_hosts_and_wildcards_only_https_subdomains() {
    let p = policy(&["api.openai.com", "*.example.com"]);
    assert!(p.check_url(&url("https://api.openai.com/v1")).is_ok());
    assert!(p.check_url(&url("http://api.openai.com/v1")).is_ok());
    assert!(p.check_url(&url("https://API.OpenAI.com./v1")).is_ok());
    assert!(p.check_url(&url("https://shop.example.com/")).is_ok());
    assert!(p.check_url(&url("https://a.b.example.com/")).is_ok());
    assert!(p.check_url(&url("https://example.com/")).is_err());
    assert!(p.check_url(&url("https://badexample.com/")).is_err());
    assert!(p.check_url(&url("http://shop.example.com/")).is_err());
    let err = p.check_url(&url("https://evil.test/")).unwrap_err();
    assert!(err.0.contains("evil.test is not in http_allow"), "{err}");
}

#[test]
fn ports_in_entries_restrict_the_port() {
    let p = policy(&["api.example.com:443", "*.svc.test:8443"]);
    assert!(p.check_url(&url("https://api.example.com/")).is_ok());
    assert!(p.check_url(&url("https://api.example.com:8443/")).is_err());
    assert!(p.check_url(&url("https://a.svc.test:8443/")).is_ok());
    assert!(p.check_url(&url("https://a.svc.test/")).is_err());
}

#[test]
fn bad_entries_say_what_is_wrong() {
    for (entry, says) in [
        ("https://api.example.com", "without a scheme"),
        ("api.example.com/v1", "without a scheme or path"),
        ("", "empty"),
        ("api.*.com", "whole first label"),
        ("*.127.0.0.1", "wildcards are for names"),
        ("host:99999", "not a host[:port]"),
    ] {
        let err = Policy::parse(Some(&[entry])).unwrap_err();
        assert!(err.contains(says), "{entry}: {err}");
    }
}

#[test]
fn resolved_addresses_are_filtered_unless_the_name_is_listed() {
    let p = policy(&["*", "intranet.local"]);
    let err = p
        .admit_addrs("rebind.example", vec![ip("127.0.0.1")])
        .unwrap_err();
    assert!(err.0.contains("127.0.0.1"), "{err}");
    assert_eq!(
        p.admit_addrs("mixed.example", vec![ip("10.0.0.1"), ip("93.184.216.34")])
            .unwrap(),
        vec![ip("93.184.216.34")]
    );
    assert_eq!(
        p.admit_addrs("intranet.local", vec![ip("10.0.0.1")])
            .unwrap(),
        vec![ip("10.0.0.1")]
    );
    assert!(Policy::default()
        .admit_addrs("localhost", vec![ip("::1"), ip("127.0.0.1")])
        .is_err());
}

#[test]
fn public_and_internal_ranges() {
    for public in [
        "8.8.8.8",
        "93.184.216.34",
        "2606:4700::1111",
        "64:ff9b::808:808",
    ] {
        assert!(is_public(ip(public)), "{public}");
    }
    for internal in [
        "0.0.0.0",
        "127.0.0.53",
        "10.0.0.1",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "192.0.0.1",
        "198.18.0.1",
        "224.0.0.1",
        "255.255.255.255",
        "::",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:10.0.0.1",
        "64:ff9b::a00:1",
        "2001:db8::1",
        "::127.0.0.1",
    ] {
        assert!(!is_public(ip(internal)), "{internal}");
    }
}
