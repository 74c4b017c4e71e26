//! Waits shared by the watch tests of config, discovery and the mesh: each bounded by [`BOUND`],
//! a guard against a hang, never an assertion on how long things take.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tokio::sync::watch;

use crate::Readiness;

/// Safety bound against a hang; never an assertion on how long things take.
pub(crate) const BOUND: Duration = Duration::from_secs(20);

/// Waits until every watch behind `readiness` has synced.
pub(crate) async fn ready(readiness: &Readiness) {
    tokio::time::timeout(BOUND, readiness.wait_ready())
        .await
        .expect("not ready in time");
}

/// Waits until the value behind `rx` satisfies `done`; returns that value.
pub(crate) async fn until<T: Clone>(mut rx: watch::Receiver<T>, done: impl Fn(&T) -> bool) -> T {
    tokio::time::timeout(BOUND, async {
        loop {
            let value = rx.borrow_and_update().clone();
            if done(&value) {
                return value;
            }
            rx.changed().await.expect("the sender lives");
        }
    })
    .await
    .expect("never got there in time")
}

/// Waits until the readiness text mentions `needle` (e.g. `403`); returns the text.
pub(crate) async fn says(readiness: &Readiness, needle: &str) -> String {
    until(readiness.subscribe(), |s| s.to_string().contains(needle))
        .await
        .to_string()
}
