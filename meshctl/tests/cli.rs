//! Runs the `meshctl` binary on fixture folders (copies of the seed article's manifests and of
//! Istio documentation examples) and checks exit codes and output.
#![allow(clippy::expect_used, clippy::unwrap_used)] // tests: a failed expectation is the test failing

use std::path::PathBuf;
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn meshctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meshctl"))
        .args(args)
        .output()
        .expect("meshctl runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn path(name: &str) -> String {
    fixture(name).display().to_string()
}

#[test]
fn validate_a_good_folder_prints_a_summary_per_kind() {
    let out = meshctl(&["validate", &path("seed-split")]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    for line in [
        "DestinationRule: 1",
        "Gateway: 1",
        "Policy: 1",
        "VirtualService: 2",
    ] {
        assert!(
            stdout.lines().any(|l| l == line),
            "missing `{line}` in:\n{stdout}"
        );
    }
    // The Deployment is skipped with a warning, which names its file and line.
    let stderr = text(&out.stderr);
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("09-deployment-service2-v2.yaml:") && l.contains("warning")),
        "{stderr}"
    );
    assert!(stdout.contains("ok (3 warnings)"), "{stdout}");
}

#[test]
fn validate_several_folders_together() {
    let out = meshctl(&["validate", &path("mirror"), &path("retries")]);
    // Both folders define VirtualService service2: a duplicate is an error.
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("service2"),
        "{}",
        text(&out.stderr)
    );
    let out = meshctl(&["validate", &path("mirror")]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).lines().any(|l| l == "VirtualService: 1"));
}

#[test]
fn validate_a_bad_folder_prints_every_error_with_file_and_line() {
    let out = meshctl(&["validate", &path("invalid")]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains(".yaml:")).collect();
    assert_eq!(errors.len(), 3, "{stderr}");
    assert!(
        errors
            .iter()
            .any(|l| l.contains("reviews.yaml:10:") && l.contains("sum to 80")),
        "{stderr}"
    );
    assert!(
        errors
            .iter()
            .any(|l| l.contains("reviews.yaml:19:") && l.contains("spec.http[0].timeout")),
        "{stderr}"
    );
    assert!(
        errors
            .iter()
            .any(|l| l.contains("typo.yaml:2:") && l.contains("v1b")),
        "{stderr}"
    );
    assert!(text(&out.stdout).is_empty());
}

#[test]
fn usage_errors_exit_with_2() {
    for args in [
        &[][..],
        &["validate"][..],
        &["routes"][..],
        &["frobnicate"][..],
        &["routes", "x", "--bogus"][..],
    ] {
        let out = meshctl(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(text(&out.stderr).contains("Usage"), "{args:?}");
    }
    assert_eq!(meshctl(&["--help"]).status.code(), Some(0));
}

#[test]
fn routes_prints_splits_per_host_and_gateway() {
    let out = meshctl(&["routes", &path("seed-split")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("HOST") && lines[0].contains("DESTINATIONS"),
        "{stdout}"
    );
    let split = lines
        .iter()
        .find(|l| l.starts_with("service2"))
        .expect("service2 row");
    assert!(
        split.contains("mesh") && split.contains("service2 [v1] 90%, service2 [v2] 10%"),
        "{split}"
    );
    let gw: Vec<&&str> = lines
        .iter()
        .filter(|l| l.contains("http-gateway"))
        .collect();
    assert_eq!(gw.len(), 2, "{stdout}");
    assert!(
        gw[0].contains("uri ^= /service1") && gw[0].contains("service1:80"),
        "{stdout}"
    );
    assert!(
        gw[1].contains("uri ^= /service2") && gw[1].contains("service2:80"),
        "{stdout}"
    );
}

#[test]
fn routes_show_mirror_retries_timeout_and_fault() {
    let out = meshctl(&["routes", &path("mirror")]);
    assert!(
        text(&out.stdout).contains("service2 [v2] 100%"),
        "{}",
        text(&out.stdout)
    );
    let out = meshctl(&["routes", &path("retries")]);
    let stdout = text(&out.stdout);
    let row = |host: &str| {
        stdout
            .lines()
            .filter(|l| l.starts_with(host))
            .collect::<Vec<_>>()
    };
    assert!(row("service2")[0].contains("5x per try 10s"), "{stdout}");
    assert!(row("reviews")[0].contains("500ms"), "{stdout}");
    let ratings = row("ratings");
    assert_eq!(ratings.len(), 2, "{stdout}");
    assert!(
        ratings[0].contains("header end-user = jason") && ratings[0].contains("delay 7s 100%"),
        "{stdout}"
    );
    assert!(
        ratings[1].contains("delay 1.5s 10%, abort 500 0.1%"),
        "{stdout}"
    );
}

#[test]
fn routes_filter_by_host_and_json() {
    let out = meshctl(&[
        "routes",
        &path("retries"),
        "--host",
        "ratings.default.svc.cluster.local",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let rows = value.as_array().expect("array");
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter()
            .all(|r| r["host"] == "ratings" && r["gateway"] == "mesh")
    );
    assert_eq!(rows[0]["destinations"][0]["weight"], 100);
    assert_eq!(rows[1]["fault"], "delay 1.5s 10%, abort 500 0.1%");

    let out = meshctl(&["routes", &path("retries"), "--host", "service2", "--json"]);
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let row = &value[0];
    assert_eq!(row["retries"]["attempts"], 5);
    assert_eq!(row["retries"]["per_try_timeout_ms"], 10_000);
    assert_eq!(row["destinations"][0]["subset"], "v1");

    // A gateway VirtualService for `*` covers any host.
    let out = meshctl(&["routes", &path("seed-split"), "--host", "example.com"]);
    let stdout = text(&out.stdout);
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.contains("http-gateway"))
            .count(),
        2,
        "{stdout}"
    );
    assert!(!stdout.contains("mesh "), "{stdout}");
}

#[test]
fn routes_on_a_bad_folder_fail_with_the_errors() {
    let out = meshctl(&["routes", &path("invalid")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("reviews.yaml:10:"));
}
