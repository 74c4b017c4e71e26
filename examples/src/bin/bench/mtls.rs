//! The chain under mutual TLS: the mesh set-up with `--certs` (a throwaway CA, one workload
//! certificate per app, [`mesh_examples::lab_tls`]), its endpoints labelled for auto-mTLS and
//! service2 and service3 under a STRICT PeerAuthentication (service1 stays PERMISSIVE: the load
//! generator speaks plaintext to it), so service1 → service2 → service3 is mutual TLS over pooled
//! connections. Beside CPU per request per hop, it reports the apps' upstream TLS handshakes per
//! second during the throughput phase (`/config_dump` `outbound_tls`): with pooling that is a
//! handful at warm-up and ~0 under load, never one per request.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use mesh_examples::lab_tls::{with_auto_mtls, write_certs};

use crate::report::SetupResult;
use crate::setup::Kind;

/// STRICT for service2 and service3 (the hops behind service1).
const STRICT: &str = "apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: service2-strict, namespace: default}
spec:
  selector: {matchLabels: {app: service2}}
  mtls: {mode: STRICT}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: service3-strict, namespace: default}
spec:
  selector: {matchLabels: {app: service3}}
  mtls: {mode: STRICT}
";

/// Writes the certificates and the STRICT policies under `dir`/`cfg`, labels `registry`'s
/// endpoints for auto-mTLS; returns the folder holding one certificate folder per app.
pub(crate) fn prepare(dir: &Path, cfg: &Path, registry: &mut String) -> Result<PathBuf, String> {
    let certs = write_certs(dir).map_err(|e| format!("writing certificates: {e}"))?;
    *registry = with_auto_mtls(registry);
    std::fs::write(cfg.join("20-mtls.yaml"), STRICT).map_err(|e| format!("writing policy: {e}"))?;
    Ok(certs)
}

/// The upstream TLS handshakes the apps at `admins` completed so far (0 for an app that does
/// not answer).
pub(crate) fn handshakes(admins: &[SocketAddr]) -> u64 {
    admins.iter().filter_map(|a| outbound_tls(*a)).sum()
}

fn outbound_tls(admin: SocketAddr) -> Option<u64> {
    let mut tcp = TcpStream::connect_timeout(&admin, Duration::from_secs(2)).ok()?;
    tcp.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    tcp.write_all(b"GET /config_dump HTTP/1.0\r\nhost: admin\r\n\r\n")
        .ok()?;
    let mut raw = Vec::new();
    tcp.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw);
    let (_, body) = text.split_once("\r\n\r\n")?;
    let dump: serde_json::Value = serde_json::from_str(body).ok()?;
    dump["outbound_tls"]["handshakes"].as_u64()
}

/// One round of the mTLS set-up: handshakes during the throughput phase and its length.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct HandshakeSample {
    pub handshakes: u64,
    pub requests: u64,
    pub seconds: f64,
}

/// The mTLS section of the report: mTLS against the plaintext mesh and the plain apps.
pub(crate) fn markdown(
    results: &[SetupResult],
    samples: &[HandshakeSample],
    total: Option<u64>,
) -> String {
    let find = |k: Kind| results.iter().find(|r| r.kind == k);
    let Some(mtls) = find(Kind::MeshMtls) else {
        return String::new();
    };
    let mut s = String::from(
        "\n### The chain under mutual TLS\n\nservice1 → service2 → service3 with `--certs` \
         (auto-mTLS, service2 and service3 STRICT, pooled connections), beside the plaintext \
         mesh, the plain apps, and the plain apps over mutual TLS with plain rustls \
         (`--plain --certs`, the TLS baseline).\n\n| set-up | p50 µs | p99 µs | req/s | CPU µs/req/hop |\n\
         | --- | --- | --- | --- | --- |\n",
    );
    for r in [
        find(Kind::Plain),
        find(Kind::PlainTls),
        find(Kind::Mesh),
        Some(mtls),
    ]
    .into_iter()
    .flatten()
    {
        let _ = writeln!(
            s,
            "| {} | {:.0} | {:.0} | {:.0} | {:.1} |",
            r.kind, r.p50_us, r.p99_us, r.rps, r.cpu_us_per_req_hop
        );
    }
    let (per_second, per_request) = rates(samples);
    let _ = writeln!(
        s,
        "\nUpstream TLS handshakes under load: {per_second:.2}/s ({per_request:.5} per request); \
         {} in all, warm-up included.",
        total.unwrap_or(0)
    );
    s
}

/// Handshakes per second and per request over every round.
fn rates(samples: &[HandshakeSample]) -> (f64, f64) {
    let handshakes: u64 = samples.iter().map(|s| s.handshakes).sum();
    let requests: u64 = samples.iter().map(|s| s.requests).sum();
    let seconds: f64 = samples.iter().map(|s| s.seconds).sum();
    (
        handshakes as f64 / seconds.max(1e-9),
        handshakes as f64 / (requests.max(1) as f64),
    )
}

/// The mTLS targets: ≤ 5 µs CPU per request per hop over the plaintext mesh, and no handshake
/// per request (fewer than one per thousand requests).
pub(crate) fn targets(
    results: &[SetupResult],
    samples: &[HandshakeSample],
    total: Option<u64>,
) -> Vec<String> {
    let find = |k: Kind| results.iter().find(|r| r.kind == k);
    let (Some(mesh), Some(mtls)) = (find(Kind::Mesh), find(Kind::MeshMtls)) else {
        return Vec::new();
    };
    let cpu = mtls.cpu_us_per_req_hop - mesh.cpu_us_per_req_hop;
    let tls_baseline = find(Kind::PlainTls).map(|p| {
        let over = mtls.cpu_us_per_req_hop - p.cpu_us_per_req_hop;
        format!(
            "INFO mTLS mesh CPU over the plain rustls baseline: {over:.1} µs per request per hop"
        )
    });
    let (_, per_request) = rates(samples);
    let verdict = |ok: bool| if ok { "PASS" } else { "MISS" };
    // No handshake at all means the chain did not run over TLS: the figures would be the
    // plaintext mesh's.
    let ran_tls = total.unwrap_or(0) > 0;
    vec![
        format!(
            "{} the mTLS set-up ran over mutual TLS: {} upstream handshakes",
            verdict(ran_tls),
            total.unwrap_or(0)
        ),
        format!(
            "{} mTLS CPU ≤ 5 µs per request per hop over the plaintext mesh: {cpu:.1} µs",
            verdict(cpu <= 5.0)
        ),
        format!(
            "{} no TLS handshake per request under load: {per_request:.5} per request",
            verdict(ran_tls && per_request < 0.001)
        ),
    ]
    .into_iter()
    .chain(tls_baseline)
    .collect()
}
