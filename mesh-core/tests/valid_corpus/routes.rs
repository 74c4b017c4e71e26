//! VirtualService routes from Istio's examples: matches, faults, mirrors, timeouts, retries,
//! rewrites, header operations, CORS, claims and gateway binding.

use super::*;

#[test]
fn header_match_routes_jason_to_v2() {
    let l = load("reviews-header-match.yaml");
    let r0 = route(&l, 0);
    let (name, m) = &r0.matches[0].headers[0];
    assert_eq!(name, &HeaderName::from_static("end-user"));
    assert_eq!(m, &StringMatch::Exact("jason".into()));
    assert_eq!(
        forward(r0),
        vec![("reviews".into(), Some("v2".into()), 100)]
    );
    assert_eq!(
        forward(route(&l, 1)),
        vec![("reviews".into(), Some("v3".into()), 100)]
    );
    // no `retries`: Istio's default policy
    assert_eq!(r0.retries.attempts(), 2);
    assert!(r0.retries.retry_on().has(RetryCondition::ConnectFailure));
    assert_eq!(r0.retries.retry_on().status_codes, vec![503]);
    assert_eq!(r0.timeout, None);
}

#[test]
fn short_name_route_finds_fqdn_rule() {
    let l = load("reviews-50-50.yaml");
    assert_eq!(
        forward(route(&l, 0)),
        vec![
            ("reviews".into(), Some("v1".into()), 50),
            ("reviews".into(), Some("v3".into()), 50)
        ]
    );
    assert!(l.config.destination("reviews").is_some());
}

#[test]
fn fault_delay_and_abort() {
    let l = load("ratings-fault.yaml");
    let f0 = route(&l, 0).fault.clone().expect("fault");
    let d = f0.delay.expect("delay");
    assert_eq!((d.fixed_delay, d.percent), (Duration::from_secs(7), 100.0));
    assert!(f0.abort.is_none());
    let f1 = route(&l, 1).fault.clone().expect("fault");
    let d = f1.delay.expect("delay");
    assert_eq!(
        (d.fixed_delay, d.percent),
        (Duration::from_millis(1500), 10.0)
    );
    let a = f1.abort.expect("abort");
    assert_eq!(
        (a.status, a.percent),
        (StatusCode::INTERNAL_SERVER_ERROR, 0.1)
    );
}

#[test]
fn mirrors_and_mirror_percentage() {
    let l = load("httpbin-mirror.yaml");
    let m0: Vec<(String, Option<String>, f64)> = route(&l, 0)
        .mirrors
        .iter()
        .map(|m| {
            (
                m.destination.host.clone(),
                m.destination.subset.clone(),
                m.percent,
            )
        })
        .collect();
    assert_eq!(
        m0,
        vec![
            ("httpbin".into(), Some("v2".into()), 25.0),
            ("httpbin-audit".into(), None, 100.0)
        ]
    );
    let m1 = &route(&l, 1).mirrors;
    assert_eq!(m1.len(), 1);
    assert_eq!(m1[0].percent, 50.0);
}

#[test]
fn timeout_half_a_second() {
    let l = load("reviews-timeout.yaml");
    assert_eq!(route(&l, 0).timeout, Some(Duration::from_millis(500)));
}

#[test]
fn retries_with_codes_and_disabled() {
    let l = load("ratings-retries.yaml");
    let r = &route(&l, 0).retries;
    assert_eq!(r.attempts(), 3);
    assert_eq!(r.per_try_timeout(), Some(Duration::from_secs(2)));
    assert_eq!(r.backoff().base(), Duration::from_millis(50));
    assert_eq!(
        r.retry_on().conditions,
        vec![
            RetryCondition::GatewayError,
            RetryCondition::ConnectFailure,
            RetryCondition::RefusedStream,
            RetryCondition::RetriableStatusCodes,
        ]
    );
    assert_eq!(r.retry_on().status_codes, vec![503]);
    assert_eq!(route(&l, 1).retries.attempts(), 0);
}

