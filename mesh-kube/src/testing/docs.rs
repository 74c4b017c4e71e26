//! Discovery documents: `/version`, `/api`, `/apis`, `/api/v1`, `/apis/<group>[/<version>]`.

use serde_json::{Value, json};

use super::store::{ResourceType, State};

/// `/version`.
pub(crate) fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": "v1.33.0-mesh-kube-test",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64"
    })
}

/// `/api`: the core group's versions.
pub(crate) fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]
    })
}

/// Every non-core group with its versions (preferred first).
fn groups(state: &State) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for t in state.types.iter().filter(|t| !t.group.is_empty()) {
        let entry = match out.iter_mut().find(|(g, _)| *g == t.group) {
            Some(e) => e,
            None => {
                out.push((t.group.clone(), Vec::new()));
                let last = out.len() - 1;
                &mut out[last]
            }
        };
        for v in &t.versions {
            if !entry.1.contains(v) {
                entry.1.push(v.clone());
            }
        }
    }
    out
}

fn group_doc(name: &str, versions: &[String]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    json!({
        "name": name,
        "versions": versions,
        "preferredVersion": versions.first().cloned().unwrap_or(Value::Null),
    })
}

/// `/apis`.
pub(crate) fn group_list(state: &State) -> Value {
    let groups: Vec<Value> = groups(state)
        .iter()
        .map(|(g, vs)| group_doc(g, vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/<group>`.
pub(crate) fn group(state: &State, name: &str) -> Option<Value> {
    groups(state)
        .iter()
        .find(|(g, _)| g == name)
        .map(|(g, vs)| {
            let mut doc = group_doc(g, vs);
            doc["kind"] = "APIGroup".into();
            doc["apiVersion"] = "v1".into();
            doc
        })
}

fn short_names(t: &ResourceType) -> Vec<&'static str> {
    match (t.group.as_str(), t.kind.as_str()) {
        ("networking.istio.io", "VirtualService") => vec!["vs"],
        ("networking.istio.io", "DestinationRule") => vec!["dr"],
        ("networking.istio.io", "Gateway") => vec!["gw"],
        ("networking.istio.io", "ServiceEntry") => vec!["se"],
        ("security.istio.io", "PeerAuthentication") => vec!["pa"],
        ("security.istio.io", "RequestAuthentication") => vec!["ra"],
        ("security.istio.io", "AuthorizationPolicy") => vec!["ap"],
        ("", "Service") => vec!["svc"],
        ("", "Pod") => vec!["po"],
        ("", "Namespace") => vec!["ns"],
        ("", "ConfigMap") => vec!["cm"],
        ("", "ServiceAccount") => vec!["sa"],
        _ => Vec::new(),
    }
}

/// `/api/v1` or `/apis/<group>/<version>`: `None` when nothing is served there.
pub(crate) fn resource_list(state: &State, group: &str, version: &str) -> Option<Value> {
    let resources: Vec<Value> = state
        .types
        .iter()
        .filter(|t| t.group == group && t.versions.iter().any(|v| v == version))
        .map(|t| {
            json!({
                "name": t.plural,
                "singularName": t.kind.to_ascii_lowercase(),
                "namespaced": t.namespaced,
                "kind": t.kind,
                "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
                "shortNames": short_names(t),
            })
        })
        .collect();
    if resources.is_empty() {
        return None;
    }
    let group_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}
