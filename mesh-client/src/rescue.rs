//! Where the client's failures become HTTP answers, as Envoy gives them: the one place that
//! knows the status, the body wording and the response flag of every answer the mesh makes
//! itself (Linkerd's `HttpRescue`, and `mesh-server`'s `rescue` on the inbound side).
//!
//! The layers report what happened as typed errors ([`RouteTimeout`], [`PerTryTimeout`],
//! [`FaultAbort`], [`NoRoute`], [`ClusterError`](crate::error::ClusterError) and anything else
//! below the cluster) and [`rescue`] answers each:
//!
//! | error | status | body | flag |
//! | --- | --- | --- | --- |
//! | route timeout, per-try timeout, a cluster timeout | 504 | `upstream request timeout` | `UT` |
//! | fault abort | the configured status | `fault filter abort` | `FI` |
//! | no route | 404 | (empty) | `NR` |
//! | a subset no DestinationRule defines (yet) | 503 | (empty) | `NC` |
//! | a path that cannot be normalized | 400 | `invalid request path` | `DPE` |
//! | the downstream's request body failed (malformed, cut short) | 400 | `downstream request error: ...` | `DPE` |
//! | no healthy upstream | 503 | `no healthy upstream` | `UH` |
//! | connect failure | 503 | `upstream connect error or disconnect/reset before headers. reset reason: connection failure` | `UF` |
//! | a failed upstream TLS handshake | 503 | `... reset reason: connection failure, transport failure reason: TLS error: <rustls' reason>` | `UF` |
//! | reset, refused stream, anything else | 503 | `... reset reason: connection termination` | `UR` |
//! | overflow | 503 | `... reset reason: overflow` | `UO` |
//!
//! A gRPC caller gets each of these as a trailers-only answer instead (HTTP 200, `grpc-status`,
//! `grpc-message`): every local reply carries a [`LocalReply`] extension that
//! [`crate::grpc`] turns into one; timeouts are `DEADLINE_EXCEEDED` (4), the rest map as Envoy's
//! `httpToGrpcStatus` (404 → 12, 503 → 14).
//!
//! Where the answer is made stays where Envoy makes it: the route timeout and the fault answer
//! inside the route stack (so the route's response header rules and the mirror see them), the
//! retry layer answers a last per-try timeout (so the split's [`Target`](crate::context::Target)
//! and the `URX` flag reach the metrics), the router everything else.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use mesh_core::classify::Outcome;
use mesh_core::grpc::Code;
use mesh_telemetry::ResponseFlags;

use crate::body::{self, BoxBody};
use crate::error::{NoClusterFound, outcome_of_dyn};
use crate::fault::FaultAbort;
use crate::retry::PerTryTimeout;
use crate::route::{InvalidPath, NoRoute};
use crate::timeout::RouteTimeout;

/// Envoy's body for a timed-out request.
const TIMEOUT: &str = "upstream request timeout";

