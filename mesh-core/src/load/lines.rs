//! Where each field is: a YAML event pass (saphyr-parser) that maps dotted paths such as
//! `spec.http[0].route[1].weight` to the 1-based line of the whole file they are on.

use std::collections::HashMap;
use std::sync::Arc;

use saphyr_parser::{Event, Parser};
use yaml_serde::Value;

use super::values::Builder;
use crate::compile::LineIndex;

/// The field lines of one `---`-separated document.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct DocLines {
    /// The document's first line (its root node, or its `---` when empty).
    pub(crate) start: usize,
    /// Shared: the compiled resources and the load cache keep a document's lines without a copy.
    lines: Arc<HashMap<String, usize>>,
}

impl LineIndex for DocLines {
    fn line_of(&self, path: &str) -> usize {
        let mut p = path;
        loop {
            if let Some(l) = self.lines.get(p) {
                return *l;
            }
            match parent(p) {
                Some(up) => p = up,
                None => return self.start.max(1),
            }
        }
    }
}

impl DocLines {
    /// The line of `path` if it is known exactly.
    pub(crate) fn exact(&self, path: &str) -> Option<usize> {
        self.lines.get(path).copied()
    }
}

/// `a.b[2]` → `a.b`, `a.b` → `a`, `a` → none.
fn parent(path: &str) -> Option<&str> {
    if path.ends_with(']') {
        return path.rfind('[').map(|i| &path[..i]);
    }
    path.rfind(['.', '['])
        .map(|i| &path[..i])
        .filter(|p| !p.is_empty())
}

/// A YAML syntax error: 1-based line and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub(crate) line: usize,
    pub(crate) message: String,
}

enum Frame {
    Map {
        path: String,
        key: Option<String>,
        is_key: bool,
    },
    Seq {
        path: String,
        index: usize,
        is_key: bool,
    },
}

/// Indexes every document of `text`, in order.
#[cfg(test)]
pub(crate) fn index(text: &str) -> Result<Vec<DocLines>, SyntaxError> {
    Ok(index_values(text)?.into_iter().map(|(d, _)| d).collect())
}

/// Indexes every document of `text`, in order, with its value from the same pass; `None`
/// for a document whose value is left to `yaml_serde` (see [`super::values`]).
pub(crate) fn index_values(text: &str) -> Result<Vec<(DocLines, Option<Value>)>, SyntaxError> {
    index_values_at(text, 0)
}

