//! The custom resources the mesh reads, and which version of each the cluster serves.

/// One kind of mesh configuration, with the versions tried in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MeshKind {
    /// API group.
    pub group: &'static str,
    /// Kind.
    pub kind: &'static str,
    /// Plural resource name.
    pub plural: &'static str,
    /// Versions, preferred first.
    pub versions: &'static [&'static str],
}

impl MeshKind {
    /// The name its watch has in the [`crate::Status`]: `group Kind`.
    pub fn watch_name(&self) -> String {
        format!("{} {}", self.group, self.kind)
    }
}

const NETWORKING: &[&str] = &["v1", "v1beta1"];
const SECURITY: &[&str] = &["v1", "v1beta1"];

/// Every kind the mesh reads: Istio's networking and security kinds (`v1`, falling back to
/// `v1beta1`), the legacy authentication Policy, and Linkerd's HTTPLocalRateLimitPolicy.
/// PeerAuthentication is read (and reported as not compiled yet) for the mTLS work.
pub const MESH_KINDS: &[MeshKind] = &[
    MeshKind {
        group: "networking.istio.io",
        kind: "VirtualService",
        plural: "virtualservices",
        versions: NETWORKING,
    },
    MeshKind {
        group: "networking.istio.io",
        kind: "DestinationRule",
        plural: "destinationrules",
        versions: NETWORKING,
    },
    MeshKind {
        group: "networking.istio.io",
        kind: "Gateway",
        plural: "gateways",
        versions: NETWORKING,
    },
    MeshKind {
        group: "networking.istio.io",
        kind: "ServiceEntry",
        plural: "serviceentries",
        versions: NETWORKING,
    },
    MeshKind {
        group: "security.istio.io",
        kind: "RequestAuthentication",
        plural: "requestauthentications",
        versions: SECURITY,
    },
    MeshKind {
        group: "security.istio.io",
        kind: "AuthorizationPolicy",
        plural: "authorizationpolicies",
        versions: SECURITY,
    },
    MeshKind {
        group: "security.istio.io",
        kind: "PeerAuthentication",
        plural: "peerauthentications",
        versions: SECURITY,
    },
    MeshKind {
        group: "authentication.istio.io",
        kind: "Policy",
        plural: "policies",
        versions: &["v1beta1", "v1alpha1"],
    },
    MeshKind {
        group: "policy.linkerd.io",
        kind: "HTTPLocalRateLimitPolicy",
        plural: "httplocalratelimitpolicies",
        versions: &["v1alpha1"],
    },
];

/// The first of `kind`'s versions the API server serves: `Ok(None)` when none is (its CRD is
/// not installed).
pub(crate) async fn served_version(
    client: &kube::Client,
    kind: &MeshKind,
) -> Result<Option<&'static str>, kube::Error> {
    for version in kind.versions {
        match client
            .list_api_group_resources(&format!("{}/{version}", kind.group))
            .await
        {
            Ok(list) if list.resources.iter().any(|r| r.name == kind.plural) => {
                return Ok(Some(version));
            }
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}
