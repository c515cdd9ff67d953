//! `sundial serve` driven over HTTP: the life of a task from plugin install to run log,
//! error statuses, pagination, cancellation.

use serde_json::{Value, json};
use sundial_tests::{Daemon, column, instant, items, message, raw_http};

fn install(d: &Daemon, name: &str, package: &str, extra: Value) -> (u16, Value) {
    d.install_plugin(name, package, extra)
}

#[test]
fn a_task_from_plugin_install_to_run_log() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);

    // Bundled plugins are installed on first start.
    let plugins = d.expect(200, "GET", "/v1/plugins", None);
    let names = column(&plugins["plugins"], "name");
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

    let task = d.create(
        "/v1/tasks",
        json!({"name": "greet", "plugin": "hello", "params": {"name": "Ada"}}),
    );
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
    let ids = column(&list["runs"], "id");
    assert_eq!(
        ids,
        vec![run2["id"].as_str().unwrap(), run["id"].as_str().unwrap()]
    );

    // Metrics count what happened.
    let headers = format!("authorization: Bearer {}\r\n", d.token);
    let (status, metrics) = raw_http(&d.addr, "GET", "/metrics", &headers, b"");
    assert_eq!(status, 200);
    // Whole lines: a substring match would also take 20 for 2.
    let line = |want: &str| metrics.lines().any(|l| l == want);
    assert!(
        line("sundial_runs_finished_total{status=\"succeeded\"} 2"),
        "{metrics}"
    );
    assert!(line("sundial_run_duration_seconds_count 2"), "{metrics}");
    assert!(line("sundial_run_queue_depth 0"), "{metrics}");
    assert!(
        metrics.contains("sundial_store_batch_size_bucket{le=\"+Inf\"}"),
        "{metrics}"
    );

    // The plugin cannot be removed while the task uses it; the task can be deleted.
    let err = d.expect(409, "DELETE", "/v1/plugins/hello", None);
    assert!(message(&err).contains("greet"), "{err}");
    d.expect(204, "DELETE", "/v1/tasks/greet", None);
    d.expect(204, "DELETE", "/v1/plugins/hello", None);
    d.expect(404, "GET", "/v1/tasks/greet", None);
}

#[test]
fn failing_runs_retry_and_record_every_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    d.install_hostile(json!({}));
    let task = json!({
        "name": "flaky", "plugin": "hostile", "params": {"mode": "retryable"},
        "retry": {"max_attempts": 3, "initial_delay_ms": 10, "max_delay_ms": 20, "jitter": 0.0}
    });
    d.expect(201, "POST", "/v1/tasks", Some(&task));
    let (status, run) = d.call("POST", "/v1/tasks/flaky/run?wait=true", None);
    assert_eq!(status, 200);
    assert_eq!(run["status"], "failed");
    assert_eq!(run["attempt"], 3);
    assert_eq!(run["attempts"].as_array().unwrap().len(), 3);
    assert_eq!(run["error"]["kind"], "retryable");

    // A timeout is its own status.
    let task = json!({"name": "spin", "plugin": "hostile", "params": {"mode": "loop"}, "timeout_ms": 200, "retry": {"max_attempts": 1}});
    d.expect(201, "POST", "/v1/tasks", Some(&task));
    let (_, run) = d.call("POST", "/v1/tasks/spin/run?wait=true", None);
    assert_eq!(run["status"], "timed_out", "{run}");
}

#[test]
fn a_running_run_can_be_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    d.install_hostile(json!({}));
    let task = json!({"name": "spin", "plugin": "hostile", "params": {"mode": "loop"}, "timeout_ms": 60000});
    d.expect(201, "POST", "/v1/tasks", Some(&task));
    let (status, run) = d.call("POST", "/v1/tasks/spin/run", None);
    assert_eq!(status, 202);
    let id = run["id"].as_str().unwrap().to_string();
    // Wait until it is running (a queued run would be a different case), then cancel it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, run) = d.call("GET", &format!("/v1/runs/{id}"), None);
        if run["status"] == "running" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the run never started: {run}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let (status, cancelled) = d.call("POST", &format!("/v1/runs/{id}/cancel"), None);
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    let (status, again) = d.call("POST", &format!("/v1/runs/{id}/cancel"), None);
    assert_eq!((status, &again["status"]), (200, &json!("cancelled")));
}

