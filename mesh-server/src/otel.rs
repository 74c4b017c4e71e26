//! Process-wide tracing setup for mesh applications: structured logs to stderr and, when the
//! standard OTLP environment variables name a collector, OpenTelemetry spans exported over
//! OTLP/HTTP (protobuf).
//!
//! | variable | effect |
//! | --- | --- |
//! | `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` | full URL spans are posted to (e.g. `http://collector:4318/v1/traces`) |
//! | `OTEL_EXPORTER_OTLP_ENDPOINT` | base URL; `/v1/traces` is appended |
//! | `OTEL_SDK_DISABLED=true`, `OTEL_TRACES_EXPORTER=none` | no export even with an endpoint |
//! | `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG` | the SDK's sampler; default parent-based, ratio [`TracingOptions::sample_ratio`] (1%) |
//! | `OTEL_SERVICE_NAME` | overrides the service name given in code |
//! | `RUST_LOG` | log filter (default [`TracingOptions::default_log_level`]); spans are exported whatever it says |
//!
//! Without an endpoint no OpenTelemetry layer is installed: the mesh layers then propagate
//! trace headers with ids of their own and no span is recorded anywhere but the logs.
//!
//! The exporter uses reqwest's blocking client on the batch processor's own thread; flushing
//! and shutting down happen on a plain thread, never on a runtime worker.
//!
//! ```no_run
//! let _guard = mesh_server::otel::init_tracing("service1").expect("tracing setup");
//! // ... run the app; dropping the guard flushes pending spans.
//! ```

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_subscriber::Layer as _;
use tracing_subscriber::Registry;
use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Options of [`init_tracing_with`].
#[derive(Clone, Debug)]
pub struct TracingOptions {
    /// `service.name` of exported spans (`OTEL_SERVICE_NAME` wins when set).
    pub service_name: String,
    /// Ratio of new traces sampled (parent-based: a caller's decision is followed). Istio's
    /// default is 1%. Ignored when `OTEL_TRACES_SAMPLER` is set.
    pub sample_ratio: f64,
    /// Log with `tracing-subscriber`'s fmt layer, to stderr, with colour codes only when stderr
    /// is a terminal (a log file or a CI log gets plain text).
    pub logs: bool,
    /// The log filter when `RUST_LOG` is unset (e.g. `info`).
    pub default_log_level: String,
    /// Resource attributes of exported spans besides `service.name`: the workload, as Istio's
    /// sidecars tag every span (`istio.canonical_service`, `istio.canonical_revision`,
    /// `istio.namespace`, `istio.mesh_id`); see [`TracingOptions::workload`].
    pub resource: Vec<(&'static str, String)>,
}

impl TracingOptions {
    /// Defaults for `service_name`: 1% sampling, logs on.
    pub fn new(service_name: impl Into<String>) -> Self {
        TracingOptions {
            service_name: service_name.into(),
            sample_ratio: mesh_telemetry::DEFAULT_SAMPLE_RATIO,
            logs: true,
            default_log_level: "info".to_owned(),
            resource: Vec::new(),
        }
    }

    /// Tags spans with the workload as Istio's sidecars do: its canonical service (the `app`
    /// label), canonical revision (`version`), namespace and mesh id (the trust domain,
    /// `cluster.local` by default).
    pub fn workload(mut self, app: &str, version: &str, namespace: &str, mesh_id: &str) -> Self {
        self.resource.extend([
            ("istio.canonical_service", app.to_owned()),
            ("istio.canonical_revision", version.to_owned()),
            ("istio.namespace", namespace.to_owned()),
            ("istio.mesh_id", mesh_id.to_owned()),
        ]);
        self
    }
}

/// Tracing setup failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OtelError {
    /// The OTLP exporter could not be built (bad endpoint URL, ...).
    #[error("otlp exporter: {0}")]
    Exporter(String),
    /// A global subscriber was already installed.
    #[error("tracing subscriber: {0}")]
    Subscriber(String),
}

/// Keeps the exporter alive; dropping it flushes and shuts the exporter down (off the runtime).
#[derive(Debug)]
#[must_use = "dropping the guard stops span export"]
pub struct TracingGuard {
    provider: Option<SdkTracerProvider>,
}

impl TracingGuard {
    /// Whether spans are exported (an OTLP endpoint was configured).
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Flushes and shuts down the exporter without blocking the async runtime.
    pub async fn shutdown(mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = tokio::task::spawn_blocking(move || shutdown_provider(&provider)).await;
        }
    }
}

