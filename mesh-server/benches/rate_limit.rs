//! Rate limiter cost per request: one shared bucket, and per-identity buckets over many keys.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use mesh_server::rate_limit::{RateLimitSettings, RateLimiter};

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("rate_limit");
    // Limits far above what the bench reaches, so every check takes the admit path.
    let total = RateLimiter::new(RateLimitSettings {
        total_rps: Some(u32::MAX),
        ..Default::default()
    });
    g.bench_function("total_single_key", |b| {
        b.iter(|| black_box(total.check(black_box(None)).is_ok()))
    });

    let keys: Vec<String> = (0..10_000)
        .map(|i| format!("https://issuer/user-{i}"))
        .collect();
    let per_id = RateLimiter::new(RateLimitSettings {
        identity_rps: Some(u32::MAX),
        max_identities: 20_000,
        ..Default::default()
    });
    let mut i = 0usize;
    g.bench_function("identity_10k_keys", |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            black_box(per_id.check(keys.get(i).map(String::as_str)).is_ok())
        })
    });

    let limited = RateLimiter::new(RateLimitSettings {
        total_rps: Some(1),
        ..Default::default()
    });
    let _ = limited.check(None);
    g.bench_function("total_refused", |b| {
        b.iter(|| black_box(limited.check(black_box(None)).is_err()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
