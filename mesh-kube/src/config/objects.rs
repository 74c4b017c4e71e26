//! The objects watched so far, and their compilation with isolation per object: an object
//! refused keeps its last good version in force.

use std::collections::{BTreeMap, BTreeSet};

use kube::api::DynamicObject;
use mesh_core::diag::Diagnostic;
use mesh_core::load::{Object, ObjectsCache, References, RefusedObject};
use mesh_core::policy::MeshConfig;

/// `(kind, namespace, name)`.
pub(crate) type Key = (String, String, String);

/// One error of a refused object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// The field, e.g. `spec.http[0].timeout` (empty when the error is about the whole object).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// An object that is not applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    /// Its kind.
    pub kind: String,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Every error.
    pub errors: Vec<FieldError>,
    /// Whether an earlier, valid version of it is in force instead.
    pub last_good_kept: bool,
}

/// What the last compilation found, for an admin `/config_dump`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigReport {
    /// The `ConfigStore` generation of the config in force (0 before the first store).
    pub generation: u64,
    /// How many objects applied.
    pub applied: usize,
    /// Objects refused.
    pub refused: Vec<Refused>,
    /// Warnings (kinds read but not compiled by this mesh yet, such as PeerAuthentication).
    pub warnings: Vec<Diagnostic>,
}

/// A watched object as the loader takes it.
pub(crate) fn to_object(o: &DynamicObject) -> Option<(Key, Object)> {
    let types = o.types.as_ref()?;
    let name = o.metadata.name.clone()?;
    let namespace = o
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let key = (types.kind.clone(), namespace.clone(), name.clone());
    let object = Object {
        api_version: types.api_version.clone(),
        kind: types.kind.clone(),
        namespace,
        name,
        annotations: o.metadata.annotations.clone().unwrap_or_default(),
        // a ConfigMap's `data` is what the loader reads in place of a `spec`
        spec: o
            .data
            .get(if types.kind == "ConfigMap" {
                "data"
            } else {
                "spec"
            })
            .cloned()
            .unwrap_or(serde_json::Value::Null),
    };
    Some((key, object))
}

/// Every object watched, and the last good version of each.
#[derive(Debug, Default)]
pub(crate) struct Objects {
    pub(crate) current: BTreeMap<Key, Object>,
    /// What the last compilation read: a change of metadata only (labels, annotations, a
    /// relist) leaves the objects as compiled equal, and nothing is compiled or stored.
    compiled: Option<BTreeMap<Key, Object>>,
    last_good: BTreeMap<Key, Object>,
    logged: BTreeSet<(Key, String)>,
    /// What each object gave alone in the last compilations: a watch event re-reads only the
    /// objects it changed.
    cache: ObjectsCache,
}

impl Objects {
    /// Replaces every object of `kind` (a completed list: objects deleted meanwhile go).
    pub(crate) fn replace_kind(&mut self, kind: &str, objects: BTreeMap<Key, Object>) {
        self.current.retain(|k, _| k.0 != kind);
        self.current.extend(objects);
    }

    /// [`compile`](Self::compile) when the objects differ from the last compilation's.
    pub(crate) fn compile_if_changed(&mut self) -> Option<(MeshConfig, ConfigReport)> {
        if self.compiled.as_ref() == Some(&self.current) {
            return None;
        }
        self.compiled = Some(self.current.clone());
        Some(self.compile())
    }

    /// Compiles everything: the config of the objects that apply (a refused object's last good
    /// version in its place), and the report.
    pub(crate) fn compile(&mut self) -> (MeshConfig, ConfigReport) {
        let owned: Vec<Object> = self.current.values().cloned().collect();
        let first = self.cache.load(&owned, References::Pending);
        let key_of = |r: &RefusedObject| (r.kind.clone(), r.namespace.clone(), r.name.clone());
        let refused_keys: BTreeSet<Key> = first.refused.iter().map(key_of).collect();
        self.last_good.retain(|k, _| self.current.contains_key(k));
        for (k, o) in &self.current {
            if !refused_keys.contains(k) {
                self.last_good.insert(k.clone(), o.clone());
            }
        }
        let kept: BTreeSet<&Key> = refused_keys
            .iter()
            .filter(|k| self.last_good.contains_key(*k))
            .collect();
        let config = if kept.is_empty() {
            first.config
        } else {
            let substituted: Vec<Object> = self
                .current
                .iter()
                .filter_map(|(k, o)| {
                    if refused_keys.contains(k) {
                        self.last_good.get(k).cloned()
                    } else {
                        Some(o.clone())
                    }
                })
                .collect();
            self.cache.load(&substituted, References::Pending).config
        };
        let refused: Vec<Refused> = first
            .refused
            .iter()
            .map(|r| {
                let key = key_of(r);
                let errors: Vec<FieldError> = r
                    .errors
                    .iter()
                    .map(|d| match d.message.split_once(": ") {
                        Some((field, message)) if !field.contains(' ') => FieldError {
                            field: field.to_owned(),
                            message: message.to_owned(),
                        },
                        _ => FieldError {
                            field: String::new(),
                            message: d.message.clone(),
                        },
                    })
                    .collect();
                Refused {
                    kind: r.kind.clone(),
                    namespace: r.namespace.clone(),
                    name: r.name.clone(),
                    last_good_kept: kept.contains(&key),
                    errors,
                }
            })
            .collect();
        self.log(&refused);
        let report = ConfigReport {
            generation: 0,
            applied: self.current.len() - refused.len(),
            refused,
            warnings: first.warnings,
        };
        (config, report)
    }

    /// Logs each refusal once (until it changes or goes away).
    fn log(&mut self, refused: &[Refused]) {
        let mut now = BTreeSet::new();
        for r in refused {
            let key = (r.kind.clone(), r.namespace.clone(), r.name.clone());
            for e in &r.errors {
                let entry = (key.clone(), format!("{}: {}", e.field, e.message));
                if !self.logged.contains(&entry) {
                    tracing::warn!(
                        kind = %r.kind,
                        namespace = %r.namespace,
                        name = %r.name,
                        field = %e.field,
                        message = %e.message,
                        last_good_kept = r.last_good_kept,
                        "kubernetes object refused; the other objects apply"
                    );
                }
                now.insert(entry);
            }
        }
        self.logged = now;
    }
}

#[cfg(test)]
mod tests;
