//! Sends N requests through the whole `MeshClient` stack (route, headers, fault, mirror check,
//! timeout, split, retry with budget, client telemetry) over a mock cluster, for an
//! instruction count with callgrind: `scripts/callgrind.sh` runs it with two values of N and
//! divides the difference, so start-up and config loading cancel out. Instruction counts do not
//! depend on machine load, so a regression shows as a changed number, not as noise.
//!
//! ```sh
//! cargo run --release -p mesh-client --example callgrind_stack -- 1000
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use http_body_util::Full;
use mesh_client::body::{self, BoxBody};
use mesh_client::client::MeshClient;
use mesh_client::random::Random;
use mesh_core::watch::ConfigStore;

const CONFIG: &str = r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: service2}
spec:
  host: service2
  trafficPolicy:
    loadBalancer: {simple: LEAST_REQUEST}
    outlierDetection: {consecutive5xxErrors: 5}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: service2}
spec:
  hosts: [service2]
  http:
  - match: [{uri: {prefix: /api}, headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: service2, subset: v2}}]
  - route:
    - {destination: {host: service2, subset: v1}, weight: 90}
    - {destination: {host: service2, subset: v2}, weight: 10}
    retries: {attempts: 2, perTryTimeout: 2s}
    timeout: 5s
"#;

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let config = mesh_core::load::load_str("callgrind.yaml", CONFIG)
        .unwrap()
        .config;
    let store = ConfigStore::new(config);
    let cluster = tower::service_fn(|_req: http::Request<BoxBody>| async {
        Ok::<_, mesh_client::BoxError>(http::Response::new(body::full(Bytes::from_static(b"ok"))))
    });
    let client = MeshClient::builder_with(store, cluster)
        .random(Random::seeded(1))
        .build();
    let mut ok = 0u64;
    rt.block_on(async {
        for _ in 0..n {
            let req = http::Request::get("http://service2/hello")
                .body(Full::new(Bytes::new()))
                .unwrap();
            if client.send(req).await.unwrap().status() == 200 {
                ok += 1;
            }
        }
    });
    assert_eq!(ok, n);
    println!("{n} requests");
}
