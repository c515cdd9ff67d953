//! Start-up: every schedule is read on a blocking thread while the scheduler task files
//! the results, so loading a million schedules uses two cores. On redb the thread reads
//! the store's due-time index (`sundial_store::schedule_due`: each schedule's next slot,
//! kept beside its record in the same commits), not the records. A schedule with
//! nothing missed and no window to consult is placed from its entry; any other (missed
//! slots for the misfire policy, `excluded: defer`, paused, no longer valid) is read
//! and goes through [`State::load`] on the scheduler task. Without an index (PostgreSQL)
//! the thread reads, compiles and times every record and decides the same way.

use super::slot::jitter;
use super::state::{Entry, State};
use crate::clock::Clock;
use chrono::{DateTime, Utc};
use std::cmp::Reverse;
use std::sync::Arc;
use sundial_core::schedule::CronCache;
use sundial_store::schedule_due::DueEntry;
use sundial_store::schedules::ScheduleRecord;
use sundial_store::{SharedStore, StoreError};
use tokio::sync::mpsc::Sender;

/// Schedules read from the store per page: 1 000.
const PAGE: usize = 1000;

/// Pages prepared ahead of the scheduler task: 4.
const AHEAD: usize = 4;

/// Slot commits in flight while loading before filing waits for one to finish: 256.
/// After downtime the misfire policies record missed slots (a slot's runs and event
/// each); without a bound every missed slot of every schedule was in memory at once
/// (1 000 every-second schedules down 4 minutes: 240 000 slots, 2.4 GiB resident).
const IN_FLIGHT: usize = 256;

/// One schedule as the loading thread leaves it.
pub(super) enum Loaded {
    /// Nothing missed and no window to consult: its entry and next slot, ready to place.
    Waiting {
        id: Arc<str>,
        entry: Entry,
        slot: DateTime<Utc>,
        /// The slot plus its jitter.
        due: DateTime<Utc>,
    },
    /// Loaded on the scheduler task ([`State::load`]).
    Record(ScheduleRecord),
}

/// What the loading thread makes of one record, as of `now`: the same decision as
/// for a due-time entry, on the entry the store would keep for it.
fn prepare(record: ScheduleRecord, now: DateTime<Utc>, crons: &mut CronCache) -> Loaded {
    let due = DueEntry::of(&record, crons);
    match waiting(&record.id, &due, now) {
        Some(loaded) => loaded,
        None => Loaded::Record(record),
    }
}

/// A schedule placed from its due-time entry alone, when it can be
/// ([`DueEntry::waiting`]: nothing missed, enabled, not deferring).
fn waiting(id: &str, due: &DueEntry, now: DateTime<Utc>) -> Option<Loaded> {
    let slot = due.waiting(now)?;
    let id: Arc<str> = Arc::from(id);
    Some(Loaded::Waiting {
        entry: Entry {
            version: due.version,
            last_slot: due.last_slot,
            pending: Some(slot),
            generation: 0,
            // At most 3 600 000 (validated at creation).
            jitter_ms: due.jitter_ms.min(u32::MAX as u64) as u32,
            defer: false,
        },
        due: slot + jitter(&id, due.jitter_ms, slot),
        id,
        slot,
    })
}

/// Read the schedules from the store's due-time index, page by page, into `tx`:
/// `Ok(false)` when the store keeps no index or it does not cover every schedule.
/// A schedule its entry cannot place is read and sent as its record.
fn from_index(
    store: &SharedStore,
    clock: &Clock,
    tx: &Sender<Result<Vec<Loaded>, StoreError>>,
) -> Result<bool, StoreError> {
    let mut cursor: Option<String> = None;
    loop {
        let Some((entries, next)) = store.schedule_due_page(cursor.as_deref(), PAGE)? else {
            if cursor.is_some() {
                // Only the first page is checked against the records.
                return Err(StoreError::Storage(
                    "the schedules' due-time index went away".into(),
                ));
            }
            return Ok(false);
        };
        let now = clock.now();
        let mut batch = Vec::with_capacity(entries.len());
        for (id, due) in entries {
            if let Some(loaded) = due.as_ref().and_then(|d| waiting(&id, d, now)) {
                batch.push(loaded);
                continue;
            }
            match store.schedule(&id) {
                Ok(Some(record)) => batch.push(Loaded::Record(record)),
                // Deleted since the page was read.
                Ok(None) => {}
                // Counted and listed as unreadable, as a page of records skips it.
                Err(StoreError::Unreadable(e)) => {
                    sundial_store::unreadable::skipped("schedules", &id, &e);
                }
                Err(e) => return Err(e),
            }
        }
        if tx.blocking_send(Ok(batch)).is_err() {
            return Ok(true);
        }
        match next {
            Some(c) => cursor = Some(c),
            None => return Ok(true),
        }
    }
}

/// Read every schedule record, page by page, into `tx` (a store without a due-time
/// index, or one that does not cover every schedule).
fn from_records(
    store: &SharedStore,
    clock: &Clock,
    tx: &Sender<Result<Vec<Loaded>, StoreError>>,
) -> Result<(), StoreError> {
    let mut crons = CronCache::default();
    let mut cursor: Option<String> = None;
    loop {
        let (records, next) = store.schedules_page(cursor.as_deref(), PAGE)?;
        let now = clock.now();
        let batch = records.into_iter().map(|r| prepare(r, now, &mut crons)).collect();
        if tx.blocking_send(Ok(batch)).is_err() {
            return Ok(());
        }
        match next {
            Some(c) => cursor = Some(c),
            None => return Ok(()),
        }
    }
}

