//! Which kinds this mesh reads (group, versions, kind), and one manifest's `spec` from YAML to
//! its serde type (with "did you mean" hints) to its compiled policy.

use serde::de::DeserializeOwned;

use super::documents::Manifest;
use super::{Compiled, RefusedRef};
use crate::compile::{self, Cx, LineIndex};
use crate::diag::closest;
use crate::diag::{Diagnostic, Severity};
use crate::spec::mesh_config::MeshConfigMapData;
use crate::spec::security::{
    AuthorizationPolicySpec, HttpLocalRateLimitPolicySpec, LegacyPolicySpec,
    PeerAuthenticationSpec, RequestAuthenticationSpec,
};
use crate::spec::{DestinationRuleSpec, GatewaySpec, ServiceEntrySpec, VirtualServiceSpec};

/// A kind this mesh reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Gateway,
    VirtualService,
    DestinationRule,
    ServiceEntry,
    RequestAuthentication,
    AuthorizationPolicy,
    PeerAuthentication,
    LegacyPolicy,
    HttpLocalRateLimitPolicy,
    /// A core `v1` ConfigMap: Istio's mesh config when it is `istio-system/istio`.
    ConfigMap,
}

/// One API group: its name, versions and kinds.
type Group = (
    &'static str,
    &'static [&'static str],
    &'static [(&'static str, Kind)],
);

/// API groups, their versions, and their kinds.
const GROUPS: [Group; 4] = [
    (
        "networking.istio.io",
        &["v1alpha3", "v1beta1", "v1"],
        &[
            ("Gateway", Kind::Gateway),
            ("VirtualService", Kind::VirtualService),
            ("DestinationRule", Kind::DestinationRule),
            ("ServiceEntry", Kind::ServiceEntry),
        ],
    ),
    (
        "security.istio.io",
        &["v1beta1", "v1"],
        &[
            ("RequestAuthentication", Kind::RequestAuthentication),
            ("AuthorizationPolicy", Kind::AuthorizationPolicy),
            ("PeerAuthentication", Kind::PeerAuthentication),
        ],
    ),
    (
        "authentication.istio.io",
        &["v1alpha1", "v1beta1"],
        &[("Policy", Kind::LegacyPolicy)],
    ),
    (
        "policy.linkerd.io",
        &["v1alpha1"],
        &[("HTTPLocalRateLimitPolicy", Kind::HttpLocalRateLimitPolicy)],
    ),
];

/// Istio's other kinds (and the Kubernetes Gateway API Istio also reads): real kinds this mesh
/// does not implement, skipped with a warning that says so, never a "did you mean" hint.
const OTHER_ISTIO_KINDS: [(&str, &[&str]); 6] = [
    (
        "networking.istio.io",
        &[
            "Sidecar",
            "EnvoyFilter",
            "WorkloadEntry",
            "WorkloadGroup",
            "ProxyConfig",
        ],
    ),
    ("telemetry.istio.io", &["Telemetry"]),
    ("extensions.istio.io", &["WasmPlugin"]),
    ("install.istio.io", &["IstioOperator"]),
    ("security.istio.io", &[]),
    (
        "gateway.networking.k8s.io",
        &[
            "Gateway",
            "GatewayClass",
            "HTTPRoute",
            "GRPCRoute",
            "TCPRoute",
            "TLSRoute",
            "UDPRoute",
            "ReferenceGrant",
            "BackendTLSPolicy",
        ],
    ),
];

/// What to do with a manifest of this `apiVersion` and `kind`.
pub(crate) enum Resolved {
    /// Read it.
    Known(Kind),
    /// Not mesh configuration: skip with this warning.
    Skip(String),
    /// A known group with an unknown version: refuse with this error.
    BadVersion(String),
}

