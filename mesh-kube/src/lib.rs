//! # mesh-kube
//!
//! Kubernetes for the proxyless mesh.
#![forbid(unsafe_code)]

#[cfg(feature = "test-util")]
pub mod testing;
