//! Objects already in memory (read from a Kubernetes API server, say) → a checked
//! [`MeshConfig`], one object at a time: an invalid object is refused alone while every other
//! object applies.
//!
//! Each object goes through the same validation as a manifest in a file; its diagnostics name it
//! by `namespace/name` in place of `file:line` (the `file` of each [`Diagnostic`] is
//! `namespace/name` and its line is 0). An object is read through the same document parser a
//! file goes through, so it is held to exactly the same rules. Cross-object checks (a subset no DestinationRule defines,
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
//!     annotations: Default::default(),
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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use super::Compiled;
use super::checks::References;
use super::dispatch::{self, Kind, Resolved};
use super::documents::Manifest;
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
    /// `metadata.annotations` (`istio.io/dry-run`...).
    pub annotations: BTreeMap<String, String>,
    /// `spec` (null is an empty spec; a ConfigMap's `data`).
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

/// Compiles `objects` one by one; an object with any error is refused alone. References to
/// objects that do not exist refuse the referring object ([`References::Strict`]).
pub fn load_objects(objects: &[Object]) -> ObjectsLoaded {
    load_objects_with(objects, References::Strict)
}

/// [`load_objects`], with references to objects that do not exist treated as `references`
/// says ([`References::Pending`] in a cluster: a warning, the route answers 503 `NC` until the
/// object arrives).
pub fn load_objects_with(objects: &[Object], references: References) -> ObjectsLoaded {
    let alone: Vec<Alone> = objects.iter().map(Alone::of).collect();
    let alone: Vec<&Alone> = alone.iter().collect();
    together(objects, &alone, references)
}

/// [`load_objects_with`] between loads of a changing set of objects (a Kubernetes watch): an
/// object equal to one seen in the last two loads is not read again; only what depends on the
/// other objects (compiling them together, the cross-object checks) runs on every load.
///
/// Each key (kind, namespace, name) keeps its last two versions, so that a load of the objects
/// as they are and a load with a refused object's last good version in its place (what the
/// `--kube` config does while an object is refused) do not read each other's versions again.
/// Keys absent from a load are forgotten.
///
/// ```
/// use mesh_core::load::{Object, ObjectsCache, References, load_objects_with};
///
/// let vs = |name: &str, host: &str| Object {
///     api_version: "networking.istio.io/v1".into(),
///     kind: "VirtualService".into(),
///     namespace: "default".into(),
///     name: name.into(),
///     annotations: Default::default(),
///     spec: serde_json::json!({"hosts": [host], "http": [{"route": [{"destination": {"host": host}}]}]}),
/// };
/// let mut cache = ObjectsCache::default();
/// let mut objects = vec![vs("a", "service2"), vs("b", "service3")];
/// assert_eq!(cache.load(&objects, References::Pending).config.virtual_services.len(), 2);
/// objects[1].spec["http"][0]["timeout"] = "banana".into(); // only `b` is read again
/// let loaded = cache.load(&objects, References::Pending);
/// assert_eq!(loaded.refused.len(), 1);
/// let uncached = load_objects_with(&objects, References::Pending);
/// assert_eq!(loaded.refused, uncached.refused);
/// ```
#[derive(Debug, Default)]
pub struct ObjectsCache {
    /// Per key, the newest version first.
    versions: HashMap<ObjectKey, Versions>,
    reads: u64,
}

/// Versions kept per key.
const VERSIONS: usize = 2;

/// `(kind, namespace, name)`.
type ObjectKey = (String, String, String);

/// The versions of one key seen lately, newest first, with what each gave alone.
type Versions = Vec<(Object, Arc<Alone>)>;

impl ObjectsCache {
    /// An empty cache (the first load reads every object).
    pub fn new() -> Self {
        Self::default()
    }

    /// [`load_objects_with`]`(objects, references)`, reading only the objects not seen in the
    /// cache's last loads; the result is the same as without the cache.
    pub fn load(&mut self, objects: &[Object], references: References) -> ObjectsLoaded {
        let mut next: HashMap<ObjectKey, Versions> = HashMap::with_capacity(objects.len());
        let mut alone = Vec::with_capacity(objects.len());
        for object in objects {
            let key = (
                object.kind.clone(),
                object.namespace().to_owned(),
                object.name.clone(),
            );
            // The key's versions, from this load if it came twice, else from the last loads.
            let mut versions = match next.remove(&key) {
                Some(v) => v,
                None => self.versions.remove(&key).unwrap_or_default(),
            };
            let entry = match versions.iter().position(|(seen, _)| seen == object) {
                Some(i) => versions.remove(i),
                None => {
                    self.reads += 1;
                    (object.clone(), Arc::new(Alone::of(object)))
                }
            };
            alone.push(Arc::clone(&entry.1));
            versions.insert(0, entry);
            versions.truncate(VERSIONS);
            next.insert(key, versions);
        }
        self.versions = next;
        let alone: Vec<&Alone> = alone.iter().map(|a| &**a).collect();
        together(objects, &alone, references)
    }

    /// How many objects the cache has read (parsed and compiled alone) so far: what a load of
    /// unchanged objects leaves as it was.
    pub fn reads(&self) -> u64 {
        self.reads
    }
}

