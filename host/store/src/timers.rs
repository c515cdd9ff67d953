//! Durable timers: delayed trigger targets ("run 30 days after `user.created`", "send
//! it to the webhook an hour later"). A timer is indexed by due time on the scheduler's
//! clock; firing deletes it and queues its run or its delivery in one commit, so it
//! fires exactly once across restarts.

use super::audit;
use super::batch::Hot;
use super::runs::insert_runs;
use super::tables::{
    Paged, decode_listed, due_by, due_id, due_key, first_due, get_json, keys_after, page_json, put_json,
};
use super::{Store, StoreError};
use crate::schema::*;
use crate::tasks::TaskRecord;
use crate::webhooks::{Delivery, WebhookRecord, insert_deliveries};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redb::ReadableTable;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sundial_core::run::{Run, RunCause};

/// A delayed target waiting for its time: a task's run, or (with `webhook`) a
/// webhook's delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Timer {
    /// Id (ULID).
    pub id: String,
    /// When the run starts.
    #[serde(with = "sundial_core::timestamp::serde_millis")]
    #[schemars(with = "chrono::DateTime<chrono::Utc>")]
    pub due: DateTime<Utc>,
    /// Set at, RFC 3339.
    pub created_at: String,
    /// The trigger that set it.
    pub trigger: String,
    /// The trigger's name then.
    pub trigger_name: String,
    /// The event (seq) that matched.
    pub event: String,
    /// The task to run (id); empty for a webhook's timer.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub task_id: String,
    /// The task's name then.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub task_name: String,
    /// The run's params (task params with the trigger's context merged over them).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub params: Value,
    /// The webhook to send the event to, instead of a task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<TimerWebhook>,
    /// The event as the plugin will see it.
    pub payload: sundial_core::invocation::Event,
    /// Causal depth of the event.
    pub depth: u32,
    /// The causal chain of the event (see [`Run::root`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
}

/// The webhook a timer sends its event to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TimerWebhook {
    /// Its id.
    pub id: String,
    /// Its name then.
    pub name: String,
}

/// What one firing of due timers did.
#[derive(Debug, Default)]
pub struct Fired {
    /// Runs of tasks' timers (queued, or skipped when the task is gone or disabled).
    pub runs: Vec<Run>,
    /// Deliveries of webhooks' timers (a webhook deleted meanwhile gets none).
    pub deliveries: usize,
    /// Timers fired (removed), whatever they queued.
    pub removed: usize,
    /// Tasks' timers left due because `max_runs` runs were queued already.
    pub held: usize,
}

pub(crate) fn insert_timer(hot: &mut Hot<'_>, timer: &Timer) -> Result<(), StoreError> {
    put_json(&mut hot.timers, &timer.id, timer)?;
    hot.timers_due
        .insert(due_key(timer.due, &timer.id).as_str(), ())?;
    Ok(())
}

impl Timer {
    /// The delivery this webhook's timer queues (due now, as an undelayed target's).
    pub(crate) fn to_delivery(&self, hook: &WebhookRecord) -> Delivery {
        let mut d = Delivery::queued(hook, "trigger", self.depth);
        d.event = Some(self.payload.clone());
        d.event_seq = Some(self.event.clone());
        d.trigger = Some(self.trigger.clone());
        d.root = self.root.clone();
        d
    }

    /// The run this timer starts (queued, or skipped when its task is gone or disabled).
    pub(crate) fn to_run(&self, task: Option<&TaskRecord>, now: String) -> Run {
        let mut run = Run::queued(
            &self.task_id,
            &self.task_name,
            RunCause::Event {
                event: self.event.clone(),
                trigger: Some(self.trigger.clone()),
                timer: Some(self.id.clone()),
            },
            self.params.clone(),
            Some(self.payload.clone()),
            self.depth,
            now,
        );
        run.root = self.root.clone();
        match task {
            None => run.skipped(format!(
                "skipped: task {} no longer exists when timer {} fired",
                self.task_name, self.id
            )),
            Some(t) if !t.spec.enabled => run.skipped(format!(
                "skipped: task {} is disabled when timer {} fired",
                t.spec.name, self.id
            )),
            Some(_) => run,
        }
    }
}

/// Timers: delayed trigger targets by due time.
#[async_trait]
pub trait TimerStore: Send + Sync {
    /// The earliest pending timer's due time.
    fn next_timer_due(&self) -> Result<Option<DateTime<Utc>>, StoreError>;

