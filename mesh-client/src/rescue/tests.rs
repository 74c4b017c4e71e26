use http_body_util::BodyExt;
use mesh_core::classify::Outcome;

use super::*;
use crate::BoxError;
use crate::error::ClusterError;

async fn answer(error: &(dyn std::error::Error + 'static)) -> (u16, String, String) {
    let response = rescue(error);
    let status = response.status().as_u16();
    let flags = response
        .extensions()
        .get::<ResponseFlags>()
        .map(ResponseFlags::to_label)
        .unwrap_or_default();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap(), flags)
}

#[tokio::test]
async fn every_typed_error_gets_envoys_answer() {
    let timeout = (504, TIMEOUT.to_owned(), "UT".to_owned());
    assert_eq!(answer(&RouteTimeout(())).await, timeout);
    assert_eq!(answer(&PerTryTimeout(())).await, timeout);
    assert_eq!(answer(&ClusterError::new(Outcome::Timeout)).await, timeout);
    assert_eq!(
        answer(&FaultAbort::new(StatusCode::IM_A_TEAPOT, None)).await,
        (418, "fault filter abort".into(), "FI".into())
    );
    assert_eq!(
        answer(&NoRoute(())).await,
        (404, String::new(), "NR".into())
    );
    assert_eq!(
        answer(&ClusterError::no_healthy_upstream()).await,
        (503, "no healthy upstream".into(), "UH".into())
    );
    assert_eq!(
        answer(&ClusterError::no_cluster("service2", "v3")).await,
        (503, String::new(), "NC".into())
    );
    let (status, text, flags) = answer(&ClusterError::new(Outcome::ConnectFailure)).await;
    assert_eq!((status, flags.as_str()), (503, "UF"));
    assert!(text.ends_with("reset reason: connection failure"), "{text}");
    let (status, text, flags) = answer(&ClusterError::overflow(None)).await;
    assert_eq!((status, flags.as_str()), (503, "UO"));
    assert!(text.ends_with("reset reason: overflow"), "{text}");
    // Anything the mesh does not know is a reset before headers.
    let unknown: BoxError = "boom".into();
    let (status, text, flags) = answer(unknown.as_ref()).await;
    assert_eq!((status, flags.as_str()), (503, "UR"));
    assert!(
        text.ends_with("reset reason: connection termination"),
        "{text}"
    );
}

#[test]
fn flags_accumulate() {
    let mut r = local_reply(StatusCode::NOT_FOUND, "x", Some("NR"));
    add_flag(&mut r, "URX");
    add_flag(&mut r, "NR");
    assert_eq!(
        r.extensions().get::<ResponseFlags>().unwrap().to_label(),
        "NR,URX"
    );
}
