//! # bench: the mesh against bare hyper and against the sidecar model, side by side
//!
//! Runs the example chain client → service1 → service2 → service3 on loopback in three set-ups,
//! interleaved and repeated: the apps `--plain` (bare hyper, the baseline), the apps with the mesh
//! (every layer on the happy path), and the plain apps behind two nginx hops per call (the
//! sidecar model), plus a gRPC row (unary `Echo/Call`, plain tonic against the mesh) and the mesh
//! chain under mutual TLS (`--certs`, auto-mTLS, STRICT; `--no-mtls` skips it). Prints and
//! writes the p50/p99 latency, throughput, CPU µs per request per hop
//! (from `/proc`) and RSS per process, to `target/bench/bench.json` and the table in
//! `docs/benchmarks.md`.
//!
//! It also measures one hop in one process, without sockets (`examples/hop_cost.rs`): the mesh's
//! allocations per request and, when valgrind is installed, its instructions per request.
//!
//! ```sh
//! cargo build --release -p mesh-examples --bins --example hop_cost
//! apt-get install -y nginx     # for the sidecar set-up; skipped with a note when absent
//! cargo run --release -p mesh-examples --bin bench -- --rounds 3 --duration 5s
//! ```

mod grpc;
mod inprocess;
mod load;
mod mtls;
mod procfs;
mod report;
mod setup;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use setup::Kind;

/// Command line.
#[derive(Parser, Debug)]
#[command(about = "Benchmark the mesh against bare hyper and nginx sidecars on loopback")]
struct Args {
    /// Rounds; the set-ups are interleaved within each round and the median round is reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Length of each measured phase.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Request rate of the latency phase (open loop), per second.
    #[arg(long, default_value_t = 500)]
    rate: u32,
    /// Connections of the throughput phase (closed loop).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Skip the nginx sidecar set-up.
    #[arg(long)]
    no_sidecar: bool,
    /// Skip the mutual TLS set-up (the mesh apps with `--certs`).
    #[arg(long)]
    no_mtls: bool,
    /// Do not rewrite the table in docs/benchmarks.md.
    #[arg(long)]
    no_docs: bool,
}

