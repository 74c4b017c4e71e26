//! Loading a folder of 100 VirtualServices (each with header matches, a weighted split, retries
//! and a timeout) and their 100 DestinationRules: parse, line index, compile, cross checks.
//!
//! Then the `--kube` path: 500 VirtualServices and their 500 DestinationRules as API objects,
//! one of them changed per load (a watch event), compiled without and with `ObjectsCache`.
//!
//! `cargo bench -p mesh-core --bench load`
#![allow(clippy::expect_used, missing_docs)] // bench setup: a failure is a broken bench

use std::fmt::Write as _;

use criterion::{Criterion, criterion_group, criterion_main};
use mesh_core::load::{Object, ObjectsCache, References, load_objects_with, load_paths};
use serde_json::json;

fn manifest(i: usize) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: svc{i}
spec:
  hosts:
  - svc{i}
  http:
  - match:
    - headers:
        end-user:
          exact: user{i}
      uri:
        prefix: /api/v{i}
    route:
    - destination:
        host: svc{i}
        subset: v2
    timeout: 1.5s
  - route:
    - destination:
        host: svc{i}
        subset: v1
      weight: 90
    - destination:
        host: svc{i}
        subset: v2
      weight: 10
    retries:
      attempts: 3
      perTryTimeout: 500ms
      retryOn: 5xx,connect-failure,503
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: svc{i}
spec:
  host: svc{i}.default.svc.cluster.local
  trafficPolicy:
    connectionPool:
      http:
        http2MaxRequests: 100
    outlierDetection:
      consecutive5xxErrors: 5
      interval: 10s
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
"
    );
    s
}

fn bench_load(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    for i in 0..100 {
        std::fs::write(dir.path().join(format!("svc{i:03}.yaml")), manifest(i))
            .expect("write manifest");
    }
    let loaded = load_paths(&[dir.path()]).expect("the bench folder loads");
    assert_eq!(loaded.config.virtual_services.len(), 100);
    c.bench_function("load_folder_100_virtual_services", |b| {
        b.iter(|| load_paths(&[dir.path()]).expect("loads"))
    });
}

fn object(kind: &str, name: String, spec: serde_json::Value) -> Object {
    Object {
        api_version: "networking.istio.io/v1".into(),
        kind: kind.into(),
        namespace: "default".into(),
        name,
        annotations: Default::default(),
        spec,
    }
}

/// Service `i`'s VirtualService (its route timeout `timeout_ms`) and DestinationRule.
fn service_objects(i: usize, timeout_ms: u64) -> [Object; 2] {
    let host = format!("svc{i}");
    [
        object(
            "VirtualService",
            host.clone(),
            json!({"hosts": [host], "http": [
                {"match": [{"headers": {"x-canary": {"exact": "1"}}}],
                 "route": [{"destination": {"host": host, "subset": "v2"}}]},
                {"route": [{"destination": {"host": host, "subset": "v1"}, "weight": 90},
                           {"destination": {"host": host, "subset": "v2"}, "weight": 10}],
                 "timeout": format!("{timeout_ms}ms"),
                 "retries": {"attempts": 3, "perTryTimeout": "1s", "retryOn": "5xx"}}]}),
        ),
        object(
            "DestinationRule",
            host.clone(),
            json!({"host": host, "subsets": [
                {"name": "v1", "labels": {"version": "v1"}},
                {"name": "v2", "labels": {"version": "v2"}}]}),
        ),
    ]
}

fn bench_objects(c: &mut Criterion) {
    let mut objects: Vec<Object> = (0..500).flat_map(|i| service_objects(i, 2000)).collect();
    let loaded = load_objects_with(&objects, References::Pending);
    assert!(loaded.refused.is_empty(), "{:?}", loaded.refused);
    assert_eq!(loaded.config.virtual_services.len(), 500);
    let mut round = 0u64;
    let mut change = move |objects: &mut Vec<Object>| {
        round += 1;
        let i = (round % 500) as usize;
        let [vs, _] = service_objects(i, 2000 + round % 7);
        objects[2 * i] = vs;
    };
    let mut group = c.benchmark_group("load_objects_1000_one_changed");
    group.sample_size(10);
    let mut uncached = objects.clone();
    group.bench_function("uncached", |b| {
        b.iter(|| {
            change(&mut uncached);
            load_objects_with(&uncached, References::Pending)
        })
    });
    let mut cache = ObjectsCache::new();
    cache.load(&objects, References::Pending);
    group.bench_function("cached", |b| {
        b.iter(|| {
            change(&mut objects);
            cache.load(&objects, References::Pending)
        })
    });
    group.finish();
}

criterion_group!(benches, bench_load, bench_objects);
criterion_main!(benches);
