//! [`ConfigSource`]: where a layer reads the config in force, on either side of the mesh.
//!
//! The outbound router, the clusters and the inbound gate each look at it once per request, so
//! every source is lock-free (an `ArcSwap` load or a plain `Arc`).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use arc_swap::{ArcSwap, ArcSwapOption};

use super::{ConfigStore, Hooks, PrepareHook};
use crate::policy::MeshConfig;

/// Where the config in force is read from: a [`ConfigStore`] (hot reload), an `ArcSwap` cell the
/// caller swaps, a fixed config, or any function returning the current snapshot. Cheap to clone.
///
/// ```
/// use std::sync::Arc;
/// use mesh_core::policy::MeshConfig;
/// use mesh_core::watch::{ConfigSource, ConfigStore};
///
/// let store = ConfigStore::new(MeshConfig::default());
/// let from_store = ConfigSource::from(store.clone());
/// let from_fn = ConfigSource::from_fn(move || store.snapshot());
/// assert!(Arc::ptr_eq(&from_store.snapshot(), &from_fn.snapshot()));
/// ```
#[derive(Clone)]
pub struct ConfigSource(Arc<dyn Source>);

/// What a [`ConfigSource`] reads from.
trait Source: Send + Sync {
    /// The current snapshot.
    fn snapshot(&self) -> Arc<MeshConfig>;

    /// Whether the config in force is the one at address `seen` (a snapshot still alive, so that
    /// no other config can have its address), without taking a snapshot where the source can.
    fn is_at(&self, seen: usize) -> bool {
        Arc::as_ptr(&self.snapshot()) as usize == seen
    }

    /// Registers `hook` to run on each new snapshot before it is in force; false where the
    /// source cannot tell (a fixed config, a cell or a function).
    fn on_prepare(&self, _hook: &PrepareHook) -> bool {
        false
    }

    /// A number that changes whenever the config in force may have (a store's generation),
    /// where the source keeps one; `None` for a cell or a function, which cannot tell.
    fn generation(&self) -> Option<u64> {
        None
    }
}

struct FnSource<F>(F);

impl<F: Fn() -> Arc<MeshConfig> + Send + Sync> Source for FnSource<F> {
    fn snapshot(&self) -> Arc<MeshConfig> {
        (self.0)()
    }
}

impl Source for Arc<MeshConfig> {
    fn snapshot(&self) -> Arc<MeshConfig> {
        self.clone()
    }

    fn is_at(&self, seen: usize) -> bool {
        Arc::as_ptr(self) as usize == seen
    }

    fn generation(&self) -> Option<u64> {
        // One config, forever.
        Some(FIRST_GENERATION)
    }
}

impl Source for Arc<ArcSwap<MeshConfig>> {
    fn snapshot(&self) -> Arc<MeshConfig> {
        self.load_full()
    }

    fn is_at(&self, seen: usize) -> bool {
        Arc::as_ptr(&*self.load()) as usize == seen
    }
}

impl Source for ConfigStore {
    fn snapshot(&self) -> Arc<MeshConfig> {
        ConfigStore::snapshot(self)
    }

    fn is_at(&self, seen: usize) -> bool {
        Arc::as_ptr(&*self.load()) as usize == seen
    }

    fn on_prepare(&self, hook: &PrepareHook) -> bool {
        ConfigStore::on_prepare(self, hook);
        true
    }

    fn generation(&self) -> Option<u64> {
        Some(ConfigStore::generation(self))
    }
}

/// A store's snapshots as a workload in one namespace sees them ([`MeshConfig::visible_from`]),
/// computed once per snapshot, before the store swaps it in.
struct Scoped {
    store: ConfigStore,
    namespace: String,
    /// (the store's snapshot, the view of it)
    cache: ArcSwapOption<(Arc<MeshConfig>, Arc<MeshConfig>)>,
    /// The same for the snapshot the store is about to swap in, prepared on the swapping thread.
    next: ArcSwapOption<(Arc<MeshConfig>, Arc<MeshConfig>)>,
    /// The view in use when the last one was prepared, freed when the next one is, on the
    /// swapping thread (not by the request that replaces it in `cache`).
    retired: ArcSwapOption<(Arc<MeshConfig>, Arc<MeshConfig>)>,
    /// The hooks of the layers reading this view, run on each prepared view.
    prepare: Hooks,
    /// Registered (weakly) with the store; lives as long as this view.
    _hook: PrepareHook,
}

