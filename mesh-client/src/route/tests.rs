use http::{Request, StatusCode};
use mesh_core::policy::*;

use super::*;

fn route(name: &str, matches: Vec<RequestMatch>) -> HttpRoute {
    HttpRoute {
        name: Some(name.into()),
        matches,
        action: RouteAction::DirectResponse(DirectResponse {
            status: StatusCode::OK,
            body: None,
        }),
        rewrite: None,
        timeout: None,
        retries: RetryPolicy::default(),
        fault: None,
        mirrors: vec![],
        headers: HeaderRules::default(),
        cors: None,
    }
}

fn vs(hosts: &[&str], gateways: &[&str], http: Vec<HttpRoute>) -> std::sync::Arc<VirtualService> {
    std::sync::Arc::new(VirtualService {
        origin: Origin::default(),
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
        gateways: gateways.iter().map(|g| g.to_string()).collect(),
        http,
    })
}

fn prefix(p: &str) -> RequestMatch {
    RequestMatch {
        uri: Some(StringMatch::Prefix(p.into())),
        ..RequestMatch::default()
    }
}

fn name_of<T>(l: Lookup<'_, T>) -> String {
    match l {
        Lookup::Matched { entry, .. } => entry.route.name.clone().unwrap_or_default(),
        Lookup::NoRoute => "NR".into(),
        Lookup::NoVirtualService => "none".into(),
    }
}

fn get(uri: &str) -> Request<()> {
    Request::get(uri).body(()).unwrap()
}

#[test]
fn first_match_wins_in_order() {
    let config = MeshConfig {
        virtual_services: vec![vs(
            &["service2"],
            &[],
            vec![
                route("a", vec![prefix("/a")]),
                route("any", vec![]),
                route("late", vec![prefix("/a")]),
            ],
        )],
        ..MeshConfig::default()
    };
    let t = RouteTable::new(&config, MESH);
    assert_eq!(name_of(t.lookup(&get("http://service2:80/a/x"))), "a");
    assert_eq!(name_of(t.lookup(&get("http://service2/b"))), "any");
    assert_eq!(name_of(t.lookup(&get("http://service3/b"))), "none");
}

#[test]
fn no_match_is_no_route() {
    let config = MeshConfig {
        virtual_services: vec![vs(&["svc"], &[], vec![route("a", vec![prefix("/a")])])],
        ..MeshConfig::default()
    };
    assert_eq!(
        name_of(RouteTable::new(&config, MESH).lookup(&get("http://svc/zzz"))),
        "NR"
    );
}

#[test]
fn gateway_binding_and_wildcards() {
    let config = MeshConfig {
        virtual_services: vec![
            vs(
                &["*"],
                &["http-gateway"],
                vec![route("gw-s1", vec![prefix("/service1")])],
            ),
            vs(&["*.example.com"], &["mesh"], vec![route("suffix", vec![])]),
            vs(&["*.api.example.com"], &[], vec![route("longer", vec![])]),
            vs(
                &["service2.default.svc.cluster.local"],
                &[],
                vec![route("fqdn", vec![])],
            ),
        ],
        ..MeshConfig::default()
    };
    let mesh = RouteTable::new(&config, MESH);
    let gw = RouteTable::new(&config, "http-gateway");
    assert_eq!(
        name_of(
            gw.lookup(
                &Request::get("/service1/x")
                    .header("host", "localhost:8080")
                    .body(())
                    .unwrap()
            )
        ),
        "gw-s1"
    );
    assert_eq!(
        name_of(mesh.lookup(&get("http://localhost/service1"))),
        "none",
        "gateway VS does not bind to mesh"
    );
    assert_eq!(
        name_of(mesh.lookup(&get("http://a.example.com/"))),
        "suffix"
    );
    assert_eq!(
        name_of(mesh.lookup(&get("http://v.api.example.com/"))),
        "longer"
    );
    assert_eq!(name_of(mesh.lookup(&get("http://example.com/"))), "none");
    assert_eq!(name_of(mesh.lookup(&get("http://service2/"))), "fqdn");
    assert_eq!(
        name_of(mesh.lookup(&get("http://SERVICE2.default:80/"))),
        "fqdn"
    );
    assert_eq!(
        name_of(mesh.lookup(&get("http://a.default.svc.cluster.local/"))),
        "none"
    );
    assert_eq!(
        name_of(gw.lookup(&get("http://service2/"))),
        "NR",
        "gateway `*` host sees no matching route"
    );
}

