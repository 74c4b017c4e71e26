//! gateway: the ingress gateway of the article. Represents the config's Gateway (`http-gateway`,
//! port 80, hosts `*`) and routes `/service1` and `/service2` by the VirtualService bound to it,
//! with the mesh's inbound layers (metrics, tracing, JWT, authorization) in front.
//!
//! Run: `cargo run --release -p mesh-examples --bin gateway -- --config examples/config`
//! then `curl http://127.0.0.1:8080/service1/hello`. `--listen` serves the Gateway's first server
//! port; `--listen-port 443=127.0.0.1:8443` serves its servers of port 443 (TLS when their
//! `tls.mode` is SIMPLE or MUTUAL, chosen by SNI).

use clap::Parser;
use mesh_examples::cli::{CommonArgs, default_addr, ports};
use mesh_examples::gateway::{GatewaySpec, start_gateway_ports};
use mesh_examples::kube::{KubeTarget, start_kube_gateway_ports};
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
    /// `N=ADDR`: serve the Gateway's servers of port number N at ADDR (repeatable), e.g.
    /// `--listen-port 443=127.0.0.1:8443`.
    #[arg(long = "listen-port", value_parser = parse_listen_port)]
    listen_port: Vec<(u16, std::net::SocketAddr)>,
}

fn parse_listen_port(text: &str) -> Result<(u16, std::net::SocketAddr), String> {
    let (port, addr) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}`: expected N=ADDR, e.g. 443=127.0.0.1:8443"))?;
    let port = port
        .trim()
        .parse()
        .map_err(|e| format!("`{port}`: not a port number: {e}"))?;
    let addr = addr
        .trim()
        .parse()
        .map_err(|e| format!("`{addr}`: not an address: {e}"))?;
    Ok((port, addr))
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
        let mut ports = Vec::new();
        for (port, addr) in &cli.listen_port {
            ports.push((*port, bind(*addr).await?));
        }
        let spec = GatewaySpec {
            gateway: cli.gateway.clone(),
            config: cli.common.config.clone(),
            identity: cli.common.identity(),
        };
        if cli.common.kube {
            let target = KubeTarget::from_env().await?;
            start_kube_gateway_ports(&spec, &target, listener, ports, admin, &shutdown).await
        } else {
            start_gateway_ports(&spec, listener, ports, admin, &shutdown)
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
