//! `x-request-id`: kept when the caller sent a valid one (1 to 128 visible ASCII characters),
//! else generated (a UUID v4, as Envoy does) and written into the request headers (so the
//! application forwards it); put in the request extensions (in the
//! [`RequestContext`](mesh_telemetry::RequestContext) with the trace context: read it with
//! [`RequestId::from_extensions`]), recorded on the
//! current span's `request_id` field (when `info` spans are enabled), and returned on the
//! response's `x-request-id` header.
//!
//! Generated ids come from a small fast generator (xoshiro) per thread, seeded once from the
//! operating system: unique ids, not secrets, which is all a request id has to be.
//!
//! On the way out, the client telemetry layer copies a [`RequestId`] extension of an outbound
//! request into its `x-request-id` header when the application did not set the header itself.
//!
//! ```
//! use mesh_server::request_id::RequestIdLayer;
//! use mesh_telemetry::RequestId;
//! use tower::{ServiceBuilder, service_fn};
//!
//! let svc = ServiceBuilder::new()
//!     .layer(RequestIdLayer::new())
//!     .service(service_fn(|req: http::Request<String>| async move {
//!         let id = RequestId::from_extensions(req.extensions()).map(ToString::to_string);
//!         Ok::<_, std::convert::Infallible>(http::Response::new(id.unwrap_or_default()))
//!     }));
//! # drop(svc);
//! ```

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::header::HeaderValue;
use http::{Request, Response};
use pin_project_lite::pin_project;
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use tower_layer::Layer;
use tower_service::Service;

pub use mesh_telemetry::request_id::{MAX_REQUEST_ID_LEN, RequestId, X_REQUEST_ID};

thread_local! {
    // Seeded once per thread from the thread's OS-seeded generator.
    static RNG: RefCell<SmallRng> = RefCell::new(SmallRng::from_rng(&mut rand::rng()));
}

/// 128 random bits from this thread's fast generator.
fn random_bits() -> u128 {
    RNG.try_with(|rng| rng.try_borrow_mut().ok().map(|mut rng| rng.random::<u128>()))
        .ok()
        .flatten()
        // Thread teardown (or a re-entrant call): the thread's secure generator.
        .unwrap_or_else(rand::random)
}

/// The length of a generated id's text.
const ID_LEN: usize = uuid::fmt::Hyphenated::LENGTH;

/// Generated ids written into one shared buffer before a new one is taken: 28 ids are 1008
/// bytes, a block the allocator serves from its per-thread cache. A buffer is freed when the
/// last of its ids is dropped, so an id kept for long keeps at most these 1008 bytes.
const IDS_PER_CHUNK: usize = 28;

thread_local! {
    // The rest of this thread's current buffer of generated ids.
    static CHUNK: RefCell<bytes::BytesMut> = RefCell::new(bytes::BytesMut::new());
}

/// `text` as bytes shared by reference count: a slice of this thread's buffer of ids, so that
/// a generated id costs no allocation of its own (two per buffer: its memory and, on the first
/// split, its shared header).
fn shared_id_bytes(text: &[u8; ID_LEN]) -> bytes::Bytes {
    CHUNK
        .try_with(|chunk| {
            let mut chunk = chunk.try_borrow_mut().ok()?;
            if chunk.capacity() < ID_LEN {
                *chunk = bytes::BytesMut::with_capacity(ID_LEN * IDS_PER_CHUNK);
            }
            chunk.extend_from_slice(text);
            // The id alone; the buffer's spare room stays for the next ones.
            Some(chunk.split().freeze())
        })
        .ok()
        .flatten()
        // Thread teardown (or a re-entrant call): bytes of its own.
        .unwrap_or_else(|| bytes::Bytes::from_owner(*text))
}

/// A fresh UUID v4 request id.
pub fn generate() -> RequestId {
    let mut buf = [0u8; ID_LEN];
    let uuid = uuid::Builder::from_random_bytes(random_bits().to_ne_bytes()).into_uuid();
    uuid.hyphenated().encode_lower(&mut buf);
    // The id goes into the request's header, its extension and the response's header: bytes
    // shared by reference count from the start, so those copies allocate nothing (a value made
    // from a copied slice allocates again on its first clone).
    let bytes = shared_id_bytes(&buf);
    // invariant: a hyphenated UUID is lower-case hex and dashes, valid header bytes.
    #[allow(clippy::expect_used)]
    let value = HeaderValue::from_maybe_shared(bytes)
        .expect("invariant: uuid text is a valid header value");
    RequestId::from_generated(value)
}

/// The request's id: the caller's when valid, else a new one.
pub fn keep_or_generate(headers: &http::HeaderMap) -> RequestId {
    RequestId::from_headers(headers).unwrap_or_else(generate)
}

/// Layer keeping or generating `x-request-id`; see the [module docs](self).
#[derive(Clone, Copy, Debug, Default)]
pub struct RequestIdLayer {
    _priv: (),
}

impl RequestIdLayer {
    /// The layer.
    pub fn new() -> Self {
        RequestIdLayer { _priv: () }
    }
}

impl<S> Layer<S> for RequestIdLayer {
    type Service = RequestIdService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestIdService { inner }
    }
}

/// Service of [`RequestIdLayer`].
#[derive(Clone, Debug)]
pub struct RequestIdService<S> {
    inner: S,
}

