//! The dashboard's page in a real headless Chromium (Debian's `chromium`): with the demo lab
//! running and traffic through it, the page's JavaScript fetches `/api/graph` and draws every
//! node and edge of the graph as SVG, the routes and the apps; a screenshot is written to
//! `$CARGO_TARGET_TMPDIR/dashboard.png` (docs/images/dashboard.png is one). Skips, saying why,
//! when `chromium` is not installed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use mesh_examples::app::Faults;
use mesh_examples::lab::LabOptions;
use meshctl::dashboard::{Dashboard, Options, Source};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_draws_the_running_graph() {
    let Some(bin) = chromium() else {
        println!("skipped: no chromium; install it with `apt-get install -y chromium`");
        return;
    };
    // A quarter of v2's answers are 503: its edge is drawn as failing.
    let lab = lab_with(LabOptions {
        v2_faults: Faults {
            error_rate: 0.25,
            status: http::StatusCode::SERVICE_UNAVAILABLE,
            ..Faults::default()
        },
        ..LabOptions::default()
    })
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let options = Options {
        interval: Duration::from_millis(300),
        ..Options::new(Source::Scrape(admin_urls(&lab)))
    };
    let dash = Dashboard::start(listener, options).unwrap();
    let url = format!("http://{}/", dash.local_addr());
    let traffic = Traffic::start(lab.clone(), 20_000);
    traffic.wait_sent(200).await;
    wait_complete(dash.local_addr()).await;

    let profile = tempfile::tempdir().unwrap();
    let (bin_, dir, u) = (bin.to_owned(), profile.path().to_owned(), url.clone());
    let out = tokio::task::spawn_blocking(move || {
        run_chromium(&bin_, &dir, &["--dump-dom".to_owned()], &u)
    })
    .await
    .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for id in NODES {
        assert!(
            dom.contains(&format!("data-id=\"{id}\"")),
            "node {id} not drawn:\n{dom}"
        );
    }
    for (s, t) in EDGES {
        assert!(
            dom.contains(&format!("data-source=\"{s}\" data-target=\"{t}\"")),
            "edge {s} -> {t} not drawn:\n{dom}"
        );
    }
    assert!(dom.contains(" rps · "), "edge labels missing:\n{dom}");
    let drawn = |s: &str, t: &str| {
        let start = dom
            .find(&format!("data-source=\"{s}\" data-target=\"{t}\""))
            .unwrap();
        let end = start + dom[start..].find("</g>").unwrap();
        dom[start..end].to_owned()
    };
    assert!(drawn("service1:v1", "service2:v1").contains("· 0% 5xx"));
    let failing = drawn("service1:v1", "service2:v2");
    assert!(
        !failing.contains("· 0% 5xx") && failing.contains("5xx"),
        "{failing}"
    );
    assert!(
        failing.contains("var(--bad)"),
        "a 25% 5xx edge is drawn red: {failing}"
    );
    assert!(
        dom.contains("class=\"route-destination\""),
        "routes missing:\n{dom}"
    );
    assert!(dom.contains("class=\"app\""), "apps missing:\n{dom}");
    assert!(dom.contains("from scrape"), "header not filled in:\n{dom}");

    let shot: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    let _ = std::fs::remove_file(&shot);
    let (bin_, dir, u, s) = (bin.to_owned(), profile.path().to_owned(), url, shot.clone());
    let out = tokio::task::spawn_blocking(move || {
        run_chromium(&bin_, &dir, &[format!("--screenshot={}", s.display())], &u)
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    println!("screenshot: {}", shot.display());

    traffic.stop().await;
    dash.shutdown().await;
    stop_lab(lab).await;
}
