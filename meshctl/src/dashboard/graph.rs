//! The service graph: workloads as nodes (`app:version`, the gateway `gateway`), calls as edges
//! with request rate, 5xx share and p99 latency, built from Istio's standard metrics.
//!
//! Both sources (a Prometheus, or the dashboard's own scrapes) give the same inputs: request
//! rates by the labels below, and p99 latencies by edge. Which series count is decided here,
//! once: every `reporter="destination"` series (the callee knows who called it and who it is),
//! plus the `reporter="source"` series of requests that never reached a destination (Envoy's
//! flags `UH`, `UF`, `UO`, `NR`, `FI`: no healthy upstream, connection failure, overflow, no
//! route, injected abort), so nothing is counted twice. Where a label says `unknown` the graph
//! degrades instead of failing: a caller outside the mesh is the node `unknown`; a destination
//! known only by its service (source-reported series today) is a service node named after
//! `destination_service`; each such fallback is named in [`Graph::notes`].

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

#[cfg(test)]
mod tests;

/// The labels a request-rate series is grouped by (Istio's names).
pub const FLOW_LABELS: [&str; 8] = [
    "reporter",
    "source_app",
    "source_version",
    "destination_app",
    "destination_version",
    "destination_service",
    "response_code",
    "response_flags",
];

/// The labels a latency series is grouped by.
pub const EDGE_LABELS: [&str; 4] = [
    "source_app",
    "source_version",
    "destination_app",
    "destination_version",
];

/// Envoy response flags meaning the request never reached a destination workload.
const NEVER_REACHED: [&str; 5] = ["UH", "UF", "UO", "NR", "FI"];

/// Requests per second of one label set.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Flow {
    /// Label values by name ([`FLOW_LABELS`]); a missing label reads as `""`.
    pub labels: BTreeMap<String, String>,
    /// Requests per second.
    pub rps: f64,
}

impl Flow {
    /// A flow from a label map (extra labels are ignored).
    pub fn new(labels: &BTreeMap<String, String>, rps: f64) -> Self {
        let labels = FLOW_LABELS
            .iter()
            .filter_map(|k| labels.get(*k).map(|v| ((*k).to_owned(), v.clone())))
            .collect();
        Self { labels, rps }
    }

    fn get(&self, k: &str) -> &str {
        self.labels.get(k).map_or("", String::as_str)
    }
}

/// The p99 latency of the requests between two workloads.
#[derive(Clone, Debug, PartialEq)]
pub struct Latency {
    /// Label values by name ([`EDGE_LABELS`]).
    pub labels: BTreeMap<String, String>,
    /// Milliseconds.
    pub p99_ms: f64,
}

/// What a node stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    /// Callers outside the mesh (`source_app="unknown"`).
    External,
    /// The ingress gateway.
    Gateway,
    /// A workload: one app at one version.
    Workload,
    /// A service whose workload the metrics do not name.
    Service,
}

/// A node of the graph.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Node {
    /// `app:version`, `gateway`, `unknown`, or a service name.
    pub id: String,
    /// The `app` label.
    pub app: String,
    /// The `version` label (`""` when unknown).
    pub version: String,
    /// What the node stands for.
    pub kind: NodeKind,
    /// Column of the drawing: 0 for nodes nothing calls, then one more per hop.
    pub layer: usize,
    /// Row within the column, in id order.
    pub row: usize,
    /// Requests per second answered by this node (sum of its incoming edges).
    pub rps_in: f64,
}

/// An edge: calls from one node to another.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Edge {
    /// The caller's node id.
    pub source: String,
    /// The callee's node id.
    pub target: String,
    /// Requests per second.
    pub rps: f64,
    /// Fraction (0..1) of the requests answered 5xx.
    pub error_rate: f64,
    /// 99th percentile latency in milliseconds, when the histograms give one.
    pub p99_ms: Option<f64>,
    /// Requests per second by response code.
    pub codes: BTreeMap<String, f64>,
    /// `destination` when the callee reported these requests, `source` when only the caller
    /// did (requests that never reached it).
    pub reporter: String,
}

/// The service graph.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Graph {
    /// Nodes, by layer then row.
    pub nodes: Vec<Node>,
    /// Edges, by source then target.
    pub edges: Vec<Edge>,
    /// What the graph had to guess, in words.
    pub notes: Vec<String>,
}

fn known(v: &str) -> bool {
    !v.is_empty() && v != "unknown"
}

/// Whether an `app` label names the ingress gateway (ours is `gateway`; Istio's
/// `istio-ingressgateway`).
pub fn is_gateway(app: &str) -> bool {
    app == "gateway" || app.starts_with("istio-ingressgateway")
}

/// The node of an `app` / `version` pair.
fn node_of(app: &str, version: &str) -> (String, String, String, NodeKind) {
    if is_gateway(app) {
        (
            "gateway".into(),
            app.into(),
            version.into(),
            NodeKind::Gateway,
        )
    } else if !known(app) {
        (
            "unknown".into(),
            "unknown".into(),
            String::new(),
            NodeKind::External,
        )
    } else if !known(version) {
        (app.into(), app.into(), String::new(), NodeKind::Service)
    } else {
        (
            format!("{app}:{version}"),
            app.into(),
            version.into(),
            NodeKind::Workload,
        )
    }
}

