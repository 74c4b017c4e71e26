//! Hot reload: the config in force, swapped atomically, and a folder watcher that reloads it.
//!
//! A [`ConfigStore`] holds the current [`MeshConfig`] in an [`ArcSwap`]. The request path calls
//! [`ConfigStore::snapshot`] once per request and keeps that `Arc` until the request ends, so a
//! request in flight finishes on the config it started with even when a reload swaps in a new
//! one meanwhile; the old config is freed when its last request drops it. Reading is lock-free
//! and never waits for a reload.
//!
//! What the layers derive from a snapshot (a namespace's view, the client's route table) is
//! prepared before the swap, on the thread that swaps ([`ConfigStore::on_prepare`]): the
//! watcher's reload runs on Tokio's blocking pool, so the first requests on a new config find
//! it ready instead of compiling it on a worker thread.
//!
//! A replaced snapshot is kept by the store until the next swap frees it on the swapping
//! thread, and the layers' derived forms likewise ([`ConfigStore::on_prepare`]): the request
//! that last holds a replaced config is rarely the one that frees it, so freeing a big config
//! does not stall a worker thread.
//!
//! [`ConfigStore::watch_paths`] watches folders (with the `notify` crate), waits for a quiet
//! period after the last change (200 ms by default, as editors write files in several steps),
//! re-reads them with [`crate::load::load_paths`], and swaps the new config in when it is
//! valid. A config with errors is refused: every error is logged and the last good config
//! stays. The outcome of the last reload is kept for an admin `/config_dump`
//! ([`ConfigStore::last_reload`]).
//!
//! ```
//! use mesh_core::policy::MeshConfig;
//! use mesh_core::watch::ConfigStore;
//!
//! let store = ConfigStore::new(MeshConfig::default());
//! let in_flight = store.snapshot(); // a request holds this until it ends
//! let generation = store.store(MeshConfig::default());
//! assert_eq!(generation, store.generation());
//! assert!(in_flight.virtual_services.is_empty()); // still the config it started with
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::{ArcSwap, ArcSwapOption, Guard};
use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::diag::{ConfigErrors, Diagnostic};
use crate::policy::MeshConfig;

mod source;

pub use self::source::{ConfigSource, SeenAt};

/// Work done on every new snapshot before it is swapped in ([`ConfigStore::on_prepare`]).
pub type PrepareHook = Arc<PrepareFn>;

/// The function behind a [`PrepareHook`].
pub type PrepareFn = dyn Fn(&Arc<MeshConfig>) + Send + Sync;

thread_local! {
    /// What the prepare hooks of the swap running on this thread retire, freed after it.
    static RETIRED: std::cell::RefCell<Option<Vec<Box<dyn Send>>>> =
        const { std::cell::RefCell::new(None) };
}

/// Frees `value` once the swap whose prepare hook calls this is done, on the same thread (now,
/// when called outside a hook): a hook that replaces what it derived from an older snapshot
/// hands that here, so that freeing it does not delay the swap.
///
/// ```
/// use std::sync::Arc;
/// mesh_core::watch::free_after_swap(Arc::new(42)); // outside a swap: freed at once
/// ```
pub fn free_after_swap<T: Send + 'static>(value: T) {
    let value: Box<dyn Send> = Box::new(value);
    let left = RETIRED.with(|r| match r.borrow_mut().as_mut() {
        Some(list) => {
            list.push(value);
            None
        }
        None => Some(value),
    });
    drop(left);
}

/// Registered hooks, held weakly: a hook lives as long as its owner keeps it.
#[derive(Default)]
pub(crate) struct Hooks(Mutex<Vec<Weak<PrepareFn>>>);

impl Hooks {
    pub(crate) fn add(&self, hook: &PrepareHook) {
        let mut hooks = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        hooks.retain(|h| h.strong_count() > 0);
        hooks.push(Arc::downgrade(hook));
    }

    /// Runs every live hook on `config`, outside the lock.
    pub(crate) fn run(&self, config: &Arc<MeshConfig>) {
        let live: Vec<PrepareHook> = {
            let mut hooks = self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            hooks.retain(|h| h.strong_count() > 0);
            hooks.iter().filter_map(Weak::upgrade).collect()
        };
        for hook in live {
            hook(config);
        }
    }
}

