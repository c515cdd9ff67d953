//! `sundial plugin run` / `plugin inspect` through the real binary: output, log lines
//! and exit codes (0 ok, 1 plugin error, 2 usage or invalid component, 3 limit).

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};
use sundial_tests::{Behaviour, http_server, items, sundial_bin, wasm};

fn sundial(args: &[&str]) -> Output {
    let cache = std::env::temp_dir().join(format!("sundial-cli-test-cache-{}", std::process::id()));
    Command::new(sundial_bin())
        .args(args)
        .env("SUNDIAL_CACHE_DIR", &cache)
        .output()
        .expect("run sundial")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn path(package: &str) -> String {
    wasm(package).display().to_string()
}

#[test]
fn bundled_echo_runs_by_name() {
    let out = sundial(&[
        "plugin",
        "run",
        "echo",
        "--params",
        r#"{"hello":"world"}"#,
        "--task",
        "demo",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["params"]["hello"], "world");
    assert_eq!(json["task"], "demo");
    assert_eq!(json["cause"], "manual");
}

#[test]
fn event_is_passed_to_the_plugin() {
    let out = sundial(&[
        "plugin",
        "run",
        "echo",
        "--event",
        r#"{"type":"user.created","subject":"ada","data":{"id":7}}"#,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["cause"], "event");
    assert_eq!(json["event"]["type"], "user.created");
    assert_eq!(json["event"]["subject"], "ada");
    assert_eq!(json["event"]["data"]["id"], 7);
    let bad = sundial(&["plugin", "run", "echo", "--event", r#"{"data":1}"#]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("missing field `type`"),
        "{}",
        text(&bad.stderr)
    );
}

#[test]
fn the_guide_plugin_is_under_30_lines_and_works() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let source = std::fs::read_to_string(root.join("tests/fixtures/hello/src/lib.rs")).unwrap();
    assert!(
        source.lines().count() < 30,
        "the guide's plugin must stay under 30 lines"
    );
    let guide = std::fs::read_to_string(root.join("docs/plugins.md")).unwrap();
    assert!(
        guide.contains(&source),
        "docs/plugins.md must show tests/fixtures/hello/src/lib.rs verbatim"
    );

    let out = sundial(&[
        "plugin",
        "run",
        &path("sundial-fixture-hello"),
        "--params",
        r#"{"name":"Ada"}"#,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["greeting"], "Hello, Ada!");
    assert!(
        text(&out.stderr).contains("greets Ada"),
        "plugin log goes to stderr"
    );

    let missing = sundial(&["plugin", "run", &path("sundial-fixture-hello"), "--params", "{}"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        text(&missing.stderr).contains("invalid params: params: missing field `name`"),
        "{}",
        text(&missing.stderr)
    );
}

#[test]
fn limits_exit_with_3() {
    let hostile = path("sundial-fixture-hostile");
    for (params, limit, needle) in [
        (r#"{"mode":"loop"}"#, ["--timeout", "200ms"], "timed out"),
        (r#"{"mode":"membomb"}"#, ["--memory", "16MiB"], "memory limit"),
        (r#"{"mode":"loop"}"#, ["--fuel", "1000000"], "fuel exhausted"),
    ] {
        let out = sundial(&["plugin", "run", &hostile, "--params", params, limit[0], limit[1]]);
        assert_eq!(out.status.code(), Some(3), "{params} {limit:?}");
        assert!(text(&out.stderr).contains(needle), "{}", text(&out.stderr));
    }

    let out = sundial(&[
        "plugin",
        "run",
        &hostile,
        "--params",
        r#"{"mode":"flood","lines":4000,"output_bytes":3000000}"#,
    ]);
    assert_eq!(out.status.code(), Some(3));
    let err = text(&out.stderr);
    assert!(err.contains("output too large"), "{err}");
    assert!(err.contains("log truncated"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn plugin_errors_and_traps_exit_with_1() {
    let hostile = path("sundial-fixture-hostile");
    for (mode, needle) in [
        ("panic", "boom: the hostile fixture panicked on purpose"),
        ("trap", "unreachable"),
        ("stack", "stack overflow"),
        ("fail", "it failed on purpose"),
    ] {
        let params = format!(r#"{{"mode":"{mode}"}}"#);
        let out = sundial(&["plugin", "run", &hostile, "--params", &params]);
        assert_eq!(out.status.code(), Some(1), "mode {mode}");
        assert!(
            text(&out.stderr).contains(needle),
            "mode {mode}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn bad_components_and_usage_exit_with_2() {
    let dir = tempfile::tempdir().unwrap();
    let not_wasm = dir.path().join("notes.wasm");
    std::fs::write(&not_wasm, "just text").unwrap();
    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec![not_wasm.display().to_string()], "not a WebAssembly file"),
        (
            vec![core.display().to_string()],
            "core WebAssembly module, not a component",
        ),
        (
            vec![path("sundial-plugin-json-formatter")],
            "is a formatter plugin",
        ),
        (vec!["no-such-plugin".into()], "not a bundled plugin"),
        (
            vec!["echo".into(), "--params".into(), "{nope".into()],
            "--params is not JSON",
        ),
        (
            vec!["echo".into(), "--allow-host".into(), "ftp://x.io".into()],
            "only http:// and https://",
        ),
        (
            vec!["echo".into(), "--timeout".into(), "0ms".into()],
            "timeout_ms",
        ),
        (
            vec!["echo".into(), "--secret".into(), "novalue".into()],
            "expected NAME=VALUE",
        ),
    ];
    for (extra, needle) in cases {
        let mut args = vec!["plugin".to_string(), "run".to_string()];
        args.extend(extra.clone());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = sundial(&refs);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains(needle),
            "{extra:?}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn inspect_prints_world_imports_and_digest() {
    let file = wasm("sundial-plugin-http-request");
    let out = sundial(&["plugin", "inspect", &file.display().to_string(), "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["world"], "action");
    let digest = sundial_core::hash::digest(&std::fs::read(&file).unwrap());
    assert_eq!(json["digest"], format!("sha256:{digest}"));
    let imports: Vec<&str> = items(&json["imports"]).iter().filter_map(Value::as_str).collect();
    assert!(
        imports
            .iter()
            .any(|i| i.starts_with("wasi:http/outgoing-handler@0.2")),
        "{imports:?}"
    );

    let out = sundial(&["plugin", "inspect", "json"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stdout).contains("world:   sundial:plugin/formatter@0.1.0"),
        "{}",
        text(&out.stdout)
    );
}

#[tokio::test]
async fn http_request_reaches_an_allowed_loopback_server() {
    let addr = http_server(Behaviour::Ok).await;
    let url = format!("http://127.0.0.1:{}/ping", addr.port());
    let grant = format!("127.0.0.1:{}", addr.port());
    let params = serde_json::json!({ "url": url }).to_string();
    let run = |extra: &'static [&'static str]| {
        let (params, grant) = (params.clone(), grant.clone());
        tokio::task::spawn_blocking(move || {
            let mut args = vec![
                "plugin",
                "run",
                "http-request",
                "--params",
                &params,
                "--allow-host",
                &grant,
            ];
            args.extend_from_slice(extra);
            sundial(&args)
        })
    };
    let out = run(&["--allow-loopback"]).await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["status"], 200);
    assert_eq!(json["json"]["path"], "/ping");
    // Without --allow-loopback the same granted address is refused, and the message
    // names the setting that would allow it.
    let out = run(&[]).await.unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("loopback: allowed by allow_loopback or an allow_ranges entry"),
        "{}",
        text(&out.stderr)
    );
}