/// The node id of a workload, as [`Graph`] names it (`app:version`, `gateway`, `unknown`).
pub fn node_id(app: &str, version: &str) -> String {
    node_of(app, version).0
}

/// A service host's short name: `service2.default.svc.cluster.local` → `service2`.
pub fn short_host(host: &str) -> &str {
    host.split('.').next().unwrap_or(host)
}

#[derive(Default)]
struct EdgeAcc {
    rps: f64,
    errors: f64,
    codes: BTreeMap<String, f64>,
    reporter: String,
}

/// Builds the graph from request rates and latencies (see the module doc for which count).
pub fn build(flows: &[Flow], latencies: &[Latency]) -> Graph {
    let mut notes = BTreeSet::new();
    let mut nodes: BTreeMap<String, (String, String, NodeKind)> = BTreeMap::new();
    let mut edges: BTreeMap<(String, String), EdgeAcc> = BTreeMap::new();
    for f in flows {
        let reporter = f.get("reporter");
        let by_source = reporter == "source";
        if by_source && !never_reached(f.get("response_flags")) {
            continue;
        }
        if !f.rps.is_finite() || f.rps < 0.0 {
            continue;
        }
        let (sid, sapp, sver, skind) = node_of(f.get("source_app"), f.get("source_version"));
        let (mut did, mut dapp, mut dver, mut dkind) =
            node_of(f.get("destination_app"), f.get("destination_version"));
        if dkind == NodeKind::External {
            // The callee's own labels are unknown: fall back to the service it was sent to.
            let svc = short_host(f.get("destination_service"));
            if !known(svc) {
                notes.insert("requests with no known destination were left out".to_owned());
                continue;
            }
            (did, dapp, dver, dkind) = (svc.into(), svc.into(), String::new(), NodeKind::Service);
            notes.insert(format!(
                "{svc}: destination workload unknown on some series, drawn as the service"
            ));
        }
        if skind == NodeKind::External && !by_source {
            notes.insert("callers outside the mesh are the node `unknown`".to_owned());
        }
        nodes.entry(sid.clone()).or_insert((sapp, sver, skind));
        nodes.entry(did.clone()).or_insert((dapp, dver, dkind));
        let e = edges.entry((sid, did)).or_default();
        let code = f.get("response_code");
        e.rps += f.rps;
        if code.starts_with('5') {
            e.errors += f.rps;
        }
        *e.codes.entry(code.to_owned()).or_insert(0.0) += f.rps;
        if e.reporter.is_empty() || reporter == "destination" {
            e.reporter = if by_source { "source" } else { "destination" }.to_owned();
        }
    }
    let mut p99: BTreeMap<(String, String), f64> = BTreeMap::new();
    for l in latencies {
        let get = |k: &str| l.labels.get(k).map_or("", String::as_str);
        let key = (
            node_id(get("source_app"), get("source_version")),
            node_id(get("destination_app"), get("destination_version")),
        );
        if l.p99_ms.is_finite() {
            let slot = p99.entry(key).or_insert(l.p99_ms);
            // Several label sets on one edge (e.g. two gateway versions): the worst p99.
            *slot = slot.max(l.p99_ms);
        }
    }
    let edges: Vec<Edge> = edges
        .into_iter()
        .map(|((source, target), e)| Edge {
            p99_ms: p99.get(&(source.clone(), target.clone())).copied(),
            error_rate: if e.rps > 0.0 { e.errors / e.rps } else { 0.0 },
            source,
            target,
            rps: e.rps,
            codes: e.codes,
            reporter: e.reporter,
        })
        .collect();
    let layers = layers(nodes.keys().map(String::as_str), &edges);
    let mut rows: BTreeMap<usize, usize> = BTreeMap::new();
    let mut out: Vec<Node> = nodes
        .into_iter()
        .map(|(id, (app, version, kind))| {
            let layer = layers.get(&id).copied().unwrap_or(0);
            let rps_in = edges.iter().filter(|e| e.target == id).map(|e| e.rps).sum();
            Node {
                id,
                app,
                version,
                kind,
                layer,
                row: 0,
                rps_in,
            }
        })
        .collect();
    out.sort_by(|a, b| (a.layer, &a.id).cmp(&(b.layer, &b.id)));
    for n in &mut out {
        let r = rows.entry(n.layer).or_insert(0);
        n.row = *r;
        *r += 1;
    }
    Graph {
        nodes: out,
        edges,
        notes: notes.into_iter().collect(),
    }
}

fn never_reached(flags: &str) -> bool {
    flags.split(',').any(|f| NEVER_REACHED.contains(&f.trim()))
}

/// The column of each node: the longest chain of callers leading to it (cycles cut after as
/// many rounds as there are nodes).
fn layers<'a>(ids: impl Iterator<Item = &'a str>, edges: &[Edge]) -> BTreeMap<String, usize> {
    let mut layer: BTreeMap<String, usize> = ids.map(|id| (id.to_owned(), 0)).collect();
    let n = layer.len();
    for _ in 0..n {
        let mut changed = false;
        for e in edges.iter().filter(|e| e.source != e.target) {
            let from = layer.get(&e.source).copied().unwrap_or(0);
            if let Some(to) = layer.get_mut(&e.target)
                && *to < from + 1
                && from + 1 < n.max(1)
            {
                *to = from + 1;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    layer
}