#[test]
fn retention_prunes_old_runs_per_task_and_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &["--prune-interval", "100ms", "--keep-runs", "4"]);
    let keep2 = json!({"name": "keep2", "plugin": "echo", "retention": {"keep_last": 2}});
    d.expect(201, "POST", "/v1/tasks", Some(&keep2));
    d.create("/v1/tasks", json!({"name": "plain", "plugin": "echo"}));
    let mut newest = Vec::new();
    for task in ["keep2", "plain"] {
        for _ in 0..7 {
            let run = d.expect(200, "POST", &format!("/v1/tasks/{task}/run?wait=true"), None);
            if task == "keep2" {
                newest.push(run["id"].as_str().unwrap().to_string());
            }
        }
    }
    let count = |task: &str| items(&d.call("GET", &format!("/v1/runs?task={task}"), None).1["runs"]).len();
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
    let kept = column(&list["runs"], "id");
    assert_eq!(kept, vec![newest[6].as_str(), newest[5].as_str()]);
    d.expect(404, "GET", &format!("/v1/runs/{}", newest[0]), None);
}

fn start_spin(d: &Daemon, timeout_ms: u64) -> String {
    if d.call("GET", "/v1/plugins/hostile", None).0 == 404 {
        d.install_hostile(json!({}));
    }
    let task = json!({"name": format!("spin{timeout_ms}"), "plugin": "hostile", "params": {"mode": "loop"},
                      "timeout_ms": timeout_ms, "retry": {"max_attempts": 1}});
    d.expect(201, "POST", "/v1/tasks", Some(&task));
    let (_, run) = d.call("POST", &format!("/v1/tasks/spin{timeout_ms}/run"), None);
    let id = run["id"].as_str().unwrap().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, run) = d.call("GET", &format!("/v1/runs/{id}"), None);
        if run["status"] == "running" {
            return id;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the spin run never started: {run}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn sigterm_lets_running_runs_finish_within_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    // Finishes (times out) within the grace period: recorded as timed_out.
    let d = Daemon::start(dir.path(), &["--grace", "10s"]);
    let finished = start_spin(&d, 800);
    assert!(d.stop().success());
    // Outlives the grace period: left for recovery, which marks it interrupted.
    let d = Daemon::start(dir.path(), &["--grace", "200ms"]);
    assert_eq!(
        d.call("GET", &format!("/v1/runs/{finished}"), None).1["status"],
        "timed_out"
    );
    let cut = start_spin(&d, 20_000);
    assert!(d.stop().success());
    let d = Daemon::start(dir.path(), &[]);
    let (_, run) = d.call("GET", &format!("/v1/runs/{cut}"), None);
    assert_eq!(run["status"], "interrupted", "{run}");
    assert!(message(&run).contains("daemon stopped"));
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
    let err = d.expect(
        400,
        "PATCH",
        "/v1/plugins/writer",
        Some(&json!({"grants": {"kv": true, "secrets": [""]}})),
    );
    assert!(message(&err).starts_with("grants.secrets[0]"), "{err}");
    let (status, err) = install(
        &d,
        "third",
        "sundial-fixture-hostile",
        json!({"grants": {"secrets": ["ok", "no way"]}}),
    );
    assert_eq!(status, 400, "{err}");
    assert!(message(&err).starts_with("grants.secrets[1]"), "{err}");
    // JSON has one number type: 1500.0 where an integer is expected is 1500.
    let t =
        json!({"name": "floaty", "plugin": "writer", "timeout_ms": 1500.0, "retry": {"max_attempts": 2.0}});
    let task = d.expect(201, "POST", "/v1/tasks", Some(&t));
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
        d.expect(201, "POST", "/v1/tasks", Some(&t));
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
    d.install_hostile(json!({}));
    let run_status = |id: &str| d.call("GET", &format!("/v1/runs/{id}"), None).1;
    // Start a run of `task` without waiting; its id.
    let start = |task: &str| {
        let run = d.call("POST", &format!("/v1/tasks/{task}/run"), None).1;
        run["id"].as_str().unwrap().to_string()
    };
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
        d.expect(201, "POST", "/v1/tasks", Some(&t));
    }
    // forbid: the second run is skipped while the first is running.
    let first = start("forbid");
    wait_for(&first, "running");
    let second = start("forbid");
    let skipped = wait_for(&second, "skipped");
    assert!(
        skipped["log"]["lines"][0]["message"]
            .as_str()
            .unwrap()
            .contains(&first),
        "{skipped}"
    );
    wait_for(&first, "timed_out");

    // queue: the second run waits while the first runs, and starts once it ends. The
    // first runs until cancelled, so "the first is running" holds for as long as the
    // test looks; the second is read while it holds.
    let t = json!({"name": "queue-long", "plugin": "hostile", "params": {"mode": "loop"}, "timeout_ms": 600000,
                   "overlap": "queue", "retry": {"max_attempts": 1}});
    d.expect(201, "POST", "/v1/tasks", Some(&t));
    let first = start("queue-long");
    wait_for(&first, "running");
    let second = start("queue-long");
    // However long it is looked at while the first runs, the second stays queued with
    // no attempt (a broken policy starts it within milliseconds).
    for _ in 0..20 {
        let waiting = run_status(&second);
        assert_eq!(waiting["status"], "queued", "{waiting}");
        assert_eq!(waiting["attempts"], json!([]), "{waiting}");
        assert_eq!(run_status(&first)["status"], "running");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let (status, cancelled) = d.call("POST", &format!("/v1/runs/{first}/cancel"), None);
    assert_eq!(
        (status, &cancelled["status"]),
        (200, &json!("cancelled")),
        "{cancelled}"
    );
    let started = wait_for(&second, "running");
    let started_at = instant(&started["started_at"]);
    assert!(
        started_at >= instant(&run_status(&first)["finished_at"]),
        "the second started before the first ended: {started}"
    );
    d.expect(200, "POST", &format!("/v1/runs/{second}/cancel"), None);

    // replace: the first run is cancelled when the second starts.
    let first = start("replace");
    wait_for(&first, "running");
    let second = start("replace");
    wait_for(&first, "cancelled");
    wait_for(&second, "timed_out");
}

