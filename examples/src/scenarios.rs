//! The article's scenarios, each run in its own [`Lab`] and judged by what a user would see.
//!
//! The demo prints each [`Outcome`]; the end-to-end tests assert that each one passed. Both run
//! exactly this code.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::app::Faults;
use crate::lab::{Lab, LabError, LabOptions, Reply};

mod retries;
mod rollout;

pub use retries::retries;
pub use rollout::{ab_header_hash, canary};

/// What a scenario expected, what it observed, and whether that is a pass.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The scenario's name.
    pub name: &'static str,
    /// What a user of Istio would expect.
    pub expected: String,
    /// What happened.
    pub observed: String,
    /// Whether the observation meets the expectation.
    pub passed: bool,
}

/// Progress reporting while traffic runs.
pub trait Progress: Send + Sync {
    /// `done` of `total` requests of `label` sent.
    fn tick(&self, label: &str, done: usize, total: usize);
    /// A phase started.
    fn phase(&self, text: &str);
}

/// Reports nothing (tests).
#[derive(Clone, Copy, Debug, Default)]
pub struct Quiet;

impl Progress for Quiet {
    fn tick(&self, _: &str, _: usize, _: usize) {}
    fn phase(&self, _: &str) {}
}

/// A scenario: its name and how to run it.
pub type Scenario = (
    &'static str,
    fn(Arc<dyn Progress>) -> futures_util::future::BoxFuture<'static, Result<Outcome, LabError>>,
);

/// Every scenario, in the article's order.
pub fn all() -> Vec<Scenario> {
    vec![
        ("routing", |p| Box::pin(routing(p))),
        ("jwt", |p| Box::pin(jwt(p))),
        ("mirror", |p| Box::pin(mirror(p))),
        ("split", |p| Box::pin(split(p))),
        ("canary", |p| Box::pin(canary(p))),
        ("ab-header-hash", |p| Box::pin(ab_header_hash(p))),
        ("retries", |p| Box::pin(retries(p))),
        ("mtls", |p| Box::pin(crate::scenarios_mtls::mtls(p))),
        ("grpc", |p| Box::pin(crate::grpc::scenario::grpc(p))),
    ]
}

/// Sends `total` requests through the gateway, `concurrency` at a time; request `i` is
/// `make(i)` = (path, headers).
pub async fn drive(
    lab: &Arc<Lab>,
    label: &str,
    total: usize,
    concurrency: usize,
    make: impl Fn(usize) -> (String, Vec<(&'static str, String)>) + Send + Sync + 'static,
    progress: &Arc<dyn Progress>,
) -> Vec<Reply> {
    let next = Arc::new(AtomicUsize::new(0));
    let make = Arc::new(make);
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (lab, next, make, progress, label) = (
            lab.clone(),
            next.clone(),
            make.clone(),
            progress.clone(),
            label.to_owned(),
        );
        workers.push(tokio::spawn(async move {
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let (path, headers) = make(i);
                out.push((i, lab.get(&path, &headers).await));
                if i % 25 == 0 {
                    progress.tick(&label, i, total);
                }
            }
            out
        }));
    }
    let mut replies = Vec::with_capacity(total);
    for w in workers {
        if let Ok(part) = w.await {
            replies.extend(part);
        }
    }
    progress.tick(label, total, total);
    replies.sort_by_key(|(i, _)| *i);
    replies.into_iter().map(|(_, r)| r).collect()
}

fn share(replies: &[Reply], version: &str) -> f64 {
    if replies.is_empty() {
        return 0.0;
    }
    replies
        .iter()
        .filter(|r| r.upstream_version() == Some(version))
        .count() as f64
        / replies.len() as f64
}

fn failures(replies: &[Reply]) -> usize {
    replies.iter().filter(|r| !r.ok()).count()
}

fn first_failure(replies: &[Reply]) -> String {
    replies
        .iter()
        .find(|r| !r.ok())
        .map(|r| {
            format!(
                " (first: {} {})",
                r.status,
                r.error
                    .clone()
                    .or_else(|| r.json.as_ref().map(ToString::to_string))
                    .unwrap_or_default()
            )
        })
        .unwrap_or_default()
}

fn services_chain(r: &Reply) -> Vec<String> {
    let mut out = Vec::new();
    let mut j = r.json.as_ref();
    while let Some(v) = j {
        if let Some(s) = v.get("service").and_then(|s| s.as_str()) {
            out.push(s.to_owned());
        }
        j = v.get("upstream").filter(|u| !u.is_null());
    }
    out
}

fn trace_chain(r: &Reply) -> Vec<String> {
    let mut out = Vec::new();
    let mut j = r.json.as_ref();
    while let Some(v) = j {
        out.push(
            v.get("trace_id")
                .and_then(|s| s.as_str())
                .unwrap_or("-")
                .to_owned(),
        );
        j = v.get("upstream").filter(|u| !u.is_null());
    }
    out
}

