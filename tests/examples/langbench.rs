//! The same first plugin in Rust, Python and JavaScript, side by side (the figures of
//! `docs/plugins.md` and `docs/BENCHMARKS.md`). Builds the three `sundial plugin new`
//! templates with `sundial plugin build`, then for each:
//!
//! - component size, and compile time without any cache (`Runtime::load`);
//! - through a real daemon: the raw install (validated and compiled, answered 201),
//!   then the first run (`POST /v1/tasks/T/run?wait=true`), then `ROUNDS` more runs
//!   end to end; the daemon's RSS with the three installed and run;
//! - on the runtime alone (the daemon's engine configuration): `ROUNDS` warm
//!   instantiate + call + drop, p50 and p99, and the run's peak linear memory; then
//!   `ROUNDS` runs with `limits.runs_per_instance` 100 (an instance kept between runs).
//!
//! ```sh
//! cargo build --release -p sundial && cargo build --release -p sundial-tests --examples
//! target/release/examples/langbench [ROUNDS]    # default 2000
//! ```
//!
//! Narrowing it: `LANGBENCH_LANGS=python,js` picks templates, `LANGBENCH_RUNTIME_ONLY=1`
//! skips the daemon, `LANGBENCH_KEPT_ONLY=1` measures kept instances only (for a
//! profile of them), `LANGBENCH_WASM=name=path,...` measures more components beside the
//! templates, `LANGBENCH_AGING=N` prints how calls age over an instance's N runs.

use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use sundial_core::grants::Grants;
use sundial_core::invocation::Invocation;
use sundial_core::limits::{Limits, MIB};
use sundial_runtime::{MemoryServices, PluginIdentity, Runtime, RuntimeConfig};
use sundial_tests::daemon::Daemon;
use sundial_tests::{raw_http, rss_kib, sundial_bin, workspace_root};