    /// Look at up to `limit` timers due at `now`, soonest first, and fire them in one
    /// commit: each is deleted and its run or delivery queued. Tasks' timers beyond
    /// `max_runs` runs stay due (the run queue has no room for them); webhooks' timers
    /// need no room.
    async fn fire_due_timers(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        max_runs: usize,
    ) -> Result<Fired, StoreError>;

    /// Pending timers, in id (creation) order, optionally of one trigger or task id.
    fn timers_page(
        &self,
        trigger: Option<&str>,
        task: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Paged<Timer>, StoreError>;

    /// Cancel a pending timer.
    async fn cancel_timer(&self, id: &str, actor: &str) -> Result<Timer, StoreError>;
}

#[async_trait]
impl TimerStore for Store {
    fn next_timer_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.read_table(TIMERS_DUE, |due| first_due(due, "timer"))
    }

    async fn fire_due_timers(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        max_runs: usize,
    ) -> Result<Fired, StoreError> {
        self.write_batch(move |batch| {
            let txn = batch.txn();
            let mut due = txn.open_table(TIMERS_DUE)?;
            let mut timers = txn.open_table(TIMERS)?;
            let tasks = txn.open_table(TASKS)?;
            let webhooks = txn.open_table(WEBHOOKS)?;
            let hi = due_by(now);
            let mut fired = Vec::new();
            for entry in due.range::<&str>(..hi.as_str())? {
                let (k, _) = entry?;
                fired.push(k.value().to_string());
                if fired.len() >= limit {
                    break;
                }
            }
            let stamp = sundial_core::timestamp::now();
            let mut runs = Vec::new();
            let mut deliveries = Vec::new();
            let (mut removed, mut held) = (0, 0);
            for key in &fired {
                let id = due_id(key);
                let Some(timer): Option<Timer> = super::tables::get_listed(&timers, "timers", id)? else {
                    due.remove(key.as_str())?;
                    removed += 1;
                    continue;
                };
                if timer.webhook.is_none() && runs.len() >= max_runs {
                    held += 1;
                    continue;
                }
                due.remove(key.as_str())?;
                timers.remove(id)?;
                removed += 1;
                if let Some(target) = &timer.webhook {
                    let hook: Option<WebhookRecord> =
                        super::tables::get_listed(&webhooks, "webhooks", &target.id)?;
                    if let Some(hook) = hook {
                        deliveries.push(timer.to_delivery(&hook));
                    }
                    continue;
                }
                let task: Option<TaskRecord> = super::tables::get_listed(&tasks, "tasks", &timer.task_id)?;
                runs.push(timer.to_run(task.as_ref(), stamp.clone()));
            }
            drop((due, timers, tasks, webhooks));
            let hot = batch.hot()?;
            insert_runs(hot, &runs)?;
            insert_deliveries(hot, &deliveries)?;
            Ok(Fired {
                runs,
                deliveries: deliveries.len(),
                removed,
                held,
            })
        })
        .await
    }

