//! Mesh config from custom resources: one kube-runtime watcher per kind, every object compiled
//! as a file would be (named `namespace/name`), the combined config stored into a
//! [`ConfigStore`].
//!
//! - Each kind is read at the first version the cluster serves ([`MeshKind::versions`]: `v1`
//!   then `v1beta1` for Istio's kinds). A kind whose CRD is not installed is empty, reported as
//!   [`WatchPhase::Missing`], and looked up again every [`ConfigOptions::missing_retry`].
//! - Watches list then watch, with bookmarks, resume after a dropped stream, relist after 410
//!   Gone (objects deleted during the gap go), and back off on errors without ever ending
//!   (kube-runtime's watcher with `.default_backoff()`; an `Err` item is logged and polling
//!   goes on).
//! - An invalid object is refused alone: logged, listed in [`ConfigReport::refused`] with its
//!   namespace, name, field and message, its last good version kept; the rest applies.
//! - Nothing is stored until every kind completed its first sync (a start-up window with half
//!   the AuthorizationPolicies must not exist); [`Readiness`] says when that happened.

mod kinds;
mod objects;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::{WatchStreamExt, watcher};
use mesh_core::watch::ConfigStore;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use kinds::{MESH_KINDS, MeshKind};
pub use objects::{ConfigReport, FieldError, Refused};

use crate::status::{Readiness, WatchPhase, is_auth, status_code};
use objects::{Key, Objects, to_object};

/// The readiness entry that turns synced once the first config is stored.
pub const COMPILED: &str = "mesh config stored";

/// Options of [`KubeConfigSource::start`].
#[derive(Clone, Debug)]
pub struct ConfigOptions {
    /// Read config objects from this namespace only (default: every namespace).
    pub namespace: Option<String>,
    /// How often a kind whose CRD is missing is looked up again (default 30 s).
    pub missing_retry: Duration,
    /// The kinds to read (default [`MESH_KINDS`]).
    pub kinds: Vec<MeshKind>,
}

impl Default for ConfigOptions {
    fn default() -> Self {
        Self {
            namespace: None,
            missing_retry: Duration::from_secs(30),
            kinds: MESH_KINDS.to_vec(),
        }
    }
}

