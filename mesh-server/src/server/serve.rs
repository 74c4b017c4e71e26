//! [`serve`]: a hyper server with graceful shutdown that tells the layers who is calling.

use std::cell::RefCell;
use std::pin::Pin;
use std::task::Waker;

use pin_project_lite::pin_project;
use tower::util::Oneshot;

use super::tls::{InboundTls, PeerContext};
use super::*;

/// Serves HTTP/1.1 and HTTP/2 (prior knowledge) on `listener` until `shutdown` completes, then
/// stops accepting and waits for the requests in flight to finish (keep-alive connections are
/// told to close).
///
/// Each request carries axum's `ConnectInfo<SocketAddr>` (the client's address) and
/// [`LocalAddr`] in its extensions, and a [`Body`] built from hyper's.
///
/// Each connection keeps its own clone of `service` and calls it directly when it is ready at
/// once (an axum `Router` and [`InboundService`] always are): no clone per request. A service
/// that is not ready yet is cloned for that request, which waits for readiness on its own.
pub async fn serve<S, B>(
    listener: TcpListener,
    service: S,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()>
where
    S: Service<Request<Body>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    serve_with(listener, service, None, shutdown).await
}

/// [`serve`] with mutual TLS: each connection is accepted under the PeerAuthentication mode in
/// force for the workload and the port it arrived on (see [`InboundTls`]), and each request of
/// a mutual TLS connection carries the caller's [`PeerIdentity`](crate::context::PeerIdentity).
/// A connection refused (plaintext under STRICT, a failed handshake, STRICT without a workload
/// certificate) is closed before any HTTP.
pub async fn serve_tls<S, B>(
    listener: TcpListener,
    service: S,
    tls: InboundTls,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()>
where
    S: Service<Request<Body>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    serve_with(listener, service, Some(tls), shutdown).await
}

async fn serve_with<S, B>(
    listener: TcpListener,
    service: S,
    tls: Option<InboundTls>,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()>
where
    S: Service<Request<Body>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let fallback_local = listener.local_addr()?;
    let graceful = GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().unwrap_or(fallback_local);
        let mut svc = Connection {
            service: RefCell::new(service.clone()),
            spare: service.clone(),
            remote,
            local,
            peer: None,
        };
        let Some(tls) = &tls else {
            let conn = builder
                .serve_connection(TokioIo::new(stream), svc)
                .into_owned();
            let conn = graceful.watch(conn);
            tokio::spawn(async move {
                if let Err(error) = conn.await {
                    tracing::debug!(%error, %remote, "connection ended with an error");
                }
            });
            continue;
        };
        // The handshake runs in the connection's own task, so a slow client never holds up
        // the accept loop.
        let (tls, builder, watcher) = (tls.clone(), builder.clone(), graceful.watcher());
        tokio::spawn(async move {
            let (stream, peer) = match tls.accept(stream, local.port()).await {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::debug!(%error, %remote, "connection refused");
                    return;
                }
            };
            svc.peer = peer;
            let conn = builder
                .serve_connection(TokioIo::new(stream), svc)
                .into_owned();
            if let Err(error) = watcher.watch(conn).await {
                tracing::debug!(%error, %remote, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::debug!(
        connections = graceful.count(),
        "shutting down: finishing requests in flight"
    );
    graceful.shutdown().await;
    Ok(())
}

/// The hyper service of one connection.
struct Connection<S> {
    // Borrowed only for the duration of a synchronous `poll_ready` + `call`, never across an await.
    service: RefCell<S>,
    // What a request clones when `service` is busy.
    spare: S,
    remote: SocketAddr,
    local: SocketAddr,
    // The caller's identity, on a mutual TLS connection.
    peer: Option<PeerContext>,
}

impl<S> hyper::service::Service<Request<Incoming>> for Connection<S>
where
    S: Service<Request<Body>> + Clone,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ConnectionFuture<S>;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        let ext = req.extensions_mut();
        ext.insert(axum::extract::ConnectInfo(self.remote));
        ext.insert(LocalAddr(self.local));
        if let Some(peer) = &self.peer {
            ext.insert(peer.identity.clone());
            if let Some(alias) = &peer.alias {
                ext.insert(alias.clone());
            }
            if let Some(domains) = &peer.domains {
                ext.insert(domains.clone());
            }
            if let Some(local) = &peer.local {
                ext.insert(local.clone());
            }
        }
        let req = req.map(Body::new);
        let waiting = match self.service.try_borrow_mut() {
            Ok(mut svc) => {
                // Readiness is only peeked at here: a service that is not ready at once is left
                // alone (the no-op waker is never woken) and a clone waits for it below.
                let mut cx = Context::from_waker(Waker::noop());
                match svc.poll_ready(&mut cx) {
                    Poll::Ready(Ok(())) => {
                        return ConnectionFuture {
                            kind: Kind::Called { fut: svc.call(req) },
                        };
                    }
                    Poll::Ready(Err(error)) => {
                        return ConnectionFuture {
                            kind: Kind::Failed {
                                error: Some(error.into()),
                            },
                        };
                    }
                    Poll::Pending => svc.clone(),
                }
            }
            // Not reachable (nothing borrows across a call), but a clone is always correct.
            Err(_) => self.spare.clone(),
        };
        ConnectionFuture {
            kind: Kind::Waiting {
                fut: Oneshot::new(waiting, req),
            },
        }
    }
}

pin_project! {
    /// Response future of one request on a [`Connection`].
    struct ConnectionFuture<S>
    where
        S: Service<Request<Body>>,
    {
        #[pin]
        kind: Kind<S>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<S>
    where
        S: Service<Request<Body>>,
    {
        // The connection's service was ready and took the request.
        Called { #[pin] fut: S::Future },
        // A clone waits for readiness, then takes the request.
        Waiting { #[pin] fut: Oneshot<S, Request<Body>> },
        // The service failed readiness.
        Failed { error: Option<BoxError> },
    }
}

impl<S> Future for ConnectionFuture<S>
where
    S: Service<Request<Body>>,
    S::Error: Into<BoxError>,
{
    type Output = Result<S::Response, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Called { fut } => fut.poll(cx).map_err(Into::into),
            KindProj::Waiting { fut } => fut.poll(cx).map_err(Into::into),
            KindProj::Failed { error } => match error.take() {
                Some(error) => Poll::Ready(Err(error)),
                // Polled again after completion: stay pending rather than panic.
                None => Poll::Pending,
            },
        }
    }
}
