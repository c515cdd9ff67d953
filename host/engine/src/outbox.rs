//! The one commit-with-effects path. Every change that causes work (an event from
//! outside, a run's end, a schedule slot, a fired timer, a delivery's outcome, a
//! manual run or retry) goes the same three steps:
//!
//! 1. **plan** what its events start ([`Outbox::plan`]: the router matches triggers and
//!    builds runs, timers and deliveries; nothing is stored yet);
//! 2. **commit** the change together with those effects in one store transaction (the
//!    caller's store call, passed to [`Outbox::commit`]), so what is acknowledged is
//!    durable with everything it caused;
//! 3. **dispatch** afterwards: queued runs are handed to the workers, the timer loop
//!    and the deliverer are woken.
//!
//! The outbox is built before the engines and handed to each at construction; it
//! holds no engine, only the router (planning), the run queue and two wake signals.

use crate::queue::RunQueue;
use crate::router::{Origin, Router};
use std::future::Future;
use std::sync::Arc;
use sundial_core::event::cloudevent::CloudEvent;
use sundial_core::run::{Run, RunStatus};
use sundial_store::events::{Planned, Stored};
use sundial_store::{SharedStore, StoreError};
use tokio::sync::Notify;

/// What one commit stored that needs dispatching, and the caller's own result.
#[derive(Debug)]
pub struct Committed<T> {
    /// The caller's result of the commit.
    pub value: T,
    /// Events stored with their effects.
    pub events: Vec<Stored>,
    /// Runs the change queued itself (besides those of its events).
    pub runs: Vec<Run>,
    /// True when the change queued deliveries itself.
    pub deliveries: bool,
}

impl<T> Committed<T> {
    /// A commit that stored `value` and nothing to dispatch (yet).
    pub fn new(value: T) -> Committed<T> {
        Committed {
            value,
            events: Vec::new(),
            runs: Vec::new(),
            deliveries: false,
        }
    }

    /// With the events it stored.
    pub fn events(mut self, events: Vec<Stored>) -> Committed<T> {
        self.events = events;
        self
    }

    /// With runs it queued itself.
    pub fn runs(mut self, runs: Vec<Run>) -> Committed<T> {
        self.runs = runs;
        self
    }

    /// With deliveries it queued itself.
    pub fn deliveries(mut self) -> Committed<T> {
        self.deliveries = true;
        self
    }
}

/// Handle to the outbox (cheap to clone).
#[derive(Clone)]
pub struct Outbox {
    inner: Arc<Inner>,
}

struct Inner {
    store: SharedStore,
    router: Router,
    queue: RunQueue,
    timers: Arc<Notify>,
    deliveries: Arc<Notify>,
}

impl Outbox {
    /// An outbox planning through `router`, committing to `store` and handing runs to
    /// `queue`.
    pub fn new(store: SharedStore, router: Router, queue: RunQueue) -> Outbox {
        Outbox {
            inner: Arc::new(Inner {
                store,
                router,
                queue,
                timers: Arc::new(Notify::new()),
                deliveries: Arc::new(Notify::new()),
            }),
        }
    }

    /// The router that plans events.
    pub fn router(&self) -> &Router {
        &self.inner.router
    }

    /// The run queue dispatched runs go to.
    pub fn queue(&self) -> &RunQueue {
        &self.inner.queue
    }

    /// Notified after a commit that set timers (the timer loop waits on it).
    pub fn timer_signal(&self) -> Arc<Notify> {
        self.inner.timers.clone()
    }

    /// Notified after a commit that queued deliveries (the deliverer waits on it).
    pub fn delivery_signal(&self) -> Arc<Notify> {
        self.inner.deliveries.clone()
    }

    /// Step 1: what `event` starts, unless its depth, its chain's budget or the run
    /// queue holds it back (nothing is stored).
    pub fn plan(&self, event: CloudEvent, origin: Origin) -> Result<Planned, StoreError> {
        self.inner.router.plan(event, origin)
    }

    /// Steps 2 and 3: await `commit` (one store transaction holding the change and its
    /// planned effects), then dispatch what it stored.
    pub async fn commit<T>(
        &self,
        commit: impl Future<Output = Result<Committed<T>, StoreError>>,
    ) -> Result<Committed<T>, StoreError> {
        let committed = commit.await?;
        self.dispatch(&committed);
        Ok(committed)
    }

    /// [`Outbox::commit`] on a task of its own ([`crate::detach`]), for callers that may
    /// stop waiting: what it commits is dispatched whatever becomes of the caller.
    pub async fn commit_detached<T, F>(
        &self,
        commit: impl FnOnce(SharedStore) -> F,
    ) -> Result<Committed<T>, StoreError>
    where
        T: Send + 'static,
        F: Future<Output = Result<Committed<T>, StoreError>> + Send + 'static,
    {
        let this = self.clone();
        let commit = commit(self.inner.store.clone());
        crate::detach::detached(async move { this.commit(commit).await }).await
    }

    fn dispatch<T>(&self, c: &Committed<T>) {
        let event_runs = c.events.iter().flat_map(|s| s.runs.iter());
        for run in c.runs.iter().chain(event_runs) {
            if run.status == RunStatus::Queued {
                self.inner.queue.submit(run);
            }
        }
        if c.deliveries || c.events.iter().any(|s| s.deliveries > 0) {
            self.inner.deliveries.notify_one();
        }
        if c.events.iter().any(|s| !s.timers.is_empty()) {
            self.inner.timers.notify_one();
        }
    }

    /// SharedStore events from outside (depth 0) with what they start; returns once durable.
    pub async fn ingest(&self, events: Vec<CloudEvent>) -> Result<Vec<Stored>, StoreError> {
        let planned = self.inner.router.plan_all(events, Origin::default())?;
        let committed = self
            .commit_detached(|store| async move {
                Ok(Committed::new(()).events(store.ingest_events(planned).await?))
            })
            .await?;
        Ok(committed.events)
    }

    /// Emit an internal event on its own, for changes that do not commit one
    /// themselves (a plugin installed).
    pub async fn emit(
        &self,
        event: CloudEvent,
        depth: u32,
        caused_by: Option<String>,
    ) -> Result<(), StoreError> {
        let planned = self.plan(
            event,
            Origin {
                depth,
                caused_by,
                ..Origin::default()
            },
        )?;
        self.commit_detached(|store| async move {
            Ok(Committed::new(()).events(store.ingest_events(vec![planned]).await?))
        })
        .await?;
        Ok(())
    }

    /// Queue runs that no event causes (manual runs, retries): commit them, then hand
    /// them to the workers.
    pub async fn enqueue_runs(&self, runs: Vec<Run>) -> Result<Vec<Run>, StoreError> {
        let committed = self
            .commit_detached(|store| async move {
                let runs = store.enqueue_runs(runs).await?;
                Ok(Committed::new(runs.clone()).runs(runs))
            })
            .await?;
        Ok(committed.value)
    }
}
