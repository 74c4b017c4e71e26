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
    /// Only this `(namespace, name)`: Istio's mesh config is one ConfigMap, and watching every
    /// ConfigMap of the cluster would make the watch load grow with the cluster.
    pub only: Option<(&'static str, &'static str)>,
}

impl MeshKind {
    /// The name its watch has in the [`crate::Status`]: `group Kind`.
    pub fn watch_name(&self) -> String {
        match (self.group, self.only) {
            ("", Some((ns, name))) => format!("{} {ns}/{name}", self.kind),
            ("", None) => self.kind.to_owned(),
            (group, _) => format!("{group} {}", self.kind),
        }
    }

    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_owned()
        } else {
            format!("{}/{version}", self.group)
        }
    }
}

const NETWORKING: &[&str] = &["v1", "v1beta1"];
const SECURITY: &[&str] = &["v1", "v1beta1"];

/// Every kind the mesh reads: Istio's networking and security kinds (`v1`, falling back to
/// `v1beta1`), the legacy authentication Policy, Linkerd's HTTPLocalRateLimitPolicy, and
/// Istio's mesh config (ConfigMap `istio-system/istio`, its `data`).
pub const MESH_KINDS: &[MeshKind] = &[
    MeshKind {
        group: "networking.istio.io",
        kind: "VirtualService",
        plural: "virtualservices",
        versions: NETWORKING,
        only: None,
    },
    MeshKind {
        group: "networking.istio.io",
        kind: "DestinationRule",
        plural: "destinationrules",
        versions: NETWORKING,
        only: None,
    },
    MeshKind {
        group: "networking.istio.io",
        kind: "Gateway",
        plural: "gateways",
        versions: NETWORKING,
        only: None,
    },
    MeshKind {
        group: "networking.istio.io",
        kind: "ServiceEntry",
        plural: "serviceentries",
        versions: NETWORKING,
        only: None,
    },
    MeshKind {
        group: "security.istio.io",
        kind: "RequestAuthentication",
        plural: "requestauthentications",
        versions: SECURITY,
        only: None,
    },
    MeshKind {
        group: "security.istio.io",
        kind: "AuthorizationPolicy",
        plural: "authorizationpolicies",
        versions: SECURITY,
        only: None,
    },
    MeshKind {
        group: "security.istio.io",
        kind: "PeerAuthentication",
        plural: "peerauthentications",
        versions: SECURITY,
        only: None,
    },
    MeshKind {
        group: "authentication.istio.io",
        kind: "Policy",
        plural: "policies",
        versions: &["v1beta1", "v1alpha1"],
        only: None,
    },
    MeshKind {
        group: "policy.linkerd.io",
        kind: "HTTPLocalRateLimitPolicy",
        plural: "httplocalratelimitpolicies",
        versions: &["v1alpha1"],
        only: None,
    },
    MeshKind {
        group: "",
        kind: "ConfigMap",
        plural: "configmaps",
        versions: &["v1"],
        only: Some(("istio-system", "istio")),
    },
];

/// The first of `kind`'s versions the API server serves: `Ok(None)` when none is (its CRD is
/// not installed).
pub(crate) async fn served_version(
    client: &kube::Client,
    kind: &MeshKind,
) -> Result<Option<&'static str>, kube::Error> {
    for version in kind.versions {
        let served = if kind.group.is_empty() {
            client.list_core_api_resources(version).await
        } else {
            client
                .list_api_group_resources(&kind.api_version(version))
                .await
        };
        match served {
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