/// The config in force, shared by every layer; cloning the store is cheap (one `Arc`).
#[derive(Clone)]
pub struct ConfigStore {
    inner: Arc<Inner>,
}

struct Inner {
    config: ArcSwap<MeshConfig>,
    generation: AtomicU64,
    changes: watch::Sender<u64>,
    last_reload: ArcSwapOption<ReloadStatus>,
    prepare: Hooks,
    /// The documents of the last reload, parsed and compiled ([`crate::load::LoadCache`]).
    cache: Mutex<crate::load::LoadCache>,
    /// The config the last swap replaced, kept until the next swap drops it on the swapping
    /// thread: the request that last holds a replaced snapshot is then not the one that frees
    /// it (a big config freed on a worker thread stalls the requests behind it).
    retired: Mutex<Option<Arc<MeshConfig>>>,
}

impl fmt::Debug for ConfigStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigStore")
            .field("generation", &self.generation())
            .finish_non_exhaustive()
    }
}

/// The outcome of the last reload, for an admin `/config_dump`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReloadStatus {
    /// When the reload finished.
    pub at: SystemTime,
    /// The config generation in force after it (unchanged when the reload was refused).
    pub generation: u64,
    /// Every error, when the new config was refused; empty when it was applied.
    pub errors: Vec<Diagnostic>,
    /// Warnings of an applied config.
    pub warnings: Vec<Diagnostic>,
    /// How long the reload took, from reading the files to the swap (the documents that
    /// changed parsed and compiled, the prepare hooks run): the watcher's debounce not
    /// included, nor freeing what the new config replaced.
    pub took: Duration,
}

impl ReloadStatus {
    /// Whether the reload was applied.
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
}

