//! Route matching's error.

/// No route of the host's VirtualServices matched the request (Envoy's `NR`, answered `404` by
/// [`rescue`](crate::rescue)).
#[derive(Debug, thiserror::Error)]
#[error("no route matched")]
pub struct NoRoute(pub(crate) ());

/// The request's path cannot be normalized at the mesh's `pathNormalization` level (`%00`, a
/// broken escape), so no route can be chosen for it safely: answered `400` with flag `DPE` by
/// [`rescue`](crate::rescue).
#[derive(Debug, thiserror::Error)]
#[error("invalid request path: {0}")]
pub struct InvalidPath(pub(crate) mesh_core::normalize::InvalidPath);
