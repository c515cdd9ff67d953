//! The executor: takes queued runs from the durable queue, runs them on a bounded pool
//! of workers through the plugin runtime, records every attempt, retries per the
//! task's policy, and recovers what a dead process left behind.
//!
//! Every state change is committed before anyone is told: a run is `queued` in redb
//! before the API answers, `running` before the plugin starts, and its result is
//! committed before waiters hear of it. So a crash at any point leaves a run either
//! queued (run it), running (it was interrupted: retry or mark it), or finished.

use crate::lock;
use crate::outbox::Outbox;
use crate::plugins::PluginCache;
use crate::queue::{ReadyRuns, RunQueue};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use sundial_core::invocation::Invocation;
use sundial_core::limits::Limits;

use sundial_core::run::{AfterFailure, Run, RunCause, RunStatus, after_failure, status_for};
use sundial_core::task::OverlapPolicy;
use sundial_runtime as runtime;
use sundial_runtime::{HostServices, PluginIdentity, Runtime};
use sundial_store::{SharedStore, StoreError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

mod leases;
mod outcome;
mod overlap;
mod recovery;

use outcome::Extras;
use overlap::Slot;

/// Default number of runs executing at once: 64. A worker holds its slot through its
/// run's start commit as well as its plugin call, so with fast plugins the workers wait
/// mostly for the group commit, and 16 (the default before) capped event-triggered runs
/// at about 80 % of what 64 complete on a 2-core machine (docs/BENCHMARKS.md, issue 21).
/// Each running plugin stays within its own memory limit (`limits.memory_bytes`).
pub const DEFAULT_WORKERS: usize = 64;

/// Current time in the API's format ([`sundial_core::timestamp`]).
pub fn now() -> String {
    sundial_core::timestamp::now()
}

fn after(ms: u64) -> String {
    sundial_core::timestamp::text(chrono::Utc::now() + chrono::Duration::milliseconds(ms as i64))
}

struct Inner {
    /// Plugin code runs on its own threads, so CPU-bound plugins (which yield to their
    /// executor only every epoch tick) never delay the API or the store writer.
    run_pool: Option<tokio::runtime::Runtime>,
    store: SharedStore,
    runtime: Runtime,
    services: Arc<dyn HostServices>,
    plugins: PluginCache,
    workers: Arc<Semaphore>,
    /// Runs whose plugin has ended and whose result is being committed: a run gives its
    /// worker slot back when its plugin ends, so the next run starts while this one's
    /// result waits for the group commit; this bounds how many wait so (as many as
    /// there are workers).
    recording: Arc<Semaphore>,
    /// Where queued runs are handed over (the dispatcher reads the other end).
    queue: RunQueue,
    /// Plans and commits what a run's end causes, then dispatches it.
    outbox: Outbox,
    running: Mutex<HashMap<String, tokio::task::AbortHandle>>,
    /// The log of each run whose plugin is running, with its attempt, while it runs:
    /// what a live tail reads.
    live_logs: Mutex<HashMap<String, (u32, sundial_core::log::SharedLog)>>,
    waiters: Mutex<HashMap<String, Vec<oneshot::Sender<Run>>>>,
    finished: [std::sync::atomic::AtomicU64; 8],
    stopping: std::sync::atomic::AtomicBool,
    /// Runs whose cancellation was asked for while they were running.
    cancel_requested: Mutex<std::collections::HashSet<String>>,
    /// Runs stopped because this node lost their lease (cluster): their result is
    /// another node's to record.
    lost: Mutex<std::collections::HashSet<String>>,
    /// Renew the leases now (cluster: a cancel was asked on another node).
    renew_now: tokio::sync::Notify,
    /// Runs a worker of this node has in hand, from before their start to after their
    /// end is recorded: the only runs whose leases it renews (cluster).
    owned: Mutex<std::collections::HashSet<String>>,
    durations: sundial_core::metrics::Histogram,
    /// Runs finished per minute over the last day (for the dashboard's chart).
    activity: sundial_core::activity::MinuteSeries,
    /// Scheduled first attempts: due time (slot + jitter) to run start.
    lateness: sundial_core::metrics::Histogram,
    /// Runs inside `execute` (bookkeeping included).
    in_flight: std::sync::atomic::AtomicUsize,
    /// Active (claimed) runs per task id, for the overlap policy.
    active_by_task: Mutex<HashMap<String, Vec<String>>>,
    /// Runs waiting for their task's active run to end (overlap policy `queue`).
    deferred: Mutex<HashMap<String, std::collections::VecDeque<String>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(pool) = self.run_pool.take() {
            // Dropping a runtime from async code would panic; this never blocks.
            pool.shutdown_background();
        }
    }
}

