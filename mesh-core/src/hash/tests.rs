#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed expectation is the test failing

use proptest::prelude::*;

use super::*;

const KEYS: usize = 10_000;

fn endpoints(n: usize) -> Vec<(String, u32)> {
    (0..n)
        .map(|i| (format!("10.0.{}.{}:8080", i / 250, i % 250), 1))
        .collect()
}

fn ring(ep: &[(String, u32)]) -> Table {
    Table::build(
        &HashTable::Ring {
            minimum_ring_size: 1024,
        },
        ep,
    )
    .unwrap()
}

fn maglev(ep: &[(String, u32)]) -> Table {
    Table::build(&HashTable::Maglev { table_size: 65537 }, ep).unwrap()
}

/// The key (not the index) each of `KEYS` request keys lands on.
fn owners(table: &Table, ep: &[(String, u32)]) -> Vec<String> {
    (0..KEYS)
        .map(|k| {
            ep[table.pick(hash_key(format!("user-{k}").as_bytes()))]
                .0
                .clone()
        })
        .collect()
}

fn counts(owners: &[String], ep: &[(String, u32)]) -> Vec<usize> {
    ep.iter()
        .map(|(k, _)| owners.iter().filter(|o| *o == k).count())
        .collect()
}

#[test]
fn hash_key_is_fixed_across_processes() {
    // A fixed seed: this value must never change, or replicas of different versions disagree.
    assert_eq!(
        hash_key(b"v1"),
        xxhash_rust::xxh3::xxh3_64_with_seed(b"v1", SEED)
    );
    assert_ne!(hash_key(b"v1"), hash_key(b"v2"));
}

#[test]
fn same_table_regardless_of_input_order() {
    for build in [ring as fn(&[(String, u32)]) -> Table, maglev] {
        let ep = endpoints(17);
        let mut reversed = ep.clone();
        reversed.reverse();
        let mut rotated = ep.clone();
        rotated.rotate_left(5);
        let a = owners(&build(&ep), &ep);
        assert_eq!(a, owners(&build(&reversed), &reversed));
        assert_eq!(a, owners(&build(&rotated), &rotated));
    }
}

#[test]
fn ring_distribution_within_tolerance() {
    let ep = endpoints(10);
    let c = counts(&owners(&ring(&ep), &ep), &ep);
    // 10 endpoints, 10k keys: 1000 each ideally; a 1024+ point ring stays within ±35 %.
    for n in &c {
        assert!((650..=1350).contains(n), "ring counts {c:?}");
    }
}

#[test]
fn maglev_distribution_within_tolerance() {
    let ep = endpoints(10);
    let c = counts(&owners(&maglev(&ep), &ep), &ep);
    for n in &c {
        assert!((800..=1200).contains(n), "maglev counts {c:?}");
    }
}

#[test]
fn weights_are_respected() {
    let ep = vec![("a".to_owned(), 1), ("b".to_owned(), 3)];
    for table in [ring(&ep), maglev(&ep)] {
        let c = counts(&owners(&table, &ep), &ep);
        // b should get about 75 %.
        assert!((6500..=8500).contains(&c[1]), "weighted counts {c:?}");
    }
}

#[test]
fn maglev_slots_follow_weights_exactly() {
    let ep = vec![
        ("a".to_owned(), 1),
        ("b".to_owned(), 2),
        ("c".to_owned(), 1),
    ];
    let Table::Maglev(m) = maglev(&ep) else {
        panic!("maglev")
    };
    let mut per = [0usize; 3];
    for s in 0..m.table_size() as u64 {
        per[m.pick(s)] += 1;
    }
    assert_eq!(per.iter().sum::<usize>(), 65537);
    // Slot shares within one slot of 1:2:1.
    assert!(
        per[1].abs_diff(2 * per[0]) <= 2 && per[0].abs_diff(per[2]) <= 1,
        "{per:?}"
    );
}

/// Removes endpoint `gone` from 10 and reports (keys that moved, keys of survivors that moved).
fn disruption(build: fn(&[(String, u32)]) -> Table, gone: usize) -> (usize, usize) {
    let before_ep = endpoints(10);
    let mut after_ep = before_ep.clone();
    let removed = after_ep.remove(gone).0;
    let before = owners(&build(&before_ep), &before_ep);
    let after = owners(&build(&after_ep), &after_ep);
    let moved = before.iter().zip(&after).filter(|(b, a)| b != a).count();
    let survivors_moved = before
        .iter()
        .zip(&after)
        .filter(|(b, a)| b != a && **b != removed)
        .count();
    assert!(after.iter().all(|o| *o != removed));
    (moved, survivors_moved)
}

