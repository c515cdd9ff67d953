//! Compiled plugins, cached by digest: the executor and the deliverer load each
//! installed component once (compiling or hitting the runtime's disk cache) and share
//! the result.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use sundial_core::plugin::PluginRecord;
use sundial_runtime::{Plugin, Runtime};
use sundial_store::SharedStore;

/// The cache (cheap to clone).
#[derive(Clone)]
pub struct PluginCache {
    inner: Arc<Inner>,
}

struct Inner {
    store: SharedStore,
    runtime: Runtime,
    loaded: Mutex<HashMap<String, Arc<Plugin>>>,
    /// One gate per digest: runs that need a plugin not loaded yet wait for one load
    /// (one compile) instead of each compiling it.
    loading: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl PluginCache {
    /// An empty cache loading from `store` through `runtime`.
    pub fn new(store: SharedStore, runtime: Runtime) -> PluginCache {
        PluginCache {
            inner: Arc::new(Inner {
                store,
                runtime,
                loaded: Mutex::default(),
                loading: Mutex::default(),
            }),
        }
    }

    /// The runtime plugins are loaded into.
    pub fn runtime(&self) -> &Runtime {
        &self.inner.runtime
    }

    /// The compiled plugin of `record`, loading (and caching by digest) on first use.
    pub async fn load(&self, record: &PluginRecord) -> Result<Arc<Plugin>, String> {
        if let Some(p) = self.lock().get(&record.digest) {
            return Ok(p.clone());
        }
        let gate = self
            .inner
            .loading
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(record.digest.clone())
            .or_default()
            .clone();
        let _loading = gate.lock().await;
        if let Some(p) = self.lock().get(&record.digest) {
            return Ok(p.clone()); // loaded while this one waited
        }
        let bytes = self
            .inner
            .store
            .plugin_bytes(record)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("component bytes of plugin {:?} are missing", record.name))?;
        let runtime = self.inner.runtime.clone();
        let plugin = tokio::task::spawn_blocking(move || runtime.load(&bytes))
            .await
            .map_err(|e| format!("loading plugin: {e}"))?
            .map_err(|e| e.to_string())?;
        let plugin = Arc::new(plugin);
        self.lock().insert(record.digest.clone(), plugin.clone());
        Ok(plugin)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Plugin>>> {
        self.inner.loaded.lock().unwrap_or_else(|e| e.into_inner())
    }
}
