//! The clock the scheduler (and everything that decides *when*) reads.
//!
//! Production uses [`Clock::system`], the wall clock. Tests start the daemon with
//! `--test-clock TIME` ([`Clock::manual`]): time then stands still until it is moved
//! with `POST /v1/clock`, so a test can jump across DST transitions, month ends, leap
//! days and downtime without sleeping. A manual clock never goes backwards.
//!
//! Everything that decides *when* reads this clock: schedule slots, trigger delays (for
//! task and webhook targets alike, as durable timers), maintenance windows. Run and
//! delivery timestamps (queued, started, finished, attempted) and retry backoff stay on
//! the wall clock: they measure what really happened, and a retry waits for a real
//! endpoint to recover.

use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Longest single sleep on the system clock. The scheduler re-reads the wall clock at
/// least this often, so a wall-clock step (NTP, suspend) is noticed within this bound.
pub const MAX_SYSTEM_SLEEP: Duration = Duration::from_secs(30);

/// A source of "now", cheap to clone.
#[derive(Clone)]
pub struct Clock {
    inner: Arc<Inner>,
}

enum Inner {
    System,
    Manual(watch::Sender<DateTime<Utc>>),
}

/// Why a manual clock refused to move.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    /// The daemon runs on the system clock.
    #[error("the clock can only be moved when the daemon was started with --test-clock")]
    NotManual,
    /// The new time is before the current one.
    #[error("the clock cannot go backwards: it is {now}, asked for {asked}")]
    Backwards {
        /// The clock's current time (RFC 3339).
        now: String,
        /// The requested time (RFC 3339).
        asked: String,
    },
}

impl Clock {
    /// The wall clock.
    pub fn system() -> Clock {
        Clock {
            inner: Arc::new(Inner::System),
        }
    }

    /// A clock standing at `start` until [`Clock::set`] moves it.
    pub fn manual(start: DateTime<Utc>) -> Clock {
        Clock {
            inner: Arc::new(Inner::Manual(watch::Sender::new(start))),
        }
    }

    /// Whether this is a manual (test) clock.
    pub fn is_manual(&self) -> bool {
        matches!(*self.inner, Inner::Manual(_))
    }

    /// The current time.
    pub fn now(&self) -> DateTime<Utc> {
        match &*self.inner {
            Inner::System => Utc::now(),
            Inner::Manual(tx) => *tx.borrow(),
        }
    }

    /// Move a manual clock to `to` (not backwards). Returns the new time.
    pub fn set(&self, to: DateTime<Utc>) -> Result<DateTime<Utc>, ClockError> {
        let Inner::Manual(tx) = &*self.inner else {
            return Err(ClockError::NotManual);
        };
        let now = *tx.borrow();
        if to < now {
            return Err(ClockError::Backwards {
                now: sundial_core::timestamp::text(now),
                asked: sundial_core::timestamp::text(to),
            });
        }
        tx.send_replace(to);
        Ok(to)
    }

    /// Wait until the clock reads `at` or later, or until it may have stepped (the
    /// system clock wakes at least every [`MAX_SYSTEM_SLEEP`]; a manual clock wakes on
    /// every move). Callers re-read [`Clock::now`] afterwards.
    pub async fn sleep_until(&self, at: DateTime<Utc>) {
        match &*self.inner {
            Inner::System => {
                let wait = (at - Utc::now()).to_std().unwrap_or_default();
                tokio::time::sleep(wait.min(MAX_SYSTEM_SLEEP)).await;
            }
            Inner::Manual(tx) => {
                let mut rx = tx.subscribe();
                if *rx.borrow_and_update() >= at {
                    return;
                }
                let _ = rx.changed().await;
            }
        }
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &*self.inner {
            Inner::System => f.write_str("Clock::system"),
            Inner::Manual(tx) => write!(f, "Clock::manual({})", *tx.borrow()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn manual_clock_moves_forward_only() {
        let c = Clock::manual(t("2026-03-29T00:00:00Z"));
        assert_eq!(c.now(), t("2026-03-29T00:00:00Z"));
        c.set(t("2026-03-29T01:00:00Z")).unwrap();
        assert_eq!(c.now(), t("2026-03-29T01:00:00Z"));
        assert!(matches!(
            c.set(t("2026-03-28T00:00:00Z")),
            Err(ClockError::Backwards { .. })
        ));
        assert_eq!(
            Clock::system().set(t("2030-01-01T00:00:00Z")),
            Err(ClockError::NotManual)
        );
    }

    #[tokio::test]
    async fn manual_sleep_wakes_on_move() {
        let c = Clock::manual(t("2026-01-01T00:00:00Z"));
        let c2 = c.clone();
        let sleeper = tokio::spawn(async move { c2.sleep_until(t("2026-01-02T00:00:00Z")).await });
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        c.set(t("2026-01-02T00:00:00Z")).unwrap();
        sleeper.await.unwrap();
        // Already due: returns at once.
        c.sleep_until(t("2026-01-01T00:00:00Z")).await;
    }
}