fn bin_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("target/release"))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let bin = bin_dir();
    for app in ["service1", "service2", "service3"] {
        if !bin.join(app).exists() {
            eprintln!(
                "{} is missing: run `cargo build --release -p mesh-examples --bins` first",
                bin.join(app).display()
            );
            return ExitCode::from(2);
        }
    }
    let mut kinds = vec![Kind::Plain, Kind::Mesh];
    let has_nginx = std::process::Command::new("nginx")
        .arg("-v")
        .output()
        .is_ok();
    if !args.no_sidecar && has_nginx {
        kinds.push(Kind::Sidecar);
    } else if !args.no_sidecar {
        eprintln!("nginx not found: the sidecar set-up is skipped (apt-get install -y nginx)");
    }

    if !args.no_mtls {
        kinds.extend([Kind::PlainTls, Kind::MeshMtls]);
    }

    let mut running = Vec::new();
    for kind in &kinds {
        match setup::start(*kind, &bin) {
            Ok(r) => running.push(r),
            Err(e) => {
                eprintln!("could not start the {kind} set-up: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let rss_idle: Vec<Vec<u64>> = running
        .iter()
        .map(|r| r.procs.iter().map(setup::Proc::rss_kib).collect())
        .collect();

    // Warm-up: connections, pools, caches, page faults.
    for r in &running {
        eprintln!("warming up {} ...", r.kind);
        let _ =
            load::closed_loop(r.entry, "/bench", args.concurrency, Duration::from_secs(1)).await;
    }

    let mut rounds: Vec<Vec<report::Sample>> = vec![Vec::new(); running.len()];
    let mut grpc_rounds: Vec<Vec<grpc::GrpcSample>> = vec![Vec::new(); running.len()];
    let mut handshake_rounds: Vec<mtls::HandshakeSample> = Vec::new();
    for round in 1..=args.rounds.max(1) {
        for (i, r) in running.iter().enumerate() {
            eprintln!(
                "round {round}/{}: {} latency at {} rps ...",
                args.rounds, r.kind, args.rate
            );
            let latency = load::open_loop(r.entry, "/bench", args.rate, args.duration).await;
            eprintln!(
                "round {round}/{}: {} throughput with {} connections ...",
                args.rounds, r.kind, args.concurrency
            );
            let cpu_before = r.cpu_micros();
            let handshakes_before = mtls::handshakes(&r.admins);
            let throughput =
                load::closed_loop(r.entry, "/bench", args.concurrency, args.duration).await;
            let cpu = r.cpu_micros() - cpu_before;
            if r.kind == Kind::MeshMtls {
                handshake_rounds.push(mtls::HandshakeSample {
                    handshakes: mtls::handshakes(&r.admins).saturating_sub(handshakes_before),
                    requests: throughput.ok,
                    seconds: throughput.elapsed.as_secs_f64(),
                });
            }
            rounds[i].push(report::Sample {
                latency,
                throughput,
                cpu_micros: cpu,
            });
            if matches!(r.kind, Kind::Plain | Kind::Mesh) {
                eprintln!(
                    "round {round}/{}: {} gRPC calls with {} connections ...",
                    args.rounds, r.kind, args.concurrency
                );
                let cpu_before = r.cpu_micros();
                let mut sample = grpc::closed_loop(r.entry, args.concurrency, args.duration).await;
                sample.cpu_micros = r.cpu_micros() - cpu_before;
                grpc_rounds[i].push(sample);
            }
        }
    }

    let handshakes_total = running
        .iter()
        .find(|r| r.kind == Kind::MeshMtls)
        .map(|r| mtls::handshakes(&r.admins));
    let grpc_rows: Vec<(Kind, Vec<grpc::GrpcSample>)> = running
        .iter()
        .map(|r| r.kind)
        .zip(grpc_rounds)
        .filter(|(_, samples)| !samples.is_empty())
        .collect();
    let results: Vec<report::SetupResult> = running
        .iter()
        .zip(rounds)
        .zip(rss_idle)
        .map(|((r, samples), idle)| report::SetupResult::new(r, samples, idle))
        .collect();
    drop(running);

    let hop = if inprocess::hop_cost_bin(&bin).exists() {
        eprintln!("one hop in process: allocations and instructions per request ...");
        inprocess::measure(&bin)
            .map_err(|e| eprintln!("in-process figures skipped: {e}"))
            .ok()
    } else {
        eprintln!(
            "{} is missing: in-process figures skipped (cargo build --release -p mesh-examples --example hop_cost)",
            inprocess::hop_cost_bin(&bin).display()
        );
        None
    };
    let mut table = report::markdown(&results, hop.as_ref(), &args_summary(&args));
    table.push_str(&grpc::markdown(&grpc_rows));
    table.push_str(&mtls::markdown(
        &results,
        &handshake_rounds,
        handshakes_total,
    ));
    println!("{table}");
    let mut verdict = report::targets(&results);
    verdict.extend(mtls::targets(&results, &handshake_rounds, handshakes_total));
    for line in &verdict {
        println!("{line}");
    }
    if let Err(e) = report::write_json(&results, hop.as_ref(), &verdict) {
        eprintln!("could not write target/bench/bench.json: {e}");
    }
    if !args.no_docs
        && let Err(e) = report::write_docs(&table, &verdict)
    {
        eprintln!("could not update docs/benchmarks.md: {e}");
    }
    ExitCode::SUCCESS
}

fn args_summary(args: &Args) -> String {
    format!(
        "{} rounds, {:?} per phase, latency at {} req/s (open loop), throughput with {} connections (closed loop)",
        args.rounds, args.duration, args.rate, args.concurrency
    )
}
