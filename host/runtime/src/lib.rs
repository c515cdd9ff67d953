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
mod convert;
pub mod mail;
pub mod net;
mod outbound;
mod outcome;
pub mod services;
pub mod state;

pub use cache::{CacheOutcome, digest};
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

use bindings::action::sundial::plugin::types as wit;
use cache::CompileCache;
use log::{Level, Origin, SharedLog};
use outbound::OutboundHttp;
use outcome::{DeadlineExceeded, classify, preview, timeout_error};
use serde_json::Value;
use state::{Limiter, LogStream, RunState};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime::component::{Component, Linker, ResourceTable, types::ComponentItem};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, UpdateDeadline};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi_http::WasiHttpCtx;

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

/// The stack available to wasm code, in bytes (wasmtime's default, 512 KiB).
const MAX_WASM_STACK: usize = 512 * 1024;

impl Runtime {
    /// Build the engine, linkers and epoch ticker.
    pub fn new(config: RuntimeConfig) -> Result<Runtime, RuntimeError> {
        let err = |e: wasmtime::Error| RuntimeError(format!("{e:#}"));
        let n = config.max_instances.max(1);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(n)
            .total_core_instances(n.saturating_mul(8))
            .total_memories(n.saturating_mul(2))
            .total_tables(n.saturating_mul(8))
            .total_stacks(n)
            .max_memories_per_component(2)
            .max_core_instances_per_component(32)
            .max_tables_per_component(16)
            .max_memory_size(limits::MAX_MEMORY_BYTES as usize)
            // Reset only the pages a run dirtied (Linux 6.7+ PAGEMAP_SCAN; falls back to
            // memset of the kept-resident prefix elsewhere) and keep them mapped, so the
            // next run neither page-faults nor flushes TLBs for them.
            .pagemap_scan(wasmtime::Enabled::Auto)
            .linear_memory_keep_resident(4 << 20)
            .table_keep_resident(1 << 16);
        let mut wasm = Config::new();
        wasm.wasm_component_model(true)
            .epoch_interruption(true)
            .consume_fuel(config.fuel_metering)
            .max_wasm_stack(MAX_WASM_STACK)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&wasm).map_err(err)?;

