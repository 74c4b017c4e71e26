//! A closed-loop gRPC load on one address: `concurrency` callers sending `Echo/Call` back to
//! back, each over its own HTTP/2 connection, as `bench`'s gRPC row does. For profiling a chain
//! started by hand (`scripts/grpc_chain.sh`) with strace, perf or `/proc`.
//!
//! ```sh
//! cargo build --release -p mesh-examples --example grpc_load
//! target/release/examples/grpc_load 127.0.0.1:8001 32 10   # address, callers, seconds
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mesh_examples::grpc::GrpcUpstream;
use mesh_examples::grpc::echo::CallRequest;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let entry: SocketAddr = args
        .first()
        .and_then(|a| a.parse().ok())
        .expect("usage: grpc_load ADDR [CALLERS] [SECONDS]");
    let callers: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(32);
    let seconds: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(5);
    let ok = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..callers.max(1) {
        let client = GrpcUpstream::plain(entry);
        let (ok, errors) = (ok.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < until {
                let request = tonic::Request::new(CallRequest {
                    path: "/bench".into(),
                });
                match client.call(request).await {
                    Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                    Err(_) => errors.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let ok = ok.load(Ordering::Relaxed);
    println!(
        "{ok} calls in {elapsed:.2} s: {:.0} calls/s, {} errors",
        ok as f64 / elapsed,
        errors.load(Ordering::Relaxed)
    );
}
