//! Schedule records, their links to tasks (many-to-many, indexed both ways), and the
//! slot ledger that makes each (schedule, slot time) fire exactly once.

use super::named::{Named, named_store};
use super::schedule_due::{self, DueEntry};
use super::tables::{Paged, get_json, put_json};
use super::{StoreError, audit};
use crate::schema::*;
use crate::tasks::TaskRecord;
use chrono::{DateTime, Utc};
use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};
use sundial_core::run::Run;
use sundial_core::schedule::spec::ScheduleSpec;

/// A schedule as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ScheduleRecord {
    /// Id (ULID).
    pub id: String,
    /// Created, RFC 3339.
    pub created_at: String,
    /// Last changed, RFC 3339.
    pub updated_at: String,
    /// The definition; `spec.start` is filled in at creation.
    pub spec: ScheduleSpec,
    /// The last slot that fired or was recorded missed; the scheduler resumes after it.
    #[serde(default, with = "sundial_core::timestamp::serde_millis_opt")]
    #[schemars(with = "Option<chrono::DateTime<chrono::Utc>>")]
    pub last_slot: Option<DateTime<Utc>>,
}

impl ScheduleRecord {
    /// Its first instant: `spec.start`, or when it was created (the documented default;
    /// a PATCH may remove `start`); `None` for a record with neither.
    pub fn start(&self) -> Option<DateTime<Utc>> {
        self.spec
            .start
            .or_else(|| sundial_core::timestamp::parse(&self.created_at).ok())
    }
}

/// A slot's part of a `SLOTS` key: RFC 3339 UTC with milliseconds, so keys sort by time.
fn slot_key(slot: DateTime<Utc>) -> String {
    sundial_core::timestamp::text(slot)
}

/// Schedules as named records: id → `ScheduleRecord`, name → id, and each one's
/// due-time entry kept beside it.
pub(crate) const NAMED: Named<ScheduleRecord> = Named {
    records: SCHEDULES,
    names: SCHEDULE_NAMES,
    noun: "schedule",
    on_put: schedule_due::put,
    on_delete: |txn, record| schedule_due::remove(txn, &record.id),
    copies: None,
};

fn load(txn: &WriteTransaction, key: &str) -> Result<ScheduleRecord, StoreError> {
    Ok(NAMED.load(txn, key)?.1)
}

fn linked(table: &impl ReadableTable<&'static str, ()>, prefix: &str) -> Result<Vec<String>, StoreError> {
    let lo = format!("{prefix}/");
    let hi = format!("{prefix}0");
    let mut out = Vec::new();
    for entry in table.range(lo.as_str()..hi.as_str())? {
        let (k, _) = entry?;
        out.push(k.value().rsplit('/').next().unwrap_or_default().to_string());
    }
    Ok(out)
}

