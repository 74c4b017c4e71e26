//! gRPC end to end (issue 16): a tonic client calls `mesh.examples.Echo/Call` at the gateway
//! and at the services (h2c with prior knowledge), through the chain service1 → service2 →
//! service3 with the mesh client as tonic's transport; retries by gRPC status, deadlines and
//! the metrics read from trailers. Config: `examples/scenarios/grpc` (service2's calls all go
//! to v1, retried on `unavailable`).

use std::time::{Duration, Instant};

use mesh_examples::app::Faults;
use mesh_tests::grpc::{Code, call, metrics, request_lines, total};
use mesh_tests::{Lab, LabOptions};

async fn lab(options: LabOptions) -> Lab {
    match Lab::start("grpc", options).await {
        Ok(lab) => lab,
        Err(e) => panic!("lab: {e}"),
    }
}

fn hex32(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chain_answers_through_the_gateway_and_at_each_service() {
    let lab = lab(LabOptions::default()).await;
    let reply = call(lab.gateway.addr, "/hello/grpc", None).await.unwrap();
    assert_eq!(reply.service, "service1");
    let s2 = reply.upstream.as_deref().unwrap();
    assert_eq!(
        (s2.service.as_str(), s2.version.as_str()),
        ("service2", "v1")
    );
    let s3 = s2.upstream.as_deref().unwrap();
    assert_eq!(s3.service, "service3");
    assert!(s3.upstream.is_none(), "service3 calls nothing");
    for r in [&reply, s2, s3] {
        assert_eq!(r.path, "/hello/grpc");
        assert!(hex32(&r.trace_id), "{}", r.trace_id);
        assert_eq!(r.trace_id, reply.trace_id, "one trace along the chain");
    }
    // Each service answers gRPC on its own listen port too, beside its HTTP handler.
    let direct = call(lab.service2_v2.addr, "/x", None).await.unwrap();
    assert_eq!(
        (direct.service.as_str(), direct.version.as_str()),
        ("service2", "v2")
    );
    assert_eq!(
        direct.upstream.as_deref().map(|u| u.service.as_str()),
        Some("service3")
    );
    let http = lab.get("/service1/plain", &[]).await;
    assert_eq!(http.status, 200, "{:?}", http.json);
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_on_unavailable_rescue_a_service_failing_half_its_calls() {
    let half = Faults {
        error_rate: 0.5,
        grpc_status: 14,
        ..Faults::default()
    };
    let lab = lab(LabOptions {
        v1_faults: half,
        ..LabOptions::default()
    })
    .await;
    for i in 0..20 {
        let r = call(lab.gateway.addr, &format!("/r{i}"), None).await;
        assert!(r.is_ok(), "call {i}: {r:?}");
    }
    // Every other call failed once with a trailers-only UNAVAILABLE and was sent again.
    let v1 = lab.service2_v1.state.as_ref().unwrap();
    // Failures are evenly spread over v1's requests (every odd one): after the first call,
    // each call's first try fails and its retry succeeds.
    assert_eq!(v1.requests(), 39);
    let text = metrics(lab.service2_v1.admin).await;
    let failed = request_lines(
        &text,
        &[
            r#"reporter="destination""#,
            r#"request_protocol="grpc""#,
            r#"grpc_response_status="14""#,
        ],
    );
    assert_eq!(total(&failed), 19.0, "{text}");
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_argument_is_passed_back_and_never_retried() {
    let half = Faults {
        error_rate: 0.5,
        grpc_status: 3,
        ..Faults::default()
    };
    let lab = lab(LabOptions {
        v1_faults: half,
        ..LabOptions::default()
    })
    .await;
    let mut invalid = 0;
    for _ in 0..20 {
        match call(lab.gateway.addr, "/", None).await {
            Ok(_) => {}
            Err(s) => {
                assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
                assert!(!s.message().is_empty());
                invalid += 1;
            }
        }
    }
    assert_eq!(invalid, 10);
    assert_eq!(lab.service2_v1.state.as_ref().unwrap().requests(), 20);
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_service3_yields_deadline_exceeded_within_the_deadline() {
    let slow = Faults {
        latency: Duration::from_secs(3),
        ..Faults::default()
    };
    let lab = lab(LabOptions {
        service3_faults: slow,
        ..LabOptions::default()
    })
    .await;
    for addr in [lab.gateway.addr, lab.service1.addr] {
        let started = Instant::now();
        let r = call(addr, "/slow", Some(Duration::from_millis(300))).await;
        let err = r.expect_err("service3 takes 3 s, the deadline is 300 ms");
        assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
        // Generous: the answer comes at the deadline, far before service3's 3 s.
        assert!(
            started.elapsed() < Duration::from_millis(2500),
            "{:?}",
            started.elapsed()
        );
    }
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_read_the_grpc_status_from_trailers_on_both_reporters() {
    let lab = lab(LabOptions::default()).await;
    for _ in 0..3 {
        call(lab.gateway.addr, "/m", None).await.unwrap();
    }
    let grpc_ok = [
        r#"request_protocol="grpc""#,
        r#"response_code="200""#,
        r#"grpc_response_status="0""#,
    ];
    let s2 = metrics(lab.service2_v1.admin).await;
    let inbound: Vec<&str> = [r#"reporter="destination""#]
        .into_iter()
        .chain(grpc_ok)
        .collect();
    assert_eq!(total(&request_lines(&s2, &inbound)), 3.0, "{s2}");
    let outbound: Vec<&str> = [
        r#"reporter="source""#,
        r#"destination_service_name="service3""#,
    ]
    .into_iter()
    .chain(grpc_ok)
    .collect();
    assert_eq!(total(&request_lines(&s2, &outbound)), 3.0, "{s2}");
    let gw = metrics(lab.gateway.admin).await;
    let edge: Vec<&str> = [r#"reporter="source""#]
        .into_iter()
        .chain(grpc_ok)
        .collect();
    assert_eq!(total(&request_lines(&gw, &edge)), 3.0, "{gw}");
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demos_grpc_scenario_passes_end_to_end() {
    let outcome = mesh_tests::assert_scenario("grpc").await;
    println!("{}: {}", outcome.name, outcome.observed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_apps_answer_grpc_with_bare_tonic() {
    use mesh_examples::run::{ServiceSpec, Shutdown, bind, start_service};
    let any = || std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let spec = ServiceSpec {
        name: "service3".into(),
        version: "v1".into(),
        faults: Faults::default(),
        plain: true,
        config: mesh_examples::cli::DEFAULT_CONFIG.into(),
        identity: mesh_examples::mesh::Identity::default(),
    };
    let shutdown = Shutdown::new();
    let (listener, admin) = (bind(any()).await.unwrap(), bind(any()).await.unwrap());
    let started = start_service(&spec, listener, admin, &shutdown).unwrap();
    let reply = call(started.addr, "/plain", None).await.unwrap();
    assert_eq!(
        (reply.service.as_str(), reply.path.as_str()),
        ("service3", "/plain")
    );
    assert!(hex32(&reply.trace_id));
    shutdown.trigger();
}
