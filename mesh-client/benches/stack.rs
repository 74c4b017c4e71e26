//! The whole MeshClient stack over a mock transport (no sockets): what the mesh adds per call.
//!
//! Run: `cargo bench -p mesh-client --bench stack -- --warm-up-time 1 --measurement-time 2`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::Full;
use mesh_client::body::{self, BoxBody};
use mesh_client::client::MeshClient;
use mesh_client::random::Random;
use mesh_core::watch::ConfigStore;

const CONFIG: &str = r#"
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata:
  name: service2
spec:
  host: service2
  subsets:
    - name: v1
      labels: {version: v1}
    - name: v2
      labels: {version: v2}
---
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: service2
spec:
  hosts: [service2]
  http:
    - route:
        - destination: {host: service2, subset: v1}
          weight: 90
        - destination: {host: service2, subset: v2}
          weight: 10
      retries:
        attempts: 5
        perTryTimeout: 10s
      timeout: 30s
"#;

fn bench_stack(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let config = mesh_core::load::load_str("bench.yaml", CONFIG)
        .unwrap()
        .config;
    let store = ConfigStore::new(config);
    let mock = tower::service_fn(|_req: http::Request<BoxBody>| async {
        Ok::<_, mesh_client::BoxError>(http::Response::new(body::full(Bytes::from_static(b"ok"))))
    });
    let client = MeshClient::builder_with(store, mock)
        .random(Random::seeded(1))
        .build();
    let bare = Arc::new(mock);
    let mut g = c.benchmark_group("stack_mock_transport");
    g.bench_function("mesh_client_split_retry_timeout", |b| {
        b.to_async(&rt).iter(|| async {
            let req = http::Request::get("http://service2/hello")
                .body(Full::new(Bytes::new()))
                .unwrap();
            client.send(req).await.unwrap().status()
        })
    });
    g.bench_function("mesh_client_no_virtual_service", |b| {
        b.to_async(&rt).iter(|| async {
            let req = http::Request::get("http://service3/hello")
                .body(Full::new(Bytes::new()))
                .unwrap();
            client.send(req).await.unwrap().status()
        })
    });
    g.bench_function("bare_mock_baseline", |b| {
        b.to_async(&rt).iter(|| async {
            use tower::ServiceExt;
            let req = http::Request::get("http://service2/hello")
                .body(body::empty())
                .unwrap();
            (*bare).oneshot(req).await.unwrap().status()
        })
    });
    g.finish();
}

criterion_group!(benches, bench_stack);
criterion_main!(benches);
