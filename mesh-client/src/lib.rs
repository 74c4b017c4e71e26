//! # mesh-client
//!
//! What Istio's sidecar does to a call leaving a service, done inside the caller as Tower layers:
//! route matching, fault injection, mirroring, timeouts, retries with a budget, weighted splits,
//! subsets, circuit breaking, outlier detection and load balancing, over a pooled hyper client.
//! Every stage is a layer usable alone with plain Rust settings; `MeshClient` builds the stack
//! from a `mesh_core` config snapshot taken lock-free per request.
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod balance;
pub mod body;
pub mod client;
pub mod cluster;
pub mod context;
pub mod cors;
pub mod error;
pub mod fault;
pub mod grpc;
pub mod headers;
pub mod hostmap;
pub mod mirror;
pub mod outlier;
pub mod pool;
pub mod random;
#[cfg(feature = "reqwest")]
pub mod reqwest;
pub mod rescue;
pub mod retry;
pub mod route;
mod spare;
pub mod split;
pub mod stats;
pub mod telemetry;
pub mod timeout;
pub mod tls;
pub mod transport;

pub use mesh_core::BoxError;
