//! # mesh-core
//!
//! The foundation of the proxyless mesh: Istio's own resources as typed Rust (`spec`), a checked
//! policy model that the layers use (`policy`), loading a folder of manifests with
//! `file:line: Kind/name: message` errors, discovery (a registry of endpoints with labels),
//! consistent-hash tables (ring hash, maglev), one response classifier, and hot reload.
#![forbid(unsafe_code)]

pub mod classify;
pub mod compile;
pub mod diag;
pub mod grpc;
pub mod hash;
pub mod load;
pub mod normalize;
pub mod policy;
pub mod registry;
pub mod spec;
pub mod watch;

/// The boxed error of the mesh's services and layers, on both sides (as tower's `BoxError`).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
