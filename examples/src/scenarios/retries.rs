//! Retries: a failing version rescued by the VirtualService's retry policy.

use super::*;

/// Retries: v1 fails every other request; without retries half the calls fail, with the
/// article's `attempts: 5` at least 99% succeed.
pub async fn retries(progress: Arc<dyn Progress>) -> Result<Outcome, LabError> {
    progress.phase("retries: service2 v1 fails every other request (503)");
    let faults = Faults {
        error_rate: 0.5,
        ..Faults::default()
    };
    let lab = Arc::new(
        Lab::start(
            "retries",
            LabOptions {
                v1_faults: faults,
                ..LabOptions::default()
            },
        )
        .await?,
    );
    let n = 400;
    // Baseline: the same route with retries switched off.
    let text = std::fs::read_to_string(lab.config_dir().join("08-virtualservice-retries.yaml"))
        .map_err(|source| LabError::Io {
            path: lab.config_dir().into(),
            source,
        })?;
    lab.write_file(
        "08-virtualservice-retries.yaml",
        &text.replace("attempts: 5", "attempts: 0"),
    )?;
    lab.wait_reloaded().await?;
    // Two callers at a time: the default retry budget (20% of requests in flight, at least 3
    // concurrent retries, as Envoy's retry budget) then admits every retry.
    let before = drive(
        &lab,
        "no retries",
        n,
        2,
        |i| (format!("/service1/retry/{i}"), vec![]),
        &progress,
    )
    .await;
    progress.phase("retries: the article's retries (attempts: 5, perTryTimeout: 10s)");
    lab.apply("retries")?;
    lab.wait_reloaded().await?;
    let after = drive(
        &lab,
        "retries",
        n,
        2,
        |i| (format!("/service1/retry/{i}"), vec![]),
        &progress,
    )
    .await;
    stop(lab).await;
    let ok_before = (n - failures(&before)) as f64 / n as f64;
    let ok_after = (n - failures(&after)) as f64 / n as f64;
    Ok(Outcome {
        name: "retries",
        expected: "without retries ≈ 50% succeed; with attempts: 5 (2 callers, within the default retry budget), ≥ 99% succeed".into(),
        observed: format!("success without retries {ok_before:.3}, with retries {ok_after:.3}{}", first_failure(&after)),
        passed: ok_after >= 0.99 && ok_before < 0.9,
    })
}
