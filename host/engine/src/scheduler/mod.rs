//! The scheduler: an in-memory min-heap of (next due time, schedule), rebuilt from the
//! store at start and updated on every change, so waiting costs nothing however many
//! schedules exist. Per waiting schedule it keeps only ids, times and flags (see
//! [`state`]); a schedule's definition is read from the store when one of its slots
//! comes due. A due slot is recorded under its (schedule, slot time) key together
//! with its runs in one commit, so it fires exactly once across crashes and restarts.
//!
//! Time comes from an injectable [`Clock`]. Slots that are late by more than
//! [`MISFIRE_THRESHOLD`] (after downtime, a suspended machine, a wall-clock step or a
//! jump of a test clock) go through the schedule's misfire policy instead of firing one
//! by one; at start-up every slot missed since the last recorded one does.

mod slot;
mod startup;
mod state;

use crate::clock::Clock;
use crate::outbox::Outbox;
use chrono::{DateTime, Utc};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use sundial_core::calendar::{CalendarSpec, Exclusions, Maintenance};
use sundial_core::schedule::spec::ScheduleSpec;
use sundial_core::timestamp::now;
use sundial_store::schedules::ScheduleRecord;
use sundial_store::{SharedStore, StoreError};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

/// A slot more than this late when its timer pops is treated as missed and goes through
/// the schedule's misfire policy (60 s, as Quartz's default misfire threshold).
pub const MISFIRE_THRESHOLD: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

use state::State;

/// How often a node of a cluster takes up the schedule, calendar and maintenance
/// changes other nodes made: 5 s. (The node that makes a change applies it at once;
/// any node firing a slot fires it for the cluster.)
pub const RESYNC: std::time::Duration = std::time::Duration::from_secs(5);

enum Msg {
    /// Schedule `id` changed at this time of the scheduler's clock.
    Reload(String, DateTime<Utc>),
    /// Calendars or maintenance windows changed (at this time).
    Exclusions(DateTime<Utc>),
    Settle(oneshot::Sender<()>),
    /// The soonest due slots, at most this many.
    Next(usize, oneshot::Sender<Vec<NextFire>>),
    /// Take up what other nodes of a cluster changed.
    Resync,
}

/// A slot waiting in the scheduler: when it is due (slot plus jitter), the slot, and
/// the schedule's id and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextFire {
    /// When it fires: the slot plus the schedule's jitter.
    pub due: DateTime<Utc>,
    /// The slot.
    pub slot: DateTime<Utc>,
    /// The schedule's id.
    pub schedule: String,
    /// The schedule's name.
    pub name: String,
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
        let (this, who) = (self.clone(), who.to_string());
        crate::detach::detached(async move {
            let record = this.store.insert_schedule(record, &who).await?;
            this.reload(&record.id);
            Ok(record)
        })
        .await
    }

    /// Change a schedule's spec (`key`: id or name): (before, after).
    pub async fn update_schedule(
        &self,
        key: &str,
        spec: ScheduleSpec,
        who: &str,
    ) -> Result<(ScheduleRecord, ScheduleRecord), StoreError> {
        let (this, key, who) = (self.clone(), key.to_string(), who.to_string());
        crate::detach::detached(async move {
            let (before, after) = this.store.update_schedule(&key, spec, now(), &who).await?;
            this.reload(&after.id);
            Ok((before, after))
        })
        .await
    }

    /// Delete a schedule (`force`: even while tasks are attached).
    pub async fn delete_schedule(
        &self,
        key: &str,
        force: bool,
        who: &str,
    ) -> Result<ScheduleRecord, StoreError> {
        let (this, key, who) = (self.clone(), key.to_string(), who.to_string());
        crate::detach::detached(async move {
            let record = this.store.delete_schedule(&key, force, &who).await?;
            this.reload(&record.id);
            Ok(record)
        })
        .await
    }

    /// Create (`create`) or replace a calendar: the previous spec when replaced.
    pub async fn put_calendar(
        &self,
        spec: CalendarSpec,
        create: bool,
        who: &str,
    ) -> Result<Option<CalendarSpec>, StoreError> {
        let (this, who) = (self.clone(), who.to_string());
        crate::detach::detached(async move {
            let before = this.store.put_calendar(spec, create, &who).await?;
            this.exclusions_changed();
            Ok(before)
        })
        .await
    }

    /// Delete a calendar.
    pub async fn delete_calendar(&self, name: &str, who: &str) -> Result<CalendarSpec, StoreError> {
        let (this, name, who) = (self.clone(), name.to_string(), who.to_string());
        crate::detach::detached(async move {
            let spec = this.store.delete_calendar(&name, &who).await?;
            this.exclusions_changed();
            Ok(spec)
        })
        .await
    }

    /// Start a maintenance window.
    pub async fn add_maintenance(&self, m: Maintenance, who: &str) -> Result<Maintenance, StoreError> {
        let (this, who) = (self.clone(), who.to_string());
        crate::detach::detached(async move {
            let m = this.store.add_maintenance(m, this.clock.now(), &who).await?;
            this.exclusions_changed();
            Ok(m)
        })
        .await
    }

    /// End a maintenance window now.
    pub async fn end_maintenance(&self, id: &str, who: &str) -> Result<Maintenance, StoreError> {
        let (this, id, who) = (self.clone(), id.to_string(), who.to_string());
        crate::detach::detached(async move {
            let m = this.store.end_maintenance(&id, this.clock.now(), &who).await?;
            this.exclusions_changed();
            Ok(m)
        })
        .await
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

    /// The `n` soonest slots waiting to fire, soonest first (of active schedules; a
    /// slot deferred out of an excluded window shows at its new time). Costs one pass
    /// over the heap in the scheduler's task: O(schedules · log n).
    pub async fn next_fires(&self, n: usize) -> Vec<NextFire> {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Next(n, tx)).is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// Take up the schedule, calendar and maintenance changes other nodes of a cluster
    /// made (on their notice; the scheduler also looks every [`RESYNC`] by itself).
    pub fn resync(&self) {
        let _ = self.tx.send(Msg::Resync);
    }

    /// The clock the scheduler reads.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }
}

enum Wake {
    Msg(Option<Msg>),
    Job(Option<Result<Result<(), StoreError>, tokio::task::JoinError>>),
    Timer,
    Resync,
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
        crons: Default::default(),
    };
    let started = std::time::Instant::now();
    let exclusions = state.exclusions.clone();
    let count = state.load_all().await?;
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
    // In a cluster, what other nodes change is taken up every RESYNC.
    let shared = store.leases().is_some();
    let mut resync = tokio::time::interval(RESYNC);
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
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
                _ = resync.tick(), if shared => Wake::Resync,
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
                Wake::Msg(Some(Msg::Next(n, answer))) => {
                    let _ = answer.send(state.next_fires(n));
                }
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
                Wake::Resync | Wake::Msg(Some(Msg::Resync)) => {
                    let now = state.clock.now();
                    if let Err(e) = state.resync(now) {
                        tracing::warn!("taking up other nodes' schedule changes failed (retrying): {e}");
                    }
                }
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
