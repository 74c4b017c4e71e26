#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed expectation is the test failing

use std::time::Duration;

use super::*;

/// Safety bound against a hang; never an assertion on how long things take.
const BOUND: Duration = Duration::from_secs(20);

const VS: &str = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: service2\nspec:\n  hosts: [service2]\n  http:\n  - route:\n    - destination:\n        host: service2\n";
const BAD_VS: &str = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: service2\nspec:\n  hosts: [service2]\n  http:\n  - timeout: banana\n    route:\n    - destination:\n        host: service2\n";

/// Watches `dir` for `store` with a short quiet period, for as long as the handle lives.
fn watch_quickly(store: &ConfigStore, dir: &Path) -> WatchHandle {
    store
        .watch_paths_with(
            &[dir],
            WatchOptions::default().debounce(Duration::from_millis(50)),
        )
        .unwrap()
}

/// Waits for the store's next applied reload.
async fn next_reload(rx: &mut watch::Receiver<u64>) {
    tokio::time::timeout(BOUND, rx.changed())
        .await
        .expect("no reload")
        .unwrap();
}

#[test]
fn store_swaps_and_counts_generations() {
    let store = ConfigStore::new(MeshConfig::default());
    let mut rx = store.subscribe();
    assert_eq!(store.generation(), 1);
    let before = store.snapshot();
    let mut next = MeshConfig::default();
    next.destinations.insert(
        "x".into(),
        Arc::new(crate::policy::DestinationPolicy {
            origin: crate::policy::Origin::default(),
            host: "x".into(),
            traffic_policy: crate::policy::TrafficPolicy::default(),
            subsets: Vec::new(),
        }),
    );
    assert_eq!(store.store(next), 2);
    assert!(rx.has_changed().unwrap());
    assert_eq!(*rx.borrow_and_update(), 2);
    // The snapshot taken before the swap is untouched; a new one sees the new config.
    assert!(before.destinations.is_empty());
    assert_eq!(store.snapshot().destinations.len(), 1);
    assert_eq!(store.load().destinations.len(), 1);
    // Clones share the config.
    assert_eq!(store.clone().generation(), 2);
}

#[tokio::test]
async fn a_changed_folder_is_reloaded() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vs.yaml");
    std::fs::write(&file, VS).unwrap();
    let store = ConfigStore::from_paths(&[dir.path()]).unwrap();
    assert!(store.last_reload().unwrap().is_ok());
    let mut rx = store.subscribe();
    let generation = store.generation();
    let _handle = watch_quickly(&store, dir.path());
    std::fs::write(
        dir.path().join("more.yaml"),
        VS.replace("service2", "service3"),
    )
    .unwrap();
    next_reload(&mut rx).await;
    assert!(store.generation() > generation);
    let status = store.last_reload().unwrap();
    assert!(status.is_ok());
    assert_eq!(status.generation, store.generation());
    // the time of the reload itself, far below the debounce and the test's wait
    assert!(status.took > Duration::ZERO && status.took < Duration::from_secs(30));
}

#[test]
fn a_bad_config_is_refused_and_the_last_good_one_kept() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("vs.yaml"), VS).unwrap();
    let store = ConfigStore::from_paths(&[dir.path()]).unwrap();
    assert_eq!(store.load().virtual_services.len(), 1);
    std::fs::write(dir.path().join("vs.yaml"), BAD_VS).unwrap();
    let errors = store.reload_from(&[dir.path()]).unwrap_err();
    assert!(!errors.errors.is_empty());
    assert_eq!(store.generation(), 1);
    assert_eq!(store.load().virtual_services.len(), 1);
    assert!(store.load().virtual_services[0].http[0].timeout.is_none());
    let status = store.last_reload().unwrap();
    assert!(
        !status.is_ok() && status.errors[0].file.ends_with("vs.yaml"),
        "{status:?}"
    );
}

