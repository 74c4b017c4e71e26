//! A small load generator: open-loop at a fixed rate (latency), closed-loop at a fixed
//! concurrency (throughput). Bounded in time; counts errors rather than stopping on them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::Mutex;

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

/// What one load phase measured.
#[derive(Clone, Debug, Default)]
pub(crate) struct PhaseResult {
    /// Requests answered 200.
    pub ok: u64,
    /// Requests that failed or answered otherwise.
    pub errors: u64,
    /// Wall time of the phase.
    pub elapsed: Duration,
    /// Median latency in microseconds.
    pub p50_us: f64,
    /// 99th percentile latency in microseconds.
    pub p99_us: f64,
}

impl PhaseResult {
    /// Successful requests per second.
    pub(crate) fn rps(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

fn client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(256)
        .build(connector)
}

async fn one(client: &HttpClient, uri: &http::Uri) -> Result<(), ()> {
    let req = http::Request::get(uri.clone())
        .body(Empty::new())
        .map_err(|_| ())?;
    let resp = client.request(req).await.map_err(|_| ())?;
    let ok = resp.status() == http::StatusCode::OK;
    resp.into_body().collect().await.map_err(|_| ())?;
    if ok { Ok(()) } else { Err(()) }
}

fn histogram() -> Histogram<u64> {
    // invariant: 1 µs .. 60 s with 3 significant digits is a valid hdrhistogram range.
    #[allow(clippy::expect_used)]
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("invariant: valid histogram bounds")
}

fn finish(hist: &Histogram<u64>, ok: u64, errors: u64, elapsed: Duration) -> PhaseResult {
    PhaseResult {
        ok,
        errors,
        elapsed,
        p50_us: hist.value_at_quantile(0.50) as f64,
        p99_us: hist.value_at_quantile(0.99) as f64,
    }
}

/// Sends `rate` requests per second for `duration` regardless of answers (open loop), measuring
/// latency from the scheduled send time so slow answers cannot hide queueing (no coordinated
/// omission).
///
/// The send times are kept by a dedicated thread sleeping with the OS's high-resolution timer
/// (tens of microseconds late at most), not by Tokio's timer wheel, whose millisecond ticks would
/// add up to a millisecond to every latency; each due request is handed to the runtime at once.
pub(crate) async fn open_loop(
    addr: SocketAddr,
    path: &str,
    rate: u32,
    duration: Duration,
) -> PhaseResult {
    let uri: http::Uri = match format!("http://{addr}{path}").parse() {
        Ok(u) => u,
        Err(_) => return PhaseResult::default(),
    };
    let client = client();
    let hist = Arc::new(Mutex::new(histogram()));
    let ok = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let total = (duration.as_secs_f64() * f64::from(rate)) as u64;
    let start = Instant::now();
    let (due, mut due_rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let pacer = std::thread::spawn(move || {
        for i in 0..total {
            let scheduled = start + interval.mul_f64(i as f64);
            if let Some(wait) = scheduled.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            if due.send(scheduled).is_err() {
                break;
            }
        }
    });
    let mut tasks = tokio::task::JoinSet::new();
    while let Some(scheduled) = due_rx.recv().await {
        let (client, uri, hist, ok, errors) = (
            client.clone(),
            uri.clone(),
            hist.clone(),
            ok.clone(),
            errors.clone(),
        );
        tasks.spawn(async move {
            let res = tokio::time::timeout(Duration::from_secs(10), one(&client, &uri)).await;
            let micros = scheduled.elapsed().as_micros().min(60_000_000) as u64;
            match res {
                Ok(Ok(())) => {
                    ok.fetch_add(1, Ordering::Relaxed);
                    let _ = hist.lock().await.record(micros.max(1));
                }
                _ => {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        // Reap finished tasks so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
    let _ = pacer.join();
    while tasks.join_next().await.is_some() {}
    let elapsed = start.elapsed();
    let hist = hist.lock().await;
    finish(
        &hist,
        ok.load(Ordering::Relaxed),
        errors.load(Ordering::Relaxed),
        elapsed,
    )
}

/// Runs `concurrency` workers sending back to back for `duration` (closed loop): throughput.
pub(crate) async fn closed_loop(
    addr: SocketAddr,
    path: &str,
    concurrency: usize,
    duration: Duration,
) -> PhaseResult {
    let uri: http::Uri = match format!("http://{addr}{path}").parse() {
        Ok(u) => u,
        Err(_) => return PhaseResult::default(),
    };
    let client = client();
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (client, uri) = (client.clone(), uri.clone());
        tasks.spawn(async move {
            let mut hist = histogram();
            let (mut ok, mut errors) = (0u64, 0u64);
            while Instant::now() < deadline {
                let sent = Instant::now();
                match tokio::time::timeout(Duration::from_secs(10), one(&client, &uri)).await {
                    Ok(Ok(())) => {
                        ok += 1;
                        let _ = hist.record((sent.elapsed().as_micros() as u64).max(1));
                    }
                    _ => errors += 1,
                }
            }
            (hist, ok, errors)
        });
    }
    let mut hist = histogram();
    let (mut ok, mut errors) = (0, 0);
    while let Some(joined) = tasks.join_next().await {
        if let Ok((h, o, e)) = joined {
            let _ = hist.add(&h);
            ok += o;
            errors += e;
        }
    }
    finish(&hist, ok, errors, start.elapsed())
}
