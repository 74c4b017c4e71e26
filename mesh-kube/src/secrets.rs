//! Kubernetes TLS Secrets for Gateway `servers[].tls.credentialName`, as Istio reads them:
//! `tls.crt`, `tls.key` and, for MUTUAL, `ca.crt` (type `kubernetes.io/tls`), or the generic
//! keys `cert`, `key`, `cacert`; a MUTUAL CA may also sit in a Secret of its own named
//! `<name>-cacert`. [`read_tls_secret`] reads one now; [`watch_tls_secret`] keeps the last good
//! value of one (with its `<name>-cacert`) in a [`tokio::sync::watch`] channel (a Secret that
//! loses a key or is deleted keeps the last good value, and the error is logged and kept).

use std::sync::Arc;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio::sync::watch;

/// The PEM contents of a TLS Secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSecret {
    /// `tls.crt` / `cert`: the chain, leaf first.
    pub cert_chain: Vec<u8>,
    /// `tls.key` / `key`.
    pub private_key: Vec<u8>,
    /// `ca.crt` / `cacert`, or the `<name>-cacert` Secret's: roots for client certificates.
    pub ca_certificates: Option<Vec<u8>>,
}

/// Why a TLS Secret could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The API server refused or failed (a missing Secret is a 404 here).
    #[error("Secret {namespace}/{name}: {source}")]
    Api {
        /// The Secret's namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// What the API server said.
        #[source]
        source: kube::Error,
    },
    /// The Secret has no certificate or no key.
    #[error("Secret {namespace}/{name}: no `{key}` (nor `{generic}`) key")]
    MissingKey {
        /// The Secret's namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The `kubernetes.io/tls` key looked for.
        key: &'static str,
        /// The generic key looked for.
        generic: &'static str,
    },
}

fn value(secret: &Secret, keys: [&str; 2]) -> Option<Vec<u8>> {
    let data = secret.data.as_ref();
    keys.iter()
        .find_map(|k| data.and_then(|d| d.get(*k)).map(|b| b.0.clone()))
        .or_else(|| {
            let strings = secret.string_data.as_ref()?;
            keys.iter()
                .find_map(|k| strings.get(*k).map(|s| s.as_bytes().to_vec()))
        })
}

/// What `secret` holds, as Istio reads a `credentialName` Secret.
pub fn tls_secret_of(secret: &Secret) -> Result<TlsSecret, SecretError> {
    let namespace = secret.metadata.namespace.clone().unwrap_or_default();
    let name = secret.metadata.name.clone().unwrap_or_default();
    let missing = |key, generic| SecretError::MissingKey {
        namespace: namespace.clone(),
        name: name.clone(),
        key,
        generic,
    };
    Ok(TlsSecret {
        cert_chain: value(secret, ["tls.crt", "cert"]).ok_or_else(|| missing("tls.crt", "cert"))?,
        private_key: value(secret, ["tls.key", "key"]).ok_or_else(|| missing("tls.key", "key"))?,
        ca_certificates: value(secret, ["ca.crt", "cacert"]),
    })
}

/// Reads Secret `namespace/name` now (and `<name>-cacert` when it has no CA of its own).
pub async fn read_tls_secret(
    client: kube::Client,
    namespace: &str,
    name: &str,
) -> Result<TlsSecret, SecretError> {
    let api = Api::<Secret>::namespaced(client, namespace);
    let api_error = |name: &str| {
        let (namespace, name) = (namespace.to_owned(), name.to_owned());
        move |source| SecretError::Api {
            namespace,
            name,
            source,
        }
    };
    let secret = api.get(name).await.map_err(api_error(name))?;
    let mut tls = tls_secret_of(&secret)?;
    if tls.ca_certificates.is_none() {
        let ca_name = format!("{name}-cacert");
        if let Some(ca) = api.get_opt(&ca_name).await.map_err(api_error(&ca_name))? {
            tls.ca_certificates = value(&ca, ["ca.crt", "cacert"]);
        }
    }
    Ok(tls)
}

