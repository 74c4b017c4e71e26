//! Errors of the authorization layer.

use std::fmt;
use std::sync::Arc;

use http::StatusCode;
use mesh_core::policy::ConditionKey;

/// A request refused by authorization; `rescue` answers it with 403 `RBAC: access denied` (or
/// the status a CUSTOM provider chose).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denied {
    pub(super) policy: Option<Arc<str>>,
    pub(super) custom: Option<(StatusCode, String)>,
}

impl Denied {
    /// A refusal decided by `policy` (or by no ALLOW policy matching).
    pub(crate) fn new(policy: Option<&str>) -> Self {
        Self {
            policy: policy.map(Arc::from),
            custom: None,
        }
    }

    /// The `namespace/name` of the policy that decided, when one did (a DENY or CUSTOM policy;
    /// none when no ALLOW policy matched).
    pub fn policy(&self) -> Option<&str> {
        self.policy.as_deref()
    }

    /// The status to answer with: 403 unless a CUSTOM provider chose another.
    pub fn status(&self) -> StatusCode {
        self.custom
            .as_ref()
            .map_or(StatusCode::FORBIDDEN, |(s, _)| *s)
    }

    /// A CUSTOM provider's body, if it gave one.
    pub fn body(&self) -> Option<&str> {
        self.custom
            .as_ref()
            .map(|(_, b)| b.as_str())
            .filter(|b| !b.is_empty())
    }
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.policy {
            Some(p) => write!(f, "access denied by authorization policy {p}"),
            None => f.write_str("access denied: no authorization policy allows the request"),
        }
    }
}

impl std::error::Error for Denied {}

/// A policy that cannot be compiled for evaluation (only possible for policies built by hand in
/// Rust: the YAML loader refuses these first).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("authorization policy {policy}: {message}")]
pub struct BuildError {
    policy: String,
    message: String,
}

impl BuildError {
    pub(super) fn missing_provider(policy: &str) -> Self {
        Self {
            policy: policy.to_owned(),
            message: "provider is required when action is CUSTOM".into(),
        }
    }

    pub(super) fn bad_value(policy: &str, key: &ConditionKey, value: &str) -> Self {
        Self {
            policy: policy.to_owned(),
            message: format!("when {key:?}: bad value {value:?}"),
        }
    }
}
