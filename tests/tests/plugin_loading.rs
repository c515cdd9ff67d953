//! How the daemon gets plugins ready: raw `application/wasm` uploads (and every way one
//! can be wrong), the compile done at install serving the first run, the warm-up at
//! start compiling what the compile cache lacks (so no run waits for it), and the
//! bound on loaded plugins.

use serde_json::{Value, json};
use sundial_tests::daemon::Daemon;
use sundial_tests::{metric, raw_http, wait_until, wasm};

/// A daemon on `dir` with its own compile cache (`dir/cache`, set by environment), not
/// the suite's shared one: these tests count what is compiled and what is read from it.
fn start(dir: &std::path::Path, extra: &[&str]) -> Daemon {
    let cache = dir.join("cache").display().to_string();
    Daemon::start_with_env(dir, extra, &[("SUNDIAL_COMPILE_CACHE", &cache)])
}

/// POST the raw bytes to `/v1/plugins?QUERY` as `content_type`.
fn upload(d: &Daemon, query: &str, content_type: &str, body: &[u8]) -> (u16, Value) {
    let headers = format!(
        "authorization: Bearer {}\r\ncontent-type: {content_type}\r\n",
        d.token
    );
    let (status, text) = raw_http(&d.addr, "POST", &format!("/v1/plugins?{query}"), &headers, body);
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

#[test]
fn raw_wasm_upload_installs_and_bad_ones_get_precise_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path(), &[]);
    let bytes = std::fs::read(wasm("sundial-fixture-hello")).unwrap();
    let enc = |s: &str| sundial_core::address::percent_encode(s);

    let q = format!(
        "name=hello2&description={}&grants={}&limits={}",
        enc("raw upload"),
        enc(r#"{"kv": true, "hosts": ["api.example.com"]}"#),
        enc(r#"{"timeout_ms": 5000}"#)
    );
    let (status, p) = upload(&d, &q, "application/wasm", &bytes);
    assert_eq!(status, 201, "{p}");
    assert_eq!(
        (p["name"].as_str(), p["world"].as_str()),
        (Some("hello2"), Some("action")),
        "{p}"
    );
    assert_eq!(
        (p["grants"]["kv"].as_bool(), p["limits"]["timeout_ms"].as_u64()),
        (Some(true), Some(5000)),
        "{p}"
    );
    assert_eq!(p["description"], "raw upload");
    assert_eq!(p["size_bytes"], bytes.len());
    // It runs.
    d.create(
        "/v1/tasks",
        json!({"name": "raw", "plugin": "hello2", "params": {"name": "Raw"}}),
    );
    assert_eq!(d.run_wait("raw", json!({"name": "Raw"}))["status"], "succeeded");

    let cases: &[(&str, &str, &[u8], u16, &str)] = &[
        ("name=hello2", "application/wasm", &bytes, 409, "hello2"),
        ("", "application/wasm", &bytes, 400, "name"),
        (
            "name=x&grants=%7Bnot-json",
            "application/wasm",
            &bytes,
            400,
            "query grants",
        ),
        (
            "name=x&grants=%7B%22kv%22%3A%22yes%22%7D",
            "application/wasm",
            &bytes,
            400,
            "query grants",
        ),
        (
            "name=x&limits=%7B%22memory_bytes%22%3A1%7D",
            "application/wasm",
            &bytes,
            400,
            "limits.memory_bytes",
        ),
        (
            "name=x&limits=%7B%22runs_per_instance%22%3A0%7D",
            "application/wasm",
            &bytes,
            400,
            "limits.runs_per_instance",
        ),
        (
            "name=x&limits=%7B%22surprise%22%3A1%7D",
            "application/wasm",
            &bytes,
            400,
            "surprise",
        ),
        ("name=x&colour=red", "application/wasm", &bytes, 400, "colour"),
        ("name=Bad%20Name", "application/wasm", &bytes, 400, "name"),
        (
            "name=x",
            "application/wasm",
            b"not a component",
            400,
            "not a WebAssembly",
        ),
        ("name=x", "application/wasm", b"", 400, ""),
        ("name=x", "text/plain", &bytes, 415, "application/json"),
    ];
    for (query, ct, body, want, needle) in cases {
        let (status, v) = upload(&d, query, ct, body);
        assert_eq!(status, *want, "{query} {ct}: {v}");
        assert!(
            sundial_tests::message(&v).contains(needle),
            "{query} {ct}: expected {needle:?} in {v}"
        );
    }
    // Over the raw cap (256 MiB): 413, the daemon unharmed.
    let huge = vec![0u8; (256 << 20) + 1]; // MAX_PLUGIN_WASM_BYTES + 1
    let (status, v) = upload(&d, "name=huge", "application/wasm", &huge);
    assert_eq!(status, 413, "{v}");
    drop(huge);
    let (_, list) = d.call("GET", "/v1/plugins", None);
    let names: Vec<&str> = list["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(
        names.contains(&"hello2") && !names.contains(&"x") && !names.contains(&"huge"),
        "{names:?}"
    );
}

#[test]
fn the_first_run_after_install_loads_nothing_and_a_restart_warms_what_the_cache_lacks() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path(), &[]);
    d.install_ok("hello", "sundial-fixture-hello", json!({}));
    d.create(
        "/v1/tasks",
        json!({"name": "greet", "plugin": "hello", "params": {"name": "Ada"}}),
    );
    // Let the warm-up of this start finish, then count.
    wait_until("the start's warm-up ends", 60, || {
        d.stderr_text().contains("plugins warmed")
    });
    let before = (d.plugin_loads("compile"), d.plugin_loads("disk"));
    assert_eq!(d.run_wait("greet", json!({"name": "Ada"}))["status"], "succeeded");
    assert_eq!(
        (d.plugin_loads("compile"), d.plugin_loads("disk")),
        before,
        "the first run after install used the plugin compiled at install"
    );
    let plugins = d.expect(200, "GET", "/v1/plugins", None)["plugins"]
        .as_array()
        .unwrap()
        .len();

    // A restart with the compile cache gone (as after an upgrade, which changes the
    // engine's fingerprint): the warm-up compiles every plugin in the background, and
    // the first run finds its plugin loaded.
    d.kill9();
    std::fs::remove_dir_all(dir.path().join("cache")).unwrap();
    let d = start(dir.path(), &[]);
    wait_until("the warm-up compiled every plugin", 300, || {
        d.plugin_loads("compile") as usize >= plugins
    });
    let compiled = d.plugin_loads("compile");
    assert_eq!(d.run_wait("greet", json!({"name": "Bo"}))["status"], "succeeded");
    assert_eq!(
        d.plugin_loads("compile"),
        compiled,
        "the run compiled nothing more"
    );
    // Only what a task or webhook uses is loaded (`hello`); the bundled plugins nothing
    // uses were compiled into the disk cache, not into memory.
    wait_until("the restart's warm-up ends", 60, || {
        d.stderr_text().contains("plugins warmed")
    });
    let (_, text) = d.call("GET", "/metrics", None);
    let text = text.as_str().unwrap_or_default().to_string();
    assert_eq!(metric(&text, "sundial_plugins_loaded "), 1.0, "{text}");

    // A restart with the cache in place loads the used plugin from it: no compile at
    // all, and nothing else loaded.
    d.kill9();
    let d = start(dir.path(), &[]);
    wait_until("the warm-up ends", 120, || {
        d.stderr_text().contains("plugins warmed")
    });
    assert_eq!((d.plugin_loads("compile"), d.plugin_loads("disk")), (0.0, 1.0));
    // A plugin nothing used until now loads from the disk cache at its first run.
    d.create("/v1/tasks", json!({"name": "echoed", "plugin": "echo"}));
    assert_eq!(d.run_wait("echoed", json!({"x": 1}))["status"], "succeeded");
    assert_eq!((d.plugin_loads("compile"), d.plugin_loads("disk")), (0.0, 2.0));
}

