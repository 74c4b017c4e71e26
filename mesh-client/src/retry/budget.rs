//! The retry budget: retries in flight may be at most a share of the requests in flight.
//!
//! A fixed attempt count multiplies load exactly when a destination is struggling: with 3
//! attempts, an overloaded service gets up to 4× its normal traffic. A budget caps the *extra*
//! load instead. Envoy's budget (and Istio's `retryBudget`) is concurrency based: a retry may
//! start only while `retries in flight < max(min_retry_concurrency, percent × requests in
//! flight)`, counted per destination. Retries beyond it are not sent (the failed answer is
//! returned) and counted. tower's `TpsBudget` is rate based over a time window; concurrency needs
//! no clock and follows load changes at once, which is why this one is written here.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use mesh_core::policy::RetryBudget;

/// A retry budget shared by every request to one destination. Clones share the counters.
#[derive(Clone, Debug)]
pub struct Budget {
    percent: f64,
    min_retry_concurrency: usize,
    state: Arc<State>,
}

#[derive(Debug, Default)]
struct State {
    requests: AtomicUsize,
    retries: AtomicUsize,
}

impl Budget {
    /// A budget with Istio's `retryBudget` settings.
    pub fn new(settings: &RetryBudget) -> Self {
        let (percent, min_retry_concurrency) = normalized(settings);
        Self {
            percent,
            min_retry_concurrency,
            state: Arc::default(),
        }
    }

    /// A budget that never refuses a retry.
    pub fn unlimited() -> Self {
        Self {
            percent: 100.0,
            min_retry_concurrency: usize::MAX,
            state: Arc::default(),
        }
    }

    /// The same counters with new settings (after a config reload).
    pub fn with_settings(&self, settings: &RetryBudget) -> Self {
        Self {
            state: self.state.clone(),
            ..Self::new(settings)
        }
    }

    /// Counts a request in flight until the guard drops.
    pub fn enter_request(&self) -> RequestGuard {
        self.state.requests.fetch_add(1, Ordering::AcqRel);
        RequestGuard {
            state: self.state.clone(),
        }
    }

    /// Reserves one retry in flight, if the budget allows it now.
    pub fn try_retry(&self) -> Option<RetryGuard> {
        let requests = self.state.requests.load(Ordering::Acquire);
        let share = (requests as f64 * self.percent / 100.0) as usize;
        let limit = share.max(self.min_retry_concurrency);
        let mut current = self.state.retries.load(Ordering::Acquire);
        loop {
            if current >= limit {
                return None;
            }
            match self.state.retries.compare_exchange_weak(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    return Some(RetryGuard {
                        state: self.state.clone(),
                    });
                }
                Err(actual) => current = actual,
            }
        }
    }

    /// Requests in flight now.
    pub fn requests_in_flight(&self) -> usize {
        self.state.requests.load(Ordering::Acquire)
    }

    /// Retries in flight now.
    pub fn retries_in_flight(&self) -> usize {
        self.state.retries.load(Ordering::Acquire)
    }
}

impl Default for Budget {
    /// Istio's default budget: 20 %, at least 3 retries in flight.
    fn default() -> Self {
        Self::new(&RetryBudget::default())
    }
}

