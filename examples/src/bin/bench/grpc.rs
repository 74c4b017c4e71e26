//! The gRPC row: unary `mesh.examples.Echo/Call` through the chain (service1 → service2 →
//! service3), closed loop, with tonic's client over HTTP/2 (h2c, prior knowledge): the apps
//! `--plain` (bare tonic) against the apps with the mesh. The sidecar set-up is left out (its
//! nginx hops speak HTTP/1.1).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use crate::setup::Kind;

/// One gRPC phase: calls answered OK, failed, wall time.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct GrpcSample {
    pub ok: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub cpu_micros: f64,
}

/// `concurrency` callers sending `Call` to `entry` back to back for `duration`.
pub(crate) async fn closed_loop(
    entry: SocketAddr,
    concurrency: usize,
    duration: Duration,
) -> GrpcSample {
    let count = mesh_examples::grpc::closed_loop_calls(entry, concurrency, duration).await;
    GrpcSample {
        ok: count.ok,
        errors: count.errors,
        elapsed: count.elapsed,
        cpu_micros: 0.0,
    }
}

/// The median (by throughput) of each set-up's rounds, as a markdown table, and the mesh's
/// extra CPU per call per hop over plain tonic.
pub(crate) fn markdown(rows: &[(Kind, Vec<GrpcSample>)]) -> String {
    let mut out = String::from(
        "\ngRPC, unary `Echo/Call` through the chain (closed loop, tonic client over h2c):\n\n| set-up | calls/s | CPU µs/call/hop | errors |\n| --- | --- | --- | --- |\n",
    );
    let mut cpu = Vec::new();
    for (kind, samples) in rows {
        let mut sorted = samples.clone();
        sorted.sort_by(|a, b| rate(a).total_cmp(&rate(b)));
        let Some(m) = sorted.get(sorted.len() / 2) else {
            continue;
        };
        // Three apps serve each call: CPU of the three over calls and hops.
        let per_hop = m.cpu_micros / m.ok.max(1) as f64 / 3.0;
        cpu.push((*kind, per_hop));
        let _ = writeln!(
            out,
            "| {kind} | {:.0} | {per_hop:.1} | {} |",
            rate(m),
            m.errors
        );
    }
    let plain = cpu.iter().find(|(k, _)| *k == Kind::Plain).map(|c| c.1);
    let mesh = cpu.iter().find(|(k, _)| *k == Kind::Mesh).map(|c| c.1);
    if let (Some(p), Some(m)) = (plain, mesh) {
        let _ = writeln!(
            out,
            "\ngRPC: the mesh costs {:.1} µs of CPU per call per hop over bare tonic (target ≤ 5 µs).",
            m - p
        );
    }
    out
}

fn rate(s: &GrpcSample) -> f64 {
    s.ok as f64 / s.elapsed.as_secs_f64().max(1e-9)
}
