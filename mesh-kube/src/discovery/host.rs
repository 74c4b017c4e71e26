//! One host's watches: its Service (by name), its EndpointSlices (label
//! `kubernetes.io/service-name`) and its Pods (the Service's selector), combined into a
//! [`KubeService`] after every change.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};

use super::Shared;
use super::build::build;
use crate::status::WatchPhase;

/// `(name, namespace)` of a Service.
pub(crate) type ServiceRef = (String, String);

type Events<K> = BoxStream<'static, Result<watcher::Event<K>, watcher::Error>>;

/// The readiness names of a host's three watches.
pub(crate) fn watch_names(svc: &ServiceRef) -> [String; 3] {
    let (name, ns) = svc;
    [
        format!("Service {ns}/{name}"),
        format!("EndpointSlices {ns}/{name}"),
        format!("Pods {ns}/{name}"),
    ]
}

fn watch<K>(api: Api<K>, config: watcher::Config) -> Events<K>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    watcher(api, config).default_backoff().boxed()
}

/// Objects of one watch by name, with the buffer of a list in progress.
struct Mirror<K> {
    objects: BTreeMap<String, K>,
    listing: Option<BTreeMap<String, K>>,
}

impl<K: Resource + Clone> Mirror<K> {
    fn new() -> Self {
        Self {
            objects: BTreeMap::new(),
            listing: None,
        }
    }

    /// Applies one event; true when the objects changed (a list completed, an object changed);
    /// an error is recorded in the readiness and the watcher goes on (with backoff).
    fn apply(
        &mut self,
        item: Result<watcher::Event<K>, watcher::Error>,
        name: &str,
        shared: &Shared,
    ) -> bool {
        match item {
            Ok(watcher::Event::Init) => {
                self.listing = Some(BTreeMap::new());
                false
            }
            Ok(watcher::Event::InitApply(o)) => {
                if let Some(l) = self.listing.as_mut() {
                    l.insert(o.name_any(), o);
                }
                false
            }
            Ok(watcher::Event::InitDone) => {
                self.objects = self.listing.take().unwrap_or_default();
                shared.readiness.synced(name);
                true
            }
            Ok(watcher::Event::Apply(o)) => {
                self.objects.insert(o.name_any(), o);
                true
            }
            Ok(watcher::Event::Delete(o)) => {
                self.objects.remove(&o.name_any());
                true
            }
            Err(e) => {
                shared.readiness.error(name, &e);
                false
            }
        }
    }
}

async fn next<S: Stream + Unpin>(s: &mut Option<S>) -> Option<S::Item> {
    match s {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

/// The Service's selector as a label selector string (`None` without a selector).
fn selector(service: Option<&Service>) -> Option<String> {
    let selector = service?.spec.as_ref()?.selector.as_ref()?;
    if selector.is_empty() {
        return None;
    }
    Some(
        selector
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(","),
    )
}

/// Watches one host until aborted.
pub(crate) async fn run(client: kube::Client, svc: ServiceRef, shared: Arc<Shared>) {
    let (name, ns) = svc.clone();
    let [svc_watch, slice_watch, pod_watch] = watch_names(&svc);
    let mut services = Some(watch(
        Api::<Service>::namespaced(client.clone(), &ns),
        watcher::Config::default().fields(&format!("metadata.name={name}")),
    ));
    let mut slices = Some(watch(
        Api::<EndpointSlice>::namespaced(client.clone(), &ns),
        watcher::Config::default().labels(&format!("kubernetes.io/service-name={name}")),
    ));
    let mut pods: Option<Events<Pod>> = None;
    let mut pod_selector: Option<String> = None;
    let (mut svc_m, mut slice_m, mut pod_m) = (Mirror::new(), Mirror::new(), Mirror::new());
    loop {
        let changed = tokio::select! {
            Some(item) = next(&mut services) => {
                let changed = svc_m.apply(item, &svc_watch, &shared);
                let wanted = selector(svc_m.objects.get(&name));
                if changed && wanted != pod_selector {
                    pod_m = Mirror::new();
                    pods = wanted.as_ref().map(|s| {
                        shared.readiness.set(&pod_watch, WatchPhase::Syncing);
                        watch(Api::<Pod>::namespaced(client.clone(), &ns), watcher::Config::default().labels(s))
                    });
                    pod_selector = wanted;
                }
                if changed && pod_selector.is_none() {
                    // no selector (or no Service): no Pods to watch
                    shared.readiness.synced(&pod_watch);
                }
                changed
            }
            Some(item) = next(&mut slices) => slice_m.apply(item, &slice_watch, &shared),
            Some(item) = next(&mut pods) => pod_m.apply(item, &pod_watch, &shared),
        };
        if changed {
            let built = svc_m
                .objects
                .get(&name)
                .map(|s| build(s, &slice_m.objects, &pod_m.objects));
            shared.update(&svc, built);
        }
    }
}
