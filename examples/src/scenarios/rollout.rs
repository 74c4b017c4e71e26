//! Moving traffic between versions: a canary shifted step by step while requests flow, and A/B
//! routing by a header with a consistent hash keeping each user on one version.

use super::*;

/// A canary moved 90/10 → 50/50 → 0/100 by rewriting the config while traffic flows.
pub async fn canary(progress: Arc<dyn Progress>) -> Result<Outcome, LabError> {
    progress.phase("canary: 90/10 → 50/50 → 0/100 while traffic flows");
    let lab = Arc::new(Lab::start("canary-1-90-10", LabOptions::default()).await?);
    // Tolerances are about 4 standard deviations of the share over `per_step` requests
    // (0.012 at 10 %, 0.020 at 50 %): a correct split passes all but about 1 run in 10 000,
    // a wrong one (90/10 served as 50/50, say) cannot.
    let steps = [
        ("canary-1-90-10", 0.10, 0.05),
        ("canary-2-50-50", 0.50, 0.08),
        ("canary-3-0-100", 1.0, 0.0),
    ];
    let per_step = 600;
    // Phase 2k+1: switching to step k (not measured); phase 2k+2: step k in force (measured).
    let phase = Arc::new(AtomicUsize::new(0));
    let stop_flag = Arc::new(AtomicBool::new(false));
    let log: Arc<std::sync::Mutex<Vec<(usize, Reply)>>> = Arc::default();
    let mut workers = Vec::new();
    for w in 0..6 {
        let (lab, phase, stop_flag, log) =
            (lab.clone(), phase.clone(), stop_flag.clone(), log.clone());
        workers.push(tokio::spawn(async move {
            let mut i = 0usize;
            // Bounded: at most 20 000 requests per worker.
            while !stop_flag.load(Ordering::Relaxed) && i < 20_000 {
                let p = phase.load(Ordering::Acquire);
                let r = lab.get(&format!("/service1/canary/{w}/{i}"), &[]).await;
                if let Ok(mut l) = log.lock() {
                    l.push((p, r));
                }
                i += 1;
            }
        }));
    }
    let count_in = |p: usize| {
        log.lock()
            .map_or(0, |l| l.iter().filter(|(q, _)| *q == p).count())
    };
    let mut result = Ok(());
    for (k, (step, _, _)) in steps.iter().enumerate() {
        phase.store(2 * k + 1, Ordering::Release);
        progress.phase(&format!("canary: applying {step}"));
        if let Err(e) = lab.apply(step) {
            result = Err(e);
            break;
        }
        if let Err(e) = lab.wait_reloaded().await {
            result = Err(e);
            break;
        }
        phase.store(2 * k + 2, Ordering::Release);
        for _ in 0..400 {
            let c = count_in(2 * k + 2);
            progress.tick(step, c.min(per_step), per_step);
            if c >= per_step {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    stop_flag.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.await;
    }
    let lab = Arc::try_unwrap(lab).ok();
    if let Some(lab) = lab {
        lab.stop().await;
    }
    result?;
    let log = log.lock().map(|l| l.clone()).unwrap_or_default();
    let total = log.len();
    let failed: Vec<Reply> = log
        .iter()
        .filter(|(_, r)| !r.ok())
        .map(|(_, r)| r.clone())
        .collect();
    let mut observed = Vec::new();
    let mut passed = failed.is_empty();
    for (k, (step, want, tol)) in steps.iter().enumerate() {
        let in_step: Vec<Reply> = log
            .iter()
            .filter(|(p, _)| *p == 2 * k + 2)
            .map(|(_, r)| r.clone())
            .collect();
        let v2 = share(&in_step, "v2");
        passed &= !in_step.is_empty() && (v2 - want).abs() <= *tol + f64::EPSILON;
        observed.push(format!("{step}: v2 {v2:.2} of {}", in_step.len()));
    }
    Ok(Outcome {
        name: "canary",
        expected:
            "v2 share 0.10 → 0.50 → 1.00 as the VirtualService is rewritten, no failed request"
                .into(),
        observed: format!(
            "{}; {} requests, {} failed{}",
            observed.join(", "),
            total,
            failed.len(),
            first_failure(&failed)
        ),
        passed,
    })
}

/// A/B testing: consistent hashing on the `version` header keeps each user on one version.
pub async fn ab_header_hash(progress: Arc<dyn Progress>) -> Result<Outcome, LabError> {
    progress.phase("ab-header-hash: the same `version` header always reaches the same service2");
    let lab = Arc::new(Lab::start("ab-header-hash", LabOptions::default()).await?);
    let users = 24;
    let per_user = 10;
    let replies = drive(
        &lab,
        "ab",
        users * per_user,
        8,
        move |i| {
            (
                format!("/service1/ab/{i}"),
                vec![("version", format!("user-{}", i % users))],
            )
        },
        &progress,
    )
    .await;
    stop(lab).await;
    let mut seen: BTreeMap<usize, BTreeMap<String, usize>> = BTreeMap::new();
    for (i, r) in replies.iter().enumerate() {
        let v = r.upstream_version().unwrap_or("failed").to_owned();
        *seen.entry(i % users).or_default().entry(v).or_default() += 1;
    }
    let sticky = seen
        .values()
        .filter(|vs| vs.len() == 1 && !vs.contains_key("failed"))
        .count();
    let on_v2 = seen.values().filter(|vs| vs.contains_key("v2")).count();
    let on_v1 = seen.values().filter(|vs| vs.contains_key("v1")).count();
    Ok(Outcome {
        name: "ab-header-hash",
        expected: format!(
            "each of {users} header values always reaches one version; both versions in use"
        ),
        observed: format!(
            "{sticky}/{users} values sticky; values on v1: {on_v1}, on v2: {on_v2}{}",
            first_failure(&replies)
        ),
        passed: sticky == users && on_v1 > 0 && on_v2 > 0,
    })
}