        let mut action_linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut action_linker).map_err(err)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut action_linker).map_err(err)?;
        bindings::action::sundial::plugin::host::add_to_linker::<
            RunState,
            wasmtime::component::HasSelf<RunState>,
        >(&mut action_linker, |s| s)
        .map_err(err)?;
        bindings::action::sundial::plugin::mail::add_to_linker::<
            RunState,
            wasmtime::component::HasSelf<RunState>,
        >(&mut action_linker, |s| s)
        .map_err(err)?;
        let mut formatter_linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut formatter_linker).map_err(err)?;
        bindings::action::sundial::plugin::host::add_to_linker::<
            RunState,
            wasmtime::component::HasSelf<RunState>,
        >(&mut formatter_linker, |s| s)
        .map_err(err)?;

        let cache = match &config.cache_dir {
            Some(dir) => Some(
                CompileCache::open(dir, &engine)
                    .map_err(|e| RuntimeError(format!("compile cache {}: {e}", dir.display())))?,
            ),
            None => None,
        };

        let stop_ticker = Arc::new(AtomicBool::new(false));
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
        Ok(Runtime {
            inner: Arc::new(Inner {
                engine,
                action_linker,
                formatter_linker,
                cache,
                outbound: Arc::new(tokio::sync::Semaphore::new(config.max_outbound.max(1))),
                config,
                stop_ticker,
            }),
        })
    }

    /// Outbound HTTP requests plugin runs have open now (all runs together).
    pub fn outbound_in_use(&self) -> usize {
        self.inner.config.max_outbound.max(1) - self.inner.outbound.available_permits()
    }

    /// The wasmtime engine (for benchmarks and tools).
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// Read and [`load`](Self::load) a component file.
    pub fn load_file(&self, path: &std::path::Path) -> Result<Plugin, LoadError> {
        let bytes = std::fs::read(path).map_err(|e| LoadError::Io(format!("{}: {e}", path.display())))?;
        self.load(&bytes)
    }

    /// Validate, compile (or fetch from the compile cache) and pre-link a component.
    /// CPU-heavy on a cache miss: call it from a blocking context in async code.
    pub fn load(&self, bytes: &[u8]) -> Result<Plugin, LoadError> {
        let started = Instant::now();
        if !bytes.starts_with(b"\0asm") {
            return Err(LoadError::NotWasm);
        }
        if wasmparser::Parser::is_core_wasm(bytes) {
            return Err(LoadError::CoreModule);
        }
        let digest = digest(bytes);
        let engine = &self.inner.engine;
        let (component, cache) = match &self.inner.cache {
            Some(c) => c.load(engine, &digest, bytes),
            None => Component::new(engine, bytes).map(|c| (c, CacheOutcome::Disabled)),
        }
        .map_err(|e| LoadError::Invalid(format!("{e:#}")))?;

        let ty = component.component_type();
        let imports: Vec<String> = ty.imports(engine).map(|(name, _)| name.to_string()).collect();
        let export_items: Vec<(String, bool)> = ty
            .exports(engine)
            .map(|(name, item)| {
                (
                    name.to_string(),
                    matches!(item.ty, ComponentItem::ComponentFunc(_)),
                )
            })
            .collect();
        let exports: Vec<String> = export_items.iter().map(|(n, _)| n.clone()).collect();
        let has_func = |name: &str| export_items.iter().any(|(n, f)| n == name && *f);
        let world = if has_func("run") {
            World::Action
        } else if has_func("format") {
            World::Formatter
        } else {
            let list = if exports.is_empty() {
                "nothing".to_string()
            } else {
                exports.join(", ")
            };
            return Err(LoadError::UnknownWorld { exports: list });
        };
        let incompatible = |e: wasmtime::Error| LoadError::Incompatible {
            world: world.as_str(),
            reason: format!("{e:#}"),
        };
        let pre = match world {
            World::Action => {
                let ip = self
                    .inner
                    .action_linker
                    .instantiate_pre(&component)
                    .map_err(incompatible)?;
                Pre::Action(bindings::action::ActionPre::new(ip).map_err(incompatible)?)
            }
            World::Formatter => {
                let ip = self
                    .inner
                    .formatter_linker
                    .instantiate_pre(&component)
                    .map_err(incompatible)?;
                Pre::Formatter(bindings::formatter::FormatterPre::new(ip).map_err(incompatible)?)
            }
        };
        Ok(Plugin {
            digest,
            world,
            imports,
            exports,
            cache,
            load_time: started.elapsed(),
            pre,
        })
    }

    fn new_store(
        &self,
        identity: &Arc<PluginIdentity>,
        limits: &Limits,
        services: Arc<dyn HostServices>,
        log: SharedLog,
        contacted: Arc<Mutex<Vec<String>>>,
        deadline: Instant,
    ) -> Store<RunState> {
        let mut wasi = WasiCtxBuilder::new();
        // Deny by default: no args, env, preopened dirs, sockets or name lookups.
        wasi.stdout(LogStream {
            log: log.clone(),
            origin: Origin::Stdout,
        })
        .stderr(LogStream {
            log: log.clone(),
            origin: Origin::Stderr,
        })
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .socket_addr_check(|_, _| Box::pin(async { false }));
        // Host-side resources are bounded per run: how many (the table, and the
        // guest's handles to them) and how large a header map may grow.
        let mut table = ResourceTable::new();
        table.set_max_capacity(limits.max_resources as usize);
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(limits::MAX_FIELDS_BYTES);
        let state = RunState {
            wasi: wasi.build(),
            table,
            http,
            hooks: OutboundHttp {
                grants: Arc::new(identity.grants.clone()),
                policy: self.inner.config.network.clone(),
                log: log.clone(),
                contacted,
                run_connections: Arc::new(tokio::sync::Semaphore::new(limits.max_connections as usize)),
                max_run_connections: limits.max_connections,
                all_connections: self.inner.outbound.clone(),
                max_all_connections: self.inner.config.max_outbound,
            },
            limiter: Limiter::new(limits.memory_bytes),
            log,
            plugin: identity.clone(),
            services,
            events: Vec::new(),
            secrets_read: Vec::new(),
        };
        let mut store = Store::new(&self.inner.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.set_max_component_handles(limits.max_resources as usize);
        if self.inner.config.fuel_metering {
            // Cannot fail: fuel metering is on in this engine.
            let _ = store.set_fuel(limits.fuel.unwrap_or(u64::MAX));
        }
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                Err(wasmtime::Error::new(DeadlineExceeded))
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store
    }

    /// Run an action plugin once. Never panics on plugin behaviour.
    pub async fn run_action(
        &self,
        plugin: &Plugin,
        identity: Arc<PluginIdentity>,
        limits: &Limits,
        services: Arc<dyn HostServices>,
        invocation: &Invocation,
    ) -> RunReport<Value> {
        let input = wit::Invocation::from(invocation);
        let report = self
            .execute(
                plugin,
                identity,
                limits,
                services,
                Input::Action(&input),
                World::Action,
            )
            .await;
        let max = limits.max_output_bytes;
        map_report(report, |out| match out {
            Output::Action(Ok(text)) => {
                if text.len() as u64 > max {
                    return Err(RunError::OutputTooLarge(format!(
                        "output is {} bytes, over the {max}-byte limit (starts {:?})",
                        text.len(),
                        preview(&text)
                    )));
                }
                sundial_core::json::parse_str(&text).map_err(|e| {
                    RunError::BadOutput(format!("output is not accepted JSON ({e}): {:?}", preview(&text)))
                })
            }
            Output::Action(Err(e)) => Err(e.into()),
            Output::Formatter(_) => Err(RunError::Instantiate("internal: world mismatch".into())),
        })
    }

    /// Run a formatter plugin once. Never panics on plugin behaviour.
    pub async fn run_formatter(
        &self,
        plugin: &Plugin,
        identity: Arc<PluginIdentity>,
        limits: &Limits,
        services: Arc<dyn HostServices>,
        delivery: &Delivery,
    ) -> RunReport<HttpBody> {
        let input = wit::Delivery::from(delivery);
        let report = self
            .execute(
                plugin,
                identity,
                limits,
                services,
                Input::Formatter(&input),
                World::Formatter,
            )
            .await;
        let max = limits.max_output_bytes;
        map_report(report, |out| match out {
            Output::Formatter(Ok(b)) if b.body.len() as u64 > max => Err(RunError::OutputTooLarge(format!(
                "body is {} bytes, over the {max}-byte limit",
                b.body.len()
            ))),
            Output::Formatter(Ok(b)) => Ok(HttpBody {
                content_type: b.content_type,
                body: b.body,
                headers: b.headers,
            }),
            Output::Formatter(Err(e)) => Err(RunError::Failed(e)),
            Output::Action(_) => Err(RunError::Instantiate("internal: world mismatch".into())),
        })
    }

    async fn execute(
        &self,
        plugin: &Plugin,
        identity: Arc<PluginIdentity>,
        limits: &Limits,
        services: Arc<dyn HostServices>,
        input: Input<'_>,
        expected: World,
    ) -> RunReport<Output> {
        let log = SharedLog::new(limits.max_log_lines, limits.max_log_bytes);
        let contacted = Arc::new(Mutex::new(Vec::new()));
        let started = Instant::now();
        let deadline = started + limits.timeout();
        if plugin.world != expected {
            let err = RunError::Instantiate(
                LoadError::WrongWorld {
                    expected: expected.as_str(),
                    found: plugin.world.as_str(),
                }
                .to_string(),
            );
            return RunReport {
                result: Err(err),
                log: log.finish(),
                events: Vec::new(),
                resources: Resources::default(),
            };
        }
        let mut store = self.new_store(
            &identity,
            limits,
            services,
            log.clone(),
            contacted.clone(),
            deadline,
        );
        let call = call(&mut store, &plugin.pre, input);
        // The outer timeout also covers time blocked in host calls; a little slack
        // lets the epoch callback report guest-side timeouts itself.
        let outcome = tokio::time::timeout(limits.timeout() + Duration::from_millis(50), call).await;
        let duration = started.elapsed();
        let result = match outcome {
            Err(_elapsed) => Err(timeout_error(limits)),
            Ok(Ok(out)) => Ok(out),
            Ok(Err(e)) => Err(classify(&e, store.data(), limits, &log)),
        };
        if let Err(e) = &result {
            log.push(Level::Error, Origin::Host, &e.to_string());
        }
        let fuel_consumed = match (self.inner.config.fuel_metering, store.get_fuel()) {
            (true, Ok(left)) => Some(limits.fuel.unwrap_or(u64::MAX) - left),
            _ => None,
        };
        let state = store.data_mut();
        let mut events = std::mem::take(&mut state.events);
        let secrets = std::mem::take(&mut state.secrets_read);
        let resources = Resources {
            duration_us: duration.as_micros() as u64,
            peak_memory_bytes: state.limiter.peak as u64,
            fuel_consumed,
            hosts_contacted: contacted.lock().map(|c| c.clone()).unwrap_or_default(),
        };
        drop(store);
        let mut log = log.finish();
        let mut result = result;
        if !secrets.is_empty() {
            redact_report(&secrets, &mut result, &mut log, &mut events);
        }
        RunReport {
            result,
            log,
            events,
            resources,
        }
    }
}

