//! Reading a folder (or files) of Istio manifests into a checked [`MeshConfig`].
//!
//! - A folder is read recursively, every `.yaml`/`.yml` file in the order of its path relative
//!   to the folder (byte order, so `01-gateway.yaml` before `02-routes.yaml` and `a/x.yaml`
//!   before `b.yaml`); names starting with `.` are skipped (a Kubernetes ConfigMap mount's
//!   `..data` folder holds the same files as its visible links). A file given by name is read
//!   whatever its extension.
//! - A file holds one or more `---`-separated manifests; empty documents are fine.
//! - Kinds this mesh does not read (a Kubernetes Deployment, say) are skipped with a warning;
//!   a known group with an unknown version is an error listing the versions that exist.
//! - Every problem in every file is reported together, as `file:line: Kind/name: message`, and
//!   a config with any error is refused as a whole.
//!
//! ```
//! let text = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: r\nspec:\n  hosts: [service2]\n  http:\n  - route:\n    - destination:\n        host: service2\n";
//! let loaded = mesh_core::load::load_str("inline.yaml", text).map_err(|e| e.to_string())?;
//! assert_eq!(loaded.config.virtual_services.len(), 1);
//!
//! let bad = text.replace("host: service2", "hots: service2");
//! let err = mesh_core::load::load_str("inline.yaml", &bad).err().map(|e| e.to_string());
//! assert_eq!(
//!     err.as_deref(),
//!     Some("inline.yaml:10: VirtualService/r: spec.http[0].route[0].destination: unknown field `hots`, did you mean `host`?")
//! );
//! # Ok::<(), String>(())
//! ```

mod cache;
mod checks;
pub(crate) mod dispatch;
mod documents;
mod hosts;
mod lines;
mod objects;
mod parallel;
mod values;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use cache::{CacheStats, LoadCache};
pub use checks::References;
pub use hosts::{CLUSTER_DOMAIN, canonical_host, host_matches};
pub use objects::{
    Object, ObjectsCache, ObjectsLoaded, RefusedObject, load_objects, load_objects_with,
};

use crate::compile::{Cx, LineIndex};
use crate::diag::{ConfigErrors, Diagnostic, Severity};
use crate::policy::{DestinationPolicy, GatewayPolicy, MeshConfig, VirtualService};
use crate::spec::VirtualServiceSpec;
use dispatch::Resolved;
use lines::DocLines;

/// A config that loaded: the checked model and the warnings found on the way (skipped kinds...).
#[derive(Clone, Debug, Default)]
pub struct Loaded {
    /// The checked configuration.
    pub config: MeshConfig,
    /// Warnings: the config is usable despite them.
    pub warnings: Vec<Diagnostic>,
}

/// How deep a folder is walked (guards against symlink loops).
const MAX_DEPTH: usize = 16;

/// Loads every `.yaml`/`.yml` file under each path (a folder, read recursively in path order, or
/// a file).
pub fn load_paths<P: AsRef<Path>>(paths: &[P]) -> Result<Loaded, ConfigErrors> {
    let (files, diags) = read_paths(paths);
    load_texts(&files, diags)
}

/// The files under `paths` in load order with their text, and the problems reading them.
fn read_paths<P: AsRef<Path>>(paths: &[P]) -> (Vec<(String, String)>, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let mut files: Vec<(String, String)> = Vec::new();
    for p in paths {
        let p = p.as_ref();
        let mut found = Vec::new();
        if p.is_dir() {
            walk(p, 0, &mut found, &mut diags);
            found.sort();
        } else {
            found.push(p.to_path_buf());
        }
        for f in found {
            let name = f.display().to_string();
            match std::fs::read(&f) {
                Ok(bytes) => match String::from_utf8(bytes) {
                    Ok(text) => files.push((name, text)),
                    Err(_) => diags.push(file_error(&name, "file is not valid UTF-8")),
                },
                Err(e) => diags.push(file_error(&name, &format!("cannot read file: {e}"))),
            }
        }
    }
    (files, diags)
}

