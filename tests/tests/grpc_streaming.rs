//! Streaming gRPC calls through the mesh: a tonic client over `MeshClient` calls a streaming
//! service behind `MeshServer` (both real, on loopback). The example apps define no streaming
//! method, so the service is written here by hand over tonic's server API (no protoc):
//! `mesh.test.Stream/Watch` and `/Slow` stream replies, `/Collect` reads a stream of requests.
//!
//! What it shows: messages pass one by one in both directions (the first arrives before the
//! stream ends), a failure after the first message is not retried, `grpc_response_status` comes
//! from the trailers at the end of the stream on both reporters, a route timeout ends a stream
//! with DEADLINE_EXCEEDED and the upstream stream with it, and a client that drops its stream
//! ends the upstream's.
// The harness's helpers (outside the #[test] functions clippy.toml exempts) fail the test on
// any setup error.
#![allow(clippy::unwrap_used)]

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures_util::Stream;
use http::uri::PathAndQuery;
use mesh_client::client::MeshClient;
use mesh_examples::grpc::echo::{CallReply, CallRequest};
use mesh_examples::mesh::{MeshRuntime, Workload};
use mesh_tests::grpc::{Code, request_lines, total};
use tokio::sync::{Notify, mpsc};
use tonic::{Status, Streaming};

/// Long enough for anything that should happen on loopback; a test that waits this long failed.
const PATIENCE: Duration = Duration::from_secs(10);

type ReplyStream = Pin<Box<dyn Stream<Item = Result<CallReply, Status>> + Send>>;

/// What the upstream saw, and the hooks the test pulls.
#[derive(Default)]
struct Upstream {
    /// `Watch` and `Slow` calls, by the behaviour asked for.
    fail_calls: AtomicUsize,
    /// Lets an `ok` stream send its second message.
    release: Notify,
    /// A `hang` stream's client went away (its reply stream was dropped).
    hang_ended: Notify,
    /// `Collect` read the first message of its request stream.
    first_seen: Notify,
}

fn reply(path: &str) -> CallReply {
    CallReply {
        service: "stream".into(),
        path: path.into(),
        ..CallReply::default()
    }
}

