//! [`EchoService`]: `mesh.examples.Echo/Call`, the gRPC twin of the HTTP handler.

use std::sync::Arc;

use http::{HeaderMap, HeaderName};
use tonic::metadata::MetadataMap;
use tonic::{Code, Request, Response, Status};

use super::GrpcUpstream;
use super::echo::echo_server::Echo;
use super::echo::{CallReply, CallRequest};
use crate::app::{AppState, forwarded_headers_in, new_traceparent, trace_id_of};

/// Headers an outgoing call's map has room for from the start: the forwarded ones
/// (`FORWARDED_HEADERS` and `traceparent`) and the four tonic and the mesh add.
const OUTGOING_HEADERS: usize = 12;

/// The `Echo` service of one app.
#[derive(Clone)]
pub struct EchoService {
    state: Arc<AppState>,
    upstream: Option<GrpcUpstream>,
}

impl std::fmt::Debug for EchoService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EchoService")
            .field("service", &self.state.service)
            .finish()
    }
}

impl EchoService {
    /// The service of `state`, calling `upstream` when it has one.
    pub fn new(state: Arc<AppState>, upstream: Option<GrpcUpstream>) -> Self {
        Self { state, upstream }
    }
}

#[tonic::async_trait]
impl Echo for EchoService {
    async fn call(&self, request: Request<CallRequest>) -> Result<Response<CallReply>, Status> {
        let st = &self.state;
        let n = st.next_request();
        if !st.faults.latency.is_zero() {
            tokio::time::sleep(st.faults.latency).await;
        }
        if st.faults.fails(n) {
            let code = Code::from_i32(i32::try_from(st.faults.grpc_status).unwrap_or(14));
            return Err(Status::new(code, "failure injected by --error-rate"));
        }
        let headers = request.metadata().clone().into_headers();
        // The mesh's inbound layers hand over the deadline and the server span's context;
        // without the mesh (--plain) the caller's headers are all there is.
        let deadline = request
            .extensions()
            .get::<mesh_core::grpc::Deadline>()
            .map(mesh_core::grpc::Deadline::left)
            .or_else(|| mesh_core::grpc::timeout_of(&headers));
        let from_mesh = mesh_telemetry::TraceContext::from_extensions(request.extensions())
            .map(|c| c.trace_id_hex());
        // Room for every header the outgoing call carries: the forwarded ones, tonic's own
        // (`te`, `content-type`, `user-agent`, `grpc-timeout`) and the mesh's (`traceparent`,
        // its `grpc-timeout`), so that none of them grows the map on the way out.
        let room = HeaderMap::with_capacity(OUTGOING_HEADERS);
        let mut forwarded = forwarded_headers_in(&headers, room);
        let trace_id = match from_mesh.or_else(|| trace_id_of(&headers)) {
            Some(id) => id,
            None => {
                let (id, header) = new_traceparent();
                forwarded.insert(HeaderName::from_static("traceparent"), header);
                id
            }
        };
        let path = request.into_inner().path;
        let upstream = match &self.upstream {
            None => None,
            Some(client) => {
                let mut call = Request::new(CallRequest { path: path.clone() });
                *call.metadata_mut() = MetadataMap::from_headers(forwarded);
                if let Some(left) = deadline {
                    call.set_timeout(left);
                }
                match client.call(call).await {
                    Ok(reply) => Some(Box::new(reply.into_inner())),
                    Err(status) => {
                        tracing::debug!(service = %st.service, code = ?status.code(), message = status.message(), "upstream call failed");
                        return Err(passed_back(status));
                    }
                }
            }
        };
        Ok(Response::new(CallReply {
            service: st.service.clone(),
            version: st.version.clone(),
            path,
            trace_id,
            upstream,
        }))
    }
}

/// The upstream's status, as this service's answer: its code and message as they came; a call
/// that got no answer at all (tonic reports the transport's error as UNKNOWN) is UNAVAILABLE.
fn passed_back(status: Status) -> Status {
    let no_answer = status.code() == Code::Unknown && std::error::Error::source(&status).is_some();
    let code = if no_answer {
        Code::Unavailable
    } else {
        status.code()
    };
    let message = if status.message().is_empty() {
        format!("upstream answered {}", code.description())
    } else {
        status.message().to_owned()
    };
    Status::new(code, message)
}
