//! Table definitions and JSON helpers. Keys are strings: ULIDs sort by creation time,
//! composite keys join parts with `/` (ULIDs and names never contain it).

use super::StoreError;
use redb::{ReadableTable, Table, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Installed plugins: name → `PluginRecord` JSON.
pub const PLUGINS: TableDefinition<&str, &[u8]> = TableDefinition::new("plugins");
/// Component bytes by sha256 digest (shared by plugins with equal bytes).
pub const PLUGIN_BLOBS: TableDefinition<&str, &[u8]> = TableDefinition::new("plugin_blobs");
/// Tasks: id → `TaskRecord` JSON.
pub const TASKS: TableDefinition<&str, &[u8]> = TableDefinition::new("tasks");
/// Task names: name → id.
pub const TASK_NAMES: TableDefinition<&str, &str> = TableDefinition::new("task_names");
/// Runs: id → `Run` JSON.
pub const RUNS: TableDefinition<&str, &[u8]> = TableDefinition::new("runs");
/// Runs of a task in time order: `task_id/run_id` → ().
pub const RUNS_BY_TASK: TableDefinition<&str, ()> = TableDefinition::new("runs_by_task");
/// Queued runs in FIFO order: run id → ().
pub const RUN_QUEUE: TableDefinition<&str, ()> = TableDefinition::new("run_queue");
/// Runs a worker is executing: run id → (). Whatever is here at start was interrupted.
pub const ACTIVE_RUNS: TableDefinition<&str, ()> = TableDefinition::new("active_runs");

/// Plugins' key-value namespaces: `plugin/key` → bytes.
pub const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");

/// Read a JSON value.
pub fn get_json<T: DeserializeOwned>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
) -> Result<Option<T>, StoreError> {
    match table.get(key)? {
        Some(v) => serde_json::from_slice(v.value())
            .map(Some)
            .map_err(|e| StoreError::Storage(format!("corrupt record {key:?}: {e}"))),
        None => Ok(None),
    }
}

/// Write a JSON value.
pub fn put_json<T: Serialize>(
    table: &mut Table<&'static str, &'static [u8]>,
    key: &str,
    value: &T,
) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(value).map_err(|e| StoreError::Storage(format!("encode {key:?}: {e}")))?;
    table.insert(key, bytes.as_slice())?;
    Ok(())
}

/// Up to `limit` values of a JSON table with keys after `after` (exclusive), in key
/// order, and the key to continue after when more remain.
pub fn page_json<T: DeserializeOwned>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    after: Option<&str>,
    limit: usize,
) -> Result<(Vec<T>, Option<String>), StoreError> {
    let mut out = Vec::new();
    let range = match after {
        Some(a) => table.range::<&str>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded))?,
        None => table.range::<&str>(..)?,
    };
    let mut last = None;
    for entry in range {
        let (k, v) = entry?;
        if out.len() == limit {
            return Ok((out, last));
        }
        out.push(
            serde_json::from_slice(v.value())
                .map_err(|e| StoreError::Storage(format!("corrupt record {:?}: {e}", k.value())))?,
        );
        last = Some(k.value().to_string());
    }
    Ok((out, None))
}

/// Every value of a JSON table, in key order.
pub fn all_json<T: DeserializeOwned>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
) -> Result<Vec<T>, StoreError> {
    let mut out = Vec::new();
    for entry in table.iter()? {
        let (k, v) = entry?;
        out.push(
            serde_json::from_slice(v.value())
                .map_err(|e| StoreError::Storage(format!("corrupt record {:?}: {e}", k.value())))?,
        );
    }
    Ok(out)
}
