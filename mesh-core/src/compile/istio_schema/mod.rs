//! Istio's own field names and enum values for the kinds this mesh reads, so a field or value
//! Istio has and this mesh does not implement is reported as "not supported by this mesh"
//! rather than as a typo with a "did you mean" hint.
//!
//! The list (`fields.txt`) is generated from the schemas of Istio's CRDs (istio/api,
//! `kubernetes/customresourcedefinitions.gen.yaml`): every field path of every served version,
//! with list indexes dropped (`spec.http.match.uri`) and `*` for a map key
//! (`spec.http.match.headers.*.exact`), and the enum values where the schema lists them.

use std::collections::BTreeMap;
use std::sync::LazyLock;

/// Every port protocol Istio knows (`protocol.Instance` in istio/istio), upper case.
pub(crate) const PROTOCOLS: [&str; 13] = [
    "HTTP",
    "HTTPS",
    "GRPC",
    "GRPC-WEB",
    "HTTP2",
    "HTTP_PROXY",
    "MONGO",
    "REDIS",
    "MYSQL",
    "TCP",
    "TLS",
    "UDP",
    "HBONE",
];

/// kind → normalized path → the enum values Istio allows there (empty when not an enum).
type Table = BTreeMap<&'static str, BTreeMap<&'static str, Vec<&'static str>>>;

static TABLE: LazyLock<Table> = LazyLock::new(|| {
    let mut table = Table::new();
    for line in include_str!("fields.txt").lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(kind), Some(path)) = (words.next(), words.next()) else {
            continue;
        };
        let values: Vec<&str> = words.skip_while(|w| *w == "=").collect();
        table.entry(kind).or_default().insert(path, values);
    }
    table
});

/// `spec.http[0].match[1].uri` → `spec.http.match.uri`.
pub(crate) fn normalize(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut depth = 0usize;
    for c in path.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

fn entry(kind: &str, path: &str) -> Option<&'static Vec<&'static str>> {
    let fields = TABLE.get(kind)?;
    let path = normalize(path);
    if let Some(v) = fields.get(path.as_str()) {
        return Some(v);
    }
    // a map key (`*`) matches any one segment
    let segments: Vec<&str> = path.split('.').collect();
    fields
        .iter()
        .filter(|(p, _)| p.contains('*'))
        .find(|(p, _)| {
            let pattern: Vec<&str> = p.split('.').collect();
            pattern.len() == segments.len()
                && pattern
                    .iter()
                    .zip(&segments)
                    .all(|(a, b)| *a == "*" || a == b)
        })
        .map(|(_, v)| v)
}

/// Whether Istio's `kind` has a field at `path` (dotted, list indexes allowed).
pub(crate) fn has_field(kind: &str, path: &str) -> bool {
    entry(kind, path).is_some()
}

/// Whether `value` is one of the values Istio allows for the enum at `path` of `kind`.
pub(crate) fn has_value(kind: &str, path: &str, value: &str) -> bool {
    entry(kind, path).is_some_and(|values| values.contains(&value))
}

#[cfg(test)]
mod tests;
