//! Istio's standard metric labels, interned so that recording a request costs no formatting.
//!
//! Everything about *who talks to whom* (workloads, services, versions, principals) lives in a
//! [`PeerLabels`] value that is built once per pair of peers and shared through an `Arc`; its hash
//! is computed once at construction. What changes per request (response code, flags, protocol,
//! gRPC status) sits beside it in [`RequestLabels`].

use std::borrow::Cow;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use mesh_core::policy::Labels;
use prometheus_client::encoding::{EncodeLabel, EncodeLabelSet, LabelSetEncoder};

use super::series::SeriesCache;

/// The value Istio writes for a label it cannot fill.
pub const UNKNOWN: &str = "unknown";

/// Istio's default cluster name (`values.global.multiCluster.clusterName` unset): what the
/// `source_cluster`/`destination_cluster` labels say of a known workload unless configured.
/// Kiali drops series whose cluster is `unknown`.
pub const DEFAULT_CLUSTER: &str = "Kubernetes";

/// The workload name Kubernetes would give a Deployment of these labels in a folder set-up:
/// `<app>-<version>` (`service2-v1`), else the `app` label, else `fallback`. In Kubernetes the
/// owning Deployment's name is used instead.
pub fn workload_name<'a>(labels: &'a Labels, fallback: &'a str) -> Cow<'a, str> {
    let get = |k: &str| labels.get(k).map(String::as_str).filter(|v| !v.is_empty());
    match (get("app"), get("version")) {
        (Some(app), Some(version)) => Cow::Owned(format!("{app}-{version}")),
        (Some(app), None) => Cow::Borrowed(app),
        _ => Cow::Borrowed(fallback),
    }
}

/// Which side of a call recorded a metric (Istio's `reporter` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reporter {
    /// The caller (`reporter="source"`): the client layer.
    Source,
    /// The callee (`reporter="destination"`): the server layer.
    Destination,
}

impl Reporter {
    /// Istio's label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Reporter::Source => "source",
            Reporter::Destination => "destination",
        }
    }
}

/// One workload's identity, as Istio derives it from pod metadata.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WorkloadLabels {
    /// Workload name (Istio: the Deployment name, e.g. `service2-v1`).
    pub workload: Arc<str>,
    /// Namespace.
    pub namespace: Arc<str>,
    /// The `app` label.
    pub app: Arc<str>,
    /// The `version` label.
    pub version: Arc<str>,
    /// Identity (SPIFFE id with mTLS); `unknown` without it.
    pub principal: Arc<str>,
    /// Canonical service (`service.istio.io/canonical-name`, else `app`, else the workload).
    pub canonical_service: Arc<str>,
    /// Canonical revision (`service.istio.io/canonical-revision`, else `version`, else `latest`).
    pub canonical_revision: Arc<str>,
    /// Cluster name.
    pub cluster: Arc<str>,
}

impl WorkloadLabels {
    /// A workload nobody knows anything about: every field `unknown` (canonical revision
    /// `latest`, as Istio writes it).
    pub fn unknown() -> Self {
        let u: Arc<str> = Arc::from(UNKNOWN);
        WorkloadLabels {
            workload: u.clone(),
            namespace: u.clone(),
            app: u.clone(),
            version: u.clone(),
            principal: u.clone(),
            canonical_service: u.clone(),
            canonical_revision: Arc::from("latest"),
            cluster: u,
        }
    }

    /// A workload named `workload` with pod `labels` (`app`, `version`, and Istio's
    /// `service.istio.io/canonical-*` labels are read), in `namespace` (`unknown` when `None`),
    /// in cluster [`DEFAULT_CLUSTER`].
    pub fn from_labels(workload: &str, namespace: Option<&str>, labels: &Labels) -> Self {
        let get = |k: &str| labels.get(k).map(String::as_str).filter(|v| !v.is_empty());
        let app = get("app").unwrap_or(UNKNOWN);
        let version = get("version").unwrap_or(UNKNOWN);
        let canonical_service = get("service.istio.io/canonical-name")
            .or_else(|| get("app"))
            .unwrap_or(workload);
        let canonical_revision = get("service.istio.io/canonical-revision")
            .or_else(|| get("version"))
            .unwrap_or("latest");
        WorkloadLabels {
            workload: Arc::from(non_empty(workload)),
            namespace: Arc::from(namespace.map(non_empty).unwrap_or(UNKNOWN)),
            app: Arc::from(app),
            version: Arc::from(version),
            principal: Arc::from(UNKNOWN),
            canonical_service: Arc::from(canonical_service),
            canonical_revision: Arc::from(canonical_revision),
            cluster: Arc::from(DEFAULT_CLUSTER),
        }
    }
}

fn non_empty(s: &str) -> &str {
    if s.is_empty() { UNKNOWN } else { s }
}

