//! Where the client's failures become HTTP answers, as Envoy gives them: the one place that
//! knows the status, the body wording and the response flag of every answer the mesh makes
//! itself (Linkerd's `HttpRescue`, and `mesh-server`'s `rescue` on the inbound side).
//!
//! The layers report what happened as typed errors ([`RouteTimeout`](crate::timeout::RouteTimeout),
//! [`PerTryTimeout`](crate::retry::PerTryTimeout), [`FaultAbort`](crate::fault::FaultAbort),
//! [`NoRoute`](crate::route::NoRoute), [`ClusterError`](crate::error::ClusterError) and anything
//! else below the cluster) and [`rescue`] answers each:
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
//! | reset, refused stream, anything else | 503 | `... reset reason: connection termination` | `UR` |
//! | overflow | 503 | `... reset reason: overflow` | `UO` |
//!
//! Where the answer is made stays where Envoy makes it: the route timeout and the fault answer
//! inside the route stack (so the route's response header rules and the mirror see them), the
//! retry layer answers a last per-try timeout (so the split's [`Target`](crate::context::Target)
//! and the `URX` flag reach the metrics), the router everything else.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use mesh_core::classify::Outcome;
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
        return local_reply(StatusCode::GATEWAY_TIMEOUT, TIMEOUT, Some("UT"));
    }
    if let Some(abort) = error.downcast_ref::<FaultAbort>() {
        return local_reply(abort.status(), "fault filter abort", Some("FI"));
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
    let (status, text) = match outcome {
        Outcome::ConnectFailure => (
            StatusCode::SERVICE_UNAVAILABLE,
            "upstream connect error or disconnect/reset before headers. reset reason: connection failure",
        ),
        Outcome::Reset | Outcome::RefusedStream => (
            StatusCode::SERVICE_UNAVAILABLE,
            "upstream connect error or disconnect/reset before headers. reset reason: connection termination",
        ),
        Outcome::Timeout => (StatusCode::GATEWAY_TIMEOUT, TIMEOUT),
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

/// A locally generated answer (as Envoy's local replies): `status`, a `text/plain` body, `flag`.
pub fn local_reply(
    status: StatusCode,
    text: &'static str,
    flag: Option<&'static str>,
) -> Response<BoxBody> {
    let mut response = Response::new(body::full(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain"),
    );
    if let Some(flag) = flag {
        add_flag(&mut response, flag);
    }
    response
}

#[cfg(test)]
mod tests;
