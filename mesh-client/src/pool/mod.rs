//! Circuit breaking: Istio's `connectionPool` limits, answered at once when full.
//!
//! Envoy's circuit breakers, per cluster:
//! - `http.http2MaxRequests`: requests in flight (HTTP/1.1 and HTTP/2). Over it: overflow.
//! - `tcp.maxConnections`: with HTTP/1.1 one request occupies one connection, so this bounds
//!   requests being served at once; a request that finds them all busy waits in the pending
//!   queue, which holds at most `http.http1MaxPendingRequests` requests. Over it: overflow.
//! - `http.maxRetries`: retries in flight, through [`Pool::retry_permit`], which the retry layer
//!   asks before each retry.
//!
//! Overflow is never queued: it is an [`Overflow`] error at once (a 503 with flag `UO` at the
//! top of the stack). The only wait is the bounded pending queue. Permits are RAII values: the
//! cluster keeps them inside the response body until it is read to the end or dropped.
//!
//! ```
//! use mesh_client::pool::Pool;
//! use mesh_core::policy::ConnectionPool;
//!
//! let pool = Pool::new(&ConnectionPool { http2_max_requests: 1, ..Default::default() }, false);
//! let first = pool.try_acquire()?;
//! assert!(pool.try_acquire().is_err(), "a second request overflows");
//! drop(first);
//! assert!(pool.try_acquire().is_ok());
//! # Ok::<(), mesh_client::pool::Overflow>(())
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use mesh_core::policy::ConnectionPool;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

/// A connection-pool limit refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{limit} reached (limit {max})")]
pub struct Overflow {
    /// The Istio field whose limit was reached.
    pub limit: &'static str,
    /// Its value.
    pub max: u32,
}

/// The limits of one cluster; see the [module docs](self).
#[derive(Debug)]
pub struct Pool {
    requests: Option<Arc<Semaphore>>,
    max_requests: u32,
    connections: Option<Arc<Semaphore>>,
    max_connections: u32,
    pending: AtomicU32,
    max_pending: u32,
    retries: Option<Arc<Semaphore>>,
    max_retries: u32,
}

/// What a request holds while it is in flight: released on drop.
#[derive(Debug)]
pub struct Permit {
    _request: Option<OwnedSemaphorePermit>,
    _connection: Option<OwnedSemaphorePermit>,
}

/// A retry in flight, counted against `maxRetries` until dropped.
#[derive(Debug)]
pub struct RetryPermit {
    _permit: Option<OwnedSemaphorePermit>,
}

impl RetryPermit {
    /// A permit that counts against nothing (no limit applies).
    pub fn unlimited() -> Self {
        Self { _permit: None }
    }
}

fn semaphore(limit: u32) -> Option<Arc<Semaphore>> {
    // u32::MAX is Istio's "unlimited": no semaphore at all, nothing to count.
    (limit != u32::MAX)
        .then(|| Arc::new(Semaphore::new((limit as usize).min(Semaphore::MAX_PERMITS))))
}

fn try_take(
    sem: &Option<Arc<Semaphore>>,
    limit: &'static str,
    max: u32,
) -> Result<Option<OwnedSemaphorePermit>, Overflow> {
    match sem {
        None => Ok(None),
        Some(s) => match Arc::clone(s).try_acquire_owned() {
            Ok(p) => Ok(Some(p)),
            Err(TryAcquireError::NoPermits | TryAcquireError::Closed) => {
                Err(Overflow { limit, max })
            }
        },
    }
}

