//! Several discovery sources as one: in `--kube` mode the registry needs the ServiceEntries of
//! the cluster's config ([`mesh_core::registry::StaticDiscovery`]) and the Kubernetes Services
//! ([`super::KubeDiscovery`]) together.

use std::fmt;
use std::sync::{Arc, Mutex};

use mesh_core::registry::{Discovery, Services};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The concatenation of what several sources publish (in the order given; the registry keeps
/// the first service that defines a host). Dropping it stops following them.
pub struct MergedDiscovery {
    out: Arc<watch::Sender<Arc<Services>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl fmt::Debug for MergedDiscovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MergedDiscovery")
            .field("services", &self.out.borrow().len())
            .finish()
    }
}

impl MergedDiscovery {
    /// Follows `sources`. Needs a Tokio runtime.
    pub fn new(sources: &[&dyn Discovery]) -> Self {
        let receivers: Vec<watch::Receiver<Arc<Services>>> =
            sources.iter().map(|s| s.subscribe()).collect();
        let parts: Arc<Mutex<Vec<Arc<Services>>>> = Arc::new(Mutex::new(
            receivers.iter().map(|r| r.borrow().clone()).collect(),
        ));
        let out = Arc::new(watch::Sender::new(Arc::new(concat(
            &parts.lock().unwrap_or_else(|e| e.into_inner()),
        ))));
        let tasks = receivers
            .into_iter()
            .enumerate()
            .map(|(i, mut rx)| {
                let parts = parts.clone();
                let out = out.clone();
                tokio::spawn(async move {
                    while rx.changed().await.is_ok() {
                        let latest = rx.borrow_and_update().clone();
                        let mut parts = parts.lock().unwrap_or_else(|e| e.into_inner());
                        if let Some(slot) = parts.get_mut(i) {
                            *slot = latest;
                        }
                        out.send_replace(Arc::new(concat(&parts)));
                    }
                })
            })
            .collect();
        Self { out, tasks }
    }
}

fn concat(parts: &[Arc<Services>]) -> Services {
    parts.iter().flat_map(|p| p.iter().cloned()).collect()
}

impl Drop for MergedDiscovery {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Discovery for MergedDiscovery {
    fn subscribe(&self) -> watch::Receiver<Arc<Services>> {
        self.out.subscribe()
    }
}
