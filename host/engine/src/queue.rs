//! The hand-over of queued runs to the executor's workers. A run is durable (queued in
//! the store) before it is handed over; this queue only says "run `id` is ready" and
//! keeps the backlog that `max_queued_runs` limits. It is built before the engines, so
//! every producer (outbox, API, executor retries) gets it at construction.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;
use sundial_core::run::Run;
use tokio::sync::mpsc;

/// Default `max_queued_runs`: runs waiting for a worker beyond which no source adds
/// more (the API answers 429, events from inside start nothing, slots record skipped
/// runs).
pub const DEFAULT_MAX_QUEUED_RUNS: usize = 10_000;

/// Producer side of the run hand-over (cheap to clone).
#[derive(Clone)]
pub struct RunQueue {
    inner: Arc<Inner>,
}

struct Inner {
    sender: mpsc::UnboundedSender<Ready>,
    /// Runs handed over that wait for a worker.
    backlog: AtomicUsize,
    max_queued_runs: usize,
}

/// A run handed to the workers: its id, and its task's id when the run was handed over
/// as just queued (the worker then need not read the run to learn it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    /// The run.
    pub id: String,
    /// Its task, when known.
    pub task_id: Option<String>,
}

/// Consumer side: the executor's dispatcher reads runs from it.
pub struct ReadyRuns {
    receiver: mpsc::UnboundedReceiver<Ready>,
    queue: RunQueue,
}

impl ReadyRuns {
    /// The next run handed over (`None` once every producer is gone). The backlog
    /// counts it until [`ReadyRuns::taken`] is called, when a worker is free.
    pub async fn next(&mut self) -> Option<Ready> {
        self.receiver.recv().await
    }

    /// A worker took the run last returned by [`ReadyRuns::next`].
    pub fn taken(&self) {
        self.queue.inner.backlog.fetch_sub(1, Relaxed);
    }
}

impl RunQueue {
    /// A queue that lets at most `max_queued_runs` runs wait for a worker, and its
    /// consumer end.
    pub fn new(max_queued_runs: usize) -> (RunQueue, ReadyRuns) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let queue = RunQueue {
            inner: Arc::new(Inner {
                sender,
                backlog: AtomicUsize::new(0),
                max_queued_runs: max_queued_runs.max(1),
            }),
        };
        let ready = ReadyRuns {
            receiver,
            queue: queue.clone(),
        };
        (queue, ready)
    }

    /// Hand a queued (committed) run to the workers, after its `not_before` if any.
    pub fn submit(&self, run: &Run) {
        let wait = run.not_before.as_deref().map(ms_until).unwrap_or(0);
        let ready = Ready {
            id: run.id.clone(),
            task_id: Some(run.task_id.clone()),
        };
        if wait == 0 {
            self.send(ready);
        } else {
            let this = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(wait)).await;
                this.send(ready);
            });
        }
    }

    /// Hand run `id` (queued, due now) to the workers.
    pub fn hand_over(&self, id: String) {
        self.send(Ready { id, task_id: None });
    }

    fn send(&self, ready: Ready) {
        self.inner.backlog.fetch_add(1, Relaxed);
        if self.inner.sender.send(ready).is_err() {
            self.inner.backlog.fetch_sub(1, Relaxed);
        }
    }

    /// Runs handed to the workers that are waiting for a free one.
    pub fn backlog(&self) -> usize {
        self.inner.backlog.load(Relaxed)
    }

    /// The most runs that may wait for a worker (`max_queued_runs`).
    pub fn limit(&self) -> usize {
        self.inner.max_queued_runs
    }

    /// Why `more` new runs may not be queued now, if they may not: `max_queued_runs`
    /// runs already wait for a worker. Every source asks: the API (429), the router
    /// (events from runs, schedules and deliveries start nothing) and the scheduler
    /// (the slot's run is recorded `skipped`).
    pub fn full(&self, more: usize) -> Option<String> {
        let backlog = self.backlog();
        (more > 0 && backlog + more > self.inner.max_queued_runs).then(|| {
            format!(
                "{backlog} runs are waiting for a worker (max_queued_runs is {})",
                self.inner.max_queued_runs
            )
        })
    }

    /// How many more runs may be queued now (`max_queued_runs` less the backlog).
    pub fn room(&self) -> usize {
        self.inner.max_queued_runs.saturating_sub(self.backlog())
    }
}

/// Milliseconds from now until RFC 3339 time `t` (0 if past or unparsable).
fn ms_until(t: &str) -> u64 {
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|d| {
            (d.with_timezone(&chrono::Utc) - chrono::Utc::now())
                .num_milliseconds()
                .max(0) as u64
        })
        .unwrap_or(0)
}
