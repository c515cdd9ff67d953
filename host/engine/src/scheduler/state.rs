//! The scheduler task's state: each active schedule's pending slot, and a min-heap of
//! due slots; misfire, calendar and deferral decisions as slots come due.
//!
//! **Small per schedule.** While a schedule waits, the scheduler keeps only ids, times
//! and two flags for it ([`Entry`], about 200 bytes with its map and heap slots and its
//! id), so a
//! million schedules fit in a few hundred MiB. What a decision on a slot needs beyond
//! that (the compiled rule, the name, calendars, misfire policy: [`Detail`]) is compiled
//! from the stored record when the schedule is loaded and when one of its slots comes
//! due, and dropped again. One store read per fired slot is far cheaper than the slot's
//! own commit.

use crate::clock::Clock;
use crate::outbox::Outbox;
use chrono::{DateTime, Utc};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use sundial_core::calendar::Exclusions;
use sundial_core::schedule::misfire::{decide, missed_slots};
use sundial_core::schedule::spec::{Excluded, Misfire};
use sundial_core::schedule::{CronCache, Timing};
use sundial_store::schedules::ScheduleRecord;
use sundial_store::{SharedStore, StoreError};
use tokio::task::JoinSet;

use super::MISFIRE_THRESHOLD;
use super::slot::{SlotJob, jitter, record_slot};

/// What the scheduler keeps per active schedule between its slots.
pub(super) struct Entry {
    /// A hash of the record's `updated_at` when it was loaded (a cluster's resync
    /// compares it).
    pub(super) version: u64,
    /// The newest slot fired or recorded missed.
    pub(super) last_slot: Option<DateTime<Utc>>,
    /// The slot waiting in the heap, if any.
    pub(super) pending: Option<DateTime<Utc>>,
    pub(super) generation: u64,
    pub(super) jitter_ms: u32,
    /// Its excluded slots wait for their window's end (`excluded: defer`).
    pub(super) defer: bool,
}

/// A schedule's definition as a decision on one of its slots needs it, compiled from
/// its stored record.
pub(super) struct Detail {
    name: Arc<str>,
    pub(super) timing: Timing,
    misfire: Misfire,
    /// Calendars it honours, and what an excluded slot does.
    calendars: Vec<String>,
    pub(super) excluded: Excluded,
}

impl Detail {
    /// Compile `record` (see [`start_of`] for a missing start), its cron expression
    /// from `crons` when compiled before.
    pub(super) fn new(
        record: &ScheduleRecord,
        now: DateTime<Utc>,
        crons: &mut CronCache,
    ) -> Result<Detail, String> {
        let timing = Timing::new_cached(
            &record.spec.rule,
            &record.spec.timezone,
            start_of(record, now),
            record.spec.end,
            DateTime::<Utc>::MIN_UTC,
            crons,
        )?;
        Ok(Detail {
            name: Arc::from(record.spec.name.as_str()),
            timing,
            misfire: record.spec.misfire,
            calendars: record.spec.calendars.clone(),
            excluded: record.spec.excluded,
        })
    }
}

/// A schedule's first instant ([`ScheduleRecord::start`]), or `now` for a record
/// with neither a start nor a creation time. Fixed per record, since the definition is
/// compiled again whenever a slot comes due.
pub(super) fn start_of(record: &ScheduleRecord, now: DateTime<Utc>) -> DateTime<Utc> {
    record.start().unwrap_or(now)
}

/// The version a record's `updated_at` stands for in an [`Entry`] (the same as in the
/// store's due-time index).
pub(super) use sundial_store::schedule_due::version;

/// What comes after a slot: the next one to place (if any), or nothing because the
/// slot was placed already (deferred).
pub(super) enum Next {
    Slot(Option<sundial_core::schedule::Slot>),
    Placed,
}

/// A heap entry: (due = slot + jitter, schedule id, generation, slot).
pub(super) type Due = Reverse<(DateTime<Utc>, Arc<str>, u64, DateTime<Utc>)>;

