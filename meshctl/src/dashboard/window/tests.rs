#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::dashboard::promtext::parse;

fn scrape(at: f64, text: &str) -> Scrape {
    Scrape {
        at,
        samples: parse(text).samples,
    }
}

fn rate_of(rates: &[Sample], name: &str, code: &str) -> f64 {
    rates
        .iter()
        .find(|s| s.name == name && s.label("code") == code)
        .map(|s| s.value)
        .unwrap_or(f64::NAN)
}

#[test]
fn no_rate_before_two_scrapes() {
    let mut h = History::new(Duration::from_secs(60));
    h.push(scrape(100.0, "r{code=\"200\"} 5\n"));
    assert!(h.rates(|_| true).is_none());
}

#[test]
fn rate_is_the_increase_over_the_span() {
    let mut h = History::new(Duration::from_secs(60));
    h.push(scrape(100.0, "r{code=\"200\"} 10\nother 1\n"));
    h.push(scrape(105.0, "r{code=\"200\"} 30\nother 2\n"));
    h.push(scrape(
        110.0,
        "r{code=\"200\"} 60\nr{code=\"503\"} 5\nother 3\n",
    ));
    let rates = h.rates(|n| n == "r").unwrap();
    assert_eq!(rates.len(), 2, "{rates:?}");
    assert_eq!(rate_of(&rates, "r", "200"), 5.0);
    // Born after the baseline: counted from zero.
    assert_eq!(rate_of(&rates, "r", "503"), 0.5);
}

#[test]
fn a_reset_counts_from_zero() {
    let mut h = History::new(Duration::from_secs(60));
    h.push(scrape(0.0, "r{code=\"200\"} 100\n"));
    h.push(scrape(10.0, "r{code=\"200\"} 120\n"));
    h.push(scrape(20.0, "r{code=\"200\"} 10\n"));
    let rates = h.rates(|_| true).unwrap();
    assert_eq!(rate_of(&rates, "r", "200"), 1.5); // (20 + 10) / 20
}

#[test]
fn old_scrapes_leave_the_window_but_one_baseline_stays() {
    let mut h = History::new(Duration::from_secs(10));
    for (i, v) in [0.0, 10.0, 20.0, 30.0, 40.0].iter().enumerate() {
        h.push(scrape(i as f64 * 5.0, &format!("r{{code=\"200\"}} {v}\n")));
    }
    // Newest at 20 s: kept from 10 s (the baseline at the window start) on.
    assert_eq!(h.span(), 10.0);
    assert_eq!(rate_of(&h.rates(|_| true).unwrap(), "r", "200"), 2.0);
}

#[test]
fn quantile_interpolates_like_prometheus() {
    // 100 observations: 50 under 10, 90 under 25, all under 50.
    let b = [
        (10.0, 50.0),
        (25.0, 90.0),
        (50.0, 100.0),
        (f64::INFINITY, 100.0),
    ];
    assert_eq!(quantile(0.5, &b), Some(10.0));
    assert_eq!(quantile(0.9, &b), Some(25.0));
    // Rank 99: 9 of the 10 in (25, 50].
    let p99 = quantile(0.99, &b).unwrap();
    assert!((p99 - 47.5).abs() < 1e-9, "{p99}");
    // Rank 25: half way into the first bucket, which starts at 0.
    assert_eq!(quantile(0.25, &b), Some(5.0));
}

#[test]
fn quantile_in_the_inf_bucket_is_the_highest_bound() {
    let b = [(10.0, 1.0), (f64::INFINITY, 10.0)];
    assert_eq!(quantile(0.99, &b), Some(10.0));
}

#[test]
fn quantile_needs_observations_and_an_inf_bucket() {
    assert_eq!(quantile(0.99, &[(10.0, 0.0), (f64::INFINITY, 0.0)]), None);
    assert_eq!(quantile(0.99, &[(10.0, 5.0)]), None);
    assert_eq!(quantile(0.99, &[]), None);
}

#[test]
fn quantile_repairs_slightly_non_monotonic_buckets() {
    let b = [(10.0, 6.0), (20.0, 5.0), (f64::INFINITY, 10.0)];
    let p = quantile(0.5, &b).unwrap();
    assert!(p <= 10.0, "{p}");
}
