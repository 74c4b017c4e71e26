//! Manifests written from Istio's documentation examples: each loads, and the checked values
//! are what Istio means by them (defaults applied, durations parsed, merges done).
#![allow(clippy::expect_used, clippy::unwrap_used)] // tests: a failed expectation is the test failing

use std::path::{Path, PathBuf};
use std::time::Duration;

use http::{HeaderName, StatusCode};
use mesh_core::load::{Loaded, load_paths};
use mesh_core::policy::{
    HashKey, HashTable, HttpRoute, LoadBalancer, Resolution, RetryCondition, RouteAction,
    StringMatch,
};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/valid")
}

fn load(name: &str) -> Loaded {
    match load_paths(&[dir().join(name)]) {
        Ok(l) => l,
        Err(e) => panic!("{name} must load:\n{e}"),
    }
}

fn route(l: &Loaded, i: usize) -> &HttpRoute {
    &l.config.virtual_services[0].http[i]
}

fn forward(r: &HttpRoute) -> Vec<(String, Option<String>, u32)> {
    match &r.action {
        RouteAction::Forward(d) => d
            .iter()
            .map(|w| {
                (
                    w.destination.host.clone(),
                    w.destination.subset.clone(),
                    w.weight,
                )
            })
            .collect(),
        other => panic!("expected a forward, got {other:?}"),
    }
}

#[test]
fn the_whole_folder_loads_at_once() {
    let loaded = load_paths(&[dir()]);
    // several files define `reviews`: one folder is not one config, so load each file alone...
    assert!(loaded.is_err());
    let mut count = 0;
    for entry in std::fs::read_dir(dir()).expect("folder").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let l = load(&name);
        count += 1;
        // (one file is there for its warnings, checked below)
        assert!(
            name == "accepted-with-warnings.yaml"
                || l.warnings
                    .iter()
                    .all(|w| w.message.contains("not mesh configuration")),
            "{name}: {:?}",
            l.warnings
        );
    }
    assert!(count >= 15, "only {count} valid cases");
}

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
fn circuit_breaker_values() {
    let l = load("httpbin-circuit-breaker.yaml");
    let tp = &l
        .config
        .destination("httpbin")
        .expect("rule")
        .traffic_policy;
    let cp = &tp.connection_pool;
    assert_eq!(cp.max_connections, 1);
    assert_eq!(cp.connect_timeout, Duration::from_millis(30));
    assert_eq!(cp.http1_max_pending_requests, 1);
    assert_eq!(cp.max_requests_per_connection, 1);
    assert_eq!(cp.http2_max_requests, 100);
    assert_eq!(cp.max_retries, 3);
    assert_eq!(cp.idle_timeout, Duration::from_secs(30));
    let od = tp.outlier_detection.as_ref().expect("outlier detection");
    assert_eq!(od.consecutive_5xx, 1);
    assert_eq!(od.interval, Duration::from_secs(1));
    assert_eq!(od.base_ejection_time, Duration::from_secs(180));
    assert_eq!(od.max_ejection_percent, 100);
    assert_eq!(od.consecutive_gateway_errors, 0);
    assert_eq!(
        (
            tp.retry_budget.percent,
            tp.retry_budget.min_retry_concurrency
        ),
        (25.0, 5)
    );
}

