//! What the metrics read from a request or response head: its body size when known up front,
//! whether it is gRPC, and its `grpc-status`.

/// `grpc-status`, the status of a gRPC call (in the response head or its trailers).
pub static GRPC_STATUS: http::HeaderName = http::HeaderName::from_static("grpc-status");

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

/// Whether a request is gRPC (by its content type).
pub fn is_grpc(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// `grpc-status` of a response head (trailers-only responses carry it there), when present.
pub fn grpc_status(headers: &http::HeaderMap) -> Option<u32> {
    headers
        .get(&GRPC_STATUS)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}