/// A request in flight; releases its count on drop.
#[derive(Debug)]
pub struct RequestGuard {
    state: Arc<State>,
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.state.requests.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A retry in flight; releases its count on drop.
#[derive(Debug)]
pub struct RetryGuard {
    state: Arc<State>,
}

impl Drop for RetryGuard {
    fn drop(&mut self) {
        self.state.retries.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Budgets by destination that outlive config reloads: the counters of a destination stay, its
/// settings follow the config. Lookups are lock-free; inserting a new destination copies the map,
/// so a route table's many lookups go through one [`BudgetBatch`], which copies it once.
#[derive(Debug, Default)]
pub struct BudgetRegistry {
    map: arc_swap::ArcSwap<BudgetMap>,
}

type BudgetMap = std::collections::HashMap<mesh_core::policy::Destination, Budget>;

impl BudgetRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The budget of `destination` with `settings` (created on first use).
    pub fn get(
        &self,
        destination: &mesh_core::policy::Destination,
        settings: &RetryBudget,
    ) -> Budget {
        if let Some(b) = self
            .map
            .load()
            .get(destination)
            .filter(|b| b.same_settings(settings))
        {
            return b.clone();
        }
        let mut out = None;
        self.map.rcu(|map| {
            let mut map = BudgetMap::clone(map);
            let budget = match map.get(destination) {
                Some(b) if b.same_settings(settings) => b.clone(),
                Some(b) => b.with_settings(settings),
                None => Budget::new(settings),
            };
            map.insert(destination.clone(), budget.clone());
            out = Some(budget);
            map
        });
        out.unwrap_or_else(|| Budget::new(settings))
    }

    /// Lookups for many destinations at once (a route table's): the new or changed ones are
    /// added to the registry in one copy of its map, when the batch is committed (or dropped).
    ///
    /// ```
    /// use mesh_client::retry::budget::BudgetRegistry;
    /// use mesh_core::policy::{Destination, RetryBudget};
    ///
    /// let registry = BudgetRegistry::new();
    /// let d = |h: &str| Destination { host: h.into(), subset: None, port: None };
    /// let mut batch = registry.batch();
    /// let a = batch.get(&d("a"), &RetryBudget::default());
    /// let _b = batch.get(&d("b"), &RetryBudget::default());
    /// batch.commit();
    /// let _retry = a.try_retry();
    /// assert_eq!(registry.get(&d("a"), &RetryBudget::default()).retries_in_flight(), 1);
    /// ```
    pub fn batch(&self) -> BudgetBatch<'_> {
        BudgetBatch {
            registry: self,
            map: self.map.load_full(),
            added: BudgetMap::new(),
        }
    }
}

/// Budget lookups of one batch ([`BudgetRegistry::batch`]); committed on drop.
#[derive(Debug)]
pub struct BudgetBatch<'a> {
    registry: &'a BudgetRegistry,
    map: Arc<BudgetMap>,
    added: BudgetMap,
}

impl BudgetBatch<'_> {
    /// The budget of `destination` with `settings`: the registry's, or one this batch adds.
    pub fn get(
        &mut self,
        destination: &mesh_core::policy::Destination,
        settings: &RetryBudget,
    ) -> Budget {
        let known = self
            .added
            .get(destination)
            .or_else(|| self.map.get(destination));
        let budget = match known {
            Some(b) if b.same_settings(settings) => return b.clone(),
            Some(b) => b.with_settings(settings),
            None => Budget::new(settings),
        };
        self.added.insert(destination.clone(), budget.clone());
        budget
    }

    /// Adds this batch's new budgets to the registry (one copy of its map).
    pub fn commit(mut self) {
        self.publish();
    }

    fn publish(&mut self) {
        if self.added.is_empty() {
            return;
        }
        let added = std::mem::take(&mut self.added);
        self.registry.map.rcu(|map| {
            let mut map = BudgetMap::clone(map);
            for (d, b) in &added {
                // a budget another batch added meanwhile with these settings is kept: the
                // counters stay one per destination
                match map.get(d) {
                    Some(old) if old.same_settings_as(b) => {}
                    _ => {
                        map.insert(d.clone(), b.clone());
                    }
                }
            }
            map
        });
    }
}

impl Drop for BudgetBatch<'_> {
    fn drop(&mut self) {
        self.publish();
    }
}

/// The settings as a budget uses them: the percentage clamped to 0..=100 (0 when not finite).
fn normalized(settings: &RetryBudget) -> (f64, usize) {
    let percent = if settings.percent.is_finite() {
        settings.percent.clamp(0.0, 100.0)
    } else {
        0.0
    };
    (percent, settings.min_retry_concurrency as usize)
}

