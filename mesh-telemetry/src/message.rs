//! What the metrics read from a request or response head: its body size when known up front,
//! whether it is gRPC, and its `grpc-status`.

/// `grpc-status`, the status of a gRPC call (in the response head or its trailers).
pub use mesh_core::grpc::GRPC_STATUS;

/// The body size when it is known up front (exact size hint, else `content-length`), else 0.
pub fn known_body_size<B: http_body::Body>(headers: &http::HeaderMap, body: &B) -> u64 {
    body.size_hint().exact().unwrap_or_else(|| {
        headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    })
}

/// Whether a request is gRPC, by its content type: the mesh's one rule
/// ([`mesh_core::grpc::is_grpc`]: `application/grpc`, alone or followed by `+` or `;`), so that
/// the metrics' `request_protocol` and the mesh's gRPC handling never disagree on a request.
pub use mesh_core::grpc::is_grpc;

/// `grpc-status` of a response head (trailers-only responses carry it there) or of trailers,
/// when present ([`mesh_core::grpc::status_of`]).
pub use mesh_core::grpc::status_of as grpc_status;
