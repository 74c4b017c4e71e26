//! Full jitter over the route's [`Backoff`], as Envoy spaces retries.
//!
//! Before retry `n` (0-based) the wait is uniform in `[0, min(base × 2ⁿ, 10 × base))`. The
//! backoff itself is a checked policy value (`mesh_core::policy::Backoff`): its base is never
//! zero, so there is nothing to re-check here.

use std::time::Duration;

pub use mesh_core::policy::Backoff;

use crate::random::Random;

/// The wait before retry number `retry` (0 for the first retry): uniform below
/// [`Backoff::ceiling`].
pub fn delay(backoff: &Backoff, retry: u32, random: &Random) -> Duration {
    let nanos = u64::try_from(backoff.ceiling(retry).as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(random.below(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_then_caps() {
        let b = Backoff::new(Duration::from_millis(25)).unwrap();
        let r = Random::seeded(3);
        for _ in 0..200 {
            assert!(delay(&b, 0, &r) < Duration::from_millis(25));
            assert!(delay(&b, 2, &r) < Duration::from_millis(100));
            assert!(delay(&b, 40, &r) < Duration::from_millis(250));
        }
        let max_seen = (0..500).map(|_| delay(&b, 10, &r)).max().unwrap();
        assert!(
            max_seen > Duration::from_millis(200),
            "jitter spans the capped range: {max_seen:?}"
        );
        assert!(Backoff::new(Duration::ZERO).is_err());
    }
}