pub(crate) fn resolve(api_version: &str, kind: &str) -> Resolved {
    if api_version == "v1" && kind == "ConfigMap" {
        return Resolved::Known(Kind::ConfigMap);
    }
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    if OTHER_ISTIO_KINDS
        .iter()
        .any(|(g, kinds)| *g == group && kinds.contains(&kind))
    {
        return Resolved::Skip(format!(
            "`{kind}` (`{group}`) is not supported by this mesh; skipped"
        ));
    }
    let Some((group, versions, kinds)) = GROUPS.iter().find(|(g, ..)| *g == group) else {
        return Resolved::Skip(format!(
            "`{api_version}` `{kind}` is not mesh configuration; skipped"
        ));
    };
    if !versions.contains(&version) {
        return Resolved::BadVersion(format!(
            "apiVersion: unknown version `{version}` of `{group}` (versions that exist: {})",
            versions.join(", ")
        ));
    }
    match kinds.iter().find(|(k, _)| *k == kind) {
        Some((_, k)) => Resolved::Known(*k),
        None => {
            let known: Vec<&str> = kinds.iter().map(|(k, _)| *k).collect();
            let hint = closest(kind, known.iter().copied())
                .map(|h| format!(" (did you mean `{h}`?)"))
                .unwrap_or_default();
            Resolved::Skip(format!(
                "kind `{kind}` of `{group}` is not read by this mesh{hint}; skipped (it reads {})",
                known.join(", ")
            ))
        }
    }
}

/// Keeps a resource's `exportTo` (when it narrows visibility) in the config.
fn record_export(
    out: &mut Compiled,
    origin: &crate::policy::Origin,
    export: Option<crate::policy::ExportTo>,
) {
    if let Some(export) = export {
        out.config.exports.insert(
            (
                origin.kind.clone(),
                origin.namespace.clone(),
                origin.name.clone(),
            ),
            export,
        );
    }
}

/// Deserializes and compiles one known manifest, pushing the result into `out`.
pub(crate) fn compile_manifest(
    kind: Kind,
    m: &Manifest,
    out: &mut Compiled,
    diags: &mut Vec<Diagnostic>,
) {
    let origin = m.origin();
    let mut cx = Cx::new(origin, &m.lines, diags);
    compile::annotations::check(kind, &m.annotations, &mut cx);
    match kind {
        Kind::Gateway => {
            match spec::<GatewaySpec>(m, &mut cx)
                .and_then(|s| compile::gateway::compile(&s, &mut cx))
            {
                Some(p) => out.gateways.push((p, m.lines.clone())),
                None => out.refused.push(refused(m, "Gateway", None)),
            }
        }
        Kind::VirtualService => {
            if let Some(s) = spec::<VirtualServiceSpec>(m, &mut cx) {
                let export = compile::export_to::compile(&s.export_to, &mut cx);
                if let Some(p) = compile::virtual_service::compile(&s, &mut cx) {
                    record_export(out, &p.origin, export);
                    out.virtual_services.push((
                        std::sync::Arc::new(p),
                        std::sync::Arc::new(s),
                        m.lines.clone(),
                    ));
                }
            }
        }
        Kind::DestinationRule => {
            let compiled = spec::<DestinationRuleSpec>(m, &mut cx).and_then(|s| {
                let export = compile::export_to::compile(&s.export_to, &mut cx);
                compile::destination_rule::compile(&s, &mut cx).map(|p| (p, export))
            });
            match compiled {
                Some((p, export)) => {
                    record_export(out, &p.origin, export);
                    out.destination_rules
                        .push((std::sync::Arc::new(p), m.lines.clone()));
                }
                None => {
                    let host = m
                        .spec
                        .as_ref()
                        .and_then(|s| s.get("host"))
                        .and_then(|h| h.as_str())
                        .map(str::to_owned);
                    out.refused.push(refused(m, "DestinationRule", host));
                }
            }
        }
        Kind::ServiceEntry => {
            if let Some(s) = spec::<ServiceEntrySpec>(m, &mut cx) {
                let export = compile::export_to::compile(&s.export_to, &mut cx);
                if let Some(p) = compile::service_entry::compile(&s, &mut cx) {
                    record_export(out, &p.origin, export);
                    out.service_entries.push(p);
                }
            }
        }
        Kind::RequestAuthentication => {
            if let Some(p) = spec::<RequestAuthenticationSpec>(m, &mut cx)
                .and_then(|s| compile::request_authentication::compile(&s, &mut cx))
            {
                out.config.authentication.push(p);
            }
        }
        Kind::AuthorizationPolicy => {
            if let Some(mut p) = spec::<AuthorizationPolicySpec>(m, &mut cx)
                .and_then(|s| compile::authz::compile(&s, &mut cx))
            {
                p.dry_run = compile::annotations::dry_run(&m.annotations, &mut cx);
                if p.dry_run && p.action == crate::policy::AuthzAction::Custom {
                    // Istio has no shadow mode for CUSTOM: enforcing what the author meant as a
                    // trial would be worse than skipping it.
                    cx.warn(
                        "metadata.annotations",
                        "istio.io/dry-run is not supported for CUSTOM policies (as in Istio); the policy is not enforced",
                    );
                } else {
                    out.config.authorization.push(p);
                }
            }
        }
        Kind::PeerAuthentication => {
            if let Some(p) = spec::<PeerAuthenticationSpec>(m, &mut cx)
                .and_then(|s| compile::peer_authentication::compile(&s, &mut cx))
            {
                out.config.peer_authentication.push(p);
            }
        }
        Kind::LegacyPolicy => {
            // The token the legacy Policy requires is enforced (401) by the JWT layer itself, as
            // Istio 1.x did, so it adds no authorization policy; `peers: [mtls]` adds STRICT peer
            // authentication for its targets.
            if let Some(legacy) = spec::<LegacyPolicySpec>(m, &mut cx)
                .and_then(|s| compile::legacy_policy::compile(&s, &mut cx))
            {
                out.config.authentication.extend(legacy.authentication);
                out.config.peer_authentication.extend(legacy.peers);
            }
        }
        Kind::ConfigMap => {
            let (namespace, name) = compile::mesh_config::MESH_CONFIG_MAP;
            if m.namespace != namespace || m.name != name {
                cx.warn(
                    "metadata.name",
                    format_args!(
                        "ConfigMap `{}/{}` is not mesh configuration (Istio's mesh config is ConfigMap `{namespace}/{name}`); skipped",
                        m.namespace, m.name
                    ),
                );
            } else if let Some(settings) = spec::<MeshConfigMapData>(m, &mut cx)
                .and_then(|d| compile::mesh_config::compile(&d, &mut cx))
            {
                out.config.mesh = settings;
            }
        }
        Kind::HttpLocalRateLimitPolicy => {
            if let Some(p) = spec::<HttpLocalRateLimitPolicySpec>(m, &mut cx)
                .and_then(|s| compile::rate_limit::compile(&s, &mut cx))
            {
                out.config.rate_limits.push(p);
            }
        }
    }
}