/// Prefix routing at the gateway, and trace context carried along the chain.
pub async fn routing(progress: Arc<dyn Progress>) -> Result<Outcome, LabError> {
    progress.phase("routing: /service1 and /service2 at the gateway");
    let lab = Lab::start("routing", LabOptions::default()).await?;
    let tid = "4bf92f3577b34da6a3ce929d0e0e4736";
    let tp = vec![("traceparent", format!("00-{tid}-00f067aa0ba902b7-01"))];
    let a = lab.get("/service1/hello", &tp).await;
    let b = lab.get("/service2/hello", &[]).await;
    let c = lab.get("/elsewhere", &[]).await;
    lab.stop().await;
    let chain_a = services_chain(&a);
    let chain_b = services_chain(&b);
    let traces = trace_chain(&a);
    let passed = a.status == 200
        && chain_a == ["service1", "service2", "service3"]
        && b.status == 200
        && chain_b == ["service2", "service3"]
        && c.status == 404
        && traces.len() == 3
        && traces.iter().all(|t| t == tid);
    Ok(Outcome {
        name: "routing",
        expected: "/service1 → service1→service2→service3, /service2 → service2→service3, other paths 404; one trace id along the chain".into(),
        observed: format!(
            "/service1: {} {:?}; /service2: {} {:?}; /elsewhere: {}; trace ids {:?}",
            a.status, chain_a, b.status, chain_b, c.status, traces
        ),
        passed,
    })
}

/// The article's origin authentication: no token 401, a valid token 200, a forged one 401.
pub async fn jwt(progress: Arc<dyn Progress>) -> Result<Outcome, LabError> {
    progress.phase("jwt: the article's Policy with the demo issuer");
    let lab = Lab::start("jwt", LabOptions::default()).await?;
    let token = lab
        .issuer()
        .mint("alice", "mesh-demo", Duration::from_secs(600))?;
    let forger = crate::issuer::Issuer::generate(lab.issuer().issuer())?;
    let forged = forger.mint("mallory", "mesh-demo", Duration::from_secs(600))?;
    let none = lab.get("/service1/jwt", &[]).await;
    let good = lab
        .get(
            "/service1/jwt",
            &[("authorization", format!("Bearer {token}"))],
        )
        .await;
    let bad = lab
        .get(
            "/service1/jwt",
            &[("authorization", format!("Bearer {forged}"))],
        )
        .await;
    lab.stop().await;
    let chain = services_chain(&good);
    Ok(Outcome {
        name: "jwt",
        expected: "no token → 401; a token from the issuer → 200 through service1→2→3; a token signed by another key → 401".into(),
        observed: format!("no token {}; valid token {} {:?}; forged token {}", none.status, good.status, chain, bad.status),
        passed: none.status == 401 && good.status == 200 && chain.len() == 3 && bad.status == 401,
    })
}

/// Mirroring: users see v1 only; v2 receives a copy of every request.
pub async fn mirror(progress: Arc<dyn Progress>) -> Result<Outcome, LabError> {
    progress.phase("mirror: users see v1, every request copied to v2");
    let lab = Arc::new(Lab::start("mirror", LabOptions::default()).await?);
    let n = 400;
    let replies = drive(
        &lab,
        "mirror",
        n,
        8,
        |i| (format!("/service1/mirror/{i}"), vec![]),
        &progress,
    )
    .await;
    let v2 = lab.service2_v2.state.clone();
    let count = || v2.as_ref().map_or(0, |s| s.requests());
    // Mirrors are fire and forget: give the last copies a moment to land.
    for _ in 0..40 {
        if count() >= n as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mirrored = count();
    let from_v1 = replies
        .iter()
        .filter(|r| r.upstream_version() == Some("v1"))
        .count();
    stop(lab).await;
    Ok(Outcome {
        name: "mirror",
        expected: format!("all {n} answers from v1; v2 receives ≥ 95% of them as mirrored copies"),
        observed: format!(
            "answers from v1: {from_v1}/{n}; v2 received {mirrored}{}",
            first_failure(&replies)
        ),
        passed: from_v1 == n && mirrored as f64 >= 0.95 * n as f64,
    })
}

/// The 90/10 split.
pub async fn split(progress: Arc<dyn Progress>) -> Result<Outcome, LabError> {
    progress.phase("split: 90% of service2's traffic to v1, 10% to v2");
    let lab = Arc::new(Lab::start("split", LabOptions::default()).await?);
    let n = 1000;
    let replies = drive(
        &lab,
        "split",
        n,
        8,
        |i| (format!("/service1/split/{i}"), vec![]),
        &progress,
    )
    .await;
    stop(lab).await;
    let v2 = share(&replies, "v2");
    let failed = failures(&replies);
    Ok(Outcome {
        name: "split",
        expected: format!("v2 share 0.10 ± 0.03 over {n} requests, no failure"),
        observed: format!(
            "v2 share {v2:.3}, v1 share {:.3}, failures {failed}{}",
            share(&replies, "v1"),
            first_failure(&replies)
        ),
        passed: (v2 - 0.10).abs() <= 0.03 && failed == 0,
    })
}

async fn stop(lab: Arc<Lab>) {
    match Arc::try_unwrap(lab) {
        Ok(lab) => lab.stop().await,
        Err(lab) => tracing::warn!(
            refs = Arc::strong_count(&lab),
            "lab still shared; not stopped"
        ),
    }
}