/// The destination service as Istio names it: the host, its short name and its namespace.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServiceLabels {
    /// `destination_service`: the host as addressed (`service2`, `reviews.default.svc.cluster.local`).
    pub service: Arc<str>,
    /// `destination_service_name`: the first DNS label of the host.
    pub name: Arc<str>,
    /// `destination_service_namespace`: the second DNS label when the host is a Kubernetes
    /// service name (`name.namespace[.svc...]`), else `unknown`.
    pub namespace: Arc<str>,
}

impl ServiceLabels {
    /// Labels for `host` (a port suffix `:8080` is dropped).
    pub fn from_host(host: &str) -> Self {
        let host = strip_port(host);
        let mut parts = host.split('.');
        let name = parts.next().filter(|s| !s.is_empty()).unwrap_or(UNKNOWN);
        let namespace = match (parts.next(), parts.next()) {
            (Some(ns), None | Some("svc")) if !ns.is_empty() => ns,
            _ => UNKNOWN,
        };
        ServiceLabels {
            service: Arc::from(if host.is_empty() { UNKNOWN } else { host }),
            name: Arc::from(name),
            namespace: Arc::from(namespace),
        }
    }

    /// `unknown` everywhere.
    pub fn unknown() -> Self {
        let u: Arc<str> = Arc::from(UNKNOWN);
        ServiceLabels {
            service: u.clone(),
            name: u.clone(),
            namespace: u,
        }
    }
}

fn strip_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((h, port)) if !h.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// Everything that identifies a pair of peers: built once, shared by every request between them.
#[derive(Debug)]
pub struct PeerLabels {
    reporter: Reporter,
    source: WorkloadLabels,
    destination: WorkloadLabels,
    service: ServiceLabels,
    connection_security_policy: &'static str,
    hash: u64,
    series: SeriesCache,
}

impl PeerLabels {
    /// Builds (and hashes, once) the labels of `source` calling `service` served by `destination`.
    pub fn new(
        reporter: Reporter,
        source: WorkloadLabels,
        destination: WorkloadLabels,
        service: ServiceLabels,
    ) -> Arc<Self> {
        Self::with_security(reporter, source, destination, service, false)
    }

    /// [`PeerLabels::new`] for a connection that is (`mutual_tls`) or is not mutual TLS:
    /// `connection_security_policy` is `mutual_tls` then.
    pub fn with_security(
        reporter: Reporter,
        source: WorkloadLabels,
        destination: WorkloadLabels,
        service: ServiceLabels,
        mutual_tls: bool,
    ) -> Arc<Self> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (reporter, &source, &destination, &service, mutual_tls).hash(&mut h);
        // Istio reports `unknown` on the source side and `none` on the destination side when
        // the connection is plain text.
        let connection_security_policy = match (mutual_tls, reporter) {
            (true, _) => "mutual_tls",
            (false, Reporter::Source) => UNKNOWN,
            (false, Reporter::Destination) => "none",
        };
        Arc::new(PeerLabels {
            reporter,
            source,
            destination,
            service,
            connection_security_policy,
            hash: h.finish(),
            series: SeriesCache::default(),
        })
    }

    /// The reporter.
    pub fn reporter(&self) -> Reporter {
        self.reporter
    }

    /// The calling workload.
    pub fn source(&self) -> &WorkloadLabels {
        &self.source
    }

    /// The called workload.
    pub fn destination(&self) -> &WorkloadLabels {
        &self.destination
    }

    /// The called service.
    pub fn service(&self) -> &ServiceLabels {
        &self.service
    }

    /// The request series recorded for these peers, cached (see [`SeriesCache`]).
    pub fn series(&self) -> &SeriesCache {
        &self.series
    }
}

impl PartialEq for PeerLabels {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash
            && self.reporter == other.reporter
            && self.source == other.source
            && self.destination == other.destination
            && self.service == other.service
            && self.connection_security_policy == other.connection_security_policy
    }
}

impl Eq for PeerLabels {}

impl Hash for PeerLabels {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// The full label set of one request series of Istio's standard metrics.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RequestLabels {
    /// Who called whom (shared).
    pub peers: Arc<PeerLabels>,
    /// `request_protocol`: `http` or `grpc`.
    pub protocol: &'static str,
    /// `response_code`: the HTTP status, `0` when no response was received.
    pub response_code: u16,
    /// `response_flags`: Envoy-style flags, `-` when none.
    pub response_flags: Cow<'static, str>,
    /// `grpc_response_status`: empty for plain HTTP.
    pub grpc_status: Option<u32>,
}

fn label(enc: &mut LabelSetEncoder<'_>, key: &str, value: &str) -> Result<(), std::fmt::Error> {
    (key, value).encode(enc.encode_label())
}