/// Handle to the executor; cheap to clone.
#[derive(Clone)]
pub struct Executor {
    inner: Arc<Inner>,
}

impl Executor {
    /// Start the dispatcher with `workers` concurrent runs taken from `ready` (the
    /// consumer end of the outbox's run queue), executing plugin code on one thread per
    /// core. Call [`Executor::recover`] once after start.
    pub fn start(
        store: SharedStore,
        plugins: PluginCache,
        services: Arc<dyn HostServices>,
        outbox: Outbox,
        mut ready: ReadyRuns,
        workers: usize,
    ) -> std::io::Result<Executor> {
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let run_pool = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("sundial-run")
            .enable_all()
            .build()?;
        let inner = Arc::new(Inner {
            run_pool: Some(run_pool),
            store,
            runtime: plugins.runtime().clone(),
            services,
            plugins,
            workers: Arc::new(Semaphore::new(workers.max(1))),
            recording: Arc::new(Semaphore::new(workers.max(1))),
            queue: outbox.queue().clone(),
            outbox,
            running: Mutex::default(),
            live_logs: Mutex::default(),
            waiters: Mutex::default(),
            finished: Default::default(),
            stopping: Default::default(),
            cancel_requested: Mutex::default(),
            lost: Mutex::default(),
            renew_now: tokio::sync::Notify::new(),
            owned: Mutex::default(),
            durations: sundial_core::metrics::Histogram::new(sundial_core::metrics::SECONDS),
            activity: Default::default(),
            lateness: sundial_core::metrics::Histogram::new(sundial_core::metrics::LATENESS),
            in_flight: Default::default(),
            active_by_task: Mutex::default(),
            deferred: Mutex::default(),
        });
        let exec = Executor { inner: inner.clone() };
        exec.keep_leases();
        let dispatcher = exec.clone();
        tokio::spawn(async move {
            while let Some(next) = ready.next().await {
                let permit = dispatcher.inner.workers.clone().acquire_owned().await;
                ready.taken();
                let Ok(permit) = permit else {
                    break;
                };
                if dispatcher
                    .inner
                    .stopping
                    .load(std::sync::atomic::Ordering::Relaxed)
                {
                    // Left queued in the store: the next start picks it up.
                    continue;
                }
                let worker = dispatcher.clone();
                tokio::spawn(async move {
                    worker.execute(&next.id, next.task_id.as_deref(), permit).await;
                });
            }
        });
        Ok(exec)
    }

    /// Hand a queued (committed) run to the workers, after its `not_before` if any.
    pub fn submit(&self, run: &Run) {
        self.inner.queue.submit(run);
    }

    /// The run queue the executor takes runs from.
    pub fn queue(&self) -> &RunQueue {
        &self.inner.queue
    }