impl ConfigStore {
    /// A store holding `config` as generation 1.
    pub fn new(config: MeshConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                config: ArcSwap::from_pointee(config),
                generation: AtomicU64::new(1),
                changes: watch::Sender::new(1),
                last_reload: ArcSwapOption::empty(),
                prepare: Hooks::default(),
                cache: Mutex::new(crate::load::LoadCache::new()),
                retired: Mutex::new(None),
            }),
        }
    }

    /// A store holding the config read from `paths` (see [`crate::load::load_paths`]).
    pub fn from_paths<P: AsRef<Path>>(paths: &[P]) -> Result<Self, ConfigErrors> {
        let started = Instant::now();
        let mut cache = crate::load::LoadCache::new();
        let loaded = crate::load::load_paths_cached(paths, &mut cache)?;
        let store = Self::new(loaded.config);
        *store.cache() = cache;
        store.record(Vec::new(), loaded.warnings, started.elapsed());
        Ok(store)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, crate::load::LoadCache> {
        self.inner
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What the last reload from paths parsed, compiled and reused (see
    /// [`crate::load::LoadCache`]): a reload parses and compiles only the documents that changed.
    pub fn cache_stats(&self) -> crate::load::CacheStats {
        self.cache().stats()
    }

    /// The current config, to keep for the whole of a request (or any other unit of work that
    /// must see one consistent config).
    pub fn snapshot(&self) -> Arc<MeshConfig> {
        self.inner.config.load_full()
    }

    /// The current config for a short look, cheaper than [`snapshot`](Self::snapshot): do not
    /// hold the guard across an `.await` or for long.
    pub fn load(&self) -> Guard<Arc<MeshConfig>> {
        self.inner.config.load()
    }

    /// Swaps `config` in and notifies subscribers; returns the new generation. The
    /// [`on_prepare`](Self::on_prepare) hooks run first, on this thread: from async code, call
    /// it where blocking is fine (`spawn_blocking`) when the hooks are heavy.
    pub fn store(&self, config: MeshConfig) -> u64 {
        let generation = self.swap(config);
        self.inner.changes.send_replace(generation);
        generation
    }

    /// Runs the prepare hooks on `config`, then swaps it in without notifying. The config it
    /// replaces is kept until the next swap, which frees it here (when no request holds it).
    fn swap(&self, config: MeshConfig) -> u64 {
        let config = Arc::new(config);
        let outer = RETIRED.with(|r| r.borrow_mut().replace(Vec::new()));
        self.inner.prepare.run(&config);
        let replaced = self.inner.config.swap(config);
        let generation = self.inner.generation.fetch_add(1, Ordering::AcqRel) + 1;
        // what the hooks retired, and the config of two swaps ago, freed after the swap
        let retired = RETIRED.with(|r| std::mem::replace(&mut *r.borrow_mut(), outer));
        let older = self
            .inner
            .retired
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .replace(replaced);
        drop(retired);
        drop(older);
        generation
    }

    /// Runs `hook` on every new config before it is swapped in, on the thread that swaps it
    /// (the watcher's reloads run on Tokio's blocking pool), so that what a layer derives from
    /// a snapshot is ready when the first request sees it. Requests keep reading the config in
    /// force meanwhile. The store holds the hook weakly: it runs while its owner keeps the
    /// `Arc`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use mesh_core::policy::MeshConfig;
    /// use mesh_core::watch::{ConfigStore, PrepareHook};
    ///
    /// let store = ConfigStore::new(MeshConfig::default());
    /// let seen = Arc::new(AtomicUsize::new(0));
    /// let counter = seen.clone();
    /// let hook: PrepareHook = Arc::new(move |_config: &Arc<MeshConfig>| {
    ///     counter.fetch_add(1, Ordering::Relaxed);
    /// });
    /// store.on_prepare(&hook);
    /// store.store(MeshConfig::default());
    /// drop(hook);
    /// store.store(MeshConfig::default());
    /// assert_eq!(seen.load(Ordering::Relaxed), 1);
    /// ```
    pub fn on_prepare(&self, hook: &PrepareHook) {
        self.inner.prepare.add(hook);
    }

    /// The generation of the config in force: 1 at first, one more on each swap.
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    /// A receiver of the generation, marked changed on every swap.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    /// The outcome of the last reload, if any happened.
    pub fn last_reload(&self) -> Option<Arc<ReloadStatus>> {
        self.inner.last_reload.load_full()
    }

    /// Re-reads `paths`; swaps the new config in when it is valid, otherwise logs every error
    /// and keeps the config in force. Blocking file IO: call it from a blocking context. The
    /// documents whose text did not change since the last reload are neither parsed nor
    /// compiled again ([`crate::load::LoadCache`]); every error is reported all the same.
    pub fn reload_from<P: AsRef<Path>>(&self, paths: &[P]) -> Result<u64, ConfigErrors> {
        // one reload at a time: the cache is held for the whole of it
        let started = Instant::now();
        let mut cache = self.cache();
        let loaded = crate::load::load_paths_cached(paths, &mut cache);
        let outcome = self.apply(loaded, started);
        // the documents this reload replaced, freed once the new config is in force
        cache.free_retired();
        outcome
    }

    /// Swaps a loaded config in, or logs why it was refused; records the outcome.
    fn apply(
        &self,
        loaded: Result<crate::load::Loaded, ConfigErrors>,
        started: Instant,
    ) -> Result<u64, ConfigErrors> {
        match loaded {
            Ok(loaded) => {
                for w in &loaded.warnings {
                    tracing::info!(file = %w.file, line = w.line, resource = %w.resource, message = %w.message, "config warning");
                }
                // The status is recorded before subscribers hear of the new generation.
                let generation = self.swap(loaded.config);
                let took = started.elapsed();
                self.record(Vec::new(), loaded.warnings, took);
                self.inner.changes.send_replace(generation);
                tracing::info!(
                    generation,
                    took_ms = took.as_secs_f64() * 1e3,
                    "config reloaded"
                );
                Ok(generation)
            }
            Err(errors) => {
                for e in &errors.errors {
                    tracing::warn!(file = %e.file, line = e.line, resource = %e.resource, message = %e.message, "config error");
                }
                tracing::warn!(
                    errors = errors.errors.len(),
                    generation = self.generation(),
                    "config refused; keeping the last good config"
                );
                self.record(errors.errors.clone(), Vec::new(), started.elapsed());
                Err(errors)
            }
        }
    }

    fn record(&self, errors: Vec<Diagnostic>, warnings: Vec<Diagnostic>, took: Duration) {
        let status = ReloadStatus {
            took,
            at: SystemTime::now(),
            generation: self.generation(),
            errors,
            warnings,
        };
        self.inner.last_reload.store(Some(Arc::new(status)));
    }

    /// Watches `paths` (folders recursively, or files) and reloads on change, with the default
    /// [`WatchOptions`]. Needs a Tokio runtime. Dropping the handle stops watching.
    pub fn watch_paths<P: AsRef<Path>>(&self, paths: &[P]) -> Result<WatchHandle, WatchError> {
        self.watch_paths_with(paths, WatchOptions::default())
    }

    /// [`watch_paths`](Self::watch_paths) with options.
    pub fn watch_paths_with<P: AsRef<Path>>(
        &self,
        paths: &[P],
        options: WatchOptions,
    ) -> Result<WatchHandle, WatchError> {
        let paths: Vec<PathBuf> = paths.iter().map(|p| p.as_ref().to_path_buf()).collect();
        // Signals only: a full channel already holds a pending "something changed".
        let (tx, rx) = mpsc::channel::<()>(16);
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
                Ok(event) if is_relevant(&event.kind) => {
                    let _ = tx.try_send(());
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "config watcher error"),
            })
            .map_err(|source| WatchError { path: None, source })?;
        for path in &paths {
            // A file is watched through its folder: editors replace files by renaming.
            let (target, mode) = if path.is_dir() {
                (path.as_path(), RecursiveMode::Recursive)
            } else {
                (
                    path.parent()
                        .filter(|p| !p.as_os_str().is_empty())
                        .unwrap_or(Path::new(".")),
                    RecursiveMode::NonRecursive,
                )
            };
            watcher.watch(target, mode).map_err(|source| WatchError {
                path: Some(path.clone()),
                source,
            })?;
        }
        let task = tokio::spawn(reload_loop(self.clone(), paths, rx, options.debounce));
        Ok(WatchHandle {
            _watcher: watcher,
            task,
        })
    }
}

