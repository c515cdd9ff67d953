//! Runs finished per minute over the last day: a ring of 1,440 one-minute buckets
//! (finished, failed), for the dashboard's chart. Recording is a lock and two adds;
//! a bucket older than a day is reused for the minute that maps onto it.

use std::sync::{Mutex, MutexGuard};

/// Minutes the series covers: 24 hours.
pub const MINUTES: usize = 1440;

/// One minute: (unix minute, finished, failed).
type Bucket = (i64, u32, u32);

/// Runs finished per minute over the last [`MINUTES`] minutes.
#[derive(Debug)]
pub struct MinuteSeries {
    buckets: Mutex<Vec<Bucket>>,
}

impl Default for MinuteSeries {
    fn default() -> MinuteSeries {
        MinuteSeries {
            buckets: Mutex::new(vec![(i64::MIN, 0, 0); MINUTES]),
        }
    }
}

/// One minute of the series, as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Minute {
    /// Unix time of the minute's start, in minutes.
    pub minute: i64,
    /// Runs that finished in it.
    pub finished: u32,
    /// Of those, runs that failed (failed or timed out).
    pub failed: u32,
}

impl MinuteSeries {
    fn lock(&self) -> MutexGuard<'_, Vec<Bucket>> {
        // The buckets are plain counters: a panic elsewhere leaves them usable.
        self.buckets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Count a run that finished at unix second `at`.
    pub fn record(&self, at: i64, failed: bool) {
        let minute = at.div_euclid(60);
        let mut buckets = self.lock();
        let bucket = &mut buckets[minute.rem_euclid(MINUTES as i64) as usize];
        if bucket.0 != minute {
            if bucket.0 > minute {
                // Older than what the bucket holds: outside the last day.
                return;
            }
            *bucket = (minute, 0, 0);
        }
        bucket.1 = bucket.1.saturating_add(1);
        bucket.2 = bucket.2.saturating_add(u32::from(failed));
    }

    /// The [`MINUTES`] minutes up to and including the one of unix second `now`,
    /// oldest first; minutes with nothing recorded are zero.
    pub fn last_day(&self, now: i64) -> Vec<Minute> {
        let last = now.div_euclid(60);
        let buckets = self.lock();
        (last - MINUTES as i64 + 1..=last)
            .map(|minute| {
                let b = buckets[minute.rem_euclid(MINUTES as i64) as usize];
                let (finished, failed) = if b.0 == minute { (b.1, b.2) } else { (0, 0) };
                Minute {
                    minute,
                    finished,
                    failed,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_count_apart_and_a_day_later_a_bucket_starts_again() {
        let s = MinuteSeries::default();
        let t = 1_800_000_000; // a unix second
        s.record(t, false);
        s.record(t + 1, true);
        s.record(t + 60, false);
        let day = s.last_day(t + 60);
        assert_eq!(day.len(), MINUTES);
        let last = day[MINUTES - 1];
        let before = day[MINUTES - 2];
        assert_eq!((before.finished, before.failed), (2, 1));
        assert_eq!((last.finished, last.failed), (1, 0));
        assert_eq!(last.minute - before.minute, 1);
        assert_eq!(day.iter().map(|m| m.finished).sum::<u32>(), 3);
        // A day and a minute later the bucket of `t + 60` holds the new minute only.
        let later = t + 86_400 + 60;
        s.record(later, false);
        let day = s.last_day(later);
        assert_eq!(day.iter().map(|m| m.finished).sum::<u32>(), 1);
        // What is older than the bucket's minute is outside the day: ignored.
        s.record(t, true);
        assert_eq!(s.last_day(later).iter().map(|m| m.failed).sum::<u32>(), 0);
        // Minutes before the Unix epoch map onto buckets too.
        s.record(-61, true);
        assert_eq!(s.last_day(-1).last().unwrap().failed, 0);
        assert_eq!(s.last_day(-61).last().unwrap().failed, 1);
    }
}
