//! `--scrape URL`: the dashboard reads each app's admin port itself, `/metrics` and
//! `/config_dump` every round, and computes rates and p99 latencies from successive scrapes
//! (see [`super::window`]), summed over the apps as `sum(rate(..)) by (..)` would.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::task::JoinSet;

use super::fetch::{Fetch, base_url};
use super::graph::{EDGE_LABELS, FLOW_LABELS, Flow, Latency};
use super::observed::{AppStatus, Observed, ejections};
use super::promtext::{Sample, parse};
use super::window::{History, Scrape, quantile};

#[cfg(test)]
mod tests;

/// Istio's request counter.
pub const REQUESTS: &str = "istio_requests_total";
/// Istio's request duration histogram's buckets.
pub const DURATION_BUCKETS: &str = "istio_request_duration_milliseconds_bucket";

/// Scrapes a fixed set of admin ports.
#[derive(Debug)]
pub struct Scraper {
    fetch: Fetch,
    targets: Vec<Target>,
}

#[derive(Debug)]
struct Target {
    url: String,
    history: History,
    status: AppStatus,
}

/// Seconds since the Unix epoch, now.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Scraper {
    /// A scraper of the admin base URLs `urls`, averaging rates over `window`.
    pub fn new(fetch: Fetch, urls: &[String], window: Duration) -> Self {
        let targets = urls
            .iter()
            .map(|u| {
                let url = base_url(u);
                Target {
                    status: AppStatus {
                        url: url.clone(),
                        ..AppStatus::default()
                    },
                    url,
                    history: History::new(window),
                }
            })
            .collect();
        Self { fetch, targets }
    }

    /// Scrapes every app once (all at the same time) and returns what the window now shows.
    pub async fn round(&mut self) -> Observed {
        let mut set = JoinSet::new();
        for (i, t) in self.targets.iter().enumerate() {
            let (fetch, url) = (self.fetch.clone(), t.url.clone());
            set.spawn(async move {
                let metrics = fetch.get(&format!("{url}/metrics")).await;
                let at = now();
                let dump = fetch.get(&format!("{url}/config_dump")).await;
                (i, at, metrics, dump)
            });
        }
        while let Some(done) = set.join_next().await {
            let Ok((i, at, metrics, dump)) = done else {
                continue;
            };
            let Some(t) = self.targets.get_mut(i) else {
                continue;
            };
            match metrics {
                Ok(body) => {
                    let samples = parse(&String::from_utf8_lossy(&body)).samples;
                    t.status.up = true;
                    t.status.error = None;
                    if let Some((app, version)) = identity(&samples) {
                        (t.status.app, t.status.version) = (app, version);
                    }
                    t.history.push(Scrape { at, samples });
                }
                Err(e) => {
                    t.status.up = false;
                    t.status.error = Some(format!("/metrics: {e}"));
                }
            }
            match dump.map(|b| serde_json::from_slice::<Value>(&b)) {
                Ok(Ok(v)) => t.status.read_config_dump(&v),
                Ok(Err(e)) => {
                    t.status
                        .error
                        .get_or_insert(format!("/config_dump: not JSON: {e}"));
                }
                Err(e) => {
                    t.status.error.get_or_insert(format!("/config_dump: {e}"));
                }
            }
        }
        self.observed()
    }

    fn observed(&self) -> Observed {
        let mut rates = Vec::new();
        let mut latest = Vec::new();
        let mut window: f64 = 0.0;
        let mut notes = Vec::new();
        for t in &self.targets {
            if let Some(r) = t.history.rates(|n| n == REQUESTS || n == DURATION_BUCKETS) {
                rates.extend(r);
                window = window.max(t.history.span());
            }
            if let Some(s) = t.history.latest() {
                latest.extend(s.samples.iter().cloned());
            }
        }
        if window == 0.0 {
            notes.push("warming up: rates need two scrapes of an app".to_owned());
        }
        Observed {
            flows: flows(&rates),
            latencies: latencies(&rates),
            ejections: ejections(&latest),
            apps: self.targets.iter().map(|t| t.status.clone()).collect(),
            at: now(),
            window_seconds: window,
            queries: Vec::new(),
            notes,
        }
    }
}

/// Who an app is, from its own series: the destination of what it answers, else the source of
/// what it sends.
fn identity(samples: &[Sample]) -> Option<(String, String)> {
    let of = |reporter: &str, side: &str| {
        samples
            .iter()
            .find(|s| s.name == REQUESTS && s.label("reporter") == reporter)
            .map(|s| {
                (
                    s.label(&format!("{side}_app")).to_owned(),
                    s.label(&format!("{side}_version")).to_owned(),
                )
            })
    };
    of("destination", "destination").or_else(|| of("source", "source"))
}

/// Label values of one group, in the grouping labels' order.
type LabelKey = Vec<(String, String)>;

/// Request-rate samples summed by [`FLOW_LABELS`]:
/// `sum(rate(istio_requests_total[w])) by (reporter, source_app, ...)`.
pub fn flows(rates: &[Sample]) -> Vec<Flow> {
    let mut sums: BTreeMap<LabelKey, f64> = BTreeMap::new();
    for s in rates.iter().filter(|s| s.name == REQUESTS) {
        let key = FLOW_LABELS
            .iter()
            .map(|k| ((*k).to_owned(), s.label(k).to_owned()))
            .collect();
        *sums.entry(key).or_insert(0.0) += s.value;
    }
    sums.into_iter()
        .map(|(k, rps)| Flow::new(&k.into_iter().collect(), rps))
        .collect()
}

/// p99 per edge from bucket rates of destination-reported series:
/// `histogram_quantile(0.99, sum(rate(.._bucket{reporter="destination"}[w])) by (le, ...))`.
pub fn latencies(rates: &[Sample]) -> Vec<Latency> {
    let mut buckets: BTreeMap<LabelKey, Vec<(f64, f64)>> = BTreeMap::new();
    for s in rates
        .iter()
        .filter(|s| s.name == DURATION_BUCKETS && s.label("reporter") == "destination")
    {
        let le = match s.label("le") {
            "+Inf" | "Inf" => f64::INFINITY,
            le => match le.parse::<f64>() {
                Ok(v) => v,
                Err(_) => continue,
            },
        };
        let key = EDGE_LABELS
            .iter()
            .map(|k| ((*k).to_owned(), s.label(k).to_owned()))
            .collect();
        let list = buckets.entry(key).or_default();
        match list.iter_mut().find(|(b, _)| *b == le) {
            Some((_, v)) => *v += s.value,
            None => list.push((le, s.value)),
        }
    }
    buckets
        .into_iter()
        .filter_map(|(k, b)| {
            quantile(0.99, &b).map(|p99_ms| Latency {
                labels: k.into_iter().collect(),
                p99_ms,
            })
        })
        .collect()
}
