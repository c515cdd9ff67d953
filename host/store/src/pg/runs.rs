//! Runs on PostgreSQL: the task log, the run queue and the set of active runs in one
//! table, as [`crate::runs`] keeps them on redb. A run is in the queue while its
//! `status` column is `queued` and active while it is `running` (the partial indexes
//! `runs_queue` and `runs_active`); [`super::rows::put_run`] keeps the column in step
//! with the document.

use super::audit::SCAN_BATCH;
use super::batch::{Op, Reply};
use super::rows::{put_owned_run, put_run};
use super::{PgStore, db_error, decode_listed, decode_one, exec, limit_plus_one, row, rows, select_docs};
use crate::StoreError;
use crate::events::{Planned, Stored};
use crate::runs::{RunFilter, RunLeases, RunStore, StartAlone};
use crate::tables::{Paged, Pager};
use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use sundial_core::run::{Run, RunStatus};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

/// The run `id`, locked for the rest of the transaction; [`StoreError::NotFound`] when
/// there is none.
async fn load(c: &impl GenericClient, id: &str) -> Result<Run, StoreError> {
    match row(c, "SELECT doc FROM runs WHERE id = $1 FOR UPDATE", &[&id]).await? {
        None => Err(StoreError::NotFound(format!("run {id:?} not found"))),
        Some(r) => decode_one("runs", id, r.get(0)),
    }
}

/// Whether `node` may record the end of attempt `attempt` of the run `id`, whose row
/// says `status`, `owner` and `stored` (its current attempt): only while it runs that
/// attempt as its owner; [`StoreError::Stale`] otherwise.
pub(crate) fn fence(
    id: &str,
    attempt: u32,
    node: &str,
    status: &str,
    owner: Option<&str>,
    stored: Option<i32>,
) -> Result<(), StoreError> {
    if status == "running" && owner == Some(node) && stored == Some(attempt as i32) {
        return Ok(());
    }
    Err(StoreError::Stale(format!(
        "run {id} attempt {attempt} is no longer this node's ({node}): it is {status}{}; its result was not recorded",
        match (owner, stored) {
            (Some(o), Some(a)) => format!(", attempt {a} owned by {o}"),
            _ => String::new(),
        }
    )))
}

/// The runs of `rows` (`id, doc`) that decode.
fn listed(found: Vec<Row>) -> Vec<Run> {
    found
        .iter()
        .filter_map(|r| decode_listed("runs", r.get(0), r.get(1)))
        .collect()
}

/// End the run `id` with `status` at `now` if it is still queued (`finish` adds what
/// else changes), which takes it out of the queue; returns the run as it now is.
async fn end_queued(
    store: &PgStore,
    id: &str,
    status: RunStatus,
    now: String,
    finish: impl FnOnce(&mut Run) + Send,
) -> Result<Run, StoreError> {
    let mut client = store.client().await?;
    let t = client.transaction().await.map_err(db_error)?;
    let mut run = load(&t, id).await?;
    if run.status == RunStatus::Queued {
        run.status = status;
        run.finished_at = Some(now);
        finish(&mut run);
        put_run(&t, &run).await?;
    }
    store.commit(t).await?;
    Ok(run)
}

#[async_trait]
impl RunStore for PgStore {
    async fn enqueue_runs(&self, runs: Vec<Run>) -> Result<Vec<Run>, StoreError> {
        match self.batched(Op::Enqueue(runs)).await? {
            Reply::Runs(runs) => Ok(runs),
            _ => Err(StoreError::Storage(
                "the batch answered a queueing with something else".into(),
            )),
        }
    }

    async fn start_run(&self, id: &str, now: String) -> Result<Option<Run>, StoreError> {
        let op = Op::Start {
            id: id.to_string(),
            now,
        };
        match self.batched(op).await? {
            Reply::Started(run) => Ok(run),
            _ => Err(StoreError::Storage(
                "the batch answered a start with something else".into(),
            )),
        }
    }

    async fn save_run(&self, run: Run) -> Result<Run, StoreError> {
        Ok(self.save_run_with_events(run, Vec::new()).await?.0)
    }

