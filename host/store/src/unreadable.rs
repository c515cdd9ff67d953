//! Records that cannot be read back (bytes corrupted on disk, or written by a version
//! whose format no longer decodes): a list, a page or start-up skips them instead of
//! failing, counts them (`sundial_store_unreadable_skipped_total`) and logs each once;
//! an admin lists them (`GET /v1/admin/unreadable`) and deletes them.

use crate::schema::*;
use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// How many times a list, page or load skipped an unreadable record since start.
static SKIPPED: AtomicU64 = AtomicU64::new(0);
/// (table, key) already logged, so a list read every second does not flood the log.
static LOGGED: Mutex<BTreeSet<(String, String)>> = Mutex::new(BTreeSet::new());
/// Most distinct records remembered as logged.
const MAX_LOGGED: usize = 10_000;

/// Note that `table`/`key` was skipped because it did not decode.
pub fn skipped(table: &str, key: &str, error: &str) {
    SKIPPED.fetch_add(1, Ordering::Relaxed);
    let mut logged = LOGGED.lock().unwrap_or_else(|e| e.into_inner());
    if logged.len() < MAX_LOGGED && logged.insert((table.to_string(), key.to_string())) {
        tracing::warn!(
            table,
            key,
            "skipped a record that cannot be read ({error}); an admin can list and delete it: GET /v1/admin/unreadable"
        );
    }
}

/// Skips since start (for `/metrics`).
pub fn skipped_total() -> u64 {
    SKIPPED.load(Ordering::Relaxed)
}

/// Forget that `table`/`key` was logged (it was deleted).
pub fn forget(table: &str, key: &str) {
    let mut logged = LOGGED.lock().unwrap_or_else(|e| e.into_inner());
    logged.remove(&(table.to_string(), key.to_string()));
}

use super::tables::decode;
use super::{Store, StoreError};
use async_trait::async_trait;
use redb::{ReadableTable, TableDefinition};
use serde::Serialize;

/// A record that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct UnreadableRecord {
    /// The table (`tasks`, `runs`, `triggers`, ...).
    pub table: String,
    /// Its key there (an id, a name, a token hash).
    pub key: String,
    /// Why it does not decode.
    pub error: String,
    /// Its size, in bytes.
    pub bytes: usize,
}

/// Decoding a record of one table as its type.
pub(crate) type Check = fn(&[u8]) -> Result<(), String>;

pub(crate) fn check<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<(), String> {
    decode::<T>(bytes).map(|_| ())
}

/// Every table of JSON records, with the type its records decode as.
/// The names of the tables whose records can be unreadable (what
/// [`delete_unreadable`](crate::unreadable::UnreadableStore::delete_unreadable) takes).
pub fn table_names() -> Vec<String> {
    use redb::TableHandle;
    json_tables().iter().map(|(d, _)| d.name().to_string()).collect()
}

