//! tower-http's body limit, with the body types mapped back to this stack's [`Body`].

use axum::body::Body;
use http::{Request, Response};
use tower::Layer;
use tower::util::{MapRequest, MapResponse};
use tower_http::body::Limited as LimitedBody;
use tower_http::limit::{RequestBodyLimit, RequestBodyLimitLayer, ResponseBody};

/// `S` behind a request body limit, bodies mapped back to [`Body`] on both sides.
pub(super) type Limited<S> = MapResponse<
    RequestBodyLimit<MapRequest<S, fn(Request<LimitedBody<Body>>) -> Request<Body>>>,
    fn(Response<ResponseBody<Body>>) -> Response<Body>,
>;

fn to_body(req: Request<LimitedBody<Body>>) -> Request<Body> {
    req.map(Body::new)
}

fn from_limited(res: Response<ResponseBody<Body>>) -> Response<Body> {
    res.map(Body::new)
}

/// `inner` behind a limit of `bytes`.
pub(super) fn limit<S>(bytes: usize, inner: S) -> Limited<S> {
    let inner = MapRequest::new(inner, to_body as fn(_) -> _);
    let inner = RequestBodyLimitLayer::new(bytes).layer(inner);
    MapResponse::new(inner, from_limited as fn(_) -> _)
}
