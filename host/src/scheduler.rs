//! The scheduler: an in-memory min-heap of (next due time, schedule), rebuilt from redb
//! at start and updated on every change, so waiting costs nothing however many
//! schedules exist. A due slot is recorded under its (schedule, slot time) key together
//! with its runs in one commit, so it fires exactly once across crashes and restarts.
//! After downtime the schedule's misfire policy decides what runs and what is recorded
//! as missed.

use crate::executor::{Executor, now};
use crate::run::{Run, RunCause, RunStatus};
use crate::runtime::log::{Level, LogLine, Origin, RunLog};
use crate::schedule::Timing;
use crate::schedule::misfire::{decide, missed_slots};
use crate::store::schedules::ScheduleRecord;
use crate::store::{Store, StoreError};
use chrono::{DateTime, Utc};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use tokio::sync::mpsc;

/// Handle to the scheduler task.
#[derive(Clone)]
pub struct Scheduler {
    tx: mpsc::UnboundedSender<String>,
}

impl Scheduler {
    /// Tell the scheduler that schedule `id` was created, changed, paused or deleted.
    pub fn reload(&self, id: &str) {
        let _ = self.tx.send(id.to_string());
    }
}

struct Entry {
    record: ScheduleRecord,
    timing: Timing,
    generation: u64,
}

/// A heap entry: (due = slot + jitter, schedule id, generation, slot).
type Due = Reverse<(DateTime<Utc>, String, u64, DateTime<Utc>)>;

struct State {
    store: Store,
    executor: Executor,
    entries: HashMap<String, Entry>,
    heap: BinaryHeap<Due>,
    generation: u64,
}

/// Start the scheduler: apply misfire policies to what was missed while down, then fire
/// slots as they come due.
pub async fn start(store: Store, executor: Executor) -> Result<Scheduler, StoreError> {
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let mut state = State {
        store: store.clone(),
        executor,
        entries: HashMap::new(),
        heap: BinaryHeap::new(),
        generation: 0,
    };
    for record in store.schedules()? {
        let id = record.id.clone();
        state.load(&id, true).await?;
    }
    tokio::spawn(async move {
        loop {
            let next = state.heap.peek().map(|Reverse((due, _, _, _))| *due);
            let wait = next.map(|due| (due - Utc::now()).to_std().unwrap_or_default());
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(id) => {
                        if let Err(e) = state.load(&id, false).await {
                            tracing::warn!(schedule = %id, "reloading schedule failed: {e}");
                        }
                    }
                    None => break,
                },
                _ = async { tokio::time::sleep(wait.unwrap_or_default()).await }, if wait.is_some() => {
                    if let Some(Reverse((_, id, generation, slot))) = state.heap.pop()
                        && let Err(e) = state.fire(&id, generation, slot).await {
                            tracing::warn!(schedule = %id, "firing failed: {e}");
                            if matches!(e, StoreError::Closed) {
                                break;
                            }
                        }
                }
            }
        }
    });
    Ok(Scheduler { tx })
}

