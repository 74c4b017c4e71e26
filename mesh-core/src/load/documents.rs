//! One file's text → its manifests: each `---`-separated document parsed, identified by
//! `apiVersion`, `kind` and `metadata`, with its field lines.

use serde::Deserialize;
use yaml_serde::Value;

use super::lines::{self, DocLines};
use crate::compile::LineIndex;
use crate::diag::{Diagnostic, Severity};
use crate::policy::Origin;

/// One identified manifest.
#[derive(Debug, PartialEq)]
pub(crate) struct Manifest {
    pub(crate) file: String,
    pub(crate) api_version: String,
    pub(crate) kind: String,
    pub(crate) name: String,
    pub(crate) namespace: String,
    /// `metadata.annotations` whose values are strings.
    pub(crate) annotations: Vec<(String, String)>,
    pub(crate) spec: Option<Value>,
    pub(crate) lines: DocLines,
}

impl Manifest {
    pub(crate) fn origin(&self) -> Origin {
        Origin {
            kind: self.kind.clone(),
            name: self.name.clone(),
            namespace: self.namespace.clone(),
            file: self.file.clone(),
            line: self.lines.start,
        }
    }

    /// `Kind/name`.
    pub(crate) fn resource(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }
}

fn error(file: &str, line: usize, resource: String, message: String) -> Diagnostic {
    Diagnostic {
        severity: Severity::Error,
        file: file.to_owned(),
        line: line.max(1),
        resource,
        message,
    }
}

/// Splits `text` into manifests; problems go to `diags`. Empty documents are skipped.
///
/// One pass (saphyr-parser) gives each document's field lines and its value; a file with a
/// document whose value that pass leaves to `yaml_serde` (a tag, an anchor, a duplicate key:
/// see [`super::values`]) is read again with `yaml_serde`, whose values and errors it keeps.
pub(crate) fn parse(file: &str, text: &str, diags: &mut Vec<Diagnostic>) -> Vec<Manifest> {
    let index = match lines::index_values(text) {
        Ok(i) => i,
        Err(e) => {
            diags.push(error(
                file,
                e.line,
                String::new(),
                format!("yaml syntax error: {}", e.message),
            ));
            return Vec::new();
        }
    };
    if index.iter().all(|(_, v)| v.is_some()) {
        return index
            .into_iter()
            .filter_map(|(lines, value)| identify(file, value?, lines, diags))
            .collect();
    }
    let index: Vec<DocLines> = index.into_iter().map(|(d, _)| d).collect();
    parse_serde(file, text, &index, diags)
}

/// [`parse`] for a piece of a file (whole `---`-separated documents) that starts after the
/// file's first `offset` lines, when the one-pass parser reads all of it: `None` on a syntax
/// error or a document left to `yaml_serde`, which the caller then reads with the whole file
/// through [`parse`], so that such errors and values stay exactly what they are.
pub(crate) fn parse_piece(
    file: &str,
    text: &str,
    offset: usize,
) -> Option<(Vec<Manifest>, Vec<Diagnostic>)> {
    let index = lines::index_values_at(text, offset).ok()?;
    if index.iter().any(|(_, v)| v.is_none()) {
        return None;
    }
    let mut diags = Vec::new();
    let manifests = index
        .into_iter()
        .filter_map(|(lines, value)| identify(file, value?, lines, &mut diags))
        .collect();
    Some((manifests, diags))
}

/// The documents of `text` read with `yaml_serde`, `index` giving their lines.
fn parse_serde(
    file: &str,
    text: &str,
    index: &[DocLines],
    diags: &mut Vec<Diagnostic>,
) -> Vec<Manifest> {
    let mut out = Vec::new();
    let mut last_error = String::new();
    // yaml_serde repeats a stream failure for every further document: the bound and the
    // repeated-error check end the loop; a failure inside one document skips only that one.
    for (i, doc) in yaml_serde::Deserializer::from_str(text)
        .enumerate()
        .take(index.len() + 1)
    {
        let lines = index.get(i).cloned().unwrap_or_default();
        let value = match Value::deserialize(doc) {
            Ok(v) => v,
            Err(e) => {
                let message = e.to_string();
                if message == last_error {
                    break;
                }
                let line = e.location().map_or(lines.start, |l| l.line());
                diags.push(error(
                    file,
                    line,
                    String::new(),
                    strip_location(&message).to_owned(),
                ));
                last_error = message;
                continue;
            }
        };
        if let Some(m) = identify(file, value, lines, diags) {
            out.push(m);
        }
    }
    out
}

/// yaml_serde ends its messages with ` at line L column C`: the diagnostic has the line already.
fn strip_location(message: &str) -> &str {
    match message.rfind(" at line ") {
        Some(i) if message[i..].contains(" column ") => &message[..i],
        _ => message,
    }
}

fn identify(
    file: &str,
    value: Value,
    lines: DocLines,
    diags: &mut Vec<Diagnostic>,
) -> Option<Manifest> {
    let mut map = match value {
        Value::Null => return None,
        Value::Mapping(m) => m,
        Value::Tagged(t) => match t.value {
            Value::Mapping(m) => m,
            _ => {
                diags.push(error(
                    file,
                    lines.start,
                    String::new(),
                    "a manifest must be a mapping".to_owned(),
                ));
                return None;
            }
        },
        _ => {
            diags.push(error(
                file,
                lines.start,
                String::new(),
                "a manifest must be a mapping".to_owned(),
            ));
            return None;
        }
    };
    let text = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let metadata = map.get("metadata");
    let name = text(metadata.and_then(|m| m.get("name")));
    let kind = text(map.get("kind"));
    let resource = format!(
        "{}/{}",
        kind.as_deref().unwrap_or("?"),
        name.as_deref().unwrap_or("?")
    );
    let mut missing = |field: &str, line_path: &str| {
        diags.push(error(
            file,
            lines.line_of(line_path),
            resource.clone(),
            format!("{field}: is required"),
        ));
    };
    let api_version = text(map.get("apiVersion"));
    if api_version.is_none() {
        missing("apiVersion", "apiVersion");
    }
    if kind.is_none() {
        missing("kind", "kind");
    }
    let namespace =
        text(metadata.and_then(|m| m.get("namespace"))).unwrap_or_else(|| "default".to_owned());
    let annotations = metadata
        .and_then(|m| m.get("annotations"))
        .and_then(Value::as_mapping)
        .map(|a| {
            a.iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    // A ConfigMap has no `spec`: its `data` is what the mesh reads (Istio's mesh config).
    let spec = match kind.as_deref() {
        Some("ConfigMap") => map.swap_remove("data"),
        _ => map.swap_remove("spec"),
    };
    Some(Manifest {
        file: file.to_owned(),
        api_version: api_version?,
        kind: kind?,
        annotations,
        // checked by the loader for the kinds it reads (other kinds are skipped anyway)
        name: name.unwrap_or_default(),
        namespace,
        spec,
        lines,
    })
}

#[cfg(test)]
mod tests;
