//! What the host interface is backed by: the plugin-scoped key-value store and the
//! secret store. The daemon backs them with redb; `sundial plugin run` and tests use
//! [`MemoryServices`].

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

/// A boxed future, as returned by [`HostServices`] methods.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The answer of a host service that can fail: an error is a message for the plugin.
pub type HostResult<'a, T> = BoxFuture<'a, Result<T, String>>;

/// Largest key-value key, in bytes.
pub const MAX_KV_KEY_BYTES: usize = 256;
/// Largest key-value value, in bytes (1 MiB).
pub const MAX_KV_VALUE_BYTES: usize = 1024 * 1024;

/// Storage behind the host interface. Time spent in these calls counts toward the
/// run's wall-clock timeout.
pub trait HostServices: Send + Sync {
    /// Read `key` from `plugin`'s namespace.
    fn kv_get<'a>(&'a self, plugin: &'a str, key: &'a str) -> HostResult<'a, Option<Vec<u8>>>;
    /// Write `key` in `plugin`'s namespace (durably, for the daemon).
    fn kv_set<'a>(&'a self, plugin: &'a str, key: &'a str, value: Vec<u8>) -> HostResult<'a, ()>;
    /// Delete `key` from `plugin`'s namespace.
    fn kv_delete<'a>(&'a self, plugin: &'a str, key: &'a str) -> HostResult<'a, ()>;
    /// The value of secret `name`, if it exists. Grants are checked by the caller.
    fn secret<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Option<String>>;
    /// Send `message` through the configured SMTP relay for `plugin` (grants are
    /// checked by the caller). Default: no relay configured.
    fn send_mail<'a>(
        &'a self,
        plugin: &'a str,
        message: crate::mail::Message,
    ) -> BoxFuture<'a, Result<String, crate::mail::MailError>> {
        let _ = (plugin, message);
        Box::pin(std::future::ready(Err(crate::mail::MailError::Denied(
            "no SMTP relay is configured on this daemon ([mail] in the config)".into(),
        ))))
    }
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
    fn kv_get<'a>(&'a self, plugin: &'a str, key: &'a str) -> HostResult<'a, Option<Vec<u8>>> {
        let result = self
            .kv
            .lock()
            .map(|kv| kv.get(&(plugin.to_string(), key.to_string())).cloned())
            .map_err(|_| "key-value store poisoned".to_string());
        Box::pin(std::future::ready(result))
    }

    fn kv_set<'a>(&'a self, plugin: &'a str, key: &'a str, value: Vec<u8>) -> HostResult<'a, ()> {
        let result = self
            .kv
            .lock()
            .map(|mut kv| {
                kv.insert((plugin.to_string(), key.to_string()), value);
            })
            .map_err(|_| "key-value store poisoned".to_string());
        Box::pin(std::future::ready(result))
    }

    fn kv_delete<'a>(&'a self, plugin: &'a str, key: &'a str) -> HostResult<'a, ()> {
        let result = self
            .kv
            .lock()
            .map(|mut kv| {
                kv.remove(&(plugin.to_string(), key.to_string()));
            })
            .map_err(|_| "key-value store poisoned".to_string());
        Box::pin(std::future::ready(result))
    }

    fn secret<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Option<String>> {
        Box::pin(std::future::ready(self.secrets.get(name).cloned()))
    }
}
