//! Finding the API server as kubectl does.
//!
//! Inside a pod (`KUBERNETES_SERVICE_HOST` set) the mounted service account is used: the token
//! at `/var/run/secrets/kubernetes.io/serviceaccount/token` (kube-rs re-reads it as it rotates)
//! and the CA beside it. Otherwise `$KUBECONFIG` (or `~/.kube/config`), its current context:
//! server URL, bearer token or client certificate, CA. A bearer token is sent over plain
//! `http://` too (kube-rs adds the `Authorization` header whatever the scheme), which is what a
//! local test server needs.
//!
//! TLS goes through rustls with the aws-lc-rs provider only (kube's `ring` feature is off).
//! kube-rs builds its rustls config from the process-wide default provider, so [`connect`]
//! installs aws-lc-rs as that default when none is installed yet (nothing changes when the app
//! installed one): a second provider compiled in by another crate cannot make the first
//! handshake panic.

use std::path::Path;

use kube::config::{KubeConfigOptions, Kubeconfig};

/// Why no client could be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The in-cluster or kubeconfig settings could not be read.
    #[error("kubernetes config: {0}")]
    Config(String),
    /// A client could not be built from them (bad CA, bad client certificate...).
    #[error("kubernetes client: {0}")]
    Client(#[source] kube::Error),
}

/// A client for the API server: the pod's service account inside a cluster, `$KUBECONFIG`'s
/// current context outside.
pub async fn connect() -> Result<kube::Client, ConnectError> {
    ensure_crypto_provider();
    let config = if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
        kube::Config::incluster().map_err(|e| ConnectError::Config(e.to_string()))?
    } else {
        kube::Config::from_kubeconfig(&KubeConfigOptions::default())
            .await
            .map_err(|e| ConnectError::Config(e.to_string()))?
    };
    kube::Client::try_from(config).map_err(ConnectError::Client)
}

/// Installs aws-lc-rs as rustls' process default unless a default exists.
fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // a concurrent install by someone else wins; either way a default exists afterwards
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }
}

/// A client from the kubeconfig file at `path` (its current context).
pub async fn connect_kubeconfig(path: &Path) -> Result<kube::Client, ConnectError> {
    ensure_crypto_provider();
    let kubeconfig =
        Kubeconfig::read_from(path).map_err(|e| ConnectError::Config(e.to_string()))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| ConnectError::Config(e.to_string()))?;
    kube::Client::try_from(config).map_err(ConnectError::Client)
}

#[cfg(test)]
mod tests;