/// [`index_values`] for a piece of a file that starts after its first `offset` lines: every
/// line is the whole file's.
pub(crate) fn index_values_at(
    text: &str,
    offset: usize,
) -> Result<Vec<(DocLines, Option<Value>)>, SyntaxError> {
    let mut docs = Vec::new();
    let mut current: Option<DocLines> = None;
    let mut stack: Vec<Frame> = Vec::new();
    let mut value: Option<Builder> = None;
    let mut parser = Parser::new_from_str(text);
    while let Some(next) = parser.next_event() {
        let (event, span) = next.map_err(|e| SyntaxError {
            line: e.marker().line().max(1) + offset,
            message: e.info().to_owned(),
        })?;
        let line = span.start.line().max(1) + offset;
        if let Some(builder) = value.as_mut()
            && builder.event(&event).is_err()
        {
            value = None;
        }
        match event {
            Event::DocumentStart(_) => {
                stack.clear();
                current = Some(DocLines {
                    start: line,
                    lines: Arc::new(HashMap::new()),
                });
                value = Some(Builder::default());
            }
            Event::DocumentEnd => {
                if let Some(d) = current.take() {
                    let v = value.take().and_then(|b| b.finish().ok());
                    docs.push((d, v));
                }
            }
            Event::Scalar(value, ..) => {
                if let Some(doc) = current.as_mut() {
                    node(doc, &mut stack, line, Some(&value), None);
                }
            }
            Event::Alias(_) => {
                if let Some(doc) = current.as_mut() {
                    node(doc, &mut stack, line, Some("*alias"), None);
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let is_map = matches!(event, Event::MappingStart(..));
                if let Some(doc) = current.as_mut() {
                    node(doc, &mut stack, line, None, Some(is_map));
                }
            }
            Event::MappingEnd | Event::SequenceEnd => {
                let is_key = match stack.pop() {
                    Some(Frame::Map { is_key, .. } | Frame::Seq { is_key, .. }) => is_key,
                    None => false,
                };
                if is_key {
                    if let Some(Frame::Map { key, .. }) = stack.last_mut() {
                        *key = Some("?".to_owned());
                    }
                } else {
                    complete(&mut stack);
                }
            }
            Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
        }
    }
    Ok(docs)
}

fn join(base: &str, key: &str) -> String {
    if base.is_empty() {
        key.to_owned()
    } else {
        format!("{base}.{key}")
    }
}

/// A node starts: a scalar (`scalar` is its text) or a container (`container` tells whether a
/// mapping).
fn node(
    doc: &mut DocLines,
    stack: &mut Vec<Frame>,
    line: usize,
    scalar: Option<&str>,
    container: Option<bool>,
) {
    let (path, is_key) = match stack.last_mut() {
        None => {
            doc.start = line;
            (String::new(), false)
        }
        Some(Frame::Map {
            path,
            key: key @ None,
            ..
        }) => {
            match scalar {
                Some(k) => {
                    let p = join(path, k);
                    Arc::make_mut(&mut doc.lines).entry(p).or_insert(line);
                    *key = Some(k.to_owned());
                    return;
                }
                // a complex key: indexed under `?`, its end makes the parent await a value
                None => (join(path, "?"), true),
            }
        }
        Some(Frame::Map {
            path, key: Some(k), ..
        }) => (join(path, k), false),
        Some(Frame::Seq { path, index, .. }) => {
            let p = format!("{path}[{index}]");
            Arc::make_mut(&mut doc.lines)
                .entry(p.clone())
                .or_insert(line);
            (p, false)
        }
    };
    match container {
        Some(true) => stack.push(Frame::Map {
            path,
            key: None,
            is_key,
        }),
        Some(false) => stack.push(Frame::Seq {
            path,
            index: 0,
            is_key,
        }),
        None => complete(stack),
    }
}

/// A value finished: the parent mapping awaits its next key, the parent sequence its next item.
fn complete(stack: &mut [Frame]) {
    match stack.last_mut() {
        Some(Frame::Map { key, .. }) => *key = None,
        Some(Frame::Seq { index, .. }) => *index += 1,
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_lines() {
        let text = "# c\napiVersion: v1\nkind: X\nspec:\n  http:\n  - route:\n    - destination:\n        host: a\n      weight: 90\n    - weight: 10\n---\nkind: Y\n";
        let docs = index(text).unwrap_or_default();
        assert_eq!(docs.len(), 2);
        let d = &docs[0];
        assert_eq!(d.start, 2);
        assert_eq!(d.line_of("kind"), 3);
        assert_eq!(d.line_of("spec.http[0]"), 6);
        assert_eq!(d.line_of("spec.http[0].route[0].destination.host"), 8);
        assert_eq!(d.line_of("spec.http[0].route[0].weight"), 9);
        assert_eq!(d.line_of("spec.http[0].route[1].weight"), 10);
        assert_eq!(d.line_of("spec.http[0].route[1].destination.subset"), 10);
        assert_eq!(d.line_of("spec.nothing"), 4);
        assert_eq!(docs[1].line_of("kind"), 12);
    }

    #[test]
    fn flow_style_and_complex_keys() {
        let text = "a: {b: [1, {c: 2}]}\n? [x]\n: y\nz: 1\n";
        let docs = index(text).unwrap_or_default();
        assert_eq!(docs[0].line_of("a.b[1].c"), 1);
        assert_eq!(docs[0].line_of("z"), 4);
    }

    #[test]
    fn syntax_error_has_a_line() {
        let err = index("a: 1\nb:\n\t- c\n").err();
        assert_eq!(err.map(|e| e.line), Some(3));
    }
}
