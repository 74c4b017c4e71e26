//! One hop of the example chain in one process, without sockets: service2's app, with or without
//! the mesh, calling a stand-in for service3 that answers in-process.
//!
//! - [`HopMode::Mesh`]: the app behind [`MeshRuntime::server`]'s inbound layers, calling service3
//!   through the whole `MeshClient` stack (route, split, retry with budget, timeout, clusters,
//!   balancer, outlier detection, client telemetry) down to [`Transport::in_process`], under
//!   [`BENCH_POLICY`], the policies of the `bench` chain.
//! - [`HopMode::Bare`]: the same handler as the `--plain` app (its request counter included),
//!   whose upstream answers in-process the same way.
//!
//! The difference between the two is what the mesh costs per hop, without the kernel, the
//! sockets and hyper's HTTP/1 codec that both would pay alike. `examples/hop_cost.rs` counts
//! allocations per request over it, and runs it under callgrind for an instruction count that
//! does not depend on machine load.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use mesh_examples::hop::{HopMode, InProcessHop};
//! let hop = InProcessHop::start(HopMode::Mesh).unwrap();
//! assert_eq!(hop.request().await.unwrap(), http::StatusCode::OK);
//! # });
//! ```

use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use mesh_client::transport::Transport;
use tower::ServiceExt;

use crate::admin::RequestCounter;
use crate::app::{AppState, app};
use crate::lab::service_entry;
use crate::mesh::{InboundStack, MeshRuntime, StartError, Workload};
use crate::upstream::{BoxError, Upstream, UpstreamFuture};

/// The policies of the `bench` chain's mesh set-up: a 50/50 split over two subsets of the same
/// instance, retries with the default budget, a route timeout, outlier detection, least-request
/// balancing, and a consistent hash on service3. Everything on, nothing failing: the happy path.
pub const BENCH_POLICY: &str = r#"apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: service2}
spec:
  host: service2
  trafficPolicy:
    loadBalancer: {simple: LEAST_REQUEST}
    outlierDetection: {consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s}
  subsets:
  - {name: a, labels: {version: v1}}
  - {name: b, labels: {app: service2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: service2}
spec:
  hosts: [service2]
  http:
  - route:
    - {destination: {host: service2, subset: a}, weight: 50}
    - {destination: {host: service2, subset: b}, weight: 50}
    timeout: 5s
    retries: {attempts: 2, perTryTimeout: 2s, retryOn: "connect-failure,refused-stream,503"}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: service3}
spec:
  host: service3
  trafficPolicy:
    loadBalancer: {consistentHash: {httpHeaderName: x-user}}
    outlierDetection: {consecutive5xxErrors: 5}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: service3}
spec:
  hosts: [service3]
  http:
  - route:
    - destination: {host: service3}
    timeout: 5s
"#;

/// What service3 answers (the stand-in's body).
const SERVICE3_ANSWER: &[u8] =
    br#"{"path":"/bench","service":"service3","trace_id":null,"upstream":null,"version":"v1"}"#;

fn service3_answer() -> Response<Body> {
    with_content_type(Response::new(Body::from(Bytes::from_static(
        SERVICE3_ANSWER,
    ))))
}

fn with_content_type<B>(mut resp: Response<B>) -> Response<B> {
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

/// Which hop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HopMode {
    /// The app with every mesh layer, inbound and outbound.
    Mesh,
    /// The app as `--plain` runs it.
    Bare,
}

/// service3 answering in-process, for the bare hop.
struct InProcessService3;

impl Upstream for InProcessService3 {
    fn call(&self, _req: Request<Body>) -> UpstreamFuture {
        Box::pin(async { Ok::<_, BoxError>(service3_answer()) })
    }
}

/// The app as each mode serves it (both unboxed, as the binaries serve them).
enum HopService {
    Bare(axum::Router),
    Mesh(InboundStack),
}

/// One hop, ready to take requests; see the [module docs](self).
pub struct InProcessHop {
    service: HopService,
    _mesh: Option<(MeshRuntime, tempfile::TempDir)>,
}

impl InProcessHop {
    /// Builds the hop. [`HopMode::Mesh`] writes its config to a temporary folder and needs a
    /// Tokio runtime (the mesh watches the folder).
    pub fn start(mode: HopMode) -> Result<Self, StartError> {
        let workload = Workload::new("service2", "v1");
        let state = AppState::new("service2", "v1");
        match mode {
            HopMode::Bare => {
                let state = Arc::new(state.with_upstream("service3", Arc::new(InProcessService3)));
                let counter = Arc::new(RequestCounter::new("service2", "v1"));
                let router = app(state).layer(axum::middleware::from_fn_with_state(
                    counter,
                    RequestCounter::middleware,
                ));
                Ok(Self {
                    service: HopService::Bare(router),
                    _mesh: None,
                })
            }
            HopMode::Mesh => {
                let dir = config_dir()?;
                // The same answer as the bare hop's, its body boxed once as the mesh's body
                // (as the hyper transport boxes a connection's body once), not an axum body
                // boxed again.
                let transport = Transport::in_process(|_endpoint, _req| {
                    Box::pin(async {
                        let body = mesh_client::body::full(Bytes::from_static(SERVICE3_ANSWER));
                        Ok(with_content_type(Response::new(body)))
                    })
                });
                let mesh = MeshRuntime::start_with_transport(dir.path(), transport)?;
                let state = Arc::new(state.with_upstream("service3", mesh.client(&workload)));
                let service = mesh.server(app(state), &workload);
                Ok(Self {
                    service: HopService::Mesh(service),
                    _mesh: Some((mesh, dir)),
                })
            }
        }
    }

    /// The mesh runtime of a [`HopMode::Mesh`] hop (its config folder, store and reload).
    pub fn mesh(&self) -> Option<&MeshRuntime> {
        self._mesh.as_ref().map(|(mesh, _)| mesh)
    }

    /// Sends one request (`GET /bench`, as the bench's load does) through the hop and reads the
    /// whole answer.
    pub async fn request(&self) -> Result<StatusCode, BoxError> {
        let req = Request::get("/bench")
            .header(http::header::HOST, "service2")
            .body(Body::empty())?;
        let resp = match &self.service {
            HopService::Bare(router) => router.clone().oneshot(req).await,
            HopService::Mesh(service) => service.clone().oneshot(req).await,
        };
        let resp = match resp {
            Ok(resp) => resp,
            Err(never) => match never {},
        };
        let status = resp.status();
        resp.into_body().collect().await?;
        Ok(status)
    }
}

/// The hop's config folder: service2 and service3 as ServiceEntries (their ports never dialled:
/// the in-process transport answers for every endpoint) and the benchmark's policy.
pub(crate) fn config_dir() -> Result<tempfile::TempDir, StartError> {
    let write = |path: &std::path::Path| {
        let path = path.to_owned();
        move |source| StartError::Write { path, source }
    };
    let dir = tempfile::tempdir().map_err(write(&std::env::temp_dir()))?;
    let never_dialled = |port| std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut registry = service_entry("service2", &[(never_dialled(18102), "v1")]);
    registry.push_str(&service_entry("service3", &[(never_dialled(18103), "v1")]));
    let (registry_file, policy_file) = (
        dir.path().join("00-registry.yaml"),
        dir.path().join("10-policy.yaml"),
    );
    std::fs::write(&registry_file, registry).map_err(write(&registry_file))?;
    std::fs::write(&policy_file, BENCH_POLICY).map_err(write(&policy_file))?;
    Ok(dir)
}
