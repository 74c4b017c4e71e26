//! ConfigMap `istio` (Istio's MeshConfig in `data.mesh`) → [`MeshSettings`].

use super::Cx;
use crate::normalize::PathNormalization;
use crate::policy::MeshSettings;
use crate::spec::mesh_config::{MeshConfigMapData, MeshConfigSpec};

/// The namespace and name of the ConfigMap that holds Istio's mesh config.
pub(crate) const MESH_CONFIG_MAP: (&str, &str) = ("istio-system", "istio");

pub(crate) fn compile(data: &MeshConfigMapData, cx: &mut Cx<'_>) -> Option<MeshSettings> {
    for key in data.other.keys() {
        cx.warn(
            &format!("data.{key}"),
            "is not read by this mesh (it reads `data.mesh`); ignored",
        );
    }
    let Some(text) = &data.mesh else {
        return Some(MeshSettings::default());
    };
    let spec: MeshConfigSpec = match yaml_serde::from_str(text) {
        Ok(Some(spec)) => spec,
        Ok(None) => return Some(MeshSettings::default()),
        Err(e) => {
            cx.error(
                "data.mesh",
                format_args!("is not valid MeshConfig YAML: {e}"),
            );
            return None;
        }
    };
    if !spec.other.is_empty() {
        let names: Vec<&str> = spec.other.keys().map(String::as_str).collect();
        cx.warn(
            "data.mesh",
            format_args!(
                "MeshConfig fields not used by this mesh (it uses pathNormalization, trustDomain, trustDomainAliases): {}",
                names.join(", ")
            ),
        );
    }
    let mut settings = MeshSettings::default();
    if let Some(level) = spec
        .path_normalization
        .as_ref()
        .and_then(|p| p.normalization.as_deref())
    {
        match PathNormalization::from_istio(level) {
            Some(level) => settings.path_normalization = level,
            None => {
                cx.error(
                    "data.mesh",
                    format_args!(
                        "pathNormalization.normalization: unknown level `{level}` (levels: NONE, BASE, DEFAULT, MERGE_SLASHES, DECODE_AND_MERGE_SLASHES)"
                    ),
                );
                return None;
            }
        }
    }
    let domain = |field: &str, value: &str, cx: &mut Cx<'_>| -> Option<String> {
        let value = value.trim();
        let valid = !value.is_empty()
            && value.len() <= 255
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
        if valid {
            Some(value.to_ascii_lowercase())
        } else {
            cx.error(
                "data.mesh",
                format_args!(
                    "{field}: `{value}` is not a trust domain (letters, digits, `.`, `-`, `_`)"
                ),
            );
            None
        }
    };
    if let Some(td) = &spec.trust_domain {
        settings.trust_domain = Some(domain("trustDomain", td, cx)?);
    }
    for (i, alias) in spec.trust_domain_aliases.iter().enumerate() {
        let alias = domain(&format!("trustDomainAliases[{i}]"), alias, cx)?;
        if !settings.trust_domain_aliases.contains(&alias) {
            settings.trust_domain_aliases.push(alias);
        }
    }
    Some(settings)
}
