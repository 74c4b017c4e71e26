#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

#[test]
fn ready_only_when_every_watch_synced_and_none_refused() {
    let r = Readiness::new();
    r.set("a", WatchPhase::Syncing);
    r.set("b", WatchPhase::Missing("no CRD".into()));
    assert!(!r.is_ready());
    assert_eq!(
        r.status().to_string(),
        "not ready: a: waiting for the first sync"
    );
    r.synced("a");
    assert!(r.is_ready());
    assert_eq!(r.status().to_string(), "ready");
    assert_eq!(r.status().missing(), ["b: no CRD"]);

    // a 403 after the sync makes it not ready; another error after the sync does not
    let forbidden = kube::runtime::watcher::Error::WatchError(Box::new(
        kube::core::Status::failure("denied", "Forbidden").with_code(403),
    ));
    r.error("a", &forbidden);
    assert_eq!(
        r.status().to_string(),
        "not ready: a: 403 Forbidden: denied"
    );
    r.synced("a");
    let gone = kube::runtime::watcher::Error::WatchError(Box::new(
        kube::core::Status::failure("too old", "Expired").with_code(410),
    ));
    r.error("a", &gone);
    assert!(r.is_ready());
    r.remove("a");
    assert!(!r.status().watches.contains_key("a"));
}