fn slot_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl State {
    /// (Re)load one schedule from the store and queue its next slot. At start-up
    /// (`startup`), slots missed since its last one go through the misfire policy.
    async fn load(&mut self, id: &str, startup: bool) -> Result<(), StoreError> {
        self.generation += 1;
        self.entries.remove(id);
        let Some(record) = self.store.schedule(id)? else {
            return Ok(());
        };
        let start = record.spec.start.unwrap_or_else(Utc::now);
        let epoch = DateTime::<Utc>::MIN_UTC;
        let timing = match Timing::new(
            &record.spec.rule,
            &record.spec.timezone,
            start,
            record.spec.end,
            epoch,
        ) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(schedule = %record.id, "schedule no longer valid: {e}");
                return Ok(());
            }
        };
        if !record.spec.enabled {
            return Ok(());
        }
        let now = Utc::now();
        let mut last = record
            .last_slot
            .unwrap_or(start - chrono::Duration::nanoseconds(1));
        if startup {
            let (missed, more) = missed_slots(&timing, last, now);
            if let Some(newest) = missed.last() {
                last = *newest;
            }
            let decision = decide(record.spec.misfire, missed, more);
            for slot in &decision.skip {
                self.record_slot(&record, *slot, true).await?;
            }
            if decision.more_skipped > 0 {
                tracing::warn!(schedule = %record.id, count = decision.more_skipped, "more missed slots skipped without records");
            }
            for slot in &decision.run {
                self.record_slot(&record, *slot, false).await?;
            }
        }
        let from = last.max(now - chrono::Duration::milliseconds(1));
        if let Some(slot) = timing.next_after(from) {
            self.heap.push(Reverse((
                slot.at + jitter(&record, slot.at),
                record.id.clone(),
                self.generation,
                slot.at,
            )));
        }
        self.entries.insert(
            record.id.clone(),
            Entry {
                record,
                timing,
                generation: self.generation,
            },
        );
        Ok(())
    }

    async fn fire(&mut self, id: &str, generation: u64, slot: DateTime<Utc>) -> Result<(), StoreError> {
        let Some(entry) = self.entries.get(id) else {
            return Ok(());
        };
        if entry.generation != generation {
            return Ok(()); // Stale heap entry: the schedule changed since.
        }
        let record = entry.record.clone();
        self.record_slot(&record, slot, false).await?;
        if let Some(entry) = self.entries.get_mut(id) {
            entry.record.last_slot = Some(slot);
            if let Some(next) = entry.timing.next_after(slot) {
                self.heap.push(Reverse((
                    next.at + jitter(&record, next.at),
                    id.to_string(),
                    generation,
                    next.at,
                )));
            }
        }
        Ok(())
    }

    /// Record a slot with one run per attached, enabled task (or, for a missed slot,
    /// a `skipped` run whose log says `sundial.schedule.missed`), then start the runs.
    async fn record_slot(
        &self,
        record: &ScheduleRecord,
        slot: DateTime<Utc>,
        missed: bool,
    ) -> Result<(), StoreError> {
        let mut runs = Vec::new();
        for task_id in self.store.schedule_tasks(&record.id)? {
            let Some(task) = self.store.task(&task_id)? else {
                continue;
            };
            if !task.spec.enabled {
                continue;
            }
            let stamp = now();
            let mut log = RunLog::default();
            if missed {
                log.lines.push(LogLine {
                    at_ms: 0,
                    level: Level::Warn,
                    origin: Origin::Host,
                    message: format!(
                        "sundial.schedule.missed: slot {} of schedule {:?} passed while the daemon was down (misfire policy)",
                        slot_text(slot),
                        record.spec.name
                    ),
                });
            }
            runs.push(Run {
                id: crate::ids::new_id(),
                task_id: task.id.clone(),
                task_name: task.spec.name.clone(),
                cause: RunCause::Schedule {
                    schedule: record.id.clone(),
                    slot: slot_text(slot),
                },
                started_by: "sundial".into(),
                status: if missed {
                    RunStatus::Skipped
                } else {
                    RunStatus::Queued
                },
                attempt: 0,
                params: task.spec.params.clone(),
                event: None,
                queued_at: stamp.clone(),
                started_at: None,
                finished_at: if missed { Some(stamp) } else { None },
                not_before: None,
                output: None,
                error: None,
                log,
                resources: Default::default(),
                attempts: Vec::new(),
            });
        }
        let queued: Vec<Run> = runs
            .iter()
            .filter(|r| r.status == RunStatus::Queued)
            .cloned()
            .collect();
        if self.store.fire_slot(&record.id, slot, runs).await? {
            for run in &queued {
                self.executor.submit(run);
            }
        }
        Ok(())
    }
}

/// The delay added to a slot: deterministic per (schedule, slot), up to `jitter_ms`.
fn jitter(record: &ScheduleRecord, slot: DateTime<Utc>) -> chrono::Duration {
    if record.spec.jitter_ms == 0 {
        return chrono::Duration::zero();
    }
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (&record.id, slot.timestamp_millis()).hash(&mut h);
    chrono::Duration::milliseconds((h.finish() % (record.spec.jitter_ms + 1)) as i64)
}