    async fn save_run_with_events(
        &self,
        run: Run,
        events: Vec<Planned>,
    ) -> Result<(Run, Vec<Stored>), StoreError> {
        match self.batched(Op::Save(run, events)).await? {
            Reply::Saved(run, stored) => Ok((run, stored)),
            _ => Err(StoreError::Storage(
                "the batch answered a save with something else".into(),
            )),
        }
    }

    async fn cancel_queued_run(&self, id: &str, now: String) -> Result<Run, StoreError> {
        end_queued(self, id, RunStatus::Cancelled, now, |run| run.not_before = None).await
    }

    async fn skip_run(&self, id: &str, reason: String, now: String) -> Result<Run, StoreError> {
        end_queued(self, id, RunStatus::Skipped, now, |run| {
            run.log.lines.push(sundial_core::log::LogLine {
                at_ms: 0,
                level: sundial_core::log::Level::Info,
                origin: sundial_core::log::Origin::Host,
                message: reason,
            })
        })
        .await
    }

    fn queue_depth(&self) -> Result<u64, StoreError> {
        self.block(async {
            let client = self.client().await?;
            let found = row(&client, "SELECT count(*) FROM runs WHERE status = 'queued'", &[]).await?;
            Ok(found.map_or(0, |r| r.get::<_, i64>(0)) as u64)
        })
    }

    fn run(&self, id: &str) -> Result<Option<Run>, StoreError> {
        self.block(async {
            let client = self.client().await?;
            match row(&client, "SELECT doc FROM runs WHERE id = $1", &[&id]).await? {
                None => Ok(None),
                Some(r) => decode_one("runs", id, r.get(0)).map(Some),
            }
        })
    }

    fn pending_runs(&self) -> Result<(Vec<Run>, Vec<Run>), StoreError> {
        self.block(async {
            let client = self.client().await?;
            let queued = rows(
                &client,
                "SELECT id, doc FROM runs WHERE status = 'queued' ORDER BY id",
                &[],
            )
            .await?;
            // Only this node's: another node's running runs are alive or will be taken
            // over when their lease expires (RunLeases::take_expired).
            let active = rows(
                &client,
                "SELECT id, doc FROM runs WHERE status = 'running' AND owner = $1 ORDER BY id",
                &[&self.node()],
            )
            .await?;
            Ok((listed(queued), listed(active)))
        })
    }

