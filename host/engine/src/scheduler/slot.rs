//! Recording one slot: its runs (or skipped runs) and its event committed in one
//! store transaction keyed by (schedule, slot), so it fires exactly once; and the
//! deterministic per-slot jitter.

use crate::outbox::{Committed, Outbox};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use sundial_core::run::{Run, RunCause, RunStatus};
use sundial_core::timestamp::now;
use sundial_store::{SharedStore, StoreError};

use super::state::slot_text;

/// A slot to record: fired (runs queued) or missed (skipped runs recorded).
pub(super) struct SlotJob {
    pub(super) schedule_id: Arc<str>,
    pub(super) name: Arc<str>,
    pub(super) slot: DateTime<Utc>,
    /// The slot plus jitter (the slot itself for missed and caught-up slots; the end
    /// of the window for a deferred one).
    pub(super) due: DateTime<Utc>,
    pub(super) missed: bool,
    /// Inside an excluded window (policy skip): why; recorded as skipped runs.
    pub(super) excluded: Option<String>,
    /// Deferred out of an excluded window: why.
    pub(super) deferred: Option<String>,
}

pub(super) async fn record_slot(
    store: &SharedStore,
    outbox: &Outbox,
    job: SlotJob,
) -> Result<(), StoreError> {
    let mut runs = Vec::new();
    for task_id in store.schedule_tasks(&job.schedule_id)? {
        let Some(task) = store.task(&task_id)? else {
            continue;
        };
        if !task.spec.enabled {
            continue;
        }
        let run = Run::queued(
            &task.id,
            &task.spec.name,
            RunCause::Schedule {
                schedule: job.schedule_id.to_string(),
                slot: slot_text(job.slot),
                due: Some(slot_text(job.due)),
            },
            task.spec.params.clone(),
            None,
            0,
            now(),
        );
        let queued = runs
            .iter()
            .filter(|r: &&Run| r.status == RunStatus::Queued)
            .count();
        let full = outbox.queue().full(queued + 1);
        // The slot is one causal chain, named by its first run.
        let run = match runs.first() {
            Some(first) => run.in_chain(&first.id),
            None => run,
        };
        runs.push(if job.missed {
            run.skipped(format!(
                "sundial.schedule.missed: slot {} of schedule {:?} was missed (daemon down or clock jumped; misfire policy)",
                slot_text(job.slot),
                job.name
            ))
        } else if let Some(why) = &job.excluded {
            run.skipped(format!(
                "sundial.schedule.skipped: slot {} of schedule {:?} is excluded by {why}",
                slot_text(job.slot),
                job.name
            ))
        } else if let Some(full) = full {
            // The slot still gets its one run (exactly once), recorded as not run.
            run.skipped(format!("skipped: {full}"))
        } else {
            run
        });
    }
    let mut events = Vec::new();
    {
        let mut data = serde_json::json!({
            "schedule": job.name.as_ref(),
            "schedule_id": job.schedule_id.as_ref(),
            "slot": slot_text(job.slot),
            "tasks": runs.iter().map(|r| r.task_name.clone()).collect::<Vec<_>>(),
        });
        if let Some(why) = &job.deferred {
            data["deferred"] = serde_json::json!(why);
        }
        let kind = if job.missed {
            "sundial.schedule.missed"
        } else if let Some(why) = &job.excluded {
            data["excluded"] = serde_json::json!(why);
            "sundial.schedule.skipped"
        } else {
            data["due"] = serde_json::json!(slot_text(job.due));
            data["runs"] = serde_json::json!(runs.iter().map(|r| r.id.clone()).collect::<Vec<_>>());
            sundial_core::trigger::SCHEDULE_FIRED
        };
        let event = sundial_core::event::internal(kind, &job.name, data, &now());
        let origin = crate::router::Origin {
            queued_with: runs.iter().filter(|r| r.status == RunStatus::Queued).count(),
            root: runs.first().map(|r| r.id.clone()),
            ..crate::router::Origin::at_depth(1)
        };
        events.push(outbox.plan(event, origin)?);
    }
    let queued: Vec<Run> = runs
        .iter()
        .filter(|r| r.status == RunStatus::Queued)
        .cloned()
        .collect();
    outbox
        .commit(async {
            Ok(
                match store.fire_slot(&job.schedule_id, job.slot, runs, events).await? {
                    Some(stored) => Committed::new(()).events(stored).runs(queued),
                    // Recorded before (another job, or before a restart): nothing to start.
                    None => Committed::new(()),
                },
            )
        })
        .await?;
    Ok(())
}

/// The delay added to a slot: deterministic per (schedule, slot), up to `jitter_ms`.
pub(super) fn jitter(id: &str, jitter_ms: u64, slot: DateTime<Utc>) -> chrono::Duration {
    if jitter_ms == 0 {
        return chrono::Duration::zero();
    }
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (id, slot.timestamp_millis()).hash(&mut h);
    chrono::Duration::milliseconds((h.finish() % (jitter_ms + 1)) as i64)
}

#[cfg(test)]
mod tests {
    use super::jitter;
    use chrono::{DateTime, Duration, Utc};

    #[test]
    fn jitter_is_bounded_deterministic_per_slot_and_spread_over_its_range() {
        let t0: DateTime<Utc> = "2026-06-01T00:00:00Z".parse().unwrap();
        assert_eq!(jitter("s", 0, t0), Duration::zero(), "no jitter configured");
        let bound = 600_000;
        let delays: Vec<i64> = (0..2000)
            .map(|i| jitter("01JSCHEDULE", bound, t0 + Duration::hours(i)).num_milliseconds())
            .collect();
        assert!(
            delays.iter().all(|d| (0..=bound as i64).contains(d)),
            "outside 0..={bound}"
        );
        for i in [0, 7, 1999] {
            let slot = t0 + Duration::hours(i);
            assert_eq!(
                jitter("01JSCHEDULE", bound, slot),
                jitter("01JSCHEDULE", bound, slot),
                "deterministic"
            );
        }
        // Spread: every tenth of the range is hit, none holds more than twice its share.
        let mut tenths = [0usize; 10];
        for d in &delays {
            tenths[((*d as u64 * 10) / (bound + 1)) as usize] += 1;
        }
        assert!(tenths.iter().all(|n| (1..=400).contains(n)), "{tenths:?}");
        // Another schedule draws other delays for the same slots.
        let other: Vec<i64> = (0..2000)
            .map(|i| jitter("01JOTHER", bound, t0 + Duration::hours(i)).num_milliseconds())
            .collect();
        assert_ne!(delays, other);
        // A one-millisecond bound still yields both values.
        let tiny: std::collections::BTreeSet<i64> = (0..200)
            .map(|i| jitter("s", 1, t0 + Duration::seconds(i)).num_milliseconds())
            .collect();
        assert_eq!(tiny, [0, 1].into());
    }
}
