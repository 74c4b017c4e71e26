//! # mesh-server
//!
//! The inbound side of the proxyless mesh, as Tower layers: JWT authentication ([`jwt`], Istio's
//! RequestAuthentication and the legacy authentication Policy), authorization
//! ([`authz`], Istio's AuthorizationPolicy), rate limiting ([`rate_limit`], Linkerd's
//! HTTPLocalRateLimitPolicy), the one place where their typed errors become HTTP answers
//! ([`rescue`]), and [`MeshServer`], which stacks every inbound layer in the design's order around
//! an axum `Router` or any hyper service and serves it with graceful shutdown.
#![forbid(unsafe_code)]

pub mod admin;
pub mod authz;
pub mod context;
pub mod grpc;
pub mod jwt;
pub mod metrics;
pub mod normalize;
pub mod otel;
pub mod rate_limit;
pub mod request_id;
pub mod rescue;
pub mod server;
pub mod trace;

pub use context::{BoxError, LocalAddr, RemoteAddr};
pub use server::{MeshServer, Workload, serve};
