//! Plugins in Python and JavaScript, end to end with the real toolchains: a project
//! from `sundial plugin new --lang python|js`, built by `sundial plugin build`
//! (componentize-py, ComponentizeJS; installed on first use into
//! `target/test-deps/toolchains` and the project's `node_modules`), the template's own
//! test run as its author would, then the source swapped for
//! `tests/fixtures/polyglot/{app.py,index.js}` (one operation per `op` parameter),
//! installed from its manifest with `sundial plugin install` and run through the real
//! daemon: params and output, log lines, KV, a secret, an emitted event that starts
//! another run, HTTP to a loopback server (granted) and to one that is not, each error
//! kind, and the memory and time limits.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use sundial_tests::daemon::Daemon;
use sundial_tests::{Answer, serve_http, sundial_bin, wait_until, workspace_root};

/// Where `sundial plugin build` installs toolchains for these tests.
fn toolchains() -> PathBuf {
    workspace_root().join("target/test-deps/toolchains")
}

/// Where Rust plugin projects build (kept between test runs, apart from the
/// workspace's own target directory, which the running `cargo test` holds).
fn rust_target() -> PathBuf {
    workspace_root().join("target/test-deps/rust-plugins")
}

/// `sundial ARGS` in `dir`, with the tests' toolchain folder.
fn sundial(dir: &Path, args: &[&str]) -> Output {
    Command::new(sundial_bin())
        .current_dir(dir)
        .args(args)
        .env("SUNDIAL_TOOLCHAINS", toolchains())
        .env("CARGO_TARGET_DIR", rust_target())
        .output()
        .expect("run sundial")
}

fn text(out: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[track_caller]
fn ok(out: Output, what: &str) -> Output {
    assert!(out.status.success(), "{what}: {}", text(&out));
    out
}

/// A built project of one language, with what its template's own test printed.
struct Project {
    lang: &'static str,
    dir: PathBuf,
    wasm: PathBuf,
    template_test: Output,
    /// Keeps the folder alive for the whole test process.
    _tmp: tempfile::TempDir,
}

/// The project of `lang`, made and built once per test process (the first build
/// installs the toolchain).
fn project(lang: &'static str) -> &'static Project {
    static PYTHON: OnceLock<Project> = OnceLock::new();
    static JS: OnceLock<Project> = OnceLock::new();
    static RUST: OnceLock<Project> = OnceLock::new();
    let cell = match lang {
        "python" => &PYTHON,
        "rust" => &RUST,
        _ => &JS,
    };
    cell.get_or_init(|| make(lang))
}

fn make(lang: &'static str) -> Project {
    let tmp = tempfile::tempdir().unwrap();
    let name = format!("poly-{lang}");
    ok(
        sundial(tmp.path(), &["plugin", "new", &name, "--lang", lang]),
        "plugin new",
    );
    let dir = tmp.path().join(&name);
    ok(sundial(&dir, &["plugin", "build"]), "plugin build (template)");
    let wasm = dir.join(format!("build/{name}.wasm"));
    // The template's own test, as its author runs it.
    let mut test = match lang {
        "python" => {
            let mut c = Command::new("python3");
            c.args(["-m", "unittest", "-v"]);
            c
        }
        "rust" => {
            let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
            c.args(["test"]).env("CARGO_TARGET_DIR", rust_target());
            c
        }
        _ => {
            let mut c = Command::new("npm");
            c.args(["test", "--silent"]);
            c
        }
    };
    let template_test = test
        .current_dir(&dir)
        .env("SUNDIAL", sundial_bin())
        .output()
        .expect("run the template's test");
    if lang == "rust" {
        // The Rust SDK has its own tests; the template is what is checked here.
        return Project {
            lang,
            dir,
            wasm,
            template_test,
            _tmp: tmp,
        };
    }
    // Then the fixture's source in place of the template's, built again.
    let fixtures = workspace_root().join("tests/fixtures/polyglot");
    let (from, to) = match lang {
        "python" => ("app.py", "app.py"),
        _ => ("index.js", "src/index.js"),
    };
    std::fs::copy(fixtures.join(from), dir.join(to)).unwrap();
    ok(sundial(&dir, &["plugin", "build"]), "plugin build (fixture)");
    Project {
        lang,
        dir,
        wasm,
        template_test,
        _tmp: tmp,
    }
}

/// Every file of `dir` (relative path, bytes), sorted.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap().display().to_string();
                out.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// The TypeScript types committed in `sdk/js/types` are what the pinned jco generates
/// from `wit/` now: a change to the contract must regenerate them.
#[test]
fn js_types_are_generated_from_the_current_wit() {
    let p = project("js");
    let out = tempfile::tempdir().unwrap();
    let root = workspace_root();
    for world in ["action", "formatter"] {
        let status = Command::new(p.dir.join("node_modules/.bin/jco"))
            .args(["types", root.join("wit").to_str().unwrap(), "-n", world, "-o"])
            .arg(out.path())
            .output()
            .unwrap();
        assert!(status.status.success(), "jco types: {}", text(&status));
    }
    let generated = files(out.path());
    let committed = files(&root.join("sdk/js/types"));
    let names = |f: &[(String, Vec<u8>)]| f.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&generated), names(&committed));
    for ((name, new), (_, old)) in generated.iter().zip(&committed) {
        assert!(
            new == old,
            "sdk/js/types/{name} is stale: regenerate with `jco types wit -n action|formatter -o sdk/js/types`"
        );
    }
}

