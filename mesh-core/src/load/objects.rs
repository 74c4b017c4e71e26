//! Objects already in memory (read from a Kubernetes API server, say) → a checked
//! [`MeshConfig`], one object at a time: an invalid object is refused alone while every other
//! object applies.
//!
//! Each object goes through the same validation as a manifest in a file; its diagnostics name it
//! by `namespace/name` in place of `file:line` (the `file` of each [`Diagnostic`] is
//! `namespace/name` and its line is 0). Cross-object checks (a subset no DestinationRule defines,
//! a Gateway that does not exist, two DestinationRules for one host) refuse the object that
//! refers or comes second, and are re-run until the objects left agree with each other.
//!
//! ```
//! use mesh_core::load::{Object, load_objects};
//!
//! let vs = |name: &str, host: &str| Object {
//!     api_version: "networking.istio.io/v1".into(),
//!     kind: "VirtualService".into(),
//!     namespace: "default".into(),
//!     name: name.into(),
//!     spec: serde_json::json!({"hosts": [host], "http": [{"route": [{"destination": {"host": host}}]}]}),
//! };
//! let mut bad = vs("typo", "service3");
//! bad.spec["http"][0]["timeout"] = "banana".into();
//! let loaded = load_objects(&[vs("good", "service2"), bad]);
//! assert_eq!(loaded.config.virtual_services.len(), 1);
//! assert_eq!(loaded.refused.len(), 1);
//! assert_eq!(loaded.refused[0].name, "typo");
//! assert!(loaded.refused[0].errors[0].message.starts_with("spec.http[0].timeout"));
//! ```

use std::collections::BTreeSet;

use super::Compiled;
use super::dispatch::{self, Resolved};
use super::documents::Manifest;
use super::lines::DocLines;
use crate::compile::Cx;
use crate::diag::{Diagnostic, Severity};
use crate::policy::MeshConfig;

/// One object to compile: what a manifest holds, without its text.
#[derive(Clone, Debug, PartialEq)]
pub struct Object {
    /// `apiVersion`, e.g. `networking.istio.io/v1`.
    pub api_version: String,
    /// `kind`, e.g. `VirtualService`.
    pub kind: String,
    /// `metadata.namespace` (`default` when empty).
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// `spec` (null is an empty spec).
    pub spec: serde_json::Value,
}

impl Object {
    /// `namespace/name`, the name diagnostics use in place of a file.
    pub fn origin_name(&self) -> String {
        format!("{}/{}", self.namespace(), self.name)
    }

    fn namespace(&self) -> &str {
        if self.namespace.is_empty() {
            "default"
        } else {
            &self.namespace
        }
    }
}

/// An object that was not applied, with every reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefusedObject {
    /// Its kind.
    pub kind: String,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// The errors; each message starts with the field it is about (`spec.http[0].timeout: ...`).
    pub errors: Vec<Diagnostic>,
}

/// The result of [`load_objects`]: the config of every object that applied, and the others.
#[derive(Clone, Debug, Default)]
pub struct ObjectsLoaded {
    /// The checked configuration of the objects that applied.
    pub config: MeshConfig,
    /// Warnings (kinds this mesh does not read, for example).
    pub warnings: Vec<Diagnostic>,
    /// The objects refused, in input order.
    pub refused: Vec<RefusedObject>,
}

/// Compiles `objects` one by one; an object with any error is refused alone.
pub fn load_objects(objects: &[Object]) -> ObjectsLoaded {
    let mut warnings = Vec::new();
    let mut refused: Vec<(usize, Vec<Diagnostic>)> = Vec::new();
    let mut kept: Vec<(usize, Compiled)> = Vec::new();
    for (i, object) in objects.iter().enumerate() {
        let mut diags = Vec::new();
        if let Some(compiled) = compile_one(object, &mut diags) {
            kept.push((i, compiled));
        }
        let (errors, warns): (Vec<_>, Vec<_>) = diags
            .into_iter()
            .partition(|d| d.severity == Severity::Error);
        warnings.extend(warns);
        if !errors.is_empty() {
            refused.push((i, errors));
            kept.retain(|(k, _)| *k != i);
        }
    }
    // Cross-object checks: refuse the objects they blame, then check again without them (a
    // refused DestinationRule can leave a VirtualService's subset undefined).
    let config = loop {
        let mut combined = Compiled::default();
        for (_, c) in &kept {
            absorb(&mut combined, c.clone());
        }
        let mut diags = Vec::new();
        super::checks::run(&mut combined, &mut diags);
        let blamed: BTreeSet<usize> = diags
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .filter_map(|d| {
                kept.iter().map(|(i, _)| *i).find(|i| {
                    let o = &objects[*i];
                    d.file == o.origin_name() && d.resource == format!("{}/{}", o.kind, o.name)
                })
            })
            .collect();
        if blamed.is_empty() {
            break finish(combined);
        }
        for i in blamed {
            let errors: Vec<Diagnostic> = diags
                .iter()
                .filter(|d| {
                    let o = &objects[i];
                    d.severity == Severity::Error
                        && d.file == o.origin_name()
                        && d.resource == format!("{}/{}", o.kind, o.name)
                })
                .cloned()
                .map(|mut d| {
                    d.line = 0;
                    d
                })
                .collect();
            refused.push((i, errors));
            kept.retain(|(k, _)| *k != i);
        }
    };
    refused.sort_by_key(|(i, _)| *i);
    let refused = refused
        .into_iter()
        .map(|(i, errors)| {
            let o = &objects[i];
            RefusedObject {
                kind: o.kind.clone(),
                namespace: o.namespace().to_owned(),
                name: o.name.clone(),
                errors,
            }
        })
        .collect();
    ObjectsLoaded {
        config,
        warnings,
        refused,
    }
}

