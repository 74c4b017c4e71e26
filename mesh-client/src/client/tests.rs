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