fn build(dir: &Path, lang: &str) -> PathBuf {
    let name = format!("bench-{lang}");
    let deps = workspace_root().join("target/test-deps");
    let run = |cwd: &Path, args: &[&str]| {
        let out = Command::new(sundial_bin())
            .current_dir(cwd)
            .args(args)
            .env("SUNDIAL_TOOLCHAINS", deps.join("toolchains"))
            .env("CARGO_TARGET_DIR", deps.join("rust-plugins"))
            .output()
            .expect("run sundial");
        assert!(
            out.status.success(),
            "sundial {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(dir, &["plugin", "new", &name, "--lang", lang]);
    let project = dir.join(&name);
    run(&project, &["plugin", "build"]);
    project.join(format!("build/{name}.wasm"))
}

/// `limits.runs_per_instance` of the kept-instance figures.
const KEPT_RUNS: u32 = 100;

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// The mean time of a kept instance's calls by their position in the instance's life
/// (in tenths of it), over 20 instances: does a call get slower as its instance ages?
#[allow(clippy::too_many_arguments)]
fn aging(
    tokio: &tokio::runtime::Runtime,
    runtime: &Runtime,
    plugin: &sundial_runtime::Plugin,
    identity: &Arc<PluginIdentity>,
    services: &Arc<MemoryServices>,
    inv: &Invocation,
    limits: &Limits,
    lang: &str,
) {
    let per = limits.runs_per_instance as usize;
    let tenth = per.div_ceil(10);
    let mut sums = vec![Duration::ZERO; per.div_ceil(tenth)];
    for _ in 0..20 {
        for i in 0..per {
            let started = Instant::now();
            let report =
                tokio.block_on(runtime.run_action(plugin, identity.clone(), limits, services.clone(), inv));
            sums[i / tenth] += started.elapsed();
            assert!(
                report.result.is_ok() && (i == 0) != report.resources.reused_instance,
                "{lang}: run {i}"
            );
        }
    }
    let means: Vec<String> = sums
        .iter()
        .map(|s| format!("{:.3}", s.as_secs_f64() * 1000.0 / (20 * tenth) as f64))
        .collect();
    println!(
        "{lang} mean ms by tenths of an instance's {per} runs: {}",
        means.join(" ")
    );
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    let tmp = tempfile::tempdir().unwrap();
    let only = std::env::var("LANGBENCH_LANGS").unwrap_or_else(|_| "rust,python,js".into());
    let langs: Vec<&str> = ["rust", "python", "js"]
        .into_iter()
        .filter(|l| only.split(',').any(|o| o == *l))
        .collect();
    let mut built: Vec<(String, PathBuf)> = langs
        .iter()
        .map(|l| (l.to_string(), build(tmp.path(), l)))
        .collect();
    // LANGBENCH_WASM=name=path[,name=path]: more components to measure beside them (a
    // variant of a template, another toolchain's build of it).
    for extra in std::env::var("LANGBENCH_WASM").unwrap_or_default().split(',') {
        if let Some((name, path)) = extra.split_once('=') {
            built.push((name.to_string(), PathBuf::from(path)));
        }
    }

    // The runtime alone, configured as the daemon configures it.
    let runtime = Runtime::new(RuntimeConfig {
        max_instances: 16,
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    let limits = Limits {
        memory_bytes: 256 * MIB,
        ..Limits::default()
    };
    let tokio = tokio::runtime::Runtime::new().unwrap();
    println!("rounds: {rounds}");
    println!(
        "| | size | compile (no cache) | fresh instance p50 | p99 | instance kept ({KEPT_RUNS} runs) p50 | p99 | peak linear memory | compiled code |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (lang, wasm) in &built {
        let bytes = std::fs::read(wasm).unwrap();
        let started = Instant::now();
        let plugin = runtime.load(&bytes).expect("loads");
        let compile = started.elapsed();
        let identity = Arc::new(PluginIdentity {
            name: format!("bench-{lang}"),
            grants: Grants::default(),
        });
        let services = Arc::new(MemoryServices::default());
        let inv = Invocation::manual("bench", json!({"name": "Ada"}));
        // `rounds` runs after 50 that warm the pool's slots: (sorted times, peak memory).
        let measure = |limits: &Limits| {
            let mut times = Vec::with_capacity(rounds);
            let mut peak = 0;
            for i in 0..rounds + 50 {
                let started = Instant::now();
                let report = tokio.block_on(runtime.run_action(
                    &plugin,
                    identity.clone(),
                    limits,
                    services.clone(),
                    &inv,
                ));
                let took = started.elapsed();
                assert!(report.result.is_ok(), "{lang}: {:?}", report.result);
                peak = peak.max(report.resources.peak_memory_bytes);
                if i >= 50 {
                    times.push(took);
                }
            }
            times.sort();
            (times, peak)
        };
        // LANGBENCH_KEPT_ONLY=1 measures kept instances only (for a profile of them).
        let (fresh, peak) = match std::env::var_os("LANGBENCH_KEPT_ONLY") {
            Some(_) => (vec![Duration::ZERO], 0),
            None => measure(&limits),
        };
        let kept_limits = Limits {
            runs_per_instance: KEPT_RUNS,
            ..limits
        };
        // LANGBENCH_AGING=N: how calls age over an instance's N runs.
        if let Some(n) = std::env::var("LANGBENCH_AGING").ok().and_then(|n| n.parse().ok()) {
            let aged = Limits {
                runs_per_instance: n,
                ..limits
            };
            aging(&tokio, &runtime, &plugin, &identity, &services, &inv, &aged, lang);
        }
        let (kept, _) = measure(&kept_limits);
        println!(
            "| {lang} | {:.2} MB | {:.2} s | {:.3} ms | {:.3} ms | {:.3} ms | {:.3} ms | {:.1} MiB | {:.1} MB |",
            bytes.len() as f64 / 1e6,
            compile.as_secs_f64(),
            percentile(&fresh, 0.5),
            percentile(&fresh, 0.99),
            percentile(&kept, 0.5),
            percentile(&kept, 0.99),
            peak as f64 / MIB as f64,
            plugin.code_bytes as f64 / 1e6
        );
    }

    if std::env::var_os("LANGBENCH_RUNTIME_ONLY").is_some() {
        return;
    }
    // Through a daemon: install (compile included), first run, then warm runs.
    let data = tempfile::tempdir().unwrap();
    let d = Daemon::start(data.path(), &[]);
    std::thread::sleep(Duration::from_secs(2)); // the start's own warm-up
    let base_rss = rss_kib(d.pid());
    println!();
    println!("| | install (raw upload, compile) | first run after install | run end to end p50 | p99 |");
    println!("|---|---|---|---|---|");
    for (lang, wasm) in &built {
        let bytes = std::fs::read(wasm).unwrap();
        let name = format!("bench-{lang}");
        let headers = format!(
            "authorization: Bearer {}\r\ncontent-type: application/wasm\r\n",
            d.token
        );
        let started = Instant::now();
        let (status, body) = raw_http(
            &d.addr,
            "POST",
            &format!("/v1/plugins?name={name}&limits=%7B%22memory_bytes%22%3A268435456%7D"),
            &headers,
            &bytes,
        );
        let install = started.elapsed();
        assert_eq!(status, 201, "{body}");
        d.create(
            "/v1/tasks",
            json!({"name": name, "plugin": name, "params": {"name": "Ada"}}),
        );
        let started = Instant::now();
        let run = d.run_wait(&name, json!({"name": "Ada"}));
        let first = started.elapsed();
        assert_eq!(run["status"], "succeeded", "{run}");
        let mut times = Vec::new();
        for _ in 0..rounds.min(500) {
            let started = Instant::now();
            let run = d.run_wait(&name, json!({"name": "Ada"}));
            times.push(started.elapsed());
            assert_eq!(run["status"], "succeeded", "{run}");
        }
        times.sort();
        println!(
            "| {lang} | {:.2} s | {:.1} ms | {:.2} ms | {:.2} ms |",
            install.as_secs_f64(),
            first.as_secs_f64() * 1000.0,
            percentile(&times, 0.5),
            percentile(&times, 0.99)
        );
    }
    let rss = rss_kib(d.pid());
    println!();
    println!(
        "daemon RSS: {:.0} MiB after start, {:.0} MiB with the three installed and run ({:.0} MiB more)",
        base_rss as f64 / 1024.0,
        rss as f64 / 1024.0,
        (rss - base_rss) as f64 / 1024.0
    );
}