impl Scoped {
    fn new(store: ConfigStore, namespace: &str) -> Arc<Self> {
        Arc::new_cyclic(|this: &Weak<Self>| {
            let this = this.clone();
            let hook: PrepareHook = Arc::new(move |config: &Arc<MeshConfig>| {
                if let Some(scoped) = this.upgrade() {
                    scoped.prepare_view(config);
                }
            });
            store.on_prepare(&hook);
            Self {
                store,
                namespace: namespace.to_owned(),
                cache: ArcSwapOption::empty(),
                next: ArcSwapOption::empty(),
                retired: ArcSwapOption::empty(),
                prepare: Hooks::default(),
                _hook: hook,
            }
        })
    }

    /// The view of `config`, the store's next snapshot, and what the layers derive from it.
    fn prepare_view(&self, config: &Arc<MeshConfig>) {
        // the view before the one in use is freed here, once the swap is done
        if let Some(older) = self.retired.swap(self.cache.load_full()) {
            super::free_after_swap(older);
        }
        let view = Arc::new(config.visible_from(&self.namespace));
        self.prepare.run(&view);
        self.next.store(Some(Arc::new((Arc::clone(config), view))));
    }

    /// The prepared view of `current`, if there is one.
    fn prepared(&self, current: &Arc<MeshConfig>) -> Option<Arc<MeshConfig>> {
        if let Some(cached) = &*self.cache.load()
            && Arc::ptr_eq(&cached.0, current)
        {
            return Some(Arc::clone(&cached.1));
        }
        let next = self.next.load_full()?;
        if !Arc::ptr_eq(&next.0, current) {
            return None;
        }
        let view = Arc::clone(&next.1);
        self.cache.store(Some(next));
        Some(view)
    }
}

impl Source for Scoped {
    fn snapshot(&self) -> Arc<MeshConfig> {
        let current = self.store.snapshot();
        if let Some(view) = self.prepared(&current) {
            return view;
        }
        // A config swapped in without this view's hook (a swap racing another): compute it here.
        let view = Arc::new(current.visible_from(&self.namespace));
        self.cache
            .store(Some(Arc::new((current, Arc::clone(&view)))));
        view
    }

    fn is_at(&self, seen: usize) -> bool {
        match &*self.cache.load() {
            Some(cached) if Arc::ptr_eq(&cached.0, &self.store.load()) => {
                Arc::as_ptr(&cached.1) as usize == seen
            }
            _ => Arc::as_ptr(&self.snapshot()) as usize == seen,
        }
    }

    fn on_prepare(&self, hook: &PrepareHook) -> bool {
        self.prepare.add(hook);
        true
    }

    fn generation(&self) -> Option<u64> {
        // The view changes only when the store swaps a snapshot in.
        Some(self.store.generation())
    }
}

impl ConfigSource {
    /// `store`'s config as a workload in `namespace` sees it: the VirtualServices,
    /// DestinationRules and ServiceEntries whose `exportTo` leaves `namespace` out are not in
    /// it, each host keeps the DestinationRule Istio's lookup order picks for `namespace`, and
    /// short hosts resolve in `namespace` first (computed once per reload).
    ///
    /// ```
    /// use mesh_core::watch::{ConfigSource, ConfigStore};
    /// let yaml = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: private, namespace: team-a}\nspec:\n  hosts: [service2]\n  exportTo: ['.']\n  http:\n  - route:\n    - destination: {host: service2}\n";
    /// let store = ConfigStore::new(mesh_core::load::load_str("x.yaml", yaml).unwrap().config);
    /// assert_eq!(ConfigSource::visible_from(store.clone(), "team-a").snapshot().virtual_services.len(), 1);
    /// assert!(ConfigSource::visible_from(store, "default").snapshot().virtual_services.is_empty());
    /// ```
    pub fn visible_from(store: ConfigStore, namespace: &str) -> Self {
        Self(Scoped::new(store, namespace))
    }

    /// Any function returning the current snapshot (called once per request: make it
    /// lock-free).
    pub fn from_fn(f: impl Fn() -> Arc<MeshConfig> + Send + Sync + 'static) -> Self {
        Self(Arc::new(FnSource(f)))
    }

    /// A config that never changes.
    pub fn fixed(config: MeshConfig) -> Self {
        Self(Arc::new(Arc::new(config)))
    }

    /// A cell the caller swaps.
    pub fn swap(cell: Arc<ArcSwap<MeshConfig>>) -> Self {
        Self(Arc::new(cell))
    }

