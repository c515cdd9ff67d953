//! `sundial serve` driven over HTTP: the life of a task from plugin install to run log,
//! error statuses, pagination, cancellation.

use serde_json::{Value, json};
use sundial_tests::{Daemon, raw_http, wasm};

fn install(d: &Daemon, name: &str, package: &str, extra: Value) -> (u16, Value) {
    d.install_plugin(name, package, extra)
}

#[test]
fn a_task_from_plugin_install_to_run_log() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);

    // Bundled plugins are installed on first start.
    let (status, plugins) = d.call("GET", "/v1/plugins", None);
    assert_eq!(status, 200);
    let names: Vec<&str> = plugins["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    let bundled = [
        "echo",
        "email",
        "http-request",
        "json",
        "pagerduty",
        "slack",
        "teams",
        "template",
        "vergeos",
    ];
    assert_eq!(names, bundled, "bundled plugins, by name");

    let (status, plugin) = install(
        &d,
        "hello",
        "sundial-fixture-hello",
        json!({"description": "greets"}),
    );
    assert_eq!(status, 201, "{plugin}");
    assert_eq!(plugin["world"], "action");
    assert!(plugin["digest"].as_str().unwrap().starts_with("sha256:"));
    let (status, again) = install(&d, "hello", "sundial-fixture-hello", json!({}));
    assert_eq!((status, again["error"]["code"].as_str()), (409, Some("conflict")));

    let (status, task) = d.call(
        "POST",
        "/v1/tasks",
        Some(&json!({"name": "greet", "plugin": "hello", "params": {"name": "Ada"}})),
    );
    assert_eq!(status, 201, "{task}");
    let task_id = task["id"].as_str().unwrap().to_string();

    let (status, run) = d.call("POST", "/v1/tasks/greet/run?wait=true", None);
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["output"]["greeting"], "Hello, Ada!");
    assert_eq!(run["task_id"], task_id.as_str());
    assert_eq!(run["started_by"], "admin");
    assert_eq!(run["attempt"], 1);
    assert!(
        run["log"]["lines"][0]["message"]
            .as_str()
            .unwrap()
            .contains("greets Ada")
    );
    assert!(run["resources"]["peak_memory_bytes"].as_u64().unwrap() > 0);

    // Params override per run.
    let (_, run2) = d.call(
        "POST",
        "/v1/tasks/greet/run?wait=true",
        Some(&json!({"params": {"name": "Grace"}})),
    );
    assert_eq!(run2["output"]["greeting"], "Hello, Grace!");

    // The run log is readable by id and listed newest first.
    let (status, got) = d.call("GET", &format!("/v1/runs/{}", run["id"].as_str().unwrap()), None);
    assert_eq!((status, &got["status"]), (200, &json!("succeeded")));
    let (_, list) = d.call("GET", "/v1/runs?task=greet", None);
    let ids: Vec<&str> = list["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert_eq!(
        ids,
        vec![run2["id"].as_str().unwrap(), run["id"].as_str().unwrap()]
    );

    // Metrics count what happened.
    let headers = format!("authorization: Bearer {}\r\n", d.token);
    let (status, metrics) = raw_http(&d.addr, "GET", "/metrics", &headers, b"");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("sundial_runs_finished_total{status=\"succeeded\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sundial_run_duration_seconds_count 2"),
        "{metrics}"
    );
    assert!(metrics.contains("sundial_run_queue_depth 0"), "{metrics}");
    assert!(
        metrics.contains("sundial_store_batch_size_bucket{le=\"+Inf\"}"),
        "{metrics}"
    );

    // The plugin cannot be removed while the task uses it; the task can be deleted.
    let (status, err) = d.call("DELETE", "/v1/plugins/hello", None);
    assert_eq!(status, 409);
    assert!(
        err["error"]["message"].as_str().unwrap().contains("greet"),
        "{err}"
    );
    assert_eq!(d.call("DELETE", "/v1/tasks/greet", None).0, 204);
    assert_eq!(d.call("DELETE", "/v1/plugins/hello", None).0, 204);
    assert_eq!(d.call("GET", "/v1/tasks/greet", None).0, 404);
}

