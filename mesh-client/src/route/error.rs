//! Route matching's error.

/// No route of the host's VirtualServices matched the request (Envoy's `NR`, answered `404` by
/// [`rescue`](crate::rescue)).
#[derive(Debug, thiserror::Error)]
#[error("no route matched")]
pub struct NoRoute(pub(crate) ());