/// Keeps a [`ConfigStore`] filled from the cluster's custom resources; dropping it stops the
/// watches.
#[derive(Debug)]
pub struct KubeConfigSource {
    report: watch::Receiver<Arc<ConfigReport>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for KubeConfigSource {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// What the watch tasks share.
struct Shared {
    objects: Mutex<Objects>,
    changed: watch::Sender<u64>,
    readiness: Readiness,
}

impl KubeConfigSource {
    /// Starts one watch per kind and the compiler that stores into `store`; every watch is
    /// registered in `readiness` at once (as syncing). Needs a Tokio runtime.
    pub fn start(
        client: kube::Client,
        store: ConfigStore,
        readiness: Readiness,
        options: ConfigOptions,
    ) -> Self {
        let shared = Arc::new(Shared {
            objects: Mutex::new(Objects::default()),
            changed: watch::Sender::new(0),
            readiness,
        });
        let mut tasks = Vec::new();
        for kind in &options.kinds {
            shared
                .readiness
                .set(&kind.watch_name(), WatchPhase::Syncing);
        }
        shared.readiness.set(COMPILED, WatchPhase::Syncing);
        for kind in options.kinds.clone() {
            tasks.push(tokio::spawn(watch_kind(
                client.clone(),
                kind,
                options.clone(),
                shared.clone(),
            )));
        }
        let (report_tx, report) = watch::channel(Arc::new(ConfigReport::default()));
        let names: Vec<String> = options.kinds.iter().map(MeshKind::watch_name).collect();
        tasks.push(tokio::spawn(compile_loop(shared, names, store, report_tx)));
        Self { report, tasks }
    }

    /// The last compilation's report (refused objects, warnings, generation stored).
    pub fn report(&self) -> Arc<ConfigReport> {
        self.report.borrow().clone()
    }

    /// A receiver of the report, marked changed after each compilation.
    pub fn subscribe(&self) -> watch::Receiver<Arc<ConfigReport>> {
        self.report.clone()
    }
}

impl Shared {
    fn with_objects<T>(&self, f: impl FnOnce(&mut Objects) -> T) -> T {
        let out = f(&mut self.objects.lock().unwrap_or_else(|e| e.into_inner()));
        self.changed.send_modify(|n| *n += 1);
        out
    }
}

/// One kind, forever: find its served version, watch it; when it is not served, empty it and
/// look again later.
async fn watch_kind(
    client: kube::Client,
    kind: MeshKind,
    options: ConfigOptions,
    shared: Arc<Shared>,
) {
    let name = kind.watch_name();
    let mut backoff = Duration::from_millis(250);
    loop {
        match kinds::served_version(&client, &kind).await {
            Ok(Some(version)) => {
                tracing::info!(
                    kind = kind.kind,
                    group = kind.group,
                    version,
                    "watching mesh config kind"
                );
                if run_watcher(&client, &kind, version, &options, &shared).await {
                    backoff = Duration::from_millis(250);
                }
                // the kind stopped being served, or the API server refused it: start again
            }
            Ok(None) => {
                let why = format!(
                    "no CRD serves {} in {} (versions tried: {}); retried every {:?}",
                    kind.plural,
                    kind.group,
                    kind.versions.join(", "),
                    options.missing_retry
                );
                tracing::warn!(watch = %name, "{why}");
                shared.with_objects(|o| o.replace_kind(kind.kind, BTreeMap::new()));
                shared.readiness.set(&name, WatchPhase::Missing(why));
                tokio::time::sleep(options.missing_retry).await;
                continue;
            }
            Err(e) => {
                let reason = match &e {
                    kube::Error::Api(s) => format!("{} {}: {}", s.code, s.reason, s.message),
                    other => other.to_string(),
                };
                tracing::warn!(watch = %name, %reason, "api discovery failed; retrying");
                let synced = matches!(
                    shared.readiness.phase(&name),
                    Some(WatchPhase::Synced | WatchPhase::Failing { synced: true, .. })
                );
                shared
                    .readiness
                    .set(&name, WatchPhase::Failing { synced, reason });
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// Runs kube-runtime's watcher for one kind at `version` until the kind is no longer served
/// (404) or the API server refuses it (401/403: a fresh watcher after a pause relists, which
/// tells when access is back even if nothing changed); returns whether it synced.
async fn run_watcher(
    client: &kube::Client,
    kind: &MeshKind,
    version: &str,
    options: &ConfigOptions,
    shared: &Shared,
) -> bool {
    let name = kind.watch_name();
    let resource = ApiResource {
        group: kind.group.to_owned(),
        version: version.to_owned(),
        api_version: kind.api_version(version),
        kind: kind.kind.to_owned(),
        plural: kind.plural.to_owned(),
    };
    let (api, config): (Api<DynamicObject>, _) = match (kind.only, &options.namespace) {
        (Some((ns, name)), _) => (
            Api::namespaced_with(client.clone(), ns, &resource),
            watcher::Config::default().fields(&format!("metadata.name={name}")),
        ),
        (None, Some(ns)) => (
            Api::namespaced_with(client.clone(), ns, &resource),
            watcher::Config::default(),
        ),
        (None, None) => (
            Api::all_with(client.clone(), &resource),
            watcher::Config::default(),
        ),
    };
    let mut stream = watcher(api, config).default_backoff().boxed();
    let mut buffer: Option<BTreeMap<Key, mesh_core::load::Object>> = None;
    let mut synced = false;
    while let Some(item) = stream.next().await {
        match item {
            Ok(watcher::Event::Init) => buffer = Some(BTreeMap::new()),
            Ok(watcher::Event::InitApply(o)) => {
                if let (Some(b), Some((k, v))) = (buffer.as_mut(), to_object(&o)) {
                    b.insert(k, v);
                }
            }
            Ok(watcher::Event::InitDone) => {
                let listed = buffer.take().unwrap_or_default();
                tracing::debug!(watch = %name, objects = listed.len(), "listed");
                shared.with_objects(|o| o.replace_kind(kind.kind, listed));
                shared.readiness.synced(&name);
                synced = true;
            }
            Ok(watcher::Event::Apply(o)) => {
                if let Some((k, v)) = to_object(&o) {
                    shared.with_objects(|objects| {
                        objects.current.insert(k, v);
                    });
                }
            }
            Ok(watcher::Event::Delete(o)) => {
                if let Some((k, _)) = to_object(&o) {
                    shared.with_objects(|objects| {
                        objects.current.remove(&k);
                    });
                }
            }
            Err(e) => {
                if status_code(&e) == Some(404) {
                    tracing::warn!(watch = %name, "resource no longer served");
                    return synced;
                }
                shared.readiness.error(&name, &e);
                if is_auth(&e) {
                    return synced;
                }
            }
        }
    }
    synced
}

/// Compiles after every change once each kind completed its first sync, and stores the result.
async fn compile_loop(
    shared: Arc<Shared>,
    names: Vec<String>,
    store: ConfigStore,
    report: watch::Sender<Arc<ConfigReport>>,
) {
    let mut changed = shared.changed.subscribe();
    let mut status = shared.readiness.subscribe();
    let mut dirty = true;
    loop {
        let all_synced = {
            let s = status.borrow_and_update();
            names.iter().all(|n| {
                matches!(
                    s.watches.get(n),
                    Some(
                        WatchPhase::Synced
                            | WatchPhase::Missing(_)
                            | WatchPhase::Failing { synced: true, .. }
                    )
                )
            })
        };
        if all_synced && dirty {
            dirty = false;
            // Compiling and the store's prepare hooks (each namespace's view, each client's
            // route table) are CPU work: on the blocking pool, not on a worker thread that
            // requests wait for.
            let stored = {
                let (shared, store) = (Arc::clone(&shared), store.clone());
                tokio::task::spawn_blocking(move || {
                    let compiled = shared
                        .objects
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .compile_if_changed();
                    compiled.map(|(config, mut r)| {
                        r.generation = store.store(config);
                        r
                    })
                })
                .await
            };
            let stored = match stored {
                Ok(stored) => stored,
                Err(error) => {
                    tracing::warn!(%error, "mesh config compilation failed");
                    None
                }
            };
            if let Some(r) = stored {
                tracing::info!(
                    generation = r.generation,
                    applied = r.applied,
                    refused = r.refused.len(),
                    "mesh config from kubernetes stored"
                );
                report.send_replace(Arc::new(r));
            }
            shared.readiness.synced(COMPILED);
        }
        tokio::select! {
            c = changed.changed() => match c {
                Ok(()) => dirty = true,
                Err(_) => return,
            },
            s = status.changed() => if s.is_err() { return },
        }
    }
}

#[cfg(test)]
mod tests;
