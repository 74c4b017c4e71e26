//! Which endpoints get TLS, and with what: [`plan`] decides, [`Planner`] builds the rustls
//! configurations (cached, so session resumption outlives cluster rebuilds).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use mesh_core::policy::{ClientTls, ClientTlsMode};
use mesh_tls::config::{ExpectedServer, ServerCheck, UpstreamProtocol, external_client_config};
use mesh_tls::{MeshTls, SpiffeId, TrustDomain};
use rustls::ClientConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use super::{TlsStats, TlsTable, TlsTarget};
use crate::balance::Endpoint;

/// How one endpoint is connected to, when not in plaintext.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TlsPlan {
    /// Istio mutual TLS with the workload's certificate (auto-mTLS or `ISTIO_MUTUAL`): the
    /// server must prove one of `expected` (`spiffe://` URIs), any workload of the mesh when
    /// empty.
    Mesh {
        /// The identities the server may prove.
        expected: Vec<String>,
        /// The server name sent.
        sni: String,
    },
    /// `SIMPLE` or `MUTUAL` to a server outside the mesh, verified for `server_name`.
    External {
        /// The rule's `tls` block.
        tls: ClientTls,
        /// The name sent and verified.
        server_name: String,
    },
}

/// The plan for `endpoint` of `host` under the `tls` block in force (`None`: the
/// DestinationRule says nothing), see [the module docs](super). `istio_sni` is the SNI a sidecar
/// would send (`outbound_.PORT_.SUBSET_.HOST`); `mesh` whether the workload has mesh TLS
/// settings (auto-mTLS applies only then, as a workload without a sidecar sends plaintext).
pub fn plan(
    tls: Option<&ClientTls>,
    endpoint: &Endpoint,
    host: &str,
    istio_sni: &str,
    mesh: bool,
) -> Option<TlsPlan> {
    let mesh_plan = |sans: &[String], sni: Option<&String>| TlsPlan::Mesh {
        expected: if sans.is_empty() {
            endpoint
                .service_account
                .as_ref()
                .and_then(|sa| {
                    SpiffeId::new(TrustDomain::cluster_local(), &sa.namespace, &sa.name).ok()
                })
                .map(|id| id.to_string())
                .into_iter()
                .collect()
        } else {
            sans.to_vec()
        },
        sni: sni.cloned().unwrap_or_else(|| istio_sni.to_owned()),
    };
    match tls {
        None if endpoint.auto_mtls && mesh => Some(mesh_plan(&[], None)),
        None => None,
        Some(t) => match t.mode {
            ClientTlsMode::Disable => None,
            ClientTlsMode::IstioMutual => Some(mesh_plan(&t.subject_alt_names, t.sni.as_ref())),
            ClientTlsMode::Simple | ClientTlsMode::Mutual => Some(TlsPlan::External {
                tls: t.clone(),
                server_name: t.sni.clone().unwrap_or_else(|| strip_port(host).to_owned()),
            }),
        },
    }
}

fn strip_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// Mesh client configurations by (expected identities, HTTP/2).
type ConfigCache = HashMap<(Vec<String>, bool), Arc<ClientConfig>>;

/// Builds TLS tables for clusters from the workload's mesh TLS settings.
pub(crate) struct Planner {
    mesh: Option<MeshTls>,
    stats: Arc<TlsStats>,
    configs: Mutex<ConfigCache>,
}

impl std::fmt::Debug for Planner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Planner")
            .field("mesh", &self.mesh.is_some())
            .finish_non_exhaustive()
    }
}

impl Planner {
    pub(crate) fn new(mesh: Option<MeshTls>) -> Self {
        Self {
            mesh,
            stats: Arc::default(),
            configs: Mutex::default(),
        }
    }

    pub(crate) fn stats(&self) -> &Arc<TlsStats> {
        &self.stats
    }

    /// The table of a cluster of `host` (port `port`, subset `subset`) over `endpoints`.
    pub(crate) fn table(
        &self,
        tls: Option<&ClientTls>,
        endpoints: &[Endpoint],
        host: &str,
        port: Option<u16>,
        subset: Option<&str>,
        http2: bool,
    ) -> TlsTable {
        let istio_sni = format!(
            "outbound_.{}_.{}_.{}",
            port.map_or_else(String::new, |p| p.to_string()),
            subset.unwrap_or(""),
            host
        );
        let mut plans: Vec<(SocketAddr, TlsPlan)> = endpoints
            .iter()
            .filter_map(|e| {
                plan(tls, e, host, &istio_sni, self.mesh.is_some()).map(|p| (e.addr, p))
            })
            .collect();
        plans.sort_by_key(|(addr, _)| *addr);
        let mut built: HashMap<&TlsPlan, Arc<TlsTarget>> = HashMap::new();
        let mut targets = HashMap::new();
        for (addr, p) in &plans {
            let target = built
                .entry(p)
                .or_insert_with(|| Arc::new(self.target(p, http2)))
                .clone();
            if let TlsTarget::Broken(reason) = &*target {
                tracing::warn!(%host, endpoint = %addr, %reason, "upstream TLS cannot be set up: connections will fail");
            }
            targets.insert(*addr, target);
        }
        TlsTable::from_parts(plans, targets, Arc::clone(&self.stats))
    }

