//! `sundial migrate --from redb:DIR --to postgres://…`: copy a stopped single-node
//! store, every table, into an empty PostgreSQL database, in one transaction (all or
//! nothing). Records are copied as they are stored (the same JSON documents); the
//! columns beside them are derived as every write derives them. A run that was running
//! when the node stopped is copied running with an expired lease, so the first node of
//! the cluster settles it as after a crash. Records that no longer decode cannot give
//! their columns and are left out, counted.

use crate::pg::{PgStore, db_error, exec, rows};
use crate::schema::*;
use crate::tables::{Json, decode};
use crate::{Store, StoreError};
use redb::{ReadTransaction, ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;

/// What was copied: rows per target table, and records left out because they do not
/// decode (per source table).
#[derive(Debug, Default)]
pub struct Copied {
    /// Rows written, per PostgreSQL table.
    pub rows: BTreeMap<&'static str, u64>,
    /// Records that do not decode and were left out, per redb table.
    pub unreadable: BTreeMap<&'static str, u64>,
}

/// Every (key, JSON bytes) of `def`, or none when the table was never made.
fn all_json<T: 'static>(
    txn: &ReadTransaction,
    def: TableDefinition<&'static str, Json<'static, T>>,
) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    let Ok(table) = txn.open_table(def) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for entry in table.iter()? {
        let (k, v) = entry?;
        out.push((k.value().to_string(), v.value().bytes().to_vec()));
    }
    Ok(out)
}

/// Every key of a key-only table (links, the slot ledger).
fn all_keys(
    txn: &ReadTransaction,
    def: TableDefinition<&'static str, ()>,
) -> Result<Vec<String>, StoreError> {
    let Ok(table) = txn.open_table(def) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for entry in table.iter()? {
        out.push(entry?.0.value().to_string());
    }
    Ok(out)
}

/// Every (key, value) of a text → text table.
fn all_text(
    txn: &ReadTransaction,
    def: TableDefinition<&'static str, &'static str>,
) -> Result<Vec<(String, String)>, StoreError> {
    let Ok(table) = txn.open_table(def) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for entry in table.iter()? {
        let (k, v) = entry?;
        out.push((k.value().to_string(), v.value().to_string()));
    }
    Ok(out)
}

/// Every (key, bytes) of a text → bytes table.
fn all_bytes(
    txn: &ReadTransaction,
    def: TableDefinition<&'static str, &'static [u8]>,
) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    let Ok(table) = txn.open_table(def) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for entry in table.iter()? {
        let (k, v) = entry?;
        out.push((k.value().to_string(), v.value().to_vec()));
    }
    Ok(out)
}

/// The tables that must be empty in the target (everything but `meta`).
const TARGET_TABLES: [&str; 20] = [
    "plugins",
    "plugin_blobs",
    "tasks",
    "runs",
    "kv",
    "kv_usage",
    "schedules",
    "schedule_tasks",
    "slots",
    "triggers",
    "events",
    "event_keys",
    "timers",
    "webhooks",
    "deliveries",
    "secrets",
    "tokens",
    "calendars",
    "maintenance",
    "audit",
];

impl Copied {
    fn add(&mut self, table: &'static str, n: u64) {
        *self.rows.entry(table).or_default() += n;
    }

    fn skip(&mut self, table: &'static str) {
        *self.unreadable.entry(table).or_default() += 1;
    }
}

/// Decode a record, or count it left out.
fn record<T: DeserializeOwned>(copied: &mut Copied, table: &'static str, bytes: &[u8]) -> Option<T> {
    match decode(bytes) {
        Ok(v) => Some(v),
        Err(_) => {
            copied.skip(table);
            None
        }
    }
}

