//! A minimal lock-free histogram for the figures `/metrics` reports (the server encodes
//! them with `prometheus-client`; recording stays a few relaxed atomic adds).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A cumulative histogram with fixed upper bounds.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    /// Sum of observations, in millionths of the unit.
    sum_micros: AtomicU64,
    total: AtomicU64,
}

/// Bucket bounds for durations in seconds.
pub const SECONDS: &[f64] = &[0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0];
/// Bucket bounds for lateness in seconds (finer at the low end).
pub const LATENESS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 10.0, 60.0];
/// Bucket bounds for batch sizes.
pub const BATCH: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0];

impl Histogram {
    /// An empty histogram with these bucket upper bounds.
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
            total: AtomicU64::new(0),
        }
    }

    /// Record one observation.
    pub fn observe(&self, value: f64) {
        if let Some(i) = self.bounds.iter().position(|b| value <= *b) {
            self.counts[i].fetch_add(1, Relaxed);
        }
        self.sum_micros.fetch_add((value * 1e6) as u64, Relaxed);
        self.total.fetch_add(1, Relaxed);
    }

    /// What it holds now: per bucket (upper bound, observations in it and above the
    /// bucket before), the last bucket `+Inf` holding those above every bound.
    pub fn snapshot(&self) -> Snapshot {
        let mut buckets: Vec<(f64, u64)> = self
            .bounds
            .iter()
            .zip(&self.counts)
            .map(|(bound, count)| (*bound, count.load(Relaxed)))
            .collect();
        // An observation counts its bucket before the total: read mid-way, the buckets
        // may hold one more than the total, and the total is then the buckets' sum.
        let bounded: u64 = buckets.iter().map(|(_, n)| n).sum();
        let count = self.total.load(Relaxed).max(bounded);
        buckets.push((f64::INFINITY, count - bounded));
        Snapshot {
            buckets,
            sum: self.sum_micros.load(Relaxed) as f64 / 1e6,
            count,
        }
    }
}

/// A histogram's contents at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// (upper bound, count in the bucket), the last bound `+Inf`.
    pub buckets: Vec<(f64, u64)>,
    /// Sum of the observations.
    pub sum: f64,
    /// Number of observations.
    pub count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative() {
        let h = Histogram::new(BATCH);
        for v in [1.0, 3.0, 3.0, 2000.0] {
            h.observe(v);
        }
        let s = h.snapshot();
        let at = |bound: f64| s.buckets.iter().find(|(b, _)| *b == bound).map(|(_, n)| *n);
        assert_eq!(at(1.0), Some(1));
        assert_eq!(at(2.0), Some(0));
        assert_eq!(at(4.0), Some(2));
        assert_eq!(at(1024.0), Some(0));
        assert_eq!(at(f64::INFINITY), Some(1));
        assert_eq!(s.buckets.len(), BATCH.len() + 1);
        assert_eq!((s.count, s.sum), (4, 2007.0));
    }
}
