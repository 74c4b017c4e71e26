use std::sync::Arc;

use http::{Request, Response};
use mesh_core::watch::{ConfigSource, ConfigStore};

use super::MeshClient;
use crate::BoxError;
use crate::body::BoxBody;

const VS: &str = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: [service2]\n  http:\n  - route:\n    - destination: {host: service2}\n    timeout: 1s\n";

fn client(source: ConfigSource) -> MeshClient {
    let cluster = tower::service_fn(|_req: Request<BoxBody>| async {
        Ok::<_, BoxError>(Response::new(crate::body::empty()))
    });
    MeshClient::builder_with(source, cluster).build()
}

#[test]
fn a_new_snapshot_is_compiled_before_it_is_in_force() {
    let store = ConfigStore::new(Default::default());
    let source = ConfigSource::visible_from(store.clone(), "default");
    let client = client(source.clone());
    let shared = &client.router.shared;
    assert!(shared.next.load().is_none());

    let config = mesh_core::load::load_str("vs.yaml", VS).unwrap().config;
    store.store(config);
    // Compiled by the thread that stored it, for the view the first request will read.
    let next = shared.next.load_full().expect("compiled before the swap");
    assert!(Arc::ptr_eq(&next.config, &source.snapshot()));
    assert_eq!(next.config.virtual_services.len(), 1);
    // The first request takes that table: nothing is compiled on its thread.
    let in_force = client.router.compiled();
    assert!(Arc::ptr_eq(&in_force, &next));
}

#[test]
fn a_source_that_cannot_tell_compiles_on_first_use() {
    let config = mesh_core::load::load_str("vs.yaml", VS).unwrap().config;
    let client = client(ConfigSource::fixed(config));
    assert!(client.router.shared.next.load().is_none());
    assert_eq!(client.router.compiled().config.virtual_services.len(), 1);
}

#[test]
fn a_dropped_client_is_not_compiled_for() {
    let store = ConfigStore::new(Default::default());
    let client = client(ConfigSource::store(store.clone()));
    let shared = Arc::downgrade(&client.router.shared);
    drop(client);
    store.store(mesh_core::load::load_str("vs.yaml", VS).unwrap().config);
    assert!(shared.upgrade().is_none());
}

/// A client of `service2` (route `/known` only, whose cluster answers 503), with or without
/// the telemetry layer on top: the entry that checks the content type once.
fn grpc_client(telemetry: bool) -> MeshClient {
    const ROUTE: &str = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: [service2]\n  http:\n  - match:\n    - uri: {prefix: /known}\n    route:\n    - destination: {host: service2}\n";
    let config = mesh_core::load::load_str("vs.yaml", ROUTE).unwrap().config;
    let cluster = tower::service_fn(|_req: Request<BoxBody>| async {
        let mut answer = Response::new(crate::body::empty());
        *answer.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
        Ok::<_, BoxError>(answer)
    });
    let builder = MeshClient::builder_with(ConfigSource::fixed(config), cluster);
    if !telemetry {
        return builder.build();
    }
    let workload = mesh_telemetry::WorkloadLabels::from_labels(
        "service1",
        Some("default"),
        &Default::default(),
    );
    let layer = crate::telemetry::ClientTelemetryLayer::new(
        mesh_telemetry::MeshMetrics::new(),
        crate::telemetry::ClientTelemetryConfig::new(workload),
    );
    builder.telemetry(layer).build()
}

fn request(path: &str, grpc: bool) -> Request<BoxBody> {
    let mut builder = Request::post(format!("http://service2{path}"));
    if grpc {
        builder = builder.header(http::header::CONTENT_TYPE, "application/grpc");
    }
    builder.body(crate::body::empty()).unwrap()
}

#[tokio::test]
async fn grpc_callers_get_grpc_answers_and_others_never_with_or_without_telemetry() {
    for telemetry in [false, true] {
        let client = grpc_client(telemetry);
        // (path, gRPC status a gRPC caller gets, HTTP status any other caller gets)
        for (path, code, status) in [("/known/x", 14, 503), ("/other", 12, 404)] {
            let answer = client.send(request(path, true)).await.unwrap();
            assert_eq!(answer.status(), 200, "{path}, telemetry {telemetry}");
            assert_eq!(
                mesh_core::grpc::status_of(answer.headers()),
                Some(code),
                "{path}, telemetry {telemetry}"
            );
            let answer = client.send(request(path, false)).await.unwrap();
            assert_eq!(answer.status(), status, "{path}, telemetry {telemetry}");
            assert!(
                !mesh_core::grpc::is_grpc(answer.headers())
                    && mesh_core::grpc::status_of(answer.headers()).is_none(),
                "{path}, telemetry {telemetry}: not a gRPC answer"
            );
        }
    }
}

/// glibc's per-thread cache serves blocks of up to 1032 bytes; a larger one takes its slower
/// bins (about 1k instructions more per request on the benchmark's hop, counted by callgrind).
/// A caller that boxes the client's future (an app's `Pin<Box<dyn Future>>`, axum's handler
/// box around an `.await` on it) wants it well under that, with room for its own state.
const CLIENT_FUTURE_MAX_BYTES: usize = 1024;

#[test]
#[cfg(target_pointer_width = "64")]
fn the_clients_future_fits_the_allocators_per_thread_cache() {
    let size = std::mem::size_of::<super::ResponseFuture>();
    assert!(
        size <= CLIENT_FUTURE_MAX_BYTES,
        "client::ResponseFuture is {size} bytes, over {CLIENT_FUTURE_MAX_BYTES}: box what is \
         rarely used (as the retry loop's replay state is) or keep it out of the future"
    );
}
