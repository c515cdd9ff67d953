//! Runs (the task log), the durable run queue and the set of active runs.

use super::tables::{get_json, put_json};
use super::{Store, StoreError};
use crate::schema::*;
use async_trait::async_trait;
use redb::{ReadableTable, WriteTransaction};
use sundial_core::run::{Run, RunStatus};

/// Filters of a run listing; all optional, combined with AND.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    /// Only runs of this task id.
    pub task_id: Option<String>,
    /// Only runs with this status.
    pub status: Option<RunStatus>,
    /// Only runs with this cause kind (`manual`, `schedule`, `event`).
    pub cause: Option<String>,
    /// Only runs queued at or after this time (RFC 3339).
    pub since: Option<String>,
    /// Only runs queued before this time (RFC 3339).
    pub until: Option<String>,
}

impl RunFilter {
    fn matches(&self, run: &Run) -> bool {
        self.status.is_none_or(|s| run.status == s)
            && self.cause.as_deref().is_none_or(|c| run.cause.kind() == c)
            && self.since.as_deref().is_none_or(|t| run.queued_at.as_str() >= t)
            && self.until.as_deref().is_none_or(|t| run.queued_at.as_str() < t)
    }
}

/// Insert new runs (queued ones also into the queue) inside `txn`.
pub(crate) fn insert_runs(txn: &WriteTransaction, runs: &[Run]) -> Result<(), StoreError> {
    let mut table = txn.open_table(RUNS)?;
    let mut by_task = txn.open_table(RUNS_BY_TASK)?;
    let mut queue = txn.open_table(RUN_QUEUE)?;
    for run in runs {
        put_json(&mut table, &run.id, run)?;
        by_task.insert(format!("{}/{}", run.task_id, run.id).as_str(), ())?;
        if run.status == RunStatus::Queued {
            queue.insert(run.id.as_str(), ())?;
        }
    }
    Ok(())
}

fn load(txn: &WriteTransaction, id: &str) -> Result<Run, StoreError> {
    get_json(&txn.open_table(RUNS)?, id)?.ok_or_else(|| StoreError::NotFound(format!("run {id:?} not found")))
}

/// Runs: the durable run queue and the task log.
#[async_trait]
pub trait RunStore: Send + Sync {
    /// Durably queue new runs (one commit for all of them).
    async fn enqueue_runs(&self, runs: Vec<Run>) -> Result<Vec<Run>, StoreError>;

    /// Move a queued run to running (attempt + 1). `None` when it is no longer queued
    /// (cancelled meanwhile).
    async fn start_run(&self, id: &str, now: String) -> Result<Option<Run>, StoreError>;

    /// Store the outcome of an attempt: a terminal run leaves the queue and the active
    /// set; a run set back to `queued` (a retry) goes back in the queue.
    async fn save_run(&self, run: Run) -> Result<Run, StoreError>;

    /// Save a run together with the events it produced (internal events about it and
    /// events its plugin emitted) and what they start, in one commit.
    async fn save_run_with_events(
        &self,
        run: Run,
        events: Vec<super::events::Planned>,
    ) -> Result<(Run, Vec<super::events::Stored>), StoreError>;

    /// Cancel a run that is still queued. Returns the run as it now is; a running run
    /// is returned unchanged (the executor stops it), a finished one too.
    async fn cancel_queued_run(&self, id: &str, now: String) -> Result<Run, StoreError>;

    /// Mark a queued run skipped (overlap policy), with `reason` in its log.
    async fn skip_run(&self, id: &str, reason: String, now: String) -> Result<Run, StoreError>;

    /// Number of runs waiting in the queue.
    fn queue_depth(&self) -> Result<u64, StoreError>;

    /// One run.
    fn run(&self, id: &str) -> Result<Option<Run>, StoreError>;

    /// Runs that were queued or running, for recovery at start:
    /// (queued, active). Active ones were interrupted by the previous process's death.
    fn pending_runs(&self) -> Result<(Vec<Run>, Vec<Run>), StoreError>;

    /// Runs matching `filter`, newest first, at most `limit`, starting after run id
    /// `cursor` (the last id of the previous page). Returns the page and the next cursor.
    fn list_runs(
        &self,
        filter: &RunFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Run>, Option<String>), StoreError>;

    /// Apply retention to one task's runs: keep the newest `keep_last` finished runs and
    /// none that finished before `cutoff`. Returns how many were deleted.
    async fn prune_runs(&self, task_id: &str, keep_last: usize, cutoff: String) -> Result<usize, StoreError>;

