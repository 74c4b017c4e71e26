//! Build and lookup costs of the consistent-hash tables at 10, 100 and 1000 endpoints.
//!
//! `cargo bench -p mesh-core --bench hash -- --warm-up-time 1 --measurement-time 2`
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use mesh_core::hash::{Table, hash_key};
use mesh_core::policy::HashTable;

const KINDS: [(&str, HashTable); 2] = [
    (
        "ring",
        HashTable::Ring {
            minimum_ring_size: 1024,
        },
    ),
    ("maglev", HashTable::Maglev { table_size: 65537 }),
];

fn endpoints(n: usize) -> Vec<(String, u32)> {
    (0..n)
        .map(|i| (format!("10.{}.{}.1:8080", i / 256, i % 256), 1))
        .collect()
}

fn build(c: &mut Criterion) {
    let mut group = c.benchmark_group("build");
    for n in [10usize, 100, 1000] {
        let ep = endpoints(n);
        for (name, kind) in &KINDS {
            group.bench_with_input(BenchmarkId::new(*name, n), &ep, |b, ep| {
                b.iter(|| Table::build(kind, black_box(ep)));
            });
        }
    }
    group.finish();
}

fn lookup(c: &mut Criterion) {
    let mut group = c.benchmark_group("lookup");
    let keys: Vec<u64> = (0..1024).map(|k: u32| hash_key(&k.to_le_bytes())).collect();
    for n in [10usize, 100, 1000] {
        let ep = endpoints(n);
        for (name, kind) in &KINDS {
            let Ok(table) = Table::build(kind, &ep) else {
                continue;
            };
            group.bench_function(BenchmarkId::new(*name, n), |b| {
                let mut i = 0usize;
                b.iter(|| {
                    i = (i + 1) & 1023;
                    table.pick(black_box(keys[i]))
                });
            });
        }
    }
    group.bench_function("hash_key/16B", |b| {
        b.iter(|| hash_key(black_box(b"0123456789abcdef")))
    });
    group.finish();
}

criterion_group!(benches, build, lookup);
criterion_main!(benches);