impl Drop for TracingGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            // A plain thread: blocking is fine there whether or not we are inside a runtime.
            let joined = std::thread::spawn(move || shutdown_provider(&provider)).join();
            if joined.is_err() {
                eprintln!("otel: span exporter shutdown panicked");
            }
        }
    }
}

fn shutdown_provider(provider: &SdkTracerProvider) {
    if let Err(error) = provider.force_flush() {
        eprintln!("otel: flushing spans failed: {error}");
    }
    if let Err(error) = provider.shutdown() {
        eprintln!("otel: exporter shutdown failed: {error}");
    }
}

fn env_set(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.trim().is_empty())
}

/// Whether the environment asks for OTLP span export.
pub fn otlp_configured() -> bool {
    let endpoint =
        env_set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") || env_set("OTEL_EXPORTER_OTLP_ENDPOINT");
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"))
        || std::env::var("OTEL_TRACES_EXPORTER").is_ok_and(|v| v.eq_ignore_ascii_case("none"));
    endpoint && !disabled
}

/// [`init_tracing_with`] with default options.
pub fn init_tracing(service_name: &str) -> Result<TracingGuard, OtelError> {
    init_tracing_with(TracingOptions::new(service_name))
}

/// Installs the global `tracing` subscriber: fmt logs filtered by `RUST_LOG`, plus an
/// OpenTelemetry layer exporting over OTLP/HTTP when [`otlp_configured`].
pub fn init_tracing_with(options: TracingOptions) -> Result<TracingGuard, OtelError> {
    let provider = if otlp_configured() {
        Some(build_provider(&options)?)
    } else {
        None
    };
    // The layers in a list, not as `Option`s: a layer that is `None` says it wants every span
    // (`Interest::always`), so the registry would make each request span (and its slab slot,
    // enter, exit and close) for nobody: some 7k instructions per hop. An empty list, or a fmt
    // layer whose filter keeps request spans out, leaves them disabled.
    let mut layers: Vec<Box<dyn tracing_subscriber::Layer<Registry> + Send + Sync>> = Vec::new();
    if options.logs {
        use std::io::IsTerminal as _;
        let filter = EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| EnvFilter::new(&options.default_log_level));
        let filter = mesh_telemetry::quiet_request_spans(filter);
        layers.push(Box::new(
            tracing_subscriber::fmt::layer()
                .with_ansi(std::io::stderr().is_terminal())
                .with_writer(std::io::stderr)
                .with_filter(filter),
        ));
    }
    if let Some(p) = &provider {
        layers.push(Box::new(
            tracing_opentelemetry::layer()
                .with_tracer(p.tracer("mesh"))
                .with_filter(LevelFilter::INFO),
        ));
    }
    tracing_subscriber::registry()
        .with(layers)
        .try_init()
        .map_err(|e| OtelError::Subscriber(e.to_string()))?;
    if let Some(p) = &provider {
        opentelemetry::global::set_tracer_provider(p.clone());
    }
    Ok(TracingGuard { provider })
}

/// Builds the tracer provider (on a plain thread: the blocking HTTP client must not be created
/// or dropped on a runtime worker).
fn build_provider(options: &TracingOptions) -> Result<SdkTracerProvider, OtelError> {
    let service_name = std::env::var("OTEL_SERVICE_NAME")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| options.service_name.clone());
    let ratio = options.sample_ratio.clamp(0.0, 1.0);
    let use_env_sampler = env_set("OTEL_TRACES_SAMPLER");
    let attributes: Vec<opentelemetry::KeyValue> = options
        .resource
        .iter()
        .map(|(k, v)| opentelemetry::KeyValue::new(*k, v.clone()))
        .collect();
    let built = std::thread::spawn(move || {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()
            .map_err(|e| OtelError::Exporter(e.to_string()))?;
        let mut builder = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                Resource::builder()
                    .with_service_name(service_name)
                    .with_attributes(attributes)
                    .build(),
            );
        if !use_env_sampler {
            builder = builder.with_sampler(Sampler::ParentBased(Box::new(
                Sampler::TraceIdRatioBased(ratio),
            )));
        }
        Ok(builder.build())
    })
    .join();
    built.unwrap_or_else(|_| Err(OtelError::Exporter("exporter setup panicked".to_owned())))
}
