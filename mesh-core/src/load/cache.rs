//! The documents of the last load, parsed and compiled, kept for the next one: a reload parses
//! and compiles only the documents whose text changed.
//!
//! A `---` line always ends a YAML document (a document marker is forbidden inside any scalar),
//! so a file is cut into pieces at those lines before it is parsed, and each piece is keyed by
//! its file, its first line and its text. A piece seen in the last load is taken as it was: its
//! manifests, the diagnostics their parsing gave, and each manifest's compiled form with the
//! diagnostics its compilation gave (every error of an unchanged file is reported again). The
//! checks across resources, which depend on the whole set, run on every load.
//!
//! A file is read whole, as before, when a piece cannot be read alone by the one-pass parser (a
//! syntax error, a document left to `yaml_serde`, see [`super::values`]), or when it has a
//! directive (`%YAML`) or a carriage return: its errors and values stay exactly the whole
//! file's.
//!
//! The pieces a load does not find in the cache are parsed and compiled first, all together,
//! on several threads when there are enough of them ([`super::parallel`], [`LoadCache::threads`]);
//! the load then takes them in file order as if it had parsed each in turn.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::Compiled;
use super::dispatch::{self, Kind, Resolved};
use super::documents::{self, Manifest};
use crate::diag::Diagnostic;

/// Parsed and compiled documents kept from one load to the next ([`super::load_paths_cached`]).
///
/// ```
/// use mesh_core::load::{LoadCache, load_texts_cached};
///
/// let doc = |name: &str| format!("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: {name}}}\nspec:\n  host: {name}\n---\n");
/// let mut cache = LoadCache::new();
/// let files = vec![("a.yaml".to_owned(), doc("a") + &doc("b"))];
/// load_texts_cached(&files, &mut cache).map_err(|e| e.to_string())?;
/// assert_eq!(cache.stats().compiled, 2);
///
/// let files = vec![("a.yaml".to_owned(), doc("a") + &doc("c"))];
/// let loaded = load_texts_cached(&files, &mut cache).map_err(|e| e.to_string())?;
/// assert_eq!(loaded.config.destinations.len(), 2);
/// assert_eq!((cache.stats().reused, cache.stats().compiled), (1, 1));
/// # Ok::<(), String>(())
/// ```
#[derive(Default)]
pub struct LoadCache {
    pieces: HashMap<PieceKey, Arc<Piece>>,
    /// The pieces of the load before that the last load did not find (changed or deleted
    /// documents), kept until [`LoadCache::free_retired`] so that a reload can free them after
    /// its swap rather than before it.
    retired: Option<HashMap<PieceKey, Arc<Piece>>>,
    stats: CacheStats,
    /// Threads that parse the changed pieces (0: the machine's available parallelism).
    threads: usize,
    /// Counts the loads, so that a document tells whether this load compiled it.
    generation: u64,
}

impl std::fmt::Debug for LoadCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadCache")
            .field("pieces", &self.pieces.len())
            .field("stats", &self.stats)
            .finish()
    }
}

/// What the last load through a [`LoadCache`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Pieces of files (whole documents) parsed, their text not seen in the load before.
    pub parsed: usize,
    /// Manifests compiled (a changed manifest defined twice, which the load refuses, may be
    /// counted: the changed documents are compiled before the duplicates are known).
    pub compiled: usize,
    /// Manifests whose compiled form (and its diagnostics) came from the load before.
    pub reused: usize,
}

/// A piece of a file: its file, its first line (0 for a file read whole) and its text.
#[derive(Clone, PartialEq, Eq, Hash)]
struct PieceKey {
    file: String,
    line: usize,
    text: String,
}

/// The manifests of a piece and the diagnostics its parsing gave.
pub(crate) struct Piece {
    pub(crate) diags: Vec<Diagnostic>,
    pub(crate) docs: Vec<Doc>,
}

/// One manifest and, once compiled, what its compilation gave.
pub(crate) struct Doc {
    pub(crate) manifest: Manifest,
    part: std::sync::OnceLock<Arc<Part>>,
    /// The load ([`LoadCache::generation`]) that compiled `part`, 0 before.
    compiled_in: AtomicU64,
}

/// One manifest compiled alone: the resources it adds, and its diagnostics.
pub(crate) struct Part {
    pub(crate) compiled: Compiled,
    pub(crate) diags: Vec<Diagnostic>,
}

impl Doc {
    /// The compiled form of this manifest, compiled on first use; counted as reused when a
    /// load before `generation` compiled it.
    pub(crate) fn part(&self, kind: Kind, stats: &mut CacheStats, generation: u64) -> &Part {
        if self.part.get().is_some() && self.compiled_in.load(Ordering::Relaxed) != generation {
            stats.reused += 1;
        }
        self.part.get_or_init(|| {
            stats.compiled += 1;
            self.compile(kind, generation)
        })
    }

