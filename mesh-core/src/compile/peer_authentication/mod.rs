//! PeerAuthentication → [`PeerAuthnPolicy`], with Istio's validation.
//!
//! Read by the loader into `MeshConfig::peer_authentication`; the mode in force on a
//! workload's port is resolved with [`crate::policy::effective_mtls`].

use std::collections::BTreeMap;

use crate::compile::Cx;
use crate::policy::{MtlsMode, PeerAuthnPolicy, WorkloadSelector};
use crate::spec::security::PeerAuthenticationSpec;

/// PeerAuthentication → peer authentication policy; `None` (with errors in `cx`) when invalid.
pub fn compile(spec: &PeerAuthenticationSpec, cx: &mut Cx<'_>) -> Option<PeerAuthnPolicy> {
    let errors = cx.error_count();
    let match_labels = spec
        .selector
        .as_ref()
        .map(|s| s.match_labels.clone())
        .unwrap_or_default();
    for (key, value) in &match_labels {
        let path = format!("spec.selector.matchLabels.{key}");
        if key.is_empty() {
            cx.error(
                "spec.selector.matchLabels",
                "an empty label key is not allowed",
            );
        } else if key.contains('*') || value.contains('*') {
            cx.error(&path, "wildcards are not allowed in a selector");
        }
    }

    let mode = parse_mode(
        "spec.mtls.mode",
        spec.mtls.as_ref().and_then(|m| m.mode.as_deref()),
        cx,
    );

    let mut port_level = BTreeMap::new();
    if let Some(ports) = &spec.port_level_mtls {
        if ports.is_empty() {
            cx.error("spec.portLevelMtls", "if set, must have at least one port");
        }
        if match_labels.is_empty() && !ports.is_empty() {
            cx.error(
                "spec.portLevelMtls",
                "a mesh-wide or namespace-wide policy (no selector) cannot have port-level mTLS",
            );
        }
        for (key, value) in ports {
            let path = format!("spec.portLevelMtls.{}", key.0);
            let port = match key.0.parse::<u16>() {
                Ok(port) if port > 0 => Some(port),
                _ => {
                    cx.error(&path, format!("port `{}` must be in range 1..65535", key.0));
                    None
                }
            };
            let Some(value) = value else {
                cx.error(&path, "must not be null");
                continue;
            };
            let port_mode = parse_mode(&format!("{path}.mode"), value.mode.as_deref(), cx);
            if let Some(port) = port {
                port_level.insert(port, port_mode);
            }
        }
    }

    if cx.error_count() > errors {
        return None;
    }
    Some(PeerAuthnPolicy {
        origin: cx.origin().clone(),
        selector: WorkloadSelector { match_labels },
        mode,
        port_level,
    })
}

fn parse_mode(path: &str, text: Option<&str>, cx: &mut Cx<'_>) -> MtlsMode {
    match text {
        None | Some("UNSET") => MtlsMode::Unset,
        Some("DISABLE") => MtlsMode::Disable,
        Some("PERMISSIVE") => MtlsMode::Permissive,
        Some("STRICT") => MtlsMode::Strict,
        Some(other) => {
            cx.error(
                path,
                format!("unknown mode `{other}` (UNSET, DISABLE, PERMISSIVE or STRICT)"),
            );
            MtlsMode::Unset
        }
    }
}

#[cfg(test)]
mod tests;
