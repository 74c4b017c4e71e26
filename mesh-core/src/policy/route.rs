//! Routing: checked VirtualService `http[]` routes and what they do.

use std::time::Duration;

use http::{HeaderName, HeaderValue, Method, StatusCode};

use super::{Labels, Origin, Pattern, RetryPolicy, StringMatch};

/// A checked VirtualService.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualService {
    /// Where it came from.
    pub origin: Origin,
    /// `hosts`: the destinations (or, at a gateway, the `Host` values) it applies to; `*` and
    /// `*.suffix` wildcards allowed.
    pub hosts: Vec<String>,
    /// `gateways`: gateway names it binds to. Empty means `mesh` only (calls between services);
    /// the reserved name `mesh` may be listed beside gateways.
    pub gateways: Vec<String>,
    /// `http[]` in order: the first route that matches wins.
    pub http: Vec<HttpRoute>,
}

impl VirtualService {
    /// Whether it applies to sidecar-less calls between services (Istio's `mesh` gateway).
    pub fn applies_to_mesh(&self) -> bool {
        self.gateways.is_empty() || self.gateways.iter().any(|g| g == "mesh")
    }
}

/// One `http[]` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpRoute {
    /// `name`, when given.
    pub name: Option<String>,
    /// `match[]`: any one matching is enough; empty matches every request.
    pub matches: Vec<RequestMatch>,
    /// Forward to weighted destinations, redirect, or answer directly.
    pub action: RouteAction,
    /// `rewrite` (uri, uriRegexRewrite, authority), applied before forwarding.
    pub rewrite: Option<Rewrite>,
    /// `timeout`: the whole call, retries included. `None`: no timeout (Istio's default).
    pub timeout: Option<Duration>,
    /// `retries`, or Istio's default retry policy when absent.
    pub retries: RetryPolicy,
    /// `fault`: injected delay and abort.
    pub fault: Option<Fault>,
    /// `mirror` + `mirrorPercentage`, and `mirrors[]`.
    pub mirrors: Vec<Mirror>,
    /// `headers.request` and `headers.response` at route level.
    pub headers: HeaderRules,
    /// `corsPolicy`.
    pub cors: Option<CorsPolicy>,
}

/// One entry of `match[]`: every condition given must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestMatch {
    /// `name`, when given.
    pub name: Option<String>,
    /// `uri`.
    pub uri: Option<StringMatch>,
    /// `scheme`.
    pub scheme: Option<StringMatch>,
    /// `method`.
    pub method: Option<StringMatch>,
    /// `authority`.
    pub authority: Option<StringMatch>,
    /// `headers`: each must match (keys lowercased).
    pub headers: Vec<(HeaderName, StringMatch)>,
    /// `withoutHeaders`: none may match.
    pub without_headers: Vec<(HeaderName, StringMatch)>,
    /// `headers` keys `@request.auth.claims.<name>[.<nested>...]`: the request's verified JWT
    /// claim at that path ([`RequestClaims`]) must match (a string, or any string of a list).
    pub claims: Vec<(Vec<String>, StringMatch)>,
    /// The same keys under `withoutHeaders`: none may match.
    pub without_claims: Vec<(Vec<String>, StringMatch)>,
    /// `queryParams`: each must match.
    pub query_params: Vec<(String, StringMatch)>,
    /// `port`.
    pub port: Option<u16>,
    /// `gateways` on the match: overrides the VirtualService's for this match.
    pub gateways: Vec<String>,
    /// `sourceLabels`: the calling workload must carry these labels.
    pub source_labels: Labels,
    /// `ignoreUriCase`.
    pub ignore_uri_case: bool,
}

/// What a matched route does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteAction {
    /// `route[]`: weighted destinations (weights relative; 0 means no traffic).
    Forward(Vec<WeightedDestination>),
    /// `redirect`.
    Redirect(Redirect),
    /// `directResponse`.
    DirectResponse(DirectResponse),
}

/// A service and optional subset and port to send to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Destination {
    /// `host`: a service name (`service2`) or FQDN.
    pub host: String,
    /// `subset`: a DestinationRule subset name.
    pub subset: Option<String>,
    /// `port.number`.
    pub port: Option<u16>,
}

/// One `route[]` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WeightedDestination {
    /// Where to send.
    pub destination: Destination,
    /// Relative weight. A lone destination with no weight gets 100.
    pub weight: u32,
    /// Per-destination `headers`.
    pub headers: HeaderRules,
}

/// `headers`: request and response manipulation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderRules {
    /// `headers.request`.
    pub request: HeaderOps,
    /// `headers.response`.
    pub response: HeaderOps,
}

