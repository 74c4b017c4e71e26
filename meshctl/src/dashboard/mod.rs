//! `meshctl dashboard`: a live page of the mesh.
//!
//! The page at `/` draws the service graph (workloads as nodes per app and version, calls as
//! edges with request rate, 5xx share and p99 latency), the routes with their configured weights
//! beside the observed shares, the endpoints outlier detection ejected, and each app's config
//! generation and last reload; it polls the JSON endpoints below, so it refreshes without
//! reloading. The numbers come from a Prometheus (`--prometheus URL`) or from the apps' admin
//! ports scraped directly (`--scrape URL`, once per app). See `docs/meshctl.md`.
//!
//! - `/api/graph`: `{"nodes": [{"id", "app", "version", ...}], "edges": [{"source", "target",
//!   "rps", "error_rate", "p99_ms", ...}], ...}` ([`graph::Graph`]), node ids `app:version`, the
//!   gateway `gateway`, callers outside the mesh `unknown`;
//! - `/api/routes`: `{"routes": [...]}` ([`routes::RouteView`]);
//! - `/api/apps`: `{"apps": [...], "ejections": [...]}` ([`observed::AppStatus`],
//!   [`observed::Ejection`]).
//!
//! ```no_run
//! # async fn run() -> Result<(), meshctl::dashboard::DashboardError> {
//! use meshctl::dashboard::{Dashboard, Options, Source};
//!
//! let options = Options::new(Source::Scrape(vec!["http://127.0.0.1:15000".into()]));
//! let dashboard = Dashboard::bind("127.0.0.1:0".parse().unwrap(), options).await?;
//! println!("http://{}/", dashboard.local_addr());
//! dashboard.shutdown().await;
//! # Ok(()) }
//! ```

pub mod fetch;
pub mod graph;
pub mod observed;
pub mod prometheus;
pub mod promtext;
pub mod routes;
pub mod scrape;
pub mod window;

mod cli;
mod kube;
mod server;

pub use cli::{DashboardArgs, run};
pub use server::{Dashboard, DashboardError};

use std::path::PathBuf;
use std::time::Duration;

/// Where the numbers come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A Prometheus' base URL (it scrapes the apps).
    Prometheus(String),
    /// The apps' admin base URLs, scraped by the dashboard.
    Scrape(Vec<String>),
}

/// How the dashboard runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Where the numbers come from.
    pub source: Source,
    /// A config folder for the routes panel (else the first app's `/config_dump`).
    pub config: Option<PathBuf>,
    /// The routes panel from the Kubernetes API server (`--kube`: found as kubectl finds it).
    pub kube: bool,
    /// Time between two rounds of scrapes or queries.
    pub interval: Duration,
    /// The window rates and latencies are averaged over (`[1m]` in PromQL).
    pub window: Duration,
}

impl Options {
    /// Options with the defaults: a round every 2 s, rates over 1 minute, routes from the apps.
    pub fn new(source: Source) -> Self {
        Self {
            source,
            config: None,
            kube: false,
            interval: Duration::from_secs(2),
            window: Duration::from_secs(60),
        }
    }
}