    fn list_runs(
        &self,
        filter: &RunFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Paged<Run>, StoreError> {
        // Every filter but the error's text is a condition on a column; the page is
        // filled newest first from batches, skipping runs that do not decode or whose
        // error does not match, with redb's cursor: the id of the page's last run.
        let status = filter.status.map(RunStatus::as_str);
        let mut conditions: Vec<(&str, &(dyn ToSql + Sync))> = Vec::new();
        if let Some(v) = &filter.task_id {
            conditions.push(("task_id =", v));
        }
        if let Some(v) = &status {
            conditions.push(("status =", v));
        }
        if let Some(v) = &filter.cause {
            conditions.push(("cause =", v));
        }
        if let Some(v) = &filter.since {
            conditions.push(("queued_at >=", v));
        }
        if let Some(v) = &filter.until {
            conditions.push(("queued_at <", v));
        }
        let batch = match filter.error_contains {
            Some(_) => SCAN_BATCH.max(limit_plus_one(limit)),
            None => limit_plus_one(limit),
        };
        self.block(async {
            let client = self.client().await?;
            let mut pager = Pager::new(limit);
            let mut before = cursor.map(str::to_string);
            loop {
                let found = {
                    let mut all: Vec<(&str, &(dyn ToSql + Sync))> = conditions.clone();
                    if let Some(b) = &before {
                        all.push(("id <", b));
                    }
                    select_docs(&client, "runs", &all, "id DESC", batch).await?
                };
                let more = found.len() as i64 == batch;
                for r in found {
                    let id: String = r.get(0);
                    if let Some(run) = decode_listed::<Run>("runs", &id, r.get(1))
                        && filter.matches(&run)
                        && pager.push(&id, run)
                    {
                        return Ok(pager.finish());
                    }
                    before = Some(id);
                }
                if !more {
                    return Ok(pager.finish());
                }
            }
        })
    }

    async fn prune_runs(&self, task_id: &str, keep_last: usize, cutoff: String) -> Result<usize, StoreError> {
        // Finished runs never change again, so they are read without locks (locking a
        // task's whole log each round would write every row); the DELETE locks what it
        // deletes, and a run another node pruned meanwhile is simply not counted.
        let mut client = self.client().await?;
        let t = client.transaction().await.map_err(db_error)?;
        let found = rows(
            &t,
            "SELECT id, doc FROM runs WHERE task_id = $1 AND status NOT IN ('queued', 'running')
             ORDER BY id DESC",
            &[&task_id],
        )
        .await?;
        let seen: Vec<(String, RunStatus, Option<String>)> = found
            .iter()
            .filter_map(|r| {
                let id: &str = r.get(0);
                decode_listed::<Run>("runs", id, r.get(1))
                    .map(|run| (id.to_string(), run.status, run.finished_at))
            })
            .collect();
        let view: Vec<(&str, RunStatus, Option<&str>)> = seen
            .iter()
            .map(|(id, status, finished)| (id.as_str(), *status, finished.as_deref()))
            .collect();
        let doomed = sundial_core::run::prunable(&view, keep_last, &cutoff);
        if doomed.is_empty() {
            return Ok(0);
        }
        let deleted = exec(
            &t,
            "DELETE FROM runs WHERE id = ANY($1) AND status NOT IN ('queued', 'running')",
            &[&doomed],
        )
        .await?;
        self.commit(t).await?;
        Ok(deleted as usize)
    }

    fn tasks_with_runs(&self) -> Result<Vec<String>, StoreError> {
        // Distinct task ids in order, one index probe each (a loose index scan of
        // runs_by_task) rather than a pass over every run.
        self.block(async {
            let client = self.client().await?;
            let found = rows(
                &client,
                "WITH RECURSIVE t AS (
                     (SELECT task_id FROM runs ORDER BY task_id LIMIT 1)
                     UNION ALL
                     SELECT (SELECT r.task_id FROM runs r WHERE r.task_id > t.task_id
                             ORDER BY r.task_id LIMIT 1)
                     FROM t WHERE t.task_id IS NOT NULL
                 )
                 SELECT task_id FROM t WHERE task_id IS NOT NULL",
                &[],
            )
            .await?;
            Ok(found.iter().map(|r| r.get(0)).collect())
        })
    }

    fn leases(&self) -> Option<&dyn RunLeases> {
        Some(self)
    }
}

/// Leases: the run rows' `owner`, `attempt` and `lease_until` columns, on the
/// database's clock (`now()`), so nodes' clocks need not agree.
#[async_trait]
impl RunLeases for PgStore {
    fn node(&self) -> &str {
        PgStore::node(self)
    }

    fn lease(&self) -> std::time::Duration {
        PgStore::lease(self)
    }

    async fn renew(&self, ids: &[String]) -> Result<Vec<(String, bool)>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.client().await?;
        let found = rows(
            &client,
            // Locked in id order, as the batches lock runs (pg/batch.rs), so that a
            // renewal and a batch ending some of the same runs never deadlock.
            "UPDATE runs AS r SET lease_until = now() + make_interval(secs => $2)
             FROM (SELECT id FROM runs WHERE owner = $1 AND status = 'running' AND id = ANY($3)
                   ORDER BY id FOR UPDATE) AS l
             WHERE r.id = l.id RETURNING r.id, r.cancel",
            &[&self.node(), &self.lease().as_secs_f64(), &ids],
        )
        .await?;
        Ok(found.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn request_cancel(&self, id: &str) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let t = client.transaction().await.map_err(db_error)?;
        let asked = exec(
            &t,
            "UPDATE runs SET cancel = true WHERE id = $1 AND status = 'running'",
            &[&id],
        )
        .await?;
        super::listen::notify(&t, "cancel").await?;
        self.commit(t).await?;
        Ok(asked == 1)
    }

