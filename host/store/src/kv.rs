//! The plugins' key-value namespaces, persisted in redb, with each plugin's usage
//! kept against its quota (the engine serves them to plugins as host services).

use super::tables::get_json;
use super::{Store, StoreError};
use crate::schema::*;
use async_trait::async_trait;
use redb::ReadableTable;

/// What a plugin's key-value namespace holds, and may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct KvUsage {
    /// Keys stored.
    pub keys: u64,
    /// Bytes of keys and values stored.
    pub bytes: u64,
    /// The plugin's `limits.kv_max_keys`.
    pub max_keys: u64,
    /// The plugin's `limits.kv_max_bytes`.
    pub max_bytes: u64,
}

/// (keys, bytes) of `plugin`'s namespace, counted from the data.
fn count(
    kv: &impl ReadableTable<&'static str, &'static [u8]>,
    plugin: &str,
) -> Result<(u64, u64), StoreError> {
    let (lo, hi) = (format!("{plugin}/"), format!("{plugin}0"));
    let (mut keys, mut bytes) = (0u64, 0u64);
    for entry in kv.range(lo.as_str()..hi.as_str())? {
        let (k, v) = entry?;
        keys += 1;
        bytes += (k.value().len() - lo.len() + v.value().len()) as u64;
    }
    Ok((keys, bytes))
}

/// Plugins' key-value namespaces with their quotas.
#[async_trait]
pub trait KvStore: Send + Sync {
    /// `plugin`'s key-value usage and quota.
    fn kv_usage(&self, plugin: &str) -> Result<KvUsage, StoreError>;

    /// The value of `plugin`'s key `key`, if any.
    fn kv_get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Set `plugin`'s key `key`, within its quota (`limits.kv_max_keys`,
    /// `limits.kv_max_bytes`); durable when this returns.
    async fn kv_set(&self, plugin: &str, key: &str, value: Vec<u8>) -> Result<(), StoreError>;

    /// Delete `plugin`'s key `key` (nothing when absent); durable when this returns.
    async fn kv_delete(&self, plugin: &str, key: &str) -> Result<(), StoreError>;
}

#[async_trait]
impl KvStore for Store {
    fn kv_usage(&self, plugin: &str) -> Result<KvUsage, StoreError> {
        let txn = self.read()?;
        let limits = match txn.open_table(PLUGINS) {
            Ok(t) => get_json::<sundial_core::plugin::PluginRecord>(&t, plugin)?
                .map(|p| p.limits)
                .unwrap_or_default(),
            Err(_) => Default::default(),
        };
        let (keys, bytes) = match txn.open_table(KV_USAGE) {
            Ok(t) => match t.get(plugin)? {
                Some(v) => v.value(),
                None => match txn.open_table(KV) {
                    Ok(kv) => count(&kv, plugin)?,
                    Err(_) => (0, 0),
                },
            },
            Err(_) => match txn.open_table(KV) {
                Ok(kv) => count(&kv, plugin)?,
                Err(_) => (0, 0),
            },
        };
        Ok(KvUsage {
            keys,
            bytes,
            max_keys: limits.kv_max_keys,
            max_bytes: limits.kv_max_bytes,
        })
    }

    fn kv_get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.read_table(KV, |kv| {
            Ok(kv.get(kv_key(plugin, key).as_str())?.map(|v| v.value().to_vec()))
        })
    }

    async fn kv_set(&self, plugin: &str, key: &str, value: Vec<u8>) -> Result<(), StoreError> {
        let k = kv_key(plugin, key);
        let plugin = plugin.to_string();
        let key_len = key.len() as u64;
        self.write(move |txn| {
            let limits = get_json::<sundial_core::plugin::PluginRecord>(&txn.open_table(PLUGINS)?, &plugin)?
                .map(|p| p.limits)
                .unwrap_or_default();
            let mut kv = txn.open_table(KV)?;
            let mut usage = txn.open_table(KV_USAGE)?;
            let (keys, bytes) = match usage.get(plugin.as_str())? {
                Some(v) => v.value(),
                None => count(&kv, &plugin)?,
            };
            let old = kv.get(k.as_str())?.map(|v| v.value().len() as u64);
            let (new_keys, new_bytes) =
                after_set(&plugin, &limits, (keys, bytes), old, key_len, value.len())?;
            kv.insert(k.as_str(), value.as_slice())?;
            usage.insert(plugin.as_str(), (new_keys, new_bytes))?;
            Ok(())
        })
        .await
    }

    async fn kv_delete(&self, plugin: &str, key: &str) -> Result<(), StoreError> {
        let k = kv_key(plugin, key);
        let plugin = plugin.to_string();
        let key_len = key.len() as u64;
        self.write(move |txn| {
            let mut kv = txn.open_table(KV)?;
            let mut usage = txn.open_table(KV_USAGE)?;
            let (keys, bytes) = match usage.get(plugin.as_str())? {
                Some(v) => v.value(),
                None => count(&kv, &plugin)?,
            };
            if let Some(old) = kv.remove(k.as_str())? {
                let freed = key_len + old.value().len() as u64;
                drop(old);
                usage.insert(
                    plugin.as_str(),
                    (keys.saturating_sub(1), bytes.saturating_sub(freed)),
                )?;
            }
            Ok(())
        })
        .await
    }
}

/// A plugin's usage (keys, bytes) after setting a key of `key_len` bytes to a value of
/// `value_len`, where the key held `old` bytes (or nothing); refused past its quota.
pub(crate) fn after_set(
    plugin: &str,
    limits: &sundial_core::limits::Limits,
    (keys, bytes): (u64, u64),
    old: Option<u64>,
    key_len: u64,
    value_len: usize,
) -> Result<(u64, u64), StoreError> {
    let new_keys = keys + u64::from(old.is_none());
    let new_bytes = bytes.saturating_sub(old.map_or(0, |o| o + key_len)) + key_len + value_len as u64;
    if new_keys > limits.kv_max_keys {
        return Err(StoreError::Invalid(format!(
            "kv quota: plugin {plugin:?} has {keys} keys, the most it may have (limits.kv_max_keys)"
        )));
    }
    if new_bytes > limits.kv_max_bytes {
        return Err(StoreError::Invalid(format!(
            "kv quota: this value would bring plugin {plugin:?} to {new_bytes} bytes, over its {} (limits.kv_max_bytes)",
            limits.kv_max_bytes
        )));
    }
    Ok((new_keys, new_bytes))
}

fn kv_key(plugin: &str, key: &str) -> String {
    // Plugin names never contain '/', so the prefix is unambiguous.
    format!("{plugin}/{key}")
}
