//! Recovery: what a dead process or a failed disk left behind. Runs that were running
//! are interrupted (their attempt closed, then retried or ended per the task's policy);
//! queued ones go back to the workers.

use super::{Executor, after, now, rand_unit};
use std::time::Duration;
use sundial_core::run::{AfterFailure, Run, RunStatus, after_failure};
use sundial_runtime as runtime;
use sundial_store::StoreError;

impl Executor {
    /// Deal with what the previous process left: runs that were running are
    /// interrupted (retried or marked per their task's policy); queued runs are
    /// submitted. Returns (resubmitted, interrupted) counts.
    pub async fn recover(&self) -> Result<(usize, usize), StoreError> {
        let (queued, active) = self.inner.store.pending_runs()?;
        let interrupted = active.len();
        for run in active {
            match self.interrupt(run).await {
                // Another node took it over meanwhile (its lease ran out while this node
                // was down): that node settles it.
                Err(StoreError::Stale(_)) => {}
                other => other?,
            }
        }
        for run in &queued {
            self.submit(run);
        }
        Ok((queued.len(), interrupted))
    }

    /// The store failed during a run (a full disk): its start or end may not have been
    /// recorded. Once the store writes again, settle it as if the daemon had stopped
    /// during it: a queued run goes to the workers, a running one is interrupted and
    /// retried per its task's policy. Looks again every second until then.
    pub(super) fn settle_later(&self, id: String) {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if this.inner.stopping.load(std::sync::atomic::Ordering::Relaxed) {
                    return;
                }
                let result = match this.inner.store.run(&id) {
                    Ok(Some(run)) if run.status == RunStatus::Queued => {
                        this.submit(&run);
                        Ok(())
                    }
                    Ok(Some(run)) if run.status == RunStatus::Running => {
                        this.interrupt_because(run, "the data disk failed during this attempt")
                            .await
                    }
                    Ok(_) => Ok(()),
                    Err(e) => Err(e),
                };
                match result {
                    Err(StoreError::Unavailable(_)) => continue,
                    Err(e) => {
                        tracing::error!(run = %id, "settling a run after a store failure failed: {e}");
                        return;
                    }
                    Ok(()) => return,
                }
            }
        });
    }

    /// Close the current attempt of a run the daemon stopped during, then retry it
    /// (queued after its backoff) or end it `interrupted`, per the task's policy.
    pub(super) async fn interrupt(&self, run: Run) -> Result<(), StoreError> {
        self.interrupt_because(run, "the daemon stopped during this attempt")
            .await
    }

    /// [`Executor::interrupt`] with the reason recorded on the attempt.
    pub(super) async fn interrupt_because(&self, mut run: Run, reason: &str) -> Result<(), StoreError> {
        let policy = self
            .inner
            .store
            .task(&run.task_id)?
            .map(|t| t.spec.retry)
            .unwrap_or_default();
        let error = runtime::RunError::Instantiate(reason.into());
        if let Some(a) = run.attempts.last_mut() {
            a.finished_at = Some(now());
            a.error = Some(error.clone());
        }
        run.error = Some(error);
        match after_failure(&policy, run.attempt, None, true, rand_unit()) {
            AfterFailure::RetryAfterMs(ms) => {
                run.status = RunStatus::Queued;
                run.not_before = Some(after(ms));
                let run = self.inner.store.save_run(run).await?;
                if !self.inner.stopping.load(std::sync::atomic::Ordering::Relaxed) {
                    self.submit(&run);
                }
            }
            AfterFailure::Finish(status) => {
                run.status = status;
                run.finished_at = Some(now());
                let run = self.inner.store.save_run(run).await?;
                self.notify(&run);
            }
        }
        Ok(())
    }
}