#[test]
fn fqdn_request_finds_short_name_virtual_service() {
    let config = MeshConfig {
        virtual_services: vec![vs(&["service2"], &[], vec![route("short", vec![])])],
        ..MeshConfig::default()
    };
    let t = RouteTable::new(&config, MESH);
    assert_eq!(
        name_of(t.lookup(&get("http://service2.default.svc.cluster.local/"))),
        "short"
    );
    assert_eq!(
        name_of(t.lookup(&get("http://service2.other.svc/"))),
        "short"
    );
}

#[test]
fn per_route_data_is_built_once_per_route() {
    let config = MeshConfig {
        virtual_services: vec![vs(
            &["a", "b"],
            &[],
            vec![route("r1", vec![]), route("r2", vec![])],
        )],
        ..MeshConfig::default()
    };
    let mut n = 0;
    let t = RouteTable::compile(&config, MESH, |_| {
        n += 1;
        n
    });
    assert_eq!(n, 2);
    match t.lookup(&get("http://b/")) {
        Lookup::Matched { entry, .. } => assert_eq!(entry.data, 1),
        _ => panic!("expected a match"),
    }
}

#[test]
fn a_rebuild_reuses_unchanged_routes_only() {
    let named = |name: &str, host: &str, http: Vec<HttpRoute>| {
        let mut v = std::sync::Arc::unwrap_or_clone(vs(&[host], &[], http));
        v.origin.name = name.into();
        std::sync::Arc::new(v)
    };
    let a = named(
        "a",
        "a",
        vec![route("a0", vec![prefix("/x")]), route("a1", vec![])],
    );
    let b = named("b", "b", vec![route("b0", vec![])]);
    let c = named("c", "c", vec![route("c0", vec![])]);
    let old_config = MeshConfig {
        virtual_services: vec![a.clone(), b, c],
        ..MeshConfig::default()
    };
    let mut counter = 0;
    let mut make = |_: &HttpRoute| {
        counter += 1;
        counter
    };
    let old = RouteTable::compile(&old_config, MESH, &mut make);
    // `b` recompiled from YAML with one route changed, `c` deleted, `a` the same object
    let b2 = named("b", "b", vec![route("b0-renamed", vec![])]);
    let new_config = MeshConfig {
        virtual_services: vec![a, b2],
        ..MeshConfig::default()
    };
    let (new, reuse) =
        RouteTable::compile_reusing(&new_config, MESH, Some(&old), &mut make, |_, _| true);
    assert_eq!((reuse.reused, reuse.compiled), (2, 1));
    let entries = |t: &RouteTable<i32>, host: &str| {
        t.host(host)
            .map(|h| h.entries().to_vec())
            .unwrap_or_default()
    };
    for i in 0..2 {
        assert!(std::sync::Arc::ptr_eq(
            &entries(&old, "a")[i],
            &entries(&new, "a")[i]
        ));
    }
    assert!(!std::sync::Arc::ptr_eq(
        &entries(&old, "b")[0],
        &entries(&new, "b")[0]
    ));
    assert_eq!(entries(&new, "b")[0].data, 5);
    assert!(new.host("c").is_none());
    // data that no longer holds (`keep` says no) is made again even for an unchanged route
    let (_, reuse) =
        RouteTable::compile_reusing(&new_config, MESH, Some(&new), &mut make, |_, _| false);
    assert_eq!((reuse.reused, reuse.compiled), (0, 3));
}
