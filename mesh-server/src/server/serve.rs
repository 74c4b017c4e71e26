//! [`serve`]: a hyper server with graceful shutdown that tells the layers who is calling.

use super::*;

/// Serves HTTP/1.1 and HTTP/2 (prior knowledge) on `listener` until `shutdown` completes, then
/// stops accepting and waits for the requests in flight to finish (keep-alive connections are
/// told to close).
///
/// Each request carries [`RemoteAddr`], [`LocalAddr`] and axum's `ConnectInfo<SocketAddr>` in its
/// extensions, and a [`Body`] built from hyper's.
pub async fn serve<S, B>(listener: TcpListener, service: S, shutdown: impl Future<Output = ()> + Send) -> io::Result<()>
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
        let svc = service.clone();
        let hyper_svc = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            let ext = req.extensions_mut();
            ext.insert(RemoteAddr(remote));
            ext.insert(LocalAddr(local));
            ext.insert(axum::extract::ConnectInfo(remote));
            svc.clone().oneshot(req.map(Body::new))
        });
        let conn = builder.serve_connection(TokioIo::new(stream), hyper_svc).into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(error) = conn.await {
                tracing::debug!(%error, %remote, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::debug!(connections = graceful.count(), "shutting down: finishing requests in flight");
    graceful.shutdown().await;
    Ok(())
}
