//! Command-line flags of the apps, and their default loopback addresses.
//!
//! The defaults match the ServiceEntries in `examples/config/`, so that running the binaries with
//! no flags from the workspace gives the article's set-up on one machine.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use http::StatusCode;

use crate::app::Faults;

/// The config folder shipped with the examples.
pub const DEFAULT_CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config");

/// Default addresses: (listen, admin) per app.
pub mod ports {
    /// Gateway: the address users call.
    pub const GATEWAY: (&str, &str) = ("127.0.0.1:8080", "127.0.0.1:15080");
    /// service1.
    pub const SERVICE1: (&str, &str) = ("127.0.0.1:9081", "127.0.0.1:15081");
    /// service2 v1.
    pub const SERVICE2_V1: (&str, &str) = ("127.0.0.1:9082", "127.0.0.1:15082");
    /// service2 v2.
    pub const SERVICE2_V2: (&str, &str) = ("127.0.0.1:9083", "127.0.0.1:15083");
    /// service3.
    pub const SERVICE3: (&str, &str) = ("127.0.0.1:9084", "127.0.0.1:15084");
    /// The demo JWT issuer (JWKS at `/.well-known/jwks.json`).
    pub const ISSUER: &str = "127.0.0.1:9090";
}

/// Flags every app takes.
#[derive(Args, Clone, Debug)]
pub struct CommonArgs {
    /// Address to serve on (default: the app's address in examples/config).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Admin address: /metrics (Prometheus text), /healthz, /config_dump.
    #[arg(long)]
    pub admin: Option<SocketAddr>,
    /// Folder of Istio manifests (watched: changes apply without a restart).
    #[arg(long, default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// The workload certificate in Istio's file layout (cert-chain.pem, key.pem,
    /// root-cert.pem), watched: the listen port then follows PeerAuthentication.
    #[arg(long)]
    pub certs: Option<PathBuf>,
    /// The workload's namespace (policies apply from it and from istio-system).
    #[arg(long, default_value = "default")]
    pub namespace: String,
    /// Take the mesh config and the endpoints from the Kubernetes API server instead of
    /// --config (in a pod its service account, else $KUBECONFIG); the app knows itself from its
    /// Pod, named by POD_NAME and POD_NAMESPACE (labels app, version; --namespace is ignored).
    #[arg(long)]
    pub kube: bool,
}

impl CommonArgs {
    /// The identity flags: `--certs` and `--namespace`.
    pub fn identity(&self) -> crate::mesh::Identity {
        crate::mesh::Identity {
            certs: self.certs.clone(),
            namespace: self.namespace.clone(),
        }
    }
}

/// Flags of service1, service2 and service3.
#[derive(Args, Clone, Debug)]
pub struct ServiceArgs {
    /// Listen, admin and config.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Fraction of requests (0.0..=1.0) answered with --error-status (gRPC calls: with
    /// --error-grpc-status, trailers-only).
    #[arg(long, default_value_t = 0.0)]
    pub error_rate: f64,
    /// Status code of the failed requests.
    #[arg(long, default_value_t = 503)]
    pub error_status: u16,
    /// gRPC status of the failed gRPC calls (1..=16; default 14, UNAVAILABLE).
    #[arg(long, default_value_t = 14)]
    pub error_grpc_status: u32,
    /// Draw failures pseudo-randomly from this seed (default: evenly spread, exactly the rate).
    #[arg(long)]
    pub error_seed: Option<u64>,
    /// Latency added to every answer (e.g. 5ms, 1s).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub latency: Option<Duration>,
    /// No mesh at all: the same handler, a bare hyper client to the upstream's first endpoint.
    #[arg(long)]
    pub plain: bool,
}

/// A flag value that is out of range.
#[derive(Debug, thiserror::Error)]
pub enum FlagError {
    /// `--error-rate` outside 0..=1.
    #[error("--error-rate must be between 0 and 1, got {0}")]
    ErrorRate(f64),
    /// `--error-status` not an HTTP status.
    #[error("--error-status must be an HTTP status code (100..=599), got {0}")]
    ErrorStatus(u16),
    /// `--error-grpc-status` not a gRPC error code.
    #[error("--error-grpc-status must be a gRPC error code (1..=16), got {0}")]
    ErrorGrpcStatus(u32),
    /// `--version` other than v1 or v2.
    #[error("--version must be v1 or v2, got {0}")]
    Version(String),
}

impl ServiceArgs {
    /// The faults the flags ask for.
    pub fn faults(&self) -> Result<Faults, FlagError> {
        if !(0.0..=1.0).contains(&self.error_rate) {
            return Err(FlagError::ErrorRate(self.error_rate));
        }
        let status = StatusCode::from_u16(self.error_status)
            .map_err(|_| FlagError::ErrorStatus(self.error_status))?;
        if !(1..=16).contains(&self.error_grpc_status) {
            return Err(FlagError::ErrorGrpcStatus(self.error_grpc_status));
        }
        Ok(Faults {
            error_rate: self.error_rate,
            status,
            grpc_status: self.error_grpc_status,
            seed: self.error_seed,
            latency: self.latency.unwrap_or(Duration::ZERO),
        })
    }
}

/// Parses a default address constant.
pub fn default_addr(s: &'static str) -> SocketAddr {
    // invariant: the constants in `ports` are valid socket addresses (checked by a test).
    s.parse().unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_addresses_parse() {
        for (l, a) in [
            ports::GATEWAY,
            ports::SERVICE1,
            ports::SERVICE2_V1,
            ports::SERVICE2_V2,
            ports::SERVICE3,
        ] {
            assert!(l.parse::<SocketAddr>().is_ok() && a.parse::<SocketAddr>().is_ok());
        }
        assert!(ports::ISSUER.parse::<SocketAddr>().is_ok());
    }
}
