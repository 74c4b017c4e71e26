//! Trust domains with the example apps (started in-process on real sockets): service3's
//! certificate is under `new-td`, the mesh config (ConfigMap `istio-system/istio` in the folder)
//! names `old-td` an alias. A caller under the alias is accepted and matches a policy written
//! under `new-td`; a policy under `cluster.local` matches a caller under `new-td`; a foreign
//! trust domain is refused at the handshake; the alias removed from the ConfigMap, callers
//! under it are refused on new connections.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use mesh_examples::run::Shutdown;
use mesh_tls::config::{ExpectedServer, UpstreamProtocol};
use mesh_tls::testing::{LeafSpec, TestCa};
use mesh_tls::{MeshTls, TrustDomain};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;

use support::{get_hello, service_spec};

const SERVICE3: &str = "spiffe://new-td/ns/default/sa/service3";

const POLICIES: &str = "apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: STRICT}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: service3, namespace: default}
spec:
  selector: {matchLabels: {app: service3}}
  action: ALLOW
  rules:
  - from:
    - source: {principals: [new-td/ns/default/sa/service1, cluster.local/ns/default/sa/gateway]}
";

fn mesh_config(aliases: &str) -> String {
    format!(
        "apiVersion: v1
kind: ConfigMap
metadata: {{name: istio, namespace: istio-system}}
data:
  mesh: |
    trustDomain: new-td
    trustDomainAliases: [{aliases}]
"
    )
}

/// GET /hello as `id` (a certificate from `ca`): the status, or `None` when the handshake or
/// the request fails.
async fn call_as(ca: &TestCa, id: &str, addr: std::net::SocketAddr) -> Option<u16> {
    let leaf = ca.leaf(&LeafSpec::spiffe(id));
    let client = MeshTls::new(leaf.source())
        .with_trust_domain_aliases(["new-td", "old-td"].map(|d| TrustDomain::new(d).unwrap()))
        .client_config(
            ExpectedServer::Identities(vec![SERVICE3.parse().unwrap()]),
            UpstreamProtocol::Http1,
        )
        .unwrap();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("service3.default.svc.cluster.local").unwrap();
    let tls = TlsConnector::from(Arc::clone(&client))
        .connect(name, tcp)
        .await
        .ok()?;
    get_hello(tls, "service3").await.map(|(status, _)| status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aliases_from_the_mesh_config_and_cluster_local_principals() {
    let ca = TestCa::new("migrating");
    let config = tempfile::tempdir().unwrap();
    std::fs::write(config.path().join("policies.yaml"), POLICIES).unwrap();
    std::fs::write(config.path().join("mesh.yaml"), mesh_config("old-td")).unwrap();
    let certs = tempfile::tempdir().unwrap();
    ca.leaf(&LeafSpec::spiffe(SERVICE3))
        .write_to(certs.path())
        .unwrap();
    let shutdown = Shutdown::new();
    let spec = service_spec("service3", false, config.path(), Some(certs.path()));
    let service3 = support::start(&spec, &shutdown).await;
    let addr = service3.addr;

    // The local trust domain and the alias: the same workload for a policy under new-td.
    let local = "spiffe://new-td/ns/default/sa/service1";
    let alias = "spiffe://old-td/ns/default/sa/service1";
    assert_eq!(call_as(&ca, local, addr).await, Some(200));
    assert_eq!(call_as(&ca, alias, addr).await, Some(200));
    // `cluster.local/...` in a policy stands for the local trust domain and its aliases.
    for gateway in [
        "spiffe://new-td/ns/default/sa/gateway",
        "spiffe://old-td/ns/default/sa/gateway",
    ] {
        assert_eq!(call_as(&ca, gateway, addr).await, Some(200), "{gateway}");
    }
    // Another workload under the alias: authenticated, not allowed.
    assert_eq!(
        call_as(&ca, "spiffe://old-td/ns/default/sa/other", addr).await,
        Some(403)
    );
    // A foreign trust domain: refused at the handshake, whatever the policy says.
    assert_eq!(
        call_as(&ca, "spiffe://far-td/ns/default/sa/service1", addr).await,
        None
    );

    // The alias removed from the mesh config: callers under it are refused on new connections.
    std::fs::write(config.path().join("mesh.yaml"), mesh_config("")).unwrap();
    let start = Instant::now();
    while call_as(&ca, alias, addr).await.is_some() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the alias is still accepted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(call_as(&ca, local, addr).await, Some(200));
    shutdown.trigger();
}
