//! The sandboxed plugin runtime: one async wasmtime [`Engine`] (component model,
//! pooling allocator, epoch interruption, optional fuel), a cached `InstancePre` per
//! loaded plugin, a fresh `Store` per run, compiled components cached on disk.
//!
//! Every way a plugin can misbehave (trap, panic, timeout, memory or fuel
//! exhaustion, oversized or invalid output) comes back as a [`RunError`] inside a
//! [`RunReport`]; nothing a plugin does can panic the host.

#![warn(missing_docs)]

pub mod bindings;
pub mod cache;
mod call;
pub mod compile;
mod convert;
mod load;
pub mod mail;
pub mod net;
mod outbound;
mod outcome;
pub mod services;
pub mod state;
mod warm;

pub use cache::{CacheOutcome, digest};
pub use compile::{Compiler, EngineSettings};
pub use services::{HostServices, MemoryServices};
pub use state::PluginIdentity;
// The domain types this crate's API speaks, re-exported so callers name one crate.
pub use sundial_core::grants::{Grants, HostPattern, NetworkPolicy};
pub use sundial_core::invocation::{
    Cause, Delivery, EmittedEvent, Event, HttpBody, Invocation, LoadError, Resources, RunError, RunReport,
};
pub use sundial_core::limits::Limits;
pub use sundial_core::plugin::World;
use sundial_core::{grants, limits, log};

use cache::CompileCache;
use state::RunState;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wasmtime::Engine;
use wasmtime::component::{HasSelf, Linker};

/// Engine-wide settings, fixed for the life of a [`Runtime`].
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Directory for compiled components; `None` disables the disk cache.
    /// Default `None` here; the CLI and daemon pass one.
    pub cache_dir: Option<PathBuf>,
    /// Address ranges plugins may reach at all. Default: public addresses only.
    pub network: NetworkPolicy,
    /// Instrument code for fuel so per-plugin `fuel` limits work. Default true.
    pub fuel_metering: bool,
    /// Most plugin instances alive at once (the pooling allocator's size): the
    /// ceiling on concurrent runs. Default 128.
    pub max_instances: u32,
    /// Epoch tick: the granularity of timeouts, in milliseconds. Default 10.
    pub epoch_tick_ms: u64,
    /// Outbound HTTP requests all plugin runs together have open at once; one more
    /// fails inside its plugin with `connection-limit-reached`. Each run has its own
    /// smaller limit too (`limits.max_connections`). Default 512; the daemon lowers it
    /// to a quarter of its open-file limit.
    pub max_outbound: usize,
    /// How large one plugin instance may be: the pooling allocator's per-component
    /// limits. The defaults fit the interpreter components componentize-py and
    /// ComponentizeJS build (see [`PoolLimits`]).
    pub pool: PoolLimits,
    /// Most plugin instances kept idle between runs, all plugins together (only
    /// plugins whose `limits.runs_per_instance` is above 1 leave any). Each holds a
    /// slot of the pool and its memory; the oldest goes first, and none stays idle
    /// longer than 60 s. Default 32, and never more than a quarter of `max_instances`.
    pub max_idle_instances: u32,
    /// Where components are compiled. Default in this process; the daemon compiles in
    /// a child process of its own binary ([`Compiler`]).
    pub compiler: Compiler,
}

/// Per-instance sizes of the pooling allocator. A component over one of them fails to
/// load (install answers 400 naming the limit); the totals are these times
/// [`RuntimeConfig::max_instances`], reserved as address space, not memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolLimits {
    /// Core module instances one plugin instance may create. Default 96: a Rust plugin
    /// has 1-4, componentize-py 0.25 builds 44, ComponentizeJS 0.23 about 10.
    pub core_instances: u32,
    /// Linear memories one plugin instance may have. Default 4.
    pub memories: u32,
    /// Tables one plugin instance may have. Default 64.
    pub tables: u32,
    /// Core instances reserved per concurrent run, on average: `max_instances` times
    /// this is the pool's total. Default 48, enough for every run to be an
    /// interpreter plugin.
    pub core_instances_per_run: u32,
    /// Bytes at the start of each linear memory slot kept mapped between runs and
    /// reset by copying (only the pages a run dirtied) instead of being unmapped and
    /// faulted in again. Default 4 MiB (larger measured no faster for interpreter
    /// plugins: the copy costs what the faults did).
    pub keep_resident_bytes: usize,
}

impl Default for PoolLimits {
    fn default() -> Self {
        PoolLimits {
            core_instances: 96,
            memories: 4,
            tables: 64,
            core_instances_per_run: 48,
            keep_resident_bytes: 4 << 20,
        }
    }
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            cache_dir: None,
            network: NetworkPolicy::default(),
            fuel_metering: true,
            max_instances: 128,
            epoch_tick_ms: 10,
            max_outbound: DEFAULT_MAX_OUTBOUND,
            pool: PoolLimits::default(),
            max_idle_instances: 32,
            compiler: Compiler::InProcess,
        }
    }
}

/// Outbound HTTP requests of all runs together, by default: 512.
pub const DEFAULT_MAX_OUTBOUND: usize = 512;

enum Pre {
    Action(bindings::action::ActionPre<RunState>),
    Formatter(bindings::formatter::FormatterPre<RunState>),
}

