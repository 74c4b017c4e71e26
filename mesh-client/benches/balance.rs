//! Pick cost of each balancer at 10, 100, 1000 and 10 000 endpoints, and outlier detection's
//! bookkeeping per attempt (a success, a 5xx) at 10, 1000 and 10 000 endpoints.
//!
//! `cargo bench -p mesh-client --bench balance -- --warm-up-time 1 --measurement-time 2`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use mesh_client::balance::{Balancer, Endpoint};
use mesh_client::outlier::OutlierDetector;
use mesh_client::random::Rng;
use mesh_core::classify::Outcome;
use mesh_core::policy::{ConsistentHash, HashKey, HashTable, OutlierDetection};

fn endpoints(n: usize) -> Vec<Endpoint> {
    (0..n)
        .map(|i| {
            Endpoint::new(SocketAddr::from((
                [10, (i >> 8) as u8, (i & 0xff) as u8, 1],
                8080,
            )))
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let mut group = c.benchmark_group("pick");
    for n in [10usize, 100, 1000, 10_000] {
        let ring = ConsistentHash {
            key: HashKey::SourceIp,
            table: HashTable::Ring {
                minimum_ring_size: 1024,
            },
        };
        let maglev = ConsistentHash {
            key: HashKey::SourceIp,
            table: HashTable::Maglev { table_size: 65537 },
        };
        let mut balancers = vec![
            ("round_robin", Balancer::round_robin(endpoints(n))),
            ("random", Balancer::random(endpoints(n))),
            ("least_request", Balancer::least_request(endpoints(n))),
            ("peak_ewma", Balancer::peak_ewma(endpoints(n))),
        ];
        for (name, cfg) in [("ring_hash", ring), ("maglev", maglev)] {
            match Balancer::consistent_hash(endpoints(n), &cfg) {
                Ok(b) => balancers.push((name, b)),
                Err(e) => eprintln!("{name}: {e}"),
            }
        }
        for (name, lb) in balancers {
            let lb = lb.with_rng(Rng::from_seed(1));
            // Some load so that the P2C comparisons are not all ties.
            for i in (0..n).step_by(3) {
                lb.begin(i);
                lb.observe(i, Duration::from_millis(1 + (i % 7) as u64));
            }
            let mut key = 0u64;
            group.bench_with_input(BenchmarkId::new(name, n), &lb, |b, lb| {
                b.iter(|| {
                    key = key.wrapping_add(0x9e37_79b9_7f4a_7c15);
                    black_box(lb.pick(Some(key), |_| true))
                })
            });
            // With one endpoint in three unusable (ejected or already tried).
            group.bench_with_input(
                BenchmarkId::new(format!("{name}/skip_third"), n),
                &lb,
                |b, lb| {
                    b.iter(|| {
                        key = key.wrapping_add(0x9e37_79b9_7f4a_7c15);
                        black_box(lb.pick(Some(key), |i| i % 3 != 0))
                    })
                },
            );
        }
    }
    group.finish();
}

fn bench_outlier(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let mut group = c.benchmark_group("outlier_record");
    for n in [10usize, 1000, 10_000] {
        let addrs: Vec<SocketAddr> = endpoints(n).iter().map(|e| e.addr).collect();
        let config = OutlierDetection {
            consecutive_5xx: 5,
            ..OutlierDetection::default()
        };
        let od = OutlierDetector::new(config, &addrs);
        let mut i = 0usize;
        group.bench_with_input(BenchmarkId::new("success", n), &od, |b, od| {
            b.iter(|| {
                i = (i + 7) % n;
                od.record(
                    black_box(i),
                    Outcome::Response {
                        status: 200,
                        grpc_status: None,
                    },
                );
            })
        });
        // A 5xx then a success at the same endpoint: the counter moves, nothing is ejected.
        group.bench_with_input(BenchmarkId::new("5xx_then_success", n), &od, |b, od| {
            b.iter(|| {
                i = (i + 7) % n;
                od.record(
                    black_box(i),
                    Outcome::Response {
                        status: 503,
                        grpc_status: None,
                    },
                );
                od.record(
                    black_box(i),
                    Outcome::Response {
                        status: 200,
                        grpc_status: None,
                    },
                );
            })
        });
        group.bench_with_input(BenchmarkId::new("is_marked_ejected", n), &od, |b, od| {
            b.iter(|| {
                i = (i + 7) % n;
                black_box(od.is_marked_ejected(black_box(i)))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench, bench_outlier);
criterion_main!(benches);
