//! A config reload under traffic: the in-process hop ([`mesh_examples::hop`]) with every mesh
//! layer, and 1 000 more VirtualServices and DestinationRules in its folder, changed 20 times
//! while requests keep coming. Prints, as JSON, how long a reload takes to apply (read, parse,
//! compile, the namespace's view and the route table prepared, swap, then the first request), the
//! time from a file write to the watcher's swap (its 200 ms debounce included), and the p50/p99
//! of requests without reloads and during them. `reload_ms` is the watcher's reload itself, as
//! the store records it ([`mesh_core::watch::ReloadStatus::took`]: read, parse and compile the
//! changed documents, prepare, swap), without the debounce.
//!
//! ```sh
//! cargo build --release -p mesh-examples --example hop_reload
//! target/release/examples/hop_reload            # 1000 VirtualServices + DestinationRules, 20 reloads
//! target/release/examples/hop_reload 100 5
//! target/release/examples/hop_reload 1000 20 one   # each reload changes one VirtualService
//! ```
//!
//! Each reload rewrites the file with every VirtualService's timeout changed (`all`, the
//! default), or only the first one's (`one`); the DestinationRules never change.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mesh_examples::hop::{HopMode, InProcessHop};

/// `n` VirtualServices (a header match, a 90/10 split, retries, a timeout) and their
/// DestinationRules; `round` changes a timeout (every VirtualService's, or with `one` the
/// first one's) so each reload is a real change.
fn bulk(n: usize, round: usize, one: bool) -> String {
    let mut s = String::new();
    for i in 0..n {
        let round = if one && i > 0 { 0 } else { round };
        let _ = write!(
            s,
            "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: bulk{i}}}
spec:
  hosts: [bulk{i}]
  http:
  - match: [{{headers: {{end-user: {{exact: user{i}}}}}, uri: {{prefix: /api/v{i}}}}}]
    route: [{{destination: {{host: bulk{i}, subset: v2}}}}]
    timeout: {t}ms
  - route:
    - {{destination: {{host: bulk{i}, subset: v1}}, weight: 90}}
    - {{destination: {{host: bulk{i}, subset: v2}}, weight: 10}}
    retries: {{attempts: 3, perTryTimeout: 500ms, retryOn: \"5xx,connect-failure\"}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: bulk{i}}}
spec:
  host: bulk{i}
  trafficPolicy:
    outlierDetection: {{consecutive5xxErrors: 5, interval: 10s}}
  subsets:
  - {{name: v1, labels: {{version: v1}}}}
  - {{name: v2, labels: {{version: v2}}}}
---
",
            t = 1000 + round
        );
    }
    s
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e6)
}

/// Sends requests back to back until `stop`, returning each one's latency.
fn traffic(rt: &tokio::runtime::Runtime, hop: &InProcessHop, stop: &AtomicBool) -> Vec<Duration> {
    rt.block_on(async {
        let mut out = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let t = Instant::now();
            assert!(hop.request().await.unwrap().is_success());
            out.push(t.elapsed());
            // Leave the other core to the reloads, as a service at moderate load would.
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        out
    })
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(1000);
    let reloads = args.get(1).copied().unwrap_or(20);
    let one = std::env::args().any(|a| a == "one");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let hop = rt
        .block_on(async { InProcessHop::start(HopMode::Mesh) })
        .unwrap();
    let mesh = hop.mesh().unwrap().clone();
    let file = mesh.dir().join("20-bulk.yaml");
    std::fs::write(&file, bulk(n, 0, one)).unwrap();
    mesh.reload().unwrap();
    assert!(rt.block_on(hop.request()).unwrap().is_success());
    assert!(mesh.config().virtual_services.len() > n);
    // Let the watcher's own reload of that write come and go.
    std::thread::sleep(Duration::from_secs(1));

    // Applied: a reload of the folder (read, parse, compile, the view and route table prepared
    // by the store's hooks, swap) plus the first request on the new snapshot. The folder does
    // not change here, so the watcher stays out of it.
    let mut applied = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        mesh.reload().unwrap();
        assert!(rt.block_on(hop.request()).unwrap().is_success());
        applied.push(t.elapsed());
    }

    // Without reloads.
    let stop = Arc::new(AtomicBool::new(false));
    let timer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(3));
            stop.store(true, Ordering::Relaxed);
        })
    };
    let mut idle = traffic(&rt, &hop, &stop);
    timer.join().unwrap();

    // During reloads: the folder changes `reloads` times and the mesh's own watcher reloads it
    // (after its 200 ms debounce, on the runtime's blocking pool), as in a running app.
    stop.store(false, Ordering::Relaxed);
    let reloader = {
        let (stop, mesh, file) = (stop.clone(), mesh.clone(), file.clone());
        std::thread::spawn(move || {
            let (mut took, mut work) = (Vec::new(), Vec::new());
            for round in 1..=reloads {
                let before = mesh.store().generation();
                std::fs::write(&file, bulk(n, round, one)).unwrap();
                let t = Instant::now();
                while mesh.store().generation() == before && t.elapsed() < Duration::from_secs(30) {
                    std::thread::sleep(Duration::from_millis(1));
                }
                took.push(t.elapsed());
                // the reload's own time (read to swap), recorded by the store just after the swap
                let reload = loop {
                    match mesh.store().last_reload() {
                        Some(r)
                            if r.generation > before || t.elapsed() > Duration::from_secs(30) =>
                        {
                            break r.took;
                        }
                        _ => std::thread::sleep(Duration::from_millis(1)),
                    }
                };
                work.push(reload);
                std::thread::sleep(Duration::from_millis(100));
            }
            stop.store(true, Ordering::Relaxed);
            (took, work)
        })
    };
    let mut during = traffic(&rt, &hop, &stop);
    let (mut took, mut work) = reloader.join().unwrap();

    for v in [&mut idle, &mut during, &mut took, &mut work, &mut applied] {
        v.sort();
    }
    let ms = |d: &Duration| d.as_secs_f64() * 1e3;
    println!(
        "{{\"virtual_services\":{n},\"reloads\":{reloads},\"changed\":\"{}\",\"write_to_swap_ms_median\":{:.1},\"write_to_swap_ms_max\":{:.1},\"reload_ms_median\":{:.1},\"reload_ms_max\":{:.1},\"applied_ms_median\":{:.1},\"applied_ms_max\":{:.1},\"requests_idle\":{},\"p50_us_idle\":{:.0},\"p99_us_idle\":{:.0},\"requests_reloading\":{},\"p50_us_reloading\":{:.0},\"p99_us_reloading\":{:.0}}}",
        if one { "one" } else { "all" },
        ms(&took[took.len() / 2]),
        ms(took.last().unwrap()),
        ms(&work[work.len() / 2]),
        ms(work.last().unwrap()),
        ms(&applied[applied.len() / 2]),
        ms(applied.last().unwrap()),
        idle.len(),
        percentile(&idle, 0.5),
        percentile(&idle, 0.99),
        during.len(),
        percentile(&during, 0.5),
        percentile(&during, 0.99),
    );
}