/// What one object gives by itself, whatever the other objects are: its manifest and kind when
/// it compiles alone, the Gateways and DestinationRules it refuses for their own errors (who
/// refers to them is told so), and its own diagnostics. Reading an object is most of a load's
/// work (its spec goes through the same YAML document parser a file goes through), and this
/// part does not depend on the other objects, so [`ObjectsCache`] keeps it between loads.
#[derive(Debug)]
struct Alone {
    ready: Option<(Kind, Manifest)>,
    refused_refs: Vec<super::RefusedRef>,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

impl Alone {
    fn of(object: &Object) -> Alone {
        let mut diags = Vec::new();
        let mut refused_refs = Vec::new();
        let ready = manifest(object, &mut diags).and_then(|m| {
            let kind = resolve(object, &m, &mut diags)?;
            let mut alone = Compiled::default();
            dispatch::compile_manifest(kind, &m, &mut alone, &mut diags);
            // an object is named by `namespace/name`, without a line
            refused_refs.extend(alone.refused.into_iter().map(|mut r| {
                r.at = object.origin_name();
                r
            }));
            Some((kind, m))
        });
        let (errors, warnings) = diags
            .into_iter()
            .map(|mut d| {
                d.line = 0;
                d
            })
            .partition(|d| d.severity == Severity::Error);
        Alone {
            ready,
            refused_refs,
            errors,
            warnings,
        }
    }
}

/// `objects` compiled together, from what each gave alone (`alone[i]` is `objects[i]`'s).
fn together(objects: &[Object], alone: &[&Alone], references: References) -> ObjectsLoaded {
    let mut warnings = Vec::new();
    let mut refused: Vec<(usize, Vec<Diagnostic>)> = Vec::new();
    // each object alone: its own errors refuse it
    let mut kept: Vec<(usize, Kind, &Manifest)> = Vec::new();
    // Gateways and DestinationRules refused alone: who refers to them is told so
    let mut refused_refs = Vec::new();
    for (i, a) in alone.iter().enumerate() {
        refused_refs.extend(a.refused_refs.iter().cloned());
        warnings.extend(a.warnings.iter().cloned());
        match &a.ready {
            Some((kind, m)) if a.errors.is_empty() => kept.push((i, *kind, m)),
            // a kind this mesh does not read: skipped with its warning
            None if a.errors.is_empty() => {}
            _ => refused.push((i, a.errors.clone())),
        }
    }
    // then together, with the cross-object checks: refuse the objects they blame and check
    // again without them (a refused DestinationRule can leave a VirtualService's subset
    // undefined)
    let config = loop {
        let mut compiled = Compiled {
            refused: refused_refs.clone(),
            ..Compiled::default()
        };
        let mut diags = Vec::new();
        for (_, kind, m) in &kept {
            dispatch::compile_manifest(*kind, m, &mut compiled, &mut diags);
        }
        diags.clear(); // each compiled cleanly alone; warnings are reported once, above
        super::checks::run(&mut compiled, &mut diags, references);
        let blames = |d: &Diagnostic, o: &Object| {
            d.severity == Severity::Error
                && d.file == o.origin_name()
                && d.resource == format!("{}/{}", o.kind, o.name)
        };
        let blamed: BTreeSet<usize> = kept
            .iter()
            .map(|(i, ..)| *i)
            .filter(|i| diags.iter().any(|d| blames(d, &objects[*i])))
            .collect();
        if blamed.is_empty() {
            // the cross-object warnings (pending references) of the objects that apply
            warnings.extend(
                diags
                    .into_iter()
                    .filter(|d| d.severity == Severity::Warning)
                    .map(|mut d| {
                        d.line = 0;
                        d
                    }),
            );
            break finish(compiled);
        }
        for i in blamed {
            let errors: Vec<Diagnostic> = diags
                .iter()
                .filter(|d| blames(d, &objects[i]))
                .cloned()
                .map(|mut d| {
                    d.line = 0;
                    d
                })
                .collect();
            refused.push((i, errors));
            kept.retain(|(k, ..)| *k != i);
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

/// The object as a manifest, through the same document parser a file goes through (so every
/// part of `metadata` the loader reads is read here too); its file is `namespace/name`.
fn manifest(object: &Object, diags: &mut Vec<Diagnostic>) -> Option<Manifest> {
    let mut metadata = serde_json::json!({"name": object.name, "namespace": object.namespace()});
    if !object.annotations.is_empty() {
        metadata["annotations"] = serde_json::json!(object.annotations);
    }
    // a ConfigMap carries `data` where the other kinds carry `spec`
    let body = if object.kind == "ConfigMap" {
        "data"
    } else {
        "spec"
    };
    let document = serde_json::json!({
        "apiVersion": object.api_version,
        "kind": object.kind,
        "metadata": metadata,
        body: object.spec,
    });
    let text = match yaml_serde::to_string(&document) {
        Ok(t) => t,
        Err(e) => {
            diags.push(diagnostic(object, Severity::Error, format!("spec: {e}")));
            return None;
        }
    };
    let mut found = super::documents::parse(&object.origin_name(), &text, diags);
    match found.len() {
        1 => found.pop(),
        _ => {
            diags.push(diagnostic(
                object,
                Severity::Error,
                "the object could not be read as one manifest".to_owned(),
            ));
            None
        }
    }
}

/// The kind to compile `m` as; `None` when it is skipped or refused (the reason is in `diags`).
fn resolve(object: &Object, m: &Manifest, diags: &mut Vec<Diagnostic>) -> Option<Kind> {
    let kind = match dispatch::resolve(&m.api_version, &m.kind) {
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
    if m.name.is_empty() {
        Cx::new(m.origin(), &m.lines, diags).error("metadata.name", "is required");
        return None;
    }
    Some(kind)
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
