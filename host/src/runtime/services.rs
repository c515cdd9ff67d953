//! What the host interface is backed by: the plugin-scoped key-value store and the
//! secret store. The daemon backs them with redb; `sundial plugin run` and tests use
//! [`MemoryServices`].

use std::collections::HashMap;
use std::sync::Mutex;

/// Largest key-value key, in bytes.
pub const MAX_KV_KEY_BYTES: usize = 256;
/// Largest key-value value, in bytes (1 MiB).
pub const MAX_KV_VALUE_BYTES: usize = 1024 * 1024;

/// Storage behind the host interface. Calls are synchronous and expected to be fast.
pub trait HostServices: Send + Sync {
    /// Read `key` from `plugin`'s namespace.
    fn kv_get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, String>;
    /// Write `key` in `plugin`'s namespace.
    fn kv_set(&self, plugin: &str, key: &str, value: &[u8]) -> Result<(), String>;
    /// Delete `key` from `plugin`'s namespace.
    fn kv_delete(&self, plugin: &str, key: &str) -> Result<(), String>;
    /// The value of secret `name`, if it exists. Grants are checked by the caller.
    fn secret(&self, name: &str) -> Option<String>;
}

/// In-memory services: key-value per plugin and a fixed set of secrets.
#[derive(Debug, Default)]
pub struct MemoryServices {
    kv: Mutex<HashMap<(String, String), Vec<u8>>>,
    secrets: HashMap<String, String>,
}

impl MemoryServices {
    /// Services with these secrets and an empty key-value store.
    pub fn with_secrets(secrets: impl IntoIterator<Item = (String, String)>) -> MemoryServices {
        MemoryServices {
            kv: Mutex::default(),
            secrets: secrets.into_iter().collect(),
        }
    }
}

impl HostServices for MemoryServices {
    fn kv_get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, String> {
        let kv = self
            .kv
            .lock()
            .map_err(|_| "key-value store poisoned".to_string())?;
        Ok(kv.get(&(plugin.to_string(), key.to_string())).cloned())
    }

    fn kv_set(&self, plugin: &str, key: &str, value: &[u8]) -> Result<(), String> {
        let mut kv = self
            .kv
            .lock()
            .map_err(|_| "key-value store poisoned".to_string())?;
        kv.insert((plugin.to_string(), key.to_string()), value.to_vec());
        Ok(())
    }

    fn kv_delete(&self, plugin: &str, key: &str) -> Result<(), String> {
        let mut kv = self
            .kv
            .lock()
            .map_err(|_| "key-value store poisoned".to_string())?;
        kv.remove(&(plugin.to_string(), key.to_string()));
        Ok(())
    }

    fn secret(&self, name: &str) -> Option<String> {
        self.secrets.get(name).cloned()
    }
}
