//! One gRPC hop in one process, without sockets (the gRPC twin of [`crate::hop`]): service2's
//! `Echo/Call`, with or without the mesh, calling a stand-in for service3's `Call` that answers
//! in-process.
//!
//! - [`HopMode::Mesh`]: service2's gRPC app behind [`MeshRuntime::server`]'s inbound layers,
//!   calling service3 with tonic's client over the whole `MeshClient` stack down to
//!   [`Transport::in_process`], under [`BENCH_POLICY`](crate::hop::BENCH_POLICY).
//! - [`HopMode::Bare`]: the same app as `--plain` serves it, whose tonic client of service3
//!   answers in-process the same way.
//!
//! Both read service3's request body and both send a request whose body has no length, as a
//! gRPC client's has. `examples/hop_cost.rs` measures it (`run grpc-mesh N`, `run grpc-bare N`).
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use mesh_examples::grpc::hop::GrpcHop;
//! use mesh_examples::hop::HopMode;
//! let hop = GrpcHop::start(HopMode::Mesh).unwrap();
//! assert_eq!(hop.request().await.unwrap(), Some(0));
//! # });
//! ```

use std::sync::Arc;

use axum::body::Body;
use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use mesh_client::transport::Transport;
use tower::ServiceExt;

use super::echo::{CallReply, CallRequest};
use super::{GrpcUpstream, app};
use crate::app::AppState;
use crate::hop::HopMode;
use crate::mesh::{InboundStack, MeshRuntime, StartError, Workload};
use crate::upstream::BoxError;

/// A message as gRPC frames it: uncompressed flag, 4-byte length, the protobuf bytes.
fn framed(message: &impl prost::Message) -> Bytes {
    let len = message.encoded_len();
    let mut buf = BytesMut::with_capacity(5 + len);
    buf.put_u8(0);
    buf.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
    // Encoding into a buffer of the encoded length cannot fail.
    let _ = message.encode(&mut buf);
    buf.freeze()
}

/// A body of one data frame and, when given, trailers; of unknown length, as a stream's.
fn streamed<E>(
    data: Bytes,
    trailers: Option<HeaderMap>,
) -> StreamBody<impl futures_util::Stream<Item = Result<Frame<Bytes>, E>>> {
    let frames = std::iter::once(Frame::data(data)).chain(trailers.map(Frame::trailers));
    StreamBody::new(futures_util::stream::iter(frames.map(Ok)))
}

/// service3's answer: its reply and `grpc-status: 0` in trailers.
fn service3_answer<E>()
-> Response<StreamBody<impl futures_util::Stream<Item = Result<Frame<Bytes>, E>>>> {
    let reply = CallReply {
        service: "service3".into(),
        version: "v1".into(),
        path: "/bench".into(),
        ..CallReply::default()
    };
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let mut response = Response::new(streamed(framed(&reply), Some(trailers)));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    response
}

/// One gRPC hop, ready to take calls; see the [module docs](self).
pub struct GrpcHop {
    service: Service,
    _mesh: Option<(MeshRuntime, tempfile::TempDir)>,
}

enum Service {
    Bare(axum::Router),
    Mesh(InboundStack),
}

impl GrpcHop {
    /// Builds the hop. [`HopMode::Mesh`] writes its config to a temporary folder and needs a
    /// Tokio runtime (the mesh watches the folder).
    pub fn start(mode: HopMode) -> Result<Self, StartError> {
        let workload = Workload::new("service2", "v1");
        let state = Arc::new(AppState::new("service2", "v1"));
        match mode {
            HopMode::Bare => {
                let upstream = GrpcUpstream::in_process(|request| {
                    Box::pin(async move {
                        request.into_body().collect().await?;
                        Ok(service3_answer::<std::convert::Infallible>()
                            .map(tonic::body::Body::new))
                    })
                });
                Ok(Self {
                    service: Service::Bare(app(state, Some(upstream))),
                    _mesh: None,
                })
            }
            HopMode::Mesh => {
                let dir = crate::hop::config_dir()?;
                let transport = Transport::in_process(|_endpoint, request| {
                    Box::pin(async move {
                        request.into_body().collect().await?;
                        Ok(service3_answer::<std::convert::Infallible>()
                            .map(mesh_client::body::boxed))
                    })
                });
                let mesh = MeshRuntime::start_with_transport(dir.path(), transport)?;
                let upstream = GrpcUpstream::mesh("service3", mesh.mesh_client(&workload, None));
                let service = mesh.server(app(state, Some(upstream)), &workload);
                Ok(Self {
                    service: Service::Mesh(service),
                    _mesh: Some((mesh, dir)),
                })
            }
        }
    }

    /// Calls `Echo/Call` through the hop, reads the whole answer, and gives its `grpc-status`
    /// (from the trailers, or the head of a trailers-only answer).
    pub async fn request(&self) -> Result<Option<u32>, BoxError> {
        let message = framed(&CallRequest {
            path: "/bench".into(),
        });
        let req = Request::post("/mesh.examples.Echo/Call")
            .header(http::header::HOST, "service2")
            .header(http::header::CONTENT_TYPE, "application/grpc")
            .header("te", "trailers")
            .body(Body::new(streamed::<std::convert::Infallible>(
                message, None,
            )))?;
        let resp = match &self.service {
            Service::Bare(router) => router.clone().oneshot(req).await,
            Service::Mesh(service) => service.clone().oneshot(req).await,
        };
        let resp = match resp {
            Ok(resp) => resp,
            Err(never) => match never {},
        };
        if let Some(status) = mesh_core::grpc::status_of(resp.headers()) {
            return Ok(Some(status));
        }
        let collected = resp.into_body().collect().await?;
        Ok(collected.trailers().and_then(mesh_core::grpc::status_of))
    }
}