/// Copy the store of `source` (a redb data directory; its daemon stopped) into
/// `target`, which must hold nothing yet.
pub async fn redb_to_postgres(source: &std::path::Path, target: &PgStore) -> Result<Copied, StoreError> {
    if !source.join("sundial.redb").is_file() {
        return Err(StoreError::NotFound(format!(
            "{} holds no Sundial store (sundial.redb)",
            source.display()
        )));
    }
    let store = Store::open(source, 64).map_err(|e| {
        StoreError::Unavailable(format!(
            "cannot open the store in {} ({e}); is its daemon still running? Stop it first",
            source.display()
        ))
    })?;
    let txn = store.read()?;
    let mut client = target.client().await?;
    let t = client.transaction().await.map_err(db_error)?;
    for table in TARGET_TABLES {
        if !rows(&t, &format!("SELECT 1 FROM {table} LIMIT 1"), &[])
            .await?
            .is_empty()
        {
            return Err(StoreError::Conflict(format!(
                "the target database already holds data (table {table}): migrate into an empty database"
            )));
        }
    }
    let mut copied = Copied::default();
    // Plugins and their bytes.
    for (name, bytes) in all_json(&txn, PLUGINS)? {
        let Some(p) = record::<sundial_core::plugin::PluginRecord>(&mut copied, "plugins", &bytes) else {
            continue;
        };
        exec(
            &t,
            "INSERT INTO plugins (name, digest, doc) VALUES ($1, $2, $3)",
            &[&name, &p.blob_key(), &text(&bytes)],
        )
        .await?;
        copied.add("plugins", 1);
    }
    for (digest, bytes) in all_bytes(&txn, PLUGIN_BLOBS)? {
        exec(
            &t,
            "INSERT INTO plugin_blobs (digest, bytes) VALUES ($1, $2)",
            &[&digest, &bytes],
        )
        .await?;
        copied.add("plugin_blobs", 1);
    }
    // Named records.
    named::<crate::tasks::TaskRecord>(&t, &mut copied, "tasks", all_json(&txn, TASKS)?).await?;
    named::<crate::schedules::ScheduleRecord>(&t, &mut copied, "schedules", all_json(&txn, SCHEDULES)?)
        .await?;
    named::<crate::triggers::TriggerRecord>(&t, &mut copied, "triggers", all_json(&txn, TRIGGERS)?).await?;
    named::<crate::webhooks::WebhookRecord>(&t, &mut copied, "webhooks", all_json(&txn, WEBHOOKS)?).await?;
    pairs(
        &t,
        &mut copied,
        "schedule_tasks",
        "schedule_id, task_id",
        split(all_keys(&txn, SCHEDULE_TASKS)?),
    )
    .await?;
    pairs(
        &t,
        &mut copied,
        "slots",
        "schedule_id, slot",
        split(all_keys(&txn, SLOTS)?),
    )
    .await?;
    // Runs: a running one keeps its attempt, owned by nobody alive, its lease expired.
    for (_, bytes) in all_json(&txn, RUNS)? {
        let Some(run) = record::<sundial_core::run::Run>(&mut copied, "runs", &bytes) else {
            continue;
        };
        crate::pg::rows::insert_runs(&t, std::slice::from_ref(&run)).await?;
        if run.status == sundial_core::run::RunStatus::Running {
            exec(
                &t,
                "UPDATE runs SET owner = 'migrated', attempt = $2, lease_until = '-infinity' WHERE id = $1",
                &[&run.id, &(run.attempt as i32)],
            )
            .await?;
        }
        copied.add("runs", 1);
    }
    for (key, value) in all_bytes(&txn, KV)? {
        if let Some((plugin, k)) = key.split_once('/') {
            exec(
                &t,
                "INSERT INTO kv (plugin, key, value) VALUES ($1, $2, $3)",
                &[&plugin, &k, &value],
            )
            .await?;
            copied.add("kv", 1);
        }
    }
    // Events and their deduplication keys.
    keyed::<sundial_core::event::EventRecord>(&t, &mut copied, "events", "seq", all_json(&txn, EVENTS)?)
        .await?;
    pairs(
        &t,
        &mut copied,
        "event_keys",
        "key, seq",
        all_text(&txn, EVENT_KEYS)?,
    )
    .await?;
    for (_, bytes) in all_json(&txn, TIMERS)? {
        let Some(timer) = record::<crate::timers::Timer>(&mut copied, "timers", &bytes) else {
            continue;
        };
        crate::pg::rows::insert_timer(&t, &timer).await?;
        copied.add("timers", 1);
    }
    for (_, bytes) in all_json(&txn, DELIVERIES)? {
        let Some(d) = record::<crate::webhooks::Delivery>(&mut copied, "deliveries", &bytes) else {
            continue;
        };
        crate::pg::rows::insert_deliveries(&t, std::slice::from_ref(&d)).await?;
        copied.add("deliveries", 1);
    }
    // Keyed records.
    keyed::<crate::secrets::SecretRecord>(&t, &mut copied, "secrets", "name", all_json(&txn, SECRETS)?)
        .await?;
    for (hash, bytes) in all_json(&txn, TOKENS)? {
        let Some(token) = record::<crate::tokens::TokenRecord>(&mut copied, "tokens", &bytes) else {
            continue;
        };
        exec(
            &t,
            "INSERT INTO tokens (hash, name, doc) VALUES ($1, $2, $3)",
            &[&hash, &token.name, &text(&bytes)],
        )
        .await?;
        copied.add("tokens", 1);
    }
    keyed::<sundial_core::calendar::CalendarSpec>(
        &t,
        &mut copied,
        "calendars",
        "name",
        all_json(&txn, CALENDARS)?,
    )
    .await?;
    keyed::<sundial_core::calendar::Maintenance>(
        &t,
        &mut copied,
        "maintenance",
        "id",
        all_json(&txn, MAINTENANCE)?,
    )
    .await?;
    keyed::<crate::audit::AuditEntry>(&t, &mut copied, "audit", "id", all_json(&txn, AUDIT)?).await?;
    // Usage is counted again from the copied keys and values.
    exec(
        &t,
        "INSERT INTO kv_usage (plugin, keys, bytes)
         SELECT plugin, count(*), sum(octet_length(key) + octet_length(value)) FROM kv GROUP BY plugin",
        &[],
    )
    .await?;
    for (key, value) in all_text(&txn, META)? {
        if key != "schema_version" {
            exec(
                &t,
                "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&key, &value],
            )
            .await?;
        }
    }
    target.commit(t).await?;
    drop(txn);
    store.close();
    Ok(copied)
}

