//! Discovery from Services, `discovery.k8s.io/v1` EndpointSlices and Pods, behind mesh-core's
//! [`Discovery`] trait.
//!
//! Only the hosts the app's routes reach are watched (as Istio's `Sidecar` scoping does by
//! hand): for each, its Service (field selector `metadata.name`), its EndpointSlices (label
//! selector `kubernetes.io/service-name=<svc>`) and its Pods (the Service's own selector), in
//! its namespace. Watches start and stop as [`KubeDiscovery::set_hosts`] changes the set, so the
//! watch load grows with what the app calls, not with the cluster.
//!
//! Mapping, as Istio's Kubernetes registry does: host `name.namespace.svc.cluster.local`; port
//! protocol from `appProtocol`, else the port-name prefix; a Service port maps to the slice port
//! of the same name; endpoints not ready are left out unless the Service publishes not-ready
//! addresses; labels are the Pod's (found through the slice's `targetRef`, an endpoint waiting
//! for its Pod until it arrives); the Pod's service account and `security.istio.io/tlsMode`
//! label are carried on the endpoint ([`KubeEndpoint`]); an address listed in two slices counts
//! once; slices of another address type (FQDN) are skipped.

mod build;
mod host;
mod merge;
mod reach;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use mesh_core::policy::Labels;
use mesh_core::registry::{Discovery, Services};
use mesh_core::watch::ConfigStore;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use build::{KubeEndpoint, KubeService, TLS_MODE_LABEL, build, protocol, service_of};
pub use merge::MergedDiscovery;
pub use reach::{gateway_hosts, hosts_reached};

use crate::status::{Readiness, WatchPhase};
use host::ServiceRef;

/// The readiness entry of [`KubeDiscovery::follow_config`].
pub const HOSTS_FOLLOWED: &str = "endpoint watches of the hosts the routes reach";

/// What the host tasks share.
pub(crate) struct Shared {
    services: Mutex<BTreeMap<ServiceRef, KubeService>>,
    out: watch::Sender<Arc<Services>>,
    detail: watch::Sender<Arc<Vec<KubeService>>>,
    readiness: Readiness,
    /// The namespace of the app whose calls these are (for the exportTo annotation).
    viewer: Mutex<Option<String>>,
}

impl Shared {
    /// Sets (or with `None` removes) one host's service and publishes everything.
    fn update(&self, svc: &ServiceRef, built: Option<KubeService>) {
        let mut services = self.services.lock().unwrap_or_else(|e| e.into_inner());
        let changed = match built {
            Some(b) => services.insert(svc.clone(), b.clone()) != Some(b),
            None => services.remove(svc).is_some(),
        };
        if changed {
            self.publish(&services);
        }
    }

    fn publish(&self, services: &BTreeMap<ServiceRef, KubeService>) {
        let detail: Vec<KubeService> = services.values().cloned().collect();
        // a Service whose exportTo annotation leaves the app's namespace out is not seen
        let viewer = self
            .viewer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let out: Services = detail
            .iter()
            .filter(|s| {
                viewer
                    .as_deref()
                    .is_none_or(|v| s.export_to.allows(&s.namespace, v))
            })
            .map(KubeService::to_service)
            .collect();
        self.out.send_replace(Arc::new(out));
        self.detail.send_replace(Arc::new(detail));
    }
}

/// Endpoints of the watched hosts, from the API server; dropping it stops every watch.
pub struct KubeDiscovery {
    client: kube::Client,
    shared: Arc<Shared>,
    hosts: Mutex<BTreeMap<ServiceRef, JoinHandle<()>>>,
}

impl fmt::Debug for KubeDiscovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubeDiscovery")
            .field("hosts", &self.watched())
            .finish_non_exhaustive()
    }
}

impl KubeDiscovery {
    /// A source watching no host yet; its watches report into `readiness`.
    pub fn new(client: kube::Client, readiness: Readiness) -> Self {
        Self {
            client,
            shared: Arc::new(Shared {
                services: Mutex::new(BTreeMap::new()),
                out: watch::Sender::new(Arc::new(Vec::new())),
                detail: watch::Sender::new(Arc::new(Vec::new())),
                readiness,
                viewer: Mutex::new(None),
            }),
            hosts: Mutex::new(BTreeMap::new()),
        }
    }

