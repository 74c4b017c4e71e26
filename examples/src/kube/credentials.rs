//! The `--kube` gateway's `credentialName`s: Kubernetes TLS Secrets in the gateway's namespace,
//! each watched (with its `<name>-cacert` companion) from the first time a Gateway names it
//! ([`mesh_kube::secrets::watch_tls_secret`]), the last good value kept.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use mesh_kube::secrets::{SecretWatch, watch_tls_secret};
use serde_json::{Value, json};

use crate::gateway_ports::Credentials;
use crate::gateway_tls::CredentialPem;

/// The Secrets of one namespace, watched on first use.
pub struct SecretCredentials {
    client: kube::Client,
    namespace: String,
    watches: Mutex<BTreeMap<String, SecretWatch>>,
}

impl SecretCredentials {
    /// Secrets of `namespace`, read through `client`. Reading one needs a Tokio runtime.
    pub fn new(client: kube::Client, namespace: &str) -> Self {
        Self {
            client,
            namespace: namespace.to_owned(),
            watches: Mutex::new(BTreeMap::new()),
        }
    }
}

impl Credentials for SecretCredentials {
    fn read(&self, name: &str) -> Result<CredentialPem, String> {
        let mut watches = self.watches.lock().unwrap_or_else(PoisonError::into_inner);
        let watch = watches
            .entry(name.to_owned())
            .or_insert_with(|| watch_tls_secret(self.client.clone(), &self.namespace, name));
        match watch.current() {
            Some(tls) => Ok((
                tls.cert_chain.clone(),
                tls.private_key.clone(),
                tls.ca_certificates.clone(),
            )),
            None => Err(watch.error().unwrap_or_else(|| {
                format!(
                    "Secret {}/{name} has not been read (it does not exist, or has no `tls.crt` and `tls.key`)",
                    self.namespace
                )
            })),
        }
    }

    fn view(&self) -> Value {
        let watches = self.watches.lock().unwrap_or_else(PoisonError::into_inner);
        watches
            .iter()
            .map(|(name, watch)| {
                let value = json!({
                    "namespace": self.namespace,
                    "read": watch.current().is_some(),
                    "error": watch.error(),
                });
                (name.clone(), value)
            })
            .collect::<serde_json::Map<_, _>>()
            .into()
    }
}
