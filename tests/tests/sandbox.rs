//! Hostile plugins against the real runtime: each one fails its own run with a clear,
//! typed error, and the same runtime then still runs a good plugin correctly.

use serde_json::{Value, json};
use sundial_core::grants::{Grants, HostPattern};
use sundial_core::invocation::{LoadError, RunError, RunReport};
use sundial_core::limits::{Limits, MIB};
use sundial_runtime::Runtime;
use sundial_tests::{Behaviour, error_message, http_server, load, run, runtime};

/// After any misbehaviour, echo must still work on the same runtime.
async fn assert_runtime_healthy(rt: &Runtime) {
    let echo = load(rt, "sundial-plugin-echo");
    let report = run(
        rt,
        &echo,
        Grants::default(),
        Limits::default(),
        json!({"still": "alive"}),
    )
    .await;
    let out = report.result.expect("echo works after a hostile run");
    assert_eq!(out["params"], json!({"still": "alive"}));
    assert_eq!(out["task"], "test-task");
}

async fn hostile(rt: &Runtime, limits: Limits, params: Value) -> sundial_core::invocation::RunReport<Value> {
    let plugin = load(rt, "sundial-fixture-hostile");
    run(rt, &plugin, Grants::default(), limits, params).await
}

/// Run the hostile fixture with `limits` and `params` on the shared runtime, then check
/// that echo still works there; the hostile run's report.
async fn hostile_then_healthy(limits: Limits, params: Value) -> sundial_core::invocation::RunReport<Value> {
    let rt = runtime(false);
    let report = hostile(&rt, limits, params).await;
    assert_runtime_healthy(&rt).await;
    report
}

/// [`hostile_then_healthy`] in `mode` with default limits: the run's error message,
/// which must be of `kind`.
async fn hostile_error(mode: &str, kind: &str) -> String {
    let report = hostile_then_healthy(Limits::default(), json!({ "mode": mode })).await;
    error_message(&report, kind)
}

#[tokio::test]
async fn infinite_loop_is_stopped_at_its_timeout() {
    let limits = Limits {
        timeout_ms: 300,
        ..Limits::default()
    };
    let report = hostile_then_healthy(limits, json!({"mode": "loop"})).await;
    let msg = error_message(&report, "timeout");
    assert!(msg.contains("300 ms"), "{msg}");
    assert!(report.resources.duration_us >= 300_000);
}

#[tokio::test]
async fn infinite_loop_is_stopped_by_fuel() {
    let limits = Limits {
        fuel: Some(5_000_000),
        ..Limits::default()
    };
    let report = hostile_then_healthy(limits, json!({"mode": "loop"})).await;
    error_message(&report, "fuel_exhausted");
    assert_eq!(report.resources.fuel_consumed, Some(5_000_000));
}

#[tokio::test]
async fn memory_bomb_is_stopped_at_its_cap() {
    let limits = Limits {
        memory_bytes: 32 * MIB,
        ..Limits::default()
    };
    let report = hostile_then_healthy(limits, json!({"mode": "membomb"})).await;
    let msg = error_message(&report, "memory_limit");
    assert!(msg.contains("32 MiB"), "{msg}");
    assert!(report.resources.peak_memory_bytes <= 32 * MIB);
    assert!(
        report.resources.peak_memory_bytes > 16 * MIB,
        "it did allocate up to the cap"
    );
}

#[tokio::test]
async fn panic_becomes_a_trap_with_the_panic_message() {
    let msg = hostile_error("panic", "trap").await;
    assert!(msg.contains("panicked"), "{msg}");
    assert!(
        msg.contains("boom: the hostile fixture panicked on purpose"),
        "{msg}"
    );
}

#[tokio::test]
async fn unreachable_trap_is_reported() {
    let msg = hostile_error("trap", "trap").await;
    assert!(msg.contains("unreachable"), "{msg}");
}

