//! # mesh-tests
//!
//! End-to-end tests of the proxyless mesh: each test in `tests/` starts the article's apps
//! (gateway, service1, service2 v1 and v2, service3, a demo JWT issuer) in-process on
//! 127.0.0.1:0 through [`mesh_examples::lab::Lab`], runs one of the article's scenarios (the very
//! code the demo runs) and asserts on what a user would see.
#![forbid(unsafe_code)]

pub mod kube;

use std::sync::Arc;

pub mod grpc;

pub use mesh_examples::lab::{Lab, LabOptions, Reply};
pub use mesh_examples::scenarios::{self, Outcome, Progress, Quiet};

/// Runs the scenario named `name` and panics with its expectation and observation if it missed
/// (or could not run).
pub async fn assert_scenario(name: &str) -> Outcome {
    let all = scenarios::all();
    let Some((_, run)) = all.iter().find(|(n, _)| *n == name) else {
        panic!("no scenario named {name}");
    };
    let progress: Arc<dyn Progress> = Arc::new(Quiet);
    match run(progress).await {
        Ok(o) => {
            assert!(
                o.passed,
                "scenario {name} missed\n  expected: {}\n  observed: {}",
                o.expected, o.observed
            );
            o
        }
        Err(e) => panic!("scenario {name} could not run: {e}"),
    }
}

/// Resident memory of this test process in KiB (`VmRSS` from `/proc/self/status`; 0 where it
/// cannot be read), for the soak and bad-input tests' memory bounds.
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// The body of `GET url` as text (`None` on any error or after 10 s), e.g. an app's admin
/// `/metrics`.
pub async fn get_text(url: &str) -> Option<String> {
    use http_body_util::BodyExt as _;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let req = http::Request::get(url)
        .body(http_body_util::Empty::new())
        .ok()?;
    let res = tokio::time::timeout(std::time::Duration::from_secs(10), client.request(req))
        .await
        .ok()?
        .ok()?;
    let body = res.into_body().collect().await.ok()?.to_bytes();
    String::from_utf8(body.to_vec()).ok()
}
