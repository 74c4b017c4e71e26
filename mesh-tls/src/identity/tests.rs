#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn td(name: &str) -> TrustDomain {
    TrustDomain::new(name).unwrap()
}

fn id(text: &str) -> SpiffeId {
    text.parse().unwrap()
}

#[test]
fn spiffe_id_round_trips() {
    let parsed = id("spiffe://cluster.local/ns/default/sa/service2");
    assert_eq!(parsed.trust_domain().as_str(), "cluster.local");
    assert_eq!(parsed.namespace(), "default");
    assert_eq!(parsed.service_account(), "service2");
    assert_eq!(
        parsed.to_string(),
        "spiffe://cluster.local/ns/default/sa/service2"
    );
    assert_eq!(parsed.principal(), "cluster.local/ns/default/sa/service2");
    assert_eq!(
        SpiffeId::from_principal("cluster.local/ns/default/sa/service2").unwrap(),
        parsed
    );
}

#[test]
fn spiffe_id_refuses_what_istio_would_not_issue() {
    let cases = [
        ("cluster.local/ns/default/sa/a", "scheme"),
        ("http://cluster.local/ns/default/sa/a", "scheme"),
        ("spiffe://Cluster.Local/ns/default/sa/a", "trust domain"),
        ("spiffe:///ns/default/sa/a", "trust domain"),
        ("spiffe://cluster.local/ns/default", "path"),
        ("spiffe://cluster.local/ns/default/sa/a/extra", "path"),
        ("spiffe://cluster.local/sa/a/ns/default", "path"),
        ("spiffe://cluster.local", "path"),
        ("spiffe://cluster.local/ns//sa/a", "segment"),
        ("spiffe://cluster.local/ns/../sa/a", "segment"),
        ("spiffe://cluster.local/ns/de fault/sa/a", "segment"),
        ("spiffe://cluster.local/ns/default/sa/a%2F", "segment"),
    ];
    for (text, why) in cases {
        let err = text.parse::<SpiffeId>().unwrap_err();
        let ok = match why {
            "scheme" => matches!(err, IdentityError::MissingScheme(_)),
            "trust domain" => matches!(err, IdentityError::TrustDomain(_)),
            "path" => matches!(err, IdentityError::Path(_)),
            _ => matches!(err, IdentityError::Segment { .. }),
        };
        assert!(ok, "{text}: expected a {why} error, got {err:?}");
    }
    let long = format!("spiffe://cluster.local/ns/default/sa/{}", "a".repeat(2100));
    assert!(matches!(
        long.parse::<SpiffeId>(),
        Err(IdentityError::TooLong(_))
    ));
}

#[test]
fn errors_name_the_input() {
    let err = "spiffe://cluster.local/ns/x"
        .parse::<SpiffeId>()
        .unwrap_err();
    assert!(
        err.to_string().contains("spiffe://cluster.local/ns/x"),
        "{err}"
    );
}

#[test]
fn principals_match_as_istio_string_matchers() {
    let domains = TrustDomains::default();
    let peer = id("spiffe://cluster.local/ns/default/sa/bookinfo-productpage");
    let yes = [
        "cluster.local/ns/default/sa/bookinfo-productpage",
        "cluster.local/ns/default/sa/bookinfo-product*",
        "*/ns/default/sa/bookinfo-productpage",
        "*productpage",
        "*",
    ];
    for value in yes {
        assert!(
            PrincipalMatcher::new([value], &domains).matches(Some(&peer)),
            "{value}"
        );
    }
    let no = [
        "cluster.local/ns/default/sa/bookinfo-reviews",
        "cluster.local/ns/other/sa/bookinfo-productpage",
        "spiffe://cluster.local/ns/default/sa/bookinfo-productpage",
        "other.td/ns/default/sa/bookinfo-productpage",
    ];
    for value in no {
        assert!(
            !PrincipalMatcher::new([value], &domains).matches(Some(&peer)),
            "{value}"
        );
    }
    // Plaintext: no identity, not even presence matches.
    assert!(!PrincipalMatcher::new(["*"], &domains).matches(None));
}

