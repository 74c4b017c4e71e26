//! tower-http's body limit, with the body types mapped back to this stack's [`Body`].

use axum::body::Body;
use http::{Request, Response};
use tower::ServiceBuilder;
use tower::layer::util::{Identity, Stack};
use tower::util::{MapRequestLayer, MapResponseLayer};
use tower_http::body::Limited;
use tower_http::limit::{RequestBodyLimitLayer, ResponseBody};

type Layers = Stack<
    MapRequestLayer<fn(Request<Limited<Body>>) -> Request<Body>>,
    Stack<RequestBodyLimitLayer, Stack<MapResponseLayer<fn(Response<ResponseBody<Body>>) -> Response<Body>>, Identity>>,
>;

fn to_body(req: Request<Limited<Body>>) -> Request<Body> {
    req.map(Body::new)
}

fn from_limited(res: Response<ResponseBody<Body>>) -> Response<Body> {
    res.map(Body::new)
}

/// The layer for a limit of `bytes`.
pub(super) fn layer(bytes: usize) -> ServiceBuilder<Layers> {
    ServiceBuilder::new()
        .layer(MapResponseLayer::new(from_limited as fn(_) -> _))
        .layer(RequestBodyLimitLayer::new(bytes))
        .layer(MapRequestLayer::new(to_body as fn(_) -> _))
}
