//! gateway: the ingress gateway of the article. Represents the config's Gateway (`http-gateway`,
//! port 80, hosts `*`) and routes `/service1` and `/service2` by the VirtualService bound to it,
//! with the mesh's inbound layers (metrics, tracing, JWT, authorization) in front.
//!
//! Run: `cargo run --release -p mesh-examples --bin gateway -- --config examples/config`
//! then `curl http://127.0.0.1:8080/service1/hello`.

use clap::Parser;
use mesh_examples::cli::{CommonArgs, default_addr, ports};
use mesh_examples::gateway::{GatewaySpec, start_gateway};
use mesh_examples::kube::{KubeTarget, start_kube_gateway};
use mesh_examples::run::{Shutdown, bind, init_tracing, os_signal};

/// The article's ingress gateway.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    /// The Gateway resource to represent (default: the first in the config).
    #[arg(long)]
    gateway: Option<String>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // Istio's canonical revision for a workload without a version label.
    let _tracing = init_tracing("gateway", "latest", &cli.common.identity().namespace);
    let shutdown = Shutdown::new();
    let started = async {
        let listener = bind(
            cli.common
                .listen
                .unwrap_or_else(|| default_addr(ports::GATEWAY.0)),
        )
        .await?;
        let admin = bind(
            cli.common
                .admin
                .unwrap_or_else(|| default_addr(ports::GATEWAY.1)),
        )
        .await?;
        let spec = GatewaySpec {
            gateway: cli.gateway.clone(),
            config: cli.common.config.clone(),
            identity: cli.common.identity(),
        };
        if cli.common.kube {
            let target = KubeTarget::from_env().await?;
            start_kube_gateway(&spec, &target, listener, admin, &shutdown).await
        } else {
            start_gateway(&spec, listener, admin, &shutdown)
        }
    }
    .await;
    match started {
        Ok(started) => {
            os_signal().await;
            tracing::info!("gateway shutting down: finishing in-flight requests");
            started.ready.set(false);
            shutdown.trigger();
            for t in started.tasks {
                let _ = t.await;
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gateway: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