/// The answer to `error`, as Envoy gives it (see the [module docs](self)).
pub fn rescue(error: &(dyn std::error::Error + 'static)) -> Response<BoxBody> {
    if error.is::<RouteTimeout>() || error.is::<PerTryTimeout>() {
        return local_reply_grpc(
            StatusCode::GATEWAY_TIMEOUT,
            TIMEOUT,
            Some("UT"),
            Some(Code::DeadlineExceeded),
        );
    }
    if let Some(abort) = error.downcast_ref::<FaultAbort>() {
        return local_reply_grpc(
            abort.status(),
            "fault filter abort",
            Some("FI"),
            abort.grpc_status(),
        );
    }
    if error.is::<NoRoute>() {
        return local_reply(StatusCode::NOT_FOUND, "", Some("NR"));
    }
    if error.is::<InvalidPath>() {
        return local_reply(StatusCode::BAD_REQUEST, "invalid request path", Some("DPE"));
    }
    if is_no_cluster(error) {
        // Envoy's router: the cluster is not found, 503 with an empty body and flag NC
        return local_reply(StatusCode::SERVICE_UNAVAILABLE, "", Some("NC"));
    }
    let outcome = outcome_of_dyn(error);
    tracing::debug!(%error, ?outcome, "upstream call failed");
    if outcome == Outcome::ConnectFailure
        && let Some(tls) = crate::tls::TlsError::find(error)
    {
        let text = format!(
            "upstream connect error or disconnect/reset before headers. reset reason: connection failure, transport failure reason: TLS error: {}",
            tls.reason()
        );
        return local_reply_text(
            StatusCode::SERVICE_UNAVAILABLE,
            text,
            "upstream connect error: TLS error",
            Some("UF"),
        );
    }
    let (status, text) = match outcome {
        Outcome::ConnectFailure => (
            StatusCode::SERVICE_UNAVAILABLE,
            "upstream connect error or disconnect/reset before headers. reset reason: connection failure",
        ),
        Outcome::Reset | Outcome::RefusedStream => (
            StatusCode::SERVICE_UNAVAILABLE,
            "upstream connect error or disconnect/reset before headers. reset reason: connection termination",
        ),
        Outcome::Timeout => {
            return local_reply_grpc(
                StatusCode::GATEWAY_TIMEOUT,
                TIMEOUT,
                Some("UT"),
                Some(Code::DeadlineExceeded),
            );
        }
        Outcome::Overflow => (
            StatusCode::SERVICE_UNAVAILABLE,
            "upstream connect error or disconnect/reset before headers. reset reason: overflow",
        ),
        Outcome::NoHealthyUpstream => (StatusCode::SERVICE_UNAVAILABLE, "no healthy upstream"),
        Outcome::DownstreamError => (
            StatusCode::BAD_REQUEST,
            "downstream request error: the request body was malformed or ended early",
        ),
        Outcome::Response { .. } => (StatusCode::SERVICE_UNAVAILABLE, "upstream error"),
    };
    local_reply(status, text, outcome.response_flag())
}

/// Whether `error`'s chain holds a [`NoClusterFound`] (a subset no DestinationRule defines).
fn is_no_cluster(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(error);
    // bounded walk: a cyclic `source()` must not hang us
    for _ in 0..16 {
        let Some(e) = cur else { return false };
        if e.is::<NoClusterFound>() {
            return true;
        }
        cur = e.source();
    }
    false
}

/// Adds `flag` to the response's [`ResponseFlags`] extension.
pub fn add_flag<B>(response: &mut Response<B>, flag: &'static str) {
    match response.extensions_mut().get_mut::<ResponseFlags>() {
        Some(flags) => flags.insert(flag),
        None => {
            let mut flags = ResponseFlags::default();
            flags.insert(flag);
            response.extensions_mut().insert(flags);
        }
    }
}

/// Response extension on every answer the client makes itself: what a gRPC caller is told
/// instead (see [`crate::grpc`]), as Envoy's local replies carry a gRPC status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalReply {
    /// The text of the answer (`grpc-message` for a gRPC caller; the code's name when empty).
    pub message: &'static str,
    /// The gRPC status, when it is not the HTTP status's mapping (`httpToGrpcStatus`): a
    /// timeout is `DEADLINE_EXCEEDED`, a fault abort its `grpcStatus`.
    pub grpc: Option<Code>,
}

/// A locally generated answer (as Envoy's local replies): `status`, a `text/plain` body, `flag`.
pub fn local_reply(
    status: StatusCode,
    text: &'static str,
    flag: Option<&'static str>,
) -> Response<BoxBody> {
    local_reply_grpc(status, text, flag, None)
}

/// [`local_reply`] telling a gRPC caller `grpc` (`None`: the HTTP status's gRPC mapping).
pub fn local_reply_grpc(
    status: StatusCode,
    text: &'static str,
    flag: Option<&'static str>,
    grpc: Option<Code>,
) -> Response<BoxBody> {
    reply(
        status,
        Bytes::from_static(text.as_bytes()),
        text,
        flag,
        grpc,
    )
}

/// [`local_reply`] with a body made at run time; a gRPC caller is told `message`.
pub fn local_reply_text(
    status: StatusCode,
    text: String,
    message: &'static str,
    flag: Option<&'static str>,
) -> Response<BoxBody> {
    reply(status, Bytes::from(text), message, flag, None)
}

fn reply(
    status: StatusCode,
    text: Bytes,
    message: &'static str,
    flag: Option<&'static str>,
    grpc: Option<Code>,
) -> Response<BoxBody> {
    let mut response = Response::new(body::full(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain"),
    );
    if let Some(flag) = flag {
        add_flag(&mut response, flag);
    }
    response
        .extensions_mut()
        .insert(LocalReply { message, grpc });
    response
}

#[cfg(test)]
mod tests;