/// A watched TLS Secret: the last good value (`None` until one arrives) and why the latest
/// change was refused, if it was.
#[derive(Debug)]
pub struct SecretWatch {
    current: watch::Receiver<Option<Arc<TlsSecret>>>,
    error: Arc<std::sync::Mutex<Option<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl SecretWatch {
    /// The last good value.
    pub fn current(&self) -> Option<Arc<TlsSecret>> {
        self.current.borrow().clone()
    }

    /// A receiver that sees each new value.
    pub fn subscribe(&self) -> watch::Receiver<Option<Arc<TlsSecret>>> {
        self.current.clone()
    }

    /// Why the latest change of the Secret was not taken (a lost key, a deleted Secret), while
    /// the last good value stays; `None` once a good value follows.
    pub fn error(&self) -> Option<String> {
        self.error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Drop for SecretWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Which of the two watched Secrets an event is about.
enum Which {
    Main,
    CaSecret,
}

/// What the two Secrets last said.
#[derive(Default)]
struct Merged {
    main: Option<TlsSecret>,
    ca_secret: Option<Vec<u8>>,
}

impl Merged {
    fn value(&self) -> Option<TlsSecret> {
        let mut tls = self.main.clone()?;
        if tls.ca_certificates.is_none() {
            tls.ca_certificates = self.ca_secret.clone();
        }
        Some(tls)
    }
}

/// Watches Secret `namespace/name` and its `<name>-cacert` companion (needs a Tokio runtime);
/// stops when the watch is dropped. A Secret that loses its certificate or key, or is deleted,
/// keeps the last good value; the reason is logged and kept in [`SecretWatch::error`].
pub fn watch_tls_secret(client: kube::Client, namespace: &str, name: &str) -> SecretWatch {
    let (tx, rx) = watch::channel(None);
    let error = Arc::new(std::sync::Mutex::new(None));
    let api = Api::<Secret>::namespaced(client, namespace);
    let stream = |name: &str| {
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        watcher::watcher(api.clone(), config).default_backoff()
    };
    let main = stream(name).map(|e| (Which::Main, e));
    let ca = stream(&format!("{name}-cacert")).map(|e| (Which::CaSecret, e));
    let label = format!("{namespace}/{name}");
    let errors = Arc::clone(&error);
    let task = tokio::spawn(async move {
        let mut events = futures_util::stream::select(main.boxed(), ca.boxed());
        let mut merged = Merged::default();
        let set_error = |e: Option<String>| {
            *errors
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = e;
        };
        while let Some((which, event)) = events.next().await {
            match (which, event) {
                (_, Err(error)) => {
                    tracing::warn!(%error, secret = %label, "TLS Secret watch: retrying");
                    continue;
                }
                (Which::Main, Ok(Event::Apply(s) | Event::InitApply(s))) => {
                    match tls_secret_of(&s) {
                        Ok(tls) => {
                            merged.main = Some(tls);
                            set_error(None);
                        }
                        Err(error) => {
                            tracing::warn!(%error, "TLS Secret refused: the last good value stays");
                            set_error(Some(format!("{error} (the last good value stays)")));
                            continue;
                        }
                    }
                }
                (Which::Main, Ok(Event::Delete(_))) => {
                    tracing::warn!(secret = %label, "TLS Secret deleted: the last good value stays");
                    set_error(Some(format!(
                        "Secret {label} was deleted (the last good value stays)"
                    )));
                    continue;
                }
                (Which::CaSecret, Ok(Event::Apply(s) | Event::InitApply(s))) => {
                    merged.ca_secret = value(&s, ["ca.crt", "cacert"]);
                }
                (Which::CaSecret, Ok(Event::Delete(_))) => merged.ca_secret = None,
                (_, Ok(_)) => continue,
            }
            if let Some(tls) = merged.value() {
                let tls = Arc::new(tls);
                tx.send_if_modified(|current| {
                    let changed = current.as_deref() != Some(&*tls);
                    if changed {
                        *current = Some(tls);
                    }
                    changed
                });
            }
        }
    });
    SecretWatch {
        current: rx,
        error,
        task,
    }
}

#[cfg(test)]
mod tests;
