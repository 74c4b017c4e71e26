//! The admin listener of each app: Prometheus text at `/metrics`, readiness at `/healthz`, the
//! configuration in force at `/config_dump`.
//!
//! Mesh apps serve the mesh's own metrics (Istio's names and labels). A `--plain` app has no
//! mesh, so it counts requests itself with [`RequestCounter`], under the same metric name
//! `istio_requests_total`, so that tools reading either kind of app work unchanged.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::StatusCode;

/// What the admin listener shows.
pub trait AdminSource: Send + Sync + 'static {
    /// Prometheus text exposition.
    fn metrics(&self) -> String;
    /// The configuration in force, human readable.
    fn config_dump(&self) -> String;
}

/// Readiness flag: `/healthz` answers 200 once set, 503 before and while shutting down.
#[derive(Clone, Debug, Default)]
pub struct Ready(Arc<AtomicBool>);

impl Ready {
    /// Marks the app ready (`true`) or not.
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Release);
    }

    /// Whether the app is ready.
    pub fn get(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// The shared flag itself.
    pub fn flag(&self) -> Arc<AtomicBool> {
        self.0.clone()
    }
}

/// The admin router.
pub fn admin_app(source: Arc<dyn AdminSource>, ready: Ready) -> Router {
    let metrics_source = source.clone();
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let s = metrics_source.clone();
                async move {
                    (
                        [(
                            http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        s.metrics(),
                    )
                }
            }),
        )
        .route(
            "/healthz",
            get(move || {
                let ready = ready.get();
                async move {
                    if ready {
                        (StatusCode::OK, "ready\n")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
                    }
                }
            }),
        )
        .route(
            "/config_dump",
            get(move || {
                let s = source.clone();
                async move { s.config_dump() }
            }),
        )
}

/// Counts answers by status code, lock-free (one atomic per code).
#[derive(Debug)]
pub struct RequestCounter {
    app: String,
    version: String,
    by_code: Vec<AtomicU64>,
}

impl RequestCounter {
    /// A counter for the app `app` at `version`.
    pub fn new(app: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            app: app.into(),
            version: version.into(),
            by_code: (0..600).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Counts one answer.
    pub fn record(&self, status: StatusCode) {
        if let Some(c) = self.by_code.get(usize::from(status.as_u16())) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Answers counted so far, all codes.
    pub fn total(&self) -> u64 {
        self.by_code.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// The counts as Prometheus text.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# HELP istio_requests_total Requests answered by this app (plain mode: counted by the app).\n# TYPE istio_requests_total counter\n",
        );
        for (code, c) in self.by_code.iter().enumerate() {
            let n = c.load(Ordering::Relaxed);
            if n > 0 {
                let _ = writeln!(
                    out,
                    "istio_requests_total{{reporter=\"destination\",destination_app=\"{}\",destination_version=\"{}\",response_code=\"{code}\"}} {n}",
                    self.app, self.version
                );
            }
        }
        out
    }

    /// An axum middleware function counting every answer of the router it wraps.
    pub async fn middleware(
        State(counter): State<Arc<RequestCounter>>,
        req: Request,
        next: Next,
    ) -> Response {
        let res = next.run(req).await;
        counter.record(res.status());
        res.into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_renders_one_line_per_code() {
        let c = RequestCounter::new("service2", "v2");
        c.record(StatusCode::OK);
        c.record(StatusCode::OK);
        c.record(StatusCode::SERVICE_UNAVAILABLE);
        let text = c.render();
        assert!(text.contains("response_code=\"200\"} 2"), "{text}");
        assert!(text.contains("response_code=\"503\"} 1"), "{text}");
        assert_eq!(c.total(), 3);
    }
}
