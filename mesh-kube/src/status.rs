//! Readiness: every watch's state, ready only once each completed its first sync and none is
//! refused by the API server (401/403).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use tokio::sync::watch;

/// The state of one watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchPhase {
    /// Started; its first list has not completed.
    Syncing,
    /// Its first sync completed (later errors are retried with backoff while the last known
    /// objects stay in force).
    Synced,
    /// The resource is not served (a CRD that is not installed): empty, retried slowly.
    Missing(String),
    /// The API server refuses it (401/403); before the first sync, any error.
    Failing {
        /// Whether the first sync completed before the failure.
        synced: bool,
        /// What the API server said.
        reason: String,
    },
}

impl WatchPhase {
    /// Whether this watch lets the app be ready.
    fn is_ready(&self) -> bool {
        match self {
            WatchPhase::Synced | WatchPhase::Missing(_) => true,
            WatchPhase::Syncing | WatchPhase::Failing { .. } => false,
        }
    }
}

/// What every watch is doing, by name (`networking.istio.io/v1 VirtualService`,
/// `EndpointSlices default/service2`...).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// Each watch's phase.
    pub watches: BTreeMap<String, WatchPhase>,
}

impl Status {
    /// Ready: every watch completed its first sync (a missing CRD counts as an empty sync) and
    /// none is refused by the API server.
    pub fn is_ready(&self) -> bool {
        self.watches.values().all(WatchPhase::is_ready)
    }

    /// Why the app is not ready (empty when it is).
    pub fn reasons(&self) -> Vec<String> {
        self.watches
            .iter()
            .filter_map(|(name, phase)| match phase {
                WatchPhase::Syncing => Some(format!("{name}: waiting for the first sync")),
                WatchPhase::Failing { reason, .. } => Some(format!("{name}: {reason}")),
                WatchPhase::Synced | WatchPhase::Missing(_) => None,
            })
            .collect()
    }

    /// Resources that are not served, with why.
    pub fn missing(&self) -> Vec<String> {
        self.watches
            .iter()
            .filter_map(|(name, phase)| match phase {
                WatchPhase::Missing(why) => Some(format!("{name}: {why}")),
                _ => None,
            })
            .collect()
    }
}

impl fmt::Display for Status {
    /// `ready`, or `not ready: <reason>; <reason>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reasons = self.reasons();
        if reasons.is_empty() {
            f.write_str("ready")
        } else {
            write!(f, "not ready: {}", reasons.join("; "))
        }
    }
}

/// Shared, observable [`Status`]; cloning shares it.
#[derive(Clone, Debug)]
pub struct Readiness {
    tx: Arc<watch::Sender<Status>>,
}

impl Default for Readiness {
    fn default() -> Self {
        Self::new()
    }
}

impl Readiness {
    /// No watch yet (ready, vacuously, until one is added).
    pub fn new() -> Self {
        Self {
            tx: Arc::new(watch::Sender::new(Status::default())),
        }
    }

    /// The current status.
    pub fn status(&self) -> Status {
        self.tx.borrow().clone()
    }

    /// Whether every watch is ready.
    pub fn is_ready(&self) -> bool {
        self.tx.borrow().is_ready()
    }

    /// A receiver marked changed on every change of status.
    pub fn subscribe(&self) -> watch::Receiver<Status> {
        self.tx.subscribe()
    }

    /// Waits until ready.
    pub async fn wait_ready(&self) {
        let mut rx = self.tx.subscribe();
        // the sender lives as long as `self`: `wait_for` cannot fail while we hold it
        let _ = rx.wait_for(Status::is_ready).await;
    }

    /// Sets the phase of watch `name`.
    pub(crate) fn set(&self, name: &str, phase: WatchPhase) {
        self.tx.send_if_modified(|s| {
            if s.watches.get(name) == Some(&phase) {
                return false;
            }
            s.watches.insert(name.to_owned(), phase);
            true
        });
    }

    /// The phase of watch `name`.
    pub(crate) fn phase(&self, name: &str) -> Option<WatchPhase> {
        self.tx.borrow().watches.get(name).cloned()
    }

    /// Forgets watch `name` (it was stopped).
    pub(crate) fn remove(&self, name: &str) {
        self.tx
            .send_if_modified(|s| s.watches.remove(name).is_some());
    }

    /// Records a watch error: 401/403 always fail readiness; other errors only before the first
    /// sync (afterwards the last known objects stay and the watcher retries).
    pub(crate) fn error(&self, name: &str, error: &kube::runtime::watcher::Error) {
        let synced = matches!(
            self.phase(name),
            Some(WatchPhase::Synced | WatchPhase::Failing { synced: true, .. })
        );
        let reason = describe(error);
        tracing::warn!(watch = name, %reason, "kubernetes watch error; retrying");
        if is_auth(error) || !synced {
            self.set(name, WatchPhase::Failing { synced, reason });
        }
    }

    /// Records a completed sync.
    pub(crate) fn synced(&self, name: &str) {
        self.set(name, WatchPhase::Synced);
    }
}

/// The API server's status code behind a watcher error, if any.
pub(crate) fn status_code(error: &kube::runtime::watcher::Error) -> Option<u16> {
    use kube::runtime::watcher::Error as E;
    match error {
        E::InitialListFailed(e) | E::WatchStartFailed(e) | E::WatchFailed(e) => match e {
            kube::Error::Api(s) => Some(s.code),
            _ => None,
        },
        E::WatchError(s) => Some(s.code),
        _ => None,
    }
}

/// Whether the API server refused the watch (401/403).
pub(crate) fn is_auth(error: &kube::runtime::watcher::Error) -> bool {
    matches!(status_code(error), Some(401 | 403))
}

/// A short reason: `403 Forbidden: <message>` for API errors, the error text otherwise.
pub(crate) fn describe(error: &kube::runtime::watcher::Error) -> String {
    use kube::runtime::watcher::Error as E;
    let api = match error {
        E::InitialListFailed(kube::Error::Api(s))
        | E::WatchStartFailed(kube::Error::Api(s))
        | E::WatchFailed(kube::Error::Api(s)) => Some(s),
        E::WatchError(s) => Some(s),
        _ => None,
    };
    match api {
        Some(s) => format!("{} {}: {}", s.code, s.reason, s.message),
        None => error.to_string(),
    }
}

#[cfg(test)]
mod tests;