/// `set`, `add` and `remove` on one side.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderOps {
    /// `set`: replace any existing value.
    pub set: Vec<(HeaderName, HeaderValue)>,
    /// `add`: append a value.
    pub add: Vec<(HeaderName, HeaderValue)>,
    /// `remove`.
    pub remove: Vec<HeaderName>,
}

impl HeaderOps {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add.is_empty() && self.remove.is_empty()
    }
}

/// `rewrite`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rewrite {
    /// `uri`: replaces the matched prefix (or the whole path for exact/regex matches).
    pub uri: Option<String>,
    /// `uriRegexRewrite{match, rewrite}`.
    pub uri_regex: Option<(Pattern, String)>,
    /// `authority`.
    pub authority: Option<String>,
}

/// `redirect`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redirect {
    /// `uri`.
    pub uri: Option<String>,
    /// `authority`.
    pub authority: Option<String>,
    /// `port`.
    pub port: Option<u16>,
    /// `scheme`.
    pub scheme: Option<String>,
    /// `redirectCode`, 301 by default.
    pub status: StatusCode,
}

/// `directResponse`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectResponse {
    /// `status`.
    pub status: StatusCode,
    /// `body.string` (or `body.bytes` decoded).
    pub body: Option<Vec<u8>>,
}

/// `fault`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Fault {
    /// `delay`: fixed delay for a percentage of requests.
    pub delay: Option<FaultDelay>,
    /// `abort`: answer with a status for a percentage of requests.
    pub abort: Option<FaultAbort>,
}

impl Eq for Fault {}

/// `fault.delay`.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultDelay {
    /// `fixedDelay`.
    pub fixed_delay: Duration,
    /// `percentage.value` in 0..=100 (100 when absent).
    pub percent: f64,
}

/// `fault.abort`.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultAbort {
    /// `httpStatus` (with only `grpcStatus` set: the HTTP status a caller that does not speak
    /// gRPC gets for that code).
    pub status: StatusCode,
    /// `grpcStatus`: gRPC callers get a trailers-only answer with this code.
    pub grpc_status: Option<crate::grpc::Code>,
    /// `percentage.value` in 0..=100 (100 when absent).
    pub percent: f64,
}

/// A mirror target (`mirror` + `mirrorPercentage`, or one `mirrors[]` entry).
#[derive(Clone, Debug, PartialEq)]
pub struct Mirror {
    /// Where the copy goes.
    pub destination: Destination,
    /// Share of requests mirrored, 0..=100 (100 when absent, as in Istio).
    pub percent: f64,
}

impl Eq for Mirror {}

/// `corsPolicy`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CorsPolicy {
    /// `allowOrigins`.
    pub allow_origins: Vec<StringMatch>,
    /// `allowMethods`.
    pub allow_methods: Vec<Method>,
    /// `allowHeaders`.
    pub allow_headers: Vec<String>,
    /// `exposeHeaders`.
    pub expose_headers: Vec<String>,
    /// `maxAge`.
    pub max_age: Option<Duration>,
    /// `allowCredentials`.
    pub allow_credentials: Option<bool>,
    /// `unmatchedPreflights`: what to do with a preflight whose origin is not allowed.
    pub unmatched_preflights: UnmatchedPreflights,
}

/// `corsPolicy.unmatchedPreflights`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UnmatchedPreflights {
    /// `FORWARD` (and `UNSPECIFIED`, the default): send it on to the destination.
    #[default]
    Forward,
    /// `IGNORE`: answer it here, without CORS headers.
    Ignore,
}

/// The verified JWT claims of a request, put in its extensions by the inbound JWT layer after
/// RequestAuthentication, so that a gateway's routes can match them
/// (`@request.auth.claims.group` in a VirtualService `headers` match).
#[derive(Clone, Debug, PartialEq)]
pub struct RequestClaims(pub std::sync::Arc<serde_json::Value>);

impl RequestClaims {
    /// The claim at `path` (`["realm", "roles"]` for `realm.roles`).
    pub fn get<S: AsRef<str>>(&self, path: &[S]) -> Option<&serde_json::Value> {
        path.iter().try_fold(&*self.0, |v, k| v.get(k.as_ref()))
    }

    /// Whether the claim at `path` matches `m`: a string, a boolean as `true`/`false`, or any
    /// string of a list; `Present` when the claim exists at all.
    pub fn matches<S: AsRef<str>>(&self, path: &[S], m: &StringMatch) -> bool {
        let Some(claim) = self.get(path) else {
            return false;
        };
        match (m, claim) {
            (StringMatch::Present, _) => true,
            (_, serde_json::Value::String(s)) => m.matches(s, false),
            (_, serde_json::Value::Bool(b)) => m.matches(if *b { "true" } else { "false" }, false),
            (_, serde_json::Value::Array(items)) => items
                .iter()
                .any(|i| i.as_str().is_some_and(|s| m.matches(s, false))),
            _ => false,
        }
    }
}
