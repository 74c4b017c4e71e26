//! `http[].retries` → [`RetryPolicy`]: attempts, per-try timeout, `retryOn` (HTTP and gRPC
//! conditions), backoff.

use super::*;

/// `retries`. Istio: `attempts` absent or 0 disables retries; other fields refine the default.
pub(super) fn retries(r: &HttpRetrySpec, path: &str, cx: &mut Cx<'_>) -> Option<RetryPolicy> {
    let before = cx.error_count();
    let attempts = match r.attempts {
        None => 0,
        Some(n) => non_negative(n, &format!("{path}.attempts"), cx).unwrap_or(0),
    };
    let per_try_timeout = opt_duration(
        r.per_try_timeout.as_ref(),
        &format!("{path}.perTryTimeout"),
        cx,
    )
    .flatten();
    let retry_on = match &r.retry_on {
        None => Some(RetryOn::istio_default()),
        Some(s) => retry_on(s, &format!("{path}.retryOn"), cx),
    };
    let backoff = match &r.backoff {
        None => Some(Backoff::default()),
        Some(b) => duration_field(b, &format!("{path}.backoff"), cx)
            .and_then(|d| checked(Backoff::new(d), &format!("{path}.backoff"), cx)),
    };
    if r.retry_ignore_previous_hosts == Some(false) {
        cx.error(
            &format!("{path}.retryIgnorePreviousHosts"),
            "`false` is not supported by this mesh (retries always prefer another endpoint)",
        );
    }
    if r.retry_remote_localities == Some(true) {
        // No locality-aware load balancing yet, so there are no "remote" localities to prefer.
        cx.unsupported(&format!("{path}.retryRemoteLocalities"));
    }
    if cx.error_count() > before {
        return None;
    }
    let mut policy = RetryPolicy::new(attempts, retry_on?).with_backoff(backoff?);
    if let Some(t) = per_try_timeout {
        policy = checked(
            policy.with_per_try_timeout(t),
            &format!("{path}.perTryTimeout"),
            cx,
        )?;
    }
    Some(policy)
}

/// A policy constructor's refusal as a diagnostic on `path` (the duration parser refuses
/// anything under 1ms first, so this is a second line of defence).
fn checked<T>(result: Result<T, RetryPolicyError>, path: &str, cx: &mut Cx<'_>) -> Option<T> {
    result.map_err(|e| cx.error(path, e.to_string())).ok()
}

const RETRY_ON_NAMES: [(&str, RetryCondition); 14] = [
    ("5xx", RetryCondition::FiveXx),
    ("gateway-error", RetryCondition::GatewayError),
    ("reset", RetryCondition::Reset),
    ("connect-failure", RetryCondition::ConnectFailure),
    ("retriable-4xx", RetryCondition::Retriable4xx),
    ("refused-stream", RetryCondition::RefusedStream),
    (
        "retriable-status-codes",
        RetryCondition::RetriableStatusCodes,
    ),
    ("retriable-headers", RetryCondition::RetriableHeaders),
    ("envoy-ratelimited", RetryCondition::EnvoyRatelimited),
    ("cancelled", RetryCondition::Cancelled),
    ("deadline-exceeded", RetryCondition::DeadlineExceeded),
    ("internal", RetryCondition::Internal),
    ("resource-exhausted", RetryCondition::ResourceExhausted),
    ("unavailable", RetryCondition::Unavailable),
];

/// Parses `retryOn`: Envoy condition names and numeric status codes, comma separated.
fn retry_on(s: &str, path: &str, cx: &mut Cx<'_>) -> Option<RetryOn> {
    let mut out = RetryOn::default();
    let mut ok = true;
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        if item.bytes().all(|b| b.is_ascii_digit()) {
            match item.parse::<u16>().ok().filter(|c| (100..=599).contains(c)) {
                Some(code) => {
                    if !out.status_codes.contains(&code) {
                        out.status_codes.push(code);
                    }
                }
                None => {
                    cx.error(path, format!("`{item}` is not an HTTP status code"));
                    ok = false;
                }
            }
            continue;
        }
        match RETRY_ON_NAMES.iter().find(|(n, _)| *n == item) {
            // Both need response headers the shared classifier does not see yet.
            Some((name, RetryCondition::RetriableHeaders | RetryCondition::EnvoyRatelimited)) => {
                cx.error(path, format!("`{name}` is not supported by this mesh"));
                ok = false;
            }
            Some((_, c)) => {
                if !out.conditions.contains(c) {
                    out.conditions.push(*c);
                }
            }
            None => {
                let hint = crate::diag::closest(item, RETRY_ON_NAMES.iter().map(|(n, _)| *n))
                    .map(|h| format!(", did you mean `{h}`?"))
                    .unwrap_or_default();
                cx.error(path, format!("unknown retry condition `{item}`{hint}"));
                ok = false;
            }
        }
    }
    if !out.status_codes.is_empty() && !out.has(RetryCondition::RetriableStatusCodes) {
        out.conditions.push(RetryCondition::RetriableStatusCodes);
    }
    if out.has(RetryCondition::RetriableStatusCodes) && out.status_codes.is_empty() {
        out.status_codes.push(503);
    }
    ok.then_some(out)
}
