//! Outlier detection: passive health checking that ejects failing endpoints for a while.
//!
//! Envoy's consecutive-error detectors, as Istio configures them with `outlierDetection`:
//! an endpoint is ejected after `consecutive5xxErrors` failures in a row (5xx answers, and
//! transport failures, which count as 5xx unless `splitExternalLocalOriginErrors` is set), after
//! `consecutiveGatewayErrors` gateway errors (502, 503, 504 and transport failures), or, when
//! split, after `consecutiveLocalOriginFailures` transport failures (connect failure, reset,
//! timeout). It stays out for `baseEjectionTime` × the number of times it was ejected (capped at
//! 300 s as Envoy does), then returns. The first ejection always happens; later ones only while
//! fewer than `maxEjectionPercent` of the endpoints are out. When fewer than `minHealthPercent`
//! are healthy, ejection is ignored and all endpoints are balanced over.
//!
//! Nothing runs in the background: the return of an endpoint is noticed lazily, when a pick
//! looks at the set. Per-endpoint state is a handful of atomics. Every ejection and return is a
//! `tracing` event and a counter labelled with the endpoint ([`OutlierMetrics`]).
//!
//! ```
//! use mesh_client::outlier::OutlierDetector;
//! use mesh_core::classify::Outcome;
//! use mesh_core::policy::OutlierDetection;
//!
//! let config = OutlierDetection { consecutive_5xx: 2, max_ejection_percent: 100, ..Default::default() };
//! let endpoints = ["127.0.0.1:8081".parse()?, "127.0.0.1:8082".parse()?];
//! let od = OutlierDetector::new(config, &endpoints);
//! od.record(0, Outcome::status(503));
//! assert!(!od.is_ejected(0));
//! od.record(0, Outcome::status(503));
//! assert!(od.is_ejected(0));
//! assert!(!od.is_ejected(1));
//! # Ok::<(), std::net::AddrParseError>(())
//! ```

mod metrics;

pub use metrics::OutlierMetrics;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use mesh_core::classify::Outcome;
use mesh_core::policy::OutlierDetection;
use tokio::time::Instant;

/// Envoy's default `max_ejection_time`: no ejection lasts longer (unless the base is longer).
pub const MAX_EJECTION_TIME: Duration = Duration::from_secs(300);

/// Why an endpoint was ejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EjectReason {
    /// `consecutive5xxErrors`.
    Consecutive5xx,
    /// `consecutiveGatewayErrors`.
    ConsecutiveGatewayErrors,
    /// `consecutiveLocalOriginFailures`.
    ConsecutiveLocalOriginFailures,
}

impl EjectReason {
    /// The reason as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            EjectReason::Consecutive5xx => "consecutive_5xx",
            EjectReason::ConsecutiveGatewayErrors => "consecutive_gateway_errors",
            EjectReason::ConsecutiveLocalOriginFailures => "consecutive_local_origin_failures",
        }
    }
}

/// State of one endpoint, shared across rebuilds of the detector while the endpoint stays.
#[derive(Debug)]
struct Host {
    addr: SocketAddr,
    consecutive_5xx: AtomicU32,
    consecutive_gateway: AtomicU32,
    consecutive_local: AtomicU32,
    /// Nanoseconds since the epoch + 1 at which the ejection ends; 0 when not ejected.
    ejected_until: AtomicU64,
    times_ejected: AtomicU32,
    /// Nanoseconds since the epoch of the last return.
    returned_at: AtomicU64,
    ejections: AtomicU64,
}

impl Host {
    fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            consecutive_5xx: AtomicU32::new(0),
            consecutive_gateway: AtomicU32::new(0),
            consecutive_local: AtomicU32::new(0),
            ejected_until: AtomicU64::new(0),
            times_ejected: AtomicU32::new(0),
            returned_at: AtomicU64::new(0),
            ejections: AtomicU64::new(0),
        }
    }

    fn reset_counters(&self) {
        self.consecutive_5xx.store(0, Ordering::Relaxed);
        self.consecutive_gateway.store(0, Ordering::Relaxed);
        self.consecutive_local.store(0, Ordering::Relaxed);
    }
}

/// A snapshot of one endpoint's outlier state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointHealth {
    /// The endpoint.
    pub addr: SocketAddr,
    /// Whether it is ejected now.
    pub ejected: bool,
    /// The current ejection multiplier.
    pub times_ejected: u32,
    /// Ejections since the endpoint appeared.
    pub ejections_total: u64,
}