fn refused(m: &Manifest, kind: &'static str, host: Option<String>) -> RefusedRef {
    RefusedRef {
        kind,
        namespace: m.namespace.clone(),
        name: m.name.clone(),
        host,
        at: format!("{}:{}", m.file, m.lines.start),
    }
}

/// Deserializes `spec` (an absent or null `spec` is an empty mapping), reporting a serde error at the
/// field it names.
fn spec<T: DeserializeOwned>(m: &Manifest, cx: &mut Cx<'_>) -> Option<T> {
    let empty = yaml_serde::Value::Mapping(yaml_serde::Mapping::new());
    let value = match &m.spec {
        None | Some(yaml_serde::Value::Null) => &empty,
        Some(v) => v,
    };
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(t) => Some(t),
        Err(e) => {
            let mut path = String::from("spec");
            for seg in e.path().iter() {
                match seg {
                    serde_path_to_error::Segment::Seq { index } => {
                        path.push_str(&format!("[{index}]"))
                    }
                    serde_path_to_error::Segment::Map { key } => {
                        path.push('.');
                        path.push_str(key);
                    }
                    serde_path_to_error::Segment::Enum { .. }
                    | serde_path_to_error::Segment::Unknown => {}
                }
            }
            let raw = e.into_inner().to_string();
            let (message, field) = explain(&m.kind, &path, &raw);
            // an unknown field is reported at its own line, under its parent's path
            let (shown, line) = match field {
                Some(f) if path.ends_with(&format!(".{f}")) => {
                    let parent = path[..path.len() - f.len() - 1].to_owned();
                    let line = m.lines.line_of(&path);
                    (parent, line)
                }
                Some(f) => {
                    let child = format!("{path}.{f}");
                    let line = m
                        .lines
                        .exact(&child)
                        .unwrap_or_else(|| m.lines.line_of(&path));
                    (path, line)
                }
                None => {
                    let line = m.lines.line_of(&path);
                    (path, line)
                }
            };
            cx.push_at(Severity::Error, line, &shown, message);
            None
        }
    }
}

