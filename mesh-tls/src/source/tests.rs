#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::testing::{Leaf, LeafSpec, TestCa};

const ID: &str = "spiffe://cluster.local/ns/default/sa/service1";

/// Events only: a change seen within the bounded waits below came through notify.
fn events_only() -> WatchOptions {
    WatchOptions {
        settle: Duration::from_millis(50),
        poll_interval: Duration::from_secs(3600),
    }
}

/// Waits up to 10 s for `done`, polling (notify cannot run under a paused clock).
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

fn serial(source: &CertSource) -> Option<String> {
    source.current().map(|c| c.serial().to_owned())
}

fn leaf(ca: &TestCa, serial: u64) -> Leaf {
    ca.leaf(&LeafSpec::spiffe(ID).serial(serial))
}

#[test]
fn publish_and_refuse_keep_the_last_good_set() {
    let ca = TestCa::new("mesh");
    let good = leaf(&ca, 1);
    let creds = good.credentials();
    let source = CertSource::empty();
    assert!(source.current().is_none());
    let changes = source.subscribe();
    source.publish(creds);
    assert_eq!(serial(&source).as_deref(), Some("1"));
    assert_eq!(*changes.borrow(), 1);

    let error = SourceError::Read {
        file: "x".into(),
        reason: "gone".into(),
    };
    source.refuse(error.clone());
    assert_eq!(serial(&source).as_deref(), Some("1"));
    let status = source.status();
    assert_eq!(status.published, 1);
    assert_eq!(status.last_error, Some(error));
    assert!(status.last_error_at.is_some());
}

#[test]
fn load_dir_names_the_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = load_dir(dir.path()).unwrap_err();
    assert!(err.to_string().contains(CERT_CHAIN), "{err}");
}

#[test]
fn an_oversized_file_is_refused() {
    let ca = TestCa::new("mesh");
    let dir = tempfile::tempdir().unwrap();
    leaf(&ca, 1).write_to(dir.path()).unwrap();
    std::fs::write(dir.path().join(ROOT_CERT), vec![b'A'; 2 * 1024 * 1024]).unwrap();
    let err = load_dir(dir.path()).unwrap_err();
    assert!(err.to_string().contains("larger than"), "{err}");
}

#[tokio::test]
async fn files_replaced_in_any_order_apply_when_they_match() {
    let ca = TestCa::new("mesh");
    let dir = tempfile::tempdir().unwrap();
    leaf(&ca, 1).write_to(dir.path()).unwrap();
    let source = CertSource::empty();
    let _watcher = DirWatcher::spawn(dir.path(), source.clone(), events_only());
    assert_eq!(serial(&source).as_deref(), Some("1"), "loaded at spawn");

    // The key first: it does not match the old chain, so the old set stays.
    let next = leaf(&ca, 2);
    std::fs::write(dir.path().join(KEY), &next.key_pem).unwrap();
    wait_until("the mismatch to be refused", || {
        source.status().last_error.is_some()
    })
    .await;
    assert_eq!(serial(&source).as_deref(), Some("1"));
    let error = source.status().last_error.unwrap().to_string();
    assert!(error.contains("does not match"), "{error}");

    // Then the chain: now the three match.
    std::fs::write(dir.path().join(CERT_CHAIN), &next.chain_pem).unwrap();
    wait_until("serial 2", || serial(&source).as_deref() == Some("2")).await;
    assert!(source.status().last_error.is_none());
    assert_eq!(source.status().published, 2);
}

#[tokio::test]
async fn a_half_written_file_keeps_the_last_good_set() {
    let ca = TestCa::new("mesh");
    let dir = tempfile::tempdir().unwrap();
    let first = leaf(&ca, 1);
    first.write_to(dir.path()).unwrap();
    let source = CertSource::empty();
    let _watcher = DirWatcher::spawn(dir.path(), source.clone(), events_only());

    let half = &first.chain_pem[..first.chain_pem.len() / 2];
    std::fs::write(dir.path().join(CERT_CHAIN), half).unwrap();
    wait_until("the half-written chain to be refused", || {
        source.status().last_error.is_some()
    })
    .await;
    assert_eq!(serial(&source).as_deref(), Some("1"));

    // Garbage, then the write completes with the same set: recovered, not republished.
    std::fs::write(dir.path().join(CERT_CHAIN), b"\x00\xffgarbage").unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    std::fs::write(dir.path().join(CERT_CHAIN), &first.chain_pem).unwrap();
    wait_until("the error to clear", || {
        source.status().last_error.is_none()
    })
    .await;
    assert_eq!(source.status().published, 1);
}

#[tokio::test]
async fn kubernetes_data_symlink_swap() {
    let ca = TestCa::new("mesh");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    kube_write(root, "..2026_12_01_a", &leaf(&ca, 1));
    std::os::unix::fs::symlink("..2026_12_01_a", root.join("..data")).unwrap();
    for name in [CERT_CHAIN, KEY, ROOT_CERT] {
        std::os::unix::fs::symlink(format!("..data/{name}"), root.join(name)).unwrap();
    }
    let source = CertSource::empty();
    let _watcher = DirWatcher::spawn(root, source.clone(), events_only());
    assert_eq!(serial(&source).as_deref(), Some("1"));

    // What the kubelet does: a new timestamped folder, then an atomic rename of `..data`.
    kube_write(root, "..2026_12_01_b", &leaf(&ca, 2));
    std::os::unix::fs::symlink("..2026_12_01_b", root.join("..data_tmp")).unwrap();
    std::fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
    std::fs::remove_dir_all(root.join("..2026_12_01_a")).unwrap();
    wait_until("serial 2", || serial(&source).as_deref() == Some("2")).await;
    assert!(source.status().last_error.is_none());
}

fn kube_write(root: &Path, name: &str, leaf: &Leaf) {
    let dir = root.join(name);
    std::fs::create_dir(&dir).unwrap();
    leaf.write_to(&dir).unwrap();
}

#[tokio::test]
async fn a_folder_that_appears_later_is_found_by_polling() {
    let ca = TestCa::new("mesh");
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("certs");
    let source = CertSource::empty();
    let options = WatchOptions {
        settle: Duration::from_millis(50),
        poll_interval: Duration::from_millis(100),
    };
    let _watcher = DirWatcher::spawn(&dir, source.clone(), options);
    assert!(source.current().is_none());
    let error = source.status().last_error.unwrap().to_string();
    assert!(error.contains(CERT_CHAIN), "{error}");

    std::fs::create_dir(&dir).unwrap();
    leaf(&ca, 5).write_to(&dir).unwrap();
    wait_until("serial 5", || serial(&source).as_deref() == Some("5")).await;
}

#[tokio::test]
async fn dropping_the_watcher_stops_it() {
    let ca = TestCa::new("mesh");
    let dir = tempfile::tempdir().unwrap();
    leaf(&ca, 1).write_to(dir.path()).unwrap();
    let source = CertSource::empty();
    let options = WatchOptions {
        settle: Duration::from_millis(10),
        poll_interval: Duration::from_millis(20),
    };
    drop(DirWatcher::spawn(dir.path(), source.clone(), options));
    leaf(&ca, 2).write_to(dir.path()).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(serial(&source).as_deref(), Some("1"));
}
