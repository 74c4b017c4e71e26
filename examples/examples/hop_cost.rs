//! What one hop of the mesh costs, measured in one process without sockets
//! ([`mesh_examples::hop`]): allocations per request, and (under callgrind) instructions.
//!
//! ```sh
//! cargo build --release -p mesh-examples --example hop_cost
//! target/release/examples/hop_cost                  # allocations per request, as JSON
//! target/release/examples/hop_cost run mesh 1000    # 1000 requests, for callgrind
//! target/release/examples/hop_cost run grpc-mesh 1000  # the gRPC hop (mesh_examples::grpc::hop)
//! scripts/callgrind.sh                              # instructions per request, mesh and bare
//! ```
//!
//! `bench` runs it (when built) and reports both figures beside the chain's.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::ExitCode;

use mesh_examples::grpc::hop::GrpcHop;
use mesh_examples::hop::{HopMode, InProcessHop};

/// The HTTP hop or its gRPC twin.
enum Hop {
    Http(InProcessHop),
    Grpc(GrpcHop),
}

impl Hop {
    fn start(mode: HopMode, grpc: bool) -> Hop {
        if grpc {
            Hop::Grpc(GrpcHop::start(mode).unwrap())
        } else {
            Hop::Http(InProcessHop::start(mode).unwrap())
        }
    }

    async fn ok(&self) -> bool {
        match self {
            Hop::Http(hop) => hop.request().await.map(|s| s.is_success()).unwrap_or(false),
            Hop::Grpc(hop) => matches!(hop.request().await, Ok(Some(0))),
        }
    }
}

/// Requests before measuring: pools, caches and lazily built tables settle.
const WARM_UP: u64 = 300;
/// Requests measured.
const MEASURED: u64 = 2000;

fn runtime() -> tokio::runtime::Runtime {
    // One thread: every task of the hop runs on the thread whose allocations are counted.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn run(rt: &tokio::runtime::Runtime, hop: &Hop, n: u64) -> u64 {
    rt.block_on(async {
        let mut ok = 0;
        for _ in 0..n {
            if hop.ok().await {
                ok += 1;
            }
        }
        ok
    })
}

/// Allocations and bytes per request of `mode`, after a warm-up.
fn allocations(mode: HopMode, grpc: bool) -> (f64, f64) {
    let rt = runtime();
    let hop = rt.block_on(async { Hop::start(mode, grpc) });
    assert_eq!(
        run(&rt, &hop, WARM_UP),
        WARM_UP,
        "{mode:?}: warm-up requests failed"
    );
    let mut ok = 0;
    let info = allocation_counter::measure(|| ok = run(&rt, &hop, MEASURED));
    assert_eq!(ok, MEASURED, "{mode:?}: measured requests failed");
    (
        info.count_total as f64 / MEASURED as f64,
        info.bytes_total as f64 / MEASURED as f64,
    )
}

/// The mode an argument names, and whether it is the gRPC hop.
fn mode(arg: Option<&str>) -> Option<(HopMode, bool)> {
    match arg {
        Some("mesh") => Some((HopMode::Mesh, false)),
        Some("bare") => Some((HopMode::Bare, false)),
        Some("grpc-mesh") => Some((HopMode::Mesh, true)),
        Some("grpc-bare") => Some((HopMode::Bare, true)),
        _ => None,
    }
}

fn main() -> ExitCode {
    // The subscriber the example apps install (both `--plain` and the mesh): the request spans'
    // cost is measured as the apps pay it.
    let _tracing = mesh_examples::run::init_tracing("service2", "v1", "default");
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None => {
            let (mesh, mesh_bytes) = allocations(HopMode::Mesh, false);
            let (bare, bare_bytes) = allocations(HopMode::Bare, false);
            let (grpc_mesh, grpc_mesh_bytes) = allocations(HopMode::Mesh, true);
            let (grpc_bare, grpc_bare_bytes) = allocations(HopMode::Bare, true);
            println!(
                "{{\"mesh_allocs_per_request\":{mesh:.2},\"bare_allocs_per_request\":{bare:.2},\"mesh_bytes_per_request\":{mesh_bytes:.0},\"bare_bytes_per_request\":{bare_bytes:.0},\"grpc_mesh_allocs_per_request\":{grpc_mesh:.2},\"grpc_bare_allocs_per_request\":{grpc_bare:.2},\"grpc_mesh_bytes_per_request\":{grpc_mesh_bytes:.0},\"grpc_bare_bytes_per_request\":{grpc_bare_bytes:.0}}}"
            );
            ExitCode::SUCCESS
        }
        Some("run") => {
            let (Some((mode, grpc)), Some(n)) = (
                mode(args.get(1).map(String::as_str)),
                args.get(2).and_then(|n| n.parse().ok()),
            ) else {
                eprintln!("usage: hop_cost run mesh|bare|grpc-mesh|grpc-bare N");
                return ExitCode::from(2);
            };
            let rt = runtime();
            let hop = rt.block_on(async { Hop::start(mode, grpc) });
            let ok = run(&rt, &hop, n);
            println!("{ok}/{n} requests answered 2xx");
            if ok == n {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Some(_) => {
            eprintln!("usage: hop_cost [run mesh|bare|grpc-mesh|grpc-bare N]");
            ExitCode::from(2)
        }
    }
}
