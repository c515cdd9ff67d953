//! Runtime overhead: instantiate + call + drop of the bundled `echo` plugin through
//! Sundial's runtime, beside the same component called through bare wasmtime, plus
//! loading a plugin with a cold and a warm compile cache.
//!
//! Run: `cargo bench -p sundial --bench runtime`

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use std::sync::Arc;
use sundial_core::grants::Grants;
use sundial_core::invocation::Invocation;
use sundial_core::limits::Limits;
use sundial_runtime::bindings::action::ActionPre;
use sundial_runtime::bindings::action::sundial::plugin::types as wit;
use sundial_runtime::{CacheOutcome, MemoryServices, PluginIdentity, Runtime, RuntimeConfig};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// Store data for the bare-wasmtime baseline: just WASI, nothing of Sundial.
struct Bare {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for Bare {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// One bare call on Sundial's engine: a new store with fuel and an epoch deadline (the
/// engine requires both), instantiate, call, drop.
async fn call_same_engine(
    engine: &Engine,
    pre: &ActionPre<Bare>,
    inv: &wit::Invocation,
) -> Result<String, wit::ActionError> {
    let mut store = Store::new(
        engine,
        Bare {
            wasi: WasiCtxBuilder::new().build(),
            table: ResourceTable::new(),
        },
    );
    store.set_fuel(u64::MAX).unwrap();
    store.set_epoch_deadline(u64::MAX / 2);
    let instance = pre.instantiate_async(&mut store).await.unwrap();
    instance.call_run(&mut store, inv).await.unwrap()
}

fn echo_call(c: &mut Criterion) {
    let echo = sundial::bundled::get("echo").expect("bundled echo");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let inv = Invocation::manual("bench", json!({"hello": "world", "n": 42}));
    let wit_inv = wit::Invocation::from(&inv);

    let mut group = c.benchmark_group("echo_instantiate_call_drop");

    // Sundial: the full per-run path (fresh store, WASI context, limits, log, report).
    let runtime = Runtime::new(RuntimeConfig {
        max_instances: 8,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let plugin = runtime.load(echo).unwrap();
    let identity = Arc::new(PluginIdentity {
        name: "echo".into(),
        grants: Grants::default(),
    });
    let services: Arc<MemoryServices> = Arc::new(MemoryServices::default());
    let limits = Limits::default();
    group.bench_function("sundial", |b| {
        b.to_async(&rt).iter(|| async {
            let report = runtime
                .run_action(&plugin, identity.clone(), &limits, services.clone(), &inv)
                .await;
            assert!(report.result.is_ok());
        })
    });

    // Bare wasmtime: default engine config, WASI linked, InstancePre, new Store per call.
    let engine = Engine::new(&Config::new()).unwrap();
    let component = Component::new(&engine, echo).unwrap();
    let mut linker: Linker<Bare> = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
    let pre = ActionPre::new(linker.instantiate_pre(&component).unwrap()).unwrap();
    group.bench_function("bare_wasmtime", |b| {
        b.to_async(&rt).iter(|| async {
            let mut store = Store::new(
                &engine,
                Bare {
                    wasi: WasiCtxBuilder::new().build(),
                    table: ResourceTable::new(),
                },
            );
            let instance = pre.instantiate_async(&mut store).await.unwrap();
            let out = instance.call_run(&mut store, &wit_inv).await.unwrap();
            assert!(out.is_ok());
        })
    });

    // Bare wasmtime on Sundial's own engine (pooling allocator, epochs, fuel): the same
    // machinery minus Sundial's layer (limits, log capture, grants, report).
    let engine = runtime.engine();
    let component = Component::new(engine, echo).unwrap();
    let mut linker: Linker<Bare> = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
    let pre = ActionPre::new(linker.instantiate_pre(&component).unwrap()).unwrap();
    group.bench_function("bare_wasmtime_same_engine", |b| {
        b.to_async(&rt).iter(|| async {
            let out = call_same_engine(engine, &pre, &wit_inv).await;
            assert!(out.is_ok());
        })
    });
    group.finish();

    // The two steps of a run Sundial adds around the call that are not store set-up:
    // the invocation made WIT (params serialized to text) and the output checked and
    // parsed (depth and duplicate keys, `sundial_core::json::parse`). Their sum is most
    // of the gap between `sundial` and `bare_wasmtime_same_engine`.
    let output = rt.block_on(call_same_engine(engine, &pre, &wit_inv)).unwrap();
    let mut group = c.benchmark_group("echo_host_steps");
    group.bench_function("invocation_to_wit", |b| {
        b.iter(|| wit::Invocation::from(std::hint::black_box(&inv)))
    });
    group.bench_function("output_parse", |b| {
        b.iter(|| sundial_core::json::parse_str(std::hint::black_box(&output)).unwrap())
    });
    group.bench_function("output_parse_serde_json", |b| {
        b.iter(|| serde_json::from_str::<serde_json::Value>(std::hint::black_box(&output)).unwrap())
    });
    group.finish();
}

fn load(c: &mut Criterion) {
    let echo = sundial::bundled::get("echo").expect("bundled echo");
    let dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(dir.path().to_path_buf()),
        max_instances: 2,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let mut group = c.benchmark_group("load_echo");
    group.sample_size(10);
    group.bench_function("cold_compile", |b| {
        b.iter(|| {
            for entry in std::fs::read_dir(dir.path()).unwrap() {
                std::fs::remove_file(entry.unwrap().path()).unwrap();
            }
            let p = runtime.load(echo).unwrap();
            assert_eq!(p.cache, CacheOutcome::Miss);
        })
    });
    runtime.load(echo).unwrap();
    group.bench_function("warm_cache", |b| {
        b.iter(|| {
            let p = runtime.load(echo).unwrap();
            assert_eq!(p.cache, CacheOutcome::Hit);
        })
    });
    group.finish();
}

criterion_group!(benches, echo_call, load);
criterion_main!(benches);