fn template_builds_and_its_own_test_passes(lang: &'static str) {
    let p = project(lang);
    assert!(
        p.template_test.status.success(),
        "{lang} template test: {}",
        text(&p.template_test)
    );
    let out = String::from_utf8_lossy(&p.template_test.stdout).to_string()
        + &String::from_utf8_lossy(&p.template_test.stderr);
    // Both of its tests ran (unittest, node:test and cargo name them).
    for name in ["greets", "refuses"] {
        assert!(
            out.contains(name),
            "{lang}: the template test {name:?} did not run:\n{out}"
        );
    }
    let inspect = ok(
        sundial(&p.dir, &["plugin", "inspect", p.wasm.to_str().unwrap(), "--json"]),
        "inspect",
    );
    let doc: Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(doc["world"], "action", "{doc}");
}

#[test]
fn python_template_builds_and_its_own_test_passes() {
    template_builds_and_its_own_test_passes("python");
}

#[test]
fn js_template_builds_and_its_own_test_passes() {
    template_builds_and_its_own_test_passes("js");
    // jco 1.34 asks for ComponentizeJS ^0.22: without the template's npm override it
    // runs a nested 0.22, whose import calls cost ~0.09 ms each (docs/BENCHMARKS.md).
    let modules = project("js").dir.join("node_modules/@bytecodealliance");
    let nested = modules.join("jco/node_modules/@bytecodealliance/componentize-js/package.json");
    let used = match nested.exists() {
        true => nested,
        false => modules.join("componentize-js/package.json"),
    };
    let manifest: Value = serde_json::from_slice(&std::fs::read(&used).unwrap()).unwrap();
    assert_eq!(
        manifest["version"],
        "0.23.0",
        "the ComponentizeJS jco runs: {}",
        used.display()
    );
}

#[test]
fn rust_template_builds_and_its_own_test_passes() {
    template_builds_and_its_own_test_passes("rust");
}

/// Set the manifest's grants for the daemon test (the secret `api_key`, KV, events,
/// and the loopback server at `granted`).
fn grant(p: &Project, granted: &str) {
    let path = p.dir.join("sundial-plugin.toml");
    let manifest = std::fs::read_to_string(&path).unwrap();
    let manifest = manifest
        .replace("hosts = []", &format!("hosts = [\"{granted}\"]"))
        .replace("kv = false", "kv = true")
        .replace("emit_events = false", "emit_events = true")
        .replace("secrets = []", "secrets = [\"api_key\"]")
        .replace("timeout_ms = 30_000", "timeout_ms = 3_000");
    std::fs::write(path, manifest).unwrap();
}

fn run(d: &Daemon, params: Value) -> Value {
    d.run_wait("poly", params)
}

#[track_caller]
fn succeeded(run: &Value) -> &Value {
    assert_eq!(run["status"], "succeeded", "{run}");
    &run["output"]
}