#[tokio::test]
async fn the_watcher_applies_good_changes_and_refuses_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("vs.yaml"), VS).unwrap();
    let store = ConfigStore::from_paths(&[dir.path()]).unwrap();
    let mut rx = store.subscribe();
    let _handle = watch_quickly(&store, dir.path());

    std::fs::write(
        dir.path().join("more.yaml"),
        VS.replace("service2", "service3"),
    )
    .unwrap();
    next_reload(&mut rx).await;
    assert_eq!(store.load().virtual_services.len(), 2);
    let good = store.generation();

    let at = store.last_reload().unwrap().at;
    std::fs::write(
        dir.path().join("more.yaml"),
        BAD_VS.replace("service2", "service3"),
    )
    .unwrap();
    // A refused reload does not notify subscribers: wait for its status instead.
    let refused = tokio::time::timeout(BOUND, async {
        loop {
            match store.last_reload() {
                Some(s) if s.at != at && !s.is_ok() => return s,
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    })
    .await
    .expect("no reload attempt");
    assert_eq!(refused.generation, good);
    assert_eq!(store.generation(), good);
    assert_eq!(store.load().virtual_services.len(), 2);
}

/// A folder of two valid VirtualServices: `a.yaml` (service2) and `b.yaml` (service3).
fn two_virtual_services() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), VS).unwrap();
    std::fs::write(
        dir.path().join("b.yaml"),
        VS.replace("service2", "service3"),
    )
    .unwrap();
    dir
}

#[test]
fn a_partial_change_still_reports_every_error_of_the_unchanged_files() {
    let dir = two_virtual_services();
    let store = ConfigStore::from_paths(&[dir.path()]).unwrap();
    std::fs::write(dir.path().join("a.yaml"), BAD_VS).unwrap();
    let first = store.reload_from(&[dir.path()]).unwrap_err().errors;
    assert!(
        first.iter().all(|e| e.file.ends_with("a.yaml")),
        "{first:?}"
    );
    // b.yaml changes (still valid), a.yaml does not: a.yaml's errors are all still there,
    // at the same lines, and the last good config stays
    std::fs::write(
        dir.path().join("b.yaml"),
        VS.replace("service2", "service4"),
    )
    .unwrap();
    let second = store.reload_from(&[dir.path()]).unwrap_err().errors;
    assert_eq!(first, second);
    assert_eq!(store.generation(), 1);
    assert!(
        store
            .load()
            .virtual_services
            .iter()
            .any(|v| v.hosts == ["service3"])
    );
    // and once a.yaml is fixed, the change to b.yaml applies with it
    std::fs::write(dir.path().join("a.yaml"), VS).unwrap();
    store.reload_from(&[dir.path()]).unwrap();
    assert!(
        store
            .load()
            .virtual_services
            .iter()
            .any(|v| v.hosts == ["service4"])
    );
}

#[tokio::test(start_paused = true)]
async fn changes_within_the_quiet_period_reload_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("vs.yaml"), VS).unwrap();
    let store = ConfigStore::from_paths(&[dir.path()]).unwrap();
    let mut sub = store.subscribe();
    let (tx, rx) = mpsc::channel(16);
    let task = tokio::spawn(reload_loop(
        store.clone(),
        vec![dir.path().to_path_buf()],
        rx,
        Duration::from_millis(200),
    ));
    for _ in 0..3 {
        tx.send(()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::timeout(BOUND, sub.changed())
        .await
        .expect("no reload")
        .unwrap();
    // The watcher going away (its sender dropped) ends the loop: no reload is left pending.
    drop(tx);
    task.await.unwrap();
    assert_eq!(store.generation(), 2);
}

#[test]
fn watching_a_missing_path_is_an_error() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let store = ConfigStore::new(MeshConfig::default());
    let err = store
        .watch_paths(&["/nonexistent/mesh-config-dir/x.yaml"])
        .unwrap_err();
    assert!(err.to_string().starts_with("watch /nonexistent"), "{err}");
}

#[test]
fn a_reload_compiles_only_what_changed_and_reports_every_error() {
    let dir = two_virtual_services();
    let store = ConfigStore::from_paths(&[dir.path()]).unwrap();
    assert_eq!(store.cache_stats().compiled, 2);
    // b changes: only it is compiled again
    std::fs::write(
        dir.path().join("b.yaml"),
        VS.replace("service2", "service4"),
    )
    .unwrap();
    store.reload_from(&[dir.path()]).unwrap();
    assert_eq!(
        (store.cache_stats().compiled, store.cache_stats().reused),
        (1, 1)
    );
    // a turns bad: refused; then b changes again, a does not: a's error is reported again
    std::fs::write(dir.path().join("a.yaml"), BAD_VS).unwrap();
    let first = store.reload_from(&[dir.path()]).unwrap_err();
    std::fs::write(
        dir.path().join("b.yaml"),
        VS.replace("service2", "service5"),
    )
    .unwrap();
    let second = store.reload_from(&[dir.path()]).unwrap_err();
    assert_eq!(second.errors, first.errors);
    assert_eq!(store.cache_stats().reused, 1);
    assert!(second.errors[0].file.ends_with("a.yaml"));
    // a deleted file's objects are gone
    std::fs::remove_file(dir.path().join("a.yaml")).unwrap();
    store.reload_from(&[dir.path()]).unwrap();
    let hosts: Vec<_> = store
        .load()
        .virtual_services
        .iter()
        .map(|v| v.hosts.clone())
        .collect();
    assert_eq!(hosts, [vec!["service5".to_owned()]]);
}