#[test]
fn failing_runs_retry_and_record_every_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    assert_eq!(
        install(&d, "hostile", "sundial-fixture-hostile", json!({})).0,
        201
    );
    let task = json!({
        "name": "flaky", "plugin": "hostile", "params": {"mode": "retryable"},
        "retry": {"max_attempts": 3, "initial_delay_ms": 10, "max_delay_ms": 20, "jitter": 0.0}
    });
    assert_eq!(d.call("POST", "/v1/tasks", Some(&task)).0, 201);
    let (status, run) = d.call("POST", "/v1/tasks/flaky/run?wait=true", None);
    assert_eq!(status, 200);
    assert_eq!(run["status"], "failed");
    assert_eq!(run["attempt"], 3);
    assert_eq!(run["attempts"].as_array().unwrap().len(), 3);
    assert_eq!(run["error"]["kind"], "retryable");

    // A timeout is its own status.
    let task = json!({"name": "spin", "plugin": "hostile", "params": {"mode": "loop"}, "timeout_ms": 200, "retry": {"max_attempts": 1}});
    assert_eq!(d.call("POST", "/v1/tasks", Some(&task)).0, 201);
    let (_, run) = d.call("POST", "/v1/tasks/spin/run?wait=true", None);
    assert_eq!(run["status"], "timed_out", "{run}");
}

#[test]
fn a_running_run_can_be_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    assert_eq!(
        install(&d, "hostile", "sundial-fixture-hostile", json!({})).0,
        201
    );
    let task = json!({"name": "spin", "plugin": "hostile", "params": {"mode": "loop"}, "timeout_ms": 60000});
    assert_eq!(d.call("POST", "/v1/tasks", Some(&task)).0, 201);
    let (status, run) = d.call("POST", "/v1/tasks/spin/run", None);
    assert_eq!(status, 202);
    let id = run["id"].as_str().unwrap().to_string();
    // Wait until it is running, then cancel it.
    for _ in 0..200 {
        if d.call("GET", &format!("/v1/runs/{id}"), None).1["status"] == "running" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let (status, cancelled) = d.call("POST", &format!("/v1/runs/{id}/cancel"), None);
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    let (status, again) = d.call("POST", &format!("/v1/runs/{id}/cancel"), None);
    assert_eq!((status, &again["status"]), (200, &json!("cancelled")));
}

