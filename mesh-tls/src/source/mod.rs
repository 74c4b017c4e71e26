//! The current credentials, published for every new handshake to read without a lock.
//!
//! A [`CertSource`] holds at most one [`Credentials`] set. Handshakes read it through arc-swap
//! ([`CertSource::current`]); whatever produces credentials ([`DirWatcher`] for Istio's file
//! layout, later Istio's CA) calls [`CertSource::publish`] with a checked set, or
//! [`CertSource::refuse`] with the reason a new one was refused. A refusal never replaces the
//! last good set: it is kept as the source's status (for `/config_dump` and `/healthz`) and
//! logged. A swap applies to handshakes that start after it; connections already open keep the
//! credentials they were established with.

mod watch;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::{ArcSwap, ArcSwapOption};
use tokio::sync::watch as signal;

pub use watch::{CERT_CHAIN, DirWatcher, KEY, ROOT_CERT, WatchOptions, load_dir};

use crate::credentials::{CredentialError, Credentials};

/// Why a source could not produce a credential set.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// A file could not be read.
    #[error("{}: {reason}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// What the OS said.
        reason: String,
    },
    /// Istio's CA did not supply a good set.
    #[error("Istio CA: {reason}")]
    Ca {
        /// What went wrong.
        reason: String,
    },
    /// The files were read but do not form a good set.
    #[error("{}: {error}", dir.display())]
    Credentials {
        /// The folder the files are in.
        dir: PathBuf,
        /// What is wrong with them.
        error: CredentialError,
    },
}

/// What a source has done so far.
#[derive(Clone, Debug, Default)]
pub struct SourceStatus {
    /// How many sets were published.
    pub published: u64,
    /// When the current set was published.
    pub last_published: Option<SystemTime>,
    /// Why the latest attempt was refused, if it was; cleared by the next good set.
    pub last_error: Option<SourceError>,
    /// When the latest attempt was refused.
    pub last_error_at: Option<SystemTime>,
}

/// The current credentials of a workload, shared by its server and client configurations.
#[derive(Clone, Debug)]
pub struct CertSource {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    current: ArcSwapOption<Credentials>,
    status: ArcSwap<SourceStatus>,
    changed: signal::Sender<u64>,
}

impl CertSource {
    /// A source with no credentials yet.
    pub fn empty() -> Self {
        Self {
            inner: Arc::new(Inner {
                current: ArcSwapOption::empty(),
                status: ArcSwap::from_pointee(SourceStatus::default()),
                changed: signal::channel(0).0,
            }),
        }
    }

    /// A source holding `credentials`.
    pub fn new(credentials: Credentials) -> Self {
        let source = Self::empty();
        source.publish(credentials);
        source
    }

    /// The current credentials, if a good set was ever published. Lock-free.
    pub fn current(&self) -> Option<Arc<Credentials>> {
        self.inner.current.load_full()
    }

    /// Swaps in `credentials` for new handshakes and clears the last error.
    pub fn publish(&self, credentials: Credentials) {
        tracing::info!(
            identity = %credentials.identity(),
            serial = credentials.serial(),
            "workload certificate loaded"
        );
        self.inner.current.store(Some(Arc::new(credentials)));
        let now = SystemTime::now();
        let status = self.update_status(|status| {
            status.published += 1;
            status.last_published = Some(now);
            status.last_error = None;
            status.last_error_at = None;
        });
        self.inner.changed.send_replace(status.published);
    }

    /// Records that a new set was refused; the current set (if any) stays.
    pub fn refuse(&self, error: SourceError) {
        if self.inner.status.load().last_error.as_ref() != Some(&error) {
            let serial = self.current().map(|c| c.serial().to_owned());
            tracing::warn!(%error, kept_serial = ?serial, "workload certificate refused");
        }
        let now = SystemTime::now();
        self.update_status(|status| {
            status.last_error = Some(error.clone());
            status.last_error_at = Some(now);
        });
    }

    /// The files are back to the set in force: the last refusal no longer applies.
    pub(crate) fn recovered(&self) {
        if self.inner.status.load().last_error.is_some() {
            self.update_status(|status| {
                status.last_error = None;
                status.last_error_at = None;
            });
        }
    }

    fn update_status(&self, change: impl Fn(&mut SourceStatus)) -> Arc<SourceStatus> {
        self.inner.status.rcu(|current| {
            let mut next = SourceStatus::clone(current);
            change(&mut next);
            next
        });
        self.inner.status.load_full()
    }

    /// What the source has done so far.
    pub fn status(&self) -> SourceStatus {
        SourceStatus::clone(&self.inner.status.load())
    }

    /// A receiver that changes each time a set is published (its value: the count so far).
    pub fn subscribe(&self) -> signal::Receiver<u64> {
        self.inner.changed.subscribe()
    }
}

#[cfg(test)]
mod tests;
