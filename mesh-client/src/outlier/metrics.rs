//! Counters of ejections and returns, labelled with the cluster and the endpoint.
//!
//! Istio's sidecar counts ejections per cluster only, so users cannot see *which* pod was
//! ejected; we label by endpoint as well. Register them with [`OutlierMetrics::register`].

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// Ejection and return counters (cheap to clone: shared `Arc`s inside).
#[derive(Clone, Debug, Default)]
pub struct OutlierMetrics {
    ejections: Family<Labels, Counter>,
    returns: Family<Labels, Counter>,
}

impl OutlierMetrics {
    /// Registers `mesh_outlier_ejections_total` and `mesh_outlier_returns_total`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "mesh_outlier_ejections",
            "Endpoints ejected by outlier detection, by cluster, endpoint and reason",
            self.ejections.clone(),
        );
        registry.register(
            "mesh_outlier_returns",
            "Ejected endpoints returned to the load-balancing set, by cluster and endpoint",
            self.returns.clone(),
        );
    }

    pub(crate) fn ejected(&self, cluster: &str, endpoint: &str, reason: &'static str) {
        let labels = vec![
            ("cluster", cluster.to_owned()),
            ("endpoint", endpoint.to_owned()),
            ("reason", reason.to_owned()),
        ];
        self.ejections.get_or_create(&labels).inc();
    }

    pub(crate) fn returned(&self, cluster: &str, endpoint: &str) {
        let labels = vec![
            ("cluster", cluster.to_owned()),
            ("endpoint", endpoint.to_owned()),
        ];
        self.returns.get_or_create(&labels).inc();
    }

    /// Ejections counted for `endpoint` in `cluster` with `reason`.
    pub fn ejections(&self, cluster: &str, endpoint: &str, reason: &'static str) -> u64 {
        let labels = vec![
            ("cluster", cluster.to_owned()),
            ("endpoint", endpoint.to_owned()),
            ("reason", reason.to_owned()),
        ];
        self.ejections.get(&labels).map_or(0, |c| c.get())
    }

    /// Returns counted for `endpoint` in `cluster`.
    pub fn returns(&self, cluster: &str, endpoint: &str) -> u64 {
        let labels = vec![
            ("cluster", cluster.to_owned()),
            ("endpoint", endpoint.to_owned()),
        ];
        self.returns.get(&labels).map_or(0, |c| c.get())
    }
}
