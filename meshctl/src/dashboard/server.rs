//! The dashboard's HTTP server and its refresh loop: every interval one round of scrapes or
//! queries, turned into the JSON the endpoints serve until the next round.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::extract::State;
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::fetch::Fetch;
use super::observed::Observed;
use super::prometheus::PromSource;
use super::routes::{self, RouteView};
use super::scrape::Scraper;
use super::{Options, Source, graph};

/// The page: HTML, CSS and JavaScript in one file, no build step.
const PAGE: &str = include_str!("page.html");

/// The dashboard could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DashboardError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// What the endpoints serve, replaced whole after each round.
#[derive(Debug)]
struct Snapshot {
    graph: Value,
    routes: Value,
    apps: Value,
}

type Shared = Arc<RwLock<Arc<Snapshot>>>;

/// A running dashboard: its server and its refresh loop.
#[derive(Debug)]
pub struct Dashboard {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Dashboard {
    /// Binds `addr` and starts serving (see [`Dashboard::start`]).
    pub async fn bind(addr: SocketAddr, options: Options) -> Result<Self, DashboardError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| DashboardError::Bind { addr, source })?;
        Self::start(listener, options)
    }

    /// Serves the page and the JSON endpoints on `listener`, refreshing every
    /// `options.interval`, until [`Dashboard::shutdown`]. Needs a Tokio runtime.
    pub fn start(listener: TcpListener, options: Options) -> Result<Self, DashboardError> {
        let addr = listener
            .local_addr()
            .map_err(|source| DashboardError::Bind {
                addr: SocketAddr::from(([0, 0, 0, 0], 0)),
                source,
            })?;
        let shared: Shared = Arc::new(RwLock::new(Arc::new(Snapshot {
            graph: json!({"nodes": [], "edges": [], "notes": ["starting"]}),
            routes: json!({"routes": []}),
            apps: json!({"apps": [], "ejections": []}),
        })));
        let (stop, stopped) = watch::channel(false);
        let refresh = tokio::spawn(refresh_loop(options, shared.clone(), stopped.clone()));
        let app = router(shared);
        let mut until = stopped;
        let serve = tokio::spawn(async move {
            let done = async move {
                let _ = until.wait_for(|s| *s).await;
            };
            if let Err(error) = axum::serve(listener, app)
                .with_graceful_shutdown(done)
                .await
            {
                eprintln!("dashboard: server stopped: {error}");
            }
        });
        Ok(Self {
            addr,
            stop,
            tasks: vec![refresh, serve],
        })
    }

    /// The address it serves on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the loop and the server, letting in-flight requests finish.
    pub async fn shutdown(self) {
        self.stop.send_replace(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

fn router(shared: Shared) -> Router {
    Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/api/graph", get(|s: State<Shared>| serve(s, |x| &x.graph)))
        .route(
            "/api/routes",
            get(|s: State<Shared>| serve(s, |x| &x.routes)),
        )
        .route("/api/apps", get(|s: State<Shared>| serve(s, |x| &x.apps)))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(shared)
}

async fn serve(State(shared): State<Shared>, pick: fn(&Snapshot) -> &Value) -> Response {
    let snapshot = match shared.read() {
        Ok(s) => s.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    };
    let mut res = Json(pick(&snapshot)).into_response();
    res.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    res
}

enum Round {
    Scrape(Scraper),
    Prometheus(PromSource),
}

async fn refresh_loop(options: Options, shared: Shared, mut stopped: watch::Receiver<bool>) {
    let fetch = Fetch::new();
    let (mut round, source_name) = match &options.source {
        Source::Scrape(urls) => (
            Round::Scrape(Scraper::new(fetch, urls, options.window)),
            "scrape",
        ),
        Source::Prometheus(url) => (
            Round::Prometheus(PromSource::new(fetch, url, options.window)),
            "prometheus",
        ),
    };
    let mut last_routes: Option<(Vec<RouteView>, String)> = None;
    let kube = if options.kube {
        Some(super::kube::KubeRoutes::start().await)
    } else {
        None
    };
    loop {
        let observed = match &mut round {
            Round::Scrape(s) => s.round().await,
            Round::Prometheus(p) => p.round().await,
        };
        let snapshot = snapshot(
            &options,
            kube.as_ref(),
            source_name,
            observed,
            &mut last_routes,
        )
        .await;
        match shared.write() {
            Ok(mut s) => *s = Arc::new(snapshot),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(snapshot),
        }
        tokio::select! {
            () = tokio::time::sleep(options.interval) => {}
            _ = stopped.wait_for(|s| *s) => return,
        }
    }
}

async fn snapshot(
    options: &Options,
    kube: Option<&Result<super::kube::KubeRoutes, String>>,
    source_name: &str,
    observed: Observed,
    last_routes: &mut Option<(Vec<RouteView>, String)>,
) -> Snapshot {
    let graph = graph::build(&observed.flows, &observed.latencies);
    let mut route_notes = Vec::new();
    if let Some(kube) = kube {
        match kube.as_ref().map(super::kube::KubeRoutes::routes) {
            Ok(Ok(list)) => *last_routes = Some((list, "kubernetes".to_owned())),
            Ok(Err(why)) => route_notes.push(why),
            Err(why) => route_notes.push(format!("kubernetes: cannot connect: {why}")),
        }
    } else if let Some(dir) = &options.config {
        let path = dir.clone();
        match tokio::task::spawn_blocking(move || mesh_core::load::load_paths(&[path])).await {
            Ok(Ok(loaded)) => {
                *last_routes = Some((
                    routes::from_config(&loaded.config),
                    dir.display().to_string(),
                ));
            }
            Ok(Err(errors)) => {
                route_notes.push(format!(
                    "{} refused ({} errors, first: {}); showing the last good routes",
                    dir.display(),
                    errors.errors.len(),
                    errors
                        .errors
                        .first()
                        .map(ToString::to_string)
                        .unwrap_or_default()
                ));
            }
            Err(e) => route_notes.push(format!("loading {}: {e}", dir.display())),
        }
    } else if let Some(app) = observed.apps.iter().find(|a| {
        a.config_dump
            .as_ref()
            .is_some_and(|d| d.get("virtual_services").is_some())
    }) && let Some(dump) = &app.config_dump
    {
        *last_routes = Some((
            routes::from_config_dump(dump),
            format!("{}/config_dump", app.url),
        ));
    }
    let (mut route_list, from) = last_routes.clone().unwrap_or_default();
    if last_routes.is_none() {
        route_notes.push("no routes known yet: pass --config DIR, or scrape an app".to_owned());
    }
    routes::observe(&mut route_list, &graph);
    let mut notes = graph.notes.clone();
    notes.extend(observed.notes.iter().cloned());
    let graph_json = json!({
        "source": source_name,
        "at": observed.at,
        "window_seconds": observed.window_seconds,
        "nodes": graph.nodes,
        "edges": graph.edges,
        "notes": notes,
        "queries": observed.queries,
    });
    Snapshot {
        graph: graph_json,
        routes: json!({ "from": from, "routes": route_list, "notes": route_notes }),
        apps: json!({ "apps": observed.apps, "ejections": observed.ejections }),
    }
}
