//! What to do with the slots a schedule missed while the daemon was down (pure).

use super::Timing;
use super::spec::Misfire;
use chrono::{DateTime, Utc};

/// Most missed slots examined after downtime, whatever the policy; older ones are
/// counted as skipped without being listed one by one.
pub const MAX_MISSED_EXAMINED: usize = 10_000;

/// The decision for a run of missed slots.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MisfireDecision {
    /// Slots to run now, oldest first.
    pub run: Vec<DateTime<Utc>>,
    /// Slots recorded as missed (`sundial.schedule.missed`), oldest first.
    pub skip: Vec<DateTime<Utc>>,
    /// Further missed slots beyond [`MAX_MISSED_EXAMINED`], only counted.
    pub more_skipped: u64,
}

/// The slots of `timing` after `last_fired` (exclusive) and up to `now` (inclusive).
pub fn missed_slots(
    timing: &Timing,
    last_fired: DateTime<Utc>,
    now: DateTime<Utc>,
) -> (Vec<DateTime<Utc>>, u64) {
    let mut out = Vec::new();
    let mut more = 0u64;
    let mut t = last_fired;
    while let Some(slot) = timing.next_after(t) {
        if slot.at > now {
            break;
        }
        if out.len() < MAX_MISSED_EXAMINED {
            out.push(slot.at);
        } else {
            more += 1;
            if more > 10_000_000 {
                break;
            }
        }
        t = slot.at;
    }
    (out, more)
}

/// Apply the misfire policy to missed slots (oldest first).
pub fn decide(policy: Misfire, missed: Vec<DateTime<Utc>>, more: u64) -> MisfireDecision {
    let mut missed = missed;
    match policy {
        Misfire::Skip => MisfireDecision {
            run: vec![],
            skip: missed,
            more_skipped: more,
        },
        Misfire::RunOnce => {
            let last = missed.pop();
            MisfireDecision {
                run: last.into_iter().collect(),
                skip: missed,
                more_skipped: more,
            }
        }
        Misfire::RunAll { max } => {
            let keep = (max as usize).min(missed.len());
            let run = missed.split_off(missed.len() - keep);
            MisfireDecision {
                run,
                skip: missed,
                more_skipped: more,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::Rule;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn hourly() -> Timing {
        Timing::new(
            &Rule::Cron("0 * * * *".into()),
            "UTC",
            t("2026-11-01T00:00:00Z"),
            None,
            t("2026-11-01T00:00:00Z"),
        )
        .unwrap()
    }

    #[test]
    fn downtime_slots_are_found_exclusive_of_the_last_fire() {
        let (missed, more) = missed_slots(&hourly(), t("2026-11-27T08:00:00Z"), t("2026-11-27T11:30:00Z"));
        assert_eq!(
            missed,
            vec![
                t("2026-11-27T09:00:00Z"),
                t("2026-11-27T10:00:00Z"),
                t("2026-11-27T11:00:00Z")
            ]
        );
        assert_eq!(more, 0);
    }

    #[test]
    fn each_policy_decides() {
        let (missed, _) = missed_slots(&hourly(), t("2026-11-27T08:00:00Z"), t("2026-11-27T11:30:00Z"));
        let skip = decide(Misfire::Skip, missed.clone(), 0);
        assert_eq!((skip.run.len(), skip.skip.len()), (0, 3));
        let once = decide(Misfire::RunOnce, missed.clone(), 0);
        assert_eq!(once.run, vec![t("2026-11-27T11:00:00Z")]);
        assert_eq!(once.skip.len(), 2);
        let all = decide(Misfire::RunAll { max: 2 }, missed.clone(), 0);
        assert_eq!(
            all.run,
            vec![t("2026-11-27T10:00:00Z"), t("2026-11-27T11:00:00Z")]
        );
        assert_eq!(all.skip, vec![t("2026-11-27T09:00:00Z")]);
        let all = decide(Misfire::RunAll { max: 10 }, missed, 0);
        assert_eq!((all.run.len(), all.skip.len()), (3, 0));
        assert_eq!(decide(Misfire::RunOnce, vec![], 0), MisfireDecision::default());
    }

    #[test]
    fn long_downtime_is_bounded() {
        let secondly = Timing::new(
            &Rule::Cron("* * * * * *".into()),
            "UTC",
            t("2026-11-01T00:00:00Z"),
            None,
            t("2026-11-01T00:00:00Z"),
        )
        .unwrap();
        let (missed, more) = missed_slots(&secondly, t("2026-11-27T00:00:00Z"), t("2026-11-27T06:00:00Z"));
        assert_eq!(missed.len(), MAX_MISSED_EXAMINED);
        assert_eq!(missed.len() as u64 + more, 6 * 3600);
    }
}
