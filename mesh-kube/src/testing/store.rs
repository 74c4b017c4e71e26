//! The test API server's objects: one map per resource, one resourceVersion counter for every
//! write (as etcd's revision), and a bounded history of events for watches to resume from.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde_json::{Value, json};

/// A resource type the server serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceType {
    /// API group (`""` for the core group).
    pub group: String,
    /// Versions served, preferred first; every version reads and writes the same objects.
    pub versions: Vec<String>,
    /// Kind, e.g. `VirtualService`.
    pub kind: String,
    /// Plural resource name in URLs, e.g. `virtualservices`.
    pub plural: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
}

impl ResourceType {
    /// A namespaced type with the plural made as Kubernetes makes it for CRDs
    /// (lowercased kind + `s`; a consonant then `y` → `ies`; `s` → `ses`).
    pub fn namespaced(group: &str, versions: &[&str], kind: &str) -> Self {
        let lower = kind.to_ascii_lowercase();
        let consonant_y = lower
            .strip_suffix('y')
            .filter(|stem| stem.chars().last().is_some_and(|c| !"aeiou".contains(c)));
        let plural = if let Some(stem) = consonant_y {
            format!("{stem}ies")
        } else if lower.ends_with('s') {
            format!("{lower}es")
        } else {
            format!("{lower}s")
        };
        Self {
            group: group.to_owned(),
            versions: versions.iter().map(|v| (*v).to_owned()).collect(),
            kind: kind.to_owned(),
            plural,
            namespaced: true,
        }
    }

    /// `group/version`, or `version` for the core group.
    pub fn group_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_owned()
        } else {
            format!("{}/{version}", self.group)
        }
    }
}

/// Kubernetes' built-in types the mesh reads, plus namespaces and config maps for kubectl.
pub(crate) fn builtin_types() -> Vec<ResourceType> {
    let core = |kind: &str, plural: &str, namespaced: bool| ResourceType {
        group: String::new(),
        versions: vec!["v1".into()],
        kind: kind.into(),
        plural: plural.into(),
        namespaced,
    };
    vec![
        core("Namespace", "namespaces", false),
        core("Service", "services", true),
        core("Pod", "pods", true),
        core("ConfigMap", "configmaps", true),
        core("Secret", "secrets", true),
        core("ServiceAccount", "serviceaccounts", true),
        ResourceType::namespaced("discovery.k8s.io", &["v1"], "EndpointSlice"),
    ]
}

/// What happened to an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One write, as watches see it.
#[derive(Debug)]
pub(crate) struct Event {
    pub(crate) rv: u64,
    /// `(group, plural)` of the object.
    pub(crate) resource: (String, String),
    pub(crate) kind: EventType,
    pub(crate) object: Value,
    /// The object before a modification (to turn it into ADDED/DELETED for a selector it
    /// starts or stops matching).
    pub(crate) old: Option<Value>,
}

/// Why a write failed: the HTTP status, Kubernetes' reason, and a message.
#[derive(Debug)]
pub(crate) struct WriteError(pub(crate) u16, pub(crate) &'static str, pub(crate) String);

type Key = (String, String);

/// Every object, the counter and the history.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) rv: u64,
    pub(crate) types: Vec<ResourceType>,
    pub(crate) objects: BTreeMap<Key, BTreeMap<Key, Value>>,
    pub(crate) history: VecDeque<Arc<Event>>,
    pub(crate) history_limit: usize,
    /// Events up to this resourceVersion are gone from the history.
    pub(crate) compacted: u64,
    uid: u64,
}

impl State {
    pub(crate) fn new(history_limit: usize) -> Self {
        Self {
            rv: 1,
            types: builtin_types(),
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            compacted: 0,
            uid: 0,
        }
    }