/// How long a slot waits before its schedule is read again when reading it failed
/// (the store unreachable): 1 s.
const RETRY: chrono::TimeDelta = chrono::TimeDelta::seconds(1);

/// The scheduler task's state: the schedules in memory and the heap of their next
/// due slots.
pub(super) struct State {
    pub(super) store: SharedStore,
    pub(super) outbox: Outbox,
    pub(super) clock: Clock,
    pub(super) entries: HashMap<Arc<str>, Entry>,
    pub(super) exclusions: Exclusions,
    pub(super) heap: BinaryHeap<Due>,
    pub(super) generation: u64,
    /// Slots being committed; each job is independent (keyed by schedule and slot).
    pub(super) jobs: JoinSet<Result<(), StoreError>>,
    /// Cron expressions compiled before (many schedules share one).
    pub(super) crons: CronCache,
}

impl State {
    /// The `n` soonest live heap entries (those of the schedule's current generation),
    /// soonest first.
    pub(super) fn next_fires(&self, n: usize) -> Vec<super::NextFire> {
        // A max-heap of the n smallest seen so far.
        let mut best: BinaryHeap<(DateTime<Utc>, Arc<str>, DateTime<Utc>)> = BinaryHeap::new();
        for Reverse((due, id, generation, slot)) in &self.heap {
            if self.entries.get(id).is_none_or(|e| e.generation != *generation) {
                continue;
            }
            if best.len() < n {
                best.push((*due, id.clone(), *slot));
            } else if best.peek().is_some_and(|(worst, _, _)| due < worst) {
                best.pop();
                best.push((*due, id.clone(), *slot));
            }
        }
        best.into_sorted_vec()
            .into_iter()
            .map(|(due, id, slot)| super::NextFire {
                due,
                slot,
                // Names are not kept in memory: read for the few shown.
                name: match self.store.schedule(&id) {
                    Ok(Some(record)) => record.spec.name,
                    _ => String::new(),
                },
                schedule: id.to_string(),
            })
            .collect()
    }

