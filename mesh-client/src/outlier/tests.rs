use std::net::SocketAddr;
use std::time::Duration;

use super::*;

fn addrs(n: u16) -> Vec<SocketAddr> {
    (0..n)
        .map(|i| SocketAddr::from(([127, 0, 0, 1], 9100 + i)))
        .collect()
}

fn cfg() -> OutlierDetection {
    OutlierDetection {
        consecutive_5xx: 3,
        base_ejection_time: Duration::from_secs(30),
        max_ejection_percent: 100,
        ..Default::default()
    }
}

#[tokio::test(start_paused = true)]
async fn ejects_after_consecutive_5xx_and_returns_after_base_time() {
    let od = OutlierDetector::new(cfg(), &addrs(2)).with_cluster_name("svc");
    od.record(0, Outcome::status(500));
    od.record(0, Outcome::status(500));
    od.record(0, Outcome::status(200)); // a success resets the run
    od.record(0, Outcome::status(500));
    od.record(0, Outcome::status(500));
    assert!(!od.is_ejected(0));
    od.record(0, Outcome::status(500));
    assert!(od.is_ejected(0));
    assert!(od.filtering());
    assert_eq!(
        od.metrics()
            .ejections("svc", "127.0.0.1:9100", "consecutive_5xx"),
        1
    );

    tokio::time::advance(Duration::from_secs(29)).await;
    assert!(od.is_ejected(0));
    tokio::time::advance(Duration::from_secs(2)).await;
    assert!(!od.filtering());
    assert!(!od.is_ejected(0));
    assert_eq!(od.metrics().returns("svc", "127.0.0.1:9100"), 1);
}

#[tokio::test(start_paused = true)]
async fn second_ejection_lasts_twice_as_long() {
    let od = OutlierDetector::new(cfg(), &addrs(2));
    for _ in 0..3 {
        od.record(1, Outcome::status(503));
    }
    tokio::time::advance(Duration::from_secs(31)).await;
    assert!(!od.is_ejected(1));
    for _ in 0..3 {
        od.record(1, Outcome::status(503));
    }
    tokio::time::advance(Duration::from_secs(45)).await;
    assert!(od.is_ejected(1), "second ejection is 2 × base");
    tokio::time::advance(Duration::from_secs(16)).await;
    assert!(!od.is_ejected(1));
    assert_eq!(od.health()[1].ejections_total, 2);
}

#[tokio::test(start_paused = true)]
async fn max_ejection_percent_allows_the_first_then_limits() {
    let config = OutlierDetection {
        max_ejection_percent: 10,
        ..cfg()
    };
    let od = OutlierDetector::new(config, &addrs(4));
    for i in 0..2 {
        for _ in 0..3 {
            od.record(i, Outcome::status(500));
        }
    }
    assert!(od.is_ejected(0), "the first ejection always happens");
    assert!(!od.is_ejected(1), "10 % of 4 endpoints allows no second");
}

#[tokio::test(start_paused = true)]
async fn below_min_health_percent_ejection_is_ignored() {
    let config = OutlierDetection {
        min_health_percent: 60,
        ..cfg()
    };
    let od = OutlierDetector::new(config, &addrs(2));
    for _ in 0..3 {
        od.record(0, Outcome::status(500));
    }
    assert!(od.is_ejected(0));
    // 50 % healthy < 60 %: balance over all.
    assert!(!od.filtering());
}

#[tokio::test(start_paused = true)]
async fn gateway_errors_and_local_origin_split() {
    let config = OutlierDetection {
        consecutive_5xx: 0,
        consecutive_gateway_errors: 2,
        ..cfg()
    };
    let od = OutlierDetector::new(config, &addrs(2));
    od.record(0, Outcome::status(500)); // not a gateway error
    od.record(0, Outcome::status(502));
    assert!(!od.is_ejected(0));
    od.record(0, Outcome::ConnectFailure);
    assert!(od.is_ejected(0));

    let config = OutlierDetection {
        consecutive_5xx: 2,
        consecutive_local_origin_failures: 3,
        split_external_local_origin_errors: true,
        ..cfg()
    };
    let od = OutlierDetector::new(config, &addrs(2));
    od.record(0, Outcome::ConnectFailure);
    od.record(0, Outcome::Reset);
    od.record(0, Outcome::status(500)); // an answer: local run resets, 5xx run is 1
    od.record(0, Outcome::Timeout);
    od.record(0, Outcome::Timeout);
    assert!(
        !od.is_ejected(0),
        "split: local failures do not count as 5xx"
    );
    od.record(0, Outcome::ConnectFailure);
    assert!(od.is_ejected(0));
}

#[tokio::test(start_paused = true)]
async fn overflow_is_not_counted_and_rebuild_keeps_state() {
    let od = OutlierDetector::new(cfg(), &addrs(3));
    for _ in 0..10 {
        od.record(2, Outcome::Overflow);
    }
    assert!(!od.is_ejected(2));
    for _ in 0..3 {
        od.record(2, Outcome::status(500));
    }
    assert!(od.is_ejected(2));
    let mut next = addrs(3);
    next.remove(0);
    let od2 = od.rebuilt(cfg(), &next);
    assert!(
        od2.is_ejected(1),
        "endpoint 9102 is now index 1 and still ejected"
    );
    assert!(!od2.is_ejected(0));
    assert!(od2.filtering());
}
