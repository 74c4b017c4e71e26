//! Starting an app: listeners, the admin listener, graceful shutdown.
//!
//! The binaries and the in-process lab (demo and tests) start apps the same way, through
//! [`start_service`] and [`crate::gateway::start_gateway`].

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use axum::Router;
use mesh_server::otel::{TracingGuard, TracingOptions};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::admin::{AdminSource, Ready, RequestCounter, admin_app};
use crate::app::{AppState, Faults, upstream_of};
use crate::cli::{ServiceArgs, default_addr};
use crate::mesh::{
    InboundStack, MeshRuntime, PlainAdmin, StartError, Workload, first_endpoint, load_config,
};
use crate::upstream::PlainUpstream;

/// A shutdown trigger shared by the apps of one process.
#[derive(Clone, Debug)]
pub struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A trigger not yet pulled.
    pub fn new() -> Self {
        Self {
            tx: Arc::new(watch::Sender::new(false)),
        }
    }

    /// Asks every app to stop accepting, finish in-flight requests and exit.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Completes once triggered.
    pub fn wait(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.tx.subscribe();
        async move {
            let _ = rx.wait_for(|stopped| *stopped).await;
        }
    }
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn os_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}

/// Binds `addr`.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}

/// Serves `router` on `listener` until `shutdown`, then lets in-flight requests finish.
pub fn spawn_serve(listener: TcpListener, router: Router, shutdown: &Shutdown) -> JoinHandle<()> {
    let stop = shutdown.wait();
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!(%e, "server stopped with an error");
        }
    })
}

/// Serves a mesh-wrapped service on `listener` with mesh-server's server (it tells the inbound
/// layers the caller's address) until `shutdown`, then lets in-flight requests finish.
///
/// With `tls`, each connection is accepted under the PeerAuthentication mode in force for the
/// workload and the listen port (mutual TLS and plaintext, or mutual TLS only).
pub fn spawn_serve_mesh(
    listener: TcpListener,
    service: InboundStack,
    tls: Option<mesh_server::server::InboundTls>,
    shutdown: &Shutdown,
) -> JoinHandle<()> {
    let stop = shutdown.wait();
    tokio::spawn(async move {
        let served = match tls {
            Some(tls) => mesh_server::server::serve_tls(listener, service, tls, stop).await,
            None => mesh_server::serve(listener, service, stop).await,
        };
        if let Err(e) = served {
            tracing::error!(%e, "server stopped with an error");
        }
    })
}

/// How to start one service.
#[derive(Clone, Debug)]
pub struct ServiceSpec {
    /// `service1`, `service2`, `service3`.
    pub name: String,
    /// `v1`, `v2`.
    pub version: String,
    /// Faults added on purpose.
    pub faults: Faults,
    /// No mesh layers (`--plain`).
    pub plain: bool,
    /// The config folder.
    pub config: PathBuf,
    /// `--certs` and `--namespace`.
    pub identity: crate::mesh::Identity,
}

/// A started app.
pub struct Started {
    /// Where it serves.
    pub addr: SocketAddr,
    /// Where its admin listener serves.
    pub admin: SocketAddr,
    /// The handler's state (request counts); `None` for the gateway.
    pub state: Option<Arc<AppState>>,
    /// Readiness, as `/healthz` reports it: cleared when shutting down.
    pub ready: Ready,
    /// The mesh runtime (`None` in `--plain` mode).
    pub mesh: Option<MeshRuntime>,
    /// The server tasks (app, admin): done once drained after shutdown.
    pub tasks: Vec<JoinHandle<()>>,
}