/// Replace the secret values a run read wherever the run's results would show them:
/// log lines, error messages, an action's output and emitted events. A formatter's body
/// is left alone (putting a token into a payload is its job).
fn redact_report(
    secrets: &[String],
    result: &mut Result<Output, RunError>,
    log: &mut log::RunLog,
    events: &mut [EmittedEvent],
) {
    use sundial_core::secret::{REDACTED, redact};
    // In JSON text a value may appear escaped; redact that form too.
    let mut forms: Vec<String> = secrets.to_vec();
    for s in secrets {
        let escaped = serde_json::to_string(s).unwrap_or_default();
        let inner = escaped.trim_matches('"').to_string();
        if inner != *s {
            forms.push(inner);
        }
    }
    for line in &mut log.lines {
        line.message = redact(&line.message, &forms);
    }
    match result {
        Err(e) => *e = e.map_message(|m| redact(m, &forms)),
        Ok(Output::Action(Ok(out))) => *out = redact(out, &forms),
        Ok(Output::Action(Err(e))) => {
            let (wit::ActionError::InvalidParams(m)
            | wit::ActionError::Failed(m)
            | wit::ActionError::Retryable(m)) = e;
            *m = redact(m, &forms);
        }
        Ok(Output::Formatter(_)) => {}
    }
    for e in events {
        let text = redact(&e.data.to_string(), &forms);
        e.data = serde_json::from_str(&text).unwrap_or(Value::String(REDACTED.into()));
        if let Some(s) = &mut e.subject {
            *s = redact(s, &forms);
        }
    }
}