/// One object on its own; `None` when it is skipped or refused (the reason is in `diags`).
fn compile_one(object: &Object, diags: &mut Vec<Diagnostic>) -> Option<Compiled> {
    let file = object.origin_name();
    let spec = match object.spec {
        serde_json::Value::Null => None,
        ref v => match yaml_serde::to_value(v) {
            Ok(v) => Some(v),
            Err(e) => {
                diags.push(diagnostic(object, Severity::Error, format!("spec: {e}")));
                return None;
            }
        },
    };
    let manifest = Manifest {
        file,
        api_version: object.api_version.clone(),
        kind: object.kind.clone(),
        name: object.name.clone(),
        namespace: object.namespace().to_owned(),
        spec,
        lines: DocLines::default(),
    };
    let kind = match dispatch::resolve(&manifest.api_version, &manifest.kind) {
        Resolved::Known(k) => k,
        Resolved::Skip(message) => {
            diags.push(diagnostic(object, Severity::Warning, message));
            return None;
        }
        Resolved::BadVersion(message) => {
            diags.push(diagnostic(object, Severity::Error, message));
            return None;
        }
    };
    if manifest.name.is_empty() {
        let lines = DocLines::default();
        Cx::new(manifest.origin(), &lines, diags).error("metadata.name", "is required");
        return None;
    }
    let mut compiled = Compiled::default();
    let before = diags.len();
    dispatch::compile_manifest(kind, &manifest, &mut compiled, diags);
    for d in &mut diags[before..] {
        d.line = 0;
    }
    Some(compiled)
}

fn diagnostic(object: &Object, severity: Severity, message: String) -> Diagnostic {
    Diagnostic {
        severity,
        file: object.origin_name(),
        line: 0,
        resource: format!("{}/{}", object.kind, object.name),
        message,
    }
}

/// Moves everything `from` holds into `into`.
fn absorb(into: &mut Compiled, from: Compiled) {
    let Compiled {
        config,
        gateways,
        virtual_services,
        destination_rules,
        service_entries,
    } = from;
    // every field named, so a new kind of config cannot be forgotten here
    let MeshConfig {
        gateways: config_gateways,
        virtual_services: config_virtual_services,
        destinations,
        service_entries: config_service_entries,
        authentication,
        authorization,
        rate_limits,
    } = config;
    into.config.gateways.extend(config_gateways);
    into.config.virtual_services.extend(config_virtual_services);
    into.config.destinations.extend(destinations);
    into.config.service_entries.extend(config_service_entries);
    into.config.authentication.extend(authentication);
    into.config.authorization.extend(authorization);
    into.config.rate_limits.extend(rate_limits);
    into.gateways.extend(gateways);
    into.virtual_services.extend(virtual_services);
    into.destination_rules.extend(destination_rules);
    into.service_entries.extend(service_entries);
}

/// The checked config, in the same stable order the folder loader gives.
fn finish(compiled: Compiled) -> MeshConfig {
    let mut config = compiled.config;
    let key = |o: &crate::policy::Origin| (o.namespace.clone(), o.name.clone());
    config.gateways = compiled.gateways.into_iter().map(|(g, _)| g).collect();
    config.gateways.sort_by_key(|g| key(&g.origin));
    config.virtual_services = compiled
        .virtual_services
        .into_iter()
        .map(|(v, ..)| v)
        .collect();
    config.virtual_services.sort_by_key(|v| key(&v.origin));
    config.service_entries = compiled.service_entries;
    config.service_entries.sort_by_key(|s| key(&s.origin));
    config
}

#[cfg(test)]
mod tests;