impl State {
    /// File one prepared schedule.
    fn file(&mut self, loaded: Loaded) {
        match loaded {
            Loaded::Record(record) => {
                let now = self.clock.now();
                self.load(record, true, now);
            }
            Loaded::Waiting {
                id,
                mut entry,
                slot,
                due,
            } => {
                self.generation += 1;
                entry.generation = self.generation;
                self.heap.push(Reverse((due, id.clone(), entry.generation, slot)));
                self.entries.insert(id, entry);
            }
        }
    }

    /// Read every schedule from the store (in pages, never all at once) and file it,
    /// applying misfire policies to what was missed: the count read. A blocking
    /// thread reads the pages, from the store's due-time index when it has one (a
    /// schedule its entry cannot place is read in full), else from the records,
    /// compiling and timing each; this task files them.
    /// (A third stage, decoding apart from compiling, measured no faster on two cores.)
    pub(super) async fn load_all(&mut self) -> Result<usize, StoreError> {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Vec<Loaded>, StoreError>>(AHEAD);
        let (store, clock) = (self.store.clone(), self.clock.clone());
        let reader = tokio::task::spawn_blocking(move || {
            let read = match from_index(&store, &clock, &tx) {
                Ok(true) => Ok(()),
                Ok(false) => {
                    tracing::info!("schedules: no due-time index covering them all; reading every record");
                    from_records(&store, &clock, &tx)
                }
                Err(e) => Err(e),
            };
            if let Err(e) = read {
                let _ = tx.blocking_send(Err(e));
            }
        });
        let mut count = 0;
        while let Some(batch) = rx.recv().await {
            for loaded in batch? {
                count += 1;
                self.file(loaded);
                while self.jobs.len() > IN_FLIGHT {
                    if let Some(result) = self.jobs.join_next().await
                        && super::log_job(result)
                    {
                        return Err(StoreError::Closed);
                    }
                }
            }
        }
        reader
            .await
            .map_err(|e| StoreError::Storage(format!("loading schedules: {e}")))?;
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::{Loaded, prepare};
    use crate::scheduler::state::start_of;
    use chrono::{DateTime, Utc};
    use sundial_core::schedule::CronCache;
    use sundial_store::schedules::ScheduleRecord;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn record(spec: serde_json::Value, last_slot: Option<&str>) -> ScheduleRecord {
        ScheduleRecord {
            id: "01JSCHEDULE0000000000000000".into(),
            created_at: "2026-06-01T00:00:00.000Z".into(),
            updated_at: "2026-06-01T00:00:00.000Z".into(),
            spec: serde_json::from_value(spec).unwrap(),
            last_slot: last_slot.map(t),
        }
    }

    #[test]
    fn only_a_schedule_with_nothing_missed_takes_the_fast_path() {
        let mut crons = CronCache::default();
        let now = t("2026-06-01T10:30:00Z");
        let hourly = serde_json::json!({"name": "h", "rule": {"cron": "0 * * * *"}, "timezone": "UTC",
                                        "start": "2026-06-01T00:00:00Z"});
        // Fired at 10:00: the next slot, 11:00, is ahead.
        match prepare(
            record(hourly.clone(), Some("2026-06-01T10:00:00Z")),
            now,
            &mut crons,
        ) {
            Loaded::Waiting { slot, due, entry, .. } => {
                assert_eq!(slot, t("2026-06-01T11:00:00Z"));
                assert_eq!(due, slot, "no jitter");
                assert_eq!(entry.pending, Some(slot));
                assert_eq!(entry.last_slot, Some(t("2026-06-01T10:00:00Z")));
            }
            Loaded::Record(_) => panic!("nothing was missed"),
        }
        // Last fired at 09:00: 10:00 was missed, so the misfire policy decides.
        assert!(matches!(
            prepare(
                record(hourly.clone(), Some("2026-06-01T09:00:00Z")),
                now,
                &mut crons
            ),
            Loaded::Record(_)
        ));
        // Never fired since its start at midnight: missed too.
        assert!(matches!(
            prepare(record(hourly.clone(), None), now, &mut crons),
            Loaded::Record(_)
        ));
        // Paused, or deferring out of windows: the full load.
        let mut paused = hourly.clone();
        paused["enabled"] = false.into();
        assert!(matches!(
            prepare(record(paused, Some("2026-06-01T10:00:00Z")), now, &mut crons),
            Loaded::Record(_)
        ));
        let mut defer = hourly;
        defer["excluded"] = "defer".into();
        assert!(matches!(
            prepare(record(defer, Some("2026-06-01T10:00:00Z")), now, &mut crons),
            Loaded::Record(_)
        ));
    }

    #[test]
    fn a_schedule_without_start_counts_from_its_creation_not_from_each_fire() {
        let now = t("2026-06-03T00:00:00Z");
        let spec = serde_json::json!({"name": "h", "rule": {"cron": "0 * * * *"}, "timezone": "UTC"});
        assert_eq!(
            start_of(&record(spec.clone(), None), now),
            t("2026-06-01T00:00:00Z")
        );
        let mut with_start = spec;
        with_start["start"] = "2026-06-02T05:00:00Z".into();
        assert_eq!(
            start_of(&record(with_start, None), now),
            t("2026-06-02T05:00:00Z")
        );
        let mut unreadable = record(
            serde_json::json!({"name": "h", "rule": {"cron": "0 * * * *"}}),
            None,
        );
        unreadable.created_at = String::new();
        assert_eq!(start_of(&unreadable, now), now);
    }
}