    /// Compiles this manifest ahead of the load's walk, when the walk will ask for it (a kind
    /// this mesh reads, a name): whether it did.
    fn precompile(&self, generation: u64) -> bool {
        let m = &self.manifest;
        let Resolved::Known(kind) = dispatch::resolve(&m.api_version, &m.kind) else {
            return false;
        };
        if m.name.is_empty() || self.part.get().is_some() {
            return false;
        }
        self.part.get_or_init(|| self.compile(kind, generation));
        true
    }

    fn compile(&self, kind: Kind, generation: u64) -> Arc<Part> {
        let mut compiled = Compiled::default();
        let mut diags = Vec::new();
        dispatch::compile_manifest(kind, &self.manifest, &mut compiled, &mut diags);
        self.compiled_in.store(generation, Ordering::Relaxed);
        Arc::new(Part { compiled, diags })
    }
}

impl LoadCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same cache parsing the changed documents of a load on `threads` threads (the
    /// caller's among them; 0, the default, is [`std::thread::available_parallelism`]). A load
    /// that changes fewer than a few documents parses them on the caller's thread whatever this
    /// says. The result and its diagnostics, in their order, do not depend on it.
    ///
    /// ```
    /// use mesh_core::load::{LoadCache, load_texts_cached};
    ///
    /// let doc = |name: &str| format!("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: {name}}}\nspec:\n  host: {name}\n---\n");
    /// let text: String = (0..20).map(|i| doc(&format!("d{i}"))).collect();
    /// let files = vec![("a.yaml".to_owned(), text)];
    /// let serial = load_texts_cached(&files, &mut LoadCache::new().threads(1));
    /// let parallel = load_texts_cached(&files, &mut LoadCache::new().threads(4));
    /// let hosts = |l: &mesh_core::load::Loaded| format!("{:?}", l.config.destinations);
    /// assert_eq!(serial.as_ref().map(hosts).ok(), parallel.as_ref().map(hosts).ok());
    /// # Ok::<(), String>(())
    /// ```
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }

    /// What the last load through this cache parsed, compiled and reused.
    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    /// Frees the pieces the last load replaced (see [`LoadCache::retired`]): a reload calls
    /// this after its swap. A load frees them first when this was not called.
    ///
    /// ```
    /// use mesh_core::load::{LoadCache, load_texts_cached};
    ///
    /// let doc = |host: &str| format!("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: r}}\nspec:\n  host: {host}\n");
    /// let mut cache = LoadCache::new();
    /// load_texts_cached(&[("a.yaml".to_owned(), doc("a"))], &mut cache).map_err(|e| e.to_string())?;
    /// load_texts_cached(&[("a.yaml".to_owned(), doc("b"))], &mut cache).map_err(|e| e.to_string())?;
    /// assert_eq!(cache.retired(), 1); // the document with host `a`
    /// cache.free_retired();
    /// assert_eq!(cache.retired(), 0);
    /// # Ok::<(), String>(())
    /// ```
    pub fn free_retired(&mut self) {
        drop(self.retired.take());
    }

    /// How many pieces (documents) the last load replaced and [`LoadCache::free_retired`] has
    /// not freed yet.
    pub fn retired(&self) -> usize {
        self.retired.as_ref().map_or(0, HashMap::len)
    }

    /// Starts a load: the pieces of this load replace the last load's as files are read.
    pub(crate) fn begin(&mut self) -> Loading<'_> {
        self.free_retired();
        self.stats = CacheStats::default();
        self.generation += 1;
        Loading {
            old: std::mem::take(&mut self.pieces),
            prepared: HashMap::new(),
            cache: self,
        }
    }
}

/// A load in progress: pieces found in the last load move over, the others are parsed.
pub(crate) struct Loading<'a> {
    cache: &'a mut LoadCache,
    old: HashMap<PieceKey, Arc<Piece>>,
    /// The pieces [`Loading::prepare`] parsed (`None`: the piece cannot be read alone).
    prepared: HashMap<PieceKey, Option<Arc<Piece>>>,
}

impl Drop for Loading<'_> {
    /// The pieces not found again are kept for [`LoadCache::free_retired`].
    fn drop(&mut self) {
        let old = std::mem::take(&mut self.old);
        if !old.is_empty() {
            self.cache.retired = Some(old);
        }
    }
}

