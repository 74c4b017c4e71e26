//! The retry layer's error.

/// An attempt passed its `perTryTimeout` (Envoy's `UT`, answered `504` by
/// [`rescue`](crate::rescue) when no retry follows).
#[derive(Debug, thiserror::Error)]
#[error("per-try timeout elapsed")]
pub struct PerTryTimeout(pub(crate) ());
