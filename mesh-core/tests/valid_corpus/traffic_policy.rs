//! DestinationRule traffic policies from Istio's examples: connection pools, outlier detection,
//! consistent hashes and how port-level and subset policies merge.

use super::*;

#[test]
fn circuit_breaker_values() {
    let l = load("httpbin-circuit-breaker.yaml");
    let tp = &l
        .config
        .destination("httpbin")
        .expect("rule")
        .traffic_policy;
    let cp = &tp.connection_pool;
    assert_eq!(cp.max_connections, 1);
    assert_eq!(cp.connect_timeout, Duration::from_millis(30));
    assert_eq!(cp.http1_max_pending_requests, 1);
    assert_eq!(cp.max_requests_per_connection, 1);
    assert_eq!(cp.http2_max_requests, 100);
    assert_eq!(cp.max_retries, 3);
    assert_eq!(cp.idle_timeout, Duration::from_secs(30));
    let od = tp.outlier_detection.as_ref().expect("outlier detection");
    assert_eq!(od.consecutive_5xx, 1);
    assert_eq!(od.interval, Duration::from_secs(1));
    assert_eq!(od.base_ejection_time, Duration::from_secs(180));
    assert_eq!(od.max_ejection_percent, 100);
    assert_eq!(od.consecutive_gateway_errors, 0);
    assert_eq!(
        (
            tp.retry_budget.percent,
            tp.retry_budget.min_retry_concurrency
        ),
        (25.0, 5)
    );
}

#[test]
fn cookie_over_ring_hash() {
    let l = load("cookie-ring-hash.yaml");
    let tp = &l
        .config
        .destination("ratings.prod.svc.cluster.local")
        .expect("rule")
        .traffic_policy;
    match &tp.load_balancer {
        LoadBalancer::ConsistentHash(ch) => {
            assert_eq!(
                ch.key,
                HashKey::Cookie {
                    name: "user".into(),
                    path: None,
                    ttl: Some(Duration::ZERO)
                }
            );
            assert_eq!(
                ch.table,
                HashTable::Ring {
                    minimum_ring_size: 2048
                }
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn source_ip_over_maglev() {
    let l = load("source-ip-maglev.yaml");
    match &l
        .config
        .destination("ratings")
        .expect("rule")
        .traffic_policy
        .load_balancer
    {
        LoadBalancer::ConsistentHash(ch) => {
            assert_eq!(ch.key, HashKey::SourceIp);
            assert_eq!(ch.table, HashTable::Maglev { table_size: 131 });
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn port_level_and_subset_policies_merge() {
    let l = load("port-level-and-subsets.yaml");
    let dr = l
        .config
        .destination("ratings.prod.svc.cluster.local")
        .expect("rule");
    assert_eq!(dr.traffic_policy.load_balancer, LoadBalancer::RoundRobin);
    assert_eq!(
        dr.policy_for(None, Some(80)).load_balancer,
        LoadBalancer::LeastRequest
    );
    assert_eq!(
        dr.policy_for(None, Some(9080)).load_balancer,
        LoadBalancer::Random
    );
    // the port-level entry keeps the rule's connection pool it did not override
    assert_eq!(
        dr.policy_for(None, Some(9080))
            .connection_pool
            .max_connections,
        100
    );
    assert_eq!(
        dr.policy_for(None, Some(1234)).load_balancer,
        LoadBalancer::RoundRobin
    );
    // the subset's own load balancer beats the rule's, and its connection pool is inherited
    let sub = dr.policy_for(Some("testversion"), None);
    assert_eq!(sub.load_balancer, LoadBalancer::Passthrough);
    assert_eq!(sub.connection_pool.max_connections, 100);
    // ...also on a port the rule configures: the subset is more specific than the rule's port
    assert_eq!(
        dr.policy_for(Some("testversion"), Some(80)).load_balancer,
        LoadBalancer::Passthrough
    );
    assert_eq!(
        dr.policy_for(Some("testversion"), Some(80))
            .connection_pool
            .max_connections,
        100
    );
}

#[test]
fn query_parameter_hash_and_deprecated_fields() {
    let l = load("query-param-hash.yaml");
    let tp = &l.config.destination("search").expect("rule").traffic_policy;
    match &tp.load_balancer {
        LoadBalancer::ConsistentHash(ch) => {
            assert_eq!(ch.key, HashKey::QueryParam("user".into()));
            assert_eq!(
                ch.table,
                HashTable::Ring {
                    minimum_ring_size: 4096
                }
            );
        }
        other => panic!("{other:?}"),
    }
    let od = tp.outlier_detection.as_ref().expect("outlier");
    assert_eq!((od.consecutive_gateway_errors, od.consecutive_5xx), (3, 0));
}