#[test]
fn trust_domain_aliases_expand_principals() {
    // Migrating from old-td to new-td: a policy written for either covers both.
    let domains = TrustDomains::new(td("new-td"), [td("old-td")]);
    let expanded = domains.expand_principals(["old-td/ns/foo/sa/bar"]);
    assert_eq!(expanded, ["new-td/ns/foo/sa/bar", "old-td/ns/foo/sa/bar"]);
    // cluster.local in a policy means the local trust domain and its aliases, and only them.
    let expanded = domains.expand_principals(["cluster.local/ns/foo/sa/bar"]);
    assert_eq!(expanded, ["new-td/ns/foo/sa/bar", "old-td/ns/foo/sa/bar"]);
    // A foreign trust domain, `*`, or a malformed value are kept as written.
    for kept in ["foreign/ns/foo/sa/bar", "*/ns/foo/sa/bar", "sa/bar", "*"] {
        assert_eq!(domains.expand_principals([kept]), [kept]);
    }
    // A `*-td` trust domain covers both and is kept once.
    assert_eq!(
        domains.expand_principals(["*-td/ns/foo/sa/bar"]),
        ["*-td/ns/foo/sa/bar"]
    );

    let matcher = PrincipalMatcher::new(["cluster.local/ns/foo/sa/bar"], &domains);
    assert!(matcher.matches(Some(&id("spiffe://old-td/ns/foo/sa/bar"))));
    assert!(matcher.matches(Some(&id("spiffe://new-td/ns/foo/sa/bar"))));
    assert!(!matcher.matches(Some(&id("spiffe://cluster.local/ns/foo/sa/bar"))));
    assert!(!matcher.matches(Some(&id("spiffe://foreign/ns/foo/sa/bar"))));
}

#[test]
fn trust_domains_contain_local_and_aliases() {
    let domains = TrustDomains::new(td("a.example"), [td("b.example"), td("a.example")]);
    assert_eq!(domains.local(), &td("a.example"));
    assert_eq!(domains.all().len(), 2);
    assert!(domains.contains(&td("b.example")));
    assert!(!domains.contains(&td("cluster.local")));
}

#[test]
fn namespaces_are_globs_on_the_peer_namespace() {
    let peer = id("spiffe://cluster.local/ns/team-a-prod/sa/x");
    for value in [
        "team-a-prod",
        "team-a-*",
        "*-prod",
        "*",
        "team*prod",
        "t*a*d",
    ] {
        assert!(
            NamespaceMatcher::new([value]).matches(Some(&peer)),
            "{value}"
        );
    }
    for value in ["team-a", "prod", "team-b-*", "x", "sa", "*-dev"] {
        assert!(
            !NamespaceMatcher::new([value]).matches(Some(&peer)),
            "{value}"
        );
    }
    assert!(!NamespaceMatcher::new(["*"]).matches(None));
}

#[test]
fn service_accounts_default_to_the_policy_namespace() {
    let peer = id("spiffe://cluster.local/ns/default/sa/service1");
    assert!(ServiceAccountMatcher::new(["service1"], "default").matches(Some(&peer)));
    assert!(ServiceAccountMatcher::new(["default/service1"], "other").matches(Some(&peer)));
    assert!(!ServiceAccountMatcher::new(["service1"], "other").matches(Some(&peer)));
    assert!(!ServiceAccountMatcher::new(["default/service"], "default").matches(Some(&peer)));
    assert!(!ServiceAccountMatcher::new(["service1"], "default").matches(None));
}

#[test]
fn glob_edge_cases() {
    use super::matcher::glob;
    assert!(glob("", ""));
    assert!(!glob("", "a"));
    assert!(glob("*", ""));
    assert!(glob("a*a", "aa"));
    assert!(!glob("a*a", "a"));
    assert!(glob("**", "anything"));
}
