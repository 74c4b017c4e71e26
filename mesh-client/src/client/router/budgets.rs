//! The retry budgets of a route table: resolved once per config snapshot for the routes'
//! destinations, per request for the default stack; the registry keeps their counters across
//! reloads.

use std::sync::Arc;

use mesh_core::policy::{
    Destination, HttpRoute, MeshConfig, RetryBudget, RouteAction, WeightedDestination,
};

use super::Router;
use crate::retry::budget::{BudgetBatch, BudgetRegistry};
use crate::retry::{Budget, Budgets};

impl Router {
    /// Budgets resolved per request from the registry (for the default stack, whose
    /// destinations are not known in advance).
    pub(super) fn budgets(&self, config: &Arc<MeshConfig>) -> Budgets {
        let registry = self.shared.budgets.clone();
        let config = config.clone();
        Budgets::resolve(move |target| match target {
            Some(target) => budget_for(&registry, &config, &target.destination),
            None => no_target_budget(&registry),
        })
    }

    /// Budgets of a route's destinations, resolved once per config snapshot (no registry lookup
    /// per request); the registry keeps their counters across reloads.
    pub(super) fn route_budgets(
        &self,
        destinations: &[WeightedDestination],
        config: &MeshConfig,
        batch: &mut BudgetBatch<'_>,
    ) -> Budgets {
        let list = destinations
            .iter()
            .map(|d| {
                let settings = budget_settings(config, &d.destination);
                (d.destination.clone(), batch.get(&d.destination, &settings))
            })
            .collect();
        Budgets::per_destination(list, batch.get(&no_target(), &RetryBudget::default()))
    }
}

/// Whether `route`'s destinations have the same budget settings under `old` and `new`: a
/// route stack compiled under `old` then holds the budgets it would get under `new`.
pub(super) fn same_budgets(route: &HttpRoute, old: &MeshConfig, new: &MeshConfig) -> bool {
    match &route.action {
        RouteAction::Forward(destinations) => destinations
            .iter()
            .all(|d| budget_settings(old, &d.destination) == budget_settings(new, &d.destination)),
        RouteAction::Redirect(_) | RouteAction::DirectResponse(_) => true,
    }
}

/// The budget of `d` under `config`'s DestinationRule (Istio's default budget without one).
fn budget_for(registry: &BudgetRegistry, config: &MeshConfig, d: &Destination) -> Budget {
    registry.get(d, &budget_settings(config, d))
}

/// The budget settings of `d` under `config`'s DestinationRule.
fn budget_settings(config: &MeshConfig, d: &Destination) -> RetryBudget {
    config
        .destinations
        .get(&d.host)
        .map(|p| {
            p.policy_for(d.subset.as_deref(), d.port)
                .retry_budget
                .clone()
        })
        .unwrap_or_default()
}

/// The destination of requests without a [`Target`], whose budget they share.
fn no_target() -> Destination {
    Destination {
        host: String::new(),
        subset: None,
        port: None,
    }
}

/// The budget shared by requests without a [`Target`].
fn no_target_budget(registry: &BudgetRegistry) -> Budget {
    registry.get(&no_target(), &RetryBudget::default())
}
