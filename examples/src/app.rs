//! The article's service handler, shared by service1, service2 and service3.
//!
//! Every service answers any path with `{"service", "version", "path", "trace_id", "upstream"}`.
//! A service with an upstream calls it (service1 → service2 → service3), forwarding the headers
//! Istio's Bookinfo apps forward, and puts the callee's JSON in `upstream`. When that call fails it
//! answers 502 with `{"service", "error", "upstream_status"}`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde_json::{Value, json};

use crate::upstream::Upstream;

/// Headers a service copies from its request onto its upstream call (as Bookinfo does).
pub const FORWARDED_HEADERS: [&str; 5] = [
    "authorization",
    "end-user",
    "version",
    "x-request-id",
    "traceparent",
];

/// Upper bound on an upstream answer read into memory.
const MAX_UPSTREAM_BODY: usize = 1 << 20;

/// Which requests a service fails on purpose (`--error-rate`, `--error-status`, `--error-seed`).
#[derive(Clone, Copy, Debug)]
pub struct Faults {
    /// Fraction of requests answered with `status`, in `0.0..=1.0`.
    pub error_rate: f64,
    /// The status those requests get.
    pub status: StatusCode,
    /// The gRPC status failed gRPC calls get (`--error-grpc-status`, default 14 UNAVAILABLE).
    pub grpc_status: u32,
    /// `None`: failures evenly spread (request n fails when `floor((n+1)·rate) > floor(n·rate)`,
    /// so exactly that fraction of every run fails). `Some(seed)`: failures drawn by hashing the
    /// request number with this seed: pseudo-random, but the same sequence every run.
    pub seed: Option<u64>,
    /// Added to every answer before anything else.
    pub latency: Duration,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            error_rate: 0.0,
            status: StatusCode::SERVICE_UNAVAILABLE,
            grpc_status: 14,
            seed: None,
            latency: Duration::ZERO,
        }
    }
}

impl Faults {
    /// Whether the `n`-th request (0-based) is failed on purpose.
    pub fn fails(&self, n: u64) -> bool {
        let rate = self.error_rate.clamp(0.0, 1.0);
        if rate <= 0.0 {
            return false;
        }
        match self.seed {
            None => {
                let n = n as f64;
                ((n + 1.0) * rate).floor() > (n * rate).floor()
            }
            Some(seed) => {
                let h = xxhash_rust::xxh3::xxh3_64_with_seed(&n.to_le_bytes(), seed);
                (h as f64 / u64::MAX as f64) < rate
            }
        }
    }
}

/// What one service is: its name, version, faults and (optional) upstream.
pub struct AppState {
    /// `service1`, `service2`, `service3`.
    pub service: String,
    /// `v1`, `v2`.
    pub version: String,
    /// The host it calls (`service2` for service1...), with the client that calls it.
    pub upstream: Option<(String, Arc<dyn Upstream>)>,
    /// Failures and latency added on purpose.
    pub faults: Faults,
    requests: AtomicU64,
}

impl AppState {
    /// A service named `service` at `version`.
    pub fn new(service: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            service: service.into(),
            version: version.into(),
            upstream: None,
            faults: Faults::default(),
            requests: AtomicU64::new(0),
        }
    }

    /// Calls `host` through `client` for each request.
    pub fn with_upstream(mut self, host: impl Into<String>, client: Arc<dyn Upstream>) -> Self {
        self.upstream = Some((host.into(), client));
        self
    }

    /// Adds failures and latency.
    pub fn with_faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// How many requests the handler has seen.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Counts one more request (HTTP or gRPC: both draw from one sequence) and returns its
    /// number, 0-based.
    pub fn next_request(&self) -> u64 {
        self.requests.fetch_add(1, Ordering::Relaxed)
    }
}

/// The handler as a `Router` answering every path: no socket, no mesh layers.
pub fn app(state: Arc<AppState>) -> Router {
    Router::new().fallback(handle).with_state(state)
}

/// The upstream host each article service calls: service1 → service2 → service3 → nothing.
pub fn upstream_of(service: &str) -> Option<&'static str> {
    match service {
        "service1" => Some("service2"),
        "service2" => Some("service3"),
        _ => None,
    }
}

async fn handle(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let n = st.next_request();
    if !st.faults.latency.is_zero() {
        tokio::time::sleep(st.faults.latency).await;
    }
    if st.faults.fails(n) {
        let body = json!({"service": st.service, "error": "failure injected by --error-rate", "upstream_status": null});
        return (st.faults.status, axum::Json(body)).into_response();
    }
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let mut forwarded = forwarded_headers(req.headers());
    // The mesh's trace layer hands over the server span's context; without the mesh (--plain),
    // the incoming traceparent is all there is.
    let from_mesh =
        mesh_telemetry::TraceContext::from_extensions(req.extensions()).map(|c| c.trace_id_hex());
    let trace_id = match from_mesh.or_else(|| trace_id_of(req.headers())) {
        Some(id) => id,
        None => {
            let (id, header) = new_traceparent();
            forwarded.insert(HeaderName::from_static("traceparent"), header);
            id
        }
    };
    let upstream = match &st.upstream {
        None => Value::Null,
        Some((host, client)) => {
            match call_upstream(client.as_ref(), host, &path, forwarded).await {
                Ok(v) => v,
                Err((error, status)) => {
                    tracing::debug!(service = %st.service, %error, ?status, "upstream call failed");
                    let body =
                        json!({"service": st.service, "error": error, "upstream_status": status});
                    return (StatusCode::BAD_GATEWAY, axum::Json(body)).into_response();
                }
            }
        }
    };
    let body = json!({
        "service": st.service,
        "version": st.version,
        "path": path,
        "trace_id": trace_id,
        "upstream": upstream,
    });
    axum::Json(body).into_response()
}

