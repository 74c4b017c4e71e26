//! Cumulative weights: maps a number in `0..total` to an endpoint, respecting weights.

/// Prefix sums of endpoint weights, for weighted round robin and weighted random picks.
#[derive(Clone, Debug)]
pub(crate) struct WeightTable {
    /// `cumulative[i]` = sum of weights of endpoints `0..=i`; empty when all weights are equal.
    cumulative: Box<[u64]>,
    total: u64,
}

impl WeightTable {
    pub(crate) fn new(weights: impl Iterator<Item = u32>) -> Self {
        let weights: Vec<u64> = weights.map(|w| u64::from(w.max(1))).collect();
        let uniform = weights.windows(2).all(|w| w.first() == w.get(1));
        if uniform {
            return Self {
                cumulative: Box::new([]),
                total: weights.len() as u64,
            };
        }
        let mut sum = 0u64;
        let cumulative = weights
            .iter()
            .map(|w| {
                sum += w;
                sum
            })
            .collect();
        Self {
            cumulative,
            total: sum,
        }
    }

    /// The sum of all weights (the number of endpoints when uniform).
    #[inline]
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// The endpoint that position `x` (in `0..total`) falls on.
    #[inline]
    pub(crate) fn index(&self, x: u64) -> usize {
        if self.cumulative.is_empty() {
            return x as usize;
        }
        self.cumulative.partition_point(|&c| c <= x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_positions_map_to_endpoints() {
        let t = WeightTable::new([1, 3].into_iter());
        assert_eq!(t.total(), 4);
        let picks: Vec<usize> = (0..4).map(|x| t.index(x)).collect();
        assert_eq!(picks, vec![0, 1, 1, 1]);
        let u = WeightTable::new([5, 5, 5].into_iter());
        assert_eq!(u.total(), 3);
        assert_eq!(u.index(2), 2);
    }
}
