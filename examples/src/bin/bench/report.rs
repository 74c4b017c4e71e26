//! Summaries, targets, and the JSON and Markdown outputs.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use crate::inprocess::HopCost;
use crate::load::PhaseResult;
use crate::setup::{Kind, Role, Running};

/// One round of one set-up.
#[derive(Clone, Debug)]
pub(crate) struct Sample {
    pub latency: PhaseResult,
    pub throughput: PhaseResult,
    pub cpu_micros: f64,
}

/// A set-up's figures: the median over rounds.
pub(crate) struct SetupResult {
    pub kind: Kind,
    pub p50_us: f64,
    pub p99_us: f64,
    pub rps: f64,
    pub errors: u64,
    /// CPU of every process in the set-up per request, divided by the three hops.
    pub cpu_us_per_req_hop: f64,
    /// (process name, RSS KiB idle, RSS KiB after load).
    pub rss: Vec<(String, u64, u64)>,
    pub app_rss_kib: u64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

impl SetupResult {
    pub(crate) fn new(r: &Running, samples: Vec<Sample>, idle: Vec<u64>) -> Self {
        let rss: Vec<(String, u64, u64)> = r
            .procs
            .iter()
            .zip(idle)
            .map(|(p, idle)| (p.name.clone(), idle, p.rss_kib()))
            .collect();
        let app_rss_kib = r
            .procs
            .iter()
            .filter(|p| p.role == Role::App)
            .map(|p| p.rss_kib())
            .sum();
        Self {
            kind: r.kind,
            p50_us: median(samples.iter().map(|s| s.latency.p50_us).collect()),
            p99_us: median(samples.iter().map(|s| s.latency.p99_us).collect()),
            rps: median(samples.iter().map(|s| s.throughput.rps()).collect()),
            errors: samples
                .iter()
                .map(|s| s.latency.errors + s.throughput.errors)
                .sum(),
            cpu_us_per_req_hop: median(
                samples
                    .iter()
                    .map(|s| s.cpu_micros / (s.throughput.ok.max(1) as f64) / 3.0)
                    .collect(),
            ),
            rss,
            app_rss_kib,
        }
    }
}

fn find(results: &[SetupResult], kind: Kind) -> Option<&SetupResult> {
    results.iter().find(|r| r.kind == kind)
}

/// The Markdown table.
pub(crate) fn markdown(results: &[SetupResult], hop: Option<&HopCost>, how: &str) -> String {
    let plain = find(results, Kind::Plain);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Chain client → service1 → service2 → service3 on loopback; {how}.\n"
    );
    let _ = writeln!(
        s,
        "| set-up | p50 µs | p99 µs | p50 vs plain | throughput req/s | vs plain | CPU µs/req/hop | RSS of the 3 apps MiB | errors |"
    );
    let _ = writeln!(s, "| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for r in results {
        let (lat, thr) = plain.map_or((1.0, 1.0), |p| {
            (r.p50_us / p.p50_us.max(1.0), r.rps / p.rps.max(1e-9))
        });
        let _ = writeln!(
            s,
            "| {} | {:.0} | {:.0} | {:.2}× | {:.0} | {:.2}× | {:.1} | {:.1} | {} |",
            r.kind,
            r.p50_us,
            r.p99_us,
            lat,
            r.rps,
            thr,
            r.cpu_us_per_req_hop,
            r.app_rss_kib as f64 / 1024.0,
            r.errors
        );
    }
    let _ = writeln!(s, "\nRSS per process (KiB, idle → after load):\n");
    for r in results {
        let procs: Vec<String> = r
            .rss
            .iter()
            .map(|(n, a, b)| format!("{n} {a} → {b}"))
            .collect();
        let _ = writeln!(s, "- {}: {}", r.kind, procs.join(", "));
    }
    if let Some(h) = hop {
        let _ = writeln!(
            s,
            "\nOne hop in one process, no sockets (service2's app calling an in-process service3; `examples/hop_cost.rs`):\n"
        );
        let _ = writeln!(s, "| per request | mesh | bare app | the mesh's cost |");
        let _ = writeln!(s, "| --- | --- | --- | --- |");
        let _ = writeln!(
            s,
            "| allocations | {:.1} | {:.1} | {:.1} |",
            h.mesh_allocs,
            h.bare_allocs,
            h.mesh_allocs - h.bare_allocs
        );
        let _ = writeln!(
            s,
            "| bytes allocated | {:.0} | {:.0} | {:.0} |",
            h.mesh_bytes,
            h.bare_bytes,
            h.mesh_bytes - h.bare_bytes
        );
        if let Some((m, b)) = h.instructions {
            let _ = writeln!(
                s,
                "| instructions (callgrind) | {m} | {b} | {} |",
                m as i64 - b as i64
            );
        }
    }
    s
}

