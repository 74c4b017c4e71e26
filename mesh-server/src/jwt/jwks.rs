//! JWKS fetching and caching: one entry per `jwksUri`, shared by every rule and every reload.
//!
//! Each entry owns a background task that fetches the key set, then refreshes it every
//! `refresh_interval` (Istio's 20 minutes by default). Readers never wait on a lock: the current
//! keys are an [`ArcSwapOption`] read on the request path.
//!
//! - A failed first fetch is retried with exponential backoff; until it succeeds the issuer has
//!   no keys and its tokens are refused (there is never a made-up key set).
//! - A failed refresh keeps the last good keys in use, and is retried with the same backoff.
//! - A token whose `kid` is unknown asks for one immediate re-fetch (key rotation), at most once
//!   per `refetch_min_interval` per `jwksUri`; the request waits for it, bounded by the rule's
//!   timeout.
//! - Issuers are independent: each has its own task and state, and no lock is held across an
//!   `.await`, so a dead issuer never slows another.
//!
//! - A rule with an `issuer` and no `jwksUri` finds its keys by OpenID discovery: the entry's
//!   URL is `<issuer>/.well-known/openid-configuration`, and each fetch reads that document's
//!   `jwks_uri` and then the key set there, under the same timeout, refresh, backoff and
//!   last-good-keys rules (a failure at either step is a failed fetch).
//!
//! Entries are held weakly by the cache: an entry lives as long as some built layer uses it, so
//! a rebuilt layer (config reload) that still names the same `jwksUri` keeps its keys.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use futures_util::future::BoxFuture;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::error::JwksError;
use super::verify::KeySet;

/// The largest JWKS document accepted from the network.
const MAX_JWKS_BYTES: usize = 1 << 20;

/// Fetches a JWKS document. The default is [`HttpFetcher`]; tests plug in their own.
pub trait JwksFetcher: Send + Sync + 'static {
    /// Fetches the document at `uri`, giving up after `timeout`.
    fn fetch(&self, uri: &str, timeout: Duration) -> BoxFuture<'static, Result<String, JwksError>>;
}

/// Fetches over HTTP(S) with reqwest (no retries of its own: the cache retries with backoff).
#[derive(Clone, Debug)]
pub struct HttpFetcher {
    client: reqwest::Client,
}

impl HttpFetcher {
    /// A fetcher with its own client.
    pub fn new() -> Result<Self, JwksError> {
        let client = reqwest::Client::builder()
            .retry(reqwest::retry::never())
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .map_err(|e| JwksError::Fetch {
                uri: String::new(),
                reason: e.to_string(),
            })?;
        Ok(Self { client })
    }

    /// A fetcher using `client`.
    pub fn with_client(client: reqwest::Client) -> Self {
        Self { client }
    }
}

impl JwksFetcher for HttpFetcher {
    fn fetch(&self, uri: &str, timeout: Duration) -> BoxFuture<'static, Result<String, JwksError>> {
        let client = self.client.clone();
        let uri = uri.to_owned();
        Box::pin(async move {
            let fail = |reason: String| JwksError::Fetch {
                uri: uri.clone(),
                reason,
            };
            let mut resp = client
                .get(&uri)
                .timeout(timeout)
                .send()
                .await
                .map_err(|e| fail(e.to_string()))?;
            if !resp.status().is_success() {
                return Err(fail(format!("status {}", resp.status())));
            }
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(|e| fail(e.to_string()))? {
                if body.len() + chunk.len() > MAX_JWKS_BYTES {
                    return Err(fail(format!("document larger than {MAX_JWKS_BYTES} bytes")));
                }
                body.extend_from_slice(&chunk);
            }
            String::from_utf8(body).map_err(|_| fail("document is not utf-8".to_owned()))
        })
    }
}

/// Timing of fetches, refreshes and retries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JwksSettings {
    /// How often a key set is re-fetched (Istio's default: 20 minutes).
    pub refresh_interval: Duration,
    /// The least time between two re-fetches caused by an unknown `kid` (default 30 s).
    pub refetch_min_interval: Duration,
    /// The first retry delay after a failed fetch, doubled each time (default 1 s).
    pub initial_backoff: Duration,
    /// The longest retry delay (default 60 s).
    pub max_backoff: Duration,
}

impl Default for JwksSettings {
    fn default() -> Self {
        Self {
            refresh_interval: Duration::from_secs(20 * 60),
            refetch_min_interval: Duration::from_secs(30),
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
        }
    }
}

/// Counters for the metrics exporter.
#[derive(Debug, Default)]
pub struct JwksStats {
    /// Fetches that failed (network, status, unusable document).
    pub fetch_failures: AtomicU64,
    /// Fetches that produced a key set.
    pub fetch_successes: AtomicU64,
    /// Re-fetches triggered by an unknown `kid`.
    pub refetches: AtomicU64,
    /// Re-fetches refused by the rate limit.
    pub refetches_limited: AtomicU64,
}

