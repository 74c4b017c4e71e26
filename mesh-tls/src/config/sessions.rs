//! Server-side TLS session resumption that forgets every session when the credentials change.
//!
//! A resumed handshake skips certificates: without this, a client could keep resuming a session
//! made under the previous certificate (and the previous roots) long after a rotation. Sessions
//! live in rustls' in-memory cache; a new cache replaces it on the first use after a rotation.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use rustls::server::{ServerSessionMemoryCache, StoresServerSessions};

use crate::credentials::Credentials;
use crate::source::CertSource;

/// How many sessions a server remembers.
const CAPACITY: usize = 256;

struct Generation {
    credentials: Arc<Credentials>,
    cache: Arc<ServerSessionMemoryCache>,
}

/// Sessions of the credentials in force.
pub(crate) struct RotatingSessions {
    source: CertSource,
    current: ArcSwapOption<Generation>,
}

impl RotatingSessions {
    pub(crate) fn new(source: CertSource) -> Self {
        Self {
            source,
            current: ArcSwapOption::empty(),
        }
    }

    fn cache(&self) -> Option<Arc<ServerSessionMemoryCache>> {
        let credentials = self.source.current()?;
        if let Some(generation) = self.current.load().as_ref()
            && Arc::ptr_eq(&generation.credentials, &credentials)
        {
            return Some(Arc::clone(&generation.cache));
        }
        let cache = ServerSessionMemoryCache::new(CAPACITY);
        self.current.store(Some(Arc::new(Generation {
            credentials,
            cache: Arc::clone(&cache),
        })));
        Some(cache)
    }
}

impl StoresServerSessions for RotatingSessions {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        self.cache().is_some_and(|cache| cache.put(key, value))
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.cache()?.get(key)
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.cache()?.take(key)
    }

    fn can_cache(&self) -> bool {
        true
    }
}

impl std::fmt::Debug for RotatingSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotatingSessions").finish_non_exhaustive()
    }
}
