//! The scheduler task's state: each active schedule's timing and pending slot, and a
//! min-heap of due slots; misfire, calendar and deferral decisions as slots come due.

use crate::clock::Clock;
use crate::outbox::Outbox;
use chrono::{DateTime, Utc};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use sundial_core::calendar::Exclusions;
use sundial_core::schedule::Timing;
use sundial_core::schedule::misfire::{decide, missed_slots};
use sundial_core::schedule::spec::{Excluded, Misfire};
use sundial_store::schedules::ScheduleRecord;
use sundial_store::{SharedStore, StoreError};
use tokio::task::JoinSet;

use super::MISFIRE_THRESHOLD;
use super::slot::{SlotJob, jitter, record_slot};

/// What the scheduler keeps per active schedule.
pub(super) struct Entry {
    name: Arc<str>,
    /// The record's `updated_at` when it was loaded (a cluster's resync compares it).
    updated_at: Arc<str>,
    timing: Timing,
    misfire: Misfire,
    jitter_ms: u64,
    /// Calendars it honours, and what an excluded slot does.
    calendars: Vec<String>,
    excluded: Excluded,
    /// The newest slot fired or recorded missed.
    last_slot: Option<DateTime<Utc>>,
    /// The slot waiting in the heap, if any.
    pending: Option<DateTime<Utc>>,
    generation: u64,
}

/// What comes after a slot: the next one to place (if any), or nothing because the
/// slot was placed already (deferred).
pub(super) enum Next {
    Slot(Option<sundial_core::schedule::Slot>),
    Placed,
}

/// A heap entry: (due = slot + jitter, schedule id, generation, slot).
pub(super) type Due = Reverse<(DateTime<Utc>, Arc<str>, u64, DateTime<Utc>)>;

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
                name: self
                    .entries
                    .get(&id)
                    .map(|e| e.name.to_string())
                    .unwrap_or_default(),
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
        let start = record.spec.start.unwrap_or(now);
        let timing = match Timing::new(
            &record.spec.rule,
            &record.spec.timezone,
            start,
            record.spec.end,
            DateTime::<Utc>::MIN_UTC,
        ) {
            Ok(t) => t,
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
            name: Arc::from(record.spec.name.as_str()),
            updated_at: Arc::from(record.updated_at.as_str()),
            timing,
            misfire: record.spec.misfire,
            jitter_ms: record.spec.jitter_ms,
            calendars: record.spec.calendars.clone(),
            excluded: record.spec.excluded,
            last_slot,
            pending: None,
            generation: self.generation,
        };
        let next = if startup {
            self.catch_up(&id, &mut entry, now)
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
            Next::Slot(entry.timing.next_after(from.max(resume)))
        };
        match next {
            // After an edit, a kept deferred slot whose window is over is due now.
            Next::Slot(Some(slot)) => self.place(&id, &mut entry, slot.at, (!startup).then_some(now)),
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
                    .is_some_and(|e| *e.updated_at == *record.updated_at);
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

    pub(super) fn push(&mut self, id: &Arc<str>, entry: &mut Entry, slot: DateTime<Utc>) {
        self.place(id, entry, slot, None);
    }

    /// Put `slot` in the heap, due at slot + jitter, the end of its window when it is
    /// deferred, and no earlier than `floor`.
    pub(super) fn place(
        &mut self,
        id: &Arc<str>,
        entry: &mut Entry,
        slot: DateTime<Utc>,
        floor: Option<DateTime<Utc>>,
    ) {
        entry.pending = Some(slot);
        let mut due = slot + jitter(id, entry.jitter_ms, slot);
        if let Some(f) = floor {
            due = due.max(f);
        }
        // A deferred slot is due when its window ends.
        if entry.excluded == Excluded::Defer
            && let Some(w) = self.window(entry, slot)
        {
            due = due.max(w.end);
        }
        self.heap.push(Reverse((due, id.clone(), entry.generation, slot)));
    }

    /// The excluded window holding `at` for this schedule, if any.
    pub(super) fn window(&self, entry: &Entry, at: DateTime<Utc>) -> Option<sundial_core::calendar::Window> {
        self.exclusions
            .window(at, &entry.name, entry.timing.tz(), &entry.calendars)
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
            .filter(|(_, e)| e.excluded == Excluded::Defer && e.pending.is_some())
            .map(|(id, _)| id.clone())
            .collect();
        // The same pending slot, placed again under a new generation (the old heap
        // entry goes stale): never lost, never fired twice.
        for id in deferring {
            let Some(mut entry) = self.entries.remove(&id) else {
                continue;
            };
            self.generation += 1;
            entry.generation = self.generation;
            if let Some(slot) = entry.pending {
                // Its window gone or shortened into the past: due now, not late.
                self.place(&id, &mut entry, slot, Some(at));
            }
            self.entries.insert(id, entry);
        }
    }

    /// Apply the misfire policy to every slot after the entry's last one up to `now`;
    /// returns the first slot after `now`.
    pub(super) fn catch_up(&mut self, id: &Arc<str>, entry: &mut Entry, now: DateTime<Utc>) -> Next {
        let start = entry.timing.next_after(DateTime::<Utc>::MIN_UTC).map(|s| s.at);
        let Some(last) = entry
            .last_slot
            .or_else(|| start.map(|s| s - chrono::Duration::nanoseconds(1)))
        else {
            return Next::Slot(None);
        };
        let (missed, more) = missed_slots(&entry.timing, last, now);
        let newest = missed.last().copied();
        let decision = decide(entry.misfire, missed, more);
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
                name: entry.name.clone(),
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
            if let Some(w) = self.window(entry, slot) {
                match entry.excluded {
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
                name: entry.name.clone(),
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
            self.push(id, entry, slot);
            return Next::Placed;
        }
        if let Some(newest) = newest {
            entry.last_slot = Some(newest);
        }
        Next::Slot(entry.timing.next_after(entry.last_slot.unwrap_or(last).max(now)))
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
        let Some(mut entry) = self.entries.remove(&id) else {
            return;
        };
        if entry.generation != generation {
            self.entries.insert(id, entry);
            return; // Stale heap entry: the schedule changed since.
        }
        let next = if now - due > MISFIRE_THRESHOLD {
            tracing::warn!(schedule = %id, slot = %slot_text(slot), "slot is late; applying the misfire policy");
            self.catch_up(&id, &mut entry, now)
        } else {
            let window = self.window(&entry, slot);
            let (mut excluded, mut deferred) = (None, None);
            match (window, entry.excluded) {
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
                name: entry.name.clone(),
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
                let (passed, _) = missed_slots(&entry.timing, slot, now);
                for later in passed {
                    // Only those inside the window; a slot at its end runs as usual.
                    if self.window(&entry, later).is_none() {
                        break;
                    }
                    self.spawn(SlotJob {
                        schedule_id: id.clone(),
                        name: entry.name.clone(),
                        slot: later,
                        due: later,
                        missed: false,
                        excluded: Some(why.clone()),
                        deferred: None,
                    });
                    entry.last_slot = Some(later);
                }
            }
            Next::Slot(entry.timing.next_after(entry.last_slot.unwrap_or(slot).max(slot)))
        };
        match next {
            Next::Slot(Some(next)) => self.push(&id, &mut entry, next.at),
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

/// Record a slot with one run per attached, enabled task (or, for a missed slot,
/// a `skipped` run whose log says `sundial.schedule.missed`) and its
/// `sundial.schedule.fired` (or `.missed`) event with what that event's triggers start,
/// in one commit; then start the runs.
pub(super) fn slot_text(t: DateTime<Utc>) -> String {
    sundial_core::timestamp::text(t)
}
