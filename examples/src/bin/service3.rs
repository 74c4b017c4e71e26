//! service3: the end of the article's chain. Answers any path with its JSON (`upstream` is null);
//! `--error-rate`, `--latency` make it misbehave on purpose.
//!
//! Run: `cargo run --release -p mesh-examples --bin service3 -- --config examples/config`

use clap::Parser;
use mesh_examples::cli::{ServiceArgs, ports};

/// service3 of the article.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    args: ServiceArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    mesh_examples::run::service_main("service3", "v1", cli.args, ports::SERVICE3).await
}
