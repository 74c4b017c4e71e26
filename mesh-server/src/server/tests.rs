use mesh_core::policy::{AuthzAction, AuthzPolicy, Origin, RateLimitPolicy};

use super::*;

fn limit(target: &str, namespace: &str, rps: u32) -> RateLimitPolicy {
    RateLimitPolicy {
        origin: Origin {
            name: "rl".into(),
            namespace: namespace.into(),
            ..Origin::default()
        },
        target: target.into(),
        total_rps: Some(rps),
        identity_rps: Some(1),
        overrides: vec![],
    }
}

#[test]
fn workload_labels() {
    let w = Workload::new("service2").version("v2").namespace("shop");
    assert_eq!(w.labels.get("app").map(String::as_str), Some("service2"));
    assert_eq!(w.labels.get("version").map(String::as_str), Some("v2"));
    assert_eq!(w.namespace, "shop");
}

#[tokio::test]
async fn refresh_picks_the_workloads_policies_and_keeps_buckets_across_reloads() {
    let cell = Arc::new(ArcSwap::from_pointee(MeshConfig {
        rate_limits: vec![
            limit("other", "default", 7),
            limit("service1", "default", 5),
        ],
        ..MeshConfig::default()
    }));
    let p = Policies::new(Workload::new("service1"), ConfigSource::swap(cell.clone()));
    p.refresh();
    let total = p.total.load_full();
    assert_eq!(total.as_ref().and_then(|l| l.settings().total_rps), Some(5));
    assert_eq!(
        p.per_client
            .load()
            .as_ref()
            .and_then(|l| l.settings().identity_rps),
        Some(1)
    );
    assert_eq!(
        p.per_client
            .load()
            .as_ref()
            .and_then(|l| l.settings().total_rps),
        None
    );

    // A reload that changes something else keeps the same limiter (and its buckets).
    let mut deny = AuthzPolicy {
        origin: Origin {
            name: "d".into(),
            namespace: "default".into(),
            ..Origin::default()
        },
        selector: Default::default(),
        action: AuthzAction::Deny,
        provider: None,
        rules: vec![],
        dry_run: false,
    };
    let same_limits = cell.load().rate_limits.clone();
    cell.store(Arc::new(MeshConfig {
        rate_limits: same_limits.clone(),
        authorization: vec![deny.clone()],
        ..MeshConfig::default()
    }));
    p.refresh();
    assert!(matches!((&total, &*p.total.load()), (Some(a), Some(b)) if Arc::ptr_eq(a, b)));
    assert_eq!(p.authz.load().policies().count(), 1);

    // Another namespace's policies do not apply; a changed limit replaces the limiter.
    deny.origin.namespace = "prod".into();
    cell.store(Arc::new(MeshConfig {
        rate_limits: vec![limit("service1", "default", 9)],
        authorization: vec![deny],
        ..MeshConfig::default()
    }));
    p.refresh();
    assert_eq!(p.authz.load().policies().count(), 0);
    assert_eq!(
        p.total.load().as_ref().and_then(|l| l.settings().total_rps),
        Some(9)
    );

    cell.store(Arc::new(MeshConfig::default()));
    p.refresh();
    assert!(p.total.load().is_none() && p.per_client.load().is_none());
}

