//! Runs (the task log), the durable run queue and the set of active runs.

use super::batch::Hot;
use super::tables::{
    Json, Paged, Pager, Scan, encode_record, get_existing, get_listed, newest_first, put_encoded, put_json,
};
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
    /// Only runs whose error contains this text, ignoring case (lower case here).
    pub error_contains: Option<String>,
}

impl RunFilter {
    /// Where a newest-first scan may stop: runs queued more than an hour before
    /// `since` (run ids follow the time they were queued; the hour allows for a clock
    /// step), as a timestamp text to compare with `queued_at`.
    fn stop_before(&self) -> Option<String> {
        let since = sundial_core::timestamp::parse(self.since.as_deref()?).ok()?;
        Some(sundial_core::timestamp::text(since - chrono::Duration::hours(1)))
    }

    pub(crate) fn matches(&self, run: &Run) -> bool {
        self.status.is_none_or(|s| run.status == s)
            && self.error_contains.as_deref().is_none_or(|text| {
                run.error
                    .as_ref()
                    .is_some_and(|e| e.to_string().to_lowercase().contains(text))
            })
            && self.cause.as_deref().is_none_or(|c| run.cause.kind() == c)
            && self.since.as_deref().is_none_or(|t| run.queued_at.as_str() >= t)
            && self.until.as_deref().is_none_or(|t| run.queued_at.as_str() < t)
    }
}

/// Insert new runs (queued ones also into the queue) into the hot tables.
pub(crate) fn insert_runs(hot: &mut Hot<'_>, runs: &[Run]) -> Result<(), StoreError> {
    insert_encoded_runs(hot, runs, &encode_runs(runs)?)
}

/// Each of `runs` encoded for [`insert_encoded_runs`] (before the write transaction).
pub(crate) fn encode_runs(runs: &[Run]) -> Result<Vec<Json<'static, Run>>, StoreError> {
    runs.iter().map(|r| encode_record(&r.id, r)).collect()
}

