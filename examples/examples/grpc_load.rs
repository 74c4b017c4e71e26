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
use std::time::Duration;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let entry: SocketAddr = args
        .first()
        .and_then(|a| a.parse().ok())
        .expect("usage: grpc_load ADDR [CALLERS] [SECONDS]");
    let callers: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(32);
    let seconds: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(5);
    let count =
        mesh_examples::grpc::closed_loop_calls(entry, callers, Duration::from_secs(seconds)).await;
    let (ok, elapsed) = (count.ok, count.elapsed.as_secs_f64());
    println!(
        "{ok} calls in {elapsed:.2} s: {:.0} calls/s, {} errors",
        ok as f64 / elapsed,
        count.errors
    );
}
