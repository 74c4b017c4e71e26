//! The app's workload certificate (`--certs DIR`): Istio's file layout, watched, the last good
//! set kept, its state shown in `/config_dump`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use mesh_tls::source::WatchOptions;
use mesh_tls::{CertSource, DirWatcher, MeshTls};
use serde_json::{Value, json};

/// The workload certificate of one app; cheap to clone.
#[derive(Clone)]
pub struct WorkloadTls {
    tls: MeshTls,
    dir: Option<PathBuf>,
    _watcher: Option<Arc<DirWatcher>>,
}

impl std::fmt::Debug for WorkloadTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkloadTls")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl WorkloadTls {
    /// Loads `dir` now and watches it (needs a Tokio runtime). A bad or missing set is logged
    /// and shown in [`WorkloadTls::view`]; the app starts anyway, without a certificate until a
    /// good set arrives.
    pub fn watch(dir: &Path) -> Self {
        let source = CertSource::empty();
        let watcher = DirWatcher::spawn(dir, source.clone(), WatchOptions::default());
        if let Some(error) = source.status().last_error {
            tracing::warn!(%error, "workload certificate not loaded yet");
        }
        Self {
            tls: MeshTls::new(source),
            dir: Some(dir.to_owned()),
            _watcher: Some(Arc::new(watcher)),
        }
    }

    /// No certificate at all (no `--certs`): PERMISSIVE ports serve plaintext, STRICT ones
    /// refuse every connection.
    pub fn none() -> Self {
        Self {
            tls: MeshTls::new(CertSource::empty()),
            dir: None,
            _watcher: None,
        }
    }

    /// The TLS settings built on the certificate.
    pub fn mesh_tls(&self) -> &MeshTls {
        &self.tls
    }

    /// The folder given with `--certs`.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The current identity as a `spiffe://` URI, when a certificate is loaded.
    pub fn identity(&self) -> Option<String> {
        self.tls
            .source()
            .current()
            .map(|c| c.identity().to_string())
    }

    /// The certificate's state for `/config_dump`: the folder, the identity, serial and expiry
    /// of the set in use, and the last refused set's error.
    pub fn view(&self) -> Value {
        let source = self.tls.source();
        let status = source.status();
        let current = source.current().map(|c| {
            json!({
                "identity": c.identity().to_string(),
                "serial": c.serial(),
                "not_after_unix": unix(c.not_after()),
            })
        });
        json!({
            "dir": self.dir.as_ref().map(|d| d.display().to_string()),
            "current": current,
            "published": status.published,
            "last_error": status.last_error.as_ref().map(ToString::to_string),
            "last_error_at_unix": status.last_error_at.map(unix),
        })
    }
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