impl Loading<'_> {
    /// The counters of this load.
    pub(crate) fn stats(&mut self) -> &mut CacheStats {
        &mut self.cache.stats
    }

    /// This load's number, for [`Doc::part`].
    pub(crate) fn generation(&self) -> u64 {
        self.cache.generation
    }

    /// Parses and compiles, before the walk over `files`, the pieces of them that neither this
    /// load nor the last one has: on several threads when there are enough (see
    /// [`super::parallel`]). A file read whole (no cut, or a piece the one-pass parser does not
    /// read alone) is left to [`Loading::file`].
    pub(crate) fn prepare(&mut self, files: &[(String, String)]) {
        let mut todo: Vec<PieceKey> = Vec::new();
        for (file, text) in files {
            for (line, piece) in split(text).unwrap_or_default() {
                let key = PieceKey {
                    file: file.clone(),
                    line,
                    text: piece.to_owned(),
                };
                if !self.cache.pieces.contains_key(&key) && !self.old.contains_key(&key) {
                    todo.push(key);
                }
            }
        }
        let generation = self.cache.generation;
        let threads = super::parallel::threads(self.cache.threads);
        let parsed = super::parallel::map(&todo, threads, |key| {
            let (manifests, diags) = documents::parse_piece(&key.file, &key.text, key.line - 1)?;
            let piece = Piece::new(manifests, diags);
            let compiled = piece
                .docs
                .iter()
                .filter(|d| d.precompile(generation))
                .count();
            Some((Arc::new(piece), compiled))
        });
        for (key, piece) in todo.into_iter().zip(parsed) {
            let piece = piece.map(|(piece, compiled)| {
                self.cache.stats.compiled += compiled;
                piece
            });
            self.prepared.insert(key, piece);
        }
    }

    /// The pieces of `file`, in order, parsed or kept.
    pub(crate) fn file(&mut self, file: &str, text: &str) -> Vec<Arc<Piece>> {
        if let Some(cuts) = split(text) {
            let mut out = Vec::with_capacity(cuts.len());
            for (line, piece) in cuts {
                let key = PieceKey {
                    file: file.to_owned(),
                    line,
                    text: piece.to_owned(),
                };
                match self.take(key, |key| {
                    let (manifests, diags) = documents::parse_piece(file, &key.text, key.line - 1)?;
                    Some(Piece::new(manifests, diags))
                }) {
                    Some(p) => out.push(p),
                    None => {
                        out.clear();
                        break;
                    }
                }
            }
            if !out.is_empty() {
                return out;
            }
        }
        // read whole, exactly as before the cache
        let key = PieceKey {
            file: file.to_owned(),
            line: 0,
            text: text.to_owned(),
        };
        self.take(key, |key| {
            let mut diags = Vec::new();
            let manifests = documents::parse(file, &key.text, &mut diags);
            Some(Piece::new(manifests, diags))
        })
        .into_iter()
        .collect()
    }

    /// The piece at `key`, from the last load or parsed by `parse`, kept for the next load.
    fn take(
        &mut self,
        key: PieceKey,
        parse: impl FnOnce(&PieceKey) -> Option<Piece>,
    ) -> Option<Arc<Piece>> {
        if let Some(p) = self.cache.pieces.get(&key) {
            // the same text twice in one file at one line cannot happen; twice in a load can
            // (a file named twice): the same piece serves both
            return Some(Arc::clone(p));
        }
        let piece = match (self.old.remove(&key), self.prepared.remove(&key)) {
            (Some(p), _) => p,
            (None, Some(prepared)) => {
                let p = prepared?;
                self.cache.stats.parsed += 1;
                p
            }
            (None, None) => {
                let p = Arc::new(parse(&key)?);
                self.cache.stats.parsed += 1;
                p
            }
        };
        self.cache.pieces.insert(key, Arc::clone(&piece));
        Some(piece)
    }
}

impl Piece {
    fn new(manifests: Vec<Manifest>, diags: Vec<Diagnostic>) -> Self {
        Self {
            diags,
            docs: manifests
                .into_iter()
                .map(|manifest| Doc {
                    manifest,
                    part: std::sync::OnceLock::new(),
                    compiled_in: AtomicU64::new(0),
                })
                .collect(),
        }
    }
}

/// `text` cut before each `---` line: the pieces with their first line (1-based). `None` when
/// the file must be read whole: it has a directive (whose document a cut would separate from
/// it) or a carriage return (a line break the cut does not count).
fn split(text: &str) -> Option<Vec<(usize, &str)>> {
    if text.contains('\r') {
        return None;
    }
    let mut out = Vec::new();
    let (mut start, mut start_line) = (0, 1);
    let mut at = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if line.starts_with('%') {
            return None;
        }
        let marker = line
            .strip_prefix("---")
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\n']));
        if marker && at > start {
            out.push((start_line, &text[start..at]));
            (start, start_line) = (at, i + 1);
        } else if marker {
            start_line = i + 1;
        }
        at += line.len();
    }
    if at > start {
        out.push((start_line, &text[start..]));
    }
    Some(out)
}

#[cfg(test)]
mod tests;
