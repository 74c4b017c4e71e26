//! Where each field is: a YAML event pass (saphyr-parser) that maps dotted paths such as
//! `spec.http[0].route[1].weight` to the 1-based line of the whole file they are on.

use std::fmt::Write as _;
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
    lines: Arc<Paths>,
}

/// Dotted paths and their lines, in two allocations: the paths' text one after another, and
/// `(start, end, line)` per path sorted by path (the first line seen kept for a path seen twice).
#[derive(Debug, Default, PartialEq, Eq)]
struct Paths {
    text: String,
    entries: Vec<(usize, usize, usize)>,
}

impl Paths {
    fn path(&self, entry: &(usize, usize, usize)) -> &str {
        self.text.get(entry.0..entry.1).unwrap_or_default()
    }

    fn get(&self, path: &str) -> Option<usize> {
        self.entries
            .binary_search_by(|e| self.path(e).cmp(path))
            .ok()
            .and_then(|i| self.entries.get(i))
            .map(|e| e.2)
    }

    /// Sorts the paths recorded in order, keeping each path's first line.
    fn finish(mut self) -> Self {
        let mut entries = std::mem::take(&mut self.entries);
        // stable: of equal paths the first recorded stays first, and dedup keeps it
        entries.sort_by(|a, b| self.path(a).cmp(self.path(b)));
        entries.dedup_by(|later, first| self.path(later) == self.path(first));
        entries.shrink_to_fit();
        self.text.shrink_to_fit();
        self.entries = entries;
        self
    }
}

