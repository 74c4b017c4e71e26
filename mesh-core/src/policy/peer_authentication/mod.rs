//! PeerAuthentication: which mutual TLS mode is in force on a workload's port.
//!
//! Istio resolves it per workload from at most one policy at each of three levels: the
//! workload's (its namespace, a selector that matches its labels), the namespace's (its
//! namespace, no selector) and the mesh's (the root namespace, no selector). The most specific
//! level whose `mtls.mode` is not `UNSET` decides; with none, the mode is PERMISSIVE. The
//! workload-level policy's `portLevelMtls` then overrides single ports, keyed by the workload
//! (container) port; a port-level `UNSET` inherits the workload's resolved mode. Where one
//! level has several candidates Istio takes the oldest; a folder has no creation times, so the
//! first by name is taken.

use std::collections::BTreeMap;

use super::{Labels, Origin, WorkloadSelector};

/// Istio's default root namespace: a policy there without a selector is mesh-wide.
pub const ROOT_NAMESPACE: &str = "istio-system";

/// A mode as written; `Unset` inherits from the level above.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MtlsMode {
    /// `UNSET` (or absent): inherit.
    #[default]
    Unset,
    /// `DISABLE`: plaintext only.
    Disable,
    /// `PERMISSIVE`: mutual TLS and plaintext.
    Permissive,
    /// `STRICT`: mutual TLS only.
    Strict,
}

impl MtlsMode {
    /// The mode, or `None` for `Unset`.
    pub fn resolved(self) -> Option<PeerMtls> {
        match self {
            Self::Unset => None,
            Self::Disable => Some(PeerMtls::Disable),
            Self::Permissive => Some(PeerMtls::Permissive),
            Self::Strict => Some(PeerMtls::Strict),
        }
    }
}

/// The mode in force, after inheritance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PeerMtls {
    /// Plaintext only.
    Disable,
    /// Mutual TLS and plaintext on one port (Istio's default).
    Permissive,
    /// Mutual TLS only; plaintext refused.
    Strict,
}

/// A checked PeerAuthentication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerAuthnPolicy {
    /// Where it came from (its namespace decides its scope).
    pub origin: Origin,
    /// `selector`; empty: namespace-wide (mesh-wide in the root namespace).
    pub selector: WorkloadSelector,
    /// `mtls.mode`.
    pub mode: MtlsMode,
    /// `portLevelMtls`, by workload port; only on policies with a selector.
    pub port_level: BTreeMap<u16, MtlsMode>,
}

/// What is in force for one workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EffectiveMtls {
    /// The mode of every port without a port-level override.
    pub mode: PeerMtls,
    /// Port-level overrides, resolved.
    pub ports: BTreeMap<u16, PeerMtls>,
    /// The policies that took part, most specific first, as `namespace/name` (for
    /// `/config_dump`).
    pub applied: Vec<String>,
}

impl EffectiveMtls {
    /// The mode on workload port `port`.
    pub fn for_port(&self, port: u16) -> PeerMtls {
        self.ports.get(&port).copied().unwrap_or(self.mode)
    }
}

impl Default for EffectiveMtls {
    /// No policy at all: PERMISSIVE everywhere.
    fn default() -> Self {
        Self {
            mode: PeerMtls::Permissive,
            ports: BTreeMap::new(),
            applied: Vec::new(),
        }
    }
}

/// The mode in force for the workload in `namespace` with `labels`, given every
/// PeerAuthentication of the mesh and its root namespace.
pub fn effective_mtls(
    policies: &[PeerAuthnPolicy],
    root_namespace: &str,
    namespace: &str,
    labels: &Labels,
) -> EffectiveMtls {
    let workload = first(policies.iter().filter(|p| {
        p.origin.namespace == namespace
            && !p.selector.match_labels.is_empty()
            && p.selector.selects(labels)
    }));
    let namespace_wide = first(
        policies
            .iter()
            .filter(|p| p.origin.namespace == namespace && p.selector.match_labels.is_empty()),
    );
    let mesh_wide =
        first(policies.iter().filter(|p| {
            p.origin.namespace == root_namespace && p.selector.match_labels.is_empty()
        }));

    let mut applied = Vec::new();
    let mut mode = None;
    for policy in [workload, namespace_wide, mesh_wide].into_iter().flatten() {
        let name = format!("{}/{}", policy.origin.namespace, policy.origin.name);
        if !applied.contains(&name) {
            applied.push(name);
        }
        if mode.is_none() {
            mode = policy.mode.resolved();
        }
    }
    let mode = mode.unwrap_or(PeerMtls::Permissive);
    let ports = workload
        .map(|p| {
            p.port_level
                .iter()
                .map(|(port, m)| (*port, m.resolved().unwrap_or(mode)))
                .collect()
        })
        .unwrap_or_default();
    EffectiveMtls {
        mode,
        ports,
        applied,
    }
}

/// Istio takes the oldest; without creation times, the first by name.
fn first<'a>(candidates: impl Iterator<Item = &'a PeerAuthnPolicy>) -> Option<&'a PeerAuthnPolicy> {
    candidates.min_by(|a, b| a.origin.name.cmp(&b.origin.name))
}

#[cfg(test)]
mod tests;