    /// Wait until run `id` is finished and return it.
    pub async fn wait(&self, id: &str) -> Result<Run, StoreError> {
        let (tx, rx) = oneshot::channel();
        lock(&self.inner.waiters)
            .entry(id.to_string())
            .or_default()
            .push(tx);
        // It may have finished before we registered.
        if let Some(run) = self.inner.store.run(id)?
            && run.status.is_terminal()
        {
            return Ok(run);
        }
        if self.inner.store.leases().is_none() {
            return rx.await.map_err(|_| StoreError::Closed);
        }
        // In a cluster another node may run it: look at the store now and then too.
        let mut rx = rx;
        loop {
            tokio::select! {
                run = &mut rx => return run.map_err(|_| StoreError::Closed),
                _ = tokio::time::sleep(Duration::from_millis(200)) => {
                    if let Some(run) = self.inner.store.run(id)?
                        && run.status.is_terminal()
                    {
                        // Drop this waiter's entry (and any other gone one); the rest
                        // stay for this node's own notification.
                        drop(rx);
                        let mut waiters = lock(&self.inner.waiters);
                        if let Some(list) = waiters.get_mut(id) {
                            list.retain(|w| !w.is_closed());
                            if list.is_empty() {
                                waiters.remove(id);
                            }
                        }
                        return Ok(run);
                    }
                }
            }
        }
    }

    /// Cancel a run: a queued one is cancelled at once, a running one is stopped (in a
    /// cluster, by the node running it).
    pub async fn cancel(&self, id: &str) -> Result<Run, StoreError> {
        let run = self.inner.store.cancel_queued_run(id, now()).await?;
        if run.status == RunStatus::Running
            && !lock(&self.inner.running).contains_key(id)
            && let Some(leases) = self.inner.store.leases()
        {
            leases.request_cancel(id).await?;
            return self.wait(id).await;
        }
        if run.status == RunStatus::Running {
            // The worker may not have registered its abort handle yet (it could still
            // be loading the plugin): leave the request where it will look for it.
            lock(&self.inner.cancel_requested).insert(id.to_string());
            if let Some(handle) = lock(&self.inner.running).get(id) {
                handle.abort();
            }
            return self.wait(id).await;
        }
        if run.status == RunStatus::Cancelled {
            self.notify(&run);
        }
        Ok(run)
    }

    /// Stop starting runs, give running ones up to `grace` to finish, then stop the
    /// rest and persist them as interrupted (retried at the next start per their task's
    /// policy). Returns how many had to be interrupted.
    pub async fn stop(&self, grace: Duration) -> usize {
        use std::sync::atomic::Ordering::{Relaxed, SeqCst};
        self.inner.stopping.store(true, Relaxed);
        let deadline = tokio::time::Instant::now() + grace;
        while self.inner.in_flight.load(SeqCst) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let interrupted = {
            let running = lock(&self.inner.running);
            for handle in running.values() {
                handle.abort();
            }
            running.len()
        };
        // Let the workers record the interruptions (bounded: a stuck store must not
        // keep the process alive; recovery at the next start covers the rest).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while self.inner.in_flight.load(SeqCst) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        interrupted
    }

    /// Runs that reached each terminal status since start, in [`RunStatus::ALL`] order.
    pub fn finished_counts(&self) -> Vec<(RunStatus, u64)> {
        RunStatus::ALL
            .iter()
            .zip(self.inner.finished.iter())
            .map(|(s, n)| (*s, n.load(std::sync::atomic::Ordering::Relaxed)))
            .collect()
    }

    /// The attempt number and log so far of run `id` while its plugin runs; `None`
    /// once it ended (its log is then in the store) or before it started.
    pub fn live_log(&self, id: &str) -> Option<(u32, sundial_core::log::SharedLog)> {
        lock(&self.inner.live_logs).get(id).cloned()
    }

    /// Runs finished per minute over the last day: those this executor finished, and
    /// at start those the store holds (see [`Executor::backfill_activity`]).
    pub fn activity(&self) -> &sundial_core::activity::MinuteSeries {
        &self.inner.activity
    }

