//! The `metadata.annotations` Istio gives meaning to on the kinds this mesh reads.
//!
//! | annotation | kind | meaning here |
//! | --- | --- | --- |
//! | `istio.io/dry-run` | AuthorizationPolicy | `"true"`: evaluated in shadow, never enforced; `"false"`: enforced |
//!
//! Any other `*.istio.io/` annotation is named in a warning as not implemented (never silently
//! ignored); annotations of other domains (`kubectl.kubernetes.io/...`, a team's own) are not the
//! mesh's business and are left alone.

use super::Cx;
use crate::load::dispatch::Kind;

/// Istio's dry-run annotation.
pub(crate) const DRY_RUN: &str = "istio.io/dry-run";

/// Warns about Istio annotations this mesh does not implement on `kind`.
pub(crate) fn check(kind: Kind, annotations: &[(String, String)], cx: &mut Cx<'_>) {
    for (key, _) in annotations {
        let istio = key
            .split_once('/')
            .is_some_and(|(domain, _)| domain == "istio.io" || domain.ends_with(".istio.io"));
        if !istio {
            continue;
        }
        if key == DRY_RUN {
            if kind != Kind::AuthorizationPolicy {
                cx.warn(
                    "metadata.annotations",
                    format_args!("`{DRY_RUN}` has meaning only on AuthorizationPolicy; ignored"),
                );
            }
            continue;
        }
        cx.warn(
            "metadata.annotations",
            format_args!("annotation `{key}` is not implemented by this mesh; ignored"),
        );
    }
}

/// Whether `istio.io/dry-run` asks for shadow evaluation; a value other than `true` or `false`
/// is an error (the policy is refused rather than guessed at).
pub(crate) fn dry_run(annotations: &[(String, String)], cx: &mut Cx<'_>) -> bool {
    match annotations.iter().find(|(k, _)| k == DRY_RUN) {
        None => false,
        Some((_, v)) => match v.trim().to_ascii_lowercase().as_str() {
            "true" => true,
            "false" => false,
            other => {
                cx.error(
                    "metadata.annotations",
                    format_args!("`{DRY_RUN}`: `{other}` is not `true` or `false`"),
                );
                false
            }
        },
    }
}