/// Debounces change signals, then reloads; ends when the watcher is dropped.
async fn reload_loop(
    store: ConfigStore,
    paths: Vec<PathBuf>,
    mut rx: mpsc::Receiver<()>,
    debounce: Duration,
) {
    while rx.recv().await.is_some() {
        // Wait until no change arrived for `debounce`.
        loop {
            match tokio::time::timeout(debounce, rx.recv()).await {
                Ok(Some(())) => continue,
                Ok(None) => return,
                Err(_) => break,
            }
        }
        let store = store.clone();
        let paths = paths.clone();
        match tokio::task::spawn_blocking(move || store.reload_from(&paths)).await {
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "config reload task failed"),
        }
    }
}

fn is_relevant(kind: &EventKind) -> bool {
    match kind {
        // Reading files (our own reloads included) is not a change.
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// Options of [`ConfigStore::watch_paths_with`].
#[derive(Clone, Copy, Debug)]
pub struct WatchOptions {
    debounce: Duration,
}

impl Default for WatchOptions {
    /// A 200 ms quiet period.
    fn default() -> Self {
        Self {
            debounce: Duration::from_millis(200),
        }
    }
}

impl WatchOptions {
    /// The quiet period after the last change before reloading (at most 1 minute).
    pub fn debounce(mut self, quiet: Duration) -> Self {
        self.debounce = quiet.min(Duration::from_secs(60));
        self
    }
}

/// Watching stops when this is dropped.
#[derive(Debug)]
pub struct WatchHandle {
    _watcher: notify::RecommendedWatcher,
    task: JoinHandle<()>,
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A path could not be watched.
#[derive(Debug, thiserror::Error)]
#[error("watch {}: {source}", path.as_ref().map_or_else(|| "config".to_owned(), |p| p.display().to_string()))]
pub struct WatchError {
    path: Option<PathBuf>,
    #[source]
    source: notify::Error,
}

impl WatchError {
    /// The path that could not be watched, when the error is about one.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
}

#[cfg(test)]
mod tests;
