use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use super::*;
use mesh_core::policy::HashKey;

fn eps(n: u16) -> Vec<Endpoint> {
    (0..n)
        .map(|i| Endpoint::new(SocketAddr::from(([127, 0, 0, 1], 9000 + i))))
        .collect()
}

fn counts(lb: &Balancer, picks: usize) -> HashMap<usize, usize> {
    let mut m = HashMap::new();
    for _ in 0..picks {
        *m.entry(lb.pick(None, |_| true).unwrap()).or_default() += 1;
    }
    m
}

#[test]
fn round_robin_cycles_and_respects_weights() {
    let lb = Balancer::round_robin(eps(3));
    let seq: Vec<_> = (0..6).map(|_| lb.pick(None, |_| true).unwrap()).collect();
    assert_eq!(seq, vec![0, 1, 2, 0, 1, 2]);

    let mut e = eps(2);
    e[1].weight = 3;
    let c = counts(&Balancer::round_robin(e), 400);
    assert_eq!(c[&0], 100);
    assert_eq!(c[&1], 300);
}

#[test]
fn random_is_seeded_and_weighted() {
    let mut e = eps(2);
    e[0].weight = 9;
    let a = Balancer::random(e.clone()).with_rng(Rng::from_seed(3));
    let b = Balancer::random(e).with_rng(Rng::from_seed(3));
    let sa: Vec<_> = (0..50).map(|_| a.pick(None, |_| true)).collect();
    let sb: Vec<_> = (0..50).map(|_| b.pick(None, |_| true)).collect();
    assert_eq!(sa, sb);
    let c = counts(&a, 1000);
    assert!(c[&0] > 800, "{c:?}");
}

#[test]
fn unusable_endpoints_are_skipped_by_every_algorithm() {
    let all = [
        Balancer::round_robin(eps(4)),
        Balancer::random(eps(4)),
        Balancer::least_request(eps(4)),
        Balancer::peak_ewma(eps(4)),
        Balancer::passthrough(eps(4)),
    ];
    for lb in all {
        for _ in 0..50 {
            assert_eq!(lb.pick(None, |i| i == 2), Some(2), "{lb:?}");
        }
        assert_eq!(lb.pick(None, |_| false), None);
    }
}

#[test]
fn least_request_honours_weights_with_envoys_effective_weight() {
    // idle: shares follow the weights (1:3)
    let mut e = eps(2);
    e[1].weight = 3;
    let lb = Balancer::least_request(e).with_rng(Rng::from_seed(7));
    let c = counts(&lb, 4000);
    assert!((900..1100).contains(&c[&0]), "{c:?}");
    // endpoint 1 has 5 requests in flight: 3 / (5 + 1) = 0.5 against 1 / 1, so endpoint 0 now
    // gets about two picks in three
    for _ in 0..5 {
        lb.begin(1);
    }
    let c = counts(&lb, 3000);
    assert!((1850..2150).contains(&c[&0]), "{c:?}");
    // unusable endpoints are still skipped
    assert!((0..50).all(|_| lb.pick(None, |i| i == 1) == Some(1)));
    assert_eq!(lb.pick(None, |_| false), None);
}

#[test]
fn least_request_prefers_fewer_in_flight() {
    let lb = Balancer::least_request(eps(2)).with_rng(Rng::from_seed(5));
    for _ in 0..5 {
        lb.begin(0);
    }
    // With two endpoints both are always the candidates: the idle one wins every time.
    for _ in 0..20 {
        assert_eq!(lb.pick(None, |_| true), Some(1));
    }
    for _ in 0..5 {
        lb.end(0, None);
    }
    assert_eq!(lb.in_flight(0), 0);
}

#[tokio::test(start_paused = true)]
async fn peak_ewma_steers_away_from_slow_endpoint() {
    let lb = Balancer::peak_ewma(eps(2)).with_rng(Rng::from_seed(5));
    lb.observe(0, Duration::from_millis(800));
    lb.observe(1, Duration::from_millis(5));
    for _ in 0..20 {
        assert_eq!(lb.pick(None, |_| true), Some(1));
    }
    // One slow answer from the fast endpoint counts at once (the peak), and flips the choice.
    tokio::time::advance(Duration::from_secs(1)).await;
    lb.observe(1, Duration::from_secs(2));
    for _ in 0..20 {
        assert_eq!(lb.pick(None, |_| true), Some(0));
    }
}

#[derive(Debug)]
struct Modulo(usize);
impl PickTable for Modulo {
    fn pick(&self, hash: u64) -> usize {
        (hash % self.0 as u64) as usize
    }
}

fn hashing(n: u16) -> Balancer {
    let policy = HashPolicy::with_table(HashKey::SourceIp, Arc::new(Modulo(n as usize)));
    let weights = WeightTable::new(std::iter::repeat_n(1, n as usize));
    Balancer::with(Algorithm::ConsistentHash { policy, weights }, eps(n))
}

#[test]
fn hash_pick_is_sticky_and_falls_back_deterministically() {
    let lb = hashing(5);
    let first = lb.pick(Some(42), |_| true).unwrap();
    for _ in 0..100 {
        assert_eq!(lb.pick(Some(42), |_| true), Some(first));
    }
    let other = lb.pick(Some(42), |i| i != first).unwrap();
    assert_ne!(other, first);
    assert_eq!(lb.pick(Some(42), |i| i != first), Some(other));
    // No key: spread at random, never None while something is usable.
    let c = counts(&lb, 200);
    assert!(c.len() > 1, "{c:?}");
}

#[test]
fn only_peak_ewma_learns_from_latency() {
    // The cluster reads the clock for an attempt's latency only when this says so.
    assert!(Balancer::peak_ewma(eps(2)).learns_latency());
    for lb in [
        Balancer::least_request(eps(2)),
        Balancer::round_robin(eps(2)),
        Balancer::random(eps(2)),
        hashing(2),
    ] {
        assert!(!lb.learns_latency(), "{lb:?}");
    }
}