    /// The hot-reloading store.
    pub fn store(store: ConfigStore) -> Self {
        Self(Arc::new(store))
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<MeshConfig> {
        self.0.snapshot()
    }

    /// Runs `hook` on each new snapshot of this source before it is in force, on the thread
    /// that swaps it in (see [`ConfigStore::on_prepare`]; for a namespace's view, on the view),
    /// so that a layer can compile what it derives from the snapshot off the request path.
    /// The source holds the hook weakly. Returns false for the sources that cannot tell (a
    /// fixed config, a cell, a function): their layers compile on first use, as before.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use mesh_core::policy::MeshConfig;
    /// use mesh_core::watch::{ConfigSource, ConfigStore, PrepareHook};
    ///
    /// let store = ConfigStore::new(MeshConfig::default());
    /// let source = ConfigSource::visible_from(store.clone(), "team-a");
    /// let prepared = Arc::new(Mutex::new(None));
    /// let slot = prepared.clone();
    /// let hook: PrepareHook = Arc::new(move |view: &Arc<MeshConfig>| {
    ///     *slot.lock().unwrap() = Some(Arc::clone(view));
    /// });
    /// assert!(source.on_prepare(&hook));
    /// store.store(MeshConfig::default());
    /// // the view the hook saw is the one the first request gets
    /// let seen = prepared.lock().unwrap().clone().unwrap();
    /// assert!(Arc::ptr_eq(&seen, &source.snapshot()));
    /// assert_eq!(seen.namespace.as_deref(), Some("team-a"));
    /// ```
    pub fn on_prepare(&self, hook: &PrepareHook) -> bool {
        self.0.on_prepare(hook)
    }

    /// Whether the config in force is the snapshot at address `seen` (a snapshot the caller
    /// still holds), without taking a new snapshot where the source can: the inbound gate's
    /// "did anything change" test, one pointer comparison.
    pub fn is_at(&self, seen: usize) -> bool {
        self.0.is_at(seen)
    }

    /// Whether the config in force is the snapshot at address `at` (one the caller holds, as
    /// for [`is_at`](Self::is_at)), remembering in `seen` the generation at which it was: while
    /// the source's generation is unchanged, the answer is one atomic load, with no look at the
    /// config cell at all (the router, the clusters and the inbound gate ask on every request).
    /// Sources that keep no generation (a cell, a function) are asked with `is_at` each time.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use mesh_core::policy::MeshConfig;
    /// use mesh_core::watch::{ConfigSource, ConfigStore, SeenAt};
    ///
    /// let store = ConfigStore::new(MeshConfig::default());
    /// let source = ConfigSource::from(store.clone());
    /// let held = source.snapshot();
    /// let seen = SeenAt::new();
    /// assert!(source.holds(Arc::as_ptr(&held) as usize, &seen));
    /// assert!(source.holds(Arc::as_ptr(&held) as usize, &seen)); // the generation's answer
    /// store.store(MeshConfig::default());
    /// assert!(!source.holds(Arc::as_ptr(&held) as usize, &seen));
    /// ```
    pub fn holds(&self, at: usize, seen: &SeenAt) -> bool {
        // Read before the config: a swap after this read changes the generation, so the one
        // remembered below can only be too old (a slow answer next time), never too new.
        let generation = self.0.generation();
        if let Some(g) = generation
            && seen.0.load(Ordering::Acquire) == g
        {
            return true;
        }
        let current = self.0.is_at(at);
        if current && let Some(g) = generation {
            seen.0.store(g, Ordering::Release);
        }
        current
    }
}

/// The generation of a [`ConfigSource`] at which a holder last found its snapshot in force
/// (see [`ConfigSource::holds`]); none at first. Keep one per held snapshot: a new snapshot
/// gets a new `SeenAt`.
#[derive(Debug, Default)]
pub struct SeenAt(AtomicU64);

impl SeenAt {
    /// Nothing seen yet.
    pub const fn new() -> Self {
        // Generations start at 1: 0 is never one.
        Self(AtomicU64::new(0))
    }

    /// Forgets what was seen, for a holder about to change the snapshot it holds.
    pub fn forget(&self) {
        self.0.store(0, Ordering::Release);
    }
}

/// A store's first generation, and the only one of a fixed config.
const FIRST_GENERATION: u64 = 1;

impl From<ConfigStore> for ConfigSource {
    fn from(store: ConfigStore) -> Self {
        Self::store(store)
    }
}

impl From<Arc<ArcSwap<MeshConfig>>> for ConfigSource {
    fn from(cell: Arc<ArcSwap<MeshConfig>>) -> Self {
        Self::swap(cell)
    }
}

impl<F: Fn() -> Arc<MeshConfig> + Send + Sync + 'static> From<F> for ConfigSource {
    fn from(f: F) -> Self {
        Self::from_fn(f)
    }
}

impl From<MeshConfig> for ConfigSource {
    fn from(config: MeshConfig) -> Self {
        Self::fixed(config)
    }
}

impl fmt::Debug for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConfigSource(..)")
    }
}