    /// Ids of the tasks that have runs in the log (including deleted tasks).
    fn tasks_with_runs(&self) -> Result<Vec<String>, StoreError>;
}

#[async_trait]
impl RunStore for Store {
    async fn enqueue_runs(&self, runs: Vec<Run>) -> Result<Vec<Run>, StoreError> {
        self.write(move |txn| {
            insert_runs(txn, &runs)?;
            Ok(runs)
        })
        .await
    }

    async fn start_run(&self, id: &str, now: String) -> Result<Option<Run>, StoreError> {
        let id = id.to_string();
        self.write(move |txn| {
            let mut run = load(txn, &id)?;
            if run.status != RunStatus::Queued {
                return Ok(None);
            }
            run.status = RunStatus::Running;
            run.attempt += 1;
            run.started_at = Some(now.clone());
            run.not_before = None;
            run.attempts.push(sundial_core::run::Attempt {
                number: run.attempt,
                started_at: now,
                finished_at: None,
                error: None,
            });
            txn.open_table(RUN_QUEUE)?.remove(id.as_str())?;
            txn.open_table(ACTIVE_RUNS)?.insert(id.as_str(), ())?;
            put_json(&mut txn.open_table(RUNS)?, &id, &run)?;
            Ok(Some(run))
        })
        .await
    }

    async fn save_run(&self, run: Run) -> Result<Run, StoreError> {
        self.write(move |txn| save_run_in(txn, run)).await
    }

    async fn save_run_with_events(
        &self,
        run: Run,
        events: Vec<super::events::Planned>,
    ) -> Result<(Run, Vec<super::events::Stored>), StoreError> {
        self.write(move |txn| {
            let run = save_run_in(txn, run)?;
            Ok((run, super::events::apply_events(txn, events)?))
        })
        .await
    }

    async fn cancel_queued_run(&self, id: &str, now: String) -> Result<Run, StoreError> {
        let id = id.to_string();
        self.write(move |txn| {
            let mut run = load(txn, &id)?;
            if run.status == RunStatus::Queued {
                run.status = RunStatus::Cancelled;
                run.finished_at = Some(now);
                run.not_before = None;
                txn.open_table(RUN_QUEUE)?.remove(id.as_str())?;
                put_json(&mut txn.open_table(RUNS)?, &id, &run)?;
            }
            Ok(run)
        })
        .await
    }

    async fn skip_run(&self, id: &str, reason: String, now: String) -> Result<Run, StoreError> {
        let id = id.to_string();
        self.write(move |txn| {
            let mut run = load(txn, &id)?;
            if run.status == RunStatus::Queued {
                run.status = RunStatus::Skipped;
                run.finished_at = Some(now);
                run.log.lines.push(sundial_core::log::LogLine {
                    at_ms: 0,
                    level: sundial_core::log::Level::Info,
                    origin: sundial_core::log::Origin::Host,
                    message: reason,
                });
                txn.open_table(RUN_QUEUE)?.remove(id.as_str())?;
                put_json(&mut txn.open_table(RUNS)?, &id, &run)?;
            }
            Ok(run)
        })
        .await
    }

    fn queue_depth(&self) -> Result<u64, StoreError> {
        use redb::ReadableTableMetadata;
        let txn = self.read()?;
        let Ok(q) = txn.open_table(RUN_QUEUE) else {
            return Ok(0);
        };
        Ok(q.len()?)
    }

    fn run(&self, id: &str) -> Result<Option<Run>, StoreError> {
        let txn = self.read()?;
        let Ok(runs) = txn.open_table(RUNS) else {
            return Ok(None);
        };
        get_json(&runs, id)
    }

    fn pending_runs(&self) -> Result<(Vec<Run>, Vec<Run>), StoreError> {
        let txn = self.read()?;
        let Ok(runs) = txn.open_table(RUNS) else {
            return Ok((Vec::new(), Vec::new()));
        };
        let collect = |table: redb::TableDefinition<&str, ()>| -> Result<Vec<Run>, StoreError> {
            let Ok(t) = txn.open_table(table) else {
                return Ok(Vec::new());
            };
            let mut out = Vec::new();
            for entry in t.iter()? {
                let (k, _) = entry?;
                if let Some(run) = super::tables::get_listed::<Run>(&runs, "runs", k.value())? {
                    out.push(run);
                }
            }
            Ok(out)
        };
        Ok((collect(RUN_QUEUE)?, collect(ACTIVE_RUNS)?))
    }

