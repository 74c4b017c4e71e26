//! Kubernetes TLS Secrets for Gateway `servers[].tls.credentialName`, as Istio reads them:
//! `tls.crt`, `tls.key` and, for MUTUAL, `ca.crt` (type `kubernetes.io/tls`), or the generic
//! keys `cert`, `key`, `cacert`; a MUTUAL CA may also sit in a Secret of its own named
//! `<name>-cacert`. [`read_tls_secret`] reads one now; [`watch_tls_secret`] keeps the last good
//! value of one in a [`tokio::sync::watch`] channel (a Secret that loses a key keeps the last
//! good value, and the error is logged).

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

/// A watched TLS Secret: the last good value (`None` until one arrives).
#[derive(Debug)]
pub struct SecretWatch {
    current: watch::Receiver<Option<Arc<TlsSecret>>>,
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
}

impl Drop for SecretWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Watches Secret `namespace/name` (needs a Tokio runtime); stops when the watch is dropped.
pub fn watch_tls_secret(client: kube::Client, namespace: &str, name: &str) -> SecretWatch {
    let (tx, rx) = watch::channel(None);
    let api = Api::<Secret>::namespaced(client, namespace);
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let task = tokio::spawn(async move {
        let mut events = watcher::watcher(api, config).default_backoff().boxed();
        while let Some(event) = events.next().await {
            let secret = match event {
                Ok(Event::Apply(s) | Event::InitApply(s)) => s,
                Ok(_) => continue,
                Err(error) => {
                    tracing::warn!(%error, "TLS Secret watch: retrying");
                    continue;
                }
            };
            match tls_secret_of(&secret) {
                Ok(tls) => {
                    let _ = tx.send(Some(Arc::new(tls)));
                }
                Err(error) => {
                    tracing::warn!(%error, "TLS Secret refused: the last good value stays")
                }
            }
        }
    });
    SecretWatch { current: rx, task }
}

#[cfg(test)]
mod tests;