/// Rewrites serde's message: a field Istio's `kind` has at `path` is named as not supported by
/// this mesh; any other unknown field gets the closest known name as a hint. Returns the message
/// and, for an unknown field, its name.
fn explain(kind: &str, path: &str, raw: &str) -> (String, Option<String>) {
    let Some(rest) = raw.strip_prefix("unknown field `") else {
        return (raw.to_owned(), None);
    };
    let Some((field, tail)) = rest.split_once('`') else {
        return (raw.to_owned(), None);
    };
    let full = if path.ends_with(&format!(".{field}")) {
        path.to_owned()
    } else {
        format!("{path}.{field}")
    };
    if compile::istio_schema::has_field(kind, &full) {
        return (
            format!(
                "`{field}` is not supported by this mesh (an Istio field it does not implement)"
            ),
            Some(field.to_owned()),
        );
    }
    let expected: Vec<&str> = tail.split('`').skip(1).step_by(2).collect();
    let message = match closest(field, expected.iter().copied()) {
        Some(h) => format!("unknown field `{field}`, did you mean `{h}`?"),
        None if expected.is_empty() => {
            format!("unknown field `{field}` (this object has no fields)")
        }
        None => format!(
            "unknown field `{field}` (known fields: {})",
            expected.join(", ")
        ),
    };
    (message, Some(field.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explain_suggests() {
        let vs = "VirtualService";
        let (m, f) = explain(
            vs,
            "spec.http[0].retries",
            "unknown field `atempts`, expected one of `attempts`, `perTryTimeout`",
        );
        assert_eq!(m, "unknown field `atempts`, did you mean `attempts`?");
        assert_eq!(f.as_deref(), Some("atempts"));
        let (m, _) = explain(vs, "spec.x", "unknown field `zzz`, expected `host`");
        assert_eq!(m, "unknown field `zzz` (known fields: host)");
        let (m, f) = explain(vs, "spec", "invalid type: string \"x\", expected i64");
        assert_eq!(m, "invalid type: string \"x\", expected i64");
        assert!(f.is_none());
    }

    #[test]
    fn istio_fields_are_not_typos() {
        let (m, f) = explain(
            "AuthorizationPolicy",
            "spec.rules[0].from[0].source",
            "unknown field `serviceAccounts`, expected one of `principals`, `namespaces`",
        );
        assert_eq!(
            m,
            "`serviceAccounts` is not supported by this mesh (an Istio field it does not implement)"
        );
        assert_eq!(f.as_deref(), Some("serviceAccounts"));
    }

    #[test]
    fn versions_are_listed() {
        match resolve("networking.istio.io/v1b", "VirtualService") {
            Resolved::BadVersion(m) => assert!(m.contains("v1alpha3, v1beta1, v1"), "{m}"),
            _ => panic!("v1b must be refused"),
        }
        assert!(matches!(
            resolve("apps/v1", "Deployment"),
            Resolved::Skip(_)
        ));
        assert!(matches!(
            resolve("networking.istio.io/v1", "Gateway"),
            Resolved::Known(Kind::Gateway)
        ));
    }

    #[test]
    fn real_istio_kinds_get_no_hint() {
        for (api, kind) in [
            ("networking.istio.io/v1", "WorkloadEntry"),
            ("networking.istio.io/v1alpha3", "EnvoyFilter"),
            ("telemetry.istio.io/v1", "Telemetry"),
            ("gateway.networking.k8s.io/v1", "HTTPRoute"),
        ] {
            match resolve(api, kind) {
                Resolved::Skip(m) => {
                    assert!(m.contains("is not supported by this mesh"), "{m}");
                    assert!(!m.contains("did you mean"), "{m}");
                }
                _ => panic!("{kind} must be skipped"),
            }
        }
    }
}