    fn list_runs(
        &self,
        filter: &RunFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Run>, Option<String>), StoreError> {
        let txn = self.read()?;
        let Ok(runs) = txn.open_table(RUNS) else {
            return Ok((Vec::new(), None));
        };
        let mut page = Vec::new();
        let push = |run: Run, page: &mut Vec<Run>| {
            if filter.matches(&run) {
                page.push(run);
            }
            page.len() > limit
        };
        if let Some(task) = &filter.task_id {
            let by_task = match txn.open_table(RUNS_BY_TASK) {
                Ok(t) => t,
                Err(_) => return Ok((Vec::new(), None)),
            };
            let lo = format!("{task}/");
            let hi = match cursor {
                Some(c) => format!("{task}/{c}"),
                None => format!("{task}0"),
            };
            for entry in by_task.range(lo.as_str()..hi.as_str())?.rev() {
                let (k, _) = entry?;
                let id = k.value().rsplit('/').next().unwrap_or_default().to_string();
                if let Some(run) = super::tables::get_listed::<Run>(&runs, "runs", &id)?
                    && push(run, &mut page)
                {
                    break;
                }
            }
        } else {
            let iter = match cursor {
                Some(c) => runs.range(..c)?,
                None => runs.range::<&str>(..)?,
            };
            for entry in iter.rev() {
                let (k, v) = entry?;
                let Some(run): Option<Run> =
                    super::tables::decode_listed("runs", k.value(), v.value().bytes())
                else {
                    continue;
                };
                if push(run, &mut page) {
                    break;
                }
            }
        }
        let next = if page.len() > limit {
            page.truncate(limit);
            page.last().map(|r| r.id.clone())
        } else {
            None
        };
        Ok((page, next))
    }

    async fn prune_runs(&self, task_id: &str, keep_last: usize, cutoff: String) -> Result<usize, StoreError> {
        let task = task_id.to_string();
        self.write(move |txn| {
            let mut by_task = txn.open_table(RUNS_BY_TASK)?;
            let mut runs = txn.open_table(RUNS)?;
            let lo = format!("{task}/");
            let hi = format!("{task}0");
            let mut seen: Vec<(String, RunStatus, Option<String>)> = Vec::new();
            for entry in by_task.range(lo.as_str()..hi.as_str())?.rev() {
                let (k, _) = entry?;
                let id = k.value().rsplit('/').next().unwrap_or_default().to_string();
                if let Some(run) = super::tables::get_listed::<Run>(&runs, "runs", &id)? {
                    seen.push((id, run.status, run.finished_at));
                }
            }
            let view: Vec<(&str, RunStatus, Option<&str>)> = seen
                .iter()
                .map(|(id, st, f)| (id.as_str(), *st, f.as_deref()))
                .collect();
            let doomed = sundial_core::run::prunable(&view, keep_last, &cutoff);
            for id in &doomed {
                runs.remove(*id)?;
                by_task.remove(format!("{task}/{id}").as_str())?;
            }
            Ok(doomed.len())
        })
        .await
    }

    fn tasks_with_runs(&self) -> Result<Vec<String>, StoreError> {
        let txn = self.read()?;
        let Ok(by_task) = txn.open_table(RUNS_BY_TASK) else {
            return Ok(Vec::new());
        };
        let mut out: Vec<String> = Vec::new();
        for entry in by_task.iter()? {
            let (k, _) = entry?;
            let task = k.value().split('/').next().unwrap_or_default();
            if out.last().is_none_or(|t| t != task) {
                out.push(task.to_string());
            }
        }
        Ok(out)
    }
}

fn save_run_in(txn: &WriteTransaction, run: Run) -> Result<Run, StoreError> {
    {
        {
            let mut queue = txn.open_table(RUN_QUEUE)?;
            let mut active = txn.open_table(ACTIVE_RUNS)?;
            active.remove(run.id.as_str())?;
            match run.status {
                RunStatus::Queued => {
                    queue.insert(run.id.as_str(), ())?;
                }
                RunStatus::Running => {
                    active.insert(run.id.as_str(), ())?;
                }
                _ => {
                    queue.remove(run.id.as_str())?;
                }
            }
            put_json(&mut txn.open_table(RUNS)?, &run.id, &run)?;
            Ok(run)
        }
    }
}