#[test]
fn gateway_and_bound_routes() {
    let l = load("bookinfo-gateway.yaml");
    assert_eq!(l.config.gateways[0].servers[0].port, 8080);
    let vs = &l.config.virtual_services[0];
    assert!(vs.applies_to_mesh());
    let r = &vs.http[0];
    assert_eq!(r.matches.len(), 4);
    assert_eq!(
        r.matches[2].gateways,
        vec!["default/bookinfo-gateway".to_owned()]
    );
    match &r.matches[3].uri {
        Some(StringMatch::Regex(p)) => {
            assert!(p.is_match("/api/v1/products/42"));
            assert!(!p.is_match("/api/v1/products/x"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn redirect_direct_response_rewrite() {
    let l = load("redirect-direct-rewrite.yaml");
    match &route(&l, 0).action {
        RouteAction::Redirect(r) => {
            assert_eq!(r.status, StatusCode::MOVED_PERMANENTLY);
            assert_eq!(r.uri.as_deref(), Some("/v1/bookRatings"));
            assert_eq!(
                r.authority.as_deref(),
                Some("newratings.default.svc.cluster.local")
            );
        }
        other => panic!("{other:?}"),
    }
    match &route(&l, 1).action {
        RouteAction::DirectResponse(d) => {
            assert_eq!(d.status, StatusCode::GONE);
            assert_eq!(d.body.as_deref(), Some(&b"gone for good"[..]));
        }
        other => panic!("{other:?}"),
    }
    let rw = route(&l, 2).rewrite.clone().expect("rewrite");
    let (pattern, replacement) = rw.uri_regex.expect("regex rewrite");
    assert!(pattern.is_match("/ratings/1"));
    assert_eq!(replacement, "/v1\\1");
    assert_eq!(rw.authority.as_deref(), Some("ratings.internal"));
    assert_eq!(route(&l, 2).name.as_deref(), Some("rewritten"));
}

#[test]
fn header_operations_and_match_conditions() {
    let l = load("headers.yaml");
    let r = route(&l, 0);
    assert_eq!(r.headers.request.set[0].0, HeaderName::from_static("test"));
    let m = &r.matches[0];
    assert_eq!(
        m.without_headers[0],
        (HeaderName::from_static("x-debug"), StringMatch::Present)
    );
    assert_eq!(
        m.query_params,
        vec![
            ("canary".to_owned(), StringMatch::Exact("yes".into())),
            ("trace".to_owned(), StringMatch::Present)
        ]
    );
    assert_eq!(m.method, Some(StringMatch::Exact("GET".into())));
    assert!(m.ignore_uri_case);
    assert_eq!(m.port, Some(9080));
    assert_eq!(
        m.source_labels.get("app").map(String::as_str),
        Some("productpage")
    );
    match &r.action {
        RouteAction::Forward(d) => {
            assert_eq!(
                d[1].headers.response.remove,
                vec![HeaderName::from_static("foo")]
            );
            assert_eq!(d[1].headers.response.add[0].1, "reviews");
            assert_eq!((d[0].weight, d[1].weight), (25, 75));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn cors_policy_is_compiled() {
    let l = load("ratings-cors.yaml");
    let cors = route(&l, 0).cors.clone().expect("corsPolicy");
    assert_eq!(cors.allow_origins.len(), 2);
    assert_eq!(
        cors.allow_origins[0],
        StringMatch::Exact("https://example.com".into())
    );
    assert!(cors.allow_origins[1].matches("https://a.example.org", false));
    assert_eq!(cors.allow_methods, [http::Method::POST, http::Method::GET]);
    assert_eq!(cors.allow_headers, ["X-Foo-Bar"]);
    assert_eq!(cors.max_age, Some(Duration::from_secs(24 * 3600)));
    assert_eq!(cors.allow_credentials, Some(false));
    assert_eq!(
        cors.unmatched_preflights,
        mesh_core::policy::UnmatchedPreflights::Ignore
    );
}

#[test]
fn claim_matches_are_compiled_apart_from_headers() {
    let yaml = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: claims
spec:
  hosts: [service1]
  http:
  - match:
    - headers:
        "@request.auth.claims.realm.roles":
          exact: admin
        end-user:
          exact: jason
      withoutHeaders:
        "@request.auth.claims.suspended": {}
    route:
    - destination:
        host: service1
"#;
    let l = mesh_core::load::load_str("claims.yaml", yaml).expect("loads");
    let m = &l.config.virtual_services[0].http[0].matches[0];
    assert_eq!(m.headers.len(), 1, "end-user only");
    assert_eq!(
        m.claims,
        [(
            vec!["realm".to_owned(), "roles".to_owned()],
            StringMatch::Exact("admin".into())
        )]
    );
    assert_eq!(
        m.without_claims,
        [(vec!["suspended".to_owned()], StringMatch::Present)]
    );
    let bad = yaml.replace("claims.realm.roles", "claims..roles");
    let err = mesh_core::load::load_str("claims.yaml", &bad)
        .expect_err("refused")
        .to_string();
    assert!(err.contains("is not a claim name"), "{err}");
}