    async fn start_alone(&self, id: &str, task: &str, now: String) -> Result<StartAlone, StoreError> {
        let mut client = self.client().await?;
        let t = client.transaction().await.map_err(db_error)?;
        // Starts of one task's runs queue up here, on every node (a lock on the task's
        // id, which holds whether or not the task still exists).
        exec(
            &t,
            "SELECT pg_advisory_xact_lock(hashtext('task-start:' || $1))",
            &[&task],
        )
        .await?;
        let busy: Vec<String> = rows(
            &t,
            "SELECT id FROM runs WHERE task_id = $1 AND status = 'running' AND id <> $2 ORDER BY id",
            &[&task, &id],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
        if !busy.is_empty() {
            return Ok(StartAlone::Busy(busy));
        }
        let mut run = load(&t, id).await?;
        if run.status != RunStatus::Queued {
            return Ok(StartAlone::Gone);
        }
        run.begin_attempt(now);
        put_owned_run(&t, &run, self.node(), self.lease()).await?;
        self.commit(t).await?;
        Ok(StartAlone::Started(run))
    }

    fn spend_chain(&self, chain: &str, cost: u64, max: u64) -> Result<Result<u64, u64>, StoreError> {
        if cost > max {
            return Ok(Err(0));
        }
        self.block(async {
            let client = self.client().await?;
            let (cost, max) = (cost as i64, max as i64);
            let spent = row(
                &client,
                "INSERT INTO chains (chain, spent) VALUES ($1, $2)
                 ON CONFLICT (chain) DO UPDATE SET spent = chains.spent + excluded.spent, at = now()
                 WHERE chains.spent + excluded.spent <= $3
                 RETURNING spent",
                &[&chain, &cost, &max],
            )
            .await?;
            if let Some(r) = spent {
                return Ok(Ok(r.get::<_, i64>(0) as u64));
            }
            let now = row(&client, "SELECT spent FROM chains WHERE chain = $1", &[&chain]).await?;
            Ok(Err(now.map_or(0, |r| r.get::<_, i64>(0)) as u64))
        })
    }

    async fn running_of(&self, task: &str, except: &str) -> Result<Vec<String>, StoreError> {
        let client = self.client().await?;
        Ok(rows(
            &client,
            "SELECT id FROM runs WHERE task_id = $1 AND status = 'running' AND id <> $2 ORDER BY id",
            &[&task, &except],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
    }

    async fn take_expired(&self, limit: usize, busy: &[String]) -> Result<Vec<(Run, bool)>, StoreError> {
        let mut client = self.client().await?;
        let t = client.transaction().await.map_err(db_error)?;
        let found = rows(
            &t,
            "SELECT id, doc, cancel FROM runs WHERE status = 'running' AND lease_until < now()
             AND NOT (id = ANY($2)) ORDER BY lease_until LIMIT $1 FOR UPDATE SKIP LOCKED",
            &[&(limit.min(1 << 20) as i64), &busy],
        )
        .await?;
        let mut taken = Vec::new();
        for r in &found {
            let id: String = r.get(0);
            match decode_one::<Run>("runs", &id, r.get(1)) {
                Ok(run) => {
                    put_owned_run(&t, &run, self.node(), self.lease()).await?;
                    taken.push((run, r.get::<_, bool>(2)));
                }
                // A run that cannot be read cannot be retried: it leaves the active
                // set (an admin sees it in GET /v1/admin/unreadable).
                Err(e) => {
                    tracing::error!(run = %id, "a run whose lease expired cannot be read: {e}");
                    exec(
                        &t,
                        "UPDATE runs SET status = 'interrupted', owner = NULL, attempt = NULL, lease_until = NULL WHERE id = $1",
                        &[&id],
                    )
                    .await?;
                }
            }
        }
        self.commit(t).await?;
        Ok(taken)
    }

    async fn waiting(&self, age: std::time::Duration, limit: usize) -> Result<Vec<Run>, StoreError> {
        let client = self.client().await?;
        let found = rows(
            &client,
            "SELECT id, doc FROM runs
             WHERE status = 'queued' AND coalesce(due, queued_at::timestamptz) < now() - make_interval(secs => $1)
             ORDER BY id LIMIT $2",
            &[&age.as_secs_f64(), &(limit.min(1 << 20) as i64)],
        )
        .await?;
        Ok(listed(found))
    }
}
