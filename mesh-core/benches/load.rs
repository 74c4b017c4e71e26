//! Loading a folder of 100 VirtualServices (each with header matches, a weighted split, retries
//! and a timeout) and their 100 DestinationRules: parse, line index, compile, cross checks.
//!
//! `cargo bench -p mesh-core --bench load`
#![allow(clippy::expect_used, missing_docs)] // bench setup: a failure is a broken bench

use std::fmt::Write as _;

use criterion::{Criterion, criterion_group, criterion_main};
use mesh_core::load::load_paths;

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

criterion_group!(benches, bench_load);
criterion_main!(benches);