/// [`insert_runs`] with the records encoded beforehand (`encoded[i]` is `runs[i]`).
pub(crate) fn insert_encoded_runs(
    hot: &mut Hot<'_>,
    runs: &[Run],
    encoded: &[Json<'static, Run>],
) -> Result<(), StoreError> {
    debug_assert_eq!(runs.len(), encoded.len(), "one encoding per run");
    for (run, json) in runs.iter().zip(encoded) {
        put_encoded(&mut hot.runs, &run.id, json)?;
        hot.runs_by_task
            .insert(format!("{}/{}", run.task_id, run.id).as_str(), ())?;
        if run.status == RunStatus::Queued {
            hot.run_queue.insert(run.id.as_str(), ())?;
        }
    }
    Ok(())
}

fn load(txn: &WriteTransaction, id: &str) -> Result<Run, StoreError> {
    get_existing(&txn.open_table(RUNS)?, "run", id)
}

impl Store {
    /// End the run `id` with `status` at `now` if it is still queued (`finish` adds what
    /// else changes), taking it out of the queue; returns the run as it now is.
    async fn end_queued(
        &self,
        id: &str,
        status: RunStatus,
        now: String,
        finish: impl FnOnce(&mut Run) + Send + 'static,
    ) -> Result<Run, StoreError> {
        let id = id.to_string();
        self.write(move |txn| {
            let mut run = load(txn, &id)?;
            if run.status == RunStatus::Queued {
                run.status = status;
                run.finished_at = Some(now);
                finish(&mut run);
                txn.open_table(RUN_QUEUE)?.remove(id.as_str())?;
                put_json(&mut txn.open_table(RUNS)?, &id, &run)?;
            }
            Ok(run)
        })
        .await
    }
}

/// A run's start worked out before the write transaction ([`Store::prepare_start`]): the
/// record's bytes as read, and the started run with its encoding.
pub(crate) struct PreparedStart {
    read: Vec<u8>,
    json: Json<'static, Run>,
    run: Run,
}

impl Store {
    /// Read run `id` and, if it is queued, start it (attempt + 1 at `now`) and encode it,
    /// off the writer thread. `None` when it is missing, unreadable or not queued: then
    /// [`start_in`] works from the record as it is at the write.
    pub(crate) fn prepare_start(&self, id: &str, now: &str) -> Result<Option<PreparedStart>, StoreError> {
        let read = self.read_table(RUNS, |runs| Ok(runs.get(id)?.map(|v| v.value().bytes().to_vec())))?;
        let Some(read) = read else {
            return Ok(None);
        };
        let Ok(mut run) = super::tables::decode::<Run>(&read) else {
            return Ok(None);
        };
        if run.status != RunStatus::Queued {
            return Ok(None);
        }
        run.begin_attempt(now.to_string());
        let json = encode_record(&run.id, &run)?;
        Ok(Some(PreparedStart { read, json, run }))
    }
}

/// Start run `id` inside `txn`: move it from the queue to the active runs, attempt + 1
/// at `now`. With `prepared` (worked out before the transaction) and the stored record
/// still the bytes it was read from, the writer only copies the new bytes in; otherwise
/// (changed meanwhile, or nothing prepared) it starts the record as it is now. `None`
/// when the run is no longer queued.
pub(crate) fn start_in(
    hot: &mut Hot<'_>,
    id: &str,
    prepared: Option<PreparedStart>,
    now: String,
) -> Result<Option<Run>, StoreError> {
    let prepared = match prepared {
        Some(p) => {
            let unchanged = hot
                .runs
                .get(id)?
                .is_some_and(|v| v.value().bytes() == p.read.as_slice());
            unchanged.then_some(p)
        }
        None => None,
    };
    let (json, run) = match prepared {
        Some(p) => (p.json, p.run),
        None => {
            let mut run = get_existing(&hot.runs, "run", id)?;
            if run.status != RunStatus::Queued {
                return Ok(None);
            }
            run.begin_attempt(now);
            (encode_record(id, &run)?, run)
        }
    };
    hot.run_queue.remove(id)?;
    hot.active_runs.insert(id, ())?;
    put_encoded(&mut hot.runs, id, &json)?;
    Ok(Some(run))
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
    ) -> Result<Paged<Run>, StoreError>;

    /// Apply retention to one task's runs: keep the newest `keep_last` finished runs and
    /// none that finished before `cutoff`. Returns how many were deleted.
    async fn prune_runs(&self, task_id: &str, keep_last: usize, cutoff: String) -> Result<usize, StoreError>;

    /// Ids of the tasks that have runs in the log (including deleted tasks).
    fn tasks_with_runs(&self) -> Result<Vec<String>, StoreError>;

    /// The leases of a store that several nodes share (PostgreSQL); `None` for one a
    /// single node owns (redb), where a run is this process's until it ends.
    fn leases(&self) -> Option<&dyn RunLeases> {
        None
    }
}

/// What [`RunLeases::start_alone`] did.
#[derive(Debug)]
pub enum StartAlone {
    /// Started: the run as it now is.
    Started(Run),
    /// Not started: these runs of the task are running (on some node).
    Busy(Vec<String>),
    /// Not started: it is no longer queued.
    Gone,
}

/// Leases on running runs, for stores several nodes share. A node owns each run it
/// starts ([`RunStore::start_run`]) for one attempt, under a lease it renews; a run
/// whose lease expires (its node died, hung or lost the database) is taken over by
/// another node. A completion ([`RunStore::save_run`],
/// [`RunStore::save_run_with_events`]) is accepted only from the run's owner for the
/// attempt it owns: anyone else's is [`StoreError::Stale`].
#[async_trait]
pub trait RunLeases: Send + Sync {
    /// This node's name.
    fn node(&self) -> &str;

    /// How long a lease lasts without renewal.
    fn lease(&self) -> std::time::Duration;

