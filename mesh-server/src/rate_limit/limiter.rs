//! The limiter: a total bucket, a bucket per client identity, and override buckets.

use std::time::Duration;

use mesh_core::policy::{RateLimitOverride, RateLimitPolicy};
use tokio::time::Instant;

use super::error::{RateLimited, Scope};
use super::gcra::{Bucket, Rate};
use super::keyed::KeyedBuckets;

/// Plain Rust settings of a [`RateLimiter`] (what an HTTPLocalRateLimitPolicy says).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimitSettings {
    /// One limit for all requests (`total.requestsPerSecond`).
    pub total_rps: Option<u32>,
    /// A limit for each client identity (`identity.requestsPerSecond`).
    pub identity_rps: Option<u32>,
    /// Limits for named clients, replacing `identity_rps` for them (`overrides[]`).
    pub overrides: Vec<RateLimitOverride>,
    /// How many client identities to remember at most (idle ones are forgotten first).
    pub max_identities: usize,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            total_rps: None,
            identity_rps: None,
            overrides: Vec::new(),
            max_identities: 10_000,
        }
    }
}

impl RateLimitSettings {
    /// The settings a checked policy describes.
    pub fn from_policy(policy: &RateLimitPolicy) -> Self {
        Self {
            total_rps: policy.total_rps,
            identity_rps: policy.identity_rps,
            overrides: policy.overrides.clone(),
            ..Self::default()
        }
    }

    /// Only the total limit (for a limiter placed before authentication).
    pub fn total_only(&self) -> Self {
        Self {
            identity_rps: None,
            overrides: Vec::new(),
            ..self.clone()
        }
    }

    /// Only the per-client limits (for a limiter placed after authentication).
    pub fn per_client_only(&self) -> Self {
        Self {
            total_rps: None,
            ..self.clone()
        }
    }

    /// Whether these settings limit anything.
    pub fn is_empty(&self) -> bool {
        self.total_rps.is_none() && self.identity_rps.is_none() && self.overrides.is_empty()
    }
}

/// An `overrides[]` entry: the client identities it names and their shared bucket.
type Override = (Box<[Box<str>]>, Bucket);

/// Token buckets shared by every clone of a [`RateLimit`](super::RateLimit) service.
///
/// Each bucket holds one second's worth of requests (Linkerd's burst) and refills continuously.
/// A request takes a token from the total bucket, then from its client's bucket: the override
/// bucket shared by the clients an override names, or else the client's own identity bucket.
/// Requests without an identity share one anonymous bucket at the identity rate.
#[derive(Debug)]
pub struct RateLimiter {
    settings: RateLimitSettings,
    epoch: Instant,
    total: Option<Bucket>,
    identity: Option<KeyedBuckets>,
    anonymous: Option<Bucket>,
    overrides: Box<[Override]>,
}

impl RateLimiter {
    /// A limiter with fresh (full) buckets.
    pub fn new(settings: RateLimitSettings) -> Self {
        let per_second = |rps: Option<u32>| rps.map(|r| Bucket::new(Rate::per_second(r)));
        Self {
            epoch: Instant::now(),
            total: per_second(settings.total_rps),
            identity: settings
                .identity_rps
                .map(|r| KeyedBuckets::new(Rate::per_second(r), settings.max_identities)),
            anonymous: per_second(settings.identity_rps),
            overrides: settings
                .overrides
                .iter()
                .map(|o| {
                    (
                        o.clients.iter().map(|c| Box::from(c.as_str())).collect(),
                        Bucket::new(Rate::per_second(o.rps)),
                    )
                })
                .collect(),
            settings,
        }
    }

    /// The settings it was built from.
    pub fn settings(&self) -> &RateLimitSettings {
        &self.settings
    }

    /// Admits one request from `identity` (a peer or request principal), or says how long to
    /// wait.
    pub fn check(&self, identity: Option<&str>) -> Result<(), RateLimited> {
        let now = u64::try_from(
            Instant::now()
                .saturating_duration_since(self.epoch)
                .as_nanos(),
        )
        .unwrap_or(u64::MAX);
        let limited = |scope| move |wait: Duration| RateLimited::new(scope, wait);
        if let Some(total) = &self.total {
            total.try_acquire(now).map_err(limited(Scope::Total))?;
        }
        if let Some(id) = identity {
            if let Some((_, bucket)) = self
                .overrides
                .iter()
                .find(|(clients, _)| clients.iter().any(|c| names(id, c)))
            {
                return bucket.try_acquire(now).map_err(limited(Scope::Override));
            }
            if let Some(keyed) = &self.identity {
                return keyed.try_acquire(id, now).map_err(limited(Scope::Identity));
            }
        } else if let Some(anonymous) = &self.anonymous {
            return anonymous.try_acquire(now).map_err(limited(Scope::Identity));
        }
        Ok(())
    }
}

/// Whether `identity` is the client `name` refers to: the same text, or a principal ending in
/// `/name` (the `sa/NAME` of a SPIFFE identity, the `sub` of a request principal `iss/sub`).
fn names(identity: &str, name: &str) -> bool {
    identity == name
        || identity
            .strip_suffix(name)
            .is_some_and(|head| head.ends_with('/'))
}
