//! A concurrent latency histogram: log-linear buckets (64 per power of two, under 1.6 %
//! relative error) over nanoseconds, shared by all charger tasks through atomic counters,
//! with the exact maximum. Fixed size (18 KB) whatever the number of samples.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;
/// Powers of two covered: up to 2^41 ns (about 36 minutes).
const TOP_BIT: u32 = 41;
const BUCKETS: usize = (SUB + (TOP_BIT - SUB_BITS + 1) as u64 * SUB) as usize;

pub(crate) struct Histogram {
    counts: Box<[AtomicU64]>,
    sum_ns: AtomicU64,
    max_ns: AtomicU64,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("max_ns", &self.max_ns.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

fn index(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let msb = 63 - v.leading_zeros();
    if msb > TOP_BIT {
        return BUCKETS - 1;
    }
    let shift = msb - SUB_BITS;
    let sub = (v >> shift) - SUB;
    (SUB + u64::from(shift) * SUB + sub) as usize
}

/// The largest value that falls into bucket `i`.
fn upper(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i;
    }
    let shift = (i - SUB) / SUB;
    let sub = (i - SUB) % SUB;
    ((SUB + sub + 1) << shift) - 1
}

impl Histogram {
    pub(crate) fn new() -> Histogram {
        Histogram {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            sum_ns: AtomicU64::new(0),
            max_ns: AtomicU64::new(0),
        }
    }

    pub(crate) fn record(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.counts[index(ns)].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
        self.max_ns.fetch_max(ns, Ordering::Relaxed);
    }

    /// The non-empty buckets as (largest value of the bucket in ns, count), in order: what
    /// several processes' histograms are merged from (the buckets are the same everywhere).
    pub(crate) fn buckets(&self) -> Vec<(u64, u64)> {
        self.counts
            .iter()
            .enumerate()
            .map(|(i, c)| (upper(i), c.load(Ordering::Relaxed)))
            .filter(|&(_, c)| c > 0)
            .collect()
    }

    pub(crate) fn summary(&self) -> LatencySummary {
        let counts: Vec<u64> = self
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        let max = self.max_ns.load(Ordering::Relaxed);
        let quantile = |q: f64| -> f64 {
            if total == 0 {
                return 0.0;
            }
            let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
            let mut seen = 0;
            for (i, c) in counts.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    return upper(i).min(max) as f64 / 1000.0;
                }
            }
            max as f64 / 1000.0
        };
        let mean = if total == 0 {
            0.0
        } else {
            self.sum_ns.load(Ordering::Relaxed) as f64 / total as f64 / 1000.0
        };
        LatencySummary {
            count: total,
            mean_us: round1(mean),
            p50_us: round1(quantile(0.50)),
            p90_us: round1(quantile(0.90)),
            p99_us: round1(quantile(0.99)),
            p999_us: round1(quantile(0.999)),
            max_us: round1(max as f64 / 1000.0),
        }
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Latency percentiles in microseconds (from a histogram with under 1.6 % relative error;
/// the maximum is exact).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct LatencySummary {
    /// Samples.
    pub count: u64,
    /// Mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest.
    pub max_us: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_tight() {
        let mut prev = 0;
        for v in (0..5_000u64).chain((1..40).map(|b| 1u64 << b)) {
            let i = index(v);
            assert!(i >= prev || v < 5_000, "{v}");
            assert!(upper(i) >= v, "{v}: upper {}", upper(i));
            assert!(
                upper(i) as f64 <= v as f64 * 1.016 + 1.0,
                "{v}: {}",
                upper(i)
            );
            if v < 5_000 {
                prev = i;
            }
        }
        assert_eq!(index(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn percentiles() {
        let h = Histogram::new();
        for us in 1..=1000u64 {
            h.record(Duration::from_micros(us));
        }
        let s = h.summary();
        assert_eq!(s.count, 1000);
        assert!((s.p50_us - 500.0).abs() <= 8.0, "{s:?}");
        assert!((s.p99_us - 990.0).abs() <= 16.0, "{s:?}");
        assert_eq!(s.max_us, 1000.0);
        assert!((s.mean_us - 500.5).abs() < 0.1);
        let b = h.buckets();
        assert_eq!(b.iter().map(|&(_, c)| c).sum::<u64>(), 1000);
        assert!(b.windows(2).all(|w| w[0].0 < w[1].0));
    }
}