impl Budget {
    fn same_settings(&self, settings: &RetryBudget) -> bool {
        // Compared without building a budget (that would allocate its counters per lookup).
        (self.percent, self.min_retry_concurrency) == normalized(settings)
    }

    fn same_settings_as(&self, other: &Budget) -> bool {
        (self.percent, self.min_retry_concurrency) == (other.percent, other.min_retry_concurrency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_concurrency_then_percent() {
        let b = Budget::new(&RetryBudget {
            percent: 20.0,
            min_retry_concurrency: 2,
        });
        let reqs: Vec<_> = (0..20).map(|_| b.enter_request()).collect();
        // 20 % of 20 = 4 retries allowed.
        let retries: Vec<_> = (0..10).filter_map(|_| b.try_retry()).collect();
        assert_eq!(retries.len(), 4);
        drop(retries);
        assert_eq!(b.retries_in_flight(), 0);
        drop(reqs);
        let _one = b.enter_request();
        let retries: Vec<_> = (0..10).filter_map(|_| b.try_retry()).collect();
        assert_eq!(retries.len(), 2, "the minimum applies at low load");
    }

    #[test]
    fn a_batch_adds_its_budgets_once_and_keeps_counters() {
        let reg = BudgetRegistry::new();
        let d = |i: usize| mesh_core::policy::Destination {
            host: format!("s{i}"),
            subset: None,
            port: None,
        };
        let settings = RetryBudget::default();
        let mut batch = reg.batch();
        let first: Vec<Budget> = (0..1000).map(|i| batch.get(&d(i), &settings)).collect();
        // the same destination twice in one batch: one budget
        let _g = first[7].try_retry().unwrap();
        assert_eq!(batch.get(&d(7), &settings).retries_in_flight(), 1);
        let before = reg.map.load_full();
        assert!(before.is_empty(), "nothing published before the commit");
        batch.commit();
        assert_eq!(reg.map.load().len(), 1000);
        // the next reload's batch finds them: no copy of the map
        let published = reg.map.load_full();
        let mut again = reg.batch();
        assert_eq!(again.get(&d(7), &settings).retries_in_flight(), 1);
        drop(again);
        assert!(Arc::ptr_eq(&published, &reg.map.load_full()));
        // new settings keep the counters
        let changed = RetryBudget {
            percent: 50.0,
            min_retry_concurrency: 1,
        };
        let mut batch = reg.batch();
        assert_eq!(batch.get(&d(7), &changed).retries_in_flight(), 1);
        batch.commit();
        assert_eq!(reg.get(&d(7), &changed).retries_in_flight(), 1);
    }

    #[test]
    fn registry_keeps_counters_across_setting_changes() {
        let reg = BudgetRegistry::new();
        let d = mesh_core::policy::Destination {
            host: "s".into(),
            subset: None,
            port: None,
        };
        let a = reg.get(
            &d,
            &RetryBudget {
                percent: 0.0,
                min_retry_concurrency: 1,
            },
        );
        let _g = a.try_retry().unwrap();
        let b = reg.get(
            &d,
            &RetryBudget {
                percent: 0.0,
                min_retry_concurrency: 2,
            },
        );
        assert_eq!(b.retries_in_flight(), 1, "same counters");
        let second = b.try_retry();
        assert!(second.is_some(), "new minimum applies");
        assert!(b.try_retry().is_none());
    }

    #[test]
    fn clones_share_counters() {
        let b = Budget::new(&RetryBudget {
            percent: 0.0,
            min_retry_concurrency: 1,
        });
        let c = b.with_settings(&RetryBudget {
            percent: 0.0,
            min_retry_concurrency: 1,
        });
        let _g = b.try_retry().unwrap();
        assert!(c.try_retry().is_none());
        assert!(Budget::unlimited().try_retry().is_some());
    }
}