#[test]
fn cookie_over_ring_hash() {
    let l = load("cookie-ring-hash.yaml");
    let tp = &l
        .config
        .destination("ratings.prod.svc.cluster.local")
        .expect("rule")
        .traffic_policy;
    match &tp.load_balancer {
        LoadBalancer::ConsistentHash(ch) => {
            assert_eq!(
                ch.key,
                HashKey::Cookie {
                    name: "user".into(),
                    path: None,
                    ttl: Some(Duration::ZERO)
                }
            );
            assert_eq!(
                ch.table,
                HashTable::Ring {
                    minimum_ring_size: 2048
                }
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn source_ip_over_maglev() {
    let l = load("source-ip-maglev.yaml");
    match &l
        .config
        .destination("ratings")
        .expect("rule")
        .traffic_policy
        .load_balancer
    {
        LoadBalancer::ConsistentHash(ch) => {
            assert_eq!(ch.key, HashKey::SourceIp);
            assert_eq!(ch.table, HashTable::Maglev { table_size: 131 });
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn port_level_and_subset_policies_merge() {
    let l = load("port-level-and-subsets.yaml");
    let dr = l
        .config
        .destination("ratings.prod.svc.cluster.local")
        .expect("rule");
    assert_eq!(dr.traffic_policy.load_balancer, LoadBalancer::RoundRobin);
    assert_eq!(
        dr.policy_for(None, Some(80)).load_balancer,
        LoadBalancer::LeastRequest
    );
    assert_eq!(
        dr.policy_for(None, Some(9080)).load_balancer,
        LoadBalancer::Random
    );
    // the port-level entry keeps the rule's connection pool it did not override
    assert_eq!(
        dr.policy_for(None, Some(9080))
            .connection_pool
            .max_connections,
        100
    );
    assert_eq!(
        dr.policy_for(None, Some(1234)).load_balancer,
        LoadBalancer::RoundRobin
    );
    // the subset's own load balancer beats the rule's, and its connection pool is inherited
    let sub = dr.policy_for(Some("testversion"), None);
    assert_eq!(sub.load_balancer, LoadBalancer::Passthrough);
    assert_eq!(sub.connection_pool.max_connections, 100);
    // ...also on a port the rule configures: the subset is more specific than the rule's port
    assert_eq!(
        dr.policy_for(Some("testversion"), Some(80)).load_balancer,
        LoadBalancer::Passthrough
    );
    assert_eq!(
        dr.policy_for(Some("testversion"), Some(80))
            .connection_pool
            .max_connections,
        100
    );
}

#[test]
fn external_service_by_dns() {
    let l = load("external-dns.yaml");
    let se = &l.config.service_entries[0];
    assert_eq!(
        se.hosts,
        vec![
            "api.dropboxapi.com".to_owned(),
            "www.googleapis.com".to_owned()
        ]
    );
    assert_eq!(se.resolution, Resolution::Dns);
    assert!(!se.mesh_internal);
    assert_eq!(se.ports[0].protocol, "TLS");
}

#[test]
fn static_endpoints_with_labels() {
    let l = load("static-endpoints.yaml");
    let se = &l.config.service_entries[0];
    assert!(se.mesh_internal);
    assert_eq!(se.resolution, Resolution::Static);
    assert_eq!(se.ports[0].target_port, Some(5002));
    assert_eq!(se.endpoints.len(), 2);
    assert_eq!(se.endpoints[0].weight, 1);
    assert_eq!(se.endpoints[1].weight, 3);
    assert_eq!(se.endpoints[1].ports.get("http"), Some(&5003));
    assert_eq!(
        se.endpoints[1].labels.get("version").map(String::as_str),
        Some("v2")
    );
    assert_eq!(se.endpoints[1].locality.as_deref(), Some("eu-west/zone-a"));
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
fn mixed_documents_skip_and_keep_namespace() {
    let l = load("mixed-documents.yaml");
    assert_eq!(l.warnings.len(), 1);
    assert_eq!(l.warnings[0].resource, "Service/details");
    assert_eq!(l.warnings[0].line, 5);
    let vs = &l.config.virtual_services[0];
    assert_eq!(
        (vs.origin.namespace.as_str(), vs.origin.line),
        ("bookinfo", 13)
    );
}

#[test]
fn query_parameter_hash_and_deprecated_fields() {
    let l = load("query-param-hash.yaml");
    let tp = &l.config.destination("search").expect("rule").traffic_policy;
    match &tp.load_balancer {
        LoadBalancer::ConsistentHash(ch) => {
            assert_eq!(ch.key, HashKey::QueryParam("user".into()));
            assert_eq!(
                ch.table,
                HashTable::Ring {
                    minimum_ring_size: 4096
                }
            );
        }
        other => panic!("{other:?}"),
    }
    let od = tp.outlier_detection.as_ref().expect("outlier");
    assert_eq!((od.consecutive_gateway_errors, od.consecutive_5xx), (3, 0));
}

#[test]
fn what_istio_accepts_loads_with_warnings_that_say_what_is_not_used() {
    let l = load("accepted-with-warnings.yaml");
    assert_eq!(l.config.service_entries.len(), 1);
    assert_eq!(l.config.authorization.len(), 1);
    let warnings: Vec<String> = l.warnings.iter().map(ToString::to_string).collect();
    let has = |needle: &str| warnings.iter().any(|w| w.contains(needle));
    assert!(
        has("spec.addresses: accepted and not used: addresses matter only for TCP traffic"),
        "{warnings:?}"
    );
    assert!(
        has(
            "spec.rules[0].to[0].operation.paths[0]: \"admin\" does not start with `/` or `*`, so it never matches"
        ),
        "{warnings:?}"
    );
    assert!(
        has("`WorkloadEntry` (`networking.istio.io`) is not supported by this mesh; skipped"),
        "{warnings:?}"
    );
    assert!(
        !warnings.iter().any(|w| w.contains("did you mean")),
        "{warnings:?}"
    );
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
