use std::collections::HashMap;

use mesh_core::policy::Destination;
use tower::ServiceExt;

use super::*;
use crate::body;

fn to(subset: &str, weight: u32) -> WeightedDestination {
    WeightedDestination {
        destination: Destination {
            host: "service2".into(),
            subset: Some(subset.into()),
            port: None,
        },
        weight,
        headers: HeaderRules::default(),
    }
}

#[test]
fn ninety_ten_within_tolerance() {
    let layer = SplitLayer::new(vec![to("v1", 90), to("v2", 10)])
        .unwrap()
        .with_random(Random::seeded(2024));
    let mut counts: HashMap<String, u32> = HashMap::new();
    for _ in 0..5_000 {
        let s = layer.pick().target.destination.subset.clone().unwrap();
        *counts.entry(s).or_default() += 1;
    }
    let v2 = counts.get("v2").copied().unwrap_or(0);
    // 10 % of 5000 = 500; binomial sd ~21: allow ±100.
    assert!((400..=600).contains(&v2), "v2 got {v2}");
    assert_eq!(counts.values().sum::<u32>(), 5_000);
}

#[test]
fn zero_weight_gets_nothing_and_bad_input_is_refused() {
    let layer = SplitLayer::new(vec![to("v1", 0), to("v2", 5), to("v3", 0)])
        .unwrap()
        .with_random(Random::seeded(1));
    for _ in 0..1_000 {
        assert_eq!(
            layer.pick().target.destination.subset.as_deref(),
            Some("v2")
        );
    }
    assert_eq!(SplitLayer::new(vec![]).unwrap_err(), SplitError::Empty);
    assert_eq!(
        SplitLayer::new(vec![to("v1", 0)]).unwrap_err(),
        SplitError::AllZero
    );
}

#[tokio::test]
async fn sets_target_and_destination_headers() {
    let mut d = to("v2", 1);
    d.headers.request.set.push((
        http::HeaderName::from_static("x-sub"),
        http::HeaderValue::from_static("v2"),
    ));
    d.headers.response.add.push((
        http::HeaderName::from_static("x-back"),
        http::HeaderValue::from_static("1"),
    ));
    let inner = tower::service_fn(|req: Request<BoxBody>| async move {
        let target = req.extensions().get::<Target>().cloned().unwrap();
        assert_eq!(target.destination.subset.as_deref(), Some("v2"));
        assert_eq!(req.headers()["x-sub"], "v2");
        Ok::<_, crate::BoxError>(Response::new(body::empty()))
    });
    let svc = SplitLayer::new(vec![d]).unwrap().layer(inner);
    let resp = svc.oneshot(Request::new(body::empty())).await.unwrap();
    assert_eq!(resp.headers()["x-back"], "1");
    assert_eq!(
        resp.extensions()
            .get::<Target>()
            .unwrap()
            .destination
            .subset
            .as_deref(),
        Some("v2"),
        "target copied to the response"
    );
}

#[tokio::test]
async fn an_answer_naming_its_destination_gets_no_target_copy() {
    let d = to("v1", 100);
    let inner = tower::service_fn(|req: Request<BoxBody>| async move {
        let target = req.extensions().get::<Target>().cloned().unwrap();
        let mut resp = Response::new(body::empty());
        let mut upstream = crate::context::Upstream::new("127.0.0.1:1".parse().unwrap());
        upstream.destination = Some(target.destination);
        resp.extensions_mut().insert(upstream);
        Ok::<_, crate::BoxError>(resp)
    });
    let svc = SplitLayer::new(vec![d]).unwrap().layer(inner);
    let resp = svc.oneshot(Request::new(body::empty())).await.unwrap();
    assert!(resp.extensions().get::<Target>().is_none());
    assert_eq!(resp.extensions().len(), 1, "only the Upstream");
}