/// A validated, compiled and pre-linked plugin, ready to run many times.
pub struct Plugin {
    /// sha256 of the component bytes, hex.
    pub digest: String,
    /// The world it implements.
    pub world: World,
    /// Its imports (interface names), as declared by the component.
    pub imports: Vec<String>,
    /// Its exports.
    pub exports: Vec<String>,
    /// Whether loading compiled it or hit the compile cache.
    pub cache: CacheOutcome,
    /// How long loading took.
    pub load_time: Duration,
    /// Bytes of compiled code and data this plugin keeps in memory while loaded.
    pub code_bytes: usize,
    pre: Pre,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("digest", &self.digest)
            .field("world", &self.world)
            .field("imports", &self.imports)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

/// Why the runtime itself could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the plugin runtime: {0}")]
pub struct RuntimeError(String);

struct Inner {
    engine: Engine,
    action_linker: Linker<RunState>,
    formatter_linker: Linker<RunState>,
    cache: Option<CompileCache>,
    config: RuntimeConfig,
    stop_ticker: Arc<AtomicBool>,
    /// Outbound HTTP requests of every run together (`max_outbound` permits).
    outbound: Arc<tokio::sync::Semaphore>,
    /// `config.network`, shared by every run's outbound HTTP bookkeeping.
    network: Arc<NetworkPolicy>,
    /// Instances kept between runs.
    warm: Arc<warm::WarmPool>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

/// The plugin runtime. Cheap to clone; clones share the engine.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

impl Runtime {
    /// Build the engine, linkers and epoch ticker.
    pub fn new(config: RuntimeConfig) -> Result<Runtime, RuntimeError> {
        let err = |e: wasmtime::Error| RuntimeError(format!("{e:#}"));
        let n = config.max_instances.max(1);
        let wasm = EngineSettings::of(&config).config();
        let engine = Engine::new(&wasm).map_err(err)?;

        // Both worlds import WASI and the host interface; actions also HTTP and mail.
        let mut action_linker = base_linker(&engine).map_err(err)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut action_linker).map_err(err)?;
        bindings::action::sundial::plugin::mail::add_to_linker::<RunState, HasSelf<RunState>>(
            &mut action_linker,
            |s| s,
        )
        .map_err(err)?;
        let formatter_linker = base_linker(&engine).map_err(err)?;

        let cache = match &config.cache_dir {
            Some(dir) => Some(
                CompileCache::open(dir, &engine)
                    .map_err(|e| RuntimeError(format!("compile cache {}: {e}", dir.display())))?,
            ),
            None => None,
        };

        let stop_ticker = Arc::new(AtomicBool::new(false));
        // Idle instances count against the pool: never more than a quarter of it.
        let max_idle = config.max_idle_instances.min(n / 4) as usize;
        let warm = Arc::new(warm::WarmPool::new(max_idle));
        {
            let engine = engine.weak();
            let stop = stop_ticker.clone();
            let tick = Duration::from_millis(config.epoch_tick_ms.max(1));
            std::thread::Builder::new()
                .name("sundial-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(tick);
                        match engine.upgrade() {
                            Some(e) => e.increment_epoch(),
                            None => break,
                        }
                    }
                })
                .map_err(|e| RuntimeError(format!("epoch thread: {e}")))?;
        }
        if max_idle > 0 {
            // Once a second, drop instances idle too long: on a thread of its own, so a
            // slow unmap never delays the epoch ticks that enforce timeouts.
            let pool = Arc::downgrade(&warm);
            std::thread::Builder::new()
                .name("sundial-idle".into())
                .spawn(move || {
                    while let Some(pool) = pool.upgrade() {
                        pool.expire();
                        drop(pool);
                        std::thread::sleep(Duration::from_secs(1));
                    }
                })
                .map_err(|e| RuntimeError(format!("idle sweep thread: {e}")))?;
        }
        Ok(Runtime {
            inner: Arc::new(Inner {
                engine,
                action_linker,
                formatter_linker,
                cache,
                outbound: Arc::new(tokio::sync::Semaphore::new(config.max_outbound.max(1))),
                network: Arc::new(config.network.clone()),
                config,
                stop_ticker,
                warm,
            }),
        })
    }

    /// Outbound HTTP requests plugin runs have open now (all runs together).
    pub fn outbound_in_use(&self) -> usize {
        self.inner.config.max_outbound.max(1) - self.inner.outbound.available_permits()
    }

    /// Plugin instances kept idle between runs now (`limits.runs_per_instance`).
    pub fn idle_instances(&self) -> usize {
        self.inner.warm.len()
    }

    /// Drop every instance kept idle between runs; how many there were. The daemon
    /// calls it when a plugin is installed, removed or changed on another node, so a
    /// plugin installed again never meets its predecessor's state.
    pub fn drop_idle_instances(&self) -> usize {
        self.inner.warm.clear()
    }

    /// The wasmtime engine (for benchmarks and tools).
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }
}

/// A linker with what every world imports: WASI (preview 2) and Sundial's host
/// interface.
fn base_linker(engine: &Engine) -> wasmtime::Result<Linker<RunState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    bindings::action::sundial::plugin::host::add_to_linker::<RunState, HasSelf<RunState>>(
        &mut linker,
        |s| s,
    )?;
    Ok(linker)
}
