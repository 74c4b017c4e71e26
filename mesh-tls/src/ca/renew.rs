//! Keeping a workload certificate from Istio's CA fresh.

use std::time::{Duration, SystemTime};

use rcgen::{CertificateParams, DistinguishedName, KeyPair, SanType};
use tokio::task::JoinHandle;

use super::{CaClient, CaError};
use crate::credentials::Credentials;
use crate::identity::SpiffeId;
use crate::source::{CertSource, SourceError};

/// How a [`CaRenewer`] asks and retries.
#[derive(Clone, Debug)]
pub struct RenewOptions {
    /// The validity asked for (Istio's default workload certificate TTL: 24 h).
    pub validity: Duration,
    /// The first wait after a failure; doubled after each further failure.
    pub initial_backoff: Duration,
    /// The longest wait between attempts.
    pub max_backoff: Duration,
}

impl Default for RenewOptions {
    /// 24 h certificates; retries after 1 s, doubling up to 1 min.
    fn default() -> Self {
        Self {
            validity: Duration::from_secs(24 * 3600),
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
        }
    }
}

/// Keeps a [`CertSource`] supplied from Istio's CA; stops when dropped.
#[derive(Debug)]
pub struct CaRenewer {
    task: JoinHandle<()>,
}

impl CaRenewer {
    /// Obtains a certificate for `identity` now (unless `source` already holds one), then
    /// renews it at half its lifetime, from a task on the current tokio runtime. `roots_pem` is
    /// what the workload trusts (`root-cert.pem`). A failure is recorded in the source's status
    /// and retried with backoff; the certificate in force stays until a new one arrives.
    ///
    /// # Panics
    /// Outside a tokio runtime, as `tokio::spawn` does.
    pub fn spawn(
        client: CaClient,
        identity: SpiffeId,
        roots_pem: Vec<u8>,
        source: CertSource,
        options: RenewOptions,
    ) -> Self {
        let task = tokio::spawn(run(client, identity, roots_pem, source, options));
        Self { task }
    }
}

impl Drop for CaRenewer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Halfway through the certificate's lifetime, as Istio's agent renews by default.
pub(crate) fn renew_at(credentials: &Credentials) -> SystemTime {
    let lifetime = credentials
        .not_after()
        .duration_since(credentials.not_before())
        .unwrap_or_default();
    credentials.not_before() + lifetime / 2
}

async fn run(
    client: CaClient,
    identity: SpiffeId,
    roots_pem: Vec<u8>,
    source: CertSource,
    options: RenewOptions,
) {
    let mut backoff = options.initial_backoff;
    loop {
        if let Some(current) = source.current() {
            let wait = renew_at(&current)
                .duration_since(SystemTime::now())
                .unwrap_or_default();
            tokio::time::sleep(wait).await;
        }
        match obtain(&client, &identity, &roots_pem, options.validity).await {
            Ok(credentials) => {
                source.publish(credentials);
                backoff = options.initial_backoff;
            }
            Err(error) => {
                source.refuse(SourceError::Ca {
                    reason: error.to_string(),
                });
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(options.max_backoff);
            }
        }
    }
}

/// A fresh key, a CSR for `identity`, the CA's answer checked.
pub(crate) async fn obtain(
    client: &CaClient,
    identity: &SpiffeId,
    roots_pem: &[u8],
    validity: Duration,
) -> Result<Credentials, CaError> {
    let key = KeyPair::generate().map_err(|err| CaError::Csr(err.to_string()))?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    let uri = identity
        .to_string()
        .try_into()
        .map_err(|err: rcgen::Error| CaError::Csr(err.to_string()))?;
    params.subject_alt_names = vec![SanType::URI(uri)];
    let csr = params
        .serialize_request(&key)
        .and_then(|csr| csr.pem())
        .map_err(|err| CaError::Csr(err.to_string()))?;
    let chain = client.create_certificate(&csr, validity).await?;
    let chain_pem = chain.join("\n");
    let credentials = Credentials::from_pem(
        chain_pem.as_bytes(),
        key.serialize_pem().as_bytes(),
        roots_pem,
    )?;
    if credentials.identity() != identity {
        return Err(CaError::Csr(format!(
            "the CA issued {} for a CSR asking {identity}",
            credentials.identity()
        )));
    }
    Ok(credentials)
}