/// The targets, each with its figure and PASS or MISS.
pub(crate) fn targets(results: &[SetupResult]) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |name: &str, ok: bool, detail: String| {
        out.push(format!(
            "{} {name}: {detail}",
            if ok { "PASS" } else { "MISS" }
        ));
    };
    if let (Some(p), Some(m)) = (find(results, Kind::Plain), find(results, Kind::Mesh)) {
        let lat = m.p50_us / p.p50_us.max(1.0);
        check("mesh p50 ≤ 1.05 × plain", lat <= 1.05, format!("{lat:.3}×"));
        let thr = m.rps / p.rps.max(1e-9);
        check(
            "mesh throughput ≥ 0.95 × plain",
            thr >= 0.95,
            format!("{thr:.3}×"),
        );
        let cpu = m.cpu_us_per_req_hop - p.cpu_us_per_req_hop;
        check(
            "mesh CPU ≤ 5 µs per request per hop over plain",
            cpu <= 5.0,
            format!("{cpu:.1} µs"),
        );
        let rss = (m.app_rss_kib as f64 - p.app_rss_kib as f64) / 3.0 / 1024.0;
        check(
            "mesh extra RSS ≤ 5 MiB per service",
            rss <= 5.0,
            format!("{rss:.2} MiB"),
        );
    }
    if let (Some(m), Some(s)) = (find(results, Kind::Mesh), find(results, Kind::Sidecar)) {
        let lat = m.p50_us / s.p50_us.max(1.0);
        check(
            "mesh p50 ≤ 0.5 × sidecar model",
            lat <= 0.5,
            format!("{lat:.3}×"),
        );
    }
    out
}

/// Writes `target/bench/bench.json`.
pub(crate) fn write_json(
    results: &[SetupResult],
    hop: Option<&HopCost>,
    verdict: &[String],
) -> std::io::Result<()> {
    let setups: Vec<serde_json::Value> = results
        .iter()
        .map(|r| {
            serde_json::json!({
                "setup": r.kind.to_string(),
                "p50_us": r.p50_us, "p99_us": r.p99_us, "rps": r.rps, "errors": r.errors,
                "cpu_us_per_request_per_hop": r.cpu_us_per_req_hop,
                "rss_kib": r.rss.iter().map(|(n, a, b)| serde_json::json!({"process": n, "idle": a, "loaded": b})).collect::<Vec<_>>(),
            })
        })
        .collect();
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| Path::new("target").to_path_buf(), Into::into);
    let dir = dir.join("bench");
    fs::create_dir_all(&dir)?;
    let in_process = hop.map(|h| {
        serde_json::json!({
            "mesh_allocs_per_request": h.mesh_allocs, "bare_allocs_per_request": h.bare_allocs,
            "mesh_bytes_per_request": h.mesh_bytes, "bare_bytes_per_request": h.bare_bytes,
            "mesh_instructions_per_request": h.instructions.map(|i| i.0),
            "bare_instructions_per_request": h.instructions.map(|i| i.1),
        })
    });
    let body =
        serde_json::json!({ "setups": setups, "in_process_hop": in_process, "targets": verdict });
    fs::write(
        dir.join("bench.json"),
        serde_json::to_vec_pretty(&body).unwrap_or_default(),
    )
}

const BEGIN: &str = "<!-- bench:begin -->";
const END: &str = "<!-- bench:end -->";

/// Replaces the generated part of `docs/benchmarks.md` (between the markers), keeping the prose.
pub(crate) fn write_docs(table: &str, verdict: &[String]) -> std::io::Result<()> {
    let path = Path::new("docs/benchmarks.md");
    let old = fs::read_to_string(path).unwrap_or_default();
    let generated = format!(
        "{BEGIN}\n{table}\nTargets:\n\n{}\n{END}",
        verdict
            .iter()
            .map(|l| format!("- {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let new = match (old.find(BEGIN), old.find(END)) {
        (Some(a), Some(b)) if a < b => format!("{}{generated}{}", &old[..a], &old[b + END.len()..]),
        _ => format!("{old}\n{generated}\n"),
    };
    fs::write(path, new)
}
