//! Records that cannot be read back, on PostgreSQL: found by decoding every document
//! (an admin's full scan, not a hot path) and deleted with the rows that point to them.

use super::{PgStore, audit, db_error, exec, rows};
use crate::StoreError;
use crate::unreadable::{Check, UnreadableRecord, UnreadableStore, check};
use async_trait::async_trait;

/// Every table of JSON documents: its name, its key column, the check of its records.
fn doc_tables() -> [(&'static str, &'static str, Check); 14] {
    [
        ("plugins", "name", check::<sundial_core::plugin::PluginRecord>),
        ("tasks", "id", check::<crate::tasks::TaskRecord>),
        ("runs", "id", check::<sundial_core::run::Run>),
        ("schedules", "id", check::<crate::schedules::ScheduleRecord>),
        ("triggers", "id", check::<crate::triggers::TriggerRecord>),
        ("webhooks", "id", check::<crate::webhooks::WebhookRecord>),
        ("deliveries", "id", check::<crate::webhooks::Delivery>),
        ("events", "seq", check::<sundial_core::event::EventRecord>),
        ("timers", "id", check::<crate::timers::Timer>),
        ("tokens", "hash", check::<crate::tokens::TokenRecord>),
        ("secrets", "name", check::<crate::secrets::SecretRecord>),
        ("audit", "id", check::<crate::audit::AuditEntry>),
        ("calendars", "name", check::<sundial_core::calendar::CalendarSpec>),
        ("maintenance", "id", check::<sundial_core::calendar::Maintenance>),
    ]
}

/// Rows elsewhere that name a record of `table` and go with it: (table, column).
fn pointers(table: &str) -> &'static [(&'static str, &'static str)] {
    match table {
        "tasks" => &[("schedule_tasks", "task_id")],
        "schedules" => &[("schedule_tasks", "schedule_id"), ("slots", "schedule_id")],
        "events" => &[("event_keys", "seq")],
        _ => &[],
    }
}

/// Rows read per statement while scanning.
const BATCH: i64 = 1000;

#[async_trait]
impl UnreadableStore for PgStore {
    fn unreadable_records(&self, limit: usize) -> Result<Vec<UnreadableRecord>, StoreError> {
        self.block(async {
            let client = self.client().await?;
            let mut out = Vec::new();
            for (table, key, check) in doc_tables() {
                let sql = format!(
                    "SELECT {key}, doc FROM {table} WHERE ($1::text IS NULL OR {key} > $1) ORDER BY {key} LIMIT $2"
                );
                let mut after: Option<String> = None;
                loop {
                    let batch = rows(&client, &sql, &[&after, &BATCH]).await?;
                    let n = batch.len() as i64;
                    for r in batch {
                        let (k, doc): (String, String) = (r.get(0), r.get(1));
                        if let Err(error) = check(doc.as_bytes()) {
                            out.push(UnreadableRecord {
                                table: table.to_string(),
                                key: k.clone(),
                                error,
                                bytes: doc.len(),
                            });
                            if out.len() >= limit {
                                return Ok(out);
                            }
                        }
                        after = Some(k);
                    }
                    if n < BATCH {
                        break;
                    }
                }
            }
            Ok(out)
        })
    }

    async fn delete_unreadable(&self, table: &str, key: &str, actor: &str) -> Result<(), StoreError> {
        let Some((table, key_column, check)) = doc_tables().into_iter().find(|(t, _, _)| *t == table) else {
            let names: Vec<&str> = doc_tables().iter().map(|(t, _, _)| *t).collect();
            return Err(StoreError::Invalid(format!(
                "table: {table:?} is not one of {}",
                names.join(", ")
            )));
        };
        let mut client = self.client().await?;
        let t = client.transaction().await.map_err(db_error)?;
        let sql = format!("SELECT doc FROM {table} WHERE {key_column} = $1 FOR UPDATE");
        let found = rows(&t, &sql, &[&key]).await?;
        let Some(r) = found.first() else {
            return Err(StoreError::NotFound(format!("no record {key:?} in {table}")));
        };
        let error = match check(r.get::<_, &str>(0).as_bytes()) {
            Ok(()) => {
                return Err(StoreError::Conflict(format!(
                    "{table}/{key} reads; delete it through its own API"
                )));
            }
            Err(e) => e,
        };
        exec(
            &t,
            &format!("DELETE FROM {table} WHERE {key_column} = $1"),
            &[&key],
        )
        .await?;
        for (other, column) in pointers(table) {
            exec(&t, &format!("DELETE FROM {other} WHERE {column} = $1"), &[&key]).await?;
        }
        let note = serde_json::json!({ "table": table, "key": key, "error": error });
        audit::record(
            &t,
            actor,
            "delete",
            "unreadable_record",
            &format!("{table}/{key}"),
            Some(&note),
            None::<&()>,
        )
        .await?;
        self.commit(t).await
    }
}
