//! Buffering a request body so it can be sent more than once (retries, mirror copies).
//!
//! Only bodies whose size is known to be at most the limit are buffered (a `content-length` or an
//! in-memory body); a streaming body of unknown length, or a larger one, is passed through as it
//! is and the request is then neither retried nor mirrored. This never holds more than the limit
//! in memory per request and never delays a large upload.

use bytes::Bytes;
use http_body::Body as _;
use http_body_util::BodyExt;

use crate::BoxError;
use crate::body::BoxBody;
use crate::error::ClusterError;

/// Default replay limit: 64 KiB.
pub const DEFAULT_MAX_REPLAY_BYTES: u64 = 64 * 1024;

/// A body after an attempt to buffer it.
pub enum Buffered {
    /// The whole body, replayable.
    Bytes(Bytes),
    /// Too large or of unknown length: the body, untouched.
    Stream(BoxBody),
}

/// Buffers `body` when its size is known to be at most `limit` bytes.
pub async fn buffer(body: BoxBody, limit: u64) -> Result<Buffered, BoxError> {
    if body.is_end_stream() {
        return Ok(Buffered::Bytes(Bytes::new()));
    }
    match body.size_hint().upper() {
        // The body is the downstream's: if it fails (cut short, malformed), that is its fault.
        Some(upper) if upper <= limit => match body.collect().await {
            Ok(collected) => Ok(Buffered::Bytes(collected.to_bytes())),
            Err(e) => Err(ClusterError::downstream(e).into()),
        },
        _ => Ok(Buffered::Stream(body)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body;

    #[tokio::test]
    async fn small_known_bodies_buffer_large_ones_stream() {
        match buffer(body::full("hello"), 64).await.unwrap() {
            Buffered::Bytes(b) => assert_eq!(&b[..], b"hello"),
            Buffered::Stream(_) => panic!("small body should buffer"),
        }
        match buffer(body::full(vec![0u8; 100]), 64).await.unwrap() {
            Buffered::Stream(b) => assert_eq!(b.size_hint().exact(), Some(100)),
            Buffered::Bytes(_) => panic!("large body should stream"),
        }
        assert!(
            matches!(buffer(body::empty(), 0).await.unwrap(), Buffered::Bytes(b) if b.is_empty())
        );
    }
}
