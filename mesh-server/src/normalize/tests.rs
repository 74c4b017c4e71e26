use mesh_core::normalize::{InvalidPath, PathNormalization};
use tower::{Layer, ServiceExt};
use tower_test::mock;

use super::*;

#[tokio::test]
async fn the_inner_service_receives_the_normalized_uri() {
    let (svc, mut handle) = mock::pair::<Request<()>, &'static str>();
    let mut svc = NormalizeLayer::new(PathNormalization::Base).layer(svc);
    let call = tokio::spawn(async move {
        let req = Request::get("http://service1/public/%2e%2e/private?q=%2e")
            .body(())
            .unwrap();
        svc.ready().await.unwrap().call(req).await.unwrap()
    });
    let (req, send) = handle.next_request().await.unwrap();
    assert_eq!(req.uri(), "http://service1/private?q=%2e");
    send.send_response("ok");
    assert_eq!(call.await.unwrap(), "ok");
}

#[tokio::test]
async fn an_unnormalizable_path_never_reaches_the_inner_service() {
    let (svc, mut handle) = mock::pair::<Request<()>, &'static str>();
    let mut svc = Normalize::new(svc, PathNormalization::Base);
    let req = Request::get("/a%00b").body(()).unwrap();
    let err = svc.ready().await.unwrap().call(req).await.unwrap_err();
    let refused = err.downcast_ref::<PathRefused>().expect("a PathRefused");
    assert_eq!(refused.reason(), InvalidPath::Nul);
    // The next request still goes through, and it is the first the inner service sees.
    let call = tokio::spawn(async move {
        svc.ready()
            .await
            .unwrap()
            .call(Request::get("/ok").body(()).unwrap())
            .await
    });
    let (req, send) = handle.next_request().await.unwrap();
    assert_eq!(req.uri(), "/ok");
    send.send_response("fine");
    assert_eq!(call.await.unwrap().unwrap(), "fine");
}

#[tokio::test]
async fn the_shared_level_applies_to_requests_that_start_after_a_change() {
    let level = SharedLevel::new(PathNormalization::None);
    let (svc, mut handle) = mock::pair::<Request<()>, &'static str>();
    let mut svc = NormalizeLayer::shared(level.clone()).layer(svc);
    let seen = tokio::spawn(async move {
        let mut paths = Vec::new();
        for _ in 0..2 {
            let (req, send) = handle.next_request().await.unwrap();
            paths.push(req.uri().path().to_owned());
            send.send_response("ok");
        }
        paths
    });
    svc.ready()
        .await
        .unwrap()
        .call(Request::get("/a//./b").body(()).unwrap())
        .await
        .unwrap();
    level.set(PathNormalization::MergeSlashes);
    svc.ready()
        .await
        .unwrap()
        .call(Request::get("/a//./b").body(()).unwrap())
        .await
        .unwrap();
    assert_eq!(seen.await.unwrap(), ["/a//./b", "/a/b"]);
}

#[test]
fn levels_survive_the_shared_cell() {
    for level in [
        PathNormalization::None,
        PathNormalization::Base,
        PathNormalization::MergeSlashes,
        PathNormalization::DecodeAndMergeSlashes,
    ] {
        assert_eq!(SharedLevel::new(level).get(), level);
    }
    assert_eq!(SharedLevel::default().get(), PathNormalization::Base);
}