#[tokio::test]
async fn stack_overflow_is_reported() {
    let msg = hostile_error("stack", "trap").await;
    assert!(msg.starts_with("stack overflow"), "{msg}");
    // With big frames the shadow stack in linear memory runs out first.
    let msg = hostile_error("shadow-stack", "trap").await;
    assert!(msg.contains("out-of-bounds memory access"), "{msg}");
}

#[tokio::test]
async fn no_environment_files_or_sockets() {
    // SAFETY: single assignment of a test-only variable before the run reads nothing else.
    unsafe { std::env::set_var("SUNDIAL_TEST_SECRET_ENV", "must-not-leak") };
    let rt = runtime(true);
    // Live listeners on loopback (which this runtime allows for HTTP): a connection or
    // a datagram reaching them would be an escape, whatever the plugin reports.
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let params = json!({"mode": "escape", "tcp": tcp.local_addr().unwrap().to_string(),
                        "udp": udp.local_addr().unwrap().to_string()});
    let report = hostile(&rt, Limits::default(), params).await;
    tcp.set_nonblocking(true).unwrap();
    udp.set_nonblocking(true).unwrap();
    match tcp.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the plugin reached the TCP listener: {other:?}"),
    }
    let mut buf = [0u8; 64];
    match udp.recv_from(&mut buf) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the plugin reached the UDP socket: {other:?}"),
    }
    let out = report.result.expect("escape reports its attempts");
    assert_eq!(out["env"], json!([]), "no environment variables");
    assert_eq!(out["args"], json!([]), "no arguments");
    for key in ["read_root", "read_passwd", "write_file", "tcp", "udp"] {
        assert!(out[key].is_string(), "{key} must fail, got {}", out[key]);
    }
    assert!(report.resources.hosts_contacted.is_empty());
}

#[tokio::test]
async fn log_flood_is_truncated_and_flagged() {
    let limits = Limits {
        max_log_lines: 100,
        max_log_bytes: 64 * 1024,
        ..Limits::default()
    };
    // 8 MiB of log lines.
    let params = json!({"mode": "flood", "lines": 8192, "line_bytes": 1024});
    let report = hostile_then_healthy(limits, params).await;
    assert_eq!(report.result, Ok(json!("")));
    assert!(report.log.truncated);
    assert!(report.log.lines.len() <= 100);
    let kept: usize = report.log.lines.iter().map(|l| l.message.len()).sum();
    assert!(kept <= 64 * 1024, "kept {kept} bytes");
    assert!(report.log.dropped_lines > 8000);
}

#[tokio::test]
async fn huge_output_is_refused_and_flagged() {
    let limits = Limits {
        max_output_bytes: MIB,
        ..Limits::default()
    };
    let params = json!({"mode": "flood", "lines": 0, "output_bytes": 4 * MIB});
    let report = hostile_then_healthy(limits, params).await;
    let msg = error_message(&report, "output_too_large");
    assert!(report.result.as_ref().is_err_and(RunError::is_limit));
    assert!(msg.contains("1048576-byte limit"), "{msg}");
}

#[tokio::test]
async fn output_that_is_not_json_is_refused() {
    hostile_error("bad-output", "bad_output").await;
}

#[tokio::test]
async fn action_errors_keep_their_kind() {
    let rt = runtime(false);
    for (mode, kind) in [
        ("fail", "failed"),
        ("retryable", "retryable"),
        ("invalid", "invalid_params"),
    ] {
        let report = hostile(&rt, Limits::default(), json!({ "mode": mode })).await;
        assert_eq!(report.result.unwrap_err().kind(), kind, "mode {mode}");
    }
}

