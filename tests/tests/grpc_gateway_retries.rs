//! The gateway's own retries of gRPC calls: their bodies (h2 streams of unknown length from the
//! downstream client) are recorded as the first try streams them and replayed.

use mesh_examples::app::Faults;
use mesh_tests::grpc::call;
use mesh_tests::{Lab, LabOptions};

/// 100 calls with v1 failing half of them: every one succeeds. This once failed at v1's 100th
/// request: the tape sent the empty chunk ending each downstream h2 body as an empty DATA frame
/// without END_STREAM, and service2's h2 server allows a connection 100 of those before it
/// sends GOAWAY (ENHANCE_YOUR_CALM) and resets the calls in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_replays_grpc_bodies_on_retry() {
    let lab = match Lab::start(
        "grpc",
        LabOptions {
            v1_faults: Faults {
                error_rate: 0.5,
                grpc_status: 14,
                ..Faults::default()
            },
            ..LabOptions::default()
        },
    )
    .await
    {
        Ok(lab) => lab,
        Err(e) => panic!("lab: {e}"),
    };
    let vs = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: gateway-routes\nspec:\n  hosts: [\"*\"]\n  gateways: [http-gateway]\n  http:\n    - match:\n        - uri: {prefix: /mesh.examples.Echo/}\n      route:\n        - destination: {host: service2, subset: v1}\n      retries: {attempts: 3, retryOn: unavailable}\n";
    if let Err(e) = lab.write_file("02-virtualservice-routing.yaml", vs) {
        panic!("{e}");
    }
    if let Err(e) = lab.wait_reloaded().await {
        panic!("{e}");
    }
    let mut failed = Vec::new();
    for i in 0..100 {
        if let Err(s) = call(lab.gateway.addr, &format!("/g{i}"), None).await {
            failed.push(format!("{i}: {:?} {}", s.code(), s.message()));
        }
    }
    assert!(failed.is_empty(), "{failed:?}");
    lab.stop().await;
}
