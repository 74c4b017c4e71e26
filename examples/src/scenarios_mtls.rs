//! The chain under mutual TLS: the lab's apps with workload certificates, STRICT mesh-wide, the
//! endpoints labelled for auto-mTLS. Each hop's server (`reporter="destination"`) must report
//! `connection_security_policy="mutual_tls"` with the caller's and its own principal.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::lab::{Lab, LabError, LabOptions};
use crate::scenarios::{Outcome, Progress};

/// The principals of each hop, caller first, as the destinations report them.
const HOPS: [(&str, &str); 3] = [
    (
        "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account",
        "spiffe://cluster.local/ns/default/sa/service1",
    ),
    (
        "spiffe://cluster.local/ns/default/sa/service1",
        "spiffe://cluster.local/ns/default/sa/service2",
    ),
    (
        "spiffe://cluster.local/ns/default/sa/service2",
        "spiffe://cluster.local/ns/default/sa/service3",
    ),
];

/// Runs the chain through the gateway under STRICT mutual TLS and reads each hop's principals.
pub async fn mtls(progress: Arc<dyn Progress>) -> Result<Outcome, LabError> {
    progress.phase("mtls: the chain under STRICT mutual TLS, auto-mTLS on every hop");
    let lab = Lab::start(
        "mtls",
        LabOptions {
            mtls: true,
            ..LabOptions::default()
        },
    )
    .await?;
    let mut replies = Vec::new();
    for _ in 0..5 {
        replies.push(lab.get("/service1/hello", &[]).await);
    }
    // Plaintext straight to service1 is refused under STRICT.
    let direct = crate::lab::get(
        &hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(hyper_util::client::legacy::connect::HttpConnector::new()),
        lab.service1.addr,
        "/hello",
        &[],
    )
    .await;
    let mut seen = Vec::new();
    for admin in [
        lab.service1.admin,
        lab.service2_v1.admin,
        lab.service2_v2.admin,
        lab.service3.admin,
    ] {
        seen.extend(mutual_tls_hops(&metrics(admin).await));
    }
    seen.sort();
    seen.dedup();
    lab.stop().await;
    let ok = replies.iter().all(|r| r.status == 200);
    let all_hops = HOPS
        .iter()
        .all(|(s, d)| seen.iter().any(|(a, b)| a == s && b == d));
    let shown: Vec<String> = seen.iter().map(|(s, d)| format!("{s} → {d}")).collect();
    Ok(Outcome {
        name: "mtls",
        expected: "200 through the chain; every hop mutual_tls with the caller's and the callee's SPIFFE principals; plaintext to a service refused".into(),
        observed: format!(
            "statuses {:?}; plaintext to service1: {}; mutual_tls hops: {}",
            replies.iter().map(|r| r.status).collect::<Vec<_>>(),
            if direct.status == 0 { "refused".to_owned() } else { direct.status.to_string() },
            shown.join("; ")
        ),
        passed: ok && all_hops && direct.status == 0,
    })
}

/// `(source_principal, destination_principal)` of every `reporter="destination"` request
/// series over mutual TLS in a Prometheus text page.
pub fn mutual_tls_hops(metrics: &str) -> Vec<(String, String)> {
    metrics
        .lines()
        .filter(|l| l.starts_with("istio_requests_total{"))
        .filter(|l| l.contains("reporter=\"destination\""))
        .filter(|l| l.contains("connection_security_policy=\"mutual_tls\""))
        .filter_map(|l| {
            Some((
                label(l, "source_principal")?,
                label(l, "destination_principal")?,
            ))
        })
        .collect()
}

fn label(line: &str, name: &str) -> Option<String> {
    let start = line.find(&format!("{name}=\""))? + name.len() + 2;
    let len = line[start..].find('"')?;
    Some(line[start..start + len].to_owned())
}

async fn metrics(admin: SocketAddr) -> String {
    let Ok(mut tcp) = tokio::net::TcpStream::connect(admin).await else {
        return String::new();
    };
    if tcp
        .write_all(b"GET /metrics HTTP/1.0\r\nhost: admin\r\n\r\n")
        .await
        .is_err()
    {
        return String::new();
    }
    let mut raw = String::new();
    let _ = tcp.read_to_string(&mut raw).await;
    raw
}
