//! The CUSTOM action's provider: a Rust hook in place of Envoy's ext_authz call.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use http::{HeaderMap, Method, StatusCode, Uri};

/// What a CUSTOM provider sees of a request.
#[derive(Clone, Debug)]
pub struct CheckRequest {
    /// `provider.name` of the matching CUSTOM policy.
    pub provider: Arc<str>,
    /// `namespace/name` of that policy.
    pub policy: Arc<str>,
    /// The request method.
    pub method: Method,
    /// The request URI.
    pub uri: Uri,
    /// The request headers.
    pub headers: HeaderMap,
    /// The client's address, when known.
    pub source: Option<SocketAddr>,
    /// The authenticated request principal (`iss/sub`), when there is one.
    pub principal: Option<String>,
}

/// A CUSTOM provider's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckResponse {
    /// Let the request go on to DENY and ALLOW policies.
    Allow,
    /// Refuse it with this status (403 when in doubt) and body.
    Deny {
        /// The status to answer with.
        status: StatusCode,
        /// The body (may be empty).
        body: String,
    },
}

impl CheckResponse {
    /// A plain 403 refusal.
    pub fn forbidden() -> Self {
        CheckResponse::Deny {
            status: StatusCode::FORBIDDEN,
            body: String::new(),
        }
    }
}

/// A boxed future returned by [`ExtAuthz::check`].
pub type CheckFuture = Pin<Box<dyn Future<Output = CheckResponse> + Send + 'static>>;

/// An external authorizer for CUSTOM policies (Istio's `extensionProviders`, Envoy's
/// ext_authz), called only for requests that a CUSTOM policy's rules select.
///
/// Any `Fn(CheckRequest) -> impl Future<Output = CheckResponse>` is one:
///
/// ```
/// use mesh_server::authz::{CheckRequest, CheckResponse, ExtAuthz};
///
/// let hook = |req: CheckRequest| async move {
///     if req.headers.contains_key("x-allowed") { CheckResponse::Allow } else { CheckResponse::forbidden() }
/// };
/// fn takes(_: impl ExtAuthz) {}
/// takes(hook);
/// ```
pub trait ExtAuthz: Send + Sync + 'static {
    /// Decides on one request.
    fn check(&self, request: CheckRequest) -> CheckFuture;
}

impl<F, Fut> ExtAuthz for F
where
    F: Fn(CheckRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = CheckResponse> + Send + 'static,
{
    fn check(&self, request: CheckRequest) -> CheckFuture {
        Box::pin(self(request))
    }
}

impl std::fmt::Debug for dyn ExtAuthz {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExtAuthz")
    }
}