/// Streams replies as the request's path says: `ok` sends `1`, waits for the test, sends `2`
/// and ends OK; `fail` sends `1` then ends UNAVAILABLE; `hang` sends `1` and then nothing until
/// its client goes away.
fn watch(up: Arc<Upstream>, request: CallRequest) -> ReplyStream {
    let (tx, mut rx) = mpsc::channel::<Result<CallReply, Status>>(4);
    tokio::spawn(async move {
        let _ = tx.send(Ok(reply("1"))).await;
        match request.path.as_str() {
            "ok" => {
                up.release.notified().await;
                let _ = tx.send(Ok(reply("2"))).await;
            }
            "fail" => {
                up.fail_calls.fetch_add(1, Ordering::SeqCst);
                let _ = tx
                    .send(Err(Status::unavailable("failed after the first message")))
                    .await;
            }
            _ => {
                tx.closed().await;
                up.hang_ended.notify_one();
            }
        }
    });
    Box::pin(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}

struct WatchService(Arc<Upstream>);

impl tonic::server::ServerStreamingService<CallRequest> for WatchService {
    type Response = CallReply;
    type ResponseStream = ReplyStream;
    type Future = std::future::Ready<Result<tonic::Response<ReplyStream>, Status>>;

    fn call(&mut self, request: tonic::Request<CallRequest>) -> Self::Future {
        let stream = watch(Arc::clone(&self.0), request.into_inner());
        std::future::ready(Ok(tonic::Response::new(stream)))
    }
}

struct CollectService(Arc<Upstream>);

impl tonic::server::ClientStreamingService<CallRequest> for CollectService {
    type Response = CallReply;
    type Future = Pin<Box<dyn Future<Output = Result<tonic::Response<CallReply>, Status>> + Send>>;

    fn call(&mut self, request: tonic::Request<Streaming<CallRequest>>) -> Self::Future {
        let up = Arc::clone(&self.0);
        Box::pin(async move {
            let mut stream = request.into_inner();
            let mut paths = Vec::new();
            while let Some(message) = stream.message().await? {
                if paths.is_empty() {
                    up.first_seen.notify_one();
                }
                paths.push(message.path);
            }
            Ok(tonic::Response::new(reply(&paths.join(","))))
        })
    }
}

fn server_codec() -> tonic_prost::ProstCodec<CallReply, CallRequest> {
    tonic_prost::ProstCodec::default()
}

async fn watch_handler(State(up): State<Arc<Upstream>>, request: Request) -> Response {
    let mut grpc = tonic::server::Grpc::new(server_codec());
    grpc.server_streaming(WatchService(up), request)
        .await
        .into_response()
}

async fn collect_handler(State(up): State<Arc<Upstream>>, request: Request) -> Response {
    let mut grpc = tonic::server::Grpc::new(server_codec());
    grpc.client_streaming(CollectService(up), request)
        .await
        .into_response()
}

fn router(up: Arc<Upstream>) -> Router {
    Router::new()
        .route("/mesh.test.Stream/Watch", post(watch_handler))
        .route("/mesh.test.Stream/Slow", post(watch_handler))
        .route("/mesh.test.Stream/Collect", post(collect_handler))
        .with_state(up)
}

/// The config: host `stream` at the upstream's port; `Slow` has a route timeout, the rest are
/// retried on UNAVAILABLE.
fn config(port: u16) -> String {
    format!(
        "apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: stream
spec:
  hosts: [stream]
  location: MESH_INTERNAL
  ports:
    - {{number: 80, name: http, protocol: HTTP}}
  resolution: STATIC
  endpoints:
    - address: 127.0.0.1
      ports: {{http: {port}}}
      labels: {{app: stream, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: stream
spec:
  hosts: [stream]
  http:
    - match:
        - uri: {{exact: /mesh.test.Stream/Slow}}
      route:
        - destination: {{host: stream}}
      timeout: 300ms
    - route:
        - destination: {{host: stream}}
      retries: {{attempts: 3, retryOn: unavailable}}
"
    )
}

/// The upstream behind `MeshServer`, and a caller's `MeshClient`, each with its own runtime
/// (so each has its own metrics) over one config folder.
struct Mesh {
    up: Arc<Upstream>,
    client: MeshClient,
    caller: MeshRuntime,
    server: MeshRuntime,
    stop: tokio::sync::oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

async fn start() -> Mesh {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("stream.yaml"), config(port)).unwrap();
    let server = MeshRuntime::start(dir.path()).unwrap();
    let caller = MeshRuntime::start(dir.path()).unwrap();
    let up = Arc::new(Upstream::default());
    let stack = server.server(router(Arc::clone(&up)), &Workload::new("stream", "v1"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = mesh_server::serve(listener, stack, async {
            let _ = stopped.await;
        })
        .await;
    });
    let client = caller.mesh_client(&Workload::new("caller", "v1"), None);
    Mesh {
        up,
        client,
        caller,
        server,
        stop,
        _dir: dir,
    }
}

impl Mesh {
    async fn grpc(&self) -> tonic::client::Grpc<MeshClient> {
        let mut grpc =
            tonic::client::Grpc::with_origin(self.client.clone(), "http://stream".parse().unwrap());
        grpc.ready().await.unwrap();
        grpc
    }

    /// Starts a server-streaming call of `method` asking for `behaviour`.
    async fn watch(&self, method: &'static str, behaviour: &str) -> Streaming<CallReply> {
        let request = tonic::Request::new(CallRequest {
            path: behaviour.into(),
        });
        let codec = tonic_prost::ProstCodec::<CallRequest, CallReply>::default();
        let call = async {
            self.grpc()
                .await
                .server_streaming(request, PathAndQuery::from_static(method), codec)
                .await
        };
        match tokio::time::timeout(PATIENCE, call).await {
            Ok(Ok(response)) => response.into_inner(),
            Ok(Err(status)) => panic!("{method} {behaviour}: {status:?}"),
            Err(_) => panic!("{method} {behaviour}: no answer"),
        }
    }
}

/// The next message of `stream`, within [`PATIENCE`].
async fn next(stream: &mut Streaming<CallReply>) -> Result<Option<CallReply>, Status> {
    match tokio::time::timeout(PATIENCE, stream.message()).await {
        Ok(result) => result,
        Err(_) => panic!("no message within {PATIENCE:?}"),
    }
}

async fn within(what: &str, notified: impl Future<Output = ()>) {
    if tokio::time::timeout(PATIENCE, notified).await.is_err() {
        panic!("{what}: not within {PATIENCE:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_streams_pass_message_by_message_and_report_the_trailers_status() {
    let mesh = start().await;
    let mut stream = mesh.watch("/mesh.test.Stream/Watch", "ok").await;
    // The upstream holds its second message until the first has reached the client.
    assert_eq!(next(&mut stream).await.unwrap().unwrap().path, "1");
    mesh.up.release.notify_one();
    assert_eq!(next(&mut stream).await.unwrap().unwrap().path, "2");
    assert!(next(&mut stream).await.unwrap().is_none());

    // A failure after the first message: the client sees the message, then the status; the
    // call is not retried (a body had started), though the route retries UNAVAILABLE.
    let mut stream = mesh.watch("/mesh.test.Stream/Watch", "fail").await;
    assert_eq!(next(&mut stream).await.unwrap().unwrap().path, "1");
    let status = next(&mut stream).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(status.message(), "failed after the first message");
    assert_eq!(mesh.up.fail_calls.load(Ordering::SeqCst), 1, "retried");

    // Both reporters read the status from the trailers at the end of the stream.
    for (reporter, runtime) in [("source", &mesh.caller), ("destination", &mesh.server)] {
        let text = runtime.metrics().encode_prometheus();
        let reporter = format!("reporter=\"{reporter}\"");
        for (status, calls) in [("0", 1.0), ("14", 1.0)] {
            let grpc_status = format!("grpc_response_status=\"{status}\"");
            let lines = request_lines(
                &text,
                &[
                    &reporter,
                    r#"request_protocol="grpc""#,
                    r#"response_code="200""#,
                    &grpc_status,
                ],
            );
            assert_eq!(total(&lines), calls, "{reporter} {grpc_status}\n{text}");
        }
    }
    let _ = mesh.stop.send(());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_streams_reach_the_upstream_message_by_message() {
    let mesh = start().await;
    let up = Arc::clone(&mesh.up);
    // The second message is sent only once the upstream has read the first: a mesh that held
    // the request stream back (to buffer it for a retry, say) would never answer.
    let messages = futures_util::stream::unfold(0, move |sent| {
        let up = Arc::clone(&up);
        async move {
            match sent {
                0 => {}
                1 => within("the first message upstream", up.first_seen.notified()).await,
                _ => return None,
            }
            let message = CallRequest {
                path: format!("m{sent}"),
            };
            Some((message, sent + 1))
        }
    });
    let codec = tonic_prost::ProstCodec::<CallRequest, CallReply>::default();
    let mut grpc = mesh.grpc().await;
    let call = grpc.client_streaming(
        tonic::Request::new(messages),
        PathAndQuery::from_static("/mesh.test.Stream/Collect"),
        codec,
    );
    let reply = match tokio::time::timeout(PATIENCE, call).await {
        Ok(result) => result.unwrap().into_inner(),
        Err(_) => panic!("Collect: no answer"),
    };
    assert_eq!(reply.path, "m0,m1");
    let _ = mesh.stop.send(());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_timeout_ends_a_stream_with_deadline_exceeded() {
    let mesh = start().await;
    // `Slow` sends its first message at once and then nothing: the route's 300ms timeout ends
    // the call with DEADLINE_EXCEEDED after the message, and ends the upstream's stream.
    let mut stream = mesh.watch("/mesh.test.Stream/Slow", "hang").await;
    assert_eq!(next(&mut stream).await.unwrap().unwrap().path, "1");
    let status = next(&mut stream).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    within("the upstream stream's end", mesh.up.hang_ended.notified()).await;
    let text = mesh.caller.metrics().encode_prometheus();
    let lines = request_lines(
        &text,
        &[
            r#"reporter="source""#,
            r#"request_protocol="grpc""#,
            r#"grpc_response_status="4""#,
        ],
    );
    assert_eq!(total(&lines), 1.0, "{text}");
    let _ = mesh.stop.send(());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_dropping_its_stream_ends_the_upstream_stream() {
    let mesh = start().await;
    let mut stream = mesh.watch("/mesh.test.Stream/Watch", "hang").await;
    assert_eq!(next(&mut stream).await.unwrap().unwrap().path, "1");
    drop(stream);
    within("the upstream stream's end", mesh.up.hang_ended.notified()).await;
    let _ = mesh.stop.send(());
}