    /// The type served at `group` (`""` for core), `version` and `plural`.
    pub(crate) fn find(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceType> {
        self.types.iter().find(|t| {
            t.group == group && t.plural == plural && t.versions.iter().any(|v| v == version)
        })
    }

    /// The type of `apiVersion` and `kind`.
    pub(crate) fn find_kind(&self, api_version: &str, kind: &str) -> Option<ResourceType> {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        self.types
            .iter()
            .find(|t| t.group == group && t.kind == kind && t.versions.iter().any(|v| v == version))
            .cloned()
    }

    /// Registers (or replaces the versions of) a type.
    pub(crate) fn register(&mut self, t: ResourceType) {
        self.types
            .retain(|x| !(x.group == t.group && x.plural == t.plural));
        self.types.push(t);
    }

    /// Forgets a type and its objects (a CRD deleted).
    pub(crate) fn unregister(&mut self, group: &str, plural: &str) {
        self.types
            .retain(|x| !(x.group == group && x.plural == plural));
        self.objects.remove(&(group.to_owned(), plural.to_owned()));
    }

    /// Drops every event from the history: a watch resuming from before now gets 410 Gone.
    pub(crate) fn compact(&mut self) {
        self.history.clear();
        self.compacted = self.rv;
    }

    fn record(&mut self, event: Event) -> Arc<Event> {
        let event = Arc::new(event);
        self.history.push_back(event.clone());
        while self.history.len() > self.history_limit {
            if let Some(e) = self.history.pop_front() {
                self.compacted = e.rv;
            }
        }
        event
    }

    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    /// Creates `object` (namespace from the path when given); fails when it exists.
    pub(crate) fn create(
        &mut self,
        t: &ResourceType,
        version: &str,
        namespace: Option<&str>,
        mut object: Value,
    ) -> Result<(Value, Arc<Event>), WriteError> {
        let key = self.key_of(t, namespace, &object)?;
        let bucket = self
            .objects
            .entry((t.group.clone(), t.plural.clone()))
            .or_default();
        if bucket.contains_key(&key) {
            return Err(WriteError(
                409,
                "AlreadyExists",
                format!("{} \"{}\" already exists", t.plural, key.1),
            ));
        }
        self.uid += 1;
        let uid = format!("00000000-0000-0000-0000-{:012}", self.uid);
        let rv = self.next_rv();
        stamp(&mut object, t, version, &key, rv);
        if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("uid".into(), uid.into());
            meta.insert("creationTimestamp".into(), "2026-01-01T00:00:00Z".into());
            meta.insert("generation".into(), 1.into());
        }
        self.objects
            .entry((t.group.clone(), t.plural.clone()))
            .or_default()
            .insert(key, object.clone());
        let event = self.record(Event {
            rv,
            resource: (t.group.clone(), t.plural.clone()),
            kind: EventType::Added,
            object: object.clone(),
            old: None,
        });
        Ok((object, event))
    }

