//! The checked policies of one workload, compiled for the request path, and the decision for one
//! request.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderName, HeaderValue, Request};
use mesh_core::policy::{AuthnPolicy, JwksSource, Labels, TriggerRule};

use super::error::{JwksError, JwtError};
use super::extract::Location;
use super::jwks::{Entry, JwksCache};
use super::verify::{self, ClaimChecks, KeySet};
use crate::context::Principal;

/// Seconds since the Unix epoch; injectable so tests can move time.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// Request-path settings of the JWT layer.
#[derive(Clone)]
pub struct JwtSettings {
    /// Tolerance on `exp` and `nbf` (default 60 s, as Envoy's `clock_skew_seconds`).
    pub clock_skew: Duration,
    /// Longest token accepted, checked before any decoding (default 8 KiB).
    pub max_token_bytes: usize,
    /// The wall clock used for `exp`/`nbf` (default: the system clock).
    pub clock: Clock,
}

impl Default for JwtSettings {
    fn default() -> Self {
        Self {
            clock_skew: Duration::from_secs(60),
            max_token_bytes: 8 * 1024,
            clock: Arc::new(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs())
            }),
        }
    }
}

impl std::fmt::Debug for JwtSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtSettings")
            .field("clock_skew", &self.clock_skew)
            .field("max_token_bytes", &self.max_token_bytes)
            .finish_non_exhaustive()
    }
}

enum Keys {
    Inline(Result<Arc<KeySet>, JwksError>),
    Remote(Arc<Entry>),
}

struct Rule {
    issuer: String,
    audiences: Vec<String>,
    keys: Keys,
    locations: Vec<Location>,
    output_payload: Option<HeaderName>,
    output_claims: Vec<(HeaderName, Vec<String>)>,
    forward: bool,
    space_delimited: Vec<String>,
}

struct Policy {
    rules: Vec<usize>,
    require_token: bool,
    triggers: Vec<TriggerRule>,
}

/// The JWT policies of one workload, ready for the request path.
pub(crate) struct Authenticator {
    rules: Vec<Rule>,
    policies: Vec<Policy>,
    /// Every output header: removed from incoming requests so a client cannot forge them.
    outputs: Vec<HeaderName>,
    settings: JwtSettings,
}

/// What the request path does next.
pub(crate) enum Step {
    /// No policy applies, or no token and none required.
    Pass,
    /// The token verified.
    Accept(Verified),
    /// Answer 401.
    Reject(JwtError),
    /// The keys may change soon (first fetch under way, or an unknown `kid`): wait, then retry.
    Wait(Arc<Entry>, WaitFor),
}

/// What a [`Step::Wait`] waits for.
#[derive(Clone, Copy, Debug)]
pub(crate) enum WaitFor {
    FirstFetch,
    Refetch,
}

/// A verified token's effects on the request.
pub(crate) struct Verified {
    principal: Principal,
    rule: usize,
    location: Location,
    payload: Option<HeaderValue>,
}

fn header_name(s: &str) -> Option<HeaderName> {
    HeaderName::from_bytes(s.as_bytes()).ok()
}

impl Authenticator {
    /// Compiles the policies that select a workload with `labels`.
    pub(crate) fn build(
        policies: &[AuthnPolicy],
        labels: &Labels,
        cache: &JwksCache,
        settings: JwtSettings,
    ) -> Self {
        let mut out = Self {
            rules: Vec::new(),
            policies: Vec::new(),
            outputs: Vec::new(),
            settings,
        };
        for p in policies.iter().filter(|p| p.selector.selects(labels)) {
            let mut idx = Vec::with_capacity(p.rules.len());
            for r in &p.rules {
                idx.push(out.rules.len());
                let rule = out.compile_rule(r, cache);
                out.rules.push(rule);
            }
            out.policies.push(Policy {
                rules: idx,
                require_token: p.require_token,
                triggers: p.trigger_rules.clone(),
            });
        }
        out
    }

    fn compile_rule(&mut self, r: &mesh_core::policy::JwtRule, cache: &JwksCache) -> Rule {
        let keys = match &r.jwks {
            JwksSource::Inline(doc) => Keys::Inline(KeySet::from_jwks(doc).map(Arc::new)),
            JwksSource::Uri(uri) => Keys::Remote(cache.entry(uri, r.timeout)),
            JwksSource::Discovery(issuer) => Keys::Remote(cache.discovery_entry(issuer, r.timeout)),
        };
        let mut locations: Vec<Location> = r
            .from_headers
            .iter()
            .filter_map(|(h, prefix)| Some(Location::Header(header_name(h)?, prefix.clone())))
            .chain(r.from_params.iter().map(|p| Location::Param(p.clone())))
            .chain(r.from_cookies.iter().map(|c| Location::Cookie(c.clone())))
            .collect();
        if r.from_headers.is_empty() && r.from_params.is_empty() && r.from_cookies.is_empty() {
            locations = Location::defaults();
        }
        let output_payload = r.output_payload_to_header.as_deref().and_then(header_name);
        let output_claims: Vec<(HeaderName, Vec<String>)> = r
            .output_claim_to_headers
            .iter()
            .filter_map(|(h, c)| Some((header_name(h)?, c.split('.').map(str::to_owned).collect())))
            .collect();
        self.outputs.extend(output_payload.iter().cloned());
        self.outputs
            .extend(output_claims.iter().map(|(h, _)| h.clone()));
        Rule {
            issuer: r.issuer.clone(),
            audiences: r.audiences.clone(),
            keys,
            locations,
            output_payload,
            output_claims,
            forward: r.forward_original_token,
            space_delimited: r.space_delimited_claims.clone(),
        }
    }