impl LineIndex for DocLines {
    fn line_of(&self, path: &str) -> usize {
        let mut p = path;
        loop {
            if let Some(l) = self.lines.get(p) {
                return l;
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
        self.lines.get(path)
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

/// An open mapping or sequence. Paths are not stored per frame: the path of the node being read
/// is in [`Walk::path`], and a frame keeps the length of its own path there.
enum Frame {
    Map {
        /// The length of this mapping's path in [`Walk::path`].
        at: usize,
        /// The length of the path of the key awaiting its value, when one is.
        key: Option<usize>,
        is_key: bool,
    },
    Seq {
        at: usize,
        index: usize,
        is_key: bool,
    },
}

/// What the innermost open frame waits for.
#[derive(Clone, Copy)]
enum Await {
    /// A mapping's next key.
    Key,
    /// The value of the key whose path is this long.
    Value(usize),
    /// A sequence's item at this index.
    Item(usize),
}

/// The pass over one document: the open frames, the current path, and the paths recorded.
#[derive(Default)]
struct Walk {
    stack: Vec<Frame>,
    /// The path of the last node started, cut back to a frame's length before each child.
    path: String,
    paths: Paths,
}

impl Walk {
    /// A walk with room for the paths of a document of about `len` bytes (capped: a file read
    /// whole has many documents), so that recording them rarely regrows the buffers.
    fn for_text(len: usize) -> Self {
        let len = len.min(4096);
        Self {
            stack: Vec::with_capacity(8),
            path: String::with_capacity(64),
            paths: Paths {
                text: String::with_capacity(len * 2),
                entries: Vec::with_capacity(len / 16),
            },
        }
    }

    /// `path[..at]` joined with `key` (`key` alone at the root), as the current path.
    fn join(&mut self, at: usize, key: &str) {
        self.path.truncate(at);
        if at > 0 {
            self.path.push('.');
        }
        self.path.push_str(key);
    }

    /// `path[..at]` with `[index]`, as the current path.
    fn item(&mut self, at: usize, index: usize) {
        self.path.truncate(at);
        // invariant: writing to a String cannot fail
        let _ = write!(self.path, "[{index}]");
    }

    /// Records the current path on `line`.
    fn record(&mut self, line: usize) {
        let start = self.paths.text.len();
        self.paths.text.push_str(&self.path);
        self.paths
            .entries
            .push((start, self.paths.text.len(), line));
    }
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
    // the document being read: its first line and its walk
    let mut current: Option<(usize, Walk)> = None;
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
                current = Some((line, Walk::for_text(text.len())));
                value = Some(Builder::default());
            }
            Event::DocumentEnd => {
                if let Some((start, walk)) = current.take() {
                    let v = value.take().and_then(|b| b.finish().ok());
                    let lines = Arc::new(walk.paths.finish());
                    docs.push((DocLines { start, lines }, v));
                }
            }
            Event::Scalar(value, ..) => {
                if let Some((start, walk)) = current.as_mut() {
                    node(start, walk, line, Some(&value), None);
                }
            }
            Event::Alias(_) => {
                if let Some((start, walk)) = current.as_mut() {
                    node(start, walk, line, Some("*alias"), None);
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let is_map = matches!(event, Event::MappingStart(..));
                if let Some((start, walk)) = current.as_mut() {
                    node(start, walk, line, None, Some(is_map));
                }
            }
            Event::MappingEnd | Event::SequenceEnd => {
                if let Some((_, walk)) = current.as_mut() {
                    end(walk);
                }
            }
            Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
        }
    }
    Ok(docs)
}

/// A node starts: a scalar (`scalar` is its text) or a container (`container` tells whether a
/// mapping). Leaves the node's path in `walk.path`.
fn node(
    start: &mut usize,
    walk: &mut Walk,
    line: usize,
    scalar: Option<&str>,
    container: Option<bool>,
) {
    let top = walk.stack.last().map(|f| match *f {
        Frame::Map { at, key, .. } => (at, key.map_or(Await::Key, Await::Value)),
        Frame::Seq { at, index, .. } => (at, Await::Item(index)),
    });
    let is_key = match top {
        None => {
            *start = line;
            walk.path.clear();
            false
        }
        Some((at, Await::Key)) => match scalar {
            Some(k) => {
                walk.join(at, k);
                let len = walk.path.len();
                if let Some(Frame::Map { key, .. }) = walk.stack.last_mut() {
                    *key = Some(len);
                }
                walk.record(line);
                return;
            }
            // a complex key: indexed under `?`, its end makes the parent await a value
            None => {
                walk.join(at, "?");
                true
            }
        },
        // the value of the key just read: its path is the key's
        Some((_, Await::Value(key))) => {
            walk.path.truncate(key);
            false
        }
        Some((at, Await::Item(index))) => {
            walk.item(at, index);
            walk.record(line);
            false
        }
    };
    let at = walk.path.len();
    match container {
        Some(true) => walk.stack.push(Frame::Map {
            at,
            key: None,
            is_key,
        }),
        Some(false) => walk.stack.push(Frame::Seq {
            at,
            index: 0,
            is_key,
        }),
        None => complete(&mut walk.stack),
    }
}

/// A mapping or sequence ends: a complex key makes its mapping await the value (under `?`),
/// any other value completes its parent.
fn end(walk: &mut Walk) {
    let is_key = match walk.stack.pop() {
        Some(Frame::Map { is_key, .. } | Frame::Seq { is_key, .. }) => is_key,
        None => false,
    };
    if is_key {
        if let Some(&Frame::Map { at, .. }) = walk.stack.last() {
            walk.join(at, "?");
            let len = walk.path.len();
            if let Some(Frame::Map { key, .. }) = walk.stack.last_mut() {
                *key = Some(len);
            }
        }
    } else {
        complete(&mut walk.stack);
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
    fn first_line_of_a_path_wins_and_root_sequences_index() {
        // a duplicate key is left to yaml_serde's error; its path keeps the first line
        let docs = index("a: 1\nb: {c: 2}\na: 3\n").unwrap_or_default();
        assert_eq!(docs[0].exact("a"), Some(1));
        assert_eq!(docs[0].exact("b.c"), Some(2));
        assert_eq!(docs[0].exact("a.x"), None);
        let docs = index("- a: 1\n- [x, {y: 2}]\n").unwrap_or_default();
        assert_eq!(docs[0].exact("[0].a"), Some(1));
        assert_eq!(docs[0].exact("[1][1].y"), Some(2));
        assert_eq!(docs[0].line_of("[1][1].z"), 2);
    }

    #[test]
    fn syntax_error_has_a_line() {
        let err = index("a: 1\nb:\n\t- c\n").err();
        assert_eq!(err.map(|e| e.line), Some(3));
    }
}
