//! gRPC callers always get gRPC answers (issue 16): every answer the mesh makes itself is HTTP
//! 200 trailers-only with the `grpc-status` Envoy's `httpToGrpcStatus` gives (no route 12, no
//! healthy upstream 14, 403 → 7, 401 → 16, 429 → 14, timeouts 4), fault aborts take their
//! `grpcStatus`, and routing matches `/package.Service/Method` like any path.

use std::time::Duration;

use mesh_examples::app::Faults;
use mesh_tests::grpc::{Code, call, call_method};
use mesh_tests::{Lab, LabOptions};

async fn lab(options: LabOptions) -> Lab {
    match Lab::start("grpc", options).await {
        Ok(lab) => lab,
        Err(e) => panic!("lab: {e}"),
    }
}

/// Writes `name` into the lab's folder and waits until every app runs it.
async fn add(lab: &Lab, name: &str, yaml: &str) {
    if let Err(e) = lab.write_file(name, yaml) {
        panic!("{name}: {e}");
    }
    if let Err(e) = lab.wait_reloaded().await {
        panic!("{name}: {e}");
    }
}

/// Replaces service2's VirtualService (file 08) and waits until every app runs it.
async fn service2_routes(lab: &Lab, http: &str) {
    let yaml = format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: service2-grpc\nspec:\n  hosts: [service2]\n  http:\n{http}"
    );
    add(lab, "08-virtualservice-grpc-retries.yaml", &yaml).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesh_errors_reach_grpc_callers_as_grpc_statuses() {
    let lab = lab(LabOptions::default()).await;
    // No route at the gateway for this service: UNIMPLEMENTED.
    let err = call_method(lab.gateway.addr, "/other.Service/Method")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented, "{err:?}");
    assert!(!err.message().is_empty());

    // service2's route names a subset without endpoints: service1's mesh client answers
    // UNAVAILABLE (no healthy upstream), which service1 passes back through the gateway.
    lab.write_file(
        "04-destinationrule-subsets.yaml",
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: service2\nspec:\n  host: service2\n  subsets:\n    - {name: v1, labels: {version: v1}}\n    - {name: v2, labels: {version: v2}}\n    - {name: v9, labels: {version: v9}}\n",
    )
    .unwrap();
    service2_routes(
        &lab,
        "    - route:\n        - destination: {host: service2, subset: v9}\n",
    )
    .await;
    let err = call(lab.gateway.addr, "/", None).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert_eq!(err.message(), "no healthy upstream");
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_timeout_is_deadline_exceeded() {
    let lab = lab(LabOptions {
        service3_faults: Faults {
            latency: Duration::from_secs(2),
            ..Faults::default()
        },
        ..LabOptions::default()
    })
    .await;
    service2_routes(
        &lab,
        "    - route:\n        - destination: {host: service2, subset: v1}\n      timeout: 200ms\n",
    )
    .await;
    let err = call(lab.gateway.addr, "/", None).await.unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    assert_eq!(err.message(), "upstream request timeout");
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_refusals_are_grpc_statuses() {
    let lab = lab(LabOptions::default()).await;
    // AuthorizationPolicy DENY on service1's gRPC paths: PERMISSION_DENIED.
    add(
        &lab,
        "10-deny.yaml",
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata:\n  name: deny-echo\nspec:\n  selector:\n    matchLabels: {app: service1}\n  action: DENY\n  rules:\n    - to:\n        - operation:\n            paths: [\"/mesh.examples.Echo/*\"]\n",
    )
    .await;
    let err = call(lab.gateway.addr, "/", None).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert_eq!(err.message(), "RBAC: access denied");
    std::fs::remove_file(lab.config_dir().join("10-deny.yaml")).unwrap();

    // The article's origin authentication: no token, UNAUTHENTICATED.
    let issuer = format!("http://{}", lab.issuer_addr());
    add(
        &lab,
        "11-auth.yaml",
        &format!("apiVersion: authentication.istio.io/v1beta1\nkind: Policy\nmetadata:\n  name: auth-policy\nspec:\n  targets:\n    - name: service1\n  origins:\n    - jwt:\n        issuer: \"{issuer}\"\n        jwksUri: \"{issuer}/.well-known/jwks.json\"\n  principalBinding: USE_ORIGIN\n"),
    )
    .await;
    let err = call(lab.service1.addr, "/", None).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    assert!(!err.message().is_empty());
    std::fs::remove_file(lab.config_dir().join("11-auth.yaml")).unwrap();

    // A rate limit of 1 request per second on service3: the second call is UNAVAILABLE.
    add(
        &lab,
        "12-rate.yaml",
        "apiVersion: policy.linkerd.io/v1alpha1\nkind: HTTPLocalRateLimitPolicy\nmetadata:\n  name: service3-limit\nspec:\n  targetRef: {kind: Service, name: service3}\n  total: {requestsPerSecond: 1}\n",
    )
    .await;
    let mut codes = Vec::new();
    for _ in 0..3 {
        codes.push(
            call(lab.service3.addr, "/", None)
                .await
                .err()
                .map(|s| s.code()),
        );
    }
    assert!(codes.contains(&Some(Code::Unavailable)), "{codes:?}");
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_aborts_answer_their_grpc_status_for_their_share() {
    let lab = lab(LabOptions::default()).await;
    service2_routes(
        &lab,
        "    - route:\n        - destination: {host: service2, subset: v1}\n      fault:\n        abort:\n          grpcStatus: UNAVAILABLE\n          percentage: {value: 50}\n",
    )
    .await;
    // Called at service1 itself: the gateway's default retry policy (which includes
    // `unavailable`, as Istio's) would retry the aborts.
    let mut aborted = 0;
    for _ in 0..200 {
        if let Err(s) = call(lab.service1.addr, "/", None).await {
            assert_eq!(s.code(), Code::Unavailable, "{s:?}");
            assert_eq!(s.message(), "fault filter abort");
            aborted += 1;
        }
    }
    assert!((60..=140).contains(&aborted), "{aborted} of 200 aborted");
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_match_grpc_paths_exactly_and_by_prefix() {
    let lab = lab(LabOptions::default()).await;
    service2_routes(
        &lab,
        "    - match:\n        - uri: {exact: /mesh.examples.Echo/Call}\n      route:\n        - destination: {host: service2, subset: v2}\n    - route:\n        - destination: {host: service2, subset: v1}\n",
    )
    .await;
    let reply = call(lab.gateway.addr, "/", None).await.unwrap();
    assert_eq!(
        reply.upstream.as_deref().map(|u| u.version.as_str()),
        Some("v2")
    );
    service2_routes(
        &lab,
        "    - match:\n        - uri: {prefix: /mesh.examples.Other/}\n      route:\n        - destination: {host: service2, subset: v2}\n    - route:\n        - destination: {host: service2, subset: v1}\n",
    )
    .await;
    let reply = call(lab.gateway.addr, "/", None).await.unwrap();
    assert_eq!(
        reply.upstream.as_deref().map(|u| u.version.as_str()),
        Some("v1")
    );
    lab.stop().await;
}