#[track_caller]
fn failed_with(run: &Value, kind: &str) -> String {
    let status = if kind == "timeout" { "timed_out" } else { "failed" };
    assert_eq!(run["status"], status, "{run}");
    assert_eq!(run["error"]["kind"], kind, "{run}");
    run["error"]["message"].as_str().unwrap_or_default().to_string()
}

fn log_text(run: &Value) -> String {
    run["log"]["lines"]
        .as_array()
        .map(|l| {
            l.iter()
                .map(|x| {
                    format!(
                        "{} {}",
                        x["level"].as_str().unwrap_or(""),
                        x["message"].as_str().unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

fn through_the_daemon(lang: &'static str) {
    let p = project(lang);
    let (server, _server_rt) = serve_http(std::sync::Arc::new(|req: sundial_tests::Received| Answer {
        status: 200,
        headers: vec![("content-type".into(), "text/plain".into())],
        body: format!("got {} {}", req.method, String::from_utf8_lossy(&req.body)).into_bytes(),
        hang: false,
        delay_ms: 0,
    }));
    let (other, _other_rt) = serve_http(std::sync::Arc::new(|_| Answer {
        status: 200,
        headers: vec![],
        body: b"should never be reached".to_vec(),
        hang: false,
        delay_ms: 0,
    }));
    let data = tempfile::tempdir().unwrap();
    let d = Daemon::start(data.path(), &["--allow-loopback"]);
    grant(p, &server.to_string());

    // Installed from the project folder: the manifest's name, grants and limits.
    let out = Command::new(sundial_bin())
        .current_dir(&p.dir)
        .args(["plugin", "install"])
        .env("SUNDIAL_URL", format!("http://{}", d.addr))
        .env("SUNDIAL_TOKEN", &d.token)
        .output()
        .unwrap();
    assert!(out.status.success(), "plugin install: {}", text(&out));
    let name = format!("poly-{}", p.lang);
    let plugin = d.expect(200, "GET", &format!("/v1/plugins/{name}"), None);
    assert_eq!(plugin["grants"]["kv"], true, "{plugin}");
    assert_eq!(plugin["limits"]["timeout_ms"], 3000, "{plugin}");
    let memory = plugin["limits"]["memory_bytes"].as_u64().unwrap();
    assert!(memory >= 128 << 20, "{plugin}");

    // One attempt: each error shows as it is, without retries.
    d.create(
        "/v1/tasks",
        json!({"name": "poly", "plugin": name, "retry": {"max_attempts": 1}}),
    );
    d.create(
        "/v1/tasks",
        json!({"name": "follow", "plugin": name, "params": {"op": "event"}}),
    );
    d.create(
        "/v1/triggers",
        json!({"name": "on-emitted", "on": {"type": "polyglot.emitted"}, "targets": [{"task": "follow"}]}),
    );
    d.put_secret(201, "api_key", "s3cret-value");
    d.put_secret(201, "other_key", "not-granted");

    // Params in, output out, log lines; the first run uses the plugin compiled at
    // install (nothing loaded, compiled or read from the disk cache, during it).
    wait_until("the start's warm-up ends", 60, || {
        d.stderr_text().contains("plugins warmed")
    });
    let loads = || (d.plugin_loads("compile"), d.plugin_loads("disk"));
    let before = loads();
    let r = run(&d, json!({"op": "greet", "name": "Ada"}));
    assert_eq!(
        loads(),
        before,
        "the first run after install loaded its plugin again"
    );
    let out = succeeded(&r);
    assert_eq!(out["greeting"], "hello, Ada", "{r}");
    assert_eq!(
        (out["attempt"].as_u64(), out["cause"].as_str()),
        (Some(1), Some("manual")),
        "{r}"
    );
    assert_eq!(out["run_id"], r["id"], "{r}");
    let log = log_text(&r);
    assert!(
        log.contains("info greeting Ada") && log.contains("warn a warning line"),
        "{log}"
    );

    // KV persists across runs.
    assert_eq!(succeeded(&run(&d, json!({"op": "kv"})))["count"], 1);
    assert_eq!(succeeded(&run(&d, json!({"op": "kv"})))["count"], 2);

    // A granted secret reads; another does not.
    assert_eq!(
        succeeded(&run(&d, json!({"op": "secret", "name": "api_key"})))["value"],
        json!({"len": 12, "head": "s3"})
    );
    assert_eq!(
        succeeded(&run(&d, json!({"op": "secret", "name": "other_key"})))["value"],
        Value::Null
    );

    // An emitted event starts the trigger's run, which sees the event.
    let r = run(&d, json!({"op": "emit", "kind": "polyglot.emitted"}));
    assert_eq!(succeeded(&r)["emitted"], "polyglot.emitted");
    let mut followed = Value::Null;
    wait_until("the triggered run succeeds", 60, || {
        followed = d
            .all_runs("task=follow")
            .into_iter()
            .find(|r| r["status"] == "succeeded")
            .unwrap_or(Value::Null);
        !followed.is_null()
    });
    let out = &followed["output"];
    assert_eq!(
        (out["kind"].as_str(), out["cause"].as_str()),
        (Some("polyglot.emitted"), Some("event")),
        "{followed}"
    );
    assert_eq!(out["data"], json!({"from": r["id"], "n": 7}), "{followed}");

    // HTTP to the granted loopback server goes through; to another host it is denied.
    let r = run(&d, json!({"op": "http", "url": format!("http://{server}/hook")}));
    let out = succeeded(&r);
    assert_eq!(out["status"], 200, "{r}");
    assert_eq!(out["body"], "got POST {\"hello\":\"server\"}", "{r}");
    assert_eq!(out["type"], "text/plain", "{r}");
    let r = run(&d, json!({"op": "http", "url": format!("http://{other}/")}));
    let err = succeeded(&r)["error"].as_str().unwrap_or_default().to_string();
    // Python's SDK names the reason; JavaScript's fetch only says NetworkError (the
    // engine's fetch hides the wasi:http error code). The host logs the denial in both.
    let expected = if lang == "python" {
        "request denied: host not granted"
    } else {
        "NetworkError"
    };
    assert!(err.contains(expected), "{r}");
    assert!(
        log_text(&r).contains(&format!("denied: host {other} is not granted")),
        "{r}"
    );
    // A request that fails while the plugin still writes its body (`plugin run` denies
    // at once; a closed port fails as fast; 1 MiB is many chunks) fails the request,
    // with its reason, and not the run: the host keeps the body open until it is done.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    for (url, allow, expected) in [
        (format!("http://{other}/"), None, expected),
        (
            format!("http://{closed}/"),
            Some(closed.to_string()),
            if lang == "python" {
                "ConnectionRefused"
            } else {
                "NetworkError"
            },
        ),
    ] {
        for pad in [0, 1 << 20] {
            let params = json!({"op": "http", "url": url, "pad": pad}).to_string();
            let wasm = p.wasm.to_str().unwrap();
            let mut args = vec!["plugin", "run", wasm, "--memory", "256MiB", "--params", &params];
            if let Some(host) = &allow {
                args.extend(["--allow-host", host, "--allow-loopback"]);
            }
            let out = sundial(&p.dir, &args);
            assert!(out.status.success(), "{url} pad {pad}: {}", text(&out));
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            let err = v["error"].as_str().unwrap_or_default();
            assert!(err.contains(expected), "{url} pad {pad}: {}", text(&out));
        }
    }

    // Each error kind.
    assert!(
        failed_with(&run(&d, json!({"op": "invalid"})), "invalid_params").contains("bad params: op invalid")
    );
    assert!(failed_with(&run(&d, json!({"op": "failed"})), "failed").contains("it failed on purpose"));
    assert!(failed_with(&run(&d, json!({"op": "retryable"})), "retryable").contains("try again later"));
    let r = run(&d, json!({"op": "bug"}));
    let msg = failed_with(&r, "failed");
    let expected = if lang == "python" {
        "ZeroDivisionError"
    } else {
        "TypeError"
    };
    assert!(msg.contains(expected), "{r}");
    assert!(
        log_text(&r).contains(expected),
        "the exception's trace is in the log: {r}"
    );
    // Params that are not what the action takes, from the SDK itself.
    let (status, v) = d.call(
        "POST",
        "/v1/tasks/poly/run?wait=true",
        Some(&json!({"params": {"op": 5}})),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "failed", "{v}");

    // The limits: memory past the plugin's cap, a loop past its timeout.
    failed_with(&run(&d, json!({"op": "memory", "mib": 2048})), "memory_limit");
    failed_with(&run(&d, json!({"op": "spin"})), "timeout");
    // And the plugin still runs afterwards.
    assert_eq!(
        succeeded(&run(&d, json!({"op": "greet", "name": "again"})))["greeting"],
        "hello, again"
    );
}

#[test]
fn python_plugin_through_the_daemon() {
    through_the_daemon("python");
}

#[test]
fn js_plugin_through_the_daemon() {
    through_the_daemon("js");
}

/// A formatter project of `lang` (`plugin new`, the world switched to `formatter`, the
/// source replaced), built; the component's path.
fn formatter_project(tmp: &Path, lang: &str, source: &str) -> PathBuf {
    let name = format!("fmt-{lang}");
    ok(
        sundial(tmp, &["plugin", "new", &name, "--lang", lang]),
        "plugin new",
    );
    let dir = tmp.join(&name);
    let manifest = dir.join("sundial-plugin.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace("world = \"action\"", "world = \"formatter\""),
    )
    .unwrap();
    let file = if lang == "python" {
        "app.py"
    } else {
        "src/index.js"
    };
    std::fs::write(dir.join(file), source).unwrap();
    ok(sundial(&dir, &["plugin", "build"]), "plugin build (formatter)");
    dir.join(format!("build/{name}.wasm"))
}

const PY_FORMATTER: &str = r#"
from sundial import Body, formatter


@formatter
def format(d):
    if d.event is None:
        raise ValueError("only events are formatted here")
    text = f"{d.config['prefix']} {d.event.kind} on {d.event.subject}: {d.event.data['n']} (via {d.webhook})"
    return Body("text/plain; charset=utf-8", text, [("x-formatted-by", "python")])
"#;

const JS_FORMATTER: &str = r#"
import { defineFormatter } from "sundial-plugin";

export const format = defineFormatter((d) => {
  if (!d.event) throw new Error("only events are formatted here");
  return {
    contentType: "text/plain; charset=utf-8",
    body: `${d.config.prefix} ${d.event.kind} on ${d.event.subject}: ${d.event.data.n} (via ${d.webhook})`,
    headers: [["x-formatted-by", "js"]],
  };
});
"#;

#[test]
fn formatters_in_python_and_js_format_webhook_deliveries() {
    let tmp = tempfile::tempdir().unwrap();
    let built = [
        ("python", formatter_project(tmp.path(), "python", PY_FORMATTER)),
        ("js", formatter_project(tmp.path(), "js", JS_FORMATTER)),
    ];
    let rx = sundial_tests::Receiver::start(vec![], sundial_tests::Reply::Status(200, vec![]));
    let data = tempfile::tempdir().unwrap();
    let d = Daemon::start(data.path(), &["--allow-loopback"]);
    for (lang, wasm) in &built {
        let out = d.cli(&[
            "plugin",
            "install",
            wasm.to_str().unwrap(),
            "--name",
            &format!("fmt-{lang}"),
        ]);
        assert!(out.status.success(), "install: {}", text(&out));
        d.create(
            "/v1/webhooks",
            json!({"name": format!("hook-{lang}"), "url": rx.url(&format!("/{lang}")), "formatter": format!("fmt-{lang}"),
                   "formatter_config": {"prefix": "ALERT"}}),
        );
        d.create(
            "/v1/triggers",
            json!({"name": format!("to-{lang}"), "on": {"type": "disk.full"}, "targets": [{"webhook": format!("hook-{lang}")}]}),
        );
    }
    let event = json!({"specversion": "1.0", "id": "e1", "source": "/test", "type": "disk.full", "subject": "vm-7", "data": {"n": 93}});
    let (status, v) = d.call("POST", "/v1/events", Some(&event));
    assert!((200..300).contains(&status), "{v}");
    let got = rx.wait_for(2);
    for lang in ["python", "js"] {
        let req = got
            .iter()
            .find(|r| r.path == format!("/{lang}"))
            .unwrap_or_else(|| panic!("no delivery to /{lang}: {got:?}"));
        assert_eq!(
            String::from_utf8_lossy(&req.body),
            format!("ALERT disk.full on vm-7: 93 (via hook-{lang})")
        );
        assert_eq!(req.header("x-formatted-by"), Some(lang));
        assert_eq!(req.header("content-type"), Some("text/plain; charset=utf-8"));
    }
}