#[test]
fn bad_requests_get_precise_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    let (status, body) = raw_http(&d.addr, "GET", "/v1/tasks", "", b"");
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("missing `Authorization"));
    assert_eq!(d.call_as(Some("sdl_wrong"), "GET", "/v1/tasks", None).0, 401);
    assert_eq!(raw_http(&d.addr, "GET", "/healthz", "", b"").0, 200);
    assert_eq!(raw_http(&d.addr, "GET", "/openapi.json", "", b"").0, 401);
    assert_eq!(raw_http(&d.addr, "GET", "/metrics", "", b"").0, 401);
    let (status, doc) = d.call("GET", "/openapi.json", None);
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/v1/tasks/{id}/run"]["post"].is_object());

    let cases: Vec<(&str, &str, Option<Value>, u16, &str)> = vec![
        (
            "POST",
            "/v1/tasks",
            Some(json!({"name": "Bad Name", "plugin": "echo"})),
            400,
            "name:",
        ),
        (
            "POST",
            "/v1/tasks",
            Some(json!({"name": "a", "plugin": "echo", "retry": {"max_attempts": 0}})),
            400,
            "retry.max_attempts",
        ),
        (
            "POST",
            "/v1/tasks",
            Some(json!({"name": "a", "plugin": "echo", "colour": 1})),
            400,
            "unknown field `colour`",
        ),
        (
            "POST",
            "/v1/tasks",
            Some(json!({"name": "a", "plugin": "nope"})),
            404,
            "not installed",
        ),
        (
            "POST",
            "/v1/tasks",
            Some(json!({"name": "a", "plugin": "json"})),
            409,
            "formatter",
        ),
        (
            "POST",
            "/v1/plugins",
            Some(json!({"name": "junk", "wasm_base64": "aGVsbG8="})),
            400,
            "not a WebAssembly file",
        ),
        (
            "POST",
            "/v1/plugins",
            Some(json!({"name": "junk", "wasm_base64": "%%%"})),
            400,
            "not base64",
        ),
        ("GET", "/v1/runs?status=exploded", None, 400, "status:"),
        ("GET", "/v1/runs?limit=0", None, 400, "limit:"),
        ("GET", "/v1/runs?since=yesterday", None, 400, "since:"),
        ("GET", "/v1/runs?cursor=xyz", None, 400, "cursor:"),
        (
            "GET",
            "/v1/runs/01ARZ3NDEKTSV4RRFFQ69G5FAV",
            None,
            404,
            "not found",
        ),
        ("POST", "/v1/tasks/nope/run", None, 404, "not found"),
        ("GET", "/v1/nothing-here", None, 404, "no such endpoint"),
    ];
    for (method, path, body, want, needle) in cases {
        let (status, answer) = d.call(method, path, body.as_ref());
        assert_eq!(status, want, "{method} {path}: {answer}");
        let msg = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains(needle), "{method} {path}: {msg}");
        assert!(answer["error"]["code"].is_string());
    }
    // Wrong content type and oversized bodies.
    let headers = format!(
        "authorization: Bearer {}\r\ncontent-type: text/plain\r\n",
        d.token
    );
    assert_eq!(raw_http(&d.addr, "POST", "/v1/tasks", &headers, b"hi").0, 415);
    let big = vec![b' '; 2 * 1024 * 1024];
    let headers = format!(
        "authorization: Bearer {}\r\ncontent-type: application/json\r\n",
        d.token
    );
    assert_eq!(raw_http(&d.addr, "POST", "/v1/tasks", &headers, &big).0, 413);
    // A disabled task refuses runs.
    assert_eq!(
        d.call(
            "POST",
            "/v1/tasks",
            Some(&json!({"name": "off", "plugin": "echo"}))
        )
        .0,
        201
    );
    assert_eq!(d.call("POST", "/v1/tasks/off/disable", None).1["enabled"], false);
    assert_eq!(d.call("POST", "/v1/tasks/off/run", None).0, 409);
}