/// (Opened as raw bytes by name, the names of [`crate::schema`]: a `Json<T>` table has
/// the type name of `&[u8]`, so any record table opens this way.)
fn json_tables() -> [(TableDefinition<'static, &'static str, &'static [u8]>, Check); 14] {
    [
        (
            TableDefinition::new("plugins"),
            check::<sundial_core::plugin::PluginRecord>,
        ),
        (TableDefinition::new("tasks"), check::<super::tasks::TaskRecord>),
        (TableDefinition::new("runs"), check::<sundial_core::run::Run>),
        (
            TableDefinition::new("schedules"),
            check::<super::schedules::ScheduleRecord>,
        ),
        (
            TableDefinition::new("triggers"),
            check::<super::triggers::TriggerRecord>,
        ),
        (
            TableDefinition::new("webhooks"),
            check::<super::webhooks::WebhookRecord>,
        ),
        (
            TableDefinition::new("deliveries"),
            check::<super::webhooks::Delivery>,
        ),
        (
            TableDefinition::new("events"),
            check::<sundial_core::event::EventRecord>,
        ),
        (TableDefinition::new("timers"), check::<super::timers::Timer>),
        (
            TableDefinition::new("tokens"),
            check::<super::tokens::TokenRecord>,
        ),
        (
            TableDefinition::new("secrets"),
            check::<super::secrets::SecretRecord>,
        ),
        (TableDefinition::new("audit"), check::<super::audit::AuditEntry>),
        (
            TableDefinition::new("calendars"),
            check::<sundial_core::calendar::CalendarSpec>,
        ),
        (
            TableDefinition::new("maintenance"),
            check::<sundial_core::calendar::Maintenance>,
        ),
    ]
}

/// Index tables whose values are record keys (a name → id, a dedup key → event seq).
const VALUE_INDEXES: [TableDefinition<'static, &'static str, &'static str>; 5] = [
    TASK_NAMES,
    SCHEDULE_NAMES,
    TRIGGER_NAMES,
    WEBHOOK_NAMES,
    EVENT_KEYS,
];

/// Index, link and queue tables whose keys contain record keys (`a/b`).
const KEY_INDEXES: [TableDefinition<'static, &'static str, ()>; 8] = [
    RUNS_BY_TASK,
    RUN_QUEUE,
    ACTIVE_RUNS,
    SCHEDULE_TASKS,
    TASK_SCHEDULES,
    SLOTS,
    TIMERS_DUE,
    DELIVERY_QUEUE,
];

/// Records that no longer decode, for an admin to list and delete.
#[async_trait]
pub trait UnreadableStore: Send + Sync {
    /// Up to `limit` records that do not decode, table by table (a full scan: for the
    /// admin endpoint, not a hot path).
    fn unreadable_records(&self, limit: usize) -> Result<Vec<UnreadableRecord>, StoreError>;

    /// Delete the unreadable record `table`/`key` and every index entry that points to
    /// it, audited. Refused (409) when the record reads: delete it through its own API.
    async fn delete_unreadable(&self, table: &str, key: &str, actor: &str) -> Result<(), StoreError>;
}

#[async_trait]
impl UnreadableStore for Store {
    fn unreadable_records(&self, limit: usize) -> Result<Vec<UnreadableRecord>, StoreError> {
        use redb::TableHandle;
        let txn = self.read()?;
        let mut out = Vec::new();
        for (def, check) in json_tables() {
            let Ok(table) = txn.open_table(def) else { continue };
            for entry in table.iter()? {
                let (k, v) = entry?;
                if let Err(error) = check(v.value()) {
                    out.push(UnreadableRecord {
                        table: def.name().to_string(),
                        key: k.value().to_string(),
                        error,
                        bytes: v.value().len(),
                    });
                    if out.len() >= limit {
                        return Ok(out);
                    }
                }
            }
        }
        Ok(out)
    }

    async fn delete_unreadable(&self, table: &str, key: &str, actor: &str) -> Result<(), StoreError> {
        use redb::TableHandle;
        let Some((def, check)) = json_tables().into_iter().find(|(d, _)| d.name() == table) else {
            let names: Vec<String> = json_tables().iter().map(|(d, _)| d.name().to_string()).collect();
            return Err(StoreError::Invalid(format!(
                "table: {table:?} is not one of {}",
                names.join(", ")
            )));
        };
        let (table, key, actor) = (table.to_string(), key.to_string(), actor.to_string());
        // The tables of the nouns this node keeps copies of may be among them.
        let forget = |copies: &crate::cache::ReadCache| {
            copies.tasks.drop_all();
            copies.plugins.drop_all();
            copies.tokens.drop_all();
        };
        self.write_dropping(forget, move |txn| {
            let mut records = txn.open_table(def)?;
            let error = match records.get(key.as_str())? {
                None => return Err(StoreError::NotFound(format!("no record {key:?} in {table}"))),
                Some(v) => match check(v.value()) {
                    Ok(()) => {
                        return Err(StoreError::Conflict(format!(
                            "{table}/{key} reads; delete it through its own API"
                        )));
                    }
                    Err(e) => e,
                },
            };
            records.remove(key.as_str())?;
            drop(records);
            for index in VALUE_INDEXES {
                let mut t = txn.open_table(index)?;
                let doomed: Vec<String> = t
                    .iter()?
                    .filter_map(|e| e.ok())
                    .filter(|(_, v)| v.value() == key)
                    .map(|(k, _)| k.value().to_string())
                    .collect();
                for k in doomed {
                    t.remove(k.as_str())?;
                }
            }
            for index in KEY_INDEXES {
                let mut t = txn.open_table(index)?;
                let doomed: Vec<String> = t
                    .iter()?
                    .filter_map(|e| e.ok())
                    .map(|(k, _)| k.value().to_string())
                    .filter(|k| k.split('/').any(|part| part == key))
                    .collect();
                for k in doomed {
                    t.remove(k.as_str())?;
                }
            }
            if table == "schedules" {
                crate::schedule_due::remove(txn, &key)?;
            }
            let note = serde_json::json!({ "table": table, "key": key, "error": error });
            super::audit::record(
                txn,
                &actor,
                "delete",
                "unreadable_record",
                &format!("{table}/{key}"),
                Some(&note),
                None::<&()>,
            )
        })
        .await?;
        Ok(())
    }
}