/// Consecutive-error outlier detection over one endpoint set; see the [module docs](self).
#[derive(Debug)]
pub struct OutlierDetector {
    config: OutlierDetection,
    cluster: Arc<str>,
    hosts: Box<[Arc<Host>]>,
    ejected: AtomicUsize,
    epoch: Instant,
    metrics: OutlierMetrics,
}

impl OutlierDetector {
    /// A detector for `endpoints` (indices match the balancer's), nothing ejected.
    pub fn new(config: OutlierDetection, endpoints: &[SocketAddr]) -> Self {
        Self {
            config,
            cluster: Arc::from(""),
            hosts: endpoints.iter().map(|a| Arc::new(Host::new(*a))).collect(),
            ejected: AtomicUsize::new(0),
            epoch: Instant::now(),
            metrics: OutlierMetrics::default(),
        }
    }

    /// Names the cluster in events and metric labels.
    pub fn with_cluster_name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.cluster = name.into();
        self
    }

    /// Counts ejections and returns into `metrics`.
    pub fn with_metrics(mut self, metrics: OutlierMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// A detector for a new endpoint set and config that keeps the state (ejections, counters)
    /// of the endpoints that stay.
    pub fn rebuilt(&self, config: OutlierDetection, endpoints: &[SocketAddr]) -> Self {
        let hosts: Box<[Arc<Host>]> = endpoints
            .iter()
            .map(|a| match self.hosts.iter().find(|h| h.addr == *a) {
                Some(h) => Arc::clone(h),
                None => Arc::new(Host::new(*a)),
            })
            .collect();
        let ejected = hosts
            .iter()
            .filter(|h| h.ejected_until.load(Ordering::Relaxed) != 0)
            .count();
        Self {
            config,
            cluster: Arc::clone(&self.cluster),
            hosts,
            ejected: AtomicUsize::new(ejected),
            epoch: self.epoch,
            metrics: self.metrics.clone(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &OutlierDetection {
        &self.config
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(
            Instant::now()
                .saturating_duration_since(self.epoch)
                .as_nanos(),
        )
        .unwrap_or(u64::MAX)
    }

    /// Feeds the outcome of an attempt at endpoint `index`.
    pub fn record(&self, index: usize, outcome: Outcome) {
        let Some(host) = self.hosts.get(index) else {
            return;
        };
        let cfg = &self.config;
        let split = cfg.split_external_local_origin_errors;
        let reason = match outcome {
            // Refused locally, never sent, or the downstream's own failure: says nothing about
            // the endpoint.
            o if !o.concerns_upstream() => return,
            o if o.is_local_origin_failure() && split => {
                let n = host.consecutive_local.fetch_add(1, Ordering::Relaxed) + 1;
                (cfg.consecutive_local_origin_failures > 0
                    && n >= cfg.consecutive_local_origin_failures)
                    .then_some(EjectReason::ConsecutiveLocalOriginFailures)
            }
            o if o.is_failure() => {
                if split {
                    // An answer arrived: the connection works.
                    host.consecutive_local.store(0, Ordering::Relaxed);
                }
                let n5 = host.consecutive_5xx.fetch_add(1, Ordering::Relaxed) + 1;
                let ng = if o.is_gateway_error() {
                    host.consecutive_gateway.fetch_add(1, Ordering::Relaxed) + 1
                } else {
                    host.consecutive_gateway.store(0, Ordering::Relaxed);
                    0
                };
                if cfg.consecutive_5xx > 0 && n5 >= cfg.consecutive_5xx {
                    Some(EjectReason::Consecutive5xx)
                } else if cfg.consecutive_gateway_errors > 0 && ng >= cfg.consecutive_gateway_errors
                {
                    Some(EjectReason::ConsecutiveGatewayErrors)
                } else {
                    None
                }
            }
            _ => {
                host.reset_counters();
                None
            }
        };
        if let Some(reason) = reason {
            host.reset_counters();
            self.eject(host, reason);
        }
    }

    fn eject(&self, host: &Host, reason: EjectReason) {
        let n = self.hosts.len();
        let max = self.config.max_ejection_percent as usize;
        // Reserve a slot in the ejected count: the first ejection always goes ahead (Envoy),
        // later ones only while the ejected share is below maxEjectionPercent.
        let reserved = self
            .ejected
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |e| {
                (e == 0 || e * 100 < max * n).then_some(e + 1)
            });
        if reserved.is_err() {
            tracing::debug!(cluster = %self.cluster, endpoint = %host.addr, reason = reason.as_str(), "ejection skipped: maxEjectionPercent reached");
            return;
        }
        let now = self.now_ns();
        let base = self.config.base_ejection_time;
        // The multiplier decays by one for every interval spent healthy since the last return.
        let interval = self.config.interval.as_nanos().max(1);
        let returned_at = host.returned_at.load(Ordering::Relaxed);
        let healthy_intervals =
            u32::try_from(u128::from(now.saturating_sub(returned_at)) / interval)
                .unwrap_or(u32::MAX);
        let times = host
            .times_ejected
            .load(Ordering::Relaxed)
            .saturating_sub(healthy_intervals)
            .saturating_add(1);
        let duration = base.saturating_mul(times).min(MAX_EJECTION_TIME.max(base));
        let until = now
            .saturating_add(u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX))
            .saturating_add(1);
        if host
            .ejected_until
            .compare_exchange(0, until, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            // Already ejected (a racing failure): give the slot back.
            self.ejected.fetch_sub(1, Ordering::AcqRel);
            return;
        }
        host.times_ejected.store(times, Ordering::Relaxed);
        host.ejections.fetch_add(1, Ordering::Relaxed);
        let endpoint = host.addr.to_string();
        self.metrics
            .ejected(&self.cluster, &endpoint, reason.as_str());
        tracing::warn!(
            cluster = %self.cluster,
            %endpoint,
            reason = reason.as_str(),
            ejection_ms = duration.as_millis() as u64,
            times_ejected = times,
            "endpoint ejected"
        );
    }

    /// Whether endpoint `index` is ejected now (an ejection that has run out counts as returned).
    pub fn is_ejected(&self, index: usize) -> bool {
        let Some(host) = self.hosts.get(index) else {
            return false;
        };
        let until = host.ejected_until.load(Ordering::Acquire);
        until != 0 && !self.try_return(host, until, self.now_ns())
    }

    /// Whether endpoint `index` is marked ejected, without looking at the clock: cheap, for the
    /// pick path right after [`OutlierDetector::filtering`] returned expired ejections.
    pub fn is_marked_ejected(&self, index: usize) -> bool {
        self.hosts
            .get(index)
            .is_some_and(|h| h.ejected_until.load(Ordering::Acquire) != 0)
    }

    /// Returns `host` if its ejection has run out; true when it is (now) back.
    fn try_return(&self, host: &Host, until: u64, now: u64) -> bool {
        if now.saturating_add(1) < until {
            return false;
        }
        if host
            .ejected_until
            .compare_exchange(until, 0, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            let _ = self
                .ejected
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |e| e.checked_sub(1));
            host.returned_at.store(now, Ordering::Relaxed);
            let endpoint = host.addr.to_string();
            self.metrics.returned(&self.cluster, &endpoint);
            tracing::info!(cluster = %self.cluster, %endpoint, "endpoint returned");
        }
        true
    }

    /// Whether picks must skip ejected endpoints now: false when nothing is ejected (after
    /// returning those whose time has run out), or when fewer than `minHealthPercent` of the
    /// endpoints are healthy (then all are balanced over).
    pub fn filtering(&self) -> bool {
        if self.ejected.load(Ordering::Acquire) == 0 {
            return false;
        }
        let now = self.now_ns();
        let mut still = 0usize;
        for host in self.hosts.iter() {
            let until = host.ejected_until.load(Ordering::Acquire);
            if until != 0 && !self.try_return(host, until, now) {
                still += 1;
            }
        }
        // Self-correcting count (a host shared with a replaced detector may have returned there).
        self.ejected.store(still, Ordering::Release);
        if still == 0 {
            return false;
        }
        let n = self.hosts.len();
        let healthy_percent = (n - still.min(n)) * 100 / n.max(1);
        healthy_percent >= self.config.min_health_percent as usize
    }

    /// Number of endpoints ejected now.
    pub fn ejected_count(&self) -> usize {
        (0..self.hosts.len())
            .filter(|&i| self.is_ejected(i))
            .count()
    }

    /// The per-endpoint state, in index order.
    pub fn health(&self) -> Vec<EndpointHealth> {
        (0..self.hosts.len())
            .filter_map(|i| {
                let ejected = self.is_ejected(i);
                self.hosts.get(i).map(|h| EndpointHealth {
                    addr: h.addr,
                    ejected,
                    times_ejected: h.times_ejected.load(Ordering::Relaxed),
                    ejections_total: h.ejections.load(Ordering::Relaxed),
                })
            })
            .collect()
    }

    /// The metrics this detector counts into.
    pub fn metrics(&self) -> &OutlierMetrics {
        &self.metrics
    }
}

#[cfg(test)]
mod tests;