#[tokio::test]
async fn host_functions_are_denied_unless_granted() {
    let rt = runtime(false);
    let plugin = load(&rt, "sundial-fixture-hostile");
    let denied = run(
        &rt,
        &plugin,
        Grants::default(),
        Limits::default(),
        json!({"mode": "probe"}),
    )
    .await;
    let out = denied.result.expect("probe returns what happened");
    assert!(out["kv_set"].as_str().unwrap().contains("not granted"), "{out}");
    assert!(out["emit"].as_str().unwrap().contains("not granted"), "{out}");
    assert_eq!(out["secret"], Value::Null);
    assert!(denied.events.is_empty());

    let grants = Grants {
        kv: true,
        emit_events: true,
        secrets: vec!["token".into()],
        ..Grants::default()
    };
    let granted = run(&rt, &plugin, grants, Limits::default(), json!({"mode": "probe"})).await;
    let out = granted.result.expect("probe works");
    assert_eq!(out["kv_set"], "Ok(())");
    assert_eq!(out["kv_get"], "Ok(Some(\"41\"))");
    // The plugin read it (an ungranted secret reads as null); the host redacts the
    // value from everything the run returns.
    assert_eq!(out["secret"], "[redacted]");
    assert_eq!(out["emit"], "Ok(())");
    assert_eq!(granted.events.len(), 1);
    assert_eq!(granted.events[0].kind, "fixture.probed");
}

#[tokio::test]
async fn wrong_files_get_clear_load_errors() {
    let rt = runtime(false);
    assert!(matches!(
        rt.load(b"hello, I am a text file"),
        Err(LoadError::NotWasm)
    ));
    // The smallest valid core module: magic + version 1.
    assert!(matches!(rt.load(b"\0asm\x01\0\0\0"), Err(LoadError::CoreModule)));
    let mut truncated = std::fs::read(sundial_tests::wasm("sundial-plugin-echo")).unwrap();
    truncated.truncate(truncated.len() / 2);
    match rt.load(&truncated) {
        Err(LoadError::Invalid(msg)) => assert!(!msg.is_empty()),
        other => panic!("expected invalid, got {other:?}"),
    }
    // A formatter is loaded fine, but cannot be run as an action.
    let formatter = load(&rt, "sundial-plugin-json-formatter");
    assert_eq!(formatter.world, sundial_core::plugin::World::Formatter);
    let report = run(&rt, &formatter, Grants::default(), Limits::default(), json!({})).await;
    let msg = error_message(&report, "instantiate");
    assert!(msg.contains("expected an action plugin"), "{msg}");
    assert_runtime_healthy(&rt).await;
}

fn http_grants(pattern: &str) -> Grants {
    Grants {
        hosts: vec![HostPattern::parse(pattern).unwrap()],
        ..Grants::default()
    }
}

/// Run the http-request plugin on `rt` once: GET `url`, with hosts matching `pattern`
/// granted and these limits.
async fn http_request(rt: &Runtime, url: &str, pattern: &str, limits: Limits) -> RunReport<Value> {
    let plugin = load(rt, "sundial-plugin-http-request");
    run(rt, &plugin, http_grants(pattern), limits, json!({"url": url})).await
}

/// Whether the run logged a line containing every one of `parts`.
fn log_has(report: &RunReport<Value>, parts: &[&str]) -> bool {
    report
        .log
        .lines
        .iter()
        .any(|l| parts.iter().all(|p| l.message.contains(p)))
}

#[tokio::test]
async fn outbound_http_reaches_a_granted_loopback_host_when_allowed() {
    let addr = http_server(Behaviour::Ok).await;
    let rt = runtime(true);
    let url = format!("http://127.0.0.1:{}/hello?x=1", addr.port());
    let host = format!("127.0.0.1:{}", addr.port());
    let report = http_request(&rt, &url, &host, Limits::default()).await;
    let out = report.result.expect("request succeeds");
    assert_eq!(out["status"], 200);
    assert_eq!(out["json"]["path"], "/hello");
    assert_eq!(out["json"]["method"], "GET");
    assert!(out["json"]["idempotency_key"].is_string());
    assert_eq!(report.resources.hosts_contacted, vec![host]);
}

