//! ALPN protocol names: HTTP's and the ones Istio's sidecars use to mark mesh traffic.
//!
//! An Envoy sidecar calling an in-mesh endpoint over mTLS offers `istio-h2, istio, h2` (HTTP/2)
//! or `istio-http/1.1, istio, http/1.1` (HTTP/1.1), `istio-peer-exchange, istio` for TCP; its
//! inbound listener tells mesh traffic from other TLS by those `istio*` values and answers with
//! `h2` or `http/1.1`. We do the same on both sides: our servers prefer `h2`, then `http/1.1`,
//! and still accept a client that offers only `istio*` values (rustls refuses a handshake whose
//! ALPN lists do not meet); our mesh clients offer what a sidecar offers, so a sidecar's
//! PERMISSIVE listener routes them to its mTLS filter chain.

/// HTTP/2 over TLS.
pub const H2: &[u8] = b"h2";
/// HTTP/1.1.
pub const HTTP_1_1: &[u8] = b"http/1.1";
/// Istio mesh traffic, any protocol.
pub const ISTIO: &[u8] = b"istio";
/// Istio mesh traffic with TCP metadata exchange.
pub const ISTIO_PEER_EXCHANGE: &[u8] = b"istio-peer-exchange";
/// Istio mesh traffic, HTTP/2.
pub const ISTIO_H2: &[u8] = b"istio-h2";
/// Istio mesh traffic, HTTP/1.1.
pub const ISTIO_HTTP_1_1: &[u8] = b"istio-http/1.1";
/// Istio mesh traffic, HTTP/1.0.
pub const ISTIO_HTTP_1_0: &[u8] = b"istio-http/1.0";

/// The HTTP version a client wants to speak to its upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UpstreamProtocol {
    /// HTTP/1.1.
    Http1,
    /// HTTP/2.
    Http2,
    /// Whichever the server prefers (HTTP/2 first).
    Auto,
}

/// What a mesh server offers, in order of preference.
pub fn server_protocols() -> Vec<Vec<u8>> {
    [
        H2,
        HTTP_1_1,
        ISTIO_H2,
        ISTIO_HTTP_1_1,
        ISTIO_HTTP_1_0,
        ISTIO,
        ISTIO_PEER_EXCHANGE,
    ]
    .map(<[u8]>::to_vec)
    .to_vec()
}

/// What a mesh client offers to an in-mesh server (auto-mTLS, ISTIO_MUTUAL), as a sidecar does.
pub fn mesh_client_protocols(protocol: UpstreamProtocol) -> Vec<Vec<u8>> {
    let list: &[&[u8]] = match protocol {
        UpstreamProtocol::Http1 => &[ISTIO_HTTP_1_1, ISTIO, HTTP_1_1],
        UpstreamProtocol::Http2 => &[ISTIO_H2, ISTIO, H2],
        UpstreamProtocol::Auto => &[ISTIO_H2, ISTIO_HTTP_1_1, ISTIO, H2, HTTP_1_1],
    };
    list.iter().map(|p| p.to_vec()).collect()
}

/// What a client offers to a server outside the mesh (SIMPLE, MUTUAL).
pub fn plain_client_protocols(protocol: UpstreamProtocol) -> Vec<Vec<u8>> {
    let list: &[&[u8]] = match protocol {
        UpstreamProtocol::Http1 => &[HTTP_1_1],
        UpstreamProtocol::Http2 => &[H2],
        UpstreamProtocol::Auto => &[H2, HTTP_1_1],
    };
    list.iter().map(|p| p.to_vec()).collect()
}

/// The HTTP version a negotiated ALPN value means; `None` when ALPN does not say (no ALPN, or
/// `istio` / `istio-peer-exchange`): then the server tells HTTP/2 by its connection preface.
pub fn negotiated_http(alpn: Option<&[u8]>) -> Option<UpstreamProtocol> {
    match alpn? {
        H2 | ISTIO_H2 => Some(UpstreamProtocol::Http2),
        HTTP_1_1 | ISTIO_HTTP_1_1 | ISTIO_HTTP_1_0 => Some(UpstreamProtocol::Http1),
        _ => None,
    }
}
