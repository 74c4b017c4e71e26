//! Credentials from a folder in Istio's layout, watched.
//!
//! The folder holds `cert-chain.pem`, `key.pem` and `root-cert.pem`. It is watched with notify
//! (a change anywhere in the folder, including Kubernetes' atomic `..data` symlink swap, wakes
//! the watcher) and also re-read every [`WatchOptions::poll_interval`] as a backstop for events
//! a file system does not deliver. After a change settles the three files are read and checked
//! together; while they do not match (replaced one at a time, in any order, or half-written)
//! each attempt is refused and the last good set stays in force.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::{CertSource, SourceError};
use crate::credentials::Credentials;

/// The certificate chain file, leaf first.
pub const CERT_CHAIN: &str = "cert-chain.pem";
/// The private key file.
pub const KEY: &str = "key.pem";
/// The root certificates file.
pub const ROOT_CERT: &str = "root-cert.pem";

/// How a [`DirWatcher`] paces itself.
#[derive(Clone, Debug)]
pub struct WatchOptions {
    /// How long to wait after a change event before reading, so that a burst of writes is read
    /// once.
    pub settle: Duration,
    /// How often the folder is re-read without any event.
    pub poll_interval: Duration,
}

impl Default for WatchOptions {
    /// 100 ms to settle, a re-read every 2 s (so a change applies within Istio's 5 s).
    fn default() -> Self {
        Self {
            settle: Duration::from_millis(100),
            poll_interval: Duration::from_secs(2),
        }
    }
}

/// Reads and checks the three files of Istio's layout in `dir`.
pub fn load_dir(dir: &Path) -> Result<Credentials, SourceError> {
    let files = read_files(dir)?;
    check(dir, &files)
}

type Files = [Vec<u8>; 3];

/// The largest file read: certificates and keys are a few KiB; anything bigger is not ours.
const MAX_FILE: u64 = 1024 * 1024;

fn read_files(dir: &Path) -> Result<Files, SourceError> {
    Ok([
        read_capped(&dir.join(CERT_CHAIN))?,
        read_capped(&dir.join(KEY))?,
        read_capped(&dir.join(ROOT_CERT))?,
    ])
}

fn read_capped(file: &Path) -> Result<Vec<u8>, SourceError> {
    let error = |reason: String| SourceError::Read {
        file: file.to_owned(),
        reason,
    };
    let opened = std::fs::File::open(file).map_err(|err| error(err.to_string()))?;
    let mut bytes = Vec::new();
    opened
        .take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| error(err.to_string()))?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(error(format!("larger than {MAX_FILE} bytes")));
    }
    Ok(bytes)
}

fn check(dir: &Path, [chain, key, roots]: &Files) -> Result<Credentials, SourceError> {
    Credentials::from_pem(chain, key, roots).map_err(|error| SourceError::Credentials {
        dir: dir.to_owned(),
        error,
    })
}

/// Keeps a [`CertSource`] up to date with a folder; stops when dropped.
#[derive(Debug)]
pub struct DirWatcher {
    task: JoinHandle<()>,
    // Held so that events keep coming; `None` when notify could not watch (polling only).
    _watcher: Option<notify::RecommendedWatcher>,
}

impl DirWatcher {
    /// Loads `dir` into `source` now (a failure is recorded in its status, not returned), then
    /// watches it from a task on the current tokio runtime.
    ///
    /// # Panics
    /// Outside a tokio runtime, as `tokio::spawn` does.
    pub fn spawn(dir: impl Into<PathBuf>, source: CertSource, options: WatchOptions) -> Self {
        let dir = dir.into();
        let mut last_good = None;
        reload(&dir, &source, &mut last_good);

        let wake = Arc::new(Notify::new());
        let watcher = watch_events(&dir, Arc::clone(&wake));
        let task = tokio::spawn(run(dir, source, options, wake, last_good));
        Self {
            task,
            _watcher: watcher,
        }
    }
}

impl Drop for DirWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn watch_events(dir: &Path, wake: Arc<Notify>) -> Option<notify::RecommendedWatcher> {
    let handler = move |event: notify::Result<notify::Event>| {
        if event.is_ok() {
            wake.notify_one();
        }
    };
    let watcher = notify::recommended_watcher(handler).and_then(|mut watcher| {
        watcher.watch(dir, RecursiveMode::NonRecursive)?;
        Ok(watcher)
    });
    match watcher {
        Ok(watcher) => Some(watcher),
        Err(error) => {
            tracing::warn!(
                dir = %dir.display(),
                %error,
                "cannot watch the certificate folder; polling it instead"
            );
            None
        }
    }
}

async fn run(
    dir: PathBuf,
    source: CertSource,
    options: WatchOptions,
    wake: Arc<Notify>,
    mut last_good: Option<Files>,
) {
    loop {
        tokio::select! {
            () = wake.notified() => tokio::time::sleep(options.settle).await,
            () = tokio::time::sleep(options.poll_interval) => {}
        }
        let dir = dir.clone();
        let source = source.clone();
        let previous = last_good.take();
        let joined = tokio::task::spawn_blocking(move || {
            let mut last = previous;
            reload(&dir, &source, &mut last);
            last
        })
        .await;
        match joined {
            Ok(last) => last_good = last,
            // The blocking pool is shutting down with the runtime.
            Err(_) => return,
        }
    }
}

/// Reads the folder; publishes a set that differs from the last good one and checks out,
/// records the refusal otherwise.
fn reload(dir: &Path, source: &CertSource, last_good: &mut Option<Files>) {
    let files = match read_files(dir) {
        Ok(files) => files,
        Err(error) => return source.refuse(error),
    };
    if last_good.as_ref() == Some(&files) {
        return source.recovered();
    }
    match check(dir, &files) {
        Ok(credentials) => {
            source.publish(credentials);
            *last_good = Some(files);
        }
        Err(error) => source.refuse(error),
    }
}