/// The shared JWKS cache. Cloning is cheap; clones share entries and stats.
#[derive(Clone)]
pub struct JwksCache {
    inner: Arc<CacheInner>,
}

struct CacheInner {
    entries: Mutex<HashMap<String, Weak<Entry>>>,
    settings: JwksSettings,
    fetcher: Arc<dyn JwksFetcher>,
    stats: Arc<JwksStats>,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

impl JwksCache {
    /// A cache fetching over HTTP with default settings.
    pub fn new() -> Result<Self, JwksError> {
        Ok(Self::with_fetcher(
            JwksSettings::default(),
            Arc::new(HttpFetcher::new()?),
        ))
    }

    /// A cache with these settings and fetcher.
    pub fn with_fetcher(settings: JwksSettings, fetcher: Arc<dyn JwksFetcher>) -> Self {
        Self {
            inner: Arc::new(CacheInner {
                entries: Mutex::new(HashMap::new()),
                settings,
                fetcher,
                stats: Arc::new(JwksStats::default()),
            }),
        }
    }

    /// The counters shared by every entry.
    pub fn stats(&self) -> &Arc<JwksStats> {
        &self.inner.stats
    }

    /// The current keys for `uri`, if an entry exists and has fetched them.
    pub fn keys(&self, uri: &str) -> Option<Arc<KeySet>> {
        let entries = self.inner.entries.lock().ok()?;
        entries
            .get(uri)
            .and_then(Weak::upgrade)
            .and_then(|e| e.current())
    }

    /// The entry for `uri`, created (and its fetch task started, when a runtime is running) if
    /// needed.
    pub(crate) fn entry(&self, uri: &str, timeout: Duration) -> Arc<Entry> {
        self.entry_for(uri, false, timeout)
    }

    /// The entry of an issuer found through OpenID discovery (keyed by its discovery URL).
    pub(crate) fn discovery_entry(&self, issuer: &str, timeout: Duration) -> Arc<Entry> {
        self.entry_for(&discovery_url(issuer), true, timeout)
    }

    fn entry_for(&self, uri: &str, discovery: bool, timeout: Duration) -> Arc<Entry> {
        let entry = {
            // A poisoned lock only means another thread panicked while inserting: the map is
            // still consistent, so keep using it.
            let mut entries = self.inner.entries.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(e) = entries.get(uri).and_then(Weak::upgrade) {
                return e;
            }
            entries.retain(|_, w| w.strong_count() > 0);
            let e = Arc::new(Entry::new(uri, discovery, timeout, &self.inner));
            entries.insert(uri.to_owned(), Arc::downgrade(&e));
            e
        };
        entry.ensure_started();
        entry
    }
}

/// `<issuer>/.well-known/openid-configuration` (one `/` between them, as OpenID Connect
/// Discovery 1.0 §4 builds it).
pub fn discovery_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

/// The `jwks_uri` of an OpenID discovery document; it must be an http(s) URL.
pub fn discovered_jwks_uri(document: &str, from: &str) -> Result<String, JwksError> {
    let fail = |reason: &str| JwksError::Fetch {
        uri: from.to_owned(),
        reason: reason.to_owned(),
    };
    let value: serde_json::Value =
        serde_json::from_str(document).map_err(|_| fail("discovery document is not json"))?;
    match value.get("jwks_uri").and_then(|v| v.as_str()) {
        Some(u) if u.starts_with("http://") || u.starts_with("https://") => Ok(u.to_owned()),
        Some(_) => Err(fail("discovery document's jwks_uri is not an http(s) url")),
        None => Err(fail("discovery document has no jwks_uri")),
    }
}

/// One `jwksUri` (or discovery URL): its current keys and its fetch task's handles.
pub(crate) struct Entry {
    uri: String,
    /// `uri` is an OpenID discovery document naming the key set's URL.
    discovery: bool,
    timeout: Duration,
    usable: bool,
    keys: ArcSwapOption<KeySet>,
    /// Bumped after each fetch attempt, success or not.
    attempts: watch::Sender<u64>,
    wake: Arc<Notify>,
    started: AtomicBool,
    last_refetch: Mutex<Option<Instant>>,
    settings: JwksSettings,
    fetcher: Arc<dyn JwksFetcher>,
    stats: Arc<JwksStats>,
}

impl Entry {
    fn new(uri: &str, discovery: bool, timeout: Duration, cache: &CacheInner) -> Self {
        let usable = uri.starts_with("http://") || uri.starts_with("https://");
        if !usable {
            tracing::warn!(
                jwks_uri = uri,
                "jwks uri is not an http(s) url: tokens for its issuer are refused"
            );
        }
        Self {
            uri: uri.to_owned(),
            discovery,
            timeout,
            usable,
            keys: ArcSwapOption::empty(),
            attempts: watch::Sender::new(0),
            wake: Arc::new(Notify::new()),
            started: AtomicBool::new(false),
            last_refetch: Mutex::new(None),
            settings: cache.settings.clone(),
            fetcher: cache.fetcher.clone(),
            stats: cache.stats.clone(),
        }
    }

