//! Compiled plugins kept in memory, by digest: the executor and the deliverer load
//! each installed component once (compiling, or deserializing the runtime's disk cache
//! entry) and share the result.
//!
//! - **Single flight**: runs that need a plugin not loaded yet wait on one gate per
//!   digest, so a plugin is compiled once however many runs arrive together. A run
//!   waits before its attempt starts: the compile never counts against its timeout.
//! - **Bounded**: loaded plugins hold their compiled code (an interpreter plugin tens
//!   of MB); past `capacity_bytes` the least recently used are dropped (a run holding
//!   one keeps it alive until it ends) and are loaded again from the disk cache.
//! - **Warm**: installing puts the compiled plugin here directly (not the bundled ones
//!   the daemon installs at its first start), and [`warm`] (at start) loads in the
//!   background the installed plugins some task or webhook uses, until
//!   `capacity_bytes` is reached, compiling those whose disk cache entry is missing or
//!   stale (an upgrade changes the engine's fingerprint), so no first run stalls on a
//!   compile. The plugins nothing uses are only compiled into the disk cache: their
//!   code stays out of memory until a first run loads it from there.
//!
//! [`warm`]: PluginCache::warm

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use sundial_core::plugin::PluginRecord;
use sundial_runtime::{Plugin, Runtime};
use sundial_store::SharedStore;

/// Compiled plugins kept in memory by default: 1 GiB (about 25 Python or JavaScript
/// plugins, or hundreds of Rust ones).
pub const DEFAULT_CAPACITY_BYTES: usize = 1 << 30;

/// Why a plugin could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadFailure {
    /// The component is refused (invalid, over the pool's limits, its bytes missing):
    /// trying again cannot help.
    #[error("{0}")]
    Refused(String),
    /// Reading it failed (the store), or its compiler process died, which may pass:
    /// worth trying again later.
    #[error("{0}")]
    Unavailable(String),
}

/// The cache (cheap to clone).
#[derive(Clone)]
pub struct PluginCache {
    inner: Arc<Inner>,
}

struct Inner {
    store: SharedStore,
    runtime: Runtime,
    loaded: Mutex<Lru<Plugin>>,
    /// One gate per digest: runs that need a plugin not loaded yet wait for one load
    /// (one compile) instead of each compiling it.
    loading: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Loads that compiled, and loads from the disk cache.
    compiled: AtomicU64,
    from_disk: AtomicU64,
    /// Components that failed to load, by digest: not compiled again per run.
    failed: Mutex<HashMap<String, Failed>>,
    /// A warm-up is running; `warm_again` asks it for one more pass.
    warming: std::sync::atomic::AtomicBool,
    warm_again: std::sync::atomic::AtomicBool,
}

/// A component that failed to load, why, and when: for good when it was refused; when
/// its compiler died (killed for memory, say), only for the loads that were already
/// waiting for that compile (see [`PluginCache::failure`]).
struct Failed {
    why: String,
    at: std::time::Instant,
    transient: bool,
}

/// Loaded plugins with their size and last use, dropped least recently used first.
struct Lru<V> {
    entries: HashMap<String, Entry<V>>,
    /// Sum of the entries' sizes.
    bytes: usize,
    capacity: usize,
    clock: u64,
}

struct Entry<V> {
    plugin: Arc<V>,
    bytes: usize,
    used: u64,
}

impl<V> Lru<V> {
    fn new(capacity: usize) -> Lru<V> {
        Lru {
            entries: HashMap::new(),
            bytes: 0,
            capacity,
            clock: 0,
        }
    }

    fn get(&mut self, digest: &str) -> Option<Arc<V>> {
        self.clock += 1;
        let now = self.clock;
        self.entries.get_mut(digest).map(|e| {
            e.used = now;
            e.plugin.clone()
        })
    }

    /// Keep `plugin`; drop the least recently used others while over capacity (the
    /// newest stays even when it alone is larger).
    fn insert(&mut self, digest: String, plugin: Arc<V>, bytes: usize) {
        self.clock += 1;
        self.bytes += bytes;
        let old = self.entries.insert(
            digest.clone(),
            Entry {
                plugin,
                bytes,
                used: self.clock,
            },
        );
        if let Some(old) = old {
            self.bytes -= old.bytes;
        }
        while self.bytes > self.capacity && self.entries.len() > 1 {
            let Some(oldest) = self
                .entries
                .iter()
                .filter(|(d, _)| **d != digest)
                .min_by_key(|(_, e)| e.used)
                .map(|(d, _)| d.clone())
            else {
                break;
            };
            if let Some(e) = self.entries.remove(&oldest) {
                self.bytes -= e.bytes;
                tracing::debug!(digest = %oldest, bytes = e.bytes, "dropped a loaded plugin (least recently used)");
            }
        }
    }
}

