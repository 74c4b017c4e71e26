//! What a source (a Prometheus, or the dashboard's own scrapes) observed in one round: request
//! rates, latencies, ejected endpoints and each app's state, in one shape for both.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::graph::{Flow, Latency};
use super::promtext::Sample;

/// One round of observations.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// Request rates by [`super::graph::FLOW_LABELS`].
    pub flows: Vec<Flow>,
    /// p99 latencies by edge.
    pub latencies: Vec<Latency>,
    /// Endpoints ejected by outlier detection, as the apps count them.
    pub ejections: Vec<Ejection>,
    /// Each app (admin address) and its config state.
    pub apps: Vec<AppStatus>,
    /// When the numbers hold, in seconds since the Unix epoch.
    pub at: f64,
    /// Seconds the rates are averaged over (0 while warming up).
    pub window_seconds: f64,
    /// The PromQL queries sent (Prometheus mode).
    pub queries: Vec<String>,
    /// What went wrong or had to be guessed, in words.
    pub notes: Vec<String>,
}

/// An endpoint that outlier detection ejected at least once.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Ejection {
    /// The cluster or destination service it belongs to.
    pub cluster: String,
    /// `ip:port`.
    pub endpoint: String,
    /// Why it was ejected (`consecutive_5xx`, ...), when the metric says.
    pub reason: String,
    /// Ejections counted so far.
    pub ejections: f64,
    /// Returns to the load-balancing set counted so far (when the apps count them).
    pub returns: Option<f64>,
    /// Whether it is out now: more ejections than returns (unknown without returns).
    pub ejected_now: Option<bool>,
}

/// One app as its admin port shows it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AppStatus {
    /// The admin base URL.
    pub url: String,
    /// `app` (from its metrics or its scrape labels; `""` until known).
    pub app: String,
    /// `version`.
    pub version: String,
    /// Whether the last scrape answered.
    pub up: bool,
    /// Why the last scrape failed.
    pub error: Option<String>,
    /// The config generation in force (`/config_dump` `generation`).
    pub generation: Option<u64>,
    /// The last reload: `"applied"`, `"refused"`, or `None` when unknown.
    pub last_reload: Option<String>,
    /// The last reload's generation.
    pub last_reload_generation: Option<u64>,
    /// Errors of the last (refused) reload.
    pub reload_errors: Vec<String>,
    /// Warnings of the last reload.
    pub reload_warnings: Vec<String>,
    /// Resources in force by kind (`/config_dump` `counts`).
    pub counts: BTreeMap<String, u64>,
    /// The whole `/config_dump` answer (for the routes panel; not served again).
    #[serde(skip)]
    pub config_dump: Option<Value>,
}

impl AppStatus {
    /// Fills the config fields from a `/config_dump` answer.
    pub fn read_config_dump(&mut self, dump: &Value) {
        self.config_dump = Some(dump.clone());
        self.generation = dump.get("generation").and_then(Value::as_u64);
        if let Some(last) = dump.get("last_reload").filter(|v| v.is_object()) {
            // mesh-server's view says `ok`, the example apps' `applied`.
            let ok = last
                .get("applied")
                .or_else(|| last.get("ok"))
                .and_then(Value::as_bool);
            self.last_reload = ok.map(|ok| if ok { "applied" } else { "refused" }.to_owned());
            self.last_reload_generation = last.get("generation").and_then(Value::as_u64);
            let strings = |k: &str| -> Vec<String> {
                last.get(k)
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default()
            };
            self.reload_errors = strings("errors");
            self.reload_warnings = strings("warnings");
        }
        if let Some(counts) = dump.get("counts").and_then(Value::as_object) {
            self.counts = counts
                .iter()
                .filter_map(|(k, v)| v.as_u64().map(|n| (k.clone(), n)))
                .collect();
        }
    }
}

/// Outlier counters (`mesh_outlier_ejections_total{cluster, endpoint, reason}`,
/// `mesh_outlier_returns_total{cluster, endpoint}`) summed per cluster and endpoint.
pub fn ejections(samples: &[Sample]) -> Vec<Ejection> {
    // When the apps count returns at all, an endpoint with none has not come back yet.
    let counts_returns = samples
        .iter()
        .any(|s| s.name == "mesh_outlier_returns_total");
    let mut out: BTreeMap<(String, String), Ejection> = BTreeMap::new();
    for s in samples {
        let returns = match s.name.as_str() {
            "mesh_outlier_ejections_total" => false,
            "mesh_outlier_returns_total" => true,
            _ => continue,
        };
        let cluster = s.label("cluster");
        let e = out
            .entry((cluster.to_owned(), s.label("endpoint").to_owned()))
            .or_insert_with(|| Ejection {
                cluster: cluster.to_owned(),
                endpoint: s.label("endpoint").to_owned(),
                reason: String::new(),
                ejections: 0.0,
                returns: counts_returns.then_some(0.0),
                ejected_now: None,
            });
        if returns {
            *e.returns.get_or_insert(0.0) += s.value;
        } else {
            e.ejections += s.value;
            if e.reason.is_empty() {
                s.label("reason").clone_into(&mut e.reason);
            }
        }
    }
    out.into_values()
        .filter(|e| e.ejections > 0.0)
        .map(|mut e| {
            e.ejected_now = e.returns.map(|r| e.ejections > r);
            e
        })
        .collect()
}
