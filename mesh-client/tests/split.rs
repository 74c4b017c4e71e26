//! The article's 90/10 canary split against real v1 and v2 servers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use http::StatusCode;
use support::*;

#[tokio::test]
async fn ninety_ten_split_reaches_both_subsets_in_proportion() {
    let v1 = ok_backend("v1").await;
    let v2 = ok_backend("v2").await;
    let yaml = format!(
        "{}\n---\n{}",
        seed("04-destinationrule-subsets.yaml"),
        seed("06-virtualservice-split.yaml")
    );
    let (client, _store) = mesh(
        &yaml,
        &[
            ("service2", v1.addr, labels(&[("version", "v1")])),
            ("service2", v2.addr, labels(&[("version", "v2")])),
        ],
        90,
    );
    let n = 1_000;
    for _ in 0..n {
        let (status, _, _) = get(&client, "http://service2/split").await;
        assert_eq!(status, StatusCode::OK);
    }
    // Expected 100 to v2 (sd ~9.5): allow ±40.
    assert!((60..=140).contains(&v2.hits()), "v2 got {}", v2.hits());
    assert_eq!(v1.hits() + v2.hits(), n);
}
