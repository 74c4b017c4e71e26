//! `--prometheus URL`: the numbers come from a Prometheus that scrapes the apps, through its
//! HTTP API (`/api/v1/query` with PromQL over Istio's standard metrics, all evaluated at one
//! instant so they agree with each other), and the apps from its targets
//! (`/api/v1/targets`), whose admin ports also give each app's `/config_dump`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use super::fetch::{Fetch, base_url, encode};
use super::graph::{EDGE_LABELS, FLOW_LABELS, Flow, Latency};
use super::observed::{AppStatus, Observed, ejections};
use super::promtext::Sample;
use super::scrape::now;

#[cfg(test)]
mod tests;

/// Queries one Prometheus.
#[derive(Debug)]
pub struct PromSource {
    fetch: Fetch,
    base: String,
    window: String,
}

/// The PromQL for request rates by the graph's labels over `window` (e.g. `1m`).
pub fn flows_query(window: &str) -> String {
    format!(
        "sum(rate(istio_requests_total[{window}])) by ({})",
        FLOW_LABELS.join(", ")
    )
}

/// The PromQL for p99 latency per edge, from the destination's histograms.
pub fn p99_query(window: &str) -> String {
    format!(
        "histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{{reporter=\"destination\"}}[{window}])) by (le, {}))",
        EDGE_LABELS.join(", ")
    )
}

/// How far in the past the queries are evaluated: a scrape's samples carry its start time but
/// land when it ends, so "now" can still change; two seconds ago no longer does. The numbers
/// are then exactly what a PromQL query at the same `time` returns, now or later.
pub const LAG: Duration = Duration::from_secs(2);

const EJECTIONS: &str =
    "sum by (cluster, destination_service, endpoint, reason) (mesh_outlier_ejections_total)";
const RETURNS: &str =
    "sum by (cluster, destination_service, endpoint) (mesh_outlier_returns_total)";

/// A window as PromQL writes it: whole seconds, at least 2 s.
pub fn promql_duration(window: Duration) -> String {
    format!("{}s", window.as_secs().max(2))
}

impl PromSource {
    /// A source querying the Prometheus at `url`, rates over `window`.
    pub fn new(fetch: Fetch, url: &str, window: Duration) -> Self {
        Self {
            fetch,
            base: base_url(url),
            window: promql_duration(window),
        }
    }

    /// Runs one instant query at `at` (seconds since the epoch): its samples.
    pub async fn query(&self, promql: &str, at: f64) -> Result<Vec<Sample>, String> {
        let url = format!(
            "{}/api/v1/query?query={}&time={at:.3}",
            self.base,
            encode(promql)
        );
        let body = self.fetch.get(&url).await?;
        let v: Value = serde_json::from_slice(&body).map_err(|e| format!("not JSON: {e}"))?;
        vector(&v)
    }

    /// One round: every query at the same instant, [`LAG`] ago, then each target's
    /// `/config_dump`.
    pub async fn round(&self) -> Observed {
        let at = ((now() - LAG.as_secs_f64()) * 1000.0).floor() / 1000.0;
        let (fq, pq) = (flows_query(&self.window), p99_query(&self.window));
        let mut notes = Vec::new();
        let mut note = |what: &str, e: String| notes.push(format!("{what}: {e}"));
        let flows = match self.query(&fq, at).await {
            Ok(s) => s.iter().map(|s| Flow::new(&s.labels, s.value)).collect(),
            Err(e) => {
                note("request rates", e);
                Vec::new()
            }
        };
        let latencies = match self.query(&pq, at).await {
            Ok(s) => s
                .into_iter()
                .filter(|s| s.value.is_finite())
                .map(|s| Latency {
                    labels: s.labels,
                    p99_ms: s.value,
                })
                .collect(),
            Err(e) => {
                note("latencies", e);
                Vec::new()
            }
        };
        let mut outlier = Vec::new();
        for (name, q) in [
            ("mesh_outlier_ejections_total", EJECTIONS),
            ("mesh_outlier_returns_total", RETURNS),
        ] {
            match self.query(q, at).await {
                Ok(s) => outlier.extend(s.into_iter().map(|mut s| {
                    name.clone_into(&mut s.name);
                    s
                })),
                Err(e) => note("outlier ejections", e),
            }
        }
        let apps = match self.targets().await {
            Ok(a) => a,
            Err(e) => {
                note("targets", e);
                Vec::new()
            }
        };
        Observed {
            flows,
            latencies,
            ejections: ejections(&outlier),
            apps,
            at,
            window_seconds: self.window.trim_end_matches('s').parse().unwrap_or(0.0),
            queries: vec![fq, pq, EJECTIONS.to_owned(), RETURNS.to_owned()],
            notes,
        }
    }

    /// The active scrape targets, each with its `/config_dump` when the admin port gives one.
    async fn targets(&self) -> Result<Vec<AppStatus>, String> {
        let body = self
            .fetch
            .get(&format!("{}/api/v1/targets?state=active", self.base))
            .await?;
        let v: Value = serde_json::from_slice(&body).map_err(|e| format!("not JSON: {e}"))?;
        let mut apps = targets(&v);
        for app in &mut apps {
            match self.fetch.get(&format!("{}/config_dump", app.url)).await {
                Ok(b) => match serde_json::from_slice::<Value>(&b) {
                    Ok(dump) => app.read_config_dump(&dump),
                    Err(e) => {
                        app.error
                            .get_or_insert(format!("/config_dump: not JSON: {e}"));
                    }
                },
                Err(e) => {
                    app.error.get_or_insert(format!("/config_dump: {e}"));
                }
            }
        }
        Ok(apps)
    }
}

/// The samples of an instant-vector answer (`resultType: vector`).
pub fn vector(answer: &Value) -> Result<Vec<Sample>, String> {
    if answer.get("status").and_then(Value::as_str) != Some("success") {
        let error = answer
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("no status");
        return Err(format!("query failed: {error}"));
    }
    let result = answer
        .pointer("/data/result")
        .and_then(Value::as_array)
        .ok_or("answer without data.result")?;
    let mut out = Vec::new();
    for r in result {
        let labels: BTreeMap<String, String> = r
            .get("metric")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        let value = r
            .pointer("/value/1")
            .and_then(Value::as_str)
            .and_then(|v| match v {
                "+Inf" => Some(f64::INFINITY),
                "-Inf" => Some(f64::NEG_INFINITY),
                "NaN" => Some(f64::NAN),
                v => v.parse().ok(),
            })
            .ok_or("a sample without a value")?;
        out.push(Sample {
            name: labels.get("__name__").cloned().unwrap_or_default(),
            labels,
            value,
        });
    }
    Ok(out)
}

/// The apps of a `/api/v1/targets` answer: base URL, health, last error, `app` / `version`
/// target labels when the scrape config sets them.
pub fn targets(answer: &Value) -> Vec<AppStatus> {
    let list = answer
        .pointer("/data/activeTargets")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut apps: Vec<AppStatus> = list
        .iter()
        .filter_map(|t| {
            let url = base_url(t.get("scrapeUrl")?.as_str()?);
            let label = |k: &str| {
                t.pointer(&format!("/labels/{k}"))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned()
            };
            let error = t
                .get("lastError")
                .and_then(Value::as_str)
                .filter(|e| !e.is_empty())
                .map(str::to_owned);
            Some(AppStatus {
                url,
                app: label("app"),
                version: label("version"),
                up: t.get("health").and_then(Value::as_str) == Some("up"),
                error,
                ..AppStatus::default()
            })
        })
        .collect();
    apps.sort_by(|a, b| a.url.cmp(&b.url));
    apps
}
