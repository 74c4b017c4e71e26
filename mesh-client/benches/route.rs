//! Route matching with 100 routes; lookup cost against 10 to 10 000 routes of one host (exact
//! and prefix paths, the last route matching) and against 10 to 10 000 hosts; the weighted split
//! pick.
//!
//! Run: `cargo bench -p mesh-client --bench route -- --warm-up-time 1 --measurement-time 2`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use mesh_client::random::Random;
use mesh_client::route::{Lookup, MESH, RouteTable};
use mesh_client::split::SplitLayer;
use mesh_core::policy::{Destination, HeaderRules, WeightedDestination};

fn config_with_routes(n: usize) -> mesh_core::policy::MeshConfig {
    let mut yaml = String::from(
        "apiVersion: networking.istio.io/v1beta1\nkind: VirtualService\nmetadata:\n  name: big\nspec:\n  hosts: [service2]\n  http:\n",
    );
    for i in 0..n {
        yaml.push_str(&format!(
            "    - match:\n        - uri:\n            prefix: /r{i}/\n          headers:\n            version:\n              exact: v{i}\n      route:\n        - destination:\n            host: service2\n"
        ));
    }
    // 100 other hosts, so the host index is not trivially small.
    for h in 0..n {
        yaml.push_str(&format!(
            "---\napiVersion: networking.istio.io/v1beta1\nkind: VirtualService\nmetadata:\n  name: h{h}\nspec:\n  hosts: [host{h}]\n  http:\n    - route:\n        - destination:\n            host: host{h}\n"
        ));
    }
    mesh_core::load::load_str("bench.yaml", &yaml)
        .expect("bench config is valid")
        .config
}

fn bench_route(c: &mut Criterion) {
    let config = config_with_routes(100);
    let table = RouteTable::new(&config, MESH);
    let last = http::Request::get("http://service2/r99/items?x=1")
        .header("version", "v99")
        .body(())
        .unwrap();
    let first = http::Request::get("http://service2/r0/items")
        .header("version", "v0")
        .body(())
        .unwrap();
    let miss = http::Request::get("http://service2/none").body(()).unwrap();
    let other_host = http::Request::get("http://host57/").body(()).unwrap();
    assert!(matches!(table.lookup(&last), Lookup::Matched { .. }));
    let mut g = c.benchmark_group("route_lookup_100_routes");
    g.bench_function("first_route", |b| {
        b.iter(|| matches!(table.lookup(black_box(&first)), Lookup::Matched { .. }))
    });
    g.bench_function("last_route", |b| {
        b.iter(|| matches!(table.lookup(black_box(&last)), Lookup::Matched { .. }))
    });
    g.bench_function("no_route", |b| {
        b.iter(|| matches!(table.lookup(black_box(&miss)), Lookup::NoRoute))
    });
    g.bench_function("other_host_of_100", |b| {
        b.iter(|| matches!(table.lookup(black_box(&other_host)), Lookup::Matched { .. }))
    });
    g.finish();
    c.bench_function("route_table_compile_200_routes", |b| {
        b.iter(|| RouteTable::new(black_box(&config), MESH))
    });
}

/// One host with `n` routes: `uri: {exact|prefix: /rI/...}`, each with a destination.
fn one_host_with(n: usize, kind: &str) -> mesh_core::policy::MeshConfig {
    let mut yaml = String::from(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: big}\nspec:\n  hosts: [service2]\n  http:\n",
    );
    for i in 0..n {
        let path = if kind == "exact" {
            format!("/r{i}/items")
        } else {
            format!("/r{i}/")
        };
        yaml.push_str(&format!(
            "  - match: [{{uri: {{{kind}: \"{path}\"}}}}]\n    route: [{{destination: {{host: service2}}}}]\n"
        ));
    }
    mesh_core::load::load_str("bench.yaml", &yaml)
        .expect("bench config is valid")
        .config
}

/// `n` hosts with one route each.
fn hosts(n: usize) -> mesh_core::policy::MeshConfig {
    let mut yaml = String::new();
    for h in 0..n {
        yaml.push_str(&format!(
            "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: h{h}}}\nspec:\n  hosts: [host{h}]\n  http:\n  - route: [{{destination: {{host: host{h}}}}}]\n"
        ));
    }
    mesh_core::load::load_str("bench.yaml", &yaml)
        .expect("bench config is valid")
        .config
}

fn bench_scaling(c: &mut Criterion) {
    let mut g = c.benchmark_group("route_lookup_last_of_n");
    for n in [10usize, 100, 1000, 10_000] {
        for kind in ["exact", "prefix"] {
            let table = RouteTable::new(&one_host_with(n, kind), MESH);
            let last = n - 1;
            let req = http::Request::get(format!("http://service2/r{last}/items"))
                .body(())
                .unwrap();
            assert!(matches!(table.lookup(&req), Lookup::Matched { .. }));
            g.bench_with_input(BenchmarkId::new(kind, n), &req, |b, req| {
                b.iter(|| matches!(table.lookup(black_box(req)), Lookup::Matched { .. }))
            });
        }
        let table = RouteTable::new(&hosts(n), MESH);
        let req = http::Request::get(format!("http://host{}/", n / 2))
            .body(())
            .unwrap();
        assert!(matches!(table.lookup(&req), Lookup::Matched { .. }));
        g.bench_with_input(BenchmarkId::new("hosts", n), &req, |b, req| {
            b.iter(|| matches!(table.lookup(black_box(req)), Lookup::Matched { .. }))
        });
    }
    g.finish();
}

fn bench_split(c: &mut Criterion) {
    let to = |subset: &str, weight| WeightedDestination {
        destination: Destination {
            host: "service2".into(),
            subset: Some(subset.into()),
            port: None,
        },
        weight,
        headers: HeaderRules::default(),
    };
    let seeded = SplitLayer::new(vec![to("v1", 90), to("v2", 10)])
        .unwrap()
        .with_random(Random::seeded(1));
    let thread = SplitLayer::new(vec![to("v1", 90), to("v2", 10)]).unwrap();
    c.bench_function("split_pick_90_10_seeded", |b| {
        b.iter(|| black_box(seeded.pick()).target.destination.subset.is_some())
    });
    c.bench_function("split_pick_90_10_thread_rng", |b| {
        b.iter(|| black_box(thread.pick()).target.destination.subset.is_some())
    });
}

criterion_group!(benches, bench_route, bench_scaling, bench_split);
criterion_main!(benches);
