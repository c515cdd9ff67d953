//! The scheduler: an in-memory min-heap of (next due time, schedule), rebuilt from redb
//! at start and updated on every change, so waiting costs nothing however many
//! schedules exist. A due slot is recorded under its (schedule, slot time) key together
//! with its runs in one commit, so it fires exactly once across crashes and restarts.
//!
//! Time comes from an injectable [`Clock`]. Slots that are late by more than
//! [`MISFIRE_THRESHOLD`] (after downtime, a suspended machine, a wall-clock step or a
//! jump of a test clock) go through the schedule's misfire policy instead of firing one
//! by one; at start-up every slot missed since the last recorded one does.

use crate::clock::Clock;
use crate::outbox::{Committed, Outbox};
use chrono::{DateTime, Utc};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use sundial_core::calendar::{CalendarSpec, Exclusions, Maintenance};
use sundial_core::run::{Run, RunCause, RunStatus};
use sundial_core::schedule::Timing;
use sundial_core::schedule::misfire::{decide, missed_slots};
use sundial_core::schedule::spec::{Excluded, Misfire, ScheduleSpec};
use sundial_core::timestamp::now;
use sundial_store::schedules::ScheduleRecord;
use sundial_store::{SharedStore, StoreError};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

/// A slot more than this late when its timer pops is treated as missed and goes through
/// the schedule's misfire policy (60 s, as Quartz's default misfire threshold).
pub const MISFIRE_THRESHOLD: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

enum Msg {
    /// Schedule `id` changed at this time of the scheduler's clock.
    Reload(String, DateTime<Utc>),
    /// Calendars or maintenance windows changed (at this time).
    Exclusions(DateTime<Utc>),
    Settle(oneshot::Sender<()>),
}

/// Handle to the scheduler task.
#[derive(Clone)]
pub struct Scheduler {
    tx: mpsc::UnboundedSender<Msg>,
    clock: Clock,
    exclusions: Exclusions,
    store: SharedStore,
}

/// Changes to schedules, calendars and maintenance windows go through the scheduler,
/// which keeps what it has in memory (due times, exclusions) in step with the store:
/// the change is committed, then applied as of the clock's time when it committed.
impl Scheduler {
    /// Store a new schedule and start timing it.
    pub async fn create_schedule(
        &self,
        record: ScheduleRecord,
        who: &str,
    ) -> Result<ScheduleRecord, StoreError> {
        let record = self.store.insert_schedule(record, who).await?;
        self.reload(&record.id);
        Ok(record)
    }

    /// Change a schedule's spec (`key`: id or name): (before, after).
    pub async fn update_schedule(
        &self,
        key: &str,
        spec: ScheduleSpec,
        who: &str,
    ) -> Result<(ScheduleRecord, ScheduleRecord), StoreError> {
        let (before, after) = self.store.update_schedule(key, spec, now(), who).await?;
        self.reload(&after.id);
        Ok((before, after))
    }

    /// Delete a schedule (`force`: even while tasks are attached).
    pub async fn delete_schedule(
        &self,
        key: &str,
        force: bool,
        who: &str,
    ) -> Result<ScheduleRecord, StoreError> {
        let record = self.store.delete_schedule(key, force, who).await?;
        self.reload(&record.id);
        Ok(record)
    }

    /// Create (`create`) or replace a calendar: the previous spec when replaced.
    pub async fn put_calendar(
        &self,
        spec: CalendarSpec,
        create: bool,
        who: &str,
    ) -> Result<Option<CalendarSpec>, StoreError> {
        let before = self.store.put_calendar(spec, create, who).await?;
        self.exclusions_changed();
        Ok(before)
    }

    /// Delete a calendar.
    pub async fn delete_calendar(&self, name: &str, who: &str) -> Result<CalendarSpec, StoreError> {
        let spec = self.store.delete_calendar(name, who).await?;
        self.exclusions_changed();
        Ok(spec)
    }

    /// Start a maintenance window.
    pub async fn add_maintenance(&self, m: Maintenance, who: &str) -> Result<Maintenance, StoreError> {
        let m = self.store.add_maintenance(m, self.clock.now(), who).await?;
        self.exclusions_changed();
        Ok(m)
    }