/// Calls `http://{host}{path}`; a non-2xx answer or an unreadable body is an error with the
/// upstream's status (when there was one).
async fn call_upstream(
    client: &dyn Upstream,
    host: &str,
    path: &str,
    headers: HeaderMap,
) -> Result<Value, (String, Option<u16>)> {
    let uri = format!("http://{host}{path}");
    let mut req = http::Request::builder()
        .uri(uri.as_str())
        .body(Body::empty())
        .map_err(|e| (format!("bad upstream uri {uri}: {e}"), None))?;
    *req.headers_mut() = headers;
    let res = client
        .call(req)
        .await
        .map_err(|e| (format!("calling {host}: {e}"), None))?;
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), MAX_UPSTREAM_BODY)
        .await
        .map_err(|e| {
            (
                format!("reading {host}'s answer: {e}"),
                Some(status.as_u16()),
            )
        })?;
    if !status.is_success() {
        return Err((format!("{host} answered {status}"), Some(status.as_u16())));
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        (
            format!("{host} answered non-json: {e}"),
            Some(status.as_u16()),
        )
    })
}

/// The headers of [`FORWARDED_HEADERS`] that `incoming` has.
pub fn forwarded_headers(incoming: &HeaderMap) -> HeaderMap {
    forwarded_headers_in(incoming, HeaderMap::new())
}

/// The headers of [`FORWARDED_HEADERS`] that `incoming` has, appended to `out` (a map made
/// with room for the headers the caller adds later keeps it from growing on the way out).
pub fn forwarded_headers_in(incoming: &HeaderMap, mut out: HeaderMap) -> HeaderMap {
    for name in FORWARDED_HEADERS {
        for v in incoming.get_all(name) {
            out.append(HeaderName::from_static(name), v.clone());
        }
    }
    out
}

/// The trace id of a W3C `traceparent` header (`00-<32 hex>-<16 hex>-<2 hex>`), when valid.
pub fn trace_id_of(headers: &HeaderMap) -> Option<String> {
    let v = headers.get("traceparent")?.to_str().ok()?;
    let mut parts = v.split('-');
    let _version = parts.next()?;
    let id = parts.next()?;
    let valid = id.len() == 32
        && id.bytes().all(|b| b.is_ascii_hexdigit())
        && id.bytes().any(|b| b != b'0');
    valid.then(|| id.to_ascii_lowercase())
}

/// A fresh trace: its id and the `traceparent` header that starts it.
pub fn new_traceparent() -> (String, HeaderValue) {
    let trace: u128 = rand::random::<u128>() | 1;
    let span: u64 = rand::random::<u64>() | 1;
    let id = format!("{trace:032x}");
    let header = format!("00-{id}-{span:016x}-01");
    // invariant: the string is ASCII hex digits and dashes, always a valid header value.
    let value = HeaderValue::from_str(&header).unwrap_or_else(|_| {
        HeaderValue::from_static("00-00000000000000000000000000000001-0000000000000001-01")
    });
    (id, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_faults_fail_exactly_the_fraction() {
        let f = Faults {
            error_rate: 0.5,
            ..Faults::default()
        };
        let fails: Vec<bool> = (0..6).map(|n| f.fails(n)).collect();
        assert_eq!(fails, [false, true, false, true, false, true]);
        let f = Faults {
            error_rate: 0.1,
            ..Faults::default()
        };
        assert_eq!((0..1000).filter(|&n| f.fails(n)).count(), 100);
    }

    #[test]
    fn seeded_faults_repeat_and_approach_the_rate() {
        let f = Faults {
            error_rate: 0.3,
            seed: Some(7),
            ..Faults::default()
        };
        let a: Vec<bool> = (0..2000).map(|n| f.fails(n)).collect();
        let b: Vec<bool> = (0..2000).map(|n| f.fails(n)).collect();
        assert_eq!(a, b);
        let share = a.iter().filter(|x| **x).count() as f64 / 2000.0;
        assert!((share - 0.3).abs() < 0.05, "share {share}");
    }

    #[test]
    fn trace_id_needs_a_valid_traceparent() {
        let mut h = HeaderMap::new();
        assert_eq!(trace_id_of(&h), None);
        h.insert(
            "traceparent",
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        assert_eq!(
            trace_id_of(&h).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        h.insert(
            "traceparent",
            HeaderValue::from_static("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
        );
        assert_eq!(trace_id_of(&h), None);
    }
}
