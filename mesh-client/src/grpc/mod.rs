//! gRPC callers always get gRPC answers.
//!
//! A gRPC client reads the outcome of a call from `grpc-status`, never from an HTTP error body.
//! For a gRPC request (`content-type: application/grpc`) the client turns every answer the mesh
//! makes itself ([`LocalReply`]) and every non-2xx answer an upstream gave without a gRPC status
//! into a trailers-only answer: HTTP 200, `grpc-status`, a non-empty `grpc-message`. The codes
//! are Envoy's: timeouts are `DEADLINE_EXCEEDED` (4), a fault abort its `grpcStatus`, the rest
//! `httpToGrpcStatus` of the HTTP status (no route 404 → 12 `UNIMPLEMENTED`, no healthy upstream,
//! connect failure and overflow 503 → 14 `UNAVAILABLE`). An upstream's own gRPC answer passes
//! through untouched, whatever its status. The response's extensions (response flags, the
//! upstream's identity) stay, so metrics still see why.
//!
//! ```
//! use http::StatusCode;
//! use mesh_client::grpc::grpc_answer;
//! use mesh_client::rescue::local_reply;
//!
//! let reply = local_reply(StatusCode::SERVICE_UNAVAILABLE, "no healthy upstream", Some("UH"));
//! let answer = grpc_answer(reply);
//! assert_eq!(answer.status(), StatusCode::OK);
//! assert_eq!(answer.headers()["grpc-status"], "14");
//! assert_eq!(answer.headers()["grpc-message"], "no healthy upstream");
//! ```

pub(crate) mod deadline;

use http::{Response, StatusCode};
use mesh_core::grpc::{self, Code};

use crate::body::{self, BoxBody};
use crate::rescue::LocalReply;

/// `response` as a gRPC caller must get it (see the [module docs](self)).
pub fn grpc_answer(mut response: Response<BoxBody>) -> Response<BoxBody> {
    if grpc::is_grpc(response.headers()) || grpc::status_of(response.headers()).is_some() {
        return response;
    }
    let status = response.status();
    let (code, message): (Code, std::borrow::Cow<'static, str>) =
        match response.extensions().get::<LocalReply>() {
            Some(local) => (
                local
                    .grpc
                    .unwrap_or_else(|| grpc::http_to_grpc(status.as_u16())),
                local.message.into(),
            ),
            None if status.is_success() || status.is_informational() => return response,
            None => (
                grpc::http_to_grpc(status.as_u16()),
                format!(
                    "upstream answered HTTP {} without a gRPC status",
                    status.as_u16()
                )
                .into(),
            ),
        };
    *response.status_mut() = StatusCode::OK;
    grpc::set_trailers_only(response.headers_mut(), code, &message);
    *response.body_mut() = body::empty();
    response
}

#[cfg(test)]
mod tests;