#[tokio::test]
async fn outbound_http_to_a_host_that_is_not_granted_is_denied() {
    let addr = http_server(Behaviour::Ok).await;
    let rt = runtime(true);
    let url = format!("http://127.0.0.1:{}/", addr.port());
    // Granted a different port only.
    let report = http_request(&rt, &url, "127.0.0.1:1", Limits::default()).await;
    // A denial is final: retrying cannot grant the host.
    let msg = error_message(&report, "failed");
    assert!(msg.contains("not granted"), "{msg}");
    assert!(log_has(&report, &["denied", "not granted"]));
    assert!(report.resources.hosts_contacted.is_empty());
    assert_runtime_healthy(&rt).await;
}

#[tokio::test]
async fn a_granted_name_resolving_to_loopback_is_refused_by_default() {
    let addr = http_server(Behaviour::Ok).await;
    let rt = runtime(false);
    let url = format!("http://localhost:{}/", addr.port());
    let report = http_request(&rt, &url, "localhost:*", Limits::default()).await;
    let msg = error_message(&report, "failed");
    assert!(msg.contains("prohibited"), "{msg}");
    assert!(
        log_has(&report, &["resolves to", "loopback"]),
        "{:?}",
        report.log.lines
    );
    assert!(report.resources.hosts_contacted.is_empty());
    assert_runtime_healthy(&rt).await;
}

#[tokio::test]
async fn time_blocked_in_a_host_call_counts_toward_the_timeout() {
    let addr = http_server(Behaviour::Hang).await;
    let rt = runtime(true);
    let url = format!("http://127.0.0.1:{}/slow", addr.port());
    let limits = Limits {
        timeout_ms: 500,
        ..Limits::default()
    };
    let host = format!("127.0.0.1:{}", addr.port());
    let report = http_request(&rt, &url, &host, limits).await;
    error_message(&report, "timeout");
    assert_runtime_healthy(&rt).await;
}

#[tokio::test]
async fn formatter_formats_a_delivery() {
    let rt = runtime(false);
    let plugin = load(&rt, "sundial-plugin-json-formatter");
    let delivery = sundial_core::invocation::Delivery {
        id: "d1".into(),
        webhook: "alerts".into(),
        attempt: 1,
        timestamp: "2026-11-27T10:00:00Z".into(),
        event: Some(sundial_core::invocation::Event {
            id: "e1".into(),
            kind: "sync.failed".into(),
            source: "/vm/1".into(),
            subject: Some("vm-1".into()),
            time: "2026-11-27T10:00:00Z".into(),
            data: json!({"error": "disk full"}),
        }),
        run: None,
        config: json!({}),
        template: None,
    };
    let identity = std::sync::Arc::new(sundial_runtime::PluginIdentity {
        name: "json".into(),
        grants: Grants::default(),
    });
    let services = std::sync::Arc::new(sundial_runtime::MemoryServices::default());
    let report = rt
        .run_formatter(&plugin, identity, &Limits::default(), services, &delivery)
        .await;
    let body = report.result.expect("formats");
    assert_eq!(body.content_type, "application/json");
    let doc: Value = serde_json::from_slice(&body.body).unwrap();
    assert_eq!(doc["event"]["type"], "sync.failed");
    assert_eq!(doc["event"]["data"]["error"], "disk full");
    assert_eq!(doc["webhook"], "alerts");
}

#[tokio::test]
async fn compiled_components_are_cached_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(sundial_tests::wasm("sundial-plugin-echo")).unwrap();
    let config = || sundial_runtime::RuntimeConfig {
        cache_dir: Some(dir.path().to_path_buf()),
        max_instances: 2,
        ..Default::default()
    };
    let first = Runtime::new(config()).unwrap();
    let cold = first.load(&bytes).unwrap();
    assert_eq!(cold.cache, sundial_runtime::CacheOutcome::Miss);
    drop(first);
    // A new runtime (as after a restart) loads the same bytes from the cache.
    let second = Runtime::new(config()).unwrap();
    let warm = second.load(&bytes).unwrap();
    assert_eq!(warm.cache, sundial_runtime::CacheOutcome::Hit);
    assert_eq!(cold.digest, warm.digest);
    let report = run(
        &second,
        &warm,
        Grants::default(),
        Limits::default(),
        json!({"cached": true}),
    )
    .await;
    assert_eq!(report.result.unwrap()["params"]["cached"], true);
    // A corrupted entry is discarded and recompiled, not trusted.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        std::fs::write(entry.unwrap().path(), b"garbage").unwrap();
    }
    let again = second.load(&bytes).unwrap();
    assert_eq!(again.cache, sundial_runtime::CacheOutcome::Miss);
}