impl EncodeLabelSet for RequestLabels {
    fn encode(&self, enc: &mut LabelSetEncoder<'_>) -> Result<(), std::fmt::Error> {
        let p = &*self.peers;
        let (s, d) = (&p.source, &p.destination);
        ("response_code", self.response_code).encode(enc.encode_label())?;
        label(enc, "reporter", p.reporter.as_str())?;
        label(enc, "source_workload", &s.workload)?;
        label(enc, "source_workload_namespace", &s.namespace)?;
        label(enc, "source_principal", &s.principal)?;
        label(enc, "source_app", &s.app)?;
        label(enc, "source_version", &s.version)?;
        label(enc, "source_cluster", &s.cluster)?;
        label(enc, "destination_workload", &d.workload)?;
        label(enc, "destination_workload_namespace", &d.namespace)?;
        label(enc, "destination_principal", &d.principal)?;
        label(enc, "destination_app", &d.app)?;
        label(enc, "destination_version", &d.version)?;
        label(enc, "destination_service", &p.service.service)?;
        label(enc, "destination_service_name", &p.service.name)?;
        label(enc, "destination_service_namespace", &p.service.namespace)?;
        label(enc, "destination_cluster", &d.cluster)?;
        label(enc, "request_protocol", self.protocol)?;
        label(enc, "response_flags", &self.response_flags)?;
        match self.grpc_status {
            Some(g) => ("grpc_response_status", g).encode(enc.encode_label())?,
            None => label(enc, "grpc_response_status", "")?,
        }
        label(
            enc,
            "connection_security_policy",
            p.connection_security_policy,
        )?;
        label(enc, "source_canonical_service", &s.canonical_service)?;
        label(enc, "destination_canonical_service", &d.canonical_service)?;
        label(enc, "source_canonical_revision", &s.canonical_revision)?;
        label(enc, "destination_canonical_revision", &d.canonical_revision)?;
        Ok(())
    }
}

/// Envoy-style flags as one label value, without formatting in the common cases (none, one).
pub fn flags_label(flags: Option<&crate::flags::ResponseFlags>) -> Cow<'static, str> {
    let Some(flags) = flags else {
        return Cow::Borrowed("-");
    };
    let mut it = flags.iter();
    match (it.next(), it.next()) {
        (None, _) => Cow::Borrowed("-"),
        (Some(one), None) => Cow::Borrowed(one),
        _ => Cow::Owned(flags.to_label()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_labels_from_hosts() {
        let s = ServiceLabels::from_host("reviews.default.svc.cluster.local");
        assert_eq!(
            (&*s.service, &*s.name, &*s.namespace),
            ("reviews.default.svc.cluster.local", "reviews", "default")
        );
        let s = ServiceLabels::from_host("service2:8080");
        assert_eq!(
            (&*s.service, &*s.name, &*s.namespace),
            ("service2", "service2", UNKNOWN)
        );
        let s = ServiceLabels::from_host("ratings.prod");
        assert_eq!(&*s.namespace, "prod");
        let s = ServiceLabels::from_host("api.example.com");
        assert_eq!((&*s.name, &*s.namespace), ("api", UNKNOWN));
        let s = ServiceLabels::from_host("");
        assert_eq!((&*s.service, &*s.name), (UNKNOWN, UNKNOWN));
    }

    #[test]
    fn workload_labels_follow_istio_defaults() {
        let mut l = Labels::new();
        l.insert("app".into(), "service2".into());
        l.insert("version".into(), "v2".into());
        let w = WorkloadLabels::from_labels("service2-v2", Some("default"), &l);
        assert_eq!(&*w.app, "service2");
        assert_eq!(&*w.version, "v2");
        assert_eq!(&*w.canonical_service, "service2");
        assert_eq!(&*w.canonical_revision, "v2");
        let w = WorkloadLabels::from_labels("lonely", None, &Labels::new());
        assert_eq!(
            (&*w.app, &*w.version, &*w.namespace),
            (UNKNOWN, UNKNOWN, UNKNOWN)
        );
        assert_eq!(
            (&*w.canonical_service, &*w.canonical_revision),
            ("lonely", "latest")
        );
    }

    #[test]
    fn flags_without_allocation_for_zero_or_one() {
        let mut f = crate::flags::ResponseFlags::default();
        assert_eq!(flags_label(None), "-");
        assert_eq!(flags_label(Some(&f)), "-");
        f.insert("UO");
        assert!(matches!(flags_label(Some(&f)), Cow::Borrowed("UO")));
        f.insert("URX");
        assert_eq!(flags_label(Some(&f)), "UO,URX");
    }

    #[test]
    fn equal_peers_hash_equal() {
        let a = PeerLabels::new(
            Reporter::Source,
            WorkloadLabels::unknown(),
            WorkloadLabels::unknown(),
            ServiceLabels::from_host("a"),
        );
        let b = PeerLabels::new(
            Reporter::Source,
            WorkloadLabels::unknown(),
            WorkloadLabels::unknown(),
            ServiceLabels::from_host("a"),
        );
        let c = PeerLabels::new(
            Reporter::Destination,
            WorkloadLabels::unknown(),
            WorkloadLabels::unknown(),
            ServiceLabels::from_host("a"),
        );
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
