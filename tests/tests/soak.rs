//! Reliability: a 60 s soak at a steady rate through the whole article stack.
//!
//! The gateway, service1, service2 v1 and v2 (every request mirrored to v2) and service3 run
//! in-process; a client sends a steady 150 requests per second through the gateway for 60 s.
//! What it proves: no request fails, and the process's resident memory after the soak is within
//! 5 % of what it was once warm (caches, pools and metric series filled), i.e. nothing grows per
//! request. Bounded: 60 s of load, at most 9 000 requests.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use mesh_tests::{Lab, LabOptions, rss_kib};

const RATE: u32 = 150;
const WARM: Duration = Duration::from_secs(10);
const SOAK: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_second_soak_keeps_memory_flat() {
    let lab = Lab::start("mirror", LabOptions::default())
        .await
        .expect("lab starts");
    let interval = Duration::from_secs_f64(1.0 / f64::from(RATE));
    let start = Instant::now();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut warm_rss = None;
    let (mut sent, mut failed) = (0u64, Vec::new());
    let mut in_flight = tokio::task::JoinSet::new();
    let lab = std::sync::Arc::new(lab);
    while start.elapsed() < SOAK {
        ticker.tick().await;
        if warm_rss.is_none() && start.elapsed() >= WARM {
            warm_rss = Some(rss_kib());
        }
        let lab = lab.clone();
        sent += 1;
        in_flight
            .spawn(async move { lab.get(&format!("/service1/soak/{}", sent % 16), &[]).await });
        while let Some(done) = in_flight.try_join_next() {
            let reply = done.unwrap();
            if !reply.ok() {
                failed.push(reply);
            }
        }
    }
    while let Some(done) = in_flight.join_next().await {
        let reply = done.unwrap();
        if !reply.ok() {
            failed.push(reply);
        }
    }
    let end_rss = rss_kib();
    let warm_rss = warm_rss.expect("warm-up point reached");
    eprintln!(
        "soak: {sent} requests ({:.0}/s), {} failed, RSS warm {warm_rss} KiB, end {end_rss} KiB",
        sent as f64 / SOAK.as_secs_f64(),
        failed.len()
    );
    // The rate is a target, not a promise on a shared 2-core machine (ticks are delayed, never
    // bunched, when the machine is busy): require enough traffic for the memory figure to mean
    // something, and report what was achieved.
    assert!(
        sent >= 1_000,
        "the soak sent too little to say anything: {sent}"
    );
    assert!(
        failed.is_empty(),
        "{} requests failed, first: {:?}",
        failed.len(),
        failed.first()
    );
    let growth = end_rss as f64 / warm_rss.max(1) as f64 - 1.0;
    assert!(
        growth < 0.05,
        "RSS grew {:.1} % during the soak ({warm_rss} → {end_rss} KiB)",
        growth * 100.0
    );
    if let Ok(lab) = std::sync::Arc::try_unwrap(lab) {
        lab.stop().await;
    }
}
