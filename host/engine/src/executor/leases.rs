//! Cluster leases (a store several nodes share, `RunStore::leases`): this node renews
//! the leases of the runs it executes every third of the lease, stops a run whose lease
//! it lost (another node took it over, or the database could not be reached for a whole
//! lease), takes over runs whose node stopped renewing, and picks up queued runs that
//! wait with no node on them. On a single-node store none of this runs.

use super::Executor;
use crate::lock;
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// Runs taken over per round.
const TAKE_PER_ROUND: usize = 64;

impl Executor {
    /// Start the lease keeper when the store has leases.
    pub(super) fn keep_leases(&self) {
        let Some(leases) = self.inner.store.leases() else {
            return;
        };
        let lease = leases.lease();
        let every = (lease / 3).max(Duration::from_millis(50));
        let this = self.clone();
        tokio::spawn(async move {
            let mut last_renewed = Instant::now();
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = this.inner.renew_now.notified() => {}
                }
                this.renew(&mut last_renewed, lease).await;
                if this.inner.stopping.load(std::sync::atomic::Ordering::Relaxed) {
                    // Still renewing what runs out its grace period; taking nothing new.
                    continue;
                }
                this.take_over().await;
                this.pick_up_waiting(every).await;
            }
        });
    }

    /// Renew this node's leases; stop the runs whose lease is lost.
    async fn renew(&self, last_renewed: &mut Instant, lease: Duration) {
        let Some(leases) = self.inner.store.leases() else {
            return;
        };
        // Runs registered before the renewal: each was started (its lease taken) first.
        let held: Vec<String> = lock(&self.inner.running).keys().cloned().collect();
        let owned: Vec<String> = lock(&self.inner.owned).iter().cloned().collect();
        // A renewal that hangs (a half-open connection) counts as failed.
        let renewed = match tokio::time::timeout(lease / 3, leases.renew(&owned)).await {
            Ok(r) => r,
            Err(_) => Err(sundial_store::StoreError::Unavailable(
                "renewing the leases took longer than a third of a lease".into(),
            )),
        };
        match renewed {
            Ok(renewed) => {
                *last_renewed = Instant::now();
                for (id, _) in renewed.iter().filter(|(_, cancel)| *cancel) {
                    self.cancel_here(id);
                }
                let renewed: HashSet<String> = renewed.into_iter().map(|(id, _)| id).collect();
                for id in held.iter().filter(|id| !renewed.contains(*id)) {
                    self.lose(
                        id,
                        "another node took the run over (this node's lease had expired)",
                    );
                }
            }
            Err(e) if last_renewed.elapsed() >= lease => {
                let why = format!(
                    "its lease could not be renewed for {} s ({e})",
                    lease.as_secs_f64()
                );
                for id in &held {
                    self.lose(id, &why);
                }
            }
            Err(e) => tracing::warn!("renewing run leases failed (retrying): {e}"),
        }
    }

    /// Renew the leases now, not at the next tick (a cancel was asked on another node).
    pub fn renew_now(&self) {
        self.inner.renew_now.notify_one();
    }

    /// Stop run `id`, running here, as cancelled: a cancel asked on another node.
    fn cancel_here(&self, id: &str) {
        if let Some(handle) = lock(&self.inner.running).get(id) {
            lock(&self.inner.cancel_requested).insert(id.to_string());
            handle.abort();
        }
    }

    /// Stop run `id`'s plugin: this node no longer owns its attempt, so nothing it
    /// would record counts.
    fn lose(&self, id: &str, why: &str) {
        if let Some(handle) = lock(&self.inner.running).get(id) {
            tracing::warn!(run = id, "stopping the run here: {why}");
            lock(&self.inner.lost).insert(id.to_string());
            handle.abort();
        }
    }

    /// Take over runs whose node stopped renewing their lease: each is interrupted and
    /// retried or ended per its task's policy, as after a crash.
    async fn take_over(&self) {
        let Some(leases) = self.inner.store.leases() else {
            return;
        };
        let node = leases.node().to_string();
        let busy: Vec<String> = lock(&self.inner.owned).iter().cloned().collect();
        match leases.take_expired(TAKE_PER_ROUND, &busy).await {
            Ok(runs) => {
                for (run, cancelled) in runs {
                    tracing::warn!(run = %run.id, attempt = run.attempt, node, "took over a run whose lease expired");
                    let id = run.id.clone();
                    let settled = if cancelled {
                        self.end_cancelled(run).await
                    } else {
                        self.interrupt_because(
                            run,
                            "the node running this attempt stopped renewing its lease",
                        )
                        .await
                    };
                    if let Err(e) = settled {
                        tracing::error!(run = %id, "settling a run taken over failed: {e}");
                    }
                }
            }
            Err(e) => tracing::warn!("looking for expired leases failed (retrying): {e}"),
        }
    }

    /// End a run taken over whose cancel was asked before its node died: cancelled,
    /// not retried.
    async fn end_cancelled(&self, mut run: sundial_core::run::Run) -> Result<(), sundial_store::StoreError> {
        run.status = sundial_core::run::RunStatus::Cancelled;
        run.finished_at = Some(super::now());
        if let Some(a) = run.attempts.last_mut() {
            a.finished_at = run.finished_at.clone();
        }
        let run = self.inner.store.save_run(run).await?;
        self.notify(&run);
        Ok(())
    }

    /// Hand this node's free workers queued runs that have waited longer than `age`
    /// with no node starting them (their node died after queueing them, or they wait in
    /// a busy node's backlog). Only when this node's own backlog is empty, so a run it
    /// handed over itself is not handed over twice.
    async fn pick_up_waiting(&self, age: Duration) {
        let Some(leases) = self.inner.store.leases() else {
            return;
        };
        let free = self.inner.workers.available_permits();
        if free == 0 || self.inner.queue.backlog() > 0 {
            return;
        }
        match leases.waiting(age, free).await {
            Ok(runs) => {
                // Runs this node holds back itself (overlap `queue`) wait for their turn here.
                let deferred: HashSet<String> =
                    lock(&self.inner.deferred).values().flatten().cloned().collect();
                for run in runs.into_iter().filter(|r| !deferred.contains(&r.id)) {
                    self.inner.queue.hand_over(run.id);
                }
            }
            Err(e) => tracing::warn!("looking for waiting runs failed (retrying): {e}"),
        }
    }
}