    /// Count the runs of the last day that finished before now into
    /// [`Executor::activity`], reading at most `max_runs` of the newest runs. Called
    /// once at start, in the background.
    pub fn backfill_activity(&self, max_runs: usize) -> Result<usize, StoreError> {
        let started = chrono::Utc::now();
        let filter = sundial_store::runs::RunFilter {
            since: Some(sundial_core::timestamp::text(started - chrono::Duration::days(1))),
            ..Default::default()
        };
        let (mut counted, mut read) = (0, 0);
        let mut cursor: Option<String> = None;
        while read < max_runs {
            let (page, next) = self.inner.store.list_runs(&filter, cursor.as_deref(), 1000)?;
            read += page.len();
            for run in &page {
                let before_start = run
                    .finished_at
                    .as_deref()
                    .and_then(|t| sundial_core::timestamp::parse(t).ok())
                    .is_some_and(|t| t < started);
                if before_start && record_activity(&self.inner.activity, run) {
                    counted += 1;
                }
            }
            match next {
                Some(n) => cursor = Some(n),
                None => break,
            }
        }
        Ok(counted)
    }

    /// Runs executing right now.
    pub fn running_count(&self) -> usize {
        lock(&self.inner.running).len()
    }

    /// Durations of finished run attempts, in seconds.
    pub fn durations(&self) -> &sundial_core::metrics::Histogram {
        &self.inner.durations
    }

    /// Scheduled runs (first attempts): from the slot's due time (slot plus jitter) to
    /// the run's start, in seconds.
    pub fn lateness(&self) -> &sundial_core::metrics::Histogram {
        &self.inner.lateness
    }

    /// Runs handed to the workers and waiting for a free one.
    pub fn backlog(&self) -> usize {
        self.inner.queue.backlog()
    }

    /// Record how late a scheduled run started (first attempts; a due time ahead of the
    /// wall clock, as on a test clock, is not a lateness and is ignored).
    fn observe_lateness(&self, run: &Run) {
        let (RunCause::Schedule { due: Some(due), .. }, Some(started), 1) =
            (&run.cause, &run.started_at, run.attempt)
        else {
            return;
        };
        let (Ok(due), Ok(started)) = (
            chrono::DateTime::parse_from_rfc3339(due),
            chrono::DateTime::parse_from_rfc3339(started),
        ) else {
            return;
        };
        let late = (started - due).num_microseconds().unwrap_or(i64::MAX);
        if late >= 0 {
            self.inner.lateness.observe(late as f64 / 1e6);
        }
    }