    /// Watches exactly these hosts (`name.ns.svc.cluster.local`, or short names in `namespace`);
    /// other hosts (ServiceEntries, external names) are ignored. Watches of hosts no longer in
    /// the set stop and their endpoints go. Needs a Tokio runtime.
    pub fn set_hosts<I, S>(&self, hosts: I, namespace: &str)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        *self.shared.viewer.lock().unwrap_or_else(|e| e.into_inner()) = Some(namespace.to_owned());
        let wanted: std::collections::BTreeSet<ServiceRef> = hosts
            .into_iter()
            .filter_map(|h| service_of(h.as_ref(), namespace))
            .collect();
        let mut running = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        let gone: Vec<ServiceRef> = running
            .keys()
            .filter(|k| !wanted.contains(*k))
            .cloned()
            .collect();
        for svc in gone {
            if let Some(task) = running.remove(&svc) {
                task.abort();
            }
            for name in host::watch_names(&svc) {
                self.shared.readiness.remove(&name);
            }
            self.shared.update(&svc, None);
            tracing::info!(service = %svc.0, namespace = %svc.1, "stopped watching endpoints");
        }
        for svc in wanted {
            if running.contains_key(&svc) {
                continue;
            }
            for name in host::watch_names(&svc) {
                self.shared.readiness.set(&name, WatchPhase::Syncing);
            }
            tracing::info!(service = %svc.0, namespace = %svc.1, "watching endpoints");
            let task = tokio::spawn(host::run(
                self.client.clone(),
                svc.clone(),
                self.shared.clone(),
            ));
            running.insert(svc, task);
        }
    }

    /// The hosts watched, as `name.namespace.svc.cluster.local`.
    pub fn watched(&self) -> Vec<String> {
        self.hosts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .map(|(name, ns)| format!("{name}.{ns}.{}", mesh_core::load::CLUSTER_DOMAIN))
            .collect()
    }

    /// Every watched Service with its endpoints, identities and tlsMode included.
    pub fn services(&self) -> Arc<Vec<KubeService>> {
        self.shared.detail.borrow().clone()
    }

    /// A receiver of [`services`](Self::services), marked changed when they change.
    pub fn subscribe_detail(&self) -> watch::Receiver<Arc<Vec<KubeService>>> {
        self.shared.detail.subscribe()
    }

    /// Keeps the watched hosts equal to [`hosts_reached`] from `calls` and, for a gateway, from
    /// the [`gateway_hosts`] its Pod `labels` select, through the config in `store` (re-computed
    /// on every reload), for an app in `namespace`. The readiness entry [`HOSTS_FOLLOWED`] is
    /// syncing until the hosts of the first config stored (generation 2 on) are watched, so the
    /// app is not ready in the moment between a config arriving and its hosts' watches
    /// starting. Needs a Tokio runtime; the task ends when the store or this source goes away.
    pub fn follow_config(
        self: &Arc<Self>,
        store: &ConfigStore,
        namespace: &str,
        calls: Vec<String>,
        labels: Labels,
    ) -> JoinHandle<()> {
        let this = Arc::downgrade(self);
        let store = store.clone();
        let namespace = namespace.to_owned();
        let mut changes = store.subscribe();
        let readiness = self.shared.readiness.clone();
        readiness.set(HOSTS_FOLLOWED, WatchPhase::Syncing);
        tokio::spawn(async move {
            loop {
                let generation = store.generation();
                let config = store.load();
                let mut roots = calls.clone();
                roots.extend(gateway_hosts(&config, &labels));
                let hosts = hosts_reached(&config, &namespace, &roots);
                match this.upgrade() {
                    Some(d) => d.set_hosts(hosts, &namespace),
                    None => return,
                }
                if generation > 1 {
                    readiness.synced(HOSTS_FOLLOWED);
                }
                if changes.changed().await.is_err() {
                    return;
                }
            }
        })
    }
}

impl Drop for KubeDiscovery {
    fn drop(&mut self) {
        for task in self
            .hosts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
        {
            task.abort();
        }
    }
}

impl Discovery for KubeDiscovery {
    fn subscribe(&self) -> watch::Receiver<Arc<Services>> {
        self.shared.out.subscribe()
    }
}

#[cfg(test)]
mod tests;