#[test]
fn ring_removal_moves_only_the_removed_endpoints_keys() {
    for gone in [0, 4, 9] {
        let (moved, survivors_moved) = disruption(ring, gone);
        assert_eq!(
            survivors_moved, 0,
            "no key of a surviving endpoint may move"
        );
        // About 1/10 of the keys belonged to the removed endpoint.
        assert!((650..=1350).contains(&moved), "moved {moved}");
    }
}

#[test]
fn maglev_removal_moves_about_one_nth() {
    for gone in [0, 4, 9] {
        let (moved, survivors_moved) = disruption(maglev, gone);
        assert!((800..=1500).contains(&moved), "moved {moved}");
        // Maglev is not strictly minimal, but with M = 65537 >> N the extra churn is small.
        assert!(survivors_moved <= 300, "survivors moved {survivors_moved}");
    }
}

#[test]
fn ring_size_respects_minimum() {
    for n in [1usize, 3, 10, 100, 1000] {
        let Table::Ring(r) = ring(&endpoints(n)) else {
            panic!("ring")
        };
        assert!(
            r.points() >= 1024 && r.points() <= 2 * 1024 + n,
            "n={n} points={}",
            r.points()
        );
    }
}

#[test]
fn bad_input_is_an_error() {
    let none: [(&str, u32); 0] = [];
    assert_eq!(
        RingHash::build(1024, &none).unwrap_err(),
        HashError::NoEndpoints
    );
    assert_eq!(
        Maglev::build(65537, &none).unwrap_err(),
        HashError::NoEndpoints
    );
    assert_eq!(
        Maglev::build(65536, &[("a", 1)]).unwrap_err(),
        HashError::NotPrime(65536)
    );
    assert!(matches!(
        Maglev::build(1, &[("a", 1)]),
        Err(HashError::TableSize { .. })
    ));
    assert!(matches!(
        Maglev::build(5_000_017, &[("a", 1)]),
        Err(HashError::TableSize { .. })
    ));
    assert!(matches!(
        RingHash::build(0, &[("a", 1)]),
        Err(HashError::RingSize { .. })
    ));
    assert_eq!(
        RingHash::build(8, &[("a", 1), ("b", 0)]).unwrap_err(),
        HashError::ZeroWeight { index: 1 }
    );
    assert_eq!(
        Maglev::build(7, &[("a", 1), ("b", 1), ("a", 2)]).unwrap_err(),
        HashError::DuplicateKey { index: 2 }
    );
    assert!(
        HashError::NotPrime(4)
            .to_string()
            .starts_with("maglev.tableSize")
    );
}

#[test]
fn primes() {
    let small: Vec<u64> = (0..30).filter(|&n| maglev::is_prime(n)).collect();
    assert_eq!(small, [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]);
    assert!(maglev::is_prime(65537) && maglev::is_prime(5_000_011) && !maglev::is_prime(65535));
}

#[test]
fn more_endpoints_than_slots() {
    let ep = endpoints(20);
    let t = Table::build(&HashTable::Maglev { table_size: 7 }, &ep).unwrap();
    for h in 0..100u64 {
        assert!(t.pick(h) < 20);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn never_panics(
        weights in proptest::collection::vec(prop_oneof![Just(0u32), 1u32..4, Just(u32::MAX)], 0..40),
        ring_size in prop_oneof![Just(0u64), 1u64..5000, Just(MAX_RING_SIZE_FOR_TESTS)],
        table_size in prop_oneof![0u64..200, Just(65537u64)],
        probes in proptest::collection::vec(any::<u64>(), 1..20),
    ) {
        let ep: Vec<(String, u32)> = weights.iter().enumerate().map(|(i, w)| (format!("e{i}"), *w)).collect();
        for kind in [HashTable::Ring { minimum_ring_size: ring_size }, HashTable::Maglev { table_size }] {
            match Table::build(&kind, &ep) {
                Ok(t) => {
                    prop_assert!(!ep.is_empty() && ep.iter().all(|(_, w)| *w > 0));
                    for p in &probes {
                        prop_assert!(t.pick(*p) < ep.len());
                    }
                }
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
        }
    }
}

/// Large enough to exercise the cap, small enough to build quickly in a property test.
const MAX_RING_SIZE_FOR_TESTS: u64 = 1 << 16;