    /// Renew, in one statement, the leases of the runs of `ids` this node owns: the
    /// ones it is executing (a run it owns but no longer executes, after a failure,
    /// is left to expire and be taken over). Returns the ids renewed, each with
    /// whether a cancel was asked for it (on any node).
    async fn renew(&self, ids: &[String]) -> Result<Vec<(String, bool)>, StoreError>;

    /// Ask the node running run `id` to stop it (an API cancel, or a `replace` overlap
    /// on another node): it sees the request at its next renewal, or at once on the
    /// `cancel` notice. False when the run is not running.
    async fn request_cancel(&self, id: &str) -> Result<bool, StoreError>;

    /// Start run `id` only if no other run of `task` is running on any node (overlap
    /// policies `forbid` and `queue` across a cluster): starts of one task's runs take
    /// turns while the cluster's active runs of it are looked at.
    async fn start_alone(&self, id: &str, task: &str, now: String) -> Result<StartAlone, StoreError>;

    /// The runs of `task` running on any node, but `except`.
    async fn running_of(&self, task: &str, except: &str) -> Result<Vec<String>, StoreError>;

    /// Spend `cost` of causal chain `chain`'s budget of `max`, counted for the whole
    /// cluster: `Ok(spent so far)`, or `Err(spent)` (nothing spent) when it would go
    /// over. Synchronous: the router plans events synchronously.
    fn spend_chain(&self, chain: &str, cost: u64, max: u64) -> Result<Result<u64, u64>, StoreError>;

    /// Take over up to `limit` running runs whose lease expired, but those of `busy`
    /// (runs this node is executing): each becomes this node's (same attempt, a fresh
    /// lease) for the caller to end or retry, with whether a cancel was asked for it.
    async fn take_expired(&self, limit: usize, busy: &[String]) -> Result<Vec<(Run, bool)>, StoreError>;

    /// Up to `limit` queued runs that are due and were queued (or became due) more
    /// than `age` ago: runs whose node died before it started them, or which wait in a
    /// busy node's backlog. Starting one is still [`RunStore::start_run`]'s to decide.
    async fn waiting(&self, age: std::time::Duration, limit: usize) -> Result<Vec<Run>, StoreError>;
}

#[async_trait]
impl RunStore for Store {
    async fn enqueue_runs(&self, runs: Vec<Run>) -> Result<Vec<Run>, StoreError> {
        let encoded = encode_runs(&runs)?;
        self.write_batch(move |batch| {
            insert_encoded_runs(batch.hot()?, &runs, &encoded)?;
            Ok(runs)
        })
        .await
    }

    async fn start_run(&self, id: &str, now: String) -> Result<Option<Run>, StoreError> {
        let prepared = self.prepare_start(id, &now)?;
        let id = id.to_string();
        self.write_batch(move |batch| start_in(batch.hot()?, &id, prepared, now))
            .await
    }

    async fn save_run(&self, run: Run) -> Result<Run, StoreError> {
        let json = encode_record(&run.id, &run)?;
        self.write_batch(move |batch| save_run_in(batch.hot()?, run, &json))
            .await
    }

    async fn save_run_with_events(
        &self,
        run: Run,
        events: Vec<super::events::Planned>,
    ) -> Result<(Run, Vec<super::events::Stored>), StoreError> {
        let json = encode_record(&run.id, &run)?;
        let events = super::events::encode_events(events)?;
        self.write_batch(move |batch| {
            let hot = batch.hot()?;
            let run = save_run_in(hot, run, &json)?;
            Ok((run, super::events::apply_events(hot, events)?))
        })
        .await
    }

    async fn cancel_queued_run(&self, id: &str, now: String) -> Result<Run, StoreError> {
        self.end_queued(id, RunStatus::Cancelled, now, |run| run.not_before = None)
            .await
    }