named_store! {
    /// Schedules, their links to tasks, and the ledger of fired slots.
    pub trait ScheduleStore: Named<ScheduleRecord> = NAMED {
        /// Create a schedule; the name must be free.
        fn insert_schedule;
        /// A schedule by id or name.
        fn schedule;
        /// Up to `limit` schedules with ids after `after`, oldest first, and the cursor for more.
        fn schedules_page;
        /// Replace a schedule's spec (validated by the caller). Returns (before, after).
        fn update_schedule(spec: ScheduleSpec);
    }
    also {
        /// Delete a schedule; refused while it drives tasks unless `force` detaches them.
        async fn delete_schedule(
            &self,
            key: &str,
            force: bool,
            actor: &str,
        ) -> Result<ScheduleRecord, StoreError> {
            let (key, actor) = (key.to_string(), actor.to_string());
            self.write(move |txn| {
                let record = load(txn, &key)?;
                let mut links = txn.open_table(SCHEDULE_TASKS)?;
                let task_ids = linked(&links, &record.id)?;
                if !task_ids.is_empty() && !force {
                    let tasks = txn.open_table(TASKS)?;
                    let mut names = Vec::new();
                    for id in &task_ids {
                        let name = crate::tables::get_listed::<TaskRecord>(&tasks, "tasks", id)?
                            .map(|t| t.spec.name)
                            .unwrap_or_else(|| id.clone());
                        names.push(name);
                    }
                    return Err(StoreError::Conflict(format!(
                        "schedule {:?} drives tasks {}; detach them or delete with ?force=true",
                        record.spec.name,
                        names.join(", ")
                    )));
                }
                let mut back = txn.open_table(TASK_SCHEDULES)?;
                for task in &task_ids {
                    links.remove(format!("{}/{task}", record.id).as_str())?;
                    back.remove(format!("{task}/{}", record.id).as_str())?;
                }
                let (lo, hi) = (format!("{}/", record.id), format!("{}0", record.id));
                txn.open_table(SLOTS)?
                    .retain_in(lo.as_str()..hi.as_str(), |_, _| false)?;
                NAMED.delete(txn, &record, &actor)?;
                Ok(record)
            })
            .await
        }

        /// Attach (or with `attach = false`, detach) a task. Returns the task ids now linked.
        async fn link_task(
            &self,
            key: &str,
            task: &str,
            attach: bool,
            actor: &str,
        ) -> Result<Vec<String>, StoreError> {
            let (key, task, actor) = (key.to_string(), task.to_string(), actor.to_string());
            self.write(move |txn| {
                let record = load(txn, &key)?;
                let task_id = super::tasks::NAMED.resolve(&txn.open_table(TASK_NAMES)?, &task)?;
                if get_json::<TaskRecord>(&txn.open_table(TASKS)?, &task_id)?.is_none() {
                    return Err(StoreError::NotFound(format!("task {task:?} not found")));
                }
                let mut links = txn.open_table(SCHEDULE_TASKS)?;
                let mut back = txn.open_table(TASK_SCHEDULES)?;
                let fwd = format!("{}/{task_id}", record.id);
                let rev = format!("{task_id}/{}", record.id);
                if attach {
                    links.insert(fwd.as_str(), ())?;
                    back.insert(rev.as_str(), ())?;
                } else {
                    if links.remove(fwd.as_str())?.is_none() {
                        return Err(StoreError::NotFound(format!(
                            "task {task:?} is not attached to this schedule"
                        )));
                    }
                    back.remove(rev.as_str())?;
                }
                let action = if attach { "attach" } else { "detach" };
                audit::record(
                    txn,
                    &actor,
                    action,
                    "schedule",
                    &record.id,
                    None::<&()>,
                    Some(&serde_json::json!({ "task": task_id })),
                )?;
                linked(&links, &record.id)
            })
            .await
        }

        /// Up to `limit` due-time entries ([`DueEntry`]) with ids after `after`, in id
        /// order, and the cursor for more; an entry that cannot be decoded comes as
        /// `None` (read the record). `Ok(None)` when this backend keeps no index, or
        /// (asked with `after == None`) the index does not cover every record: then
        /// read the records with `schedules_page`.
        fn schedule_due_page(
            &self,
            after: Option<&str>,
            limit: usize,
        ) -> Result<Option<Paged<(String, Option<DueEntry>)>>, StoreError> {
            schedule_due::page(&self.read()?, after, limit)
        }

        /// Ids of the tasks a schedule drives.
        fn schedule_tasks(&self, schedule_id: &str) -> Result<Vec<String>, StoreError> {
            self.read_table(SCHEDULE_TASKS, |links| linked(links, schedule_id))
        }

        /// Ids of the schedules that drive a task.
        fn task_schedules(&self, task_id: &str) -> Result<Vec<String>, StoreError> {
            self.read_table(TASK_SCHEDULES, |links| linked(links, task_id))
        }

        /// Record slot `slot` of a schedule and queue its runs, in one commit, unless the
        /// slot was already recorded (then nothing happens and `false` is returned).
        /// `runs` may include `skipped` runs that record missed slots; `events` (such as
        /// `sundial.schedule.missed`) are stored in the same commit, with what they start.
        async fn fire_slot(
            &self,
            schedule_id: &str,
            slot: DateTime<Utc>,
            runs: Vec<Run>,
            events: Vec<super::events::Planned>,
        ) -> Result<Option<Vec<super::events::Stored>>, StoreError> {
            let schedule_id = schedule_id.to_string();
            let encoded = crate::runs::encode_runs(&runs)?;
            let events = super::events::encode_events(events)?;
            self.write_batch(move |batch| {
                let txn = batch.txn();
                let key = format!("{schedule_id}/{}", slot_key(slot));
                let mut slots = txn.open_table(SLOTS)?;
                if slots.get(key.as_str())?.is_some() {
                    return Ok(None);
                }
                let mut table = txn.open_table(SCHEDULES)?;
                let Some(mut record): Option<ScheduleRecord> = get_json(&table, &schedule_id)? else {
                    return Ok(None);
                };
                slots.insert(key.as_str(), ())?;
                // The scheduler only ever proposes slots after the last one recorded, so keys
                // older than both this slot and the previous last one can go: the table holds
                // about two keys per schedule instead of one per slot ever fired.
                if let Some(previous) = record.last_slot {
                    let lo = format!("{schedule_id}/");
                    let hi = format!("{schedule_id}/{}", slot_key(previous.min(slot)));
                    slots.retain_in(lo.as_str()..hi.as_str(), |_, _| false)?;
                }
                // To the millisecond, as the record stores it: the due-time entry written
                // below is the one a reread record gives.
                let slot = sundial_core::timestamp::millis(slot);
                record.last_slot = Some(record.last_slot.map_or(slot, |l| l.max(slot)));
                put_json(&mut table, &schedule_id, &record)?;
                schedule_due::put(txn, &record)?;
                drop(table);
                drop(slots);
                let hot = batch.hot()?;
                crate::runs::insert_encoded_runs(hot, &runs, &encoded)?;
                Ok(Some(super::events::apply_events(hot, events)?))
            })
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;
    use sundial_core::schedule::spec::ScheduleSpec;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn slot_keys(store: &Store, id: &str) -> Vec<String> {
        let txn = store.read().unwrap();
        let table = txn.open_table(SLOTS).unwrap();
        linked(&table, id).unwrap()
    }

    #[tokio::test]
    async fn a_slot_fires_once_and_old_slot_keys_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 64).unwrap();
        let spec: ScheduleSpec =
            serde_json::from_value(serde_json::json!({"name": "s", "rule": {"cron": "* * * * *"}})).unwrap();
        let record = ScheduleRecord {
            id: sundial_core::ids::new_id(),
            created_at: String::new(),
            updated_at: String::new(),
            spec,
            last_slot: None,
        };
        let id = store.insert_schedule(record, "test").await.unwrap().id;
        let minutes: Vec<DateTime<Utc>> = (0..6)
            .map(|m| t("2026-11-27T10:00:00Z") + chrono::Duration::minutes(m))
            .collect();
        // In order, then one out of order (a concurrent catch-up commit), then repeats.
        let fires = [
            (0, true),
            (1, true),
            (2, true),
            (4, true),
            (3, true),
            (4, false),
            (5, true),
            (5, false),
        ];
        for (m, fires) in fires {
            let fired = store.fire_slot(&id, minutes[m], vec![], vec![]).await.unwrap();
            assert_eq!(fired.is_some(), fires, "slot {m}");
        }
        assert_eq!(store.schedule(&id).unwrap().unwrap().last_slot, Some(minutes[5]));
        assert_eq!(
            slot_keys(&store, &id),
            ["2026-11-27T10:04:00.000Z", "2026-11-27T10:05:00.000Z"],
            "only the newest keys stay"
        );
        store.delete_schedule(&id, true, "test").await.unwrap();
        assert!(slot_keys(&store, &id).is_empty());
    }
}