struct PendingGuard<'a>(&'a AtomicU32);

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Pool {
    /// Limits from `config`; `http2` when the cluster speaks HTTP/2 (connections multiplex, so
    /// `maxConnections` and the pending queue do not bound requests).
    pub fn new(config: &ConnectionPool, http2: bool) -> Self {
        let max_connections = if http2 {
            u32::MAX
        } else {
            config.max_connections
        };
        Self {
            requests: semaphore(config.http2_max_requests),
            max_requests: config.http2_max_requests,
            connections: semaphore(max_connections),
            max_connections,
            pending: AtomicU32::new(0),
            max_pending: config.http1_max_pending_requests,
            retries: semaphore(config.max_retries),
            max_retries: config.max_retries,
        }
    }

    /// Takes a request slot and a connection without waiting; overflow when either is full.
    pub fn try_acquire(&self) -> Result<Permit, Overflow> {
        let request = try_take(
            &self.requests,
            "connectionPool.http.http2MaxRequests",
            self.max_requests,
        )?;
        let connection = try_take(
            &self.connections,
            "connectionPool.tcp.maxConnections",
            self.max_connections,
        )?;
        Ok(Permit {
            _request: request,
            _connection: connection,
        })
    }

    /// [`Pool::acquire`] when it needs no wait: `None` when every connection is busy (the
    /// caller then waits with [`Pool::acquire`], which queues the request).
    pub fn acquire_now(&self) -> Option<Result<Permit, Overflow>> {
        let request = match try_take(
            &self.requests,
            "connectionPool.http.http2MaxRequests",
            self.max_requests,
        ) {
            Ok(request) => request,
            Err(overflow) => return Some(Err(overflow)),
        };
        let connection = match &self.connections {
            None => None,
            Some(connections) => Some(Arc::clone(connections).try_acquire_owned().ok()?),
        };
        Some(Ok(Permit {
            _request: request,
            _connection: connection,
        }))
    }

    /// Takes a request slot (overflow at once when full), then a connection, waiting in the
    /// pending queue when all are busy (overflow at once when the queue is full).
    pub async fn acquire(&self) -> Result<Permit, Overflow> {
        let request = try_take(
            &self.requests,
            "connectionPool.http.http2MaxRequests",
            self.max_requests,
        )?;
        let Some(connections) = &self.connections else {
            return Ok(Permit {
                _request: request,
                _connection: None,
            });
        };
        if let Ok(p) = Arc::clone(connections).try_acquire_owned() {
            return Ok(Permit {
                _request: request,
                _connection: Some(p),
            });
        }
        let queued = self
            .pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| {
                (p < self.max_pending).then_some(p + 1)
            });
        if queued.is_err() {
            return Err(Overflow {
                limit: "connectionPool.http.http1MaxPendingRequests",
                max: self.max_pending,
            });
        }
        let _pending = PendingGuard(&self.pending);
        match Arc::clone(connections).acquire_owned().await {
            Ok(p) => Ok(Permit {
                _request: request,
                _connection: Some(p),
            }),
            Err(_) => Err(Overflow {
                limit: "connectionPool.tcp.maxConnections",
                max: self.max_connections,
            }),
        }
    }

    /// A retry slot, or `None` when `maxRetries` retries are already in flight.
    pub fn retry_permit(&self) -> Option<RetryPermit> {
        try_take(
            &self.retries,
            "connectionPool.http.maxRetries",
            self.max_retries,
        )
        .ok()
        .map(|p| RetryPermit { _permit: p })
    }

    /// Requests waiting in the pending queue now.
    pub fn pending(&self) -> u32 {
        self.pending.load(Ordering::Acquire)
    }

    /// Requests in flight now (0 when unlimited: not counted).
    pub fn in_flight(&self) -> u32 {
        self.requests.as_ref().map_or(0, |s| {
            self.max_requests
                .saturating_sub(u32::try_from(s.available_permits()).unwrap_or(u32::MAX))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn pool(max_connections: u32, pending: u32) -> Pool {
        Pool::new(
            &ConnectionPool {
                max_connections,
                http1_max_pending_requests: pending,
                ..Default::default()
            },
            false,
        )
    }

    #[tokio::test(start_paused = true)]
    async fn pending_queue_is_bounded_and_served_in_turn() {
        let pool = Arc::new(pool(1, 1));
        let busy = pool.acquire().await.unwrap();
        let p2 = Arc::clone(&pool);
        let waiter = tokio::spawn(async move { p2.acquire().await.map(|_| ()) });
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(pool.pending(), 1);
        let err = pool.acquire().await.unwrap_err();
        assert_eq!(err.limit, "connectionPool.http.http1MaxPendingRequests");
        drop(busy);
        waiter.await.unwrap().unwrap();
        assert_eq!(pool.pending(), 0);
    }

    #[tokio::test]
    async fn http2_ignores_connections_and_counts_requests() {
        let cfg = ConnectionPool {
            max_connections: 1,
            http2_max_requests: 2,
            ..Default::default()
        };
        let pool = Pool::new(&cfg, true);
        let a = pool.acquire().await.unwrap();
        let _b = pool.acquire().await.unwrap();
        assert_eq!(pool.in_flight(), 2);
        assert_eq!(
            pool.acquire().await.unwrap_err().limit,
            "connectionPool.http.http2MaxRequests"
        );
        drop(a);
        assert!(pool.try_acquire().is_ok());
    }

    #[test]
    fn retries_are_limited() {
        let pool = Pool::new(
            &ConnectionPool {
                max_retries: 1,
                ..Default::default()
            },
            false,
        );
        let r = pool.retry_permit();
        assert!(r.is_some());
        assert!(pool.retry_permit().is_none());
        drop(r);
        assert!(pool.retry_permit().is_some());
        assert!(
            Pool::new(&ConnectionPool::default(), false)
                .retry_permit()
                .is_some()
        );
    }
}