fn jwt_policy() -> mesh_core::policy::AuthnPolicy {
    use mesh_core::policy::{AuthnPolicy, JwksSource, JwtRule};
    AuthnPolicy {
        origin: Origin {
            name: "jwt".into(),
            namespace: "default".into(),
            ..Origin::default()
        },
        selector: Default::default(),
        rules: vec![JwtRule {
            issuer: "https://issuer.example".into(),
            audiences: vec![],
            jwks: JwksSource::Inline(r#"{"keys":[]}"#.into()),
            from_headers: vec![],
            from_params: vec![],
            from_cookies: vec![],
            output_payload_to_header: None,
            output_claim_to_headers: vec![],
            forward_original_token: false,
            timeout: Duration::from_secs(1),
            space_delimited_claims: Vec::new(),
        }],
        require_token: false,
        trigger_rules: vec![],
    }
}

fn deny_all() -> AuthzPolicy {
    AuthzPolicy {
        origin: Origin {
            name: "d".into(),
            namespace: "default".into(),
            ..Origin::default()
        },
        selector: Default::default(),
        action: AuthzAction::Deny,
        provider: None,
        rules: vec![mesh_core::policy::AuthzRule::default()],
        dry_run: false,
    }
}

#[tokio::test]
async fn none_apply_follows_each_kind_of_policy() {
    let cell = Arc::new(ArcSwap::from_pointee(MeshConfig::default()));
    let p = Policies::new(Workload::new("service1"), ConfigSource::swap(cell.clone()));
    assert!(!p.none_apply(), "nothing compiled yet: enforce");
    p.set_jwks_cache(JwksCache::new().unwrap());
    p.refresh();
    assert!(p.none_apply());

    let configs = [
        MeshConfig {
            rate_limits: vec![limit("service1", "default", 5)],
            ..MeshConfig::default()
        },
        MeshConfig {
            authorization: vec![deny_all()],
            ..MeshConfig::default()
        },
        MeshConfig {
            authentication: vec![jwt_policy()],
            ..MeshConfig::default()
        },
    ];
    for config in configs {
        cell.store(Arc::new(config));
        p.refresh();
        assert!(!p.none_apply(), "a policy applies");
        cell.store(Arc::new(MeshConfig::default()));
        p.refresh();
        assert!(p.none_apply(), "none applies again");
    }
    // A RequestAuthentication of another namespace does not apply; one in the root namespace
    // without a selector applies mesh-wide.
    let in_namespace = |ns: &str| {
        let mut policy = jwt_policy();
        policy.origin.namespace = ns.into();
        MeshConfig {
            authentication: vec![policy],
            ..MeshConfig::default()
        }
    };
    cell.store(Arc::new(in_namespace("team-b")));
    p.refresh();
    assert!(p.none_apply(), "another namespace's RequestAuthentication");
    cell.store(Arc::new(in_namespace("istio-system")));
    p.refresh();
    assert!(!p.none_apply(), "the root namespace's is mesh-wide");
    // Another workload's policies leave this one unpoliced.
    cell.store(Arc::new(MeshConfig {
        rate_limits: vec![limit("other", "default", 5)],
        ..MeshConfig::default()
    }));
    p.refresh();
    assert!(p.none_apply());
}

#[tokio::test(start_paused = true)]
async fn gate_goes_direct_without_policies_and_enforces_with_them() {
    use tower_test::mock;

    let cell = Arc::new(ArcSwap::from_pointee(MeshConfig::default()));
    let policies = Arc::new(Policies::new(
        Workload::new("service1"),
        ConfigSource::swap(cell.clone()),
    ));
    policies.refresh();
    let (direct, mut direct_handle) = mock::pair::<Request<()>, &'static str>();
    let (enforce, mut enforce_handle) = mock::pair::<Request<()>, &'static str>();
    let enforce = tower::ServiceBuilder::new()
        .map_err(Into::<BoxError>::into)
        .service(enforce);
    let mut gate = Gate::new(direct, enforce, policies.clone());

    // No policy: the request goes straight to the direct service.
    std::future::poll_fn(|cx| gate.poll_ready(cx))
        .await
        .unwrap();
    let answer = gate.call(Request::new(()));
    let (_, send) = direct_handle.next_request().await.unwrap();
    send.send_response("direct");
    assert_eq!(answer.await.unwrap(), "direct");

    // A reload brings a policy: the next request goes through the policy layers.
    cell.store(Arc::new(MeshConfig {
        authorization: vec![deny_all()],
        ..MeshConfig::default()
    }));
    std::future::poll_fn(|cx| gate.poll_ready(cx))
        .await
        .unwrap();
    let answer = gate.call(Request::new(()));
    let (_, send) = enforce_handle.next_request().await.unwrap();
    send.send_response("enforced");
    assert_eq!(answer.await.unwrap(), "enforced");

    // A clone has chosen nothing yet: it enforces until polled.
    cell.store(Arc::new(MeshConfig::default()));
    let mut clone = gate.clone();
    std::future::poll_fn(|cx| clone.poll_ready(cx))
        .await
        .unwrap();
    let answer = clone.call(Request::new(()));
    let (_, send) = direct_handle.next_request().await.unwrap();
    send.send_response("direct again");
    assert_eq!(answer.await.unwrap(), "direct again");
}

#[tokio::test]
async fn the_inbound_stack_gives_grpc_handling_to_grpc_calls_only() {
    use tower::ServiceExt;

    // The app fails every call with a plain 503; the inbound layers make that a gRPC answer
    // for a gRPC caller only, with and without the metrics layer on top.
    let app = tower::service_fn(|_req: Request<Body>| async {
        let mut answer = Response::new(Body::empty());
        *answer.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
        Ok::<_, Infallible>(answer)
    });
    for metrics in [true, false] {
        let cell = Arc::new(ArcSwap::from_pointee(MeshConfig::default()));
        let mut server = MeshServer::new(Workload::new("service2"), ConfigSource::swap(cell))
            .with_metrics(MeshMetrics::new());
        if !metrics {
            server = server.without_inbound_request_metrics();
        }
        let stack = server.wrap(app);
        for grpc in [true, false] {
            let mut req = Request::post("/pkg.Svc/Method")
                .body(Body::empty())
                .unwrap();
            if grpc {
                req.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/grpc"),
                );
            }
            let answer = stack.clone().oneshot(req).await.unwrap();
            let status = mesh_core::grpc::status_of(answer.headers());
            if grpc {
                assert_eq!(answer.status(), 200, "metrics {metrics}");
                assert_eq!(status, Some(14), "metrics {metrics}: 503 is UNAVAILABLE");
            } else {
                assert_eq!(answer.status(), 503, "metrics {metrics}");
                assert_eq!(status, None, "metrics {metrics}: not a gRPC answer");
            }
        }
    }
}