/// A component built from the frozen `sundial:plugin@0.1.0` WIT
/// (`tests/fixtures/compat-0.1.0/wit`) keeps loading and running with every host call,
/// whatever becomes of `wit/`: the host's contract only grows compatibly.
#[tokio::test]
async fn a_plugin_built_against_the_0_1_0_contract_still_runs() {
    let rt = runtime(false);
    let plugin = load(&rt, "sundial-fixture-compat");
    assert_eq!(plugin.world, sundial_core::plugin::World::Action);
    assert!(
        plugin.imports.iter().any(|i| i == "sundial:plugin/host@0.1.0"),
        "{:?}",
        plugin.imports
    );
    let grants = Grants {
        kv: true,
        emit_events: true,
        secrets: vec!["token".into()],
        ..Grants::default()
    };
    let report = run(&rt, &plugin, grants.clone(), Limits::default(), json!({"n": 1})).await;
    let out = report.result.expect("the 0.1.0 plugin runs");
    assert_eq!(out["params"], json!({"n": 1}));
    assert_eq!(out["cause"], "manual");
    assert_eq!(
        out["kv"].as_str().map(str::len),
        Some(26),
        "the run id went through kv: {out}"
    );
    assert_eq!(
        out["secret"], "[redacted]",
        "the secret was read (and redacted from the output)"
    );
    assert_eq!(report.events.len(), 1);
    assert_eq!(report.events[0].kind, "compat.ran");
    assert!(
        report
            .log
            .lines
            .iter()
            .any(|l| l.message.contains("compat 0.1.0 plugin runs test-task"))
    );
    let report = run(&rt, &plugin, grants, Limits::default(), json!({"fail": true})).await;
    assert_eq!(report.result.unwrap_err().kind(), "invalid_params");
}

/// A runtime of its own, so no other test's runs share its kept instances; plugins
/// may reach loopback hosts when `allow_loopback`.
fn own_runtime_with(allow_loopback: bool) -> Runtime {
    Runtime::new(sundial_runtime::RuntimeConfig {
        max_instances: 8,
        network: sundial_core::grants::NetworkPolicy {
            allow_loopback,
            ..Default::default()
        },
        ..sundial_runtime::RuntimeConfig::default()
    })
    .expect("runtime")
}

fn own_runtime() -> Runtime {
    own_runtime_with(false)
}

fn reusing(runs: u32) -> Limits {
    Limits {
        runs_per_instance: runs,
        ..Limits::default()
    }
}

/// `count` on the hostile fixture: (the instance's count, whether it was kept).
async fn count(rt: &Runtime, plugin: &sundial_runtime::Plugin, limits: Limits) -> (u64, bool) {
    let report = run(rt, plugin, Grants::default(), limits, json!({"mode": "count"})).await;
    let reused = report.resources.reused_instance;
    let out = report.result.expect("count runs");
    (out["count"].as_u64().expect("a count"), reused)
}

#[tokio::test]
async fn every_run_gets_a_fresh_instance_by_default() {
    let rt = own_runtime();
    let plugin = load(&rt, "sundial-fixture-hostile");
    for _ in 0..3 {
        assert_eq!(count(&rt, &plugin, Limits::default()).await, (1, false));
    }
    assert_eq!(
        rt.idle_instances(),
        0,
        "nothing is kept without runs_per_instance"
    );
}