    /// The last good keys (lock-free).
    pub(crate) fn current(&self) -> Option<Arc<KeySet>> {
        self.keys.load_full()
    }

    /// Why there are no keys.
    pub(crate) fn unavailable(&self) -> JwksError {
        if self.usable {
            JwksError::Fetch {
                uri: self.uri.clone(),
                reason: "no successful fetch yet".to_owned(),
            }
        } else {
            JwksError::NotHttp(self.uri.clone())
        }
    }

    /// Starts the fetch task if it is not running and a Tokio runtime is available.
    pub(crate) fn ensure_started(self: &Arc<Self>) {
        if !self.usable || self.started.load(Ordering::Acquire) {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.started.swap(true, Ordering::AcqRel) {
            return;
        }
        handle.spawn(run(Arc::downgrade(self), self.wake.clone()));
    }

    /// Whether a first fetch attempt is still under way (a request may wait for it).
    pub(crate) fn first_fetch_pending(&self) -> bool {
        self.usable && *self.attempts.borrow() == 0
    }

    /// Waits (at most the rule's timeout) for the first fetch attempt to finish.
    pub(crate) async fn wait_first_fetch(&self) -> Option<Arc<KeySet>> {
        let mut rx = self.attempts.subscribe();
        if *rx.borrow_and_update() == 0 {
            let _ = tokio::time::timeout(self.timeout, rx.changed()).await;
        }
        self.current()
    }

    /// Asks for an immediate re-fetch (unknown `kid`), rate-limited, and waits for it (at most
    /// the rule's timeout). Returns the keys then current.
    pub(crate) async fn refetch(&self) -> Option<Arc<KeySet>> {
        if !self.usable || !self.reserve_refetch() {
            self.stats.refetches_limited.fetch_add(1, Ordering::Relaxed);
            return self.current();
        }
        self.stats.refetches.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(jwks_uri = %self.uri, "unknown kid: re-fetching jwks");
        let mut rx = self.attempts.subscribe();
        rx.borrow_and_update();
        self.wake.notify_one();
        let _ = tokio::time::timeout(self.timeout, rx.changed()).await;
        self.current()
    }

    /// Fetches the key set: at `uri`, or at the `jwks_uri` its discovery document names.
    async fn fetch(&self) -> Result<String, JwksError> {
        let document = self.fetcher.fetch(&self.uri, self.timeout).await?;
        if !self.discovery {
            return Ok(document);
        }
        let jwks_uri = discovered_jwks_uri(&document, &self.uri)?;
        tracing::debug!(discovery = %self.uri, %jwks_uri, "openid discovery");
        self.fetcher.fetch(&jwks_uri, self.timeout).await
    }

    fn reserve_refetch(&self) -> bool {
        let mut last = self.last_refetch.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        match *last {
            Some(t) if now.duration_since(t) < self.settings.refetch_min_interval => false,
            _ => {
                *last = Some(now);
                true
            }
        }
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        // Lets the task see that the entry is gone and end.
        self.wake.notify_one();
    }
}

/// The fetch loop of one entry; ends when the entry is dropped.
async fn run(weak: Weak<Entry>, wake: Arc<Notify>) {
    let mut backoff: Option<Duration> = None;
    loop {
        let Some(entry) = weak.upgrade() else { return };
        let fetched = tokio::time::timeout(entry.timeout, entry.fetch()).await;
        let result = match fetched {
            Ok(Ok(doc)) => KeySet::from_jwks(&doc),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(JwksError::Fetch {
                uri: entry.uri.clone(),
                reason: "timed out".to_owned(),
            }),
        };
        let s = &entry.settings;
        let wait = match result {
            Ok(keys) => {
                tracing::debug!(jwks_uri = %entry.uri, keys = keys.len(), "jwks fetched");
                entry.keys.store(Some(Arc::new(keys)));
                entry.stats.fetch_successes.fetch_add(1, Ordering::Relaxed);
                backoff = None;
                s.refresh_interval
            }
            Err(error) => {
                entry.stats.fetch_failures.fetch_add(1, Ordering::Relaxed);
                let next = backoff.map_or(s.initial_backoff, |b| (b * 2).min(s.max_backoff));
                backoff = Some(next);
                tracing::warn!(
                    jwks_uri = %entry.uri,
                    %error,
                    keeping_last_keys = entry.current().is_some(),
                    retry_in = ?next,
                    "jwks fetch failed"
                );
                next.min(s.refresh_interval)
            }
        };
        entry.attempts.send_modify(|n| *n += 1);
        drop(entry);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = wake.notified() => {}
        }
    }
}

#[cfg(test)]
mod tests;