    fn timers_page(
        &self,
        trigger: Option<&str>,
        task: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Paged<Timer>, StoreError> {
        self.read_table(TIMERS, |table| {
            if trigger.is_none() && task.is_none() {
                return page_json(table, "timers", after, limit);
            }
            let mut out = Vec::new();
            for entry in table.range::<&str>(keys_after(after))? {
                let (k, v) = entry?;
                let Some(t): Option<Timer> = decode_listed("timers", k.value(), v.value().bytes()) else {
                    continue;
                };
                if trigger.is_none_or(|x| x == t.trigger) && task.is_none_or(|x| x == t.task_id) {
                    if out.len() == limit {
                        let next = out.last().map(|t: &Timer| t.id.clone());
                        return Ok((out, next));
                    }
                    out.push(t);
                }
            }
            Ok((out, None))
        })
    }

    async fn cancel_timer(&self, id: &str, actor: &str) -> Result<Timer, StoreError> {
        let (id, actor) = (id.to_string(), actor.to_string());
        self.write(move |txn| {
            let mut timers = txn.open_table(TIMERS)?;
            let Some(timer): Option<Timer> = get_json(&timers, &id)? else {
                return Err(StoreError::NotFound(format!(
                    "timer {id:?} not found (it may have fired already)"
                )));
            };
            timers.remove(id.as_str())?;
            txn.open_table(TIMERS_DUE)?
                .remove(due_key(timer.due, &timer.id).as_str())?;
            drop(timers);
            audit::record(txn, &actor, "cancel", "timer", &id, Some(&timer), None::<&()>)?;
            Ok(timer)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhooks::WebhookStore;

    fn timer(id: &str, webhook: Option<&WebhookRecord>) -> Timer {
        let payload = serde_json::json!({"id": "e1", "type": "x.y", "source": "/s", "time": "2026-11-27T09:00:00.000Z", "data": null});
        Timer {
            id: id.into(),
            due: "2026-11-27T10:00:00Z".parse().unwrap(),
            created_at: "2026-11-27T09:00:00.000Z".into(),
            trigger: "t1".into(),
            trigger_name: "later".into(),
            event: "000000000000000001".into(),
            task_id: if webhook.is_some() {
                String::new()
            } else {
                "k1".into()
            },
            task_name: if webhook.is_some() {
                String::new()
            } else {
                "task".into()
            },
            params: Value::Null,
            webhook: webhook.map(|w| TimerWebhook {
                id: w.id.clone(),
                name: w.spec.name.clone(),
            }),
            payload: serde_json::from_value(payload).unwrap(),
            depth: 0,
            root: None,
        }
    }

    /// A full run queue holds back tasks' timers only: a webhook's timer fires (its
    /// delivery takes no run slot), and the held task timer fires once there is room.
    #[tokio::test]
    async fn webhook_timers_need_no_run_room_and_task_timers_wait_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 8).unwrap();
        let spec =
            serde_json::from_value(serde_json::json!({"name": "h", "url": "https://example.com/h"})).unwrap();
        let hook = WebhookRecord {
            id: sundial_core::ids::new_id(),
            created_at: "2026-11-27T09:00:00.000Z".into(),
            updated_at: "2026-11-27T09:00:00.000Z".into(),
            spec,
            disabled_reason: None,
        };
        let hook = store.insert_webhook(hook, "test").await.unwrap();
        let (task_timer, hook_timer) = (
            timer("01J0000000000000000000000A", None),
            timer("01J0000000000000000000000B", Some(&hook)),
        );
        store
            .write_batch(move |batch| {
                let hot = batch.hot()?;
                insert_timer(hot, &task_timer)?;
                insert_timer(hot, &hook_timer)
            })
            .await
            .unwrap();
        let later: DateTime<Utc> = "2026-11-28T00:00:00Z".parse().unwrap();
        let fired = store.fire_due_timers(later, 10, 0).await.unwrap();
        assert_eq!(
            (fired.runs.len(), fired.deliveries, fired.removed, fired.held),
            (0, 1, 1, 1),
            "no room: only the webhook's timer fires"
        );
        let fired = store.fire_due_timers(later, 10, 5).await.unwrap();
        assert_eq!(
            (fired.runs.len(), fired.deliveries, fired.removed, fired.held),
            (1, 0, 1, 0)
        );
        let fired = store.fire_due_timers(later, 10, 5).await.unwrap();
        assert_eq!((fired.removed, fired.held), (0, 0), "each fired once");
    }

    /// Timers stored before webhook targets were timers (every field of a task's
    /// timer) still read, and a webhook's timer writes no task fields.
    #[test]
    fn task_timers_of_older_files_read_and_webhook_timers_omit_task_fields() {
        let old = serde_json::json!({
            "id": "01J0000000000000000000000A", "due": "2026-12-27T09:00:00.000Z",
            "created_at": "2026-11-27T09:00:00.000Z", "trigger": "t1", "trigger_name": "later",
            "event": "000000000000000001", "task_id": "k1", "task_name": "disable-user",
            "params": {"user": 101},
            "payload": {"id": "e1", "type": "user.created", "source": "/s", "time": "2026-11-27T09:00:00.000Z", "data": null},
            "depth": 0
        });
        let timer: Timer = serde_json::from_value(old).unwrap();
        assert_eq!((timer.task_id.as_str(), timer.webhook.as_ref()), ("k1", None));
        let hook = Timer {
            task_id: String::new(),
            task_name: String::new(),
            params: Value::Null,
            webhook: Some(TimerWebhook {
                id: "w1".into(),
                name: "later".into(),
            }),
            ..timer
        };
        let json = serde_json::to_value(&hook).unwrap();
        for absent in ["task_id", "task_name", "params"] {
            assert!(json.get(absent).is_none(), "{absent} in {json}");
        }
        assert_eq!(json["webhook"]["name"], "later");
        assert_eq!(serde_json::from_value::<Timer>(json).unwrap(), hook);
    }
}