/// Starts a service on the given listeners; it stops when `shutdown` is triggered.
pub fn start_service(
    spec: &ServiceSpec,
    listener: TcpListener,
    admin: TcpListener,
    shutdown: &Shutdown,
) -> Result<Started, StartError> {
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: default_addr("127.0.0.1:0"),
        source,
    })?;
    let admin_addr = admin
        .local_addr()
        .map_err(|source| StartError::Bind { addr, source })?;
    let workload = Workload::new(&spec.name, &spec.version).in_namespace(&spec.identity.namespace);
    let ready = Ready::default();
    let (state, runtime, tasks) = if spec.plain {
        let config = load_config(&spec.config)?;
        // `--plain --certs`: the same bare app over TLS (the benchmark's TLS baseline).
        let tls = spec
            .identity
            .certs
            .as_deref()
            .map(crate::plain_tls::PlainTls::load)
            .transpose()?;
        let mut state = AppState::new(&spec.name, &spec.version).with_faults(spec.faults);
        let mut upstream_addr = None;
        if let Some(host) = upstream_of(&spec.name) {
            let ep = first_endpoint(&config, host).ok_or_else(|| StartError::NoEndpoint {
                dir: spec.config.clone(),
                host: host.to_owned(),
            })?;
            upstream_addr = Some(ep);
            let upstream: Arc<dyn crate::upstream::Upstream> = match &tls {
                Some(tls) => Arc::new(tls.upstream(ep)),
                None => Arc::new(PlainUpstream::new(ep)),
            };
            state = state.with_upstream(host, upstream);
        }
        let state = Arc::new(state);
        let counter = Arc::new(RequestCounter::new(&spec.name, &spec.version));
        let grpc_upstream = upstream_addr.map(crate::grpc::GrpcUpstream::plain);
        let router = crate::grpc::app(state.clone(), grpc_upstream).layer(
            axum::middleware::from_fn_with_state(counter.clone(), RequestCounter::middleware),
        );
        let source: Arc<dyn AdminSource> = Arc::new(PlainAdmin {
            counter,
            upstream: upstream_addr,
        });
        let tasks = vec![
            match &tls {
                Some(tls) => crate::plain_tls::spawn_serve(listener, router, tls, shutdown),
                None => spawn_serve(listener, router, shutdown),
            },
            spawn_serve(admin, admin_app(source, ready.clone()), shutdown),
        ];
        (state, None, tasks)
    } else {
        let mesh = MeshRuntime::start_with_certs(&spec.config, spec.identity.certs.as_deref())?;
        let mut state = AppState::new(&spec.name, &spec.version).with_faults(spec.faults);
        let mut grpc_upstream = None;
        if let Some(host) = upstream_of(&spec.name) {
            let (http, grpc) = mesh.clients(&workload);
            state = state.with_upstream(host, http);
            grpc_upstream = Some(crate::grpc::GrpcUpstream::mesh(host, grpc));
        }
        let state = Arc::new(state);
        let inbound = mesh.inbound_tls(&workload);
        let health = inbound.clone().map(|tls| (tls, addr.port()));
        let tasks = vec![
            spawn_serve_mesh(
                listener,
                mesh.server(crate::grpc::app(state.clone(), grpc_upstream), &workload),
                inbound,
                shutdown,
            ),
            spawn_serve(admin, mesh.admin_with(&ready, health), shutdown),
        ];
        (state, Some(mesh), tasks)
    };
    ready.set(true);
    tracing::info!(service = %spec.name, version = %spec.version, %addr, admin = %admin_addr, plain = spec.plain, "serving");
    Ok(Started {
        addr,
        admin: admin_addr,
        state: Some(state),
        ready,
        mesh: runtime,
        tasks,
    })
}

/// The `main` of service1, service2 and service3: flags, listeners, serve until SIGTERM or Ctrl-C.
pub async fn service_main(
    name: &str,
    version: &str,
    args: ServiceArgs,
    defaults: (&'static str, &'static str),
) -> ExitCode {
    let _tracing = init_tracing(name, version, &args.common.identity().namespace);
    let result = async {
        let spec = ServiceSpec {
            name: name.to_owned(),
            version: version.to_owned(),
            faults: args.faults()?,
            plain: args.plain,
            config: args.common.config.clone(),
            identity: args.common.identity(),
        };
        let listener = bind(
            args.common
                .listen
                .unwrap_or_else(|| default_addr(defaults.0)),
        )
        .await?;
        let admin = bind(
            args.common
                .admin
                .unwrap_or_else(|| default_addr(defaults.1)),
        )
        .await?;
        let shutdown = Shutdown::new();
        let started = if args.common.kube {
            let target = crate::kube::KubeTarget::from_env().await?;
            crate::kube::start_kube_service(&spec, &target, listener, admin, &shutdown).await?
        } else {
            start_service(&spec, listener, admin, &shutdown)?
        };
        Ok::<_, StartError>((started, shutdown))
    }
    .await;
    match result {
        Ok((started, shutdown)) => {
            os_signal().await;
            tracing::info!(service = %name, "shutting down: finishing in-flight requests");
            started.ready.set(false);
            shutdown.trigger();
            for t in started.tasks {
                let _ = t.await;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`), and exports spans over OTLP when
/// the standard `OTEL_EXPORTER_OTLP_*` variables name a collector, tagged with the workload as
/// Istio's sidecars tag theirs (`service.name` `<app>.<namespace>`, `istio.canonical_service`,
/// `istio.canonical_revision`, `istio.namespace`, `istio.mesh_id`). Keep the guard until the
/// app exits: dropping it flushes the spans still queued.
pub fn init_tracing(app: &str, version: &str, namespace: &str) -> Option<TracingGuard> {
    let options = TracingOptions::new(format!("{app}.{namespace}")).workload(
        app,
        version,
        namespace,
        mesh_tls::identity::CLUSTER_LOCAL,
    );
    start_tracing(options)
}

/// Logs to stderr, filtered by `RUST_LOG` (default `level`), with colour codes only when stderr
/// is a terminal (a log file or a CI log gets plain text); spans as [`init_tracing`] exports
/// them, under the service name `demo`.
pub fn init_tracing_at(level: &str) -> Option<TracingGuard> {
    let mut options = TracingOptions::new("demo");
    options.default_log_level = level.to_owned();
    start_tracing(options)
}

fn start_tracing(options: TracingOptions) -> Option<TracingGuard> {
    match mesh_server::otel::init_tracing_with(options) {
        Ok(guard) => Some(guard),
        Err(error) => {
            eprintln!("tracing: {error}");
            None
        }
    }
}
