//! Durable timers on PostgreSQL: delayed trigger targets by due time, as
//! [`crate::timers`] keeps them on redb. Firing claims due timers with
//! `FOR UPDATE SKIP LOCKED`, so of several nodes firing at once each timer is fired by
//! one, and deletes them in the transaction that queues their runs and deliveries.
//!
//! A timer whose document does not decode loses its due time when it comes due (as on
//! redb it leaves the due queue): it stays for an admin to see and delete, never fired.

use super::audit::SCAN_BATCH;
use super::rows::{insert_deliveries, insert_runs};
use super::{
    PgStore, audit, db_error, decode_listed, decode_one, exec, limit_plus_one, row, rows, select_docs,
};
use crate::StoreError;
use crate::tables::Paged;
use crate::tasks::TaskRecord;
use crate::timers::{Fired, Timer, TimerStore};
use crate::webhooks::WebhookRecord;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use tokio_postgres::types::ToSql;

/// `due` as redb's due-time queue holds it: to the millisecond.
fn millis(due: DateTime<Utc>) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(due.timestamp_millis().max(0))
}

/// The first instant not due at `now`: a timer is due when its due time, to the
/// millisecond, is at or before `now`'s (redb's `due_by`).
fn due_by(now: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(now.timestamp_millis().max(0).saturating_add(1)).unwrap_or(now)
}

/// The record `id` of `table` (`tasks` or `webhooks`) when it exists and decodes (one
/// that does not is as good as gone here, as on redb).
async fn record<T: DeserializeOwned>(
    c: &impl GenericClient,
    table: &'static str,
    id: &str,
) -> Result<Option<T>, StoreError> {
    let sql = format!("SELECT doc FROM {table} WHERE id = $1");
    Ok(row(c, &sql, &[&id])
        .await?
        .and_then(|r| decode_listed(table, id, r.get(0))))
}

#[async_trait]
impl TimerStore for PgStore {
    fn next_timer_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.block(async {
            let client = self.client().await?;
            let found = row(
                &client,
                "SELECT due FROM timers WHERE due IS NOT NULL ORDER BY due, id LIMIT 1",
                &[],
            )
            .await?;
            Ok(found.and_then(|r| millis(r.get(0))))
        })
    }

    async fn fire_due_timers(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        max_runs: usize,
    ) -> Result<Fired, StoreError> {
        let mut client = self.client().await?;
        let t = client.transaction().await.map_err(db_error)?;
        // redb looks at one timer even when `limit` is 0.
        let take = limit.clamp(1, i64::MAX as usize) as i64;
        let found = rows(
            &t,
            "SELECT id, doc FROM timers WHERE due < $1 ORDER BY due, id LIMIT $2 FOR UPDATE SKIP LOCKED",
            &[&due_by(now), &take],
        )
        .await?;
        let stamp = sundial_core::timestamp::now();
        let mut runs = Vec::new();
        let mut deliveries = Vec::new();
        let mut gone: Vec<String> = Vec::new();
        let mut unreadable: Vec<String> = Vec::new();
        let mut tasks: HashMap<String, Option<TaskRecord>> = HashMap::new();
        let mut hooks: HashMap<String, Option<WebhookRecord>> = HashMap::new();
        let mut held = 0;
        for r in found {
            let id: String = r.get(0);
            let Some(timer) = decode_listed::<Timer>("timers", &id, r.get(1)) else {
                unreadable.push(id);
                continue;
            };
            if timer.webhook.is_none() && runs.len() >= max_runs {
                held += 1;
                continue;
            }
            gone.push(id);
            if let Some(target) = &timer.webhook {
                if !hooks.contains_key(&target.id) {
                    let hook = record(&t, "webhooks", &target.id).await?;
                    hooks.insert(target.id.clone(), hook);
                }
                if let Some(Some(hook)) = hooks.get(&target.id) {
                    deliveries.push(timer.to_delivery(hook));
                }
                continue;
            }
            if !tasks.contains_key(&timer.task_id) {
                let task = record(&t, "tasks", &timer.task_id).await?;
                tasks.insert(timer.task_id.clone(), task);
            }
            let task = tasks.get(&timer.task_id).and_then(Option::as_ref);
            runs.push(timer.to_run(task, stamp.clone()));
        }
        if !unreadable.is_empty() {
            exec(
                &t,
                "UPDATE timers SET due = NULL WHERE id = ANY($1)",
                &[&unreadable],
            )
            .await?;
        }
        if !gone.is_empty() {
            exec(&t, "DELETE FROM timers WHERE id = ANY($1)", &[&gone]).await?;
        }
        insert_runs(&t, &runs).await?;
        insert_deliveries(&t, &deliveries).await?;
        self.commit(t).await?;
        Ok(Fired {
            runs,
            deliveries: deliveries.len(),
            removed: gone.len() + unreadable.len(),
            held,
        })
    }

    fn timers_page(
        &self,
        trigger: Option<&str>,
        task: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Paged<Timer>, StoreError> {
        // redb's two pagings: unfiltered, the cursor is the last timer looked at
        // (readable or not); filtered, the last one listed.
        let filtered = trigger.is_some() || task.is_some();
        let batch = if filtered {
            SCAN_BATCH.max(limit_plus_one(limit))
        } else {
            limit_plus_one(limit)
        };
        self.block(async {
            let client = self.client().await?;
            let mut out: Vec<Timer> = Vec::new();
            let mut last: Option<String> = after.map(str::to_string);
            let mut scanned: Option<String> = None;
            loop {
                let found = {
                    let mut all: Vec<(&str, &(dyn ToSql + Sync))> = Vec::new();
                    for (column, value) in [("trigger_id =", &trigger), ("task_id =", &task)] {
                        if let Some(v) = value {
                            all.push((column, v));
                        }
                    }
                    if let Some(a) = &last {
                        all.push(("id >", a));
                    }
                    select_docs(&client, "timers", &all, "id", batch).await?
                };
                let more = found.len() as i64 == batch;
                for r in found {
                    let id: String = r.get(0);
                    let timer = decode_listed::<Timer>("timers", &id, r.get(1));
                    if filtered {
                        if let Some(timer) = timer {
                            if out.len() == limit {
                                let next = out.last().map(|t| t.id.clone());
                                return Ok((out, next));
                            }
                            out.push(timer);
                        }
                    } else {
                        if out.len() == limit {
                            return Ok((out, scanned));
                        }
                        out.extend(timer);
                        scanned = Some(id.clone());
                    }
                    last = Some(id);
                }
                if !more {
                    return Ok((out, None));
                }
            }
        })
    }

    async fn cancel_timer(&self, id: &str, actor: &str) -> Result<Timer, StoreError> {
        let mut client = self.client().await?;
        let t = client.transaction().await.map_err(db_error)?;
        let Some(found) = row(&t, "SELECT doc FROM timers WHERE id = $1 FOR UPDATE", &[&id]).await? else {
            return Err(StoreError::NotFound(format!(
                "timer {id:?} not found (it may have fired already)"
            )));
        };
        let timer: Timer = decode_one("timers", id, found.get(0))?;
        exec(&t, "DELETE FROM timers WHERE id = $1", &[&id]).await?;
        audit::record(&t, actor, "cancel", "timer", id, Some(&timer), None::<&()>).await?;
        self.commit(t).await?;
        Ok(timer)
    }
}
