//! The overlap policy: what happens when a run of a task is about to start while
//! another run of the same task is active (`allow`, `forbid`, `queue`, `replace`).

use super::{Executor, lock, now};
use sundial_core::run::Run;
use sundial_core::task::OverlapPolicy;
use sundial_store::StoreError;
use sundial_store::runs::StartAlone;

impl Executor {
    /// Apply the task's overlap policy before a run starts.
    pub(super) fn claim(&self, task: &str, run: &str, policy: OverlapPolicy) -> Slot {
        let mut active = lock(&self.inner.active_by_task);
        let runs = active.entry(task.to_string()).or_default();
        match policy {
            OverlapPolicy::Forbid if !runs.is_empty() => return Slot::Skip(runs[0].clone()),
            OverlapPolicy::Queue if !runs.is_empty() => {
                lock(&self.inner.deferred)
                    .entry(task.to_string())
                    .or_default()
                    .push_back(run.to_string());
                return Slot::Defer;
            }
            OverlapPolicy::Replace => {
                let running = lock(&self.inner.running);
                for other in runs.iter() {
                    if let Some(handle) = running.get(other) {
                        handle.abort();
                    }
                }
            }
            _ => {}
        }
        runs.push(run.to_string());
        Slot::Go(Claim {
            exec: self.clone(),
            task: task.to_string(),
            run: run.to_string(),
        })
    }

    /// Start run `id` (claimed on this node by [`Executor::claim`]). In a cluster the
    /// policy also holds across nodes: `forbid` skips and `queue` leaves queued a run
    /// whose task runs on another node (a node picks the queued one up later, see
    /// `leases.rs`), and `replace` asks the other nodes to stop theirs. `None` when it
    /// does not start.
    pub(super) async fn start_claimed(
        &self,
        id: &str,
        task: &str,
        policy: OverlapPolicy,
    ) -> Result<Option<Run>, StoreError> {
        let store = &self.inner.store;
        let Some(leases) = store.leases() else {
            return store.start_run(id, now()).await;
        };
        match policy {
            OverlapPolicy::Forbid | OverlapPolicy::Queue => {
                match leases.start_alone(id, task, now()).await? {
                    StartAlone::Started(run) => Ok(Some(run)),
                    StartAlone::Gone => Ok(None),
                    StartAlone::Busy(_) if policy == OverlapPolicy::Queue => Ok(None),
                    StartAlone::Busy(active) => {
                        let reason = format!(
                            "skipped: run {} of this task is still active (overlap policy forbid)",
                            active[0]
                        );
                        let run = store.skip_run(id, reason, now()).await?;
                        self.notify(&run);
                        Ok(None)
                    }
                }
            }
            OverlapPolicy::Replace => {
                for other in leases.running_of(task, id).await? {
                    if !lock(&self.inner.running).contains_key(&other) {
                        leases.request_cancel(&other).await?;
                    }
                }
                store.start_run(id, now()).await
            }
            OverlapPolicy::Allow => store.start_run(id, now()).await,
        }
    }

    /// If no run of `task` is active, submit the next run deferred by `queue` overlap.
    pub(super) fn wake_deferred(&self, task: &str) {
        let mut active = lock(&self.inner.active_by_task);
        if active.get(task).is_some_and(|runs| !runs.is_empty()) {
            return;
        }
        active.remove(task);
        let next = lock(&self.inner.deferred)
            .get_mut(task)
            .and_then(|q| q.pop_front());
        if let Some(next) = next {
            self.inner.queue.hand_over(next);
        }
    }
}

/// What the overlap policy says about a run that is about to start.
pub(super) enum Slot {
    /// Start it (the claim is released when the run ends).
    Go(Claim),
    /// Skip it: this run of the task is active (policy `forbid`).
    Skip(String),
    /// Start it when the active run of the task ends (policy `queue`).
    Defer,
}

/// A run's place among its task's active runs; released on drop.
pub(super) struct Claim {
    exec: Executor,
    task: String,
    run: String,
}

impl Drop for Claim {
    fn drop(&mut self) {
        {
            let mut active = lock(&self.exec.inner.active_by_task);
            if let Some(runs) = active.get_mut(&self.task) {
                runs.retain(|r| *r != self.run);
            }
        }
        self.exec.wake_deferred(&self.task);
    }
}
