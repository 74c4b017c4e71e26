//! Rates from successive scrapes, as Prometheus' `rate()` would give them over the window, and
//! quantiles from histogram buckets, as `histogram_quantile()` computes them.
//!
//! Each scraped app keeps its own [`History`]. A counter's increase over the window is summed
//! scrape to scrape, so a restart (a counter going down) counts from zero instead of going
//! negative; a series that first appears after the oldest scrape in the window started at zero
//! (the apps create a series at its first increment), so its first requests count too.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use super::promtext::Sample;

#[cfg(test)]
mod tests;

/// One scrape of one app: when (seconds since the Unix epoch) and what it exposed.
#[derive(Clone, Debug)]
pub struct Scrape {
    /// When the scrape was taken, in seconds since the Unix epoch.
    pub at: f64,
    /// The samples read.
    pub samples: Vec<Sample>,
}

/// The scrapes of one app within the window (and the one just before it, as the baseline).
#[derive(Clone, Debug)]
pub struct History {
    window: Duration,
    scrapes: VecDeque<Scrape>,
}

type SeriesKey = (String, BTreeMap<String, String>);

impl History {
    /// An empty history keeping `window` of scrapes.
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            scrapes: VecDeque::new(),
        }
    }

    /// Adds a scrape and forgets those older than the window (keeping one baseline before it).
    pub fn push(&mut self, scrape: Scrape) {
        let start = scrape.at - self.window.as_secs_f64();
        self.scrapes.push_back(scrape);
        while self.scrapes.len() > 2 && self.scrapes.get(1).is_some_and(|s| s.at <= start) {
            self.scrapes.pop_front();
        }
    }

    /// The newest scrape.
    pub fn latest(&self) -> Option<&Scrape> {
        self.scrapes.back()
    }

    /// Seconds between the oldest and the newest scrape kept (0 with fewer than two).
    pub fn span(&self) -> f64 {
        match (self.scrapes.front(), self.scrapes.back()) {
            (Some(a), Some(b)) => (b.at - a.at).max(0.0),
            _ => 0.0,
        }
    }

    /// Per-second rates over the kept scrapes of every series whose name `keep` accepts: the
    /// increase (resets counted from zero) divided by the span. `None` until two scrapes exist.
    pub fn rates(&self, keep: impl Fn(&str) -> bool) -> Option<Vec<Sample>> {
        let span = self.span();
        if self.scrapes.len() < 2 || span <= 0.0 {
            return None;
        }
        let mut last: HashMap<SeriesKey, f64> = HashMap::new();
        let mut increase: HashMap<SeriesKey, f64> = HashMap::new();
        for (i, scrape) in self.scrapes.iter().enumerate() {
            for s in scrape.samples.iter().filter(|s| keep(&s.name)) {
                if !s.value.is_finite() {
                    continue;
                }
                let key = (s.name.clone(), s.labels.clone());
                let before = last.insert(key.clone(), s.value);
                if i == 0 {
                    // The baseline: only the value matters.
                    increase.entry(key).or_insert(0.0);
                    continue;
                }
                let step = match before {
                    Some(prev) if s.value >= prev => s.value - prev,
                    // A reset (the app restarted), or a series born since the last scrape.
                    _ => s.value,
                };
                *increase.entry(key).or_insert(0.0) += step;
            }
        }
        let mut out: Vec<Sample> = increase
            .into_iter()
            .map(|((name, labels), inc)| Sample {
                name,
                labels,
                value: inc / span,
            })
            .collect();
        out.sort_by(|a, b| (&a.name, &a.labels).cmp(&(&b.name, &b.labels)));
        Some(out)
    }
}

/// The `q` quantile (0..1) of a histogram given as `(le, cumulative count or rate)` buckets, by
/// linear interpolation inside the bucket holding the rank, as Prometheus' `histogram_quantile`
/// does: the lowest bucket starts at 0, a rank in the `+Inf` bucket gives the highest finite
/// bound. `None` without observations or without a `+Inf` bucket.
pub fn quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let mut b: Vec<(f64, f64)> = buckets
        .iter()
        .copied()
        .filter(|(le, c)| !le.is_nan() && c.is_finite())
        .collect();
    b.sort_by(|x, y| x.0.total_cmp(&y.0));
    let &(top, total) = b.last()?;
    if top != f64::INFINITY || total <= 0.0 || !(0.0..=1.0).contains(&q) {
        return None;
    }
    // Counts are cumulative; scrapes taken apart can break monotony slightly: repair it.
    for i in 1..b.len() {
        if b[i].1 < b[i - 1].1 {
            b[i].1 = b[i - 1].1;
        }
    }
    let rank = q * total;
    let i = b.iter().position(|&(_, c)| c >= rank)?;
    if i + 1 == b.len() {
        // In the +Inf bucket: the highest finite bound is all we know.
        return Some(if i == 0 { 0.0 } else { b[i - 1].0 });
    }
    let (upper, count) = b[i];
    let (lower, below) = if i == 0 {
        (if upper > 0.0 { 0.0 } else { upper }, 0.0)
    } else {
        b[i - 1]
    };
    let inside = count - below;
    if inside <= 0.0 {
        return Some(upper);
    }
    Some(lower + (upper - lower) * (rank - below) / inside)
}
