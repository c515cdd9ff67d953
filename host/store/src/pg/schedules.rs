//! Schedules on PostgreSQL: named records in `schedules`, their links to tasks in
//! `schedule_tasks` (indexed both ways), and the ledger of fired slots in `slots`, as
//! [`crate::schedules`] stores them on redb.
//!
//! **Exactly once across nodes.** [`ScheduleStore::fire_slot`] inserts the slot's row
//! with `ON CONFLICT DO NOTHING` first: of several nodes firing the same slot, one
//! inserts it and the others wait on its unique key, then find it taken (or, if the
//! first rolled back, take it themselves). Only the node whose row is new queues the
//! slot's runs, in the same transaction.
//!
//! Id lists and slot keys compare with `COLLATE "C"`, the byte order redb's keys sort
//! in, whatever the database's collation.

use super::named::PgNamed;
use super::{PgStore, audit, db_error, decode_listed, decode_one, encode, exec, row, rows};
use crate::StoreError;
use crate::events::{Planned, Stored};
use crate::schedules::{ScheduleRecord, ScheduleStore};
use crate::tables::Paged;
use crate::tasks::TaskRecord;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use std::collections::HashMap;
use sundial_core::run::Run;
use sundial_core::schedule::spec::ScheduleSpec;

/// How long a fired slot's row is kept at least (then pruned once a later slot
/// fired): 10 minutes. Far longer than any slot's commit takes.
const SLOT_KEEP: std::time::Duration = std::time::Duration::from_secs(600);

/// Schedules as named records.
const NAMED: PgNamed = PgNamed {
    table: "schedules",
    noun: "schedule",
};

/// A slot as stored in `slots.slot`: RFC 3339 UTC with milliseconds, so slots sort by
/// time (the slot part of redb's `SLOTS` keys).
fn slot_key(slot: DateTime<Utc>) -> String {
    sundial_core::timestamp::text(slot)
}

/// Ids of the tasks schedule `schedule_id` drives, in id order.
async fn schedule_task_ids(c: &impl GenericClient, schedule_id: &str) -> Result<Vec<String>, StoreError> {
    let found = rows(
        c,
        r#"SELECT task_id FROM schedule_tasks WHERE schedule_id = $1 ORDER BY task_id COLLATE "C""#,
        &[&schedule_id],
    )
    .await?;
    Ok(found.iter().map(|r| r.get(0)).collect())
}

/// Ids of the schedules that drive task `task_id`, in id order.
async fn task_schedule_ids(c: &impl GenericClient, task_id: &str) -> Result<Vec<String>, StoreError> {
    let found = rows(
        c,
        r#"SELECT schedule_id FROM schedule_tasks WHERE task_id = $1 ORDER BY schedule_id COLLATE "C""#,
        &[&task_id],
    )
    .await?;
    Ok(found.iter().map(|r| r.get(0)).collect())
}

/// The names of the tasks `ids` (in that order); a task that is gone or does not
/// decode is named by its id.
async fn task_names(c: &impl GenericClient, ids: &[String]) -> Result<Vec<String>, StoreError> {
    let found = rows(c, "SELECT id, doc FROM tasks WHERE id = ANY($1)", &[&ids]).await?;
    let mut names: HashMap<String, String> = HashMap::new();
    for r in found {
        let (id, doc): (String, String) = (r.get(0), r.get(1));
        if let Some(task) = decode_listed::<TaskRecord>("tasks", &id, &doc) {
            names.insert(id, task.spec.name);
        }
    }
    Ok(ids
        .iter()
        .map(|id| names.get(id).cloned().unwrap_or_else(|| id.clone()))
        .collect())
}

#[async_trait]
impl ScheduleStore for PgStore {
    async fn insert_schedule(
        &self,
        record: ScheduleRecord,
        actor: &str,
    ) -> Result<ScheduleRecord, StoreError> {
        self.insert_named(NAMED, record, actor).await
    }

    fn schedule(&self, key: &str) -> Result<Option<ScheduleRecord>, StoreError> {
        self.get_named(NAMED, key)
    }

    fn schedules_page(&self, after: Option<&str>, limit: usize) -> Result<Paged<ScheduleRecord>, StoreError> {
        self.page_named(NAMED, after, limit)
    }

    /// No due-time index on PostgreSQL: the scheduler reads the records.
    fn schedule_due_page(
        &self,
        _after: Option<&str>,
        _limit: usize,
    ) -> Result<Option<Paged<(String, Option<crate::schedule_due::DueEntry>)>>, StoreError> {
        Ok(None)
    }

    async fn update_schedule(
        &self,
        key: &str,
        spec: ScheduleSpec,
        now: String,
        actor: &str,
    ) -> Result<(ScheduleRecord, ScheduleRecord), StoreError> {
        self.update_named(NAMED, key, now, actor, |record: &mut ScheduleRecord| {
            record.spec = spec;
            Ok(())
        })
        .await
    }

