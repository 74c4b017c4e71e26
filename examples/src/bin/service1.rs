//! service1: the article's front service. Answers any path with its JSON and calls service2
//! through the mesh client (routing, split, mirror, retries from the config folder), forwarding
//! `authorization`, `end-user`, `version`, `x-request-id` and `traceparent`.
//!
//! Run: `cargo run --release -p mesh-examples --bin service1 -- --config examples/config`
//! (`--plain` for the same handler with no mesh at all; `--help` for every flag).

use clap::Parser;
use mesh_examples::cli::{ServiceArgs, ports};

/// service1 of the article.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    args: ServiceArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    mesh_examples::run::service_main("service1", "v1", cli.args, ports::SERVICE1).await
}