enum Input<'a> {
    Action(&'a wit::Invocation),
    Formatter(&'a wit::Delivery),
}

enum Output {
    Action(Result<String, wit::ActionError>),
    Formatter(Result<wit::HttpBody, String>),
}

async fn call(store: &mut Store<RunState>, pre: &Pre, input: Input<'_>) -> wasmtime::Result<Output> {
    match (pre, input) {
        (Pre::Action(pre), Input::Action(inv)) => {
            let instance = pre.instantiate_async(&mut *store).await?;
            Ok(Output::Action(instance.call_run(&mut *store, inv).await?))
        }
        (Pre::Formatter(pre), Input::Formatter(d)) => {
            let instance = pre.instantiate_async(&mut *store).await?;
            Ok(Output::Formatter(instance.call_format(&mut *store, d).await?))
        }
        _ => wasmtime::bail!("plugin world does not match the call"),
    }
}

fn map_report<T>(report: RunReport<Output>, f: impl FnOnce(Output) -> Result<T, RunError>) -> RunReport<T> {
    let RunReport {
        result,
        mut log,
        events,
        resources,
    } = report;
    let result = result.and_then(f);
    if let Err(e @ (RunError::OutputTooLarge(_) | RunError::BadOutput(_))) = &result {
        log.lines.push(log::LogLine {
            at_ms: resources.duration_us / 1000,
            level: Level::Error,
            origin: Origin::Host,
            message: e.to_string(),
        });
    }
    RunReport {
        result,
        log,
        events,
        resources,
    }
}
