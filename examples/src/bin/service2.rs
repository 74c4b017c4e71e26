//! service2: the service the article splits, mirrors and canaries. Run it twice, as `--version v1`
//! and `--version v2`; the DestinationRule's subsets select the two by their `version` label. It
//! calls service3 through the mesh client.
//!
//! Run: `cargo run --release -p mesh-examples --bin service2 -- --version v1` (and `--version v2`;
//! each version has its own default addresses, matching `examples/config`).

use clap::Parser;
use mesh_examples::cli::{FlagError, ServiceArgs, ports};

/// service2 of the article.
#[derive(Parser, Debug)]
// `--version` is the instance's version label, so clap's own version flag is off (in debug
// builds clap refuses the clash at start-up).
#[command(about, disable_version_flag = true)]
struct Cli {
    /// Which version this instance is: v1 or v2 (its `version` label; with --kube the Pod's
    /// `version` label wins).
    #[arg(long = "version", default_value = "v1")]
    service_version: String,
    #[command(flatten)]
    args: ServiceArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let defaults = match cli.service_version.as_str() {
        "v1" => ports::SERVICE2_V1,
        "v2" => ports::SERVICE2_V2,
        other => {
            eprintln!("service2: {}", FlagError::Version(other.to_owned()));
            return std::process::ExitCode::FAILURE;
        }
    };
    mesh_examples::run::service_main("service2", &cli.service_version, cli.args, defaults).await
}