    async fn skip_run(&self, id: &str, reason: String, now: String) -> Result<Run, StoreError> {
        self.end_queued(id, RunStatus::Skipped, now, |run| {
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
        use redb::ReadableTableMetadata;
        self.read_table(RUN_QUEUE, |queue| Ok(queue.len()?))
    }

    fn run(&self, id: &str) -> Result<Option<Run>, StoreError> {
        self.get_record(RUNS, id)
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
    ) -> Result<Paged<Run>, StoreError> {
        let stop = filter.stop_before();
        let past = |run: &Run| stop.as_deref().is_some_and(|s| run.queued_at.as_str() < s);
        let Some(task) = &filter.task_id else {
            return self.read_table(RUNS, |runs| {
                newest_first(runs, "runs", cursor, limit, |run| {
                    if past(run) {
                        return Scan::Stop;
                    }
                    Scan::take_if(filter.matches(run))
                })
            });
        };
        let txn = self.read()?;
        let (Ok(runs), Ok(by_task)) = (txn.open_table(RUNS), txn.open_table(RUNS_BY_TASK)) else {
            return Ok((Vec::new(), None));
        };
        let lo = format!("{task}/");
        let hi = match cursor {
            Some(c) => format!("{task}/{c}"),
            None => format!("{task}0"),
        };
        let mut pager = Pager::new(limit);
        for entry in by_task.range(lo.as_str()..hi.as_str())?.rev() {
            let (k, _) = entry?;
            let id = k.value().rsplit('/').next().unwrap_or_default();
            let Some(run) = get_listed::<Run>(&runs, "runs", id)? else {
                continue;
            };
            if past(&run) {
                break;
            }
            if filter.matches(&run) && pager.push(id, run) {
                break;
            }
        }
        Ok(pager.finish())
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
        self.read_table(RUNS_BY_TASK, |by_task| {
            let mut out: Vec<String> = Vec::new();
            for entry in by_task.iter()? {
                let (k, _) = entry?;
                let task = k.value().split('/').next().unwrap_or_default();
                if out.last().is_none_or(|t| t != task) {
                    out.push(task.to_string());
                }
            }
            Ok(out)
        })
    }
}

/// Replace `run` (encoded beforehand as `json`) and move its queue and active entries.
fn save_run_in(hot: &mut Hot<'_>, run: Run, json: &Json<'static, Run>) -> Result<Run, StoreError> {
    hot.active_runs.remove(run.id.as_str())?;
    match run.status {
        RunStatus::Queued => {
            hot.run_queue.insert(run.id.as_str(), ())?;
        }
        RunStatus::Running => {
            hot.active_runs.insert(run.id.as_str(), ())?;
        }
        _ => {
            hot.run_queue.remove(run.id.as_str())?;
        }
    }
    put_encoded(&mut hot.runs, &run.id, json)?;
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sundial_core::run::RunCause;

    #[tokio::test]
    async fn a_time_window_lists_exactly_its_runs_by_task_and_in_all() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 16).unwrap();
        // Queued two days ago, yesterday and now (ids in the same order, as in use),
        // plus one whose clock stepped back: queued "earlier" than the run before it.
        let now = chrono::Utc::now();
        let at = |hours: i64| sundial_core::timestamp::text(now - chrono::Duration::hours(hours));
        let runs: Vec<Run> = [48, 24, 0, 1]
            .into_iter()
            .map(|h| Run::queued("t1", "t", RunCause::Manual, serde_json::json!({}), None, 0, at(h)))
            .collect();
        let ids: Vec<String> = runs.iter().map(|r| r.id.clone()).collect();
        store.enqueue_runs(runs).await.unwrap();
        for task_id in [None, Some("t1".to_string())] {
            let filter = RunFilter {
                task_id: task_id.clone(),
                since: Some(at(30)),
                until: Some(at(-1)),
                ..RunFilter::default()
            };
            let (found, _) = store.list_runs(&filter, None, 10).unwrap();
            let found: Vec<&str> = found.iter().map(|r| r.id.as_str()).collect();
            assert_eq!(found, [&ids[3], &ids[2], &ids[1]], "{task_id:?}");
            let recent = RunFilter {
                since: Some(at(2)),
                ..filter
            };
            let (found, _) = store.list_runs(&recent, None, 10).unwrap();
            assert_eq!(found.len(), 2, "the stepped-back run is within the hour of slack");
        }
    }