    /// Replaces an existing object; a stale `metadata.resourceVersion` is a conflict.
    pub(crate) fn replace(
        &mut self,
        t: &ResourceType,
        version: &str,
        namespace: Option<&str>,
        mut object: Value,
    ) -> Result<(Value, Arc<Event>), WriteError> {
        let key = self.key_of(t, namespace, &object)?;
        let old = self
            .get(t, &key)
            .cloned()
            .ok_or_else(|| not_found(t, &key.1))?;
        let sent = object
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        let current = old
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str);
        if let Some(sent) = sent
            && Some(sent) != current
        {
            return Err(WriteError(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {} \"{}\": the object has been modified; please apply your changes to the latest version and try again",
                    t.plural, key.1
                ),
            ));
        }
        let rv = self.next_rv();
        stamp(&mut object, t, version, &key, rv);
        let spec_changed = object.get("spec") != old.get("spec");
        if let (Some(meta), Some(old_meta)) = (
            object.get_mut("metadata").and_then(Value::as_object_mut),
            old.get("metadata").and_then(Value::as_object),
        ) {
            for k in ["uid", "creationTimestamp"] {
                if let Some(v) = old_meta.get(k) {
                    meta.insert(k.into(), v.clone());
                }
            }
            let generation = old_meta
                .get("generation")
                .and_then(Value::as_u64)
                .unwrap_or(1);
            meta.insert(
                "generation".into(),
                (generation + u64::from(spec_changed)).into(),
            );
        }
        self.objects
            .entry((t.group.clone(), t.plural.clone()))
            .or_default()
            .insert(key, object.clone());
        let event = self.record(Event {
            rv,
            resource: (t.group.clone(), t.plural.clone()),
            kind: EventType::Modified,
            object: object.clone(),
            old: Some(old),
        });
        Ok((object, event))
    }

    /// Deletes an object; the event carries it at the deletion's resourceVersion.
    pub(crate) fn delete(
        &mut self,
        t: &ResourceType,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<(Value, Arc<Event>), WriteError> {
        let key = (
            if t.namespaced {
                namespace.unwrap_or("default").to_owned()
            } else {
                String::new()
            },
            name.to_owned(),
        );
        let mut object = self
            .objects
            .get_mut(&(t.group.clone(), t.plural.clone()))
            .and_then(|b| b.remove(&key))
            .ok_or_else(|| not_found(t, name))?;
        let rv = self.next_rv();
        if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("resourceVersion".into(), rv.to_string().into());
        }
        let event = self.record(Event {
            rv,
            resource: (t.group.clone(), t.plural.clone()),
            kind: EventType::Deleted,
            object: object.clone(),
            old: None,
        });
        Ok((object, event))
    }

    /// The object at `(namespace, name)`.
    pub(crate) fn get(&self, t: &ResourceType, key: &Key) -> Option<&Value> {
        self.objects
            .get(&(t.group.clone(), t.plural.clone()))
            .and_then(|b| b.get(key))
    }

    /// `(namespace, name)` of `object`, the namespace from the path winning.
    fn key_of(
        &self,
        t: &ResourceType,
        namespace: Option<&str>,
        object: &Value,
    ) -> Result<Key, WriteError> {
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| WriteError(422, "Invalid", "metadata.name: Required value".into()))?;
        let body_ns = object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str);
        if !t.namespaced {
            return Ok((String::new(), name.to_owned()));
        }
        if let (Some(path), Some(body)) = (namespace, body_ns)
            && path != body
        {
            return Err(WriteError(
                400,
                "BadRequest",
                "the namespace of the provided object does not match the namespace sent on the request".into(),
            ));
        }
        let ns = namespace.or(body_ns).unwrap_or("default");
        Ok((ns.to_owned(), name.to_owned()))
    }
}

/// Sets apiVersion, kind, namespace, name and resourceVersion.
fn stamp(object: &mut Value, t: &ResourceType, version: &str, key: &Key, rv: u64) {
    if !object.is_object() {
        *object = json!({});
    }
    object["apiVersion"] = t.group_version(version).into();
    object["kind"] = t.kind.clone().into();
    if !object.get("metadata").is_some_and(Value::is_object) {
        object["metadata"] = json!({});
    }
    let meta = &mut object["metadata"];
    meta["name"] = key.1.clone().into();
    if t.namespaced {
        meta["namespace"] = key.0.clone().into();
    }
    meta["resourceVersion"] = rv.to_string().into();
}

pub(crate) fn not_found(t: &ResourceType, name: &str) -> WriteError {
    let group = if t.group.is_empty() {
        t.plural.clone()
    } else {
        format!("{}.{}", t.plural, t.group)
    };
    WriteError(404, "NotFound", format!("{group} \"{name}\" not found"))
}

/// RFC 7386 JSON merge patch (also used for strategic merge patches and server-side apply:
/// maps merge, lists and scalars are replaced, `null` removes).
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = json!({});
            }
            if let Some(t) = target.as_object_mut() {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// The object as a client at `version` sees it.
pub(crate) fn at_version(object: &Value, t: &ResourceType, version: &str) -> Value {
    let mut o = object.clone();
    if o.is_object() {
        o["apiVersion"] = t.group_version(version).into();
    }
    o
}
