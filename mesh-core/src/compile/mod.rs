//! From `spec` (Istio's YAML shapes) to `policy` (checked values): one module per kind.
//!
//! Each kind's module has `pub(crate) fn compile(spec: &TheSpec, cx: &mut Cx<'_>) -> Option<T>`:
//! it reports every problem through [`Cx::error`] with the dotted path of the field
//! (`spec.http[0].timeout`), and returns `None` when the resource cannot be used. Cross-resource
//! checks (a subset no DestinationRule defines, a Gateway that does not exist, duplicates) run
//! after every resource has compiled, in the loader.

use crate::diag::{Diagnostic, Severity};
use crate::policy::Origin;

/// Maps a dotted field path to the line it is on in the source file.
pub trait LineIndex {
    /// The 1-based line of `path` (e.g. `spec.http[0].route[1].weight`), or of its nearest
    /// ancestor that has a known line.
    fn line_of(&self, path: &str) -> usize;
}

/// A line index that knows nothing: every path is on the manifest's first line.
#[derive(Clone, Copy, Debug)]
pub struct NoLines(pub usize);

impl LineIndex for NoLines {
    fn line_of(&self, _path: &str) -> usize {
        self.0
    }
}

/// The compile context of one manifest: its origin, where its fields are, and the
/// diagnostics found so far.
pub struct Cx<'a> {
    origin: Origin,
    lines: &'a dyn LineIndex,
    diagnostics: &'a mut Vec<Diagnostic>,
}

impl<'a> Cx<'a> {
    /// A context for one manifest.
    pub fn new(
        origin: Origin,
        lines: &'a dyn LineIndex,
        diagnostics: &'a mut Vec<Diagnostic>,
    ) -> Self {
        Self {
            origin,
            lines,
            diagnostics,
        }
    }

    /// The resource being compiled.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// `Kind/name` of the resource.
    pub fn resource(&self) -> String {
        format!("{}/{}", self.origin.kind, self.origin.name)
    }

    /// Reports an error at `path` (dotted, e.g. `spec.http[0].timeout`); the message is prefixed
    /// with the path.
    pub fn error(&mut self, path: &str, message: impl std::fmt::Display) {
        self.push(Severity::Error, path, message);
    }

    /// Reports a warning at `path`.
    pub fn warn(&mut self, path: &str, message: impl std::fmt::Display) {
        self.push(Severity::Warning, path, message);
    }

    /// Reports a field Istio has and this mesh does not support yet (an error: never silently
    /// ignored).
    pub fn unsupported(&mut self, path: &str) {
        self.push(Severity::Error, path, "is not supported by this mesh");
    }

    /// Reports `value` at `path` as not supported by this mesh when it is a value Istio allows
    /// there (Istio's enum for that field, or `also`); returns whether it did. Callers report any
    /// other value as unknown, with their own hint.
    pub fn unsupported_value(&mut self, path: &str, value: &str, also: &[&str]) -> bool {
        let istio =
            also.contains(&value) || istio_schema::has_value(&self.origin.kind, path, value);
        if istio {
            self.error(
                path,
                format_args!("`{value}` is not supported by this mesh"),
            );
        }
        istio
    }

    /// How many errors the sink holds so far (compare before and after compiling a part).
    pub fn error_count(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }

    /// Whether any error was reported through this context's sink.
    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }

    fn push(&mut self, severity: Severity, path: &str, message: impl std::fmt::Display) {
        let line = self.lines.line_of(path);
        self.push_at(severity, line, path, message);
    }

    /// Reports a diagnostic at an explicit line, with the message prefixed by `path` (for
    /// problems whose best line is not the line of the path shown, such as an unknown field
    /// reported under its parent).
    pub fn push_at(
        &mut self,
        severity: Severity,
        line: usize,
        path: &str,
        message: impl std::fmt::Display,
    ) {
        self.diagnostics.push(Diagnostic {
            severity,
            file: self.origin.file.clone(),
            line,
            resource: self.resource(),
            message: format!("{path}: {message}"),
        });
    }
}

pub(crate) mod annotations;
pub(crate) mod authz;
pub(crate) mod client_tls;
pub(crate) mod common;
pub(crate) mod destination_rule;
pub mod duration;
pub(crate) mod export_to;
pub(crate) mod gateway;
pub(crate) mod gateway_tls;
pub(crate) mod istio_schema;
pub(crate) mod legacy_policy;
pub(crate) mod load_balancer;
pub(crate) mod mesh_config;
pub mod peer_authentication;
pub(crate) mod rate_limit;
pub(crate) mod request_authentication;
pub(crate) mod route;
pub(crate) mod service_entry;
pub(crate) mod virtual_service;
