//! `x-request-id`: the id Envoy gives every request, kept across the whole call tree.

use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};

/// `x-request-id`.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest request id accepted from a peer; longer ones are replaced by a fresh id.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// Request extension (and response extension on the server): the request's id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RequestId(HeaderValue);

impl RequestId {
    /// Accepts `value` as a request id when it is 1 to [`MAX_REQUEST_ID_LEN`] visible ASCII
    /// characters (`None` otherwise).
    pub fn parse(value: &HeaderValue) -> Option<Self> {
        let b = value.as_bytes();
        let ok = !b.is_empty() && b.len() <= MAX_REQUEST_ID_LEN && visible_ascii(b);
        ok.then(|| RequestId(value.clone()))
    }

    /// The request id in `headers`, when exactly one valid one is there.
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let mut all = headers.get_all(&X_REQUEST_ID).iter();
        match (all.next(), all.next()) {
            (Some(v), None) => Self::parse(v),
            _ => None,
        }
    }

    /// Wraps an id generated locally (the caller vouches for its validity).
    pub fn from_generated(value: HeaderValue) -> Self {
        RequestId(value)
    }

    /// The header value.
    pub fn header_value(&self) -> &HeaderValue {
        &self.0
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Only visible ASCII is ever accepted or generated.
        self.0.to_str().unwrap_or_default()
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether every byte is visible ASCII (`!` to `~`), eight bytes at a time: a request id
/// arrives with nearly every call, and the byte-by-byte check took some 150 instructions for
/// a 36-character UUID. An addition sets a byte's top bit when the byte is at or above a
/// bound; bytes under 0x80 never carry into their neighbour.
fn visible_ascii(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const TOPS: u64 = 0x8080_8080_8080_8080;
    let mut words = bytes.chunks_exact(8);
    let all_words = words.all(|word| {
        let mut b = [0u8; 8];
        b.copy_from_slice(word);
        let word = u64::from_ne_bytes(b);
        let at_least = |bound: u8| word + (0x80 - u64::from(bound)) * ONES;
        word & TOPS == 0 && at_least(b'!') & !at_least(b'~' + 1) & TOPS == TOPS
    });
    all_words && words.remainder().iter().all(u8::is_ascii_graphic)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visible_ascii_agrees_with_the_byte_by_byte_check_for_every_byte_at_every_place() {
        let id = b"0af76519-16cd-43dd-8448-eb211c80319c~!";
        for len in [1, 7, 8, 9, 16, 36, 38] {
            assert!(visible_ascii(&id[..len]), "{len}");
            for at in 0..len {
                for byte in 0..=255u8 {
                    let mut t = id[..len].to_vec();
                    t[at] = byte;
                    assert_eq!(visible_ascii(&t), byte.is_ascii_graphic(), "{t:?}");
                }
            }
        }
    }

    #[test]
    fn accepts_bounded_visible_ascii_only() {
        assert_eq!(
            RequestId::parse(&HeaderValue::from_static("abc-123"))
                .unwrap()
                .as_str(),
            "abc-123"
        );
        assert!(RequestId::parse(&HeaderValue::from_static("")).is_none());
        assert!(RequestId::parse(&HeaderValue::from_static("has space")).is_none());
        let long = "a".repeat(MAX_REQUEST_ID_LEN + 1);
        assert!(RequestId::parse(&HeaderValue::from_str(&long).unwrap()).is_none());
        let max = "a".repeat(MAX_REQUEST_ID_LEN);
        assert!(RequestId::parse(&HeaderValue::from_str(&max).unwrap()).is_some());
        let mut h = HeaderMap::new();
        h.append(&X_REQUEST_ID, HeaderValue::from_static("a"));
        assert!(RequestId::from_headers(&h).is_some());
        h.append(&X_REQUEST_ID, HeaderValue::from_static("b"));
        assert!(
            RequestId::from_headers(&h).is_none(),
            "two ids: neither is trusted"
        );
    }
}
