//! The cluster cache forgets hosts that disappear: a removed service's cluster (its pools and
//! outlier state) is dropped at the first rebuild after the change, and comes back as a new
//! cluster when the host does.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use mesh_client::cluster::{Clusters, StaticEndpoints};
use mesh_core::policy::{Destination, Labels, MeshConfig};

fn dest(host: &str) -> Destination {
    Destination {
        host: host.into(),
        subset: None,
        port: None,
    }
}

#[test]
fn clusters_of_vanished_hosts_are_pruned() {
    let config = Arc::new(MeshConfig::default());
    let set = Arc::new(StaticEndpoints::new());
    let a: SocketAddr = "127.0.0.1:9001".parse().unwrap();
    let b: SocketAddr = "127.0.0.1:9002".parse().unwrap();
    set.insert("a", None, a, 1, Labels::new());
    set.insert("b", None, b, 1, Labels::new());
    let clusters = Clusters::new(move || Arc::clone(&config), set.clone());
    assert!(clusters.cluster(&dest("a")).is_ok());
    assert!(clusters.cluster(&dest("b")).is_ok());
    assert_eq!(clusters.cached_hosts(), 2);

    // `b` disappears; the next rebuild (any host's) drops its cluster.
    set.remove("b", b);
    assert!(clusters.cluster(&dest("a")).is_ok());
    assert_eq!(clusters.cached_hosts(), 1, "b's cluster is still cached");
    assert!(clusters.cluster(&dest("b")).is_err(), "b has no endpoint");

    // It comes back: a new cluster.
    set.insert("b", None, b, 1, Labels::new());
    assert!(clusters.cluster(&dest("b")).is_ok());
    assert_eq!(clusters.cached_hosts(), 2);
}
