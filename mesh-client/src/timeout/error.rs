//! The route timeout's error.

/// The route's deadline passed before an answer came (Envoy's `UT`, answered `504` by
/// [`rescue`](crate::rescue)).
#[derive(Debug, thiserror::Error)]
#[error("route timeout expired")]
pub struct RouteTimeout(pub(crate) ());