#[test]
fn a_replaced_config_is_freed_by_the_next_swap_not_by_its_last_request() {
    let store = ConfigStore::new(MeshConfig::default());
    let view = ConfigSource::visible_from(store.clone(), "default");
    // a request on generation 1 ends
    let config = Arc::downgrade(&store.snapshot());
    let seen = Arc::downgrade(&view.snapshot());
    store.store(MeshConfig::default());
    // a request on generation 2 puts the new view in use
    drop(view.snapshot());
    assert!(
        config.upgrade().is_some() && seen.upgrade().is_some(),
        "kept"
    );
    // the next swap frees them, on the swapping thread
    store.store(MeshConfig::default());
    drop(view.snapshot());
    assert!(config.upgrade().is_none(), "freed by the swap");
    assert!(
        seen.upgrade().is_none(),
        "the view freed by the prepare hook"
    );
}

#[test]
fn what_a_hook_retires_is_freed_after_the_swap() {
    let store = ConfigStore::new(MeshConfig::default());
    let token = Arc::new(());
    let freed = Arc::downgrade(&token);
    let slot = Mutex::new(Some(token));
    let during = Arc::new(Mutex::new(None));
    let hook: PrepareHook = {
        let (during, freed) = (Arc::clone(&during), freed.clone());
        Arc::new(move |_: &Arc<MeshConfig>| {
            if let Some(t) = slot.lock().unwrap().take() {
                free_after_swap(t);
            }
            *during.lock().unwrap() = Some(freed.upgrade().is_some());
        })
    };
    store.on_prepare(&hook);
    store.store(MeshConfig::default());
    assert_eq!(*during.lock().unwrap(), Some(true), "kept during the hook");
    assert!(freed.upgrade().is_none(), "freed once the swap is done");
}

#[test]
fn holds_follows_every_kind_of_source_through_a_swap() {
    use std::sync::Arc;
    let addr = |c: &Arc<MeshConfig>| Arc::as_ptr(c) as usize;
    let store = ConfigStore::new(MeshConfig::default());
    let cell = Arc::new(arc_swap::ArcSwap::from_pointee(MeshConfig::default()));
    // (what the source is, the source, how to swap a new config in)
    type Swapped = (&'static str, ConfigSource, Box<dyn Fn()>);
    let swapping: Vec<Swapped> = vec![
        ("store", ConfigSource::from(store.clone()), {
            let store = store.clone();
            Box::new(move || {
                store.store(MeshConfig::default());
            })
        }),
        (
            "namespace view",
            ConfigSource::visible_from(store.clone(), "team-a"),
            {
                let store = store.clone();
                Box::new(move || {
                    store.store(MeshConfig::default());
                })
            },
        ),
        ("cell", ConfigSource::swap(cell.clone()), {
            let cell = cell.clone();
            Box::new(move || cell.store(Arc::new(MeshConfig::default())))
        }),
    ];
    for (kind, source, swap) in swapping {
        let held = source.snapshot();
        let seen = SeenAt::new();
        // Asked twice: the second answer may come from the generation alone.
        assert!(source.holds(addr(&held), &seen), "{kind}");
        assert!(source.holds(addr(&held), &seen), "{kind}");
        swap();
        assert!(!source.holds(addr(&held), &seen), "{kind}: after a swap");
        assert!(!source.holds(addr(&held), &seen), "{kind}: asked again");
        let newer = source.snapshot();
        assert!(!Arc::ptr_eq(&held, &newer), "{kind}");
        // A holder that keeps its `SeenAt` across snapshots is answered by the address.
        assert!(
            source.holds(addr(&newer), &seen),
            "{kind}: the new snapshot"
        );
        seen.forget();
        assert!(source.holds(addr(&newer), &seen), "{kind}: after forget");
        // An address that is no snapshot is never in force, whatever was seen before.
        assert!(!source.holds(0, &SeenAt::new()), "{kind}");
    }
    let fixed = ConfigSource::fixed(MeshConfig::default());
    let held = fixed.snapshot();
    let seen = SeenAt::new();
    assert!(fixed.holds(addr(&held), &seen) && fixed.holds(addr(&held), &seen));
    assert!(!fixed.holds(0, &SeenAt::new()));
}