/// A run gives its worker back when its plugin ends, before its result is committed,
/// only where its task's runs may overlap: a `forbid` run waiting for the only worker
/// must find the run before it ended, not skipped while its result was being recorded.
#[test]
fn runs_waiting_for_the_only_worker_are_not_skipped_by_forbid_while_the_last_result_commits() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &["--workers", "1"]);
    for (name, overlap) in [("serial", "forbid"), ("free", "allow")] {
        d.create(
            "/v1/tasks",
            json!({"name": name, "plugin": "echo", "overlap": overlap}),
        );
    }
    // Queued back to back, so each waits for the worker the run before it holds.
    for task in ["serial", "free"] {
        for n in 0..40 {
            let (status, run) = d.call(
                "POST",
                &format!("/v1/tasks/{task}/run"),
                Some(&json!({"params": {"n": n}})),
            );
            assert_eq!(status, 202, "{run}");
        }
    }
    for task in ["serial", "free"] {
        let mut runs = Vec::new();
        sundial_tests::wait_until(&format!("40 runs of {task} to end"), 60, || {
            runs = d.all_runs(&format!("task={task}"));
            runs.len() == 40 && runs.iter().all(|r| r["finished_at"].is_string())
        });
        let statuses: Vec<&Value> = runs.iter().map(|r| &r["status"]).collect();
        assert!(
            statuses.iter().all(|s| **s == "succeeded"),
            "{task}: every run ran, one after the other: {statuses:?}"
        );
    }
}

#[test]
fn delete_after_run_removes_the_task_once_it_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    let t = json!({"name": "once", "plugin": "echo", "delete_after_run": true});
    d.expect(201, "POST", "/v1/tasks", Some(&t));
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
    d.expect(
        200,
        "GET",
        &format!("/v1/runs/{}", run["id"].as_str().unwrap()),
        None,
    );
    let (_, audit) = d.call("GET", "/v1/audit?noun=task&actor=sundial", None);
    assert_eq!(audit["entries"][0]["action"], "delete");
}

#[test]
fn schedule_preview_shows_dst_moves_and_rejects_bad_rules() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    let body = json!({"rule": {"cron": "30 2 * * *"}, "timezone": "Europe/Berlin", "from": "2026-03-27T12:00:00Z", "count": 3});
    let preview = d.expect(200, "POST", "/v1/schedules/preview", Some(&body));
    let slots = preview["slots"].as_array().unwrap();
    assert_eq!(slots[1]["local"], "2026-03-29T03:00:00.000+02:00");
    assert_eq!(instant(&slots[1]["utc"]), instant(&json!("2026-03-29T01:00:00Z")));
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
        assert!(message(&err).contains(needle), "{bad}: {err}");
    }
}