    /// End a maintenance window now.
    pub async fn end_maintenance(&self, id: &str, who: &str) -> Result<Maintenance, StoreError> {
        let m = self.store.end_maintenance(id, self.clock.now(), who).await?;
        self.exclusions_changed();
        Ok(m)
    }

    /// Schedule `id` was created, changed, paused or deleted. The change applies as of
    /// now (the clock is read here, not when the scheduler gets to the message), so an
    /// edit's first slot does not depend on how soon that is.
    fn reload(&self, id: &str) {
        let _ = self.tx.send(Msg::Reload(id.to_string(), self.clock.now()));
    }

    /// Calendars or maintenance windows changed: the scheduler rereads them from the
    /// store, and deferred slots are placed again.
    fn exclusions_changed(&self) {
        let _ = self.tx.send(Msg::Exclusions(self.clock.now()));
    }

    /// The calendars and maintenance windows in force.
    pub fn exclusions(&self) -> &Exclusions {
        &self.exclusions
    }

    /// Wait until every slot due by the clock's current time has been recorded (with its
    /// runs queued) and every change sent before this call has been applied.
    pub async fn settle(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Msg::Settle(done)).is_ok() {
            let _ = wait.await;
        }
    }

    /// The clock the scheduler reads.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }
}

/// What the scheduler keeps per active schedule.
struct Entry {
    name: Arc<str>,
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
enum Next {
    Slot(Option<sundial_core::schedule::Slot>),
    Placed,
}

/// A heap entry: (due = slot + jitter, schedule id, generation, slot).
type Due = Reverse<(DateTime<Utc>, Arc<str>, u64, DateTime<Utc>)>;

/// A slot to record: fired (runs queued) or missed (skipped runs recorded).
struct SlotJob {
    schedule_id: Arc<str>,
    name: Arc<str>,
    slot: DateTime<Utc>,
    /// The slot plus jitter (the slot itself for missed and caught-up slots; the end
    /// of the window for a deferred one).
    due: DateTime<Utc>,
    missed: bool,
    /// Inside an excluded window (policy skip): why; recorded as skipped runs.
    excluded: Option<String>,
    /// Deferred out of an excluded window: why.
    deferred: Option<String>,
}

struct State {
    store: SharedStore,
    outbox: Outbox,
    clock: Clock,
    entries: HashMap<Arc<str>, Entry>,
    exclusions: Exclusions,
    heap: BinaryHeap<Due>,
    generation: u64,
    /// Slots being committed; each job is independent (keyed by schedule and slot).
    jobs: JoinSet<Result<(), StoreError>>,
}

enum Wake {
    Msg(Option<Msg>),
    Job(Option<Result<Result<(), StoreError>, tokio::task::JoinError>>),
    Timer,
}

/// Start the scheduler: apply misfire policies to what was missed while down, then fire
/// slots as they come due, committing each through `outbox`. Slots honour
/// `exclusions` (loaded from the store by the caller; the scheduler rereads them when
/// told they changed).
pub async fn start(
    store: SharedStore,
    outbox: Outbox,
    clock: Clock,
    exclusions: Exclusions,
) -> Result<Scheduler, StoreError> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
    let mut state = State {
        store: store.clone(),
        outbox,
        clock: clock.clone(),
        entries: HashMap::new(),
        exclusions,
        heap: BinaryHeap::new(),
        generation: 0,
        jobs: JoinSet::new(),
    };
    let started = std::time::Instant::now();
    let exclusions = state.exclusions.clone();
    // In pages, so start-up never holds every record at once.
    let mut count = 0;
    let mut cursor: Option<String> = None;
    loop {
        let (records, next) = store.schedules_page(cursor.as_deref(), 1000)?;
        count += records.len();
        for record in records {
            let now = clock.now();
            state.load(record, true, now);
        }
        match next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    // Missed slots are recorded before the daemon answers requests.
    while let Some(result) = state.jobs.join_next().await {
        if log_job(result) {
            return Err(StoreError::Closed);
        }
    }
    tracing::info!(
        schedules = count,
        active = state.entries.len(),
        ms = started.elapsed().as_millis() as u64,
        "scheduler loaded"
    );
    let timer_clock = clock.clone();
    tokio::spawn(async move {
        loop {
            let next = state.heap.peek().map(|Reverse((due, _, _, _))| *due);
            // Changes first: a pause or an edit sent before a slot came due applies
            // before that slot fires (a random pick could fire it first).
            let wake = tokio::select! {
                biased;
                msg = rx.recv() => Wake::Msg(msg),
                done = state.jobs.join_next(), if !state.jobs.is_empty() => Wake::Job(done),
                _ = timer_clock.sleep_until(next.unwrap_or(DateTime::<Utc>::MAX_UTC)), if next.is_some() => Wake::Timer,
            };
            match wake {
                Wake::Msg(None) => break,
                Wake::Msg(Some(Msg::Reload(id, at))) => match state.store.schedule(&id) {
                    Ok(Some(record)) => state.load(record, false, at),
                    Ok(None) => {
                        state.entries.remove(id.as_str());
                    }
                    Err(e) => tracing::warn!(schedule = %id, "reloading schedule failed: {e}"),
                },
                Wake::Msg(Some(Msg::Exclusions(at))) => state.exclusions_changed(at),
                Wake::Msg(Some(Msg::Settle(done))) => {
                    state.fire_due();
                    while let Some(result) = state.jobs.join_next().await {
                        log_job(result);
                    }
                    let _ = done.send(());
                }
                Wake::Job(Some(result)) => {
                    if log_job(result) {
                        break;
                    }
                }
                Wake::Job(None) => {}
                Wake::Timer => state.fire_due(),
            }
        }
    });
    Ok(Scheduler {
        tx,
        clock,
        exclusions,
        store,
    })
}

/// Log a finished slot job; true when the store is closed (the scheduler stops).
fn log_job(result: Result<Result<(), StoreError>, tokio::task::JoinError>) -> bool {
    match result {
        Ok(Ok(())) => false,
        Ok(Err(StoreError::Closed)) => true,
        Ok(Err(e)) => {
            tracing::warn!("recording a schedule slot failed: {e}");
            false
        }
        Err(e) => {
            tracing::error!("a schedule slot job panicked: {e}");
            false
        }
    }
}

fn slot_text(t: DateTime<Utc>) -> String {
    sundial_core::timestamp::text(t)
}

impl State {
    /// (Re)load one schedule and queue its next slot, as of `now` (start-up, or when the
    /// change was made). At start-up (`startup`), slots missed since its last one go
    /// through the misfire policy; after a change, slots from `now` on fire.
    fn load(&mut self, record: ScheduleRecord, startup: bool, now: DateTime<Utc>) {
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

    fn push(&mut self, id: &Arc<str>, entry: &mut Entry, slot: DateTime<Utc>) {
        self.place(id, entry, slot, None);
    }

    /// Put `slot` in the heap, due at slot + jitter, the end of its window when it is
    /// deferred, and no earlier than `floor`.
    fn place(&mut self, id: &Arc<str>, entry: &mut Entry, slot: DateTime<Utc>, floor: Option<DateTime<Utc>>) {
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
    fn window(&self, entry: &Entry, at: DateTime<Utc>) -> Option<sundial_core::calendar::Window> {
        self.exclusions
            .window(at, &entry.name, entry.timing.tz(), &entry.calendars)
    }

    /// Calendars or maintenance windows changed: reread them, and place the next slot of
    /// every deferring schedule again (a window may have moved or ended early).
    fn exclusions_changed(&mut self, at: DateTime<Utc>) {
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
    fn catch_up(&mut self, id: &Arc<str>, entry: &mut Entry, now: DateTime<Utc>) -> Next {
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
    fn fire_due(&mut self) {
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

    fn fire(
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

    fn spawn(&mut self, job: SlotJob) {
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
async fn record_slot(store: &SharedStore, outbox: &Outbox, job: SlotJob) -> Result<(), StoreError> {
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
fn jitter(id: &str, jitter_ms: u64, slot: DateTime<Utc>) -> chrono::Duration {
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