#[test]
fn run_lists_paginate_without_gaps_or_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    assert_eq!(
        d.call("POST", "/v1/tasks", Some(&json!({"name": "e", "plugin": "echo"})))
            .0,
        201
    );
    let mut started = Vec::new();
    for _ in 0..23 {
        let (status, run) = d.call("POST", "/v1/tasks/e/run", None);
        assert_eq!(status, 202);
        started.push(run["id"].as_str().unwrap().to_string());
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/runs?task=e&limit=5&cursor={c}"),
            None => "/v1/runs?task=e&limit=5".to_string(),
        };
        let (_, page) = d.call("GET", &path, None);
        for r in page["runs"].as_array().unwrap() {
            seen.push(r["id"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    started.reverse();
    assert_eq!(seen, started);
}

#[test]
fn every_role_gets_exactly_its_calls() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    let mut secrets = std::collections::HashMap::new();
    for (name, role) in [("op", "operator"), ("view", "viewer"), ("ing", "ingest")] {
        let (status, token) = d.call("POST", "/v1/tokens", Some(&json!({"name": name, "role": role})));
        assert_eq!(status, 201, "{token}");
        assert!(token["secret"].as_str().unwrap().starts_with("sdl_"));
        secrets.insert(name, token["secret"].as_str().unwrap().to_string());
    }
    assert_eq!(
        d.call(
            "POST",
            "/v1/tokens",
            Some(&json!({"name": "op", "role": "viewer"}))
        )
        .0,
        409
    );
    assert_eq!(
        d.call("POST", "/v1/tokens", Some(&json!({"name": "x", "role": "god"})))
            .0,
        400
    );
    assert_eq!(
        d.call("POST", "/v1/tasks", Some(&json!({"name": "t", "plugin": "echo"})))
            .0,
        201
    );

    let hello = {
        use base64::Engine as _;
        let bytes = std::fs::read(wasm("sundial-fixture-hello")).unwrap();
        json!({"name": "hello2", "wasm_base64": base64::engine::general_purpose::STANDARD.encode(bytes)})
    };
    let task = json!({"name": "t2", "plugin": "echo"});
    // (token, method, path, body, expected status)
    let cases: Vec<(&str, &str, &str, Option<Value>, u16)> = vec![
        ("view", "GET", "/v1/tasks", None, 200),
        ("view", "GET", "/v1/runs", None, 200),
        ("view", "GET", "/v1/plugins", None, 200),
        ("view", "GET", "/v1/audit", None, 200),
        ("view", "GET", "/metrics", None, 200),
        ("view", "POST", "/v1/tasks", Some(task.clone()), 403),
        ("view", "POST", "/v1/tasks/t/run", None, 403),
        ("view", "DELETE", "/v1/tasks/t", None, 403),
        ("view", "GET", "/v1/tokens", None, 403),
        ("op", "POST", "/v1/tasks", Some(task.clone()), 201),
        ("op", "POST", "/v1/tasks/t/run", None, 202),
        ("op", "POST", "/v1/tasks/t2/disable", None, 200),
        ("op", "POST", "/v1/plugins", Some(hello.clone()), 403),
        ("op", "DELETE", "/v1/plugins/echo", None, 403),
        ("op", "GET", "/v1/tokens", None, 403),
        (
            "op",
            "POST",
            "/v1/tokens",
            Some(json!({"name": "y", "role": "admin"})),
            403,
        ),
        ("ing", "GET", "/v1/tasks", None, 403),
        ("ing", "GET", "/v1/runs", None, 403),
        ("ing", "POST", "/v1/tasks/t/run", None, 403),
        ("ing", "GET", "/metrics", None, 403),
    ];
    for (who, method, path, body, want) in cases {
        let (status, answer) = d.call_as(Some(&secrets[who]), method, path, body.as_ref());
        assert_eq!(status, want, "{who} {method} {path}: {answer}");
        if want == 403 {
            assert_eq!(answer["error"]["code"], "forbidden");
            assert!(
                answer["error"]["message"].as_str().unwrap().contains(who),
                "{answer}"
            );
        }
    }
    // Runs record who started them.
    let (_, runs) = d.call("GET", "/v1/runs?task=t", None);
    assert_eq!(runs["runs"][0]["started_by"], "op");

    // Revoked tokens stop working; the last admin token cannot be revoked.
    assert_eq!(d.call("DELETE", "/v1/tokens/view", None).0, 204);
    assert_eq!(d.call_as(Some(&secrets["view"]), "GET", "/v1/tasks", None).0, 401);
    let (status, err) = d.call("DELETE", "/v1/tokens/admin", None);
    assert_eq!(status, 409, "{err}");
    // Nor can a token revoke itself: another admin token must.
    let (status, second) = d.call(
        "POST",
        "/v1/tokens",
        Some(&json!({"name": "admin2", "role": "admin"})),
    );
    assert_eq!(status, 201, "{second}");
    let second = second["secret"].as_str().unwrap().to_string();
    let (status, err) = d.call_as(Some(&second), "DELETE", "/v1/tokens/admin2", None);
    assert_eq!(status, 409, "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("another admin token"),
        "{err}"
    );
    assert_eq!(d.call("DELETE", "/v1/tokens/admin2", None).0, 204);
    let (_, list) = d.call("GET", "/v1/tokens", None);
    let names: Vec<&str> = list["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names, vec!["admin", "op", "ing"]);
    assert!(!list.to_string().contains("sdl_"), "secrets are never listed");
}

#[test]
fn changes_are_audited_with_who_before_and_after() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    let (_, op) = d.call(
        "POST",
        "/v1/tokens",
        Some(&json!({"name": "alice", "role": "operator"})),
    );
    let alice = op["secret"].as_str().unwrap().to_string();
    let (status, task) = d.call_as(
        Some(&alice),
        "POST",
        "/v1/tasks",
        Some(&json!({"name": "t", "plugin": "echo"})),
    );
    assert_eq!(status, 201);
    let id = task["id"].as_str().unwrap();
    assert_eq!(
        d.call_as(
            Some(&alice),
            "PATCH",
            "/v1/tasks/t",
            Some(&json!({"description": "nightly"}))
        )
        .0,
        200
    );
    assert_eq!(d.call("DELETE", "/v1/tasks/t", None).0, 204);

    let (status, audit) = d.call("GET", &format!("/v1/audit?noun=task&target={id}"), None);
    assert_eq!(status, 200);
    let entries = audit["entries"].as_array().unwrap();
    let summary: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    assert_eq!(
        summary,
        vec![("delete", "admin"), ("update", "alice"), ("create", "alice")]
    );
    assert_eq!(entries[1]["before"]["spec"]["description"], "");
    assert_eq!(entries[1]["after"]["spec"]["description"], "nightly");
    assert!(entries[0]["after"].is_null() && entries[2]["before"].is_null());

    // Bundled plugins and the first admin token were recorded as the daemon's doing,
    // and no token secret ever lands in the audit log.
    let (_, all) = d.call("GET", "/v1/audit?limit=1000", None);
    let text = all.to_string();
    assert!(
        !text.contains(&alice) && !text.contains(&d.token),
        "secrets must not be audited"
    );
    let (_, tokens) = d.call("GET", "/v1/audit?noun=token&actor=sundial", None);
    assert_eq!(tokens["entries"].as_array().unwrap().len(), 1);
    assert_eq!(d.call("GET", "/v1/audit?since=never", None).0, 400);
    let (status, err) = d.call("GET", "/v1/audit?cursor=null", None);
    assert_eq!(status, 400, "a cursor that is not an id: {err}");
}

#[test]
fn retention_prunes_old_runs_per_task_and_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &["--prune-interval", "100ms", "--keep-runs", "4"]);
    let keep2 = json!({"name": "keep2", "plugin": "echo", "retention": {"keep_last": 2}});
    assert_eq!(d.call("POST", "/v1/tasks", Some(&keep2)).0, 201);
    assert_eq!(
        d.call(
            "POST",
            "/v1/tasks",
            Some(&json!({"name": "plain", "plugin": "echo"}))
        )
        .0,
        201
    );
    let mut newest = Vec::new();
    for task in ["keep2", "plain"] {
        for _ in 0..7 {
            let (status, run) = d.call("POST", &format!("/v1/tasks/{task}/run?wait=true"), None);
            assert_eq!(status, 200);
            if task == "keep2" {
                newest.push(run["id"].as_str().unwrap().to_string());
            }
        }
    }
    let count = |task: &str| {
        d.call("GET", &format!("/v1/runs?task={task}"), None).1["runs"]
            .as_array()
            .unwrap()
            .len()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while (count("keep2"), count("plain")) != (2, 4) {
        assert!(
            std::time::Instant::now() < deadline,
            "pruning never reached 2 and 4: {} {}",
            count("keep2"),
            count("plain")
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The newest runs are the ones kept.
    let (_, list) = d.call("GET", "/v1/runs?task=keep2", None);
    let kept: Vec<&str> = list["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert_eq!(kept, vec![newest[6].as_str(), newest[5].as_str()]);
    assert_eq!(d.call("GET", &format!("/v1/runs/{}", newest[0]), None).0, 404);
}

fn sigterm_and_wait(mut d: Daemon) -> std::process::ExitStatus {
    let pid = d.child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(status) = d.child.try_wait().unwrap() {
            return status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the daemon did not stop on SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn start_spin(d: &Daemon, timeout_ms: u64) -> String {
    if d.call("GET", "/v1/plugins/hostile", None).0 == 404 {
        assert_eq!(install(d, "hostile", "sundial-fixture-hostile", json!({})).0, 201);
    }
    let task = json!({"name": format!("spin{timeout_ms}"), "plugin": "hostile", "params": {"mode": "loop"},
                      "timeout_ms": timeout_ms, "retry": {"max_attempts": 1}});
    assert_eq!(d.call("POST", "/v1/tasks", Some(&task)).0, 201);
    let (_, run) = d.call("POST", &format!("/v1/tasks/spin{timeout_ms}/run"), None);
    let id = run["id"].as_str().unwrap().to_string();
    while d.call("GET", &format!("/v1/runs/{id}"), None).1["status"] != "running" {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    id
}

#[test]
fn sigterm_lets_running_runs_finish_within_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    // Finishes (times out) within the grace period: recorded as timed_out.
    let d = Daemon::start(dir.path(), &["--grace", "10s"]);
    let finished = start_spin(&d, 800);
    assert!(sigterm_and_wait(d).success());
    // Outlives the grace period: left for recovery, which marks it interrupted.
    let d = Daemon::start(dir.path(), &["--grace", "200ms"]);
    assert_eq!(
        d.call("GET", &format!("/v1/runs/{finished}"), None).1["status"],
        "timed_out"
    );
    let cut = start_spin(&d, 20_000);
    assert!(sigterm_and_wait(d).success());
    let d = Daemon::start(dir.path(), &[]);
    let (_, run) = d.call("GET", &format!("/v1/runs/{cut}"), None);
    assert_eq!(run["status"], "interrupted", "{run}");
    assert!(
        run["error"]["message"]
            .as_str()
            .unwrap()
            .contains("daemon stopped")
    );
}

#[test]
fn plugin_key_value_is_durable_and_private_to_each_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    for name in ["writer", "other"] {
        assert_eq!(
            install(
                &d,
                name,
                "sundial-fixture-hostile",
                json!({"grants": {"kv": true}})
            )
            .0,
            201
        );
    }
    // A grant of a secret that can never exist is refused, on install and on update.
    let (status, err) = d.call(
        "PATCH",
        "/v1/plugins/writer",
        Some(&json!({"grants": {"kv": true, "secrets": [""]}})),
    );
    assert_eq!(status, 400, "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("grants.secrets[0]"),
        "{err}"
    );
    let (status, err) = install(
        &d,
        "third",
        "sundial-fixture-hostile",
        json!({"grants": {"secrets": ["ok", "no way"]}}),
    );
    assert_eq!(status, 400, "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("grants.secrets[1]"),
        "{err}"
    );
    // JSON has one number type: 1500.0 where an integer is expected is 1500.
    let t =
        json!({"name": "floaty", "plugin": "writer", "timeout_ms": 1500.0, "retry": {"max_attempts": 2.0}});
    let (status, task) = d.call("POST", "/v1/tasks", Some(&t));
    assert_eq!(status, 201, "{task}");
    assert_eq!(
        (task["timeout_ms"].clone(), task["retry"]["max_attempts"].clone()),
        (json!(1500), json!(2))
    );
    let t = json!({"name": "fraction", "plugin": "writer", "timeout_ms": 1500.5});
    assert_eq!(
        d.call("POST", "/v1/tasks", Some(&t)).0,
        400,
        "a fraction is no integer"
    );
    for (task, plugin, mode) in [
        ("write", "writer", "probe"),
        ("read", "writer", "kv-read"),
        ("peek", "other", "kv-read"),
    ] {
        let t = json!({"name": task, "plugin": plugin, "params": {"mode": mode}});
        assert_eq!(d.call("POST", "/v1/tasks", Some(&t)).0, 201);
    }
    let (_, run) = d.call("POST", "/v1/tasks/write/run?wait=true", None);
    assert_eq!(run["output"]["kv_set"], "Ok(())", "{run}");
    d.kill9();
    let d = Daemon::start(dir.path(), &[]);
    let (_, run) = d.call("POST", "/v1/tasks/read/run?wait=true", None);
    assert_eq!(
        run["output"]["kv_get"], "Ok(Some(\"41\"))",
        "survives kill -9: {run}"
    );
    let (_, run) = d.call("POST", "/v1/tasks/peek/run?wait=true", None);
    assert_eq!(
        run["output"]["kv_get"], "Ok(None)",
        "another plugin cannot see it: {run}"
    );
}

#[test]
fn overlap_policies_forbid_queue_and_replace() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    assert_eq!(
        install(&d, "hostile", "sundial-fixture-hostile", json!({})).0,
        201
    );
    let run_status = |id: &str| d.call("GET", &format!("/v1/runs/{id}"), None).1;
    let wait_for = |id: &str, want: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let run = run_status(id);
            if run["status"] == want {
                return run;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "run {id} never became {want}: {run}"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    };
    // Each run loops until its 2 s timeout: the window in which the next one must find
    // it active (wide, so a loaded machine does not close it first).
    for policy in ["forbid", "queue", "replace"] {
        let t = json!({"name": policy, "plugin": "hostile", "params": {"mode": "loop"}, "timeout_ms": 2000,
                       "overlap": policy, "retry": {"max_attempts": 1}});
        assert_eq!(d.call("POST", "/v1/tasks", Some(&t)).0, 201);
    }
    // forbid: the second run is skipped while the first is running.
    let first = d.call("POST", "/v1/tasks/forbid/run", None).1["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_for(&first, "running");
    let second = d.call("POST", "/v1/tasks/forbid/run", None).1["id"]
        .as_str()
        .unwrap()
        .to_string();
    let skipped = wait_for(&second, "skipped");
    assert!(
        skipped["log"]["lines"][0]["message"]
            .as_str()
            .unwrap()
            .contains(&first),
        "{skipped}"
    );
    wait_for(&first, "timed_out");

    // queue: the second run starts only after the first ends.
    let first = d.call("POST", "/v1/tasks/queue/run", None).1["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_for(&first, "running");
    let second = d.call("POST", "/v1/tasks/queue/run", None).1["id"]
        .as_str()
        .unwrap()
        .to_string();
    std::thread::sleep(std::time::Duration::from_millis(100));
    // Read the second, then the first: if the first still runs, the second waited.
    let waiting = run_status(&second);
    if run_status(&first)["status"] == "running" {
        assert_eq!(waiting["status"], "queued", "{waiting}");
    }
    let first_done = wait_for(&first, "timed_out");
    let second_done = wait_for(&second, "timed_out");
    assert!(second_done["started_at"].as_str().unwrap() >= first_done["finished_at"].as_str().unwrap());

    // replace: the first run is cancelled when the second starts.
    let first = d.call("POST", "/v1/tasks/replace/run", None).1["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_for(&first, "running");
    let second = d.call("POST", "/v1/tasks/replace/run", None).1["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_for(&first, "cancelled");
    wait_for(&second, "timed_out");
}

#[test]
fn delete_after_run_removes_the_task_once_it_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    let t = json!({"name": "once", "plugin": "echo", "delete_after_run": true});
    assert_eq!(d.call("POST", "/v1/tasks", Some(&t)).0, 201);
    let (_, run) = d.call("POST", "/v1/tasks/once/run?wait=true", None);
    assert_eq!(run["status"], "succeeded");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while d.call("GET", "/v1/tasks/once", None).0 != 404 {
        assert!(
            std::time::Instant::now() < deadline,
            "the task was not deleted after its run"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Its run stays in the task log, and the deletion is audited as the daemon's.
    assert_eq!(
        d.call("GET", &format!("/v1/runs/{}", run["id"].as_str().unwrap()), None)
            .0,
        200
    );
    let (_, audit) = d.call("GET", "/v1/audit?noun=task&actor=sundial", None);
    assert_eq!(audit["entries"][0]["action"], "delete");
}

#[test]
fn schedule_preview_shows_dst_moves_and_rejects_bad_rules() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    let body = json!({"rule": {"cron": "30 2 * * *"}, "timezone": "Europe/Berlin", "from": "2026-03-27T12:00:00Z", "count": 3});
    let (status, preview) = d.call("POST", "/v1/schedules/preview", Some(&body));
    assert_eq!(status, 200, "{preview}");
    let slots = preview["slots"].as_array().unwrap();
    assert_eq!(slots[1]["local"], "2026-03-29T03:00:00+02:00");
    assert_eq!(slots[1]["utc"], "2026-03-29T01:00:00Z");
    assert_eq!(slots[1]["dst"], "moved_out_of_gap");
    assert!(slots[0]["dst"].is_null());
    for (bad, needle) in [
        (json!({"rule": {"cron": "0 2 *"}}), "rule.cron"),
        (json!({"rule": {"at": "2020-01-01T00:00:00Z"}}), "in the past"),
        (
            json!({"rule": {"cron": "@daily"}, "timezone": "Mars/Base"}),
            "timezone",
        ),
        (json!({"rule": {"cron": "@daily"}, "count": 5000}), "count"),
    ] {
        let (status, err) = d.call("POST", "/v1/schedules/preview", Some(&bad));
        assert_eq!(status, 400, "{bad}: {err}");
        assert!(
            err["error"]["message"].as_str().unwrap().contains(needle),
            "{bad}: {err}"
        );
    }
}

#[test]
fn cancel_lands_at_any_moment_of_a_run() {
    // Cancelling right after the start hits a run while queued, while its plugin is
    // still loading, or while it runs; each must end cancelled, not be retried.
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    assert_eq!(
        install(&d, "hostile", "sundial-fixture-hostile", json!({})).0,
        201
    );
    let task = json!({"name": "spin", "plugin": "hostile", "params": {"mode": "loop"}, "timeout_ms": 60000,
                      "retry": {"max_attempts": 5, "retry_on": {"timeout": true, "crash": true, "failed": true}}});
    assert_eq!(d.call("POST", "/v1/tasks", Some(&task)).0, 201);
    for i in 0..12 {
        let (_, run) = d.call("POST", "/v1/tasks/spin/run", None);
        let id = run["id"].as_str().unwrap().to_string();
        std::thread::sleep(std::time::Duration::from_millis(i * 3));
        let (status, cancelled) = d.call("POST", &format!("/v1/runs/{id}/cancel"), None);
        assert_eq!(status, 200, "{cancelled}");
        assert_eq!(cancelled["status"], "cancelled", "attempt {i}: {cancelled}");
    }
}

#[test]
fn a_removed_bundled_plugin_stays_removed_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    let (s, v) = d.call("DELETE", "/v1/plugins/slack", None);
    assert_eq!(s, 204, "{v}");
    d.kill9();
    let d = Daemon::start(dir.path(), &[]);
    let (_, plugins) = d.call("GET", "/v1/plugins", None);
    let names: Vec<&str> = plugins["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(!names.contains(&"slack"), "{names:?}");
    assert!(
        names.contains(&"vergeos") && names.contains(&"email"),
        "{names:?}"
    );
}