/// The `rpc.grpc.status_code` values recorded on spans after their creation.
#[derive(Clone, Default)]
struct GrpcCodes(Arc<std::sync::Mutex<Vec<u64>>>);

impl tracing::field::Visit for GrpcCodes {
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        if field.name() == "rpc.grpc.status_code" {
            self.0.lock().unwrap().push(value);
        }
    }

    fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for GrpcCodes {
    fn on_record(
        &self,
        _: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) {
        values.record(&mut self.clone());
    }
}

#[tokio::test]
async fn a_grpc_status_in_the_trailers_reaches_the_metrics_and_the_span_at_the_bodys_end() {
    use http_body_util::BodyExt as _;
    use tower::ServiceExt;
    use tracing_subscriber::layer::SubscriberExt as _;

    let codes = GrpcCodes::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(codes.clone()));
    // Another test's thread may have cached a callsite's interest without this subscriber.
    tracing::callsite::rebuild_interest_cache();
    // A tonic-like answer: a message, then `grpc-status: 5` in the trailers.
    let app = tower::service_fn(|_req: Request<Body>| async {
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", http::HeaderValue::from_static("5"));
        let frames = [
            Ok::<_, Infallible>(http_body::Frame::data(Bytes::from_static(b"\0\0\0\0\0"))),
            Ok(http_body::Frame::trailers(trailers)),
        ];
        let body = http_body_util::StreamBody::new(futures_util::stream::iter(frames));
        let mut answer = Response::new(Body::new(body));
        answer.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/grpc"),
        );
        Ok::<_, Infallible>(answer)
    });
    // With the metrics layer, and without it (the span alone waits for the status).
    for with_metrics in [true, false] {
        codes.0.lock().unwrap().clear();
        let metrics = MeshMetrics::new();
        let cell = Arc::new(ArcSwap::from_pointee(MeshConfig::default()));
        let mut server = MeshServer::new(Workload::new("service2"), ConfigSource::swap(cell))
            .with_metrics(metrics.clone());
        if !with_metrics {
            server = server.without_inbound_request_metrics();
        }
        let stack = server.wrap(app);
        let req = Request::post("/pkg.Svc/Method")
            .header(http::header::CONTENT_TYPE, "application/grpc")
            .body(Body::empty())
            .unwrap();
        let answer = stack.oneshot(req).await.unwrap();
        // Handed from layer to layer inside the stack's future: nothing left in the extensions.
        assert!(
            answer
                .extensions()
                .get::<mesh_telemetry::grpc_status::PendingGrpcStatus>()
                .is_none()
        );
        let counted = r#"grpc_response_status="5""#;
        let recorded = |text: String| {
            text.lines()
                .any(|l| l.starts_with("istio_requests_total{") && l.contains(counted))
        };
        assert!(
            !recorded(metrics.encode_prometheus()),
            "before the trailers"
        );
        assert!(codes.0.lock().unwrap().is_empty(), "before the trailers");
        let collected = answer.into_body().collect().await.unwrap();
        assert!(collected.trailers().is_some());
        assert_eq!(
            recorded(metrics.encode_prometheus()),
            with_metrics,
            "metrics {with_metrics}"
        );
        assert_eq!(*codes.0.lock().unwrap(), [5], "metrics {with_metrics}");
    }
}