/// Copy named records (id, name from the record, doc).
async fn named<T: crate::named::NamedRecord>(
    t: &deadpool_postgres::Transaction<'_>,
    copied: &mut Copied,
    table: &'static str,
    records: Vec<(String, Vec<u8>)>,
) -> Result<(), StoreError> {
    for (id, bytes) in records {
        let Some(r) = record::<T>(copied, table, &bytes) else {
            continue;
        };
        let sql = format!("INSERT INTO {table} (id, name, doc) VALUES ($1, $2, $3)");
        exec(t, &sql, &[&id, &r.name(), &text(&bytes)]).await?;
        copied.add(table, 1);
    }
    Ok(())
}

/// Composite keys (`a/b`: links, the slot ledger) as their two parts.
fn split(keys: Vec<String>) -> Vec<(String, String)> {
    keys.iter()
        .filter_map(|k| k.split_once('/'))
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// Copy rows of two text columns (`columns`, as in `a, b`).
async fn pairs(
    t: &deadpool_postgres::Transaction<'_>,
    copied: &mut Copied,
    table: &'static str,
    columns: &str,
    rows: Vec<(String, String)>,
) -> Result<(), StoreError> {
    let sql = format!("INSERT INTO {table} ({columns}) VALUES ($1, $2)");
    for (a, b) in rows {
        exec(t, &sql, &[&a, &b]).await?;
        copied.add(table, 1);
    }
    Ok(())
}

/// Copy keyed records (key, doc) that decode as `T`.
async fn keyed<T: DeserializeOwned>(
    t: &deadpool_postgres::Transaction<'_>,
    copied: &mut Copied,
    table: &'static str,
    key: &str,
    records: Vec<(String, Vec<u8>)>,
) -> Result<(), StoreError> {
    let sql = format!("INSERT INTO {table} ({key}, doc) VALUES ($1, $2)");
    for (k, bytes) in records {
        if record::<T>(copied, table, &bytes).is_none() {
            continue;
        }
        exec(t, &sql, &[&k, &text(&bytes)]).await?;
        copied.add(table, 1);
    }
    Ok(())
}

/// Stored JSON bytes as text (they are UTF-8: serde_json wrote them).
fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
