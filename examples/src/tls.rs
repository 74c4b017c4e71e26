//! The app's workload certificate (`--certs DIR`): Istio's file layout, watched, the last good
//! set kept, its state shown in `/config_dump`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use mesh_tls::source::WatchOptions;
use mesh_tls::{CertSource, DirWatcher, MeshTls};
use serde_json::{Value, json};

/// The workload certificate of one app; cheap to clone.
#[derive(Clone)]
pub struct WorkloadTls {
    tls: MeshTls,
    dir: Option<PathBuf>,
    _watcher: Option<Arc<DirWatcher>>,
}

impl std::fmt::Debug for WorkloadTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkloadTls")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl WorkloadTls {
    /// Keeps the trust domain aliases of the certificate's TLS settings equal to the mesh
    /// config's `trustDomain` and `trustDomainAliases` (ConfigMap `istio-system/istio`, in a
    /// folder or through the API server), now and at each config change (needs a Tokio runtime).
    pub fn follow_trust_domains(&self, store: &mesh_core::watch::ConfigStore) {
        fn apply(tls: &MeshTls, config: &mesh_core::policy::MeshConfig) {
            let settings = &config.mesh;
            let domains = settings
                .trust_domain
                .iter()
                .chain(&settings.trust_domain_aliases)
                .filter_map(|d| mesh_tls::TrustDomain::new(d).ok());
            tls.set_trust_domain_aliases(domains);
        }
        apply(&self.tls, &store.snapshot());
        let (tls, store, mut changes) = (self.tls.clone(), store.clone(), store.subscribe());
        tokio::spawn(async move {
            while changes.changed().await.is_ok() {
                apply(&tls, &store.snapshot());
            }
        });
    }

    /// Loads `dir` now and watches it (needs a Tokio runtime). A bad or missing set is logged
    /// and shown in [`WorkloadTls::view`]; the app starts anyway, without a certificate until a
    /// good set arrives.
    pub fn watch(dir: &Path) -> Self {
        let source = CertSource::empty();
        let watcher = DirWatcher::spawn(dir, source.clone(), WatchOptions::default());
        if let Some(error) = source.status().last_error {
            tracing::warn!(%error, "workload certificate not loaded yet");
        }
        Self {
            tls: MeshTls::new(source),
            dir: Some(dir.to_owned()),
            _watcher: Some(Arc::new(watcher)),
        }
    }

    /// No certificate at all (no `--certs`): PERMISSIVE ports serve plaintext, STRICT ones
    /// refuse every connection.
    pub fn none() -> Self {
        Self {
            tls: MeshTls::new(CertSource::empty()),
            dir: None,
            _watcher: None,
        }
    }

    /// The TLS settings built on the certificate.
    pub fn mesh_tls(&self) -> &MeshTls {
        &self.tls
    }

    /// The folder given with `--certs`.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The current identity as a `spiffe://` URI, when a certificate is loaded.
    pub fn identity(&self) -> Option<String> {
        self.tls
            .source()
            .current()
            .map(|c| c.identity().to_string())
    }

    /// The certificate's state for `/config_dump`: the folder, the identity, serial and expiry
    /// of the set in use, and the last refused set's error.
    pub fn view(&self) -> Value {
        let source = self.tls.source();
        let status = source.status();
        let current = source.current().map(|c| {
            json!({
                "identity": c.identity().to_string(),
                "serial": c.serial(),
                "not_after_unix": unix(c.not_after()),
            })
        });
        json!({
            "dir": self.dir.as_ref().map(|d| d.display().to_string()),
            "current": current,
            "published": status.published,
            "last_error": status.last_error.as_ref().map(ToString::to_string),
            "last_error_at_unix": status.last_error_at.map(unix),
        })
    }
}

/// Istio's agent's gauge: seconds left before the workload certificate in use expires
/// (negative once expired), read from the current set at each scrape; absent without one.
pub const CERT_EXPIRY_METRIC: &str = "istio_agent_cert_expiry_seconds";

#[derive(Debug)]
struct CertExpiry(CertSource);

impl prometheus_client::collector::Collector for CertExpiry {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        let Some(current) = self.0.current() else {
            return Ok(());
        };
        let now = SystemTime::now();
        let left = match current.not_after().duration_since(now) {
            Ok(d) => d.as_secs_f64(),
            Err(e) => -e.duration().as_secs_f64(),
        };
        let gauge = prometheus_client::metrics::gauge::ConstGauge::new(left.floor());
        let metric = encoder.encode_descriptor(
            CERT_EXPIRY_METRIC,
            "The time remaining, in seconds, before the certificate chain will expire. A negative value indicates the cert is expired.",
            None,
            gauge.metric_type(),
        )?;
        gauge.encode(metric)
    }
}

impl WorkloadTls {
    /// Reports the certificate's time to expiry as [`CERT_EXPIRY_METRIC`] in `metrics`.
    pub fn register_metrics(&self, metrics: &mesh_telemetry::MeshMetrics) {
        let source = self.tls.source().clone();
        metrics.with_registry(|r| r.register_collector(Box::new(CertExpiry(source))));
    }
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