/// A runtime compiling through `sh -c SCRIPT sh SETTINGS` (the settings are the last
/// argument, `$1` of the script), with its compile cache in `dir`.
fn child_runtime(dir: &std::path::Path, script: &str) -> sundial_runtime::Runtime {
    sundial_runtime::Runtime::new(sundial_runtime::RuntimeConfig {
        cache_dir: Some(dir.join("cache")),
        max_instances: 4,
        compiler: sundial_runtime::Compiler::Child {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into(), "sh".into()],
        },
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn plugins_compile_in_a_child_process_and_its_failures_are_the_loads_own() {
    let dir = tempfile::tempdir().unwrap();
    let bin = sundial_tests::sundial_bin();
    let marker = dir.path().join("compiled-by");
    let hello = std::fs::read(wasm("sundial-fixture-hello")).unwrap();

    // The real compiler process: it runs (the marker holds its pid, not this one's),
    // its code loads and runs here, and the compile cache keeps it.
    let runtime = child_runtime(
        dir.path(),
        &format!(
            "echo $$ > '{}'; exec '{}' compile-component \"$1\"",
            marker.display(),
            bin.display()
        ),
    );
    let plugin = runtime.load(&hello).unwrap();
    assert_eq!(plugin.cache, sundial_runtime::CacheOutcome::Miss);
    let pid: u32 = std::fs::read_to_string(&marker).unwrap().trim().parse().unwrap();
    assert_ne!(pid, std::process::id());
    let entries = std::fs::read_dir(dir.path().join("cache")).unwrap().count();
    assert_eq!(entries, 1, "the child's code went into the compile cache");
    assert_eq!(
        runtime.load(&hello).unwrap().cache,
        sundial_runtime::CacheOutcome::Hit
    );
    let report = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(sundial_tests::run(
            &runtime,
            &plugin,
            Default::default(),
            Default::default(),
            json!({"name": "Ada"}),
        ));
    assert!(report.result.is_ok(), "{:?}", report.result);

    // A component the compiler refuses: the child's reason, as an in-process compile
    // gives it.
    let mut broken = hello.clone();
    broken.truncate(broken.len() / 2);
    let child_err = runtime.load(&broken).unwrap_err().to_string();
    let in_process = sundial_runtime::Runtime::new(sundial_runtime::RuntimeConfig {
        max_instances: 4,
        ..Default::default()
    })
    .unwrap();
    let own_err = in_process.load(&broken).unwrap_err().to_string();
    assert!(child_err.starts_with("invalid component: "), "{child_err}");
    assert_eq!(child_err, own_err.replace('\n', " "));

    // A component over a pool limit is refused by the child itself (exit 3), with the
    // in-process compile's reason, not compiled again here.
    let dir5 = tempfile::tempdir().unwrap();
    let status = dir5.path().join("status");
    let tight = sundial_runtime::PoolLimits {
        core_instances: 1,
        ..Default::default()
    };
    let over_limit = sundial_runtime::Runtime::new(sundial_runtime::RuntimeConfig {
        cache_dir: Some(dir5.path().join("cache")),
        max_instances: 4,
        pool: tight,
        compiler: sundial_runtime::Compiler::Child {
            program: "/bin/sh".into(),
            args: vec![
                "-c".into(),
                format!(
                    "'{}' compile-component \"$1\"; s=$?; echo $s > '{}'; exit $s",
                    bin.display(),
                    status.display()
                )
                .into(),
                "sh".into(),
            ],
        },
        ..Default::default()
    })
    .unwrap();
    let child_err = over_limit.load(&hello).unwrap_err();
    assert_eq!(std::fs::read_to_string(&status).unwrap().trim(), "3");
    let own_err = sundial_runtime::Runtime::new(sundial_runtime::RuntimeConfig {
        max_instances: 4,
        pool: tight,
        ..Default::default()
    })
    .unwrap()
    .load(&hello)
    .unwrap_err();
    assert!(!child_err.is_transient(), "{child_err}");
    assert_eq!(child_err.to_string(), own_err.to_string().replace('\n', " "));

    // A compiler killed (as by the OOM killer) fails the load, as a failure that may
    // pass (not the component's); the host goes on.
    let dir2 = tempfile::tempdir().unwrap();
    let killed = child_runtime(dir2.path(), "kill -9 $$");
    let err = killed.load(&hello).unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("ended by signal 9"), "{err}");
    let err = killed.precompile(&hello).unwrap_err().to_string();
    assert!(err.contains("ended by signal 9"), "{err}");

    // One that exits without an answer fails the load too, saying how it ended.
    let err = child_runtime(dir2.path(), "exit 7").load(&hello).unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(
        err.to_string()
            .contains("the compiler process failed (exit status: 7)"),
        "{err}"
    );
    // The real compiler given settings it cannot read fails the same way (exit 1),
    // never as a refusal of the component.
    let err = child_runtime(
        dir2.path(),
        &format!("exec '{}' compile-component fuel=1", bin.display()),
    )
    .load(&hello)
    .unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("instances is missing"), "{err}");

    // A compiler that answers something that is not this engine's code, and one that
    // cannot be started: the compile runs in this process instead.
    let dir4 = tempfile::tempdir().unwrap();
    let garbage = child_runtime(dir4.path(), "cat > /dev/null; echo not-code");
    assert_eq!(
        garbage.load(&hello).map(|p| p.cache).map_err(|e| e.to_string()),
        Ok(sundial_runtime::CacheOutcome::Miss)
    );
    let dir3 = tempfile::tempdir().unwrap();
    let missing = sundial_runtime::Runtime::new(sundial_runtime::RuntimeConfig {
        cache_dir: Some(dir3.path().join("cache")),
        max_instances: 4,
        compiler: sundial_runtime::Compiler::Child {
            program: dir3.path().join("no-such-program"),
            args: vec![],
        },
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        missing.precompile(&hello).map_err(|e| e.to_string()),
        Ok(sundial_runtime::CacheOutcome::Miss)
    );
    assert_eq!(
        missing.precompile(&hello).map_err(|e| e.to_string()),
        Ok(sundial_runtime::CacheOutcome::Hit)
    );
}

#[test]
fn loaded_plugins_stay_under_plugin_memory() {
    let dir = tempfile::tempdir().unwrap();
    // 16 MiB holds a few small plugins, not every bundled one with the fixtures.
    let d = start(dir.path(), &["--plugin-memory", "16MiB"]);
    d.install_ok("hello", "sundial-fixture-hello", json!({}));
    d.install_ok("hostile", "sundial-fixture-hostile", json!({}));
    d.create(
        "/v1/tasks",
        json!({"name": "greet", "plugin": "hello", "params": {"name": "Ada"}}),
    );
    for _ in 0..3 {
        assert_eq!(d.run_wait("greet", json!({"name": "Ada"}))["status"], "succeeded");
    }
    let (_, text) = d.call("GET", "/metrics", None);
    let text = text.as_str().unwrap_or_default().to_string();
    let bytes = metric(&text, "sundial_plugins_loaded_bytes ");
    assert!(bytes > 0.0 && bytes <= (16 << 20) as f64, "{text}");
    // A bad value is refused at start, naming the knob.
    let other = tempfile::tempdir().unwrap();
    let e = Daemon::try_start(other.path(), &["--plugin-memory", "1KiB"], &[])
        .err()
        .unwrap_or_default();
    assert!(e.contains("plugin_memory"), "{e}");
}

/// `limits.runs_per_instance` through the API: the daemon keeps the plugin's instance
/// for that many runs (its memory shows it), a task's own runs included, and a run
/// record says when its instance was kept.
#[test]
fn a_plugin_installed_with_runs_per_instance_keeps_its_instance_that_long() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path(), &[]);
    let bytes = std::fs::read(wasm("sundial-fixture-hostile")).unwrap();
    let (status, p) = upload(
        &d,
        "name=counter&limits=%7B%22runs_per_instance%22%3A3%7D",
        "application/wasm",
        &bytes,
    );
    assert_eq!(status, 201, "{p}");
    assert_eq!(p["limits"]["runs_per_instance"], 3, "{p}");
    d.create(
        "/v1/tasks",
        json!({"name": "count", "plugin": "counter", "params": {"mode": "count"}}),
    );
    let mut seen = Vec::new();
    for _ in 0..4 {
        let run = d.run_wait("count", json!({"mode": "count"}));
        assert_eq!(run["status"], "succeeded", "{run}");
        seen.push((
            run["output"]["count"].as_u64().unwrap_or(0),
            run["resources"]["reused_instance"].as_bool().unwrap_or(false),
        ));
    }
    assert_eq!(seen, [(1, false), (2, true), (3, true), (1, false)]);
    let (_, text) = d.call("GET", "/metrics", None);
    let text = text.as_str().map(str::to_string).unwrap_or_default();
    assert_eq!(metric(&text, "sundial_plugin_instances_idle "), 1.0, "{text}");
    // A trap drops the instance: the next run starts again at 1.
    let run = d.run_wait("count", json!({"mode": "trap"}));
    assert_eq!(run["status"], "failed", "{run}");
    let run = d.run_wait("count", json!({"mode": "count"}));
    assert_eq!(run["output"]["count"], 1, "{run}");
    let run = d.run_wait("count", json!({"mode": "count"}));
    assert_eq!(run["output"]["count"], 2, "{run}");
    // Installing a plugin drops every kept instance: no earlier install's state survives.
    let hello = std::fs::read(wasm("sundial-fixture-hello")).unwrap();
    assert_eq!(upload(&d, "name=other", "application/wasm", &hello).0, 201);
    let run = d.run_wait("count", json!({"mode": "count"}));
    assert_eq!(run["output"]["count"], 1, "{run}");
}

#[test]
fn a_compile_cache_that_is_not_a_directory_stops_the_start_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-directory");
    std::fs::write(&file, b"x").unwrap();
    let data = dir.path().join("data");
    let path = file.display().to_string();
    let log = Daemon::try_start(&data, &["--compile-cache", &path], &[])
        .err()
        .expect("the daemon started with a file as its compile cache");
    assert!(log.contains(&format!("compile cache {path}")), "{log}");
    assert_eq!(std::fs::read(&file).unwrap(), b"x", "the file was changed");
}
