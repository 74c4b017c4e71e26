use std::fmt;

use mesh_core::normalize::InvalidPath;

/// A request path that cannot be normalized (answered `400 Bad Request`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathRefused {
    reason: InvalidPath,
}

impl PathRefused {
    pub(super) fn new(reason: InvalidPath) -> Self {
        Self { reason }
    }

    /// Why the path was refused.
    pub fn reason(&self) -> InvalidPath {
        self.reason
    }
}

impl fmt::Display for PathRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid request path: {}", self.reason)
    }
}

impl std::error::Error for PathRefused {}