#[tokio::test]
async fn an_instance_serves_at_most_runs_per_instance_runs() {
    let rt = own_runtime();
    let plugin = load(&rt, "sundial-fixture-hostile");
    let mut seen = Vec::new();
    for _ in 0..7 {
        seen.push(count(&rt, &plugin, reusing(3)).await);
    }
    assert_eq!(
        seen,
        [
            (1, false),
            (2, true),
            (3, true),
            (1, false),
            (2, true),
            (3, true),
            (1, false)
        ]
    );
    assert_eq!(rt.idle_instances(), 1);
    assert_eq!(rt.drop_idle_instances(), 1);
    assert_eq!(count(&rt, &plugin, reusing(3)).await, (1, false));
}

#[tokio::test]
async fn an_instance_that_trapped_ran_out_or_timed_out_is_not_reused() {
    let rt = own_runtime();
    let plugin = load(&rt, "sundial-fixture-hostile");
    let limits = Limits {
        timeout_ms: 500,
        memory_bytes: 16 * MIB,
        ..reusing(100)
    };
    for (mode, kind) in [
        ("trap", "trap"),
        ("panic", "trap"),
        ("loop", "timeout"),
        ("membomb", "memory_limit"),
    ] {
        assert_eq!(count(&rt, &plugin, limits).await.0, 1, "before {mode}");
        assert_eq!(count(&rt, &plugin, limits).await, (2, true), "before {mode}");
        let report = run(&rt, &plugin, Grants::default(), limits, json!({"mode": mode})).await;
        assert!(
            report.resources.reused_instance,
            "{mode} ran on the kept instance"
        );
        error_message(&report, kind);
        assert_eq!(rt.idle_instances(), 0, "after {mode}");
        assert_eq!(count(&rt, &plugin, limits).await, (1, false), "after {mode}");
        rt.drop_idle_instances();
    }
    // An error the plugin returns is a clean return: the instance is kept.
    assert_eq!(count(&rt, &plugin, limits).await, (1, false));
    let report = run(&rt, &plugin, Grants::default(), limits, json!({"mode": "fail"})).await;
    error_message(&report, "failed");
    assert_eq!(count(&rt, &plugin, limits).await, (2, true));
}

#[tokio::test]
async fn an_instance_is_kept_only_for_the_same_plugin_grants_and_a_memory_cap_it_fits() {
    let rt = own_runtime();
    let plugin = load(&rt, "sundial-fixture-hostile");
    assert_eq!(count(&rt, &plugin, reusing(100)).await, (1, false));
    // Other grants: another identity, a fresh instance (the first stays idle).
    let granted = Grants {
        kv: true,
        ..Grants::default()
    };
    let report = run(
        &rt,
        &plugin,
        granted.clone(),
        reusing(100),
        json!({"mode": "count"}),
    )
    .await;
    assert_eq!(report.result.unwrap()["count"], 1);
    assert!(!report.resources.reused_instance);
    let report = run(&rt, &plugin, granted, reusing(100), json!({"mode": "count"})).await;
    assert_eq!(report.result.unwrap()["count"], 2);
    // Back to no grants: the first instance again.
    assert_eq!(count(&rt, &plugin, reusing(100)).await, (2, true));
    // Grow the kept instance's memory past 4 MiB, then cap a run at 2 MiB: the kept
    // instance does not fit, a fresh one does.
    let big = Limits {
        max_output_bytes: 8 << 20,
        ..reusing(100)
    };
    let flood = json!({"mode": "flood", "lines": 0, "output_bytes": 4 << 20});
    let report = run(&rt, &plugin, Grants::default(), big, flood).await;
    assert!(report.resources.reused_instance && report.result.is_ok());
    assert!(
        report.resources.peak_memory_bytes > 4 << 20,
        "{:?}",
        report.resources
    );
    let small = Limits {
        memory_bytes: 2 << 20,
        ..reusing(100)
    };
    assert_eq!(count(&rt, &plugin, small).await, (1, false));
    // The most recently used instance that fits goes first: the fresh one.
    assert_eq!(count(&rt, &plugin, reusing(100)).await, (2, true));
    // Another component: never an instance of this one.
    let echo = load(&rt, "sundial-plugin-echo");
    let report = run(&rt, &echo, Grants::default(), reusing(100), json!({"a": 1})).await;
    assert!(!report.resources.reused_instance);
    assert_eq!(report.result.unwrap()["params"], json!({"a": 1}));
}

