//! A batch's view of its write transaction. The group-commit writer applies many
//! mutations in one redb write transaction; the tables the hot paths write (runs and
//! their indexes, events, timers, deliveries) are opened once for the whole batch
//! instead of once per mutation. Opening a table in a write transaction looks it up in
//! the table tree and checks its types, and closing it stages its new root: under load
//! that was an eighth of the writer's CPU with a few dozen mutations per commit.
//!
//! redb refuses to open a table that is already open in the transaction, so a mutation
//! works either on the held tables (`Batch::hot`, the only way to reach them) or on the
//! bare transaction ([`Batch::txn`], which closes the held ones first); the borrow
//! checker keeps the two apart within a mutation. A `Store::write` mutation takes the
//! bare transaction, so the held tables close at it and the next mutation that asks for
//! them opens them again.

use super::StoreError;
use crate::schema::*;
use crate::tables::Json;
use crate::timers::Timer;
use crate::webhooks::Delivery;
use redb::{Table, WriteTransaction};
use sundial_core::event::EventRecord;
use sundial_core::run::Run;

/// A table keyed by text holding `V`.
type Of<'t, V> = Table<'t, &'static str, V>;

/// The hot paths' tables, open together in one write transaction.
pub(crate) struct Hot<'t> {
    /// [`RUNS`].
    pub(crate) runs: Of<'t, Json<'static, Run>>,
    /// [`RUNS_BY_TASK`].
    pub(crate) runs_by_task: Of<'t, ()>,
    /// [`RUN_QUEUE`].
    pub(crate) run_queue: Of<'t, ()>,
    /// [`ACTIVE_RUNS`].
    pub(crate) active_runs: Of<'t, ()>,
    /// [`EVENTS`].
    pub(crate) events: Of<'t, Json<'static, EventRecord>>,
    /// [`EVENT_KEYS`].
    pub(crate) event_keys: Of<'t, &'static str>,
    /// [`TIMERS`].
    pub(crate) timers: Of<'t, Json<'static, Timer>>,
    /// [`TIMERS_DUE`].
    pub(crate) timers_due: Of<'t, ()>,
    /// [`DELIVERIES`].
    pub(crate) deliveries: Of<'t, Json<'static, Delivery>>,
    /// [`DELIVERY_QUEUE`].
    pub(crate) delivery_queue: Of<'t, ()>,
}

impl<'t> Hot<'t> {
    /// Open every hot table in `txn`; none of them may be open in it already (only
    /// [`Batch::hot`] calls this, so the borrow checker sees to that). One that is not
    /// written costs a table-tree lookup at the commit; a missing one is created.
    fn open(txn: &'t WriteTransaction) -> Result<Hot<'t>, StoreError> {
        Ok(Hot {
            runs: txn.open_table(RUNS)?,
            runs_by_task: txn.open_table(RUNS_BY_TASK)?,
            run_queue: txn.open_table(RUN_QUEUE)?,
            active_runs: txn.open_table(ACTIVE_RUNS)?,
            events: txn.open_table(EVENTS)?,
            event_keys: txn.open_table(EVENT_KEYS)?,
            timers: txn.open_table(TIMERS)?,
            timers_due: txn.open_table(TIMERS_DUE)?,
            deliveries: txn.open_table(DELIVERIES)?,
            delivery_queue: txn.open_table(DELIVERY_QUEUE)?,
        })
    }
}

/// One batch's write transaction as its mutations see it: the bare transaction, or the
/// hot tables held open across the mutations of the batch.
pub struct Batch<'t> {
    txn: &'t WriteTransaction,
    hot: Option<Hot<'t>>,
}

