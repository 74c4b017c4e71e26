//! [`SharedCluster`]: the cluster under every route stack, cloned by reference count.
//!
//! Each route stack ends in the client's cluster, and the retry layer clones its inner service
//! per request (the ready clone takes the call). A `BoxCloneSyncService` allocates on every clone;
//! this wrapper shares one type-erased call function behind an `Arc`, so a clone costs an atomic
//! increment. The mesh's own [`Clusters`] is always ready and answers with a named future:
//! [`SharedCluster::clusters`] calls it directly, its future unboxed. Any other cluster service
//! ([`SharedCluster::new`]) has its readiness handled per call (`oneshot` on a clone of it), so
//! the wrapper itself is always ready.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower::{Service, ServiceExt};

use crate::BoxError;
use crate::body::{BoxBody, BoxResponseFuture};
use crate::cluster::Clusters;
use crate::retry::RetryPermits;

type CallFn = dyn Fn(Request<BoxBody>) -> BoxResponseFuture + Send + Sync;

/// A cluster service shared by every route stack; see the [module docs](self).
#[derive(Clone)]
pub(crate) struct SharedCluster {
    call: Call,
    /// The clusters' `maxRetries` permits (the mesh's own cluster set only).
    permits: Option<RetryPermits>,
}

#[derive(Clone)]
enum Call {
    /// The mesh's cluster set (a clone shares it).
    Clusters(Clusters),
    Dyn(Arc<CallFn>),
}

impl SharedCluster {
    /// The mesh's cluster set, called directly (its future is boxed once, by itself).
    pub(crate) fn clusters(clusters: Clusters) -> Self {
        let for_permits = clusters.clone();
        SharedCluster {
            call: Call::Clusters(clusters),
            permits: Some(RetryPermits(Arc::new(move |d| for_permits.retry_permit(d)))),
        }
    }

    /// Where retries take their `maxRetries` permits, when the clusters are the mesh's.
    pub(crate) fn retry_permits(&self) -> Option<RetryPermits> {
        self.permits.clone()
    }

    /// Wraps any `cluster`: each call drives a clone of it to readiness, then calls it.
    pub(crate) fn new<C>(cluster: C) -> Self
    where
        C: Service<Request<BoxBody>, Response = Response<BoxBody>> + Clone + Send + Sync + 'static,
        C::Error: Into<BoxError>,
        C::Future: Send + 'static,
    {
        let cluster = cluster.map_err(Into::<BoxError>::into);
        let call = move |req: Request<BoxBody>| -> BoxResponseFuture {
            Box::pin(cluster.clone().oneshot(req))
        };
        SharedCluster {
            call: Call::Dyn(Arc::new(call)),
            permits: None,
        }
    }
}

impl std::fmt::Debug for SharedCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedCluster")
    }
}

impl Service<Request<BoxBody>> for SharedCluster {
    type Response = Response<BoxBody>;
    type Error = BoxError;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<BoxBody>) -> ResponseFuture {
        match &self.call {
            Call::Clusters(clusters) => ResponseFuture::Clusters {
                future: clusters.send(req),
            },
            Call::Dyn(call) => ResponseFuture::Dyn { future: call(req) },
        }
    }
}

pin_project_lite::pin_project! {
    /// Response future of [`SharedCluster`]: the cluster set's, inline, or any other's, boxed.
    #[project = ResponseProj]
    pub(crate) enum ResponseFuture {
        Clusters { #[pin] future: crate::cluster::ResponseFuture },
        Dyn { future: BoxResponseFuture },
    }
}

impl std::future::Future for ResponseFuture {
    type Output = Result<Response<BoxBody>, BoxError>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            ResponseProj::Clusters { future } => future.poll(cx),
            ResponseProj::Dyn { future } => future.as_mut().poll(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn clones_share_the_cluster_and_readiness_is_driven_per_call() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let cluster = tower::service_fn(move |req: Request<BoxBody>| {
            counted.fetch_add(1, Ordering::Relaxed);
            let path = req.uri().path().to_owned();
            async move {
                if path == "/fail" {
                    return Err::<Response<BoxBody>, BoxError>("refused".into());
                }
                Ok(Response::new(crate::body::empty()))
            }
        });
        // A cluster that is ready only after one pending poll: readiness is waited for.
        let cluster = tower::util::ServiceExt::<Request<BoxBody>>::map_request(
            tower::limit::ConcurrencyLimit::new(cluster, 1),
            |r| r,
        );
        let shared = SharedCluster::new(cluster);
        let mut a = shared.clone();
        let mut b = shared;
        assert!(
            a.call(Request::get("/ok").body(crate::body::empty()).unwrap())
                .await
                .is_ok()
        );
        let err = b
            .call(Request::get("/fail").body(crate::body::empty()).unwrap())
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "refused");
        assert_eq!(calls.load(Ordering::Relaxed), 2);
    }

    #[tokio::test]
    async fn the_mesh_cluster_set_is_called_directly() {
        use mesh_core::policy::{Destination, MeshConfig};

        use crate::cluster::StaticEndpoints;
        use crate::context::{Target, Upstream};
        use crate::transport::Transport;

        let endpoints = Arc::new(StaticEndpoints::new());
        let addr: std::net::SocketAddr = "127.0.0.1:9".parse().unwrap();
        endpoints.insert("service3", None, addr, 1, Default::default());
        let config = Arc::new(MeshConfig::default());
        let transport = Transport::in_process(|_, req| {
            let host = req.headers().get(http::header::HOST).cloned();
            Box::pin(async move {
                let mut resp = Response::new(crate::body::empty());
                resp.headers_mut()
                    .extend(host.map(|h| (http::header::HOST, h)));
                Ok(resp)
            })
        });
        let clusters =
            Clusters::new(move || Arc::clone(&config), endpoints).with_transport(transport);
        let mut shared = SharedCluster::clusters(clusters);
        let mut req = Request::get("http://service3/x")
            .body(crate::body::empty())
            .unwrap();
        req.extensions_mut().insert(Target::new(Destination {
            host: "service3".into(),
            subset: None,
            port: None,
        }));
        let resp = shared.call(req).await.unwrap();
        assert_eq!(
            resp.extensions().get::<Upstream>().map(|u| u.endpoint),
            Some(addr)
        );
        assert_eq!(resp.headers().get(http::header::HOST).unwrap(), "service3");
        // No endpoints for another host: the cluster's error comes through.
        let mut req = Request::get("/").body(crate::body::empty()).unwrap();
        req.extensions_mut().insert(Target::new(Destination {
            host: "nowhere".into(),
            subset: None,
            port: None,
        }));
        assert!(shared.call(req).await.is_err());
    }
}