impl PluginCache {
    /// An empty cache loading from `store` through `runtime`, keeping at most
    /// `capacity_bytes` of compiled code loaded.
    pub fn new(store: SharedStore, runtime: Runtime, capacity_bytes: usize) -> PluginCache {
        PluginCache {
            inner: Arc::new(Inner {
                store,
                runtime,
                loaded: Mutex::new(Lru::new(capacity_bytes)),
                loading: Mutex::default(),
                compiled: AtomicU64::new(0),
                from_disk: AtomicU64::new(0),
                failed: Mutex::default(),
                warming: Default::default(),
                warm_again: Default::default(),
            }),
        }
    }

    /// The runtime plugins are loaded into.
    pub fn runtime(&self) -> &Runtime {
        &self.inner.runtime
    }

    /// Keep a plugin loaded elsewhere (install compiles it before accepting it) under
    /// its record's digest, so its first run does not load it again.
    pub fn insert(&self, record_digest: &str, plugin: Arc<Plugin>) {
        let bytes = plugin.code_bytes;
        // It loads now: whatever failed before (its compiler died) is past.
        self.inner
            .failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(record_digest);
        self.lock().insert(record_digest.to_string(), plugin, bytes);
    }

    /// How many plugins are loaded, and the bytes of compiled code they hold.
    pub fn usage(&self) -> (usize, usize) {
        let lru = self.lock();
        (lru.entries.len(), lru.bytes)
    }

    /// Loads since start that compiled, and that deserialized the disk cache.
    pub fn loads(&self) -> (u64, u64) {
        (
            self.inner.compiled.load(Relaxed),
            self.inner.from_disk.load(Relaxed),
        )
    }