#[test]
fn cancel_lands_at_any_moment_of_a_run() {
    // Cancelling right after the start hits a run while queued, while its plugin is
    // still loading, or while it runs; each must end cancelled, not be retried.
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    d.install_hostile(json!({}));
    let task = json!({"name": "spin", "plugin": "hostile", "params": {"mode": "loop"}, "timeout_ms": 60000,
                      "retry": {"max_attempts": 5, "retry_on": {"timeout": true, "crash": true, "failed": true}}});
    d.expect(201, "POST", "/v1/tasks", Some(&task));
    let mut ids = Vec::new();
    for i in 0..12 {
        let (_, run) = d.call("POST", "/v1/tasks/spin/run", None);
        let id = run["id"].as_str().unwrap().to_string();
        // A different moment of the run each time (not a synchronisation).
        std::thread::sleep(std::time::Duration::from_millis(i * 3));
        let (status, cancelled) = d.call("POST", &format!("/v1/runs/{id}/cancel"), None);
        assert_eq!(status, 200, "{cancelled}");
        assert_eq!(cancelled["status"], "cancelled", "attempt {i}: {cancelled}");
        ids.push(id);
    }
    // And they stay cancelled: no retry starts later, nothing keeps running. The
    // executor lets go of a cancelled plugin within a moment; poll until nothing of the
    // task runs, then look at every run.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let active =
            d.all_runs("task=spin&status=running").len() + d.all_runs("task=spin&status=queued").len();
        let (_, metrics) = d.call("GET", "/metrics", None);
        let running = sundial_tests::metric(metrics.as_str().unwrap_or_default(), "sundial_runs_running ");
        if active == 0 && running == 0.0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{active} runs still active, {running} running"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    for id in &ids {
        let (_, run) = d.call("GET", &format!("/v1/runs/{id}"), None);
        assert_eq!(run["status"], "cancelled", "{run}");
        assert!(
            run["attempts"].as_array().unwrap().len() <= 1,
            "retried after its cancel: {run}"
        );
    }
}

#[test]
fn a_removed_bundled_plugin_stays_removed_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    d.expect(204, "DELETE", "/v1/plugins/slack", None);
    d.kill9();
    let d = Daemon::start(dir.path(), &[]);
    let (_, plugins) = d.call("GET", "/v1/plugins", None);
    let names = column(&plugins["plugins"], "name");
    assert!(!names.contains(&"slack"), "{names:?}");
    assert!(
        names.contains(&"vergeos") && names.contains(&"email"),
        "{names:?}"
    );
}

/// Whether opening the daemon's redb file needs a repair (the file was not closed).
fn needs_repair(data: &std::path::Path) -> bool {
    let repaired = std::rc::Rc::new(std::cell::Cell::new(false));
    let seen = repaired.clone();
    let mut builder = redb::Database::builder();
    builder.set_repair_callback(move |_| seen.set(true));
    drop(
        builder
            .create(data.join("sundial.redb"))
            .expect("open the data file"),
    );
    repaired.get()
}

#[test]
fn a_stopped_daemon_closes_its_data_file_cleanly_and_a_killed_one_does_not() {
    // Closed cleanly, the next start opens the file at once; otherwise redb verifies
    // every page's checksum and rebuilds its allocator, seconds per GiB.
    if sundial_tests::pg::redb_only("the data file") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    d.create("/v1/tasks", json!({"name": "t", "plugin": "echo"}));
    d.run_wait("t", json!({}));
    assert!(d.stop().success());
    assert!(
        !needs_repair(dir.path()),
        "a SIGTERM stop left the file needing repair"
    );
    // The same after a kill: the file needs its repair (what the check above rules out).
    let d = Daemon::start(dir.path(), &[]);
    d.run_wait("t", json!({}));
    d.kill9();
    assert!(
        needs_repair(dir.path()),
        "a killed daemon's file should need repair"
    );
    // Repaired, everything is there.
    let d = Daemon::start(dir.path(), &[]);
    let (_, runs) = d.call("GET", "/v1/runs?task=t", None);
    assert_eq!(runs["runs"].as_array().map(Vec::len), Some(2), "{runs}");
}
