//! Start-up: every schedule is read, compiled and timed on a blocking thread while the
//! scheduler task files the results, so loading a million schedules uses two cores.
//! A schedule with nothing missed and no window to consult is placed as the thread
//! prepared it; any other (missed slots for the misfire policy, `excluded: defer`,
//! paused, no longer valid) goes through [`State::load`] on the scheduler task, as
//! before.

use super::slot::jitter;
use super::state::{Detail, Entry, State, version};
use chrono::{DateTime, Utc};
use std::cmp::Reverse;
use std::sync::Arc;
use sundial_core::schedule::CronCache;
use sundial_core::schedule::spec::Excluded;
use sundial_store::StoreError;
use sundial_store::schedules::ScheduleRecord;

/// Schedules read from the store per page: 1 000.
const PAGE: usize = 1000;

/// Pages prepared ahead of the scheduler task: 4.
const AHEAD: usize = 4;

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

/// What the loading thread makes of one record, as of `now`.
fn prepare(record: ScheduleRecord, now: DateTime<Utc>, crons: &mut CronCache) -> Loaded {
    if !record.spec.enabled {
        return Loaded::Record(record);
    }
    let Ok(detail) = Detail::new(&record, now, crons) else {
        return Loaded::Record(record);
    };
    if detail.excluded == Excluded::Defer {
        return Loaded::Record(record);
    }
    // As `State::catch_up` counts: the first slot after the last one (or the very
    // first slot).
    let next = detail
        .timing
        .next_instant(record.last_slot.unwrap_or(DateTime::<Utc>::MIN_UTC));
    match next {
        // Still ahead: nothing was missed.
        Some((slot, _)) if slot > now => {
            let id: Arc<str> = Arc::from(record.id.as_str());
            let due = slot + jitter(&id, record.spec.jitter_ms, slot);
            Loaded::Waiting {
                entry: Entry {
                    version: version(&record.updated_at),
                    last_slot: record.last_slot,
                    pending: Some(slot),
                    generation: 0,
                    jitter_ms: record.spec.jitter_ms.min(u32::MAX as u64) as u32,
                    defer: false,
                },
                id,
                slot,
                due,
            }
        }
        _ => Loaded::Record(record),
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
    /// thread reads, decodes, compiles and times the pages; this task files them.
    /// (A third stage, decoding apart from compiling, measured no faster on two cores.)
    pub(super) async fn load_all(&mut self) -> Result<usize, StoreError> {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Vec<Loaded>, StoreError>>(AHEAD);
        let (store, clock) = (self.store.clone(), self.clock.clone());
        let reader = tokio::task::spawn_blocking(move || {
            let mut crons = CronCache::default();
            let mut cursor: Option<String> = None;
            loop {
                let (records, next) = match store.schedules_page(cursor.as_deref(), PAGE) {
                    Ok(page) => page,
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                };
                let now = clock.now();
                let batch = records.into_iter().map(|r| prepare(r, now, &mut crons)).collect();
                if tx.blocking_send(Ok(batch)).is_err() {
                    return;
                }
                match next {
                    Some(c) => cursor = Some(c),
                    None => return,
                }
            }
        });
        let mut count = 0;
        while let Some(batch) = rx.recv().await {
            for loaded in batch? {
                count += 1;
                self.file(loaded);
            }
        }
        reader
            .await
            .map_err(|e| StoreError::Storage(format!("loading schedules: {e}")))?;
        Ok(count)
    }
}