    /// Load the installed plugins some task or webhook uses and that are not loaded yet
    /// in the background, one at a time (compiling those the disk cache does not hold),
    /// and compile the others into the disk cache without loading them, so first runs
    /// after a start or an upgrade do not wait for a compile. A run that needs one
    /// meanwhile waits on its
    /// gate. One warm-up runs at a time; a call while one runs asks it for another pass.
    pub fn warm(&self) {
        use std::sync::atomic::Ordering::SeqCst;
        self.inner.warm_again.store(true, SeqCst);
        if self.inner.warming.swap(true, SeqCst) {
            return; // the running warm-up makes another pass
        }
        let cache = self.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let (mut compiled, mut loaded) = (0usize, 0usize);
            loop {
                cache.inner.warm_again.store(false, SeqCst);
                // What no task or webhook names has no run to be ready for: it is
                // compiled into the disk cache, not loaded (its code stays out of
                // memory until a first run loads it from there), after the plugins in
                // use are loaded. `None`: every plugin counts as used (the lists could
                // not be read).
                let store = cache.inner.store.clone();
                let used = match tokio::task::spawn_blocking(move || plugins_in_use(&store))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|listed| listed.map_err(|e| e.to_string()))
                {
                    Ok(used) => Some(used),
                    Err(e) => {
                        tracing::warn!("warming plugins: listing tasks and webhooks failed: {e}");
                        None
                    }
                };
                match cache.inner.store.plugins() {
                    Ok(records) => {
                        let (in_use, unused): (Vec<_>, Vec<_>) = records
                            .into_iter()
                            .partition(|r| used.as_ref().is_none_or(|u| u.contains(&r.name)));
                        let mut not_loaded = Vec::new();
                        for record in in_use {
                            let full = {
                                let lru = cache.lock();
                                lru.bytes >= lru.capacity
                            };
                            if full {
                                // Loading more would only evict what is loaded: the
                                // rest is compiled into the disk cache with the unused.
                                not_loaded.push(record);
                                continue;
                            }
                            if cache.lock().entries.contains_key(&record.digest)
                                || cache.failure(&record.digest, started).is_some()
                            {
                                continue; // loaded (its place in the LRU kept), or known bad
                            }
                            match cache.load_counted(&record).await {
                                Ok((_, true)) => compiled += 1,
                                Ok((_, false)) => loaded += 1,
                                Err(e) => tracing::warn!(plugin = %record.name, "warming plugin failed: {e}"),
                            }
                        }
                        for record in not_loaded.into_iter().chain(unused) {
                            if cache.failure(&record.digest, started).is_some() {
                                continue; // known bad
                            }
                            match cache.precompile(&record).await {
                                Ok(true) => compiled += 1,
                                Ok(false) => {}
                                Err(e) => tracing::warn!(plugin = %record.name, "warming plugin failed: {e}"),
                            }
                        }
                    }
                    Err(e) => tracing::warn!("warming plugins: listing them failed: {e}"),
                }
                if !cache.inner.warm_again.load(SeqCst) {
                    cache.inner.warming.store(false, SeqCst);
                    // A call between the check and the store would have seen `warming`.
                    if !cache.inner.warm_again.load(SeqCst) || cache.inner.warming.swap(true, SeqCst) {
                        break;
                    }
                }
            }
            tracing::info!(
                compiled,
                loaded,
                ms = started.elapsed().as_millis() as u64,
                "plugins warmed"
            );
        });
    }

    /// Compile `record`'s component into the runtime's disk cache unless it holds it
    /// already (or it is loaded, or known bad), without loading it; whether this
    /// compiled (counted as a compile). Under the digest's gate, like a load.
    async fn precompile(&self, record: &PluginRecord) -> Result<bool, LoadFailure> {
        let arrived = std::time::Instant::now();
        self.gated(&record.digest, async {
            if self.lock().entries.contains_key(&record.digest) {
                return Ok(false);
            }
            if let Some(failure) = self.failure(&record.digest, arrived) {
                return Err(failure);
            }
            let bytes = self.bytes_of(record)?;
            let runtime = self.inner.runtime.clone();
            let started = std::time::Instant::now();
            let outcome = tokio::task::spawn_blocking(move || runtime.precompile(&bytes))
                .await
                .map_err(|e| LoadFailure::Unavailable(format!("compiling plugin: {e}")))?
                .map_err(|e| self.load_failed(record, e))?;
            let compiled = outcome == sundial_runtime::CacheOutcome::Miss;
            if compiled {
                self.inner.compiled.fetch_add(1, Relaxed);
                tracing::info!(
                    plugin = %record.name,
                    ms = started.elapsed().as_millis() as u64,
                    "compiled plugin into the disk cache"
                );
            }
            Ok(compiled)
        })
        .await
    }

    /// Why `record` did not load, as a [`LoadFailure`], remembered (see
    /// [`PluginCache::failure`]). A failure to read the store is not remembered.
    fn load_failed(&self, record: &PluginRecord, e: sundial_runtime::LoadError) -> LoadFailure {
        let why = format!("plugin {:?} does not load: {e}", record.name);
        let transient = e.is_transient();
        let failed = Failed {
            why: why.clone(),
            at: std::time::Instant::now(),
            transient,
        };
        self.inner
            .failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(record.digest.clone(), failed);
        match transient {
            true => LoadFailure::Unavailable(why),
            false => LoadFailure::Refused(why),
        }
    }

    /// The component bytes of `record`, from the store.
    fn bytes_of(&self, record: &PluginRecord) -> Result<Vec<u8>, LoadFailure> {
        self.inner
            .store
            .plugin_bytes(record)
            .map_err(|e| LoadFailure::Unavailable(format!("reading plugin {:?}: {e}", record.name)))?
            .ok_or_else(|| {
                LoadFailure::Refused(format!("component bytes of plugin {:?} are missing", record.name))
            })
    }

    /// Why the component of `digest` failed to load, for a load that began waiting at
    /// `since`, if it is not to be tried again: a refused component never is (trying
    /// again cannot help); one whose compiler died is tried again by a load that came
    /// after that failure, while the loads that were waiting for the failed compile
    /// share its failure instead of each starting a compile that may take minutes and
    /// die the same way. (A run retried after such a failure compiles again.)
    fn failure(&self, digest: &str, since: std::time::Instant) -> Option<LoadFailure> {
        let failed = self.inner.failed.lock().unwrap_or_else(|e| e.into_inner());
        match failed.get(digest)? {
            Failed {
                why,
                transient: false,
                ..
            } => Some(LoadFailure::Refused(why.clone())),
            Failed { why, at, .. } if *at >= since => Some(LoadFailure::Unavailable(why.clone())),
            _ => None,
        }
    }

    /// The compiled plugin of `record`, loading (and caching by digest) on first use.
    pub async fn load(&self, record: &PluginRecord) -> Result<Arc<Plugin>, LoadFailure> {
        self.load_counted(record).await.map(|(p, _)| p)
    }

    /// [`load`](Self::load), also saying whether this call compiled the component.
    async fn load_counted(&self, record: &PluginRecord) -> Result<(Arc<Plugin>, bool), LoadFailure> {
        if let Some(p) = self.lock().get(&record.digest) {
            return Ok((p, false));
        }
        let arrived = std::time::Instant::now();
        self.gated(&record.digest, self.load_gated(record, arrived)).await
    }

    /// Run `work` holding the gate of `digest`: one load or compile of a component at a
    /// time.
    async fn gated<R>(&self, digest: &str, work: impl std::future::Future<Output = R>) -> R {
        let gate = self
            .inner
            .loading
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(digest.to_string())
            .or_default()
            .clone();
        let _loading = gate.lock().await;
        let result = work.await;
        // The gate is dropped once nobody else holds it (this map and this call only):
        // a caller that comes later makes a new one and finds the plugin loaded.
        let mut gates = self.inner.loading.lock().unwrap_or_else(|e| e.into_inner());
        if gates.get(digest).is_some_and(|g| Arc::strong_count(g) <= 2) {
            gates.remove(digest);
        }
        drop(gates);
        drop(_loading);
        result
    }

    /// The load itself, under the digest's gate.
    async fn load_gated(
        &self,
        record: &PluginRecord,
        arrived: std::time::Instant,
    ) -> Result<(Arc<Plugin>, bool), LoadFailure> {
        if let Some(p) = self.lock().get(&record.digest) {
            return Ok((p, false)); // loaded while this one waited
        }
        if let Some(failure) = self.failure(&record.digest, arrived) {
            return Err(failure);
        }
        let bytes = self.bytes_of(record)?;
        let runtime = self.inner.runtime.clone();
        let plugin = match tokio::task::spawn_blocking(move || runtime.load(&bytes))
            .await
            .map_err(|e| LoadFailure::Unavailable(format!("loading plugin: {e}")))?
        {
            Ok(p) => p,
            Err(e) => return Err(self.load_failed(record, e)),
        };
        let compiled = plugin.cache != sundial_runtime::CacheOutcome::Hit;
        let counter = if compiled {
            &self.inner.compiled
        } else {
            &self.inner.from_disk
        };
        counter.fetch_add(1, Relaxed);
        if compiled {
            tracing::info!(
                plugin = %record.name,
                ms = plugin.load_time.as_millis() as u64,
                bytes = plugin.code_bytes,
                "compiled plugin"
            );
        }
        let plugin = Arc::new(plugin);
        self.lock()
            .insert(record.digest.clone(), plugin.clone(), plugin.code_bytes);
        Ok((plugin, compiled))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lru<Plugin>> {
        self.inner.loaded.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The names of the plugins some task or webhook (formatter) uses.
fn plugins_in_use(
    store: &SharedStore,
) -> Result<std::collections::HashSet<String>, sundial_store::StoreError> {
    let mut used = std::collections::HashSet::new();
    every_page(
        |after| store.tasks_page(after, 1000),
        |t| {
            used.insert(t.spec.plugin);
        },
    )?;
    every_page(
        |after| store.webhooks_page(after, 1000),
        |w| {
            used.insert(w.spec.formatter);
        },
    )?;
    Ok(used)
}

/// Call `each` on every item of a cursor-paged list, `page(after)` giving one page.
fn every_page<T>(
    page: impl Fn(Option<&str>) -> Result<(Vec<T>, Option<String>), sundial_store::StoreError>,
    mut each: impl FnMut(T),
) -> Result<(), sundial_store::StoreError> {
    let mut after: Option<String> = None;
    loop {
        let (items, next) = page(after.as_deref())?;
        items.into_iter().for_each(&mut each);
        match next {
            Some(n) => after = Some(n),
            None => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cache on a real store whose runtime compiles through `sh -c SCRIPT`.
    async fn cache_compiling_with(dir: &std::path::Path, script: &str) -> (PluginCache, PluginRecord) {
        let store: SharedStore = Arc::new(sundial_store::Store::open(dir, 16).unwrap());
        let runtime = Runtime::new(sundial_runtime::RuntimeConfig {
            cache_dir: Some(dir.join("cache")),
            max_instances: 2,
            compiler: sundial_runtime::Compiler::Child {
                program: "/bin/sh".into(),
                args: vec!["-c".into(), script.into(), "sh".into()],
            },
            ..Default::default()
        })
        .unwrap();
        // A component's preamble: enough to reach the compiler.
        let bytes = b"\0asm\x0d\x00\x01\x00".to_vec();
        let record = PluginRecord {
            name: "doomed".into(),
            digest: sundial_runtime::digest(&bytes),
            world: sundial_core::plugin::World::Action,
            size_bytes: bytes.len() as u64,
            imports: Vec::new(),
            grants: Default::default(),
            limits: Default::default(),
            description: String::new(),
            bundled: false,
            pinned: false,
            installed_at: "2026-01-01T00:00:00Z".into(),
            updated_at: "2026-01-01T00:00:00Z".into(),
        };
        let record = store.insert_plugin(record, bytes, "test").await.unwrap();
        (PluginCache::new(store, runtime, DEFAULT_CAPACITY_BYTES), record)
    }

    #[tokio::test]
    async fn loads_waiting_for_a_compiler_that_died_share_its_failure_and_a_bad_component_is_never_compiled_again()
     {
        let dir = tempfile::tempdir().unwrap();
        let tries = dir.path().join("tries");
        // A compiler that takes a moment and is then killed, as by the OOM killer.
        let script = format!("echo x >> '{}'; sleep 0.5; kill -9 $$", tries.display());
        let (cache, record) = cache_compiling_with(dir.path(), &script).await;
        let count = || {
            std::fs::read_to_string(&tries)
                .map(|t| t.lines().count())
                .unwrap_or(0)
        };

        // Four loads at once: one compiles, the three waiting for it share its failure.
        let (a, b, c, d) = tokio::join!(
            cache.load(&record),
            cache.load(&record),
            cache.precompile(&record),
            cache.load(&record)
        );
        assert!(matches!(a, Err(LoadFailure::Unavailable(_))), "{a:?}");
        assert!(matches!(b, Err(LoadFailure::Unavailable(_))), "{b:?}");
        assert!(matches!(c, Err(LoadFailure::Unavailable(_))), "{c:?}");
        assert!(matches!(d, Err(LoadFailure::Unavailable(_))), "{d:?}");
        assert_eq!(
            count(),
            1,
            "the loads waiting for the dead compiler started their own"
        );
        // A load that comes after the failure (a run's retry) tries again.
        assert!(matches!(
            cache.load(&record).await,
            Err(LoadFailure::Unavailable(_))
        ));
        assert_eq!(count(), 2);

        // A component the compiler refuses (exit 3) is refused for good.
        let dir = tempfile::tempdir().unwrap();
        let tries = dir.path().join("tries");
        let script = format!(
            "echo x >> '{}'; echo 'invalid component: no' >&2; exit 3",
            tries.display()
        );
        let (cache, record) = cache_compiling_with(dir.path(), &script).await;
        let count = || {
            std::fs::read_to_string(&tries)
                .map(|t| t.lines().count())
                .unwrap_or(0)
        };
        for _ in 0..3 {
            let e = cache.load(&record).await.unwrap_err();
            assert!(matches!(e, LoadFailure::Refused(_)), "{e:?}");
        }
        assert_eq!(count(), 1);
    }

    #[test]
    fn least_recently_used_go_first_and_the_newest_stays() {
        let mut l: Lru<()> = Lru::new(100);
        l.insert("a".into(), Arc::new(()), 40);
        l.insert("b".into(), Arc::new(()), 40);
        assert!(l.get("a").is_some()); // a is now the most recent
        l.insert("c".into(), Arc::new(()), 40); // over 100: b goes
        assert!(l.get("b").is_none());
        assert!(l.get("a").is_some() && l.get("c").is_some());
        assert_eq!(l.bytes, 80);
        l.insert("huge".into(), Arc::new(()), 500); // alone over capacity: kept, all else dropped
        assert_eq!(l.entries.len(), 1);
        assert!(l.get("huge").is_some());
        assert_eq!(l.bytes, 500);
        l.insert("huge".into(), Arc::new(()), 10); // replacing counts the new size only
        assert_eq!(l.bytes, 10);
    }
}