    async fn delete_schedule(
        &self,
        key: &str,
        force: bool,
        actor: &str,
    ) -> Result<ScheduleRecord, StoreError> {
        let mut client = self.client().await?;
        let t = client.transaction().await.map_err(db_error)?;
        // Locking the schedule serializes this with link_task and fire_slot on it.
        let record: ScheduleRecord = NAMED.load(&t, key).await?;
        let task_ids = schedule_task_ids(&t, &record.id).await?;
        if !task_ids.is_empty() && !force {
            let names = task_names(&t, &task_ids).await?;
            return Err(StoreError::Conflict(format!(
                "schedule {:?} drives tasks {}; detach them or delete with ?force=true",
                record.spec.name,
                names.join(", ")
            )));
        }
        // Locked in key order first, as deleting a task locks its links: concurrent
        // deletes of schedules and tasks never deadlock.
        exec(
            &t,
            "DELETE FROM schedule_tasks WHERE (schedule_id, task_id) IN (
                 SELECT schedule_id, task_id FROM schedule_tasks WHERE schedule_id = $1
                 ORDER BY schedule_id, task_id FOR UPDATE)",
            &[&record.id],
        )
        .await?;
        exec(&t, "DELETE FROM slots WHERE schedule_id = $1", &[&record.id]).await?;
        NAMED.delete(&t, &record, actor).await?;
        self.commit(t).await?;
        Ok(record)
    }

    async fn link_task(
        &self,
        key: &str,
        task: &str,
        attach: bool,
        actor: &str,
    ) -> Result<Vec<String>, StoreError> {
        let mut client = self.client().await?;
        let t = client.transaction().await.map_err(db_error)?;
        let record: ScheduleRecord = NAMED.load(&t, key).await?;
        // Locked, so a concurrent delete_task (which detaches the task) cannot leave a
        // link to a task that is gone: this waits for it, then finds no task.
        let found: Option<TaskRecord> = super::tasks::NAMED.find(&t, task, true).await?;
        let Some(task_record) = found else {
            return Err(StoreError::NotFound(format!("task {task:?} not found")));
        };
        let task_id = task_record.id;
        if attach {
            exec(
                &t,
                "INSERT INTO schedule_tasks (schedule_id, task_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&record.id, &task_id],
            )
            .await?;
        } else {
            let removed = exec(
                &t,
                "DELETE FROM schedule_tasks WHERE schedule_id = $1 AND task_id = $2",
                &[&record.id, &task_id],
            )
            .await?;
            if removed == 0 {
                return Err(StoreError::NotFound(format!(
                    "task {task:?} is not attached to this schedule"
                )));
            }
        }
        let action = if attach { "attach" } else { "detach" };
        super::listen::notify(&t, "schedules").await?;
        audit::record(
            &t,
            actor,
            action,
            "schedule",
            &record.id,
            None::<&()>,
            Some(&serde_json::json!({ "task": task_id })),
        )
        .await?;
        let linked = schedule_task_ids(&t, &record.id).await?;
        self.commit(t).await?;
        Ok(linked)
    }

    fn schedule_tasks(&self, schedule_id: &str) -> Result<Vec<String>, StoreError> {
        self.block(async {
            let client = self.client().await?;
            schedule_task_ids(&client, schedule_id).await
        })
    }

    fn task_schedules(&self, task_id: &str) -> Result<Vec<String>, StoreError> {
        self.block(async {
            let client = self.client().await?;
            task_schedule_ids(&client, task_id).await
        })
    }

    async fn fire_slot(
        &self,
        schedule_id: &str,
        slot: DateTime<Utc>,
        runs: Vec<Run>,
        events: Vec<Planned>,
    ) -> Result<Option<Vec<Stored>>, StoreError> {
        let mut client = self.client().await?;
        let t = client.transaction().await.map_err(db_error)?;
        let key = slot_key(slot);
        // The slot first: a node firing it concurrently waits here for this commit.
        let new = exec(
            &t,
            "INSERT INTO slots (schedule_id, slot) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&schedule_id, &key],
        )
        .await?;
        if new == 0 {
            return Ok(None); // recorded already: rolled back (nothing written)
        }
        let found = row(
            &t,
            "SELECT doc, slots_pruned_before FROM schedules WHERE id = $1 FOR UPDATE",
            &[&schedule_id],
        )
        .await?;
        let Some(found) = found else {
            return Ok(None); // the schedule is gone: the slot's row is rolled back
        };
        let (doc, pruned_before): (String, Option<String>) = (found.get(0), found.get(1));
        let mut record: ScheduleRecord = decode_one("schedules", schedule_id, &doc)?;
        // Slot rows are pruned (below) once older than both the previous last slot and
        // SLOT_KEEP; `slots_pruned_before` is the newest slot pruned. A slot at or
        // before it may have fired, so it is refused as fired: a node that was stopped
        // a long time proposes it late. Slots of one schedule may commit out of order
        // (jobs on one node, or several nodes), but each within seconds of being
        // proposed, long before its neighbours' rows can go.
        if pruned_before.as_deref().is_some_and(|w| key.as_str() <= w) {
            return Ok(None); // rolled back: the slot row goes too
        }
        if let Some(previous) = record.last_slot {
            let pruned = row(
                &t,
                r#"WITH gone AS (
                       DELETE FROM slots WHERE schedule_id = $1 AND slot COLLATE "C" < $2
                       AND fired_at < now() - make_interval(secs => $3) RETURNING slot)
                   SELECT max(slot) FROM gone"#,
                &[
                    &schedule_id,
                    &slot_key(previous.min(slot)),
                    &SLOT_KEEP.as_secs_f64(),
                ],
            )
            .await?
            .and_then(|r| r.get::<_, Option<String>>(0));
            if let Some(newest) = pruned
                && pruned_before.as_deref().is_none_or(|w| w < newest.as_str())
            {
                exec(
                    &t,
                    "UPDATE schedules SET slots_pruned_before = $2 WHERE id = $1",
                    &[&schedule_id, &newest],
                )
                .await?;
            }
        }
        record.last_slot = Some(record.last_slot.map_or(slot, |l| l.max(slot)));
        exec(
            &t,
            "UPDATE schedules SET doc = $2 WHERE id = $1",
            &[&schedule_id, &encode(&record)?],
        )
        .await?;
        super::rows::insert_runs(&t, &runs).await?;
        let stored = super::events::apply_events(&t, events).await?;
        self.commit(t).await?;
        Ok(Some(stored))
    }
}
