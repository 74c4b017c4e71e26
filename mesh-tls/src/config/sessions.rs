//! TLS session resumption that forgets every session when the credentials change.
//!
//! A resumed handshake skips certificates: without this, a peer could keep resuming a session
//! made under the previous certificate (and verified against the previous roots) long after a
//! rotation. Sessions live in rustls' in-memory caches; a fresh cache replaces the old one on
//! the first use after a rotation, on both sides.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use rustls::NamedGroup;
use rustls::client::{
    ClientSessionMemoryCache, ClientSessionStore, Tls12ClientSessionValue, Tls13ClientSessionValue,
};
use rustls::pki_types::ServerName;
use rustls::server::{ServerSessionMemoryCache, StoresServerSessions};

use crate::credentials::Credentials;
use crate::source::CertSource;

/// How many sessions (server) or server names (client) are remembered.
const CAPACITY: usize = 256;

/// A cache that belongs to one credential set.
struct PerCredentials<T> {
    source: CertSource,
    current: ArcSwapOption<(Arc<Credentials>, Arc<T>)>,
    make: fn() -> Arc<T>,
}

impl<T> PerCredentials<T> {
    fn new(source: CertSource, make: fn() -> Arc<T>) -> Self {
        Self {
            source,
            current: ArcSwapOption::empty(),
            make,
        }
    }

    /// The cache of the credentials in force; `None` while there are none.
    fn get(&self) -> Option<Arc<T>> {
        let credentials = self.source.current()?;
        if let Some(current) = self.current.load().as_ref()
            && Arc::ptr_eq(&current.0, &credentials)
        {
            return Some(Arc::clone(&current.1));
        }
        let cache = (self.make)();
        self.current
            .store(Some(Arc::new((credentials, Arc::clone(&cache)))));
        Some(cache)
    }
}

/// Server-side sessions of the credentials in force.
pub(crate) struct ServerSessions(PerCredentials<ServerSessionMemoryCache>);

impl ServerSessions {
    pub(crate) fn new(source: CertSource) -> Self {
        Self(PerCredentials::new(source, || {
            ServerSessionMemoryCache::new(CAPACITY)
        }))
    }
}

impl StoresServerSessions for ServerSessions {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        self.0.get().is_some_and(|cache| cache.put(key, value))
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.0.get()?.get(key)
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.0.get()?.take(key)
    }

    fn can_cache(&self) -> bool {
        true
    }
}

impl std::fmt::Debug for ServerSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerSessions").finish_non_exhaustive()
    }
}

/// Client-side sessions of the credentials in force.
pub(crate) struct ClientSessions(PerCredentials<ClientSessionMemoryCache>);

impl ClientSessions {
    pub(crate) fn new(source: CertSource) -> Self {
        Self(PerCredentials::new(source, || {
            Arc::new(ClientSessionMemoryCache::new(CAPACITY))
        }))
    }
}

impl ClientSessionStore for ClientSessions {
    fn set_kx_hint(&self, server_name: ServerName<'static>, group: NamedGroup) {
        if let Some(cache) = self.0.get() {
            cache.set_kx_hint(server_name, group);
        }
    }

    fn kx_hint(&self, server_name: &ServerName<'_>) -> Option<NamedGroup> {
        self.0.get()?.kx_hint(server_name)
    }

    fn set_tls12_session(&self, server_name: ServerName<'static>, value: Tls12ClientSessionValue) {
        if let Some(cache) = self.0.get() {
            cache.set_tls12_session(server_name, value);
        }
    }

    fn tls12_session(&self, server_name: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        self.0.get()?.tls12_session(server_name)
    }

    fn remove_tls12_session(&self, server_name: &ServerName<'static>) {
        if let Some(cache) = self.0.get() {
            cache.remove_tls12_session(server_name);
        }
    }

    fn insert_tls13_ticket(
        &self,
        server_name: ServerName<'static>,
        value: Tls13ClientSessionValue,
    ) {
        if let Some(cache) = self.0.get() {
            cache.insert_tls13_ticket(server_name, value);
        }
    }

    fn take_tls13_ticket(
        &self,
        server_name: &ServerName<'static>,
    ) -> Option<Tls13ClientSessionValue> {
        self.0.get()?.take_tls13_ticket(server_name)
    }
}

impl std::fmt::Debug for ClientSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSessions").finish_non_exhaustive()
    }
}
