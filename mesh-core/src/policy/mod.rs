//! The checked policy model: what the layers use.
//!
//! `spec` holds serde types shaped exactly like Istio's YAML; this module holds plain, validated
//! Rust values built from them (durations as [`Duration`], regexes compiled, weights checked,
//! Istio's defaults applied). Layers never see the YAML form. Every type here is also usable on its
//! own from Rust code, without any YAML at all.
//!
//! The whole checked configuration is one [`MeshConfig`] value, swapped atomically on reload.

pub mod client_tls;
pub mod destination;
pub mod export;
pub mod gateway;
pub mod matching;
pub mod peer_authentication;
pub mod retry;
pub mod route;
pub mod security;
pub mod service;

pub use client_tls::*;
pub use destination::*;
pub use export::*;
pub use gateway::*;
pub use matching::*;
pub use peer_authentication::*;
pub use retry::*;
pub use route::*;
pub use security::*;
pub use service::*;

use std::collections::BTreeMap;
use std::sync::Arc;

/// Where a resource came from: its kind, `namespace/name`, file and line.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Origin {
    /// The resource's kind, e.g. `VirtualService`.
    pub kind: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`, `default` when absent.
    pub namespace: String,
    /// The file it was read from (empty for config built in Rust).
    pub file: String,
    /// The 1-based line of the manifest's first line in that file (0 when unknown).
    pub line: usize,
}

/// Labels of a workload or endpoint (`app`, `version`, ...).
pub type Labels = BTreeMap<String, String>;

/// The whole checked mesh configuration: one immutable snapshot.
///
/// Built by [`crate::load`] from a folder of manifests, or by hand in Rust. Readers on the request
/// path hold an `Arc<MeshConfig>` taken from a lock-free `ArcSwap`, so a request finishes on the
/// snapshot it started with.
///
/// VirtualServices and DestinationRules are shared (`Arc`): a reload keeps the objects of the
/// documents that did not change, and a namespace's view ([`MeshConfig::visible_from`]) or a
/// clone of the config copies pointers, not routes. `Arc::ptr_eq` tells an unchanged object
/// from a recompiled one.
#[derive(Clone, Debug, Default)]
pub struct MeshConfig {
    /// Gateways (`networking.istio.io` Gateway).
    pub gateways: Vec<GatewayPolicy>,
    /// VirtualServices, in a stable order (by namespace, then name).
    pub virtual_services: Vec<Arc<VirtualService>>,
    /// DestinationRules by host as written in their `host` field; a rule whose `host` another
    /// namespace's rule already wrote the same way is keyed `namespace/host`. One rule per host
    /// and namespace; [`MeshConfig::destination_in`] picks the one a client applies (client
    /// namespace, service namespace, root namespace), and a [`MeshConfig::visible_from`] view
    /// holds only those.
    pub destinations: BTreeMap<String, Arc<DestinationPolicy>>,
    /// ServiceEntries: the static part of discovery.
    pub service_entries: Vec<ServiceEntryPolicy>,
    /// JWT authentication (RequestAuthentication, and the legacy Policy translated).
    pub authentication: Vec<AuthnPolicy>,
    /// AuthorizationPolicies (and the ALLOW-with-principal policy the legacy Policy implies).
    pub authorization: Vec<AuthzPolicy>,
    /// Linkerd HTTPLocalRateLimitPolicies.
    pub rate_limits: Vec<RateLimitPolicy>,
    /// PeerAuthentications (and the STRICT policies the legacy Policy's `peers` imply), in a
    /// stable order (by namespace, then name); resolved per workload port with
    /// [`effective_mtls`].
    pub peer_authentication: Vec<PeerAuthnPolicy>,
    /// Mesh-wide settings (Istio's MeshConfig, from ConfigMap `istio` in `istio-system`).
    pub mesh: MeshSettings,
    /// The `exportTo` of the VirtualServices, DestinationRules and ServiceEntries that set one
    /// ([`MeshConfig::visible_from`] applies them).
    pub exports: Exports,
    /// The namespace of the client this snapshot is a view for ([`MeshConfig::visible_from`]);
    /// `None` for the whole config. Short hosts resolve in it first, and
    /// [`MeshConfig::destination`] looks rules up from it (`default` when `None`).
    pub namespace: Option<String>,
}

/// Mesh-wide settings: the parts of Istio's `MeshConfig` this mesh uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MeshSettings {
    /// `pathNormalization.normalization` (Istio's default `BASE`), applied to every request's
    /// path before policy and routing decisions (see [`crate::normalize`]).
    pub path_normalization: crate::normalize::PathNormalization,
    /// `trustDomain`: the mesh's trust domain as the mesh config names it (the workload's own
    /// certificate says which one it is in; this one is trusted beside it).
    pub trust_domain: Option<String>,
    /// `trustDomainAliases`: trust domains whose workloads are treated as the mesh's own (Istio's
    /// trust domain migration): their certificates are accepted, and a policy principal under
    /// any of them (or `cluster.local`) matches the same workload under another.
    pub trust_domain_aliases: Vec<String>,
}