    fn target(&self, plan: &TlsPlan, http2: bool) -> TlsTarget {
        let protocol = if http2 {
            UpstreamProtocol::Http2
        } else {
            UpstreamProtocol::Http1
        };
        match plan {
            TlsPlan::Mesh { expected, sni } => {
                let Some(mesh) = &self.mesh else {
                    return broken("ISTIO_MUTUAL needs the workload's certificate (--certs)");
                };
                let config = match self.mesh_config(mesh, expected, http2, protocol) {
                    Ok(c) => c,
                    Err(reason) => return TlsTarget::Broken(reason.into()),
                };
                let server_name = ServerName::try_from(sni.clone())
                    .or_else(|_| ServerName::try_from("outbound.mesh".to_owned()));
                match server_name {
                    Ok(server_name) => TlsTarget::Tls {
                        config,
                        server_name,
                        mesh: Some(mesh.clone()),
                    },
                    Err(e) => broken(&format!("sni `{sni}`: {e}")),
                }
            }
            TlsPlan::External { tls, server_name } => {
                match external_config(tls, protocol).and_then(|config| {
                    ServerName::try_from(server_name.clone())
                        .map(|name| (config, name))
                        .map_err(|e| format!("server name `{server_name}`: {e}"))
                }) {
                    Ok((config, server_name)) => TlsTarget::Tls {
                        config,
                        server_name,
                        mesh: None,
                    },
                    Err(reason) => TlsTarget::Broken(reason.into()),
                }
            }
        }
    }

    fn mesh_config(
        &self,
        mesh: &MeshTls,
        expected: &[String],
        http2: bool,
        protocol: UpstreamProtocol,
    ) -> Result<Arc<ClientConfig>, String> {
        let key = (expected.to_vec(), http2);
        let mut configs = self
            .configs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(c) = configs.get(&key) {
            return Ok(Arc::clone(c));
        }
        let server = if expected.is_empty() {
            ExpectedServer::AnyInMesh
        } else {
            let ids: Vec<SpiffeId> = expected.iter().filter_map(|s| s.parse().ok()).collect();
            if ids.is_empty() {
                return Err(format!(
                    "subjectAltNames: none of {expected:?} is a SPIFFE ID (spiffe://td/ns/NS/sa/SA)"
                ));
            }
            ExpectedServer::Identities(ids)
        };
        let config = mesh
            .client_config(server, protocol)
            .map_err(|e| e.to_string())?;
        configs.insert(key, Arc::clone(&config));
        Ok(config)
    }
}

fn broken(reason: &str) -> TlsTarget {
    TlsTarget::Broken(Arc::from(reason))
}

/// SIMPLE / MUTUAL: roots from `caCertificates` or the system, the client pair for MUTUAL.
fn external_config(
    tls: &ClientTls,
    protocol: UpstreamProtocol,
) -> Result<Arc<ClientConfig>, String> {
    // Istio: insecureSkipVerify skips the CA and SAN checks; subjectAltNames replace the
    // server name check; otherwise the server name (`sni`, else the host) is verified.
    let check = if tls.insecure_skip_verify {
        ServerCheck::SkipVerify
    } else if tls.subject_alt_names.is_empty() {
        ServerCheck::ServerName
    } else {
        ServerCheck::SubjectAltNames(tls.subject_alt_names.clone())
    };
    let roots = match (&tls.ca_certificates, &check) {
        (_, ServerCheck::SkipVerify) => Vec::new(),
        (Some(path), _) => read_certs(path, "caCertificates")?,
        (None, _) => system_roots().to_vec(),
    };
    if roots.is_empty() && check != ServerCheck::SkipVerify {
        return Err("no root certificates to verify the server with".to_owned());
    }
    let client = match (&tls.mode, &tls.client_certificate, &tls.private_key) {
        (ClientTlsMode::Mutual, Some(chain), Some(key)) => {
            let chain = read_certs(chain, "clientCertificate")?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| format!("privateKey {}: {e}", key.display()))?;
            Some((chain, key))
        }
        _ => None,
    };
    external_client_config(&roots, client, protocol, &check).map_err(|e| e.to_string())
}

fn read_certs(path: &Path, field: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{field} {}: {e}", path.display()))?
        .collect();
    let certs = certs.map_err(|e| format!("{field} {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{field} {}: no certificate", path.display()));
    }
    Ok(certs)
}

/// The system's trusted roots, read once.
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for error in &found.errors {
            tracing::warn!(%error, "system root certificates");
        }
        found.certs
    })
}
