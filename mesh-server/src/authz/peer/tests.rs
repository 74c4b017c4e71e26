use super::*;

fn peer<'a>(principal: &'a str, domains: &'a [String]) -> Peer<'a> {
    Peer {
        principal: Some(principal),
        domains: Some(domains),
        alias: None,
    }
}

fn m(value: &str) -> Vec<StrMatch> {
    vec![StrMatch::new(value)]
}

#[test]
fn principals_follow_istios_trust_domain_rules() {
    let bundle = vec!["new-td".to_owned(), "old-td".to_owned()];
    let under_old = peer("old-td/ns/foo/sa/bar", &bundle);
    let under_new = peer("new-td/ns/foo/sa/bar", &bundle);
    for p in [&under_old, &under_new] {
        // The local trust domain, an alias, cluster.local: the same workload.
        assert!(p.any(&m("new-td/ns/foo/sa/bar")));
        assert!(p.any(&m("old-td/ns/foo/sa/bar")));
        assert!(p.any(&m("cluster.local/ns/foo/sa/bar")));
        assert!(p.any(&m("cluster.local/ns/foo/sa/*")));
        assert!(p.any(&m("*/ns/foo/sa/bar")));
        // Another workload, a foreign trust domain: no.
        assert!(!p.any(&m("new-td/ns/foo/sa/other")));
        assert!(!p.any(&m("other-td/ns/foo/sa/bar")));
    }
    // Four parts: not a SPIFFE principal for Istio, matched as written.
    assert!(!under_old.any(&m("cluster.local/ns/foo/*")));
    assert!(under_old.any(&m("old-td/ns/foo/*")));
    // A `*suffix` trust domain is matched as written, on the peer's own principal.
    assert!(under_old.any(&m("*-td/ns/foo/sa/bar")));
    let local = vec!["corp".to_owned(), "old-td".to_owned()];
    assert!(!peer("corp/ns/foo/sa/bar", &local).any(&m("*-td/ns/foo/sa/bar")));
}

#[test]
fn a_peer_outside_the_bundle_is_matched_as_written() {
    let bundle = vec!["new-td".to_owned()];
    let foreign = peer("far/ns/foo/sa/bar", &bundle);
    assert!(foreign.any(&m("far/ns/foo/sa/bar")));
    assert!(!foreign.any(&m("cluster.local/ns/foo/sa/bar")));
    assert!(!foreign.any(&m("new-td/ns/foo/sa/bar")));
}
