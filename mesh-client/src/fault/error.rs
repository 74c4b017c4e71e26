//! The fault layer's abort.

use http::StatusCode;

/// The route's `fault.abort` fired (Envoy's `FI`): answered with the configured status and
/// `fault filter abort` by [`rescue`](crate::rescue).
#[derive(Debug, thiserror::Error)]
#[error("fault injected: abort with {status}")]
pub struct FaultAbort {
    status: StatusCode,
    grpc: Option<mesh_core::grpc::Code>,
}

impl FaultAbort {
    pub(crate) fn new(status: StatusCode, grpc: Option<mesh_core::grpc::Code>) -> Self {
        Self { status, grpc }
    }

    /// The gRPC status gRPC callers get (`grpcStatus`), when configured.
    pub fn grpc_status(&self) -> Option<mesh_core::grpc::Code> {
        self.grpc
    }

    /// The status the abort answers with.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}
