//! HTTPLocalRateLimitPolicy → [`RateLimitPolicy`], with Linkerd's validation rules.

use super::Cx;
use crate::policy::{RateLimitOverride, RateLimitPolicy};
use crate::spec::security::{HttpLocalRateLimitPolicySpec, RateLimitSpec};

/// Kinds a `targetRef` may name: Linkerd's `Server`, or the workload itself.
const TARGET_KINDS: [&str; 3] = ["Server", "Service", "Deployment"];

pub(crate) fn compile(
    spec: &HttpLocalRateLimitPolicySpec,
    cx: &mut Cx<'_>,
) -> Option<RateLimitPolicy> {
    let errors_before = cx.error_count();
    let mut target = String::new();
    match &spec.target_ref {
        None => cx.error("spec.targetRef", "is required"),
        Some(t) => {
            match t.kind.as_deref() {
                None => cx.error("spec.targetRef.kind", "is required"),
                Some(k) if TARGET_KINDS.contains(&k) => {}
                Some(k) => cx.error(
                    "spec.targetRef.kind",
                    format!("unsupported kind {k:?} (expected Server, Service or Deployment)"),
                ),
            }
            match t.name.as_deref() {
                None | Some("") => cx.error("spec.targetRef.name", "is required"),
                Some(n) => target = n.to_owned(),
            }
        }
    }
    let total_rps = limit(&spec.total, "spec.total.requestsPerSecond", cx);
    let identity_rps = limit(&spec.identity, "spec.identity.requestsPerSecond", cx);
    if let (Some(total), Some(id)) = (total_rps, identity_rps)
        && id > total
    {
        cx.error(
            "spec.identity.requestsPerSecond",
            format!("{id} must not be greater than total.requestsPerSecond ({total})"),
        );
    }
    let mut overrides = Vec::new();
    for (i, o) in spec.overrides.iter().flatten().enumerate() {
        let path = format!("spec.overrides[{i}]");
        let rps_path = format!("{path}.requestsPerSecond");
        let rps = match o.requests_per_second {
            None => {
                cx.error(&rps_path, "is required");
                None
            }
            Some(n) => positive(n, &rps_path, cx),
        };
        if let (Some(total), Some(rps)) = (total_rps, rps)
            && rps > total
        {
            cx.error(
                &rps_path,
                format!("{rps} must not be greater than total.requestsPerSecond ({total})"),
            );
        }
        let mut clients = Vec::new();
        match &o.client_refs {
            None => cx.error(&format!("{path}.clientRefs"), "is required"),
            Some(refs) if refs.is_empty() => {
                cx.error(&format!("{path}.clientRefs"), "must not be empty")
            }
            Some(refs) => {
                for (j, r) in refs.iter().enumerate() {
                    let p = format!("{path}.clientRefs[{j}]");
                    match r.kind.as_deref() {
                        Some("ServiceAccount") => {}
                        None => cx.error(&format!("{p}.kind"), "is required"),
                        Some(k) => cx.error(
                            &format!("{p}.kind"),
                            format!("unsupported kind {k:?} (only ServiceAccount is supported)"),
                        ),
                    }
                    match r.name.as_deref() {
                        None | Some("") => cx.error(&format!("{p}.name"), "is required"),
                        Some(n) => clients.push(n.to_owned()),
                    }
                }
            }
        }
        if let Some(rps) = rps {
            overrides.push(RateLimitOverride { rps, clients });
        }
    }
    if total_rps.is_none()
        && identity_rps.is_none()
        && overrides.is_empty()
        && cx.error_count() == errors_before
    {
        cx.warn(
            "spec",
            "no total, identity or overrides limit: the policy limits nothing",
        );
    }
    if cx.error_count() > errors_before {
        return None;
    }
    Some(RateLimitPolicy {
        origin: cx.origin().clone(),
        target,
        total_rps,
        identity_rps,
        overrides,
    })
}

fn limit(spec: &Option<RateLimitSpec>, path: &str, cx: &mut Cx<'_>) -> Option<u32> {
    let spec = spec.as_ref()?;
    match spec.requests_per_second {
        None => {
            cx.error(path, "is required");
            None
        }
        Some(n) => positive(n, path, cx),
    }
}

fn positive(n: i64, path: &str, cx: &mut Cx<'_>) -> Option<u32> {
    match u32::try_from(n) {
        Ok(v) if v > 0 => Some(v),
        _ => {
            cx.error(
                path,
                format!("{n} must be a positive number of requests per second"),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests;