    async fn start(store: &Store, id: &str, prepared: Option<PreparedStart>, now: &str) -> Option<Run> {
        let (id, now) = (id.to_string(), now.to_string());
        store
            .write_batch(move |batch| start_in(batch.hot()?, &id, prepared, now))
            .await
            .unwrap()
    }

    /// A start worked out before the write transaction is used only while the run is
    /// still the record it was worked out from: a run cancelled, or changed and still
    /// queued, in between keeps that change.
    #[tokio::test]
    async fn a_start_prepared_before_a_change_does_not_overwrite_the_change() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 16).unwrap();
        let now = sundial_core::timestamp::now();
        let queued = |n: i64| {
            Run::queued(
                "t1",
                "t",
                RunCause::Manual,
                serde_json::json!({"n": n}),
                None,
                0,
                now.clone(),
            )
        };
        let (a, b, c) = (queued(1), queued(2), queued(3));
        let ids = [a.id.clone(), b.id.clone(), c.id.clone()];
        store.enqueue_runs(vec![a, b.clone(), c]).await.unwrap();

        // Cancelled after its start was prepared: it stays cancelled.
        let prepared = store.prepare_start(&ids[0], &now).unwrap();
        assert!(prepared.is_some(), "a queued run's start is prepared");
        store.cancel_queued_run(&ids[0], now.clone()).await.unwrap();
        assert!(start(&store, &ids[0], prepared, &now).await.is_none());
        assert_eq!(store.run(&ids[0]).unwrap().unwrap().status, RunStatus::Cancelled);
        assert!(
            store.prepare_start(&ids[0], &now).unwrap().is_none(),
            "no longer queued"
        );

        // Changed and still queued: started from the record as it is now.
        let prepared = store.prepare_start(&ids[1], &now).unwrap();
        let mut changed = b;
        changed.params = serde_json::json!({"n": 20});
        store.save_run(changed).await.unwrap();
        let started = start(&store, &ids[1], prepared, &now).await.unwrap();
        assert_eq!(started.params, serde_json::json!({"n": 20}));
        assert_eq!((started.status, started.attempt), (RunStatus::Running, 1));
        let stored = store.run(&ids[1]).unwrap().unwrap();
        assert_eq!(
            (stored.params, stored.status),
            (serde_json::json!({"n": 20}), RunStatus::Running)
        );

        // Unchanged: the prepared start is what is stored (its start time is the one it
        // was prepared with, not the one the write was given).
        let prepared = store.prepare_start(&ids[2], &now).unwrap();
        let later = sundial_core::timestamp::text(chrono::Utc::now() + chrono::Duration::seconds(5));
        let started = start(&store, &ids[2], prepared, &later).await.unwrap();
        let stored = store.run(&ids[2]).unwrap().unwrap();
        assert_eq!((stored.status, stored.attempt), (RunStatus::Running, 1));
        assert_eq!(
            serde_json::to_value(&stored).unwrap(),
            serde_json::to_value(&started).unwrap()
        );
        assert_eq!(
            stored.started_at.as_deref(),
            Some(now.as_str()),
            "the prepared start was used"
        );

        // The queue and the active set moved with them.
        let (queued, active) = store.pending_runs().unwrap();
        assert!(queued.is_empty(), "{queued:?}");
        let mut active: Vec<String> = active.into_iter().map(|r| r.id).collect();
        active.sort();
        assert_eq!(active, [ids[1].clone(), ids[2].clone()]);
        // Starting again finds none of them queued.
        for id in &ids {
            assert!(start(&store, id, None, &now).await.is_none(), "{id}");
        }
    }
}