    /// Count a finished run and wake whoever waits for it.
    fn notify(&self, run: &Run) {
        if run.resources.duration_us > 0 {
            self.inner
                .durations
                .observe(run.resources.duration_us as f64 / 1e6);
        }
        if let Some(i) = RunStatus::ALL.iter().position(|s| *s == run.status) {
            self.inner.finished[i].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        // It finished just now: no need to parse its finish time on this path.
        if run.status.is_terminal() {
            let now = chrono::Utc::now().timestamp();
            self.inner.activity.record(now, counts_as_failed(run.status));
        }
        if let Some(waiters) = lock(&self.inner.waiters).remove(&run.id) {
            for w in waiters {
                let _ = w.send(run.clone());
            }
        }
    }

    /// Execute run `id` on the worker slot `worker` (given back when its plugin ends).
    async fn execute(&self, id: &str, task_id: Option<&str>, worker: OwnedSemaphorePermit) {
        self.inner
            .in_flight
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        lock(&self.inner.owned).insert(id.to_string());
        let result = self.try_execute(id, task_id, worker).await;
        lock(&self.inner.owned).remove(id);
        match result {
            Ok(()) => {}
            // Another node owns the run now (this one lost its lease): its result counts.
            Err(e @ StoreError::Stale(_)) => tracing::warn!(run = id, "{e}"),
            Err(e) => {
                tracing::error!(run = id, "run bookkeeping failed: {e}");
                if matches!(e, StoreError::Unavailable(_)) {
                    self.settle_later(id.to_string());
                }
            }
        }
        self.inner
            .in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// Execute the queued run `id` of the task `task_id` (when known: a run just queued)
    /// on the worker slot `worker`.
    async fn try_execute(
        &self,
        id: &str,
        task_id: Option<&str>,
        worker: OwnedSemaphorePermit,
    ) -> Result<(), StoreError> {
        let store = &self.inner.store;
        let policy_of = |task: &Option<sundial_store::tasks::TaskRecord>| {
            task.as_ref().map(|t| t.spec.overlap).unwrap_or_default()
        };
        // A run just queued of a task whose runs may overlap starts without being read
        // first (the start itself finds whether it is still queued); any other is read
        // to learn its task and whether it is still queued, for the overlap policy. The
        // task read here is the one the attempt runs (read before its start commits).
        let known = match task_id {
            Some(task_id) => Some((task_id.to_string(), store.task(task_id)?)),
            None => None,
        };
        let (task_id, task, policy) = match known {
            Some((task_id, task)) if matches!(policy_of(&task), OverlapPolicy::Allow) => {
                (task_id, task, OverlapPolicy::Allow)
            }
            known => {
                let Some(queued) = store.run(id)? else {
                    return Ok(());
                };
                if queued.status != RunStatus::Queued {
                    // Cancelled while it waited: let the next deferred run of its task go.
                    self.wake_deferred(&queued.task_id);
                    return Ok(());
                }
                let task = match known {
                    Some((known_id, task)) if known_id == queued.task_id => task,
                    _ => store.task(&queued.task_id)?,
                };
                let policy = policy_of(&task);
                (queued.task_id, task, policy)
            }
        };
        let _claim = match self.claim(&task_id, id, policy) {
            Slot::Go(claim) => claim,
            Slot::Defer => return Ok(()),
            Slot::Skip(active) => {
                let reason =
                    format!("skipped: run {active} of this task is still active (overlap policy forbid)");
                let run = store.skip_run(id, reason, now()).await?;
                self.notify(&run);
                return Ok(());
            }
        };
        let Some(mut run) = self.start_claimed(id, &task_id, policy).await? else {
            return Ok(());
        };
        self.observe_lateness(&run);
        if let Some(task) = task.as_ref().filter(|t| t.spec.webhook.is_some()) {
            return self.send_to_webhook(run, task).await;
        }
        let prepared = match &task {
            None => Err(format!("task {} was deleted", run.task_id)),
            Some(task) => match store.plugin(&task.spec.plugin)? {
                None => Err(format!("plugin {:?} is not installed", task.spec.plugin)),
                Some(record) => self
                    .inner
                    .plugins
                    .load(&record)
                    .await
                    .map(|p| (task.clone(), record, p))
                    .map_err(|e| e.to_string()),
            },
        };
        let (task, record, plugin) = match prepared {
            Ok(p) => p,
            Err(msg) => {
                let error = runtime::RunError::Instantiate(msg);
                return self.finish(run, Err(error), None).await;
            }
        };
        let mut limits: Limits = record.limits;
        if let Some(t) = task.spec.timeout_ms {
            limits.timeout_ms = t;
        }
        let invocation = Invocation {
            run_id: run.id.clone(),
            task: task.spec.name.clone(),
            attempt: run.attempt,
            cause: match (&run.cause, run.attempt) {
                (_, n) if n > 1 => runtime::Cause::Retry(n - 1),
                (RunCause::Manual, _) => runtime::Cause::Manual,
                (RunCause::Schedule { schedule, .. }, _) => runtime::Cause::Schedule(schedule.clone()),
                (RunCause::Event { .. }, _) => runtime::Cause::Event,
            },
            params: run.params.clone(),
            event: run.event.clone(),
        };
        let identity = Arc::new(PluginIdentity {
            name: record.name.clone(),
            grants: record.grants.clone(),
        });
        let runtime = self.inner.runtime.clone();
        let services = self.inner.services.clone();
        let pool = self.inner.run_pool.as_ref().map(|p| p.handle().clone());
        let log = sundial_core::log::SharedLog::new(limits.max_log_lines, limits.max_log_bytes);
        lock(&self.inner.live_logs).insert(run.id.clone(), (run.attempt, log.clone()));
        let call = async move {
            runtime
                .run_action_logged(&plugin, identity, &limits, services, &invocation, log)
                .await
        };
        let handle = match pool {
            Some(pool) => pool.spawn(call),
            None => tokio::spawn(call),
        };
        lock(&self.inner.running).insert(run.id.clone(), handle.abort_handle());
        if lock(&self.inner.cancel_requested).contains(&run.id) {
            handle.abort();
        }
        let outcome = handle.await;
        lock(&self.inner.running).remove(&run.id);
        lock(&self.inner.live_logs).remove(&run.id);
        // The plugin is done (its instance dropped or kept): the worker slot goes to the
        // next run while this one's result is committed, once a recording place is free.
        // Only where runs of the task may overlap: under `forbid`, `queue` or `replace`
        // the task's next run must find this one ended, so it keeps its worker (and its
        // claim) until its result is committed, as before.
        let (_recording, _worker) = if matches!(policy, OverlapPolicy::Allow) {
            let recording = self.inner.recording.clone().acquire_owned().await;
            drop(worker);
            (Some(recording), None)
        } else {
            (None, Some(worker))
        };
        if lock(&self.inner.lost).remove(&run.id) {
            return Err(StoreError::Stale(format!(
                "run {} attempt {} was stopped here: this node lost its lease, the node that took it over records it",
                run.id, run.attempt
            )));
        }
        let cancel_requested = lock(&self.inner.cancel_requested).remove(&run.id);
        let stopping = self.inner.stopping.load(std::sync::atomic::Ordering::Relaxed);
        match outcome {
            // A run that succeeded before the cancel landed keeps its result; one that
            // failed is not retried once a cancel was asked for.
            Ok(report) if !(cancel_requested && report.result.is_err()) => {
                run.log = report.log;
                run.resources = report.resources;
                let extras = Extras {
                    plugin: record.name.clone(),
                    events: report.events,
                    deliveries: Vec::new(),
                };
                self.finish_with(run, report.result, Some(&task), extras).await
            }
            Err(e) if e.is_cancelled() && stopping && !cancel_requested => {
                // Stopped by a graceful shutdown whose grace period ran out.
                self.interrupt(run).await
            }
            Err(e) if !e.is_cancelled() && !cancel_requested => {
                let error = runtime::RunError::Instantiate(format!("the worker failed: {e}"));
                self.finish(run, Err(error), Some(&task)).await
            }
            outcome => {
                if let Ok(report) = outcome {
                    run.log = report.log;
                    run.resources = report.resources;
                }
                run.status = RunStatus::Cancelled;
                run.finished_at = Some(now());
                if let Some(a) = run.attempts.last_mut() {
                    a.finished_at = run.finished_at.clone();
                }
                let run = store.save_run(run).await?;
                self.notify(&run);
                Ok(())
            }
        }
    }

    async fn finish(
        &self,
        run: Run,
        result: Result<serde_json::Value, runtime::RunError>,
        task: Option<&sundial_store::tasks::TaskRecord>,
    ) -> Result<(), StoreError> {
        self.finish_with(run, result, task, Extras::default()).await
    }

    /// Run a task whose action is a webhook: queue one delivery in the run's final
    /// commit and succeed with its id (a missing or disabled webhook fails the run).
    async fn send_to_webhook(
        &self,
        run: Run,
        task: &sundial_store::tasks::TaskRecord,
    ) -> Result<(), StoreError> {
        let name = task.spec.webhook.as_deref().unwrap_or_default();
        let hook = match self.inner.store.webhook(name)? {
            Some(hook) if hook.spec.enabled => hook,
            found => {
                let why = match found {
                    Some(h) => format!(
                        "webhook {:?} is disabled{}",
                        h.spec.name,
                        h.disabled_reason.map(|r| format!(" ({r})")).unwrap_or_default()
                    ),
                    None => format!("webhook {name:?} not found"),
                };
                let error = runtime::RunError::Failed(why);
                return self.finish(run, Err(error), Some(task)).await;
            }
        };
        let mut delivery = sundial_store::webhooks::Delivery::queued(&hook, "task", run.depth + 1);
        delivery.root = Some(run.chain().to_string());
        delivery.event = run.event.clone();
        let output = serde_json::json!({ "delivery": delivery.id, "webhook": hook.spec.name });
        let extras = Extras {
            deliveries: vec![delivery],
            ..Extras::default()
        };
        self.finish_with(run, Ok(output), Some(task), extras).await
    }

    /// Save a finished attempt with its events: `sundial.run.succeeded`, `.failed` or
    /// `.retrying`, the events the plugin emitted and the deliveries the run queues.
    async fn finish_with(
        &self,
        mut run: Run,
        result: Result<serde_json::Value, runtime::RunError>,
        task: Option<&sundial_store::tasks::TaskRecord>,
        emitted: Extras,
    ) -> Result<(), StoreError> {
        let finished = now();
        if let Some(a) = run.attempts.last_mut() {
            a.finished_at = Some(finished.clone());
            a.error = result.as_ref().err().cloned();
        }
        match result {
            Ok(output) => {
                run.status = RunStatus::Succeeded;
                run.output = Some(output);
                run.error = None;
                run.finished_at = Some(finished);
            }
            Err(error) => {
                let policy = task.map(|t| t.spec.retry).unwrap_or_default();
                match after_failure(&policy, run.attempt, Some(&error), false, rand_unit()) {
                    AfterFailure::RetryAfterMs(ms) => {
                        run.status = RunStatus::Queued;
                        run.not_before = Some(after(ms));
                        run.error = Some(error);
                        let events = self.run_events(&mut run, "sundial.run.retrying", emitted)?;
                        // Queued again: the commit's dispatch hands it over after its not_before.
                        self.save_with_events(run, events).await?;
                        return Ok(());
                    }
                    AfterFailure::Finish(status) => {
                        run.status = if task.is_none() {
                            status_for(&error)
                        } else {
                            status
                        };
                        run.error = Some(error);
                        run.finished_at = Some(finished);
                    }
                }
            }
        }
        let kind = if run.status == RunStatus::Succeeded {
            "sundial.run.succeeded"
        } else {
            "sundial.run.failed"
        };
        let events = self.run_events(&mut run, kind, emitted)?;
        let run = self.save_with_events(run, events).await?;
        if run.status == RunStatus::Succeeded
            && let Some(t) = task.filter(|t| t.spec.delete_after_run)
            && let Err(e) = self.inner.store.delete_task(&t.id, "sundial").await
        {
            tracing::warn!(task = %t.id, "delete-after-run failed: {e}");
        }
        self.notify(&run);
        Ok(())
    }
}

/// A uniform random number in [0, 1) for retry jitter.
fn rand_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Count a stored finished run in the per-minute series at its finish time (the
/// backfill at start): true if it was.
fn record_activity(series: &sundial_core::activity::MinuteSeries, run: &Run) -> bool {
    let Some(at) = run
        .finished_at
        .as_deref()
        .and_then(|t| sundial_core::timestamp::parse(t).ok())
    else {
        return false;
    };
    series.record(at.timestamp(), counts_as_failed(run.status));
    true
}

/// Whether the chart counts a finished run as failed: failed or timed out.
fn counts_as_failed(status: RunStatus) -> bool {
    matches!(status, RunStatus::Failed | RunStatus::TimedOut)
}
