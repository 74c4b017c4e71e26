//! # mesh-kube
//!
//! Kubernetes for the proxyless mesh: the API server is the mesh's distributed store, read
//! with kube-rs, with nothing home-made between the apps and it.
//!
//! - [`KubeMesh`]: all of the below started together, what an app in `--kube` mode calls.
//! - [`connect`]: a client found as kubectl finds the API server (the pod's service account
//!   inside a cluster, `$KUBECONFIG` outside).
//! - [`KubeConfigSource`]: Istio's and Linkerd's custom resources, watched, each object
//!   validated alone, the combined config stored into mesh-core's `ConfigStore`.
//! - [`KubeDiscovery`]: Services, EndpointSlices and Pods of the hosts the routes reach, behind
//!   mesh-core's `Discovery` trait.
//! - [`Workload`]: the app's own Pod (labels, service account, Deployment name).
//! - [`Readiness`]: ready once every watch completed its first sync; a 401/403 is "not ready:
//!   <reason>", never an empty mesh.
//! - [`secrets`]: Kubernetes TLS Secrets for Gateway `credentialName`, read and watched.
//! - [`testing`] (feature `test-util`): an in-process API server for tests.
#![forbid(unsafe_code)]

mod client;
pub mod config;
pub mod discovery;
mod mesh;
pub mod secrets;
mod status;
mod workload;

pub use client::{ConnectError, connect, connect_kubeconfig};
pub use config::{ConfigOptions, ConfigReport, KubeConfigSource};
pub use discovery::KubeDiscovery;
pub use mesh::{KubeMesh, KubeMeshOptions};
pub use status::{Readiness, Status, WatchPhase};
pub use workload::{Workload, WorkloadError};

#[cfg(test)]
mod test_util;
#[cfg(feature = "test-util")]
pub mod testing;