impl<'t> Batch<'t> {
    /// A batch over `txn`, with no table open yet.
    pub(crate) fn new(txn: &'t WriteTransaction) -> Batch<'t> {
        Batch { txn, hot: None }
    }

    /// The write transaction, to open any table in: the hot tables held for the batch
    /// are closed first (and opened again by the next mutation that asks for them).
    pub fn txn(&mut self) -> &WriteTransaction {
        self.hot = None;
        self.txn
    }

    /// The hot tables, opened at the first call of the batch and held until it ends or
    /// [`Batch::txn`] is called.
    pub(crate) fn hot(&mut self) -> Result<&mut Hot<'t>, StoreError> {
        match &mut self.hot {
            Some(hot) => Ok(hot),
            none => Ok(none.insert(Hot::open(self.txn)?)),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::events::{EventStore, Planned};
    use crate::runs::RunStore;
    use crate::{MetaStore, Store};
    use std::sync::atomic::Ordering;
    use sundial_core::run::{Run, RunCause, RunStatus};

    fn run() -> Run {
        let now = sundial_core::timestamp::now();
        Run::queued("t1", "t", RunCause::Manual, serde_json::json!({}), None, 0, now)
    }

    /// Event `id` received at `at`, starting one run.
    fn event(id: &str, at: &str) -> Planned {
        let mut planned = crate::events::tests::planned(id, at);
        planned.runs = vec![run()];
        planned
    }

    /// Mutations on the held tables and mutations that open the same tables themselves
    /// alternate in one batch (one commit), one of them changing a run queued earlier
    /// in the batch, with refused ones of both kinds among them: each gets its own
    /// outcome and every accepted change is stored.
    #[tokio::test]
    async fn held_tables_and_tables_opened_by_a_mutation_share_one_batch() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 64).unwrap();
        let (a, b, c) = (run(), run(), run());
        store.enqueue_runs(vec![a.clone(), b.clone()]).await.unwrap();
        let old = event("old", "2025-01-01T00:00:00.000Z");
        let (new, again) = (
            event("new", "2026-01-01T00:00:00.000Z"),
            event("new", "2026-01-01T00:00:00.000Z"),
        );
        let mut expected_queue = vec![old.runs[0].id.clone(), new.runs[0].id.clone()];
        store.ingest_events(vec![old]).await.unwrap();

        // Hold the writer between commits until every mutation below is waiting.
        let (started, holding) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let writer = store.writer.clone();
        let held = tokio::spawn(async move {
            writer
                .quiet(Box::new(move |_| {
                    started.send(()).unwrap();
                    released.recv().unwrap();
                    Ok(())
                }))
                .await
        });
        tokio::task::spawn_blocking(move || holding.recv().unwrap())
            .await
            .unwrap();
        let commits = store.stats().commits.load(Ordering::Relaxed);

        // Submitted in this order: each task runs until it waits for its commit.
        let mut waiting = Vec::new();
        macro_rules! submit {
            ($store:ident => $op:expr) => {{
                let $store = store.clone();
                waiting.push(tokio::spawn(
                    async move { format!("{:?}", $op.map(|_| ())) },
                ));
                tokio::task::yield_now().await;
            }};
        }
        let now = sundial_core::timestamp::now;
        let (a_id, b_id, c_id, c_run) = (a.id.clone(), b.id.clone(), c.id.clone(), c.clone());
        submit!(s => s.enqueue_runs(vec![c_run]).await); // held tables
        submit!(s => s.cancel_queued_run(&a_id, now()).await); // opens the runs and the queue
        submit!(s => s.start_run(&b_id, now()).await); // held
        submit!(s => s.cancel_queued_run("no-such-run", now()).await); // refused
        submit!(s => s.start_run("no-such-run", now()).await); // held, refused
        submit!(s => s.ingest_events(vec![new]).await); // held
        submit!(s => s.cancel_queued_run(&c_id, now()).await); // reads c, written in this batch
        submit!(s => s.prune_events(1000, "2025-06-01T00:00:00.000Z".into()).await); // opens the events
        submit!(s => s.ingest_events(vec![again]).await); // held: a duplicate, no run
        release.send(()).unwrap();
        held.await.unwrap().unwrap();
        let mut outcomes = Vec::new();
        for w in waiting {
            outcomes.push(w.await.unwrap());
        }
        assert_eq!(
            store.stats().commits.load(Ordering::Relaxed),
            commits + 1,
            "all in one commit: {outcomes:?}"
        );
        let refused = [3, 4];
        for (i, o) in outcomes.iter().enumerate() {
            if refused.contains(&i) {
                assert!(o.contains("not found"), "mutation {i}: {outcomes:?}");
            } else {
                assert_eq!(o, "Ok(())", "mutation {i}: {outcomes:?}");
            }
        }

        let status = |id: &str| store.run(id).unwrap().unwrap().status;
        assert_eq!(status(&a.id), RunStatus::Cancelled);
        assert_eq!(status(&b.id), RunStatus::Running);
        assert_eq!(
            status(&c.id),
            RunStatus::Cancelled,
            "queued and cancelled in one batch"
        );
        let (events, _) = store.list_events(&Default::default(), None, 10).unwrap();
        let ids: Vec<&str> = events.iter().map(|e| e.event.id.as_str()).collect();
        assert_eq!(ids, ["new"], "old pruned, the second new a duplicate");
        let ids = |runs: Vec<Run>| {
            let mut ids: Vec<String> = runs.into_iter().map(|r| r.id).collect();
            ids.sort();
            ids
        };
        let (queued, active) = store.pending_runs().unwrap();
        expected_queue.sort();
        assert_eq!(ids(queued), expected_queue, "the two stored events' runs");
        assert_eq!(ids(active), [b.id.clone()]);
    }
}