    /// Whether no policy applies to this workload (the layer then does nothing).
    pub(crate) fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// Decides for one request. `may_wait`: whether a [`Step::Wait`] may be answered.
    pub(crate) fn check<B>(&self, req: &Request<B>, may_wait: bool) -> Step {
        let path = req.uri().path();
        let active = || {
            self.policies
                .iter()
                .filter(|p| triggered(&p.triggers, path))
        };
        let mut rules = active().flat_map(|p| p.rules.iter().copied()).peekable();
        if rules.peek().is_none() {
            return Step::Pass;
        }
        let (headers, uri) = (req.headers(), req.uri());
        let found = rules.find_map(|i| {
            let rule = self.rules.get(i)?;
            rule.locations
                .iter()
                .find_map(|l| Some((l.find(headers, uri)?, l)))
        });
        let Some((token, location)) = found else {
            return if active().any(|p| p.require_token) {
                Step::Reject(JwtError::Missing)
            } else {
                Step::Pass
            };
        };
        let parsed = match verify::parse(token, self.settings.max_token_bytes) {
            Ok(p) => p,
            Err(e) => return Step::Reject(e),
        };
        let Some(iss) = parsed.issuer() else {
            return Step::Reject(JwtError::UnknownIssuer);
        };
        let candidates = || {
            active()
                .flat_map(|p| p.rules.iter().copied())
                .filter(|i| self.rules.get(*i).is_some_and(|r| r.issuer == iss))
        };
        let Some(idx) = candidates()
            .find(|i| {
                self.rules
                    .get(*i)
                    .is_some_and(|r| r.locations.contains(location))
            })
            .or_else(|| candidates().next())
        else {
            return Step::Reject(JwtError::UnknownIssuer);
        };
        let Some(rule) = self.rules.get(idx) else {
            return Step::Reject(JwtError::UnknownIssuer);
        };
        let keys = match &rule.keys {
            Keys::Inline(Ok(k)) => k.clone(),
            Keys::Inline(Err(_)) => return Step::Reject(JwtError::KeysUnavailable),
            Keys::Remote(entry) => {
                entry.ensure_started();
                match entry.current() {
                    Some(k) if may_wait && parsed.kid_unknown(&k) => {
                        return Step::Wait(entry.clone(), WaitFor::Refetch);
                    }
                    Some(k) => k,
                    None if may_wait && entry.first_fetch_pending() => {
                        return Step::Wait(entry.clone(), WaitFor::FirstFetch);
                    }
                    None => {
                        tracing::debug!(issuer = %rule.issuer, error = %entry.unavailable(), "jwt refused: no keys");
                        return Step::Reject(JwtError::KeysUnavailable);
                    }
                }
            }
        };
        let checks = ClaimChecks {
            issuer: &rule.issuer,
            audiences: &rule.audiences,
            now: (self.settings.clock)(),
            skew: self.settings.clock_skew.as_secs(),
        };
        if let Err(e) = verify::verify(&parsed, &keys, checks) {
            tracing::debug!(issuer = %rule.issuer, error = %e, "jwt refused");
            return Step::Reject(e);
        }
        let payload = rule
            .output_payload
            .as_ref()
            .and_then(|_| HeaderValue::from_str(parsed.payload_b64).ok());
        Step::Accept(Verified {
            principal: Principal::with_space_delimited_claims(
                parsed.claims,
                rule.space_delimited.clone(),
            ),
            rule: idx,
            location: location.clone(),
            payload,
        })
    }

    /// Removes headers a client could use to forge this layer's outputs.
    pub(crate) fn strip<B>(&self, req: &mut Request<B>) {
        for h in &self.outputs {
            req.headers_mut().remove(h);
        }
    }

    /// Applies a verified token: the [`Principal`] in the extensions, output headers, token
    /// removed unless `forwardOriginalToken`.
    pub(crate) fn apply<B>(&self, req: &mut Request<B>, v: Verified) {
        self.strip(req);
        if let Some(rule) = self.rules.get(v.rule) {
            let headers = req.headers_mut();
            if let (Some(h), Some(p)) = (&rule.output_payload, v.payload) {
                headers.insert(h.clone(), p);
            }
            for (h, path) in &rule.output_claims {
                if let Some(value) = v.principal.claim(path).and_then(claim_header_value) {
                    headers.insert(h.clone(), value);
                }
            }
            if !rule.forward
                && let Location::Header(name, _) = &v.location
            {
                headers.remove(name);
            }
        }
        // for a gateway's routes (`@request.auth.claims.*` matches), which cannot see this crate
        let claims = mesh_core::policy::RequestClaims(Arc::new(v.principal.claims().clone()));
        req.extensions_mut().insert(claims);
        req.extensions_mut().insert(v.principal);
    }
}

/// Legacy `triggerRules`: empty means always; else any rule whose included paths (if any)
/// match and whose excluded paths do not.
fn triggered(rules: &[TriggerRule], path: &str) -> bool {
    rules.is_empty()
        || rules.iter().any(|r| {
            (r.included_paths.is_empty() || r.included_paths.iter().any(|m| m.matches(path, false)))
                && !r.excluded_paths.iter().any(|m| m.matches(path, false))
        })
}

/// A claim as a header value: strings as they are, numbers and booleans printed, lists of those
/// joined with commas; objects are not copied.
fn claim_header_value(v: &serde_json::Value) -> Option<HeaderValue> {
    fn scalar(v: &serde_json::Value) -> Option<String> {
        match v {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            serde_json::Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
    let text = match v {
        serde_json::Value::Array(items) => items
            .iter()
            .map(scalar)
            .collect::<Option<Vec<_>>>()?
            .join(","),
        other => scalar(other)?,
    };
    HeaderValue::from_str(&text).ok()
}
