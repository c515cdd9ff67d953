//! The plugins' key-value namespaces on PostgreSQL, with each plugin's usage kept
//! against its quota in the same transaction as every change.

use super::records::Keyed;
use super::{PgStore, db_error, exec, row};
use crate::StoreError;
use crate::kv::{KvStore, KvUsage};
use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use sundial_core::plugin::PluginRecord;

/// Plugins by name (for their limits).
const PLUGINS: Keyed = Keyed {
    table: "plugins",
    key: "name",
    noun: "plugin",
};

/// The plugin's usage (keys, bytes of keys and values), counted from its data and
/// recorded when it has no row yet; locked for the transaction when `lock`.
async fn usage(c: &impl GenericClient, plugin: &str, lock: bool) -> Result<(u64, u64), StoreError> {
    exec(
        c,
        "INSERT INTO kv_usage (plugin, keys, bytes)
         SELECT $1, count(*), coalesce(sum(octet_length(key) + octet_length(value)), 0) FROM kv WHERE plugin = $1
         ON CONFLICT (plugin) DO NOTHING",
        &[&plugin],
    )
    .await?;
    let sql = if lock {
        "SELECT keys, bytes FROM kv_usage WHERE plugin = $1 FOR UPDATE"
    } else {
        "SELECT keys, bytes FROM kv_usage WHERE plugin = $1"
    };
    let r = row(c, sql, &[&plugin])
        .await?
        .ok_or_else(|| StoreError::Storage(format!("no kv usage row for plugin {plugin:?}")))?;
    Ok((r.get::<_, i64>(0) as u64, r.get::<_, i64>(1) as u64))
}

#[async_trait]
impl KvStore for PgStore {
    fn kv_usage(&self, plugin: &str) -> Result<KvUsage, StoreError> {
        self.block(async {
            let client = self.client().await?;
            let limits = PLUGINS
                .get::<PluginRecord>(&client, plugin, false)
                .await?
                .map(|p| p.limits)
                .unwrap_or_default();
            let r = row(
                &client,
                "SELECT count(*), coalesce(sum(octet_length(key) + octet_length(value)), 0)::bigint FROM kv WHERE plugin = $1",
                &[&plugin],
            )
            .await?;
            let recorded = row(&client, "SELECT keys, bytes FROM kv_usage WHERE plugin = $1", &[&plugin]).await?;
            let (keys, bytes) = match (recorded, r) {
                (Some(u), _) => (u.get::<_, i64>(0) as u64, u.get::<_, i64>(1) as u64),
                (None, Some(c)) => (c.get::<_, i64>(0) as u64, c.get::<_, i64>(1) as u64),
                (None, None) => (0, 0),
            };
            Ok(KvUsage {
                keys,
                bytes,
                max_keys: limits.kv_max_keys,
                max_bytes: limits.kv_max_bytes,
            })
        })
    }

    fn kv_get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.block(async {
            let client = self.client().await?;
            Ok(row(
                &client,
                "SELECT value FROM kv WHERE plugin = $1 AND key = $2",
                &[&plugin, &key],
            )
            .await?
            .map(|r| r.get(0)))
        })
    }

    async fn kv_set(&self, plugin: &str, key: &str, value: Vec<u8>) -> Result<(), StoreError> {
        let key_len = key.len() as u64;
        let mut client = self.client().await?;
        let t = client.transaction().await.map_err(db_error)?;
        let limits = PLUGINS
            .get::<PluginRecord>(&t, plugin, false)
            .await?
            .map(|p| p.limits)
            .unwrap_or_default();
        let (keys, bytes) = usage(&t, plugin, true).await?;
        let old = row(
            &t,
            "SELECT octet_length(value) FROM kv WHERE plugin = $1 AND key = $2",
            &[&plugin, &key],
        )
        .await?
        .map(|r| r.get::<_, i32>(0) as u64);
        let (new_keys, new_bytes) =
            crate::kv::after_set(plugin, &limits, (keys, bytes), old, key_len, value.len())?;
        exec(
            &t,
            "INSERT INTO kv (plugin, key, value) VALUES ($1, $2, $3)
             ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value",
            &[&plugin, &key, &value],
        )
        .await?;
        exec(
            &t,
            "UPDATE kv_usage SET keys = $2, bytes = $3 WHERE plugin = $1",
            &[&plugin, &(new_keys as i64), &(new_bytes as i64)],
        )
        .await?;
        self.commit(t).await
    }

    async fn kv_delete(&self, plugin: &str, key: &str) -> Result<(), StoreError> {
        let key_len = key.len() as u64;
        let mut client = self.client().await?;
        let t = client.transaction().await.map_err(db_error)?;
        let (keys, bytes) = usage(&t, plugin, true).await?;
        let removed = row(
            &t,
            "DELETE FROM kv WHERE plugin = $1 AND key = $2 RETURNING octet_length(value)",
            &[&plugin, &key],
        )
        .await?;
        if let Some(r) = removed {
            let freed = key_len + r.get::<_, i32>(0) as u64;
            exec(
                &t,
                "UPDATE kv_usage SET keys = $2, bytes = $3 WHERE plugin = $1",
                &[
                    &plugin,
                    &(keys.saturating_sub(1) as i64),
                    &(bytes.saturating_sub(freed) as i64),
                ],
            )
            .await?;
        }
        self.commit(t).await
    }
}