#[tokio::test]
async fn an_instance_still_holding_an_outbound_connection_is_not_kept() {
    // A loopback listener that never accepts: the connection opens, no answer comes.
    let sink = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let authority = sink.local_addr().unwrap().to_string();
    let rt = own_runtime_with(true);
    let plugin = load(&rt, "sundial-fixture-hostile");
    let grants = http_grants(&authority);
    let count = |grants: Grants| {
        let (rt, plugin) = (rt.clone(), &plugin);
        async move {
            let r = run(&rt, plugin, grants, reusing(10), json!({"mode": "count"})).await;
            (
                r.result.expect("count")["count"].as_u64().unwrap(),
                r.resources.reused_instance,
            )
        }
    };
    assert_eq!(count(grants.clone()).await, (1, false));
    assert_eq!(count(grants.clone()).await, (2, true));
    let hold = run(
        &rt,
        &plugin,
        grants.clone(),
        reusing(10),
        json!({"mode": "hold", "authority": authority}),
    )
    .await;
    assert_eq!(hold.result.expect("hold runs")["holding"], true);
    assert!(hold.resources.reused_instance);
    assert_eq!(
        rt.idle_instances(),
        0,
        "the instance holding a connection was kept"
    );
    assert_eq!(count(grants).await, (1, false));
    // Dropping the instance aborts its connection's task; the runtime gets to it soon.
    for _ in 0..100 {
        if rt.outbound_in_use() == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        rt.outbound_in_use(),
        0,
        "the held connection outlived its instance"
    );
}

#[tokio::test]
async fn a_kept_instance_logs_into_the_current_run_and_earlier_secrets_stay_redacted() {
    let rt = own_runtime();
    let plugin = load(&rt, "sundial-fixture-hostile");
    let grants = Grants {
        secrets: vec!["token".into()],
        ..Grants::default()
    };
    let first = run(
        &rt,
        &plugin,
        grants.clone(),
        reusing(10),
        json!({"mode": "print", "text": "first run"}),
    )
    .await;
    assert!(first.result.is_ok());
    let second = run(
        &rt,
        &plugin,
        grants.clone(),
        reusing(10),
        json!({"mode": "print", "text": "second run"}),
    )
    .await;
    assert!(second.resources.reused_instance);
    let lines = |r: &RunReport<Value>| r.log.lines.iter().map(|l| l.message.clone()).collect::<Vec<_>>();
    assert_eq!(lines(&first), ["first run", "first run"], "{first:#?}");
    assert_eq!(lines(&second), ["second run", "second run"], "{second:#?}");

    // One run reads the secret and keeps it; the next only prints what it kept.
    let remember = run(
        &rt,
        &plugin,
        grants.clone(),
        reusing(10),
        json!({"mode": "remember"}),
    )
    .await;
    assert!(remember.resources.reused_instance && remember.result.is_ok());
    let recall = run(&rt, &plugin, grants, reusing(10), json!({"mode": "recall"})).await;
    assert!(recall.resources.reused_instance);
    let text = format!("{:?} {:?}", recall.result, recall.log);
    assert!(!text.contains("s3cret"), "a kept secret leaked: {text}");
    assert_eq!(lines(&recall).len(), 2);
    assert_eq!(recall.result.unwrap()["kept"], sundial_core::secret::REDACTED);
}

#[test]
fn runs_per_instance_is_validated() {
    for bad in [0, sundial_core::limits::MAX_RUNS_PER_INSTANCE + 1] {
        let err = reusing(bad).validate().unwrap_err();
        assert_eq!(err.field, "runs_per_instance", "{err}");
    }
    reusing(sundial_core::limits::MAX_RUNS_PER_INSTANCE)
        .validate()
        .unwrap();
}