impl<S> RequestIdService<S> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Unwraps the service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B, RB> Service<Request<B>> for RequestIdService<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let id = match RequestId::from_headers(req.headers()) {
            // The header holds exactly this id already.
            Some(id) => id,
            None => {
                let id = generate();
                req.headers_mut()
                    .insert(X_REQUEST_ID.clone(), id.header_value().clone());
                id
            }
        };
        // The server span is an `info` span: nothing to record on when those are all off.
        if tracing::level_enabled!(tracing::Level::INFO) {
            tracing::Span::current().record("request_id", id.as_str());
        }
        // The field of the one context extension the trace layer made (or a new one).
        mesh_telemetry::RequestContext::entry(req.extensions_mut()).request_id = Some(id.clone());
        ResponseFuture {
            inner: self.inner.call(req),
            id: Some(id),
        }
    }
}

pin_project! {
    /// Response future of [`RequestIdService`]: puts the id on the response's header.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        id: Option<RequestId>,
    }
}

impl<F, RB, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<RB>, E>>,
{
    type Output = Result<Response<RB>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut result = std::task::ready!(this.inner.poll(cx));
        if let (Ok(resp), Some(id)) = (&mut result, this.id.take())
            && let http::header::Entry::Vacant(vacant) = resp.headers_mut().entry(&X_REQUEST_ID)
        {
            // One lookup of the name, not a `contains_key` and then an `insert`.
            vacant.insert(id.header_value().clone());
        }
        Poll::Ready(result)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use tower::{ServiceExt, service_fn};

    fn echo()
    -> impl Service<Request<String>, Response = Response<String>, Error = std::convert::Infallible>
    {
        service_fn(|req: Request<String>| async move {
            let ext = RequestId::from_extensions(req.extensions())
                .map(ToString::to_string)
                .unwrap_or_default();
            let hdr = req
                .headers()
                .get(&X_REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            assert_eq!(
                ext, hdr,
                "the header the app forwards is the extension's id"
            );
            Ok(Response::new(ext))
        })
    }

    async fn run(id: Option<&str>) -> (String, String) {
        let mut req = Request::new(String::new());
        if let Some(id) = id {
            req.headers_mut()
                .insert(&X_REQUEST_ID, HeaderValue::from_str(id).unwrap());
        }
        let resp = RequestIdLayer::new()
            .layer(echo())
            .oneshot(req)
            .await
            .unwrap();
        let hdr = resp
            .headers()
            .get(&X_REQUEST_ID)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        (resp.into_body(), hdr)
    }

    fn is_uuid_v4(s: &str) -> bool {
        uuid::Uuid::parse_str(s)
            .is_ok_and(|u| u.get_version_num() == 4 && u.get_variant() == uuid::Variant::RFC4122)
    }

    #[test]
    fn generated_ids_are_distinct_v4_uuids_on_every_thread() {
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| (0..500).map(|_| generate().to_string()).collect::<Vec<_>>())
            })
            .collect();
        let ids: Vec<String> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        assert_eq!(ids.len(), 2000);
        assert!(
            ids.iter().all(|id| is_uuid_v4(id)),
            "{:?}",
            ids.iter().find(|id| !is_uuid_v4(id))
        );
        let unique: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(
            unique.len(),
            ids.len(),
            "no id repeats, within or across threads"
        );
    }

    #[test]
    fn ids_sharing_a_buffer_keep_their_text() {
        // Over several buffers, each id kept alive while later ones are written beside it.
        let texts: Vec<[u8; ID_LEN]> = (0..IDS_PER_CHUNK * 3 + 5)
            .map(|i| {
                let mut text = [b'0'; ID_LEN];
                text[..8].copy_from_slice(format!("{i:08}").as_bytes());
                text
            })
            .collect();
        let shared: Vec<bytes::Bytes> = texts.iter().map(shared_id_bytes).collect();
        for (text, bytes) in texts.iter().zip(&shared) {
            assert_eq!(&bytes[..], &text[..]);
        }
        // An id outlives the others of its buffer and the thread's move to new buffers.
        let first = shared[0].clone();
        drop(shared);
        let later: Vec<_> = (0..IDS_PER_CHUNK * 2).map(|_| generate()).collect();
        assert_eq!(&first[..], &texts[0][..]);
        assert!(later.iter().all(|id| is_uuid_v4(&id.to_string())));
    }

    #[tokio::test(start_paused = true)]
    async fn two_ids_are_replaced_by_one_generated() {
        let mut req = Request::new(String::new());
        req.headers_mut()
            .append(&X_REQUEST_ID, HeaderValue::from_static("a"));
        req.headers_mut()
            .append(&X_REQUEST_ID, HeaderValue::from_static("b"));
        let resp = RequestIdLayer::new()
            .layer(echo())
            .oneshot(req)
            .await
            .unwrap();
        let seen = resp.into_body();
        assert!(is_uuid_v4(&seen), "{seen}");
    }

    #[tokio::test(start_paused = true)]
    async fn keeps_a_valid_id() {
        let (seen, returned) = run(Some("abc-123")).await;
        assert_eq!((seen.as_str(), returned.as_str()), ("abc-123", "abc-123"));
    }

    #[tokio::test(start_paused = true)]
    async fn generates_when_missing() {
        let (seen, returned) = run(None).await;
        assert!(is_uuid_v4(&seen), "{seen}");
        assert_eq!(seen, returned);
        let (other, _) = run(None).await;
        assert_ne!(seen, other);
    }

    #[tokio::test(start_paused = true)]
    async fn replaces_oversized_or_invalid_ids() {
        let long = "x".repeat(MAX_REQUEST_ID_LEN + 1);
        let (seen, _) = run(Some(&long)).await;
        assert!(is_uuid_v4(&seen), "{seen}");
        let (seen, _) = run(Some("two words")).await;
        assert!(is_uuid_v4(&seen), "{seen}");
        let ok = "y".repeat(MAX_REQUEST_ID_LEN);
        assert_eq!(run(Some(&ok)).await.0, ok);
    }
}