/// Loads manifests from a string; `file` names it in diagnostics.
pub fn load_str(file: &str, text: &str) -> Result<Loaded, ConfigErrors> {
    load_texts(&[(file.to_owned(), text.to_owned())], Vec::new())
}

fn file_error(file: &str, message: &str) -> Diagnostic {
    Diagnostic {
        severity: Severity::Error,
        file: file.to_owned(),
        line: 1,
        resource: String::new(),
        message: message.to_owned(),
    }
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>, diags: &mut Vec<Diagnostic>) {
    if depth > MAX_DEPTH {
        diags.push(file_error(
            &dir.display().to_string(),
            "folder nesting too deep (symlink loop?)",
        ));
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            diags.push(file_error(
                &dir.display().to_string(),
                &format!("cannot read folder: {e}"),
            ));
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            walk(&path, depth + 1, out, diags);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

/// Compiled resources waiting for the cross-resource checks, with their line indexes.
#[derive(Default)]
pub(crate) struct Compiled {
    pub(crate) config: MeshConfig,
    pub(crate) gateways: Vec<(GatewayPolicy, DocLines)>,
    pub(crate) virtual_services: Vec<(Arc<VirtualService>, Arc<VirtualServiceSpec>, DocLines)>,
    pub(crate) destination_rules: Vec<(Arc<DestinationPolicy>, DocLines)>,
    pub(crate) service_entries: Vec<crate::policy::ServiceEntryPolicy>,
    /// Gateways and DestinationRules refused for their own errors: the resources that refer to
    /// them are told so, rather than that they do not exist.
    pub(crate) refused: Vec<RefusedRef>,
}

impl Compiled {
    /// Adds `part`, what manifest `m` of `kind` compiled to alone, as compiling it here would.
    fn absorb(&mut self, kind: dispatch::Kind, m: &documents::Manifest, part: &Compiled) {
        self.gateways.extend(part.gateways.iter().cloned());
        self.virtual_services
            .extend(part.virtual_services.iter().cloned());
        self.destination_rules
            .extend(part.destination_rules.iter().cloned());
        self.service_entries
            .extend(part.service_entries.iter().cloned());
        self.refused.extend(part.refused.iter().cloned());
        let (to, from) = (&mut self.config, &part.config);
        to.exports
            .extend(from.exports.iter().map(|(k, v)| (k.clone(), v.clone())));
        to.authentication
            .extend(from.authentication.iter().cloned());
        to.authorization.extend(from.authorization.iter().cloned());
        to.peer_authentication
            .extend(from.peer_authentication.iter().cloned());
        to.rate_limits.extend(from.rate_limits.iter().cloned());
        // only Istio's mesh ConfigMap sets the mesh settings (another one is skipped)
        if kind == dispatch::Kind::ConfigMap
            && (m.namespace.as_str(), m.name.as_str())
                == crate::compile::mesh_config::MESH_CONFIG_MAP
        {
            to.mesh = from.mesh.clone();
        }
    }
}

/// A Gateway or DestinationRule refused for its own errors.
#[derive(Clone, Debug)]
pub(crate) struct RefusedRef {
    /// `Gateway` or `DestinationRule`.
    pub(crate) kind: &'static str,
    pub(crate) namespace: String,
    pub(crate) name: String,
    /// A DestinationRule's `spec.host`, as written.
    pub(crate) host: Option<String>,
    /// Where it is: `file:line`, or `namespace/name` for an object.
    pub(crate) at: String,
}

impl RefusedRef {
    /// `refers to Gateway `default/gw`, which is refused for its own errors (gw.yaml:1)`.
    pub(crate) fn message(&self) -> String {
        format!(
            "refers to {} `{}/{}`, which is refused for its own errors ({})",
            self.kind, self.namespace, self.name, self.at
        )
    }
}

/// [`load_str`] for several files at once, `(file name, text)` in the order given, through
/// `cache`: the documents whose text the last load through `cache` had are neither parsed nor
/// compiled again (see [`LoadCache`]); the result, errors and warnings are the same as
/// without it.
pub fn load_texts_cached(
    files: &[(String, String)],
    cache: &mut LoadCache,
) -> Result<Loaded, ConfigErrors> {
    load_texts_with(files, Vec::new(), cache)
}

/// [`load_paths`] through `cache` (see [`load_texts_cached`]): what a reload uses.
pub fn load_paths_cached<P: AsRef<Path>>(
    paths: &[P],
    cache: &mut LoadCache,
) -> Result<Loaded, ConfigErrors> {
    let (files, diags) = read_paths(paths);
    load_texts_with(&files, diags, cache)
}

fn load_texts(files: &[(String, String)], diags: Vec<Diagnostic>) -> Result<Loaded, ConfigErrors> {
    load_texts_with(files, diags, &mut LoadCache::new())
}

fn load_texts_with(
    files: &[(String, String)],
    mut diags: Vec<Diagnostic>,
    cache: &mut LoadCache,
) -> Result<Loaded, ConfigErrors> {
    let mut compiled = Compiled::default();
    let mut loading = cache.begin();
    // the changed documents parsed and compiled first, on several threads when many changed
    loading.prepare(files);
    // (kind, namespace, name) → where first defined
    let mut seen: BTreeMap<(String, String, String), String> = BTreeMap::new();
    for (file, text) in files {
        let pieces = loading.file(file, text);
        // the file's parse diagnostics first, as when it was parsed whole
        for piece in &pieces {
            diags.extend(piece.diags.iter().cloned());
        }
        for doc in pieces.iter().flat_map(|p| p.docs.iter()) {
            let m = &doc.manifest;
            let kind = match dispatch::resolve(&m.api_version, &m.kind) {
                Resolved::Known(k) => k,
                Resolved::Skip(message) => {
                    diags.push(Diagnostic {
                        severity: Severity::Warning,
                        file: file.clone(),
                        line: m.lines.start.max(1),
                        resource: m.resource(),
                        message,
                    });
                    continue;
                }
                Resolved::BadVersion(message) => {
                    diags.push(Diagnostic {
                        severity: Severity::Error,
                        file: file.clone(),
                        line: m.lines.line_of("apiVersion"),
                        resource: m.resource(),
                        message,
                    });
                    continue;
                }
            };
            if m.name.is_empty() {
                let mut cx = Cx::new(m.origin(), &m.lines, &mut diags);
                cx.error("metadata.name", "is required");
                continue;
            }
            let key = (m.kind.clone(), m.namespace.clone(), m.name.clone());
            if let Some(first) = seen.get(&key) {
                let mut cx = Cx::new(m.origin(), &m.lines, &mut diags);
                cx.error(
                    "metadata.name",
                    format!(
                        "duplicate {} `{}/{}` (first defined at {first})",
                        m.kind, m.namespace, m.name
                    ),
                );
                continue;
            }
            seen.insert(key, format!("{file}:{}", m.lines.start));
            let generation = loading.generation();
            let part = doc.part(kind, loading.stats(), generation);
            compiled.absorb(kind, m, &part.compiled);
            diags.extend(part.diags.iter().cloned());
        }
    }
    drop(loading);
    checks::run(&mut compiled, &mut diags, References::Strict);

    // errors in file order (the order files were read), then line order
    let rank: BTreeMap<&str, usize> = files
        .iter()
        .enumerate()
        .map(|(i, (f, _))| (f.as_str(), i))
        .collect();
    diags.sort_by_key(|d| {
        (
            rank.get(d.file.as_str()).copied().unwrap_or(usize::MAX),
            d.line,
        )
    });
    let (errors, warnings): (Vec<_>, Vec<_>) = diags
        .into_iter()
        .partition(|d| d.severity == Severity::Error);
    for w in &warnings {
        tracing::warn!(file = %w.file, line = w.line, resource = %w.resource, message = %w.message, "config warning");
    }
    if !errors.is_empty() {
        return Err(ConfigErrors { errors });
    }
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
    config.peer_authentication.sort_by_key(|p| key(&p.origin));
    tracing::debug!(
        files = files.len(),
        gateways = config.gateways.len(),
        virtual_services = config.virtual_services.len(),
        destination_rules = config.destinations.len(),
        service_entries = config.service_entries.len(),
        warnings = warnings.len(),
        "config loaded"
    );
    Ok(Loaded { config, warnings })
}