    /// (Re)load one schedule and queue its next slot, as of `now` (start-up, or when the
    /// change was made). At start-up (`startup`), slots missed since its last one go
    /// through the misfire policy; after a change, slots from `now` on fire.
    pub(super) fn load(&mut self, record: ScheduleRecord, startup: bool, now: DateTime<Utc>) {
        self.generation += 1;
        let id: Arc<str> = Arc::from(record.id.as_str());
        let previous = self.entries.remove(&id);
        if !record.spec.enabled {
            return;
        }
        let start = start_of(&record, now);
        let detail = match Detail::new(&record, now, &mut self.crons) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(schedule = %record.id, "schedule no longer valid: {e}");
                return;
            }
        };
        // A slot still waiting (deferred out of a window) is not dropped by an edit.
        let previous_pending = previous.as_ref().and_then(|p| p.pending);
        // The store's last slot may lag behind slots whose commits are still in flight.
        let last_slot = match (record.last_slot, previous.and_then(|p| p.last_slot)) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let mut entry = Entry {
            version: version(&record.updated_at),
            last_slot: last_slot,
            pending: None,
            generation: self.generation,
            // At most 3 600 000 (validated at creation).
            jitter_ms: record.spec.jitter_ms.min(u32::MAX as u64) as u32,
            defer: detail.excluded == Excluded::Defer,
        };
        let next = if startup {
            self.catch_up(&id, &mut entry, &detail, now)
        } else {
            // After an edit, resume from now: slots of the old definition are not
            // replayed (a deferred one still waiting is kept).
            let from = entry
                .last_slot
                .unwrap_or(start - chrono::Duration::nanoseconds(1));
            let resume = match previous_pending {
                Some(p) if p <= now => p - chrono::Duration::nanoseconds(1),
                _ => now - chrono::Duration::milliseconds(1),
            };
            Next::Slot(detail.timing.next_after(from.max(resume)))
        };
        match next {
            // After an edit, a kept deferred slot whose window is over is due now.
            Next::Slot(Some(slot)) => {
                self.place(&id, &mut entry, Some(&detail), slot.at, (!startup).then_some(now))
            }
            Next::Slot(None) => entry.pending = None,
            Next::Placed => {}
        }
        self.entries.insert(id, entry);
    }

    /// In a cluster: take up what other nodes changed. Every schedule is read (in
    /// pages); one created or edited elsewhere is loaded as after an edit here (slots
    /// from `now` on), one deleted elsewhere is dropped, and calendars and maintenance
    /// windows are reread. Slots this node proposes that another node fired already
    /// are refused by the store (exactly once per slot, whoever fires it).
    pub(super) fn resync(&mut self, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut seen = std::collections::HashSet::new();
        let mut cursor: Option<String> = None;
        loop {
            let (records, next) = self.store.schedules_page(cursor.as_deref(), 1000)?;
            for record in records {
                seen.insert(record.id.clone());
                let current = self
                    .entries
                    .get(record.id.as_str())
                    .is_some_and(|e| e.version == version(&record.updated_at));
                let idle = !record.spec.enabled && !self.entries.contains_key(record.id.as_str());
                if !current && !idle {
                    self.load(record, false, now);
                }
            }
            match next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        self.entries.retain(|id, _| seen.contains(&**id));
        self.exclusions_changed(now);
        Ok(())
    }

    /// Put `slot` in the heap, due at slot + jitter, the end of its window when it is
    /// deferred, and no earlier than `floor`. Without the schedule's `detail` (it could
    /// not be read) a deferring schedule's window is looked up when the slot comes due.
    pub(super) fn place(
        &mut self,
        id: &Arc<str>,
        entry: &mut Entry,
        detail: Option<&Detail>,
        slot: DateTime<Utc>,
        floor: Option<DateTime<Utc>>,
    ) {
        entry.pending = Some(slot);
        let mut due = slot + jitter(id, entry.jitter_ms.into(), slot);
        if let Some(f) = floor {
            due = due.max(f);
        }
        // A deferred slot is due when its window ends.
        if entry.defer
            && let Some(detail) = detail
            && let Some(w) = self.window(detail, slot)
        {
            due = due.max(w.end);
        }
        self.heap.push(Reverse((due, id.clone(), entry.generation, slot)));
    }

    /// The excluded window holding `at` for this schedule, if any.
    pub(super) fn window(
        &self,
        detail: &Detail,
        at: DateTime<Utc>,
    ) -> Option<sundial_core::calendar::Window> {
        self.exclusions
            .window(at, &detail.name, detail.timing.tz(), &detail.calendars)
    }

    /// The schedule's stored definition, compiled: `Ok(None)` when it is gone, paused
    /// or no longer valid (a change whose reload is still on its way counts already).
    fn detail(&mut self, id: &str) -> Result<Option<Detail>, StoreError> {
        let Some(record) = self.store.schedule(id)?.filter(|r| r.spec.enabled) else {
            return Ok(None);
        };
        match Detail::new(&record, self.clock.now(), &mut self.crons) {
            Ok(d) => Ok(Some(d)),
            Err(e) => {
                tracing::warn!(schedule = %id, "schedule no longer valid: {e}");
                Ok(None)
            }
        }
    }

    /// Calendars or maintenance windows changed: reread them, and place the next slot of
    /// every deferring schedule again (a window may have moved or ended early).
    pub(super) fn exclusions_changed(&mut self, at: DateTime<Utc>) {
        match (self.store.calendars(), self.store.maintenance()) {
            (Ok(c), Ok(m)) => self.exclusions.set(c, m),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!("rereading calendars and maintenance windows failed: {e}");
                return;
            }
        }
        let deferring: Vec<Arc<str>> = self
            .entries
            .iter()
            .filter(|(_, e)| e.defer && e.pending.is_some())
            .map(|(id, _)| id.clone())
            .collect();
        // The same pending slot, placed again under a new generation (the old heap
        // entry goes stale): never lost, never fired twice.
        for id in deferring {
            // Unreadable now: placed without its window, which is looked up again when
            // the slot comes due.
            let detail = self.detail(&id).unwrap_or_else(|e| {
                tracing::warn!(schedule = %id, "reading the schedule failed: {e}");
                None
            });
            let Some(mut entry) = self.entries.remove(&id) else {
                continue;
            };
            self.generation += 1;
            entry.generation = self.generation;
            if let Some(slot) = entry.pending {
                // Its window gone or shortened into the past: due now, not late.
                self.place(&id, &mut entry, detail.as_ref(), slot, Some(at));
            }
            self.entries.insert(id, entry);
        }
    }

    /// Apply the misfire policy to every slot after the entry's last one up to `now`;
    /// returns the first slot after `now`.
    pub(super) fn catch_up(
        &mut self,
        id: &Arc<str>,
        entry: &mut Entry,
        detail: &Detail,
        now: DateTime<Utc>,
    ) -> Next {
        let start = detail.timing.next_after(DateTime::<Utc>::MIN_UTC).map(|s| s.at);
        let Some(last) = entry
            .last_slot
            .or_else(|| start.map(|s| s - chrono::Duration::nanoseconds(1)))
        else {
            return Next::Slot(None);
        };
        let (missed, more) = missed_slots(&detail.timing, last, now);
        let newest = missed.last().copied();
        let decision = decide(detail.misfire, missed, more);
        if decision.more_skipped > 0 {
            tracing::warn!(schedule = %id, count = decision.more_skipped, "more missed slots skipped without records");
        }
        if !decision.skip.is_empty() {
            tracing::info!(schedule = %id, count = decision.skip.len(), "missed slots recorded (misfire policy)");
        }
        let newest_skipped = decision.skip.last().copied();
        for slot in decision.skip {
            self.spawn(SlotJob {
                schedule_id: id.clone(),
                name: detail.name.clone(),
                slot,
                due: slot,
                missed: true,
                excluded: None,
                deferred: None,
            });
        }
        // The slot the policy runs still honours calendars and maintenance windows.
        let mut waiting = None;
        for slot in decision.run {
            let mut excluded = None;
            if let Some(w) = self.window(detail, slot) {
                match detail.excluded {
                    Excluded::Skip => excluded = Some(w.reason),
                    Excluded::Defer if now < w.end => {
                        waiting = Some(slot);
                        continue;
                    }
                    Excluded::Defer => {}
                }
            }
            self.spawn(SlotJob {
                schedule_id: id.clone(),
                name: detail.name.clone(),
                slot,
                due: slot,
                missed: false,
                excluded,
                deferred: None,
            });
        }
        if let Some(slot) = waiting {
            // Deferred: it stays unrecorded and waits for the window's end.
            if let Some(skipped) = newest_skipped {
                entry.last_slot = Some(skipped.max(entry.last_slot.unwrap_or(skipped)));
            }
            self.place(id, entry, Some(detail), slot, None);
            return Next::Placed;
        }
        if let Some(newest) = newest {
            entry.last_slot = Some(newest);
        }
        Next::Slot(detail.timing.next_after(entry.last_slot.unwrap_or(last).max(now)))
    }

    /// Fire every heap entry due by now.
    pub(super) fn fire_due(&mut self) {
        let now = self.clock.now();
        while let Some(Reverse((due, _, _, _))) = self.heap.peek() {
            if *due > now {
                break;
            }
            let Some(Reverse((due, id, generation, slot))) = self.heap.pop() else {
                break;
            };
            self.fire(id, generation, slot, due, now);
        }
    }

    pub(super) fn fire(
        &mut self,
        id: Arc<str>,
        generation: u64,
        slot: DateTime<Utc>,
        due: DateTime<Utc>,
        now: DateTime<Utc>,
    ) {
        match self.entries.get(&id) {
            Some(entry) if entry.generation == generation => {}
            // Stale heap entry: the schedule changed or went since.
            _ => return,
        }
        let detail = match self.detail(&id) {
            Ok(Some(detail)) => detail,
            // Deleted or paused (its reload is on the way) or no longer valid: nothing
            // to fire.
            Ok(None) => {
                self.entries.remove(&id);
                return;
            }
            // Shutting down: nothing more fires.
            Err(StoreError::Closed) => return,
            // The record no longer decodes (its due-time entry placed it): skipped as
            // every load skips it, until an admin deletes it.
            Err(StoreError::Unreadable(e)) => {
                sundial_store::unreadable::skipped("schedules", &id, &e);
                self.entries.remove(&id);
                return;
            }
            // The store could not be read: the slot waits and is tried again a second
            // later, until the store answers (it then fires, due at that retry).
            Err(e) => {
                tracing::warn!(schedule = %id, "reading the schedule to fire a slot failed (retrying): {e}");
                self.heap.push(Reverse((now + RETRY, id, generation, slot)));
                return;
            }
        };
        let Some(mut entry) = self.entries.remove(&id) else {
            return;
        };
        let next = if now - due > MISFIRE_THRESHOLD {
            tracing::warn!(schedule = %id, slot = %slot_text(slot), "slot is late; applying the misfire policy");
            self.catch_up(&id, &mut entry, &detail, now)
        } else {
            let window = self.window(&detail, slot);
            let (mut excluded, mut deferred) = (None, None);
            match (window, detail.excluded) {
                (Some(w), Excluded::Skip) => excluded = Some(w.reason),
                (Some(w), Excluded::Defer) => {
                    // A window that began or grew after the slot was placed: wait again.
                    if now < w.end {
                        self.heap.push(Reverse((w.end, id.clone(), generation, slot)));
                        self.entries.insert(id, entry);
                        return;
                    }
                    deferred = Some(w.reason);
                }
                (None, _) => {}
            }
            let collapse = deferred
                .as_ref()
                .map(|why| format!("the deferred slot {} ran for it ({why})", slot_text(slot)));
            self.spawn(SlotJob {
                schedule_id: id.clone(),
                name: detail.name.clone(),
                slot,
                due,
                missed: false,
                excluded,
                deferred,
            });
            entry.last_slot = Some(slot);
            // Slots that came due while this one was deferred do not all run now: they
            // are recorded as skipped (at most the misfire examination limit).
            if let Some(why) = collapse {
                let (passed, _) = missed_slots(&detail.timing, slot, now);
                for later in passed {
                    // Only those inside the window; a slot at its end runs as usual.
                    if self.window(&detail, later).is_none() {
                        break;
                    }
                    self.spawn(SlotJob {
                        schedule_id: id.clone(),
                        name: detail.name.clone(),
                        slot: later,
                        due: later,
                        missed: false,
                        excluded: Some(why.clone()),
                        deferred: None,
                    });
                    entry.last_slot = Some(later);
                }
            }
            Next::Slot(
                detail
                    .timing
                    .next_after(entry.last_slot.unwrap_or(slot).max(slot)),
            )
        };
        match next {
            Next::Slot(Some(next)) => self.place(&id, &mut entry, Some(&detail), next.at, None),
            Next::Slot(None) => entry.pending = None,
            Next::Placed => {}
        }
        self.entries.insert(id, entry);
    }

    pub(super) fn spawn(&mut self, job: SlotJob) {
        let store = self.store.clone();
        let outbox = self.outbox.clone();
        self.jobs
            .spawn(async move { record_slot(&store, &outbox, job).await });
    }
}

/// A slot's time as the log and the store write it.
pub(super) fn slot_text(t: DateTime<Utc>) -> String {
    sundial_core::timestamp::text(t)
}
