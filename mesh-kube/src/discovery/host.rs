//! One host's watches: its Service (by name), its EndpointSlices (label
//! `kubernetes.io/service-name`) and its Pods (the Service's selector), combined into a
//! [`KubeService`] after every change.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};

use super::Shared;
use super::build::build;
use crate::status::{WatchPhase, is_auth};

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

/// A watcher that starts after `delay`.
fn watch<K>(api: Api<K>, config: watcher::Config, delay: Duration) -> Events<K>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let events = watcher(api, config).default_backoff();
    if delay.is_zero() {
        return events.boxed();
    }
    futures_util::stream::once(tokio::time::sleep(delay))
        .filter_map(|()| std::future::ready(None))
        .chain(events)
        .boxed()
}

/// What one event did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// The objects changed (a list completed, an object changed).
    Changed,
    /// Nothing to rebuild (list progress, or an error the watcher retries itself).
    Nothing,
    /// The API server refused the watch (401/403): it is started again after `retry`, with a
    /// fresh list, which tells when access is back even if nothing changed.
    Refused,
}

/// The first pause before a refused watch starts again (doubling up to 30 s).
const FIRST_RETRY: Duration = Duration::from_millis(250);

/// Objects of one watch by name, with the buffer of a list in progress.
struct Mirror<K> {
    objects: BTreeMap<String, K>,
    listing: Option<BTreeMap<String, K>>,
    retry: Duration,
}

impl<K: Resource + Clone> Mirror<K> {
    fn new() -> Self {
        Self {
            objects: BTreeMap::new(),
            listing: None,
            retry: FIRST_RETRY,
        }
    }

    /// The pause before restarting a refused watch, doubled for the next time.
    fn next_retry(&mut self) -> Duration {
        let now = self.retry;
        self.retry = (self.retry * 2).min(Duration::from_secs(30));
        now
    }

    /// Applies one event; an error is recorded in the readiness.
    fn apply(
        &mut self,
        item: Result<watcher::Event<K>, watcher::Error>,
        name: &str,
        shared: &Shared,
    ) -> Outcome {
        match item {
            Ok(watcher::Event::Init) => {
                self.listing = Some(BTreeMap::new());
                Outcome::Nothing
            }
            Ok(watcher::Event::InitApply(o)) => {
                if let Some(l) = self.listing.as_mut() {
                    l.insert(o.name_any(), o);
                }
                Outcome::Nothing
            }
            Ok(watcher::Event::InitDone) => {
                self.objects = self.listing.take().unwrap_or_default();
                self.retry = FIRST_RETRY;
                shared.readiness.synced(name);
                Outcome::Changed
            }
            Ok(watcher::Event::Apply(o)) => {
                self.objects.insert(o.name_any(), o);
                Outcome::Changed
            }
            Ok(watcher::Event::Delete(o)) => {
                self.objects.remove(&o.name_any());
                Outcome::Changed
            }
            Err(e) => {
                shared.readiness.error(name, &e);
                if is_auth(&e) {
                    Outcome::Refused
                } else {
                    Outcome::Nothing
                }
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
    let services_of = |delay| {
        watch(
            Api::<Service>::namespaced(client.clone(), &ns),
            watcher::Config::default().fields(&format!("metadata.name={name}")),
            delay,
        )
    };
    let slices_of = |delay| {
        watch(
            Api::<EndpointSlice>::namespaced(client.clone(), &ns),
            watcher::Config::default().labels(&format!("kubernetes.io/service-name={name}")),
            delay,
        )
    };
    let pods_of = |selector: &str, delay| {
        watch(
            Api::<Pod>::namespaced(client.clone(), &ns),
            watcher::Config::default().labels(selector),
            delay,
        )
    };
    let mut services = Some(services_of(Duration::ZERO));
    let mut slices = Some(slices_of(Duration::ZERO));
    let mut pods: Option<Events<Pod>> = None;
    let mut pod_selector: Option<String> = None;
    let (mut svc_m, mut slice_m, mut pod_m) = (Mirror::new(), Mirror::new(), Mirror::new());
    loop {
        let changed = tokio::select! {
            Some(item) = next(&mut services) => {
                let outcome = svc_m.apply(item, &svc_watch, &shared);
                if outcome == Outcome::Refused {
                    services = Some(services_of(svc_m.next_retry()));
                }
                let changed = outcome == Outcome::Changed;
                let wanted = selector(svc_m.objects.get(&name));
                if changed && wanted != pod_selector {
                    pod_m = Mirror::new();
                    pods = wanted.as_ref().map(|s| {
                        shared.readiness.set(&pod_watch, WatchPhase::Syncing);
                        pods_of(s, Duration::ZERO)
                    });
                    pod_selector = wanted;
                }
                if changed && pod_selector.is_none() {
                    // no selector (or no Service): no Pods to watch
                    shared.readiness.synced(&pod_watch);
                }
                changed
            }
            Some(item) = next(&mut slices) => {
                let outcome = slice_m.apply(item, &slice_watch, &shared);
                if outcome == Outcome::Refused {
                    slices = Some(slices_of(slice_m.next_retry()));
                }
                outcome == Outcome::Changed
            }
            Some(item) = next(&mut pods) => {
                let outcome = pod_m.apply(item, &pod_watch, &shared);
                if outcome == Outcome::Refused
                    && let Some(s) = &pod_selector
                {
                    pods = Some(pods_of(s, pod_m.next_retry()));
                }
                outcome == Outcome::Changed
            }
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
