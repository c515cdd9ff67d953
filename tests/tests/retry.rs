//! Retry and replay (`POST /v1/runs/{id}/retry`, `sundial run retry`) and the bulk
//! forms (`POST /v1/runs/retry`, `POST /v1/runs/cancel`), on the real daemon.

use serde_json::{Value, json};
use std::process::Output;
use sundial_tests::{Daemon, message, pluck};

fn cli(d: &Daemon, args: &[&str]) -> Output {
    d.cli(args)
}

fn ok(d: &Daemon, args: &[&str]) -> String {
    d.cli_ok(args)
}

fn task(d: &Daemon, spec: Value) {
    d.expect(201, "POST", "/v1/tasks", Some(&spec));
}

fn hostile(d: &Daemon) {
    d.install_hostile(json!({}));
}

#[test]
fn a_retry_is_the_same_run_again_linked_to_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    hostile(&d);
    task(
        &d,
        json!({"name": "flaky", "plugin": "hostile", "params": {"mode": "fail"}, "retry": {"max_attempts": 1}}),
    );
    // A per-run params override: the retry must use it, not the task's.
    let first = d.run_wait("flaky", json!({"mode": "fail", "note": "override"}));
    assert_eq!(first["status"], "failed", "{first}");
    let id = first["id"].as_str().unwrap();
    let again = d.expect(200, "POST", &format!("/v1/runs/{id}/retry?wait=true"), None);
    assert_ne!(again["id"], first["id"]);
    assert_eq!(again["retry_of"], first["id"], "{again}");
    assert_eq!(again["params"], first["params"], "{again}");
    assert_eq!(again["cause"], first["cause"], "{again}");
    assert_eq!(again["task_id"], first["task_id"]);
    assert_eq!(again["status"], "failed");
    assert_eq!(again["started_by"], "admin");
    assert!(first.get("retry_of").is_none(), "{first}");

    // A succeeded run is replayed; the new run is in the task log beside the first.
    task(&d, json!({"name": "hello", "plugin": "echo", "params": {"n": 1}}));
    let done = d.run_wait("hello", json!({"n": 2}));
    d.expect(
        202,
        "POST",
        &format!("/v1/runs/{}/retry", done["id"].as_str().unwrap()),
        None,
    );
    let runs = d.all_runs("task=hello");
    assert_eq!(runs.len(), 2);
    let linked: Vec<&Value> = runs.iter().filter(|r| r["retry_of"] == done["id"]).collect();
    assert_eq!(linked.len(), 1, "{runs:?}");
    assert_eq!(linked[0]["params"], json!({"n": 2}));

    // The CLI says which run it started, and shows the link.
    let out = ok(&d, &["run", "retry", id]);
    assert!(
        out.starts_with("run ") && out.contains(&format!(" retries {id} (queued)")),
        "{out}"
    );
    let new_id = out.split_whitespace().nth(1).unwrap().to_string();
    let shown = ok(&d, &["run", "get", &new_id]);
    assert!(shown.contains(&format!("retry of {id}")), "{shown}");

    // What cannot be retried, and why.
    d.expect(404, "POST", "/v1/runs/01ARZ3NDEKTSV4RRFFQ69G5FAV/retry", None);
    d.expect(200, "POST", "/v1/tasks/flaky/disable", None);
    let v = d.expect(409, "POST", &format!("/v1/runs/{id}/retry"), None);
    assert!(message(&v).contains("disabled"), "{v}");
    d.expect(200, "POST", "/v1/tasks/flaky/enable", None);
    task(&d, json!({"name": "gone", "plugin": "echo"}));
    let gone = d.run_wait("gone", json!({}));
    d.expect(204, "DELETE", "/v1/tasks/gone", None);
    let v = d.expect(
        404,
        "POST",
        &format!("/v1/runs/{}/retry", gone["id"].as_str().unwrap()),
        None,
    );
    assert!(message(&v).contains("no longer exists"), "{v}");
    d.expect(400, "POST", &format!("/v1/runs/{id}/retry?wait=maybe"), None);
}

#[test]
fn an_event_started_run_is_retried_with_its_event() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    task(&d, json!({"name": "on-order", "plugin": "echo"}));
    d.create(
        "/v1/triggers",
        json!({"name": "orders", "on": {"type": "order.created"}, "targets": [{"task": "on-order"}]}),
    );
    d.expect(
        202,
        "POST",
        "/v1/events",
        Some(
            &json!({"specversion": "1.0", "id": "o-1", "source": "/shop", "type": "order.created",
                     "subject": "order/9", "data": {"total": 12.5}}),
        ),
    );
    let first = loop {
        let runs = d.all_runs("task=on-order");
        if let Some(r) = runs.iter().find(|r| r["status"] == "succeeded") {
            break r.clone();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let again = d.expect(
        200,
        "POST",
        &format!("/v1/runs/{}/retry?wait=true", first["id"].as_str().unwrap()),
        None,
    );
    assert_eq!(again["cause"]["kind"], "event", "{again}");
    assert_eq!(again["cause"], first["cause"]);
    assert_eq!(again["event"], first["event"], "the original event, again");
    assert_eq!(again["event"]["data"], json!({"total": 12.5}));
    // echo returns what it was given: the plugin saw the event again.
    assert_eq!(again["output"]["event"], first["output"]["event"], "{again}");
    assert_eq!(again["output"]["cause"], "event");
    assert_eq!(again["output"]["run_id"], again["id"]);
}

#[test]
fn bulk_retry_and_cancel_act_on_what_the_filter_matches() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &["--workers", "1"]);
    hostile(&d);
    task(
        &d,
        json!({"name": "nightly", "plugin": "hostile", "params": {"mode": "fail"}, "retry": {"max_attempts": 1}}),
    );
    task(&d, json!({"name": "report", "plugin": "echo"}));
    let mut failed = Vec::new();
    for _ in 0..3 {
        failed.push(d.run_wait("nightly", json!({"mode": "fail"}))["id"].clone());
    }
    d.run_wait("report", json!({}));

    // Refused: no filter, a bad status for the action, an unknown task, a bad limit.
    for (body, status, needle) in [
        (json!({}), 400, "at least one filter"),
        (json!({"status": "running"}), 400, "retry takes no running runs"),
        (json!({"task": "nope"}), 404, "task \"nope\" not found"),
        (json!({"task": "nightly", "limit": 0}), 400, "limit"),
        (json!({"task": "nightly", "limit": 1001}), 400, "limit"),
        (json!({"task": "nightly", "colour": "red"}), 400, "colour"),
    ] {
        let (s, v) = d.call("POST", "/v1/runs/retry", Some(&body));
        assert_eq!(s, status, "{body}: {v}");
        assert!(message(&v).contains(needle), "{body}: {v}");
    }
    d.expect(400, "POST", "/v1/runs/cancel", Some(&json!({"status": "failed"})));
    assert_eq!(
        d.call("GET", "/v1/runs?task=nope", None).0,
        404,
        "a wrong name is not an empty list"
    );

    // A dry run changes nothing.
    let v = d.expect(
        200,
        "POST",
        "/v1/runs/retry",
        Some(&json!({"task": "nightly", "status": "failed", "dry_run": true})),
    );
    assert_eq!(
        (v["matched"].clone(), v["retried"].clone(), v["more"].clone()),
        (json!(3), json!(0), json!(false))
    );
    assert_eq!(d.all_runs("").len(), 4, "nothing was queued");
    let out = ok(
        &d,
        &[
            "run",
            "retry",
            "--task",
            "nightly",
            "--status",
            "failed",
            "--dry-run",
        ],
    );
    assert!(out.contains("3 matched, dry run: nothing done"), "{out}");

    // Two of three (newest first), then the rest.
    let v = d.expect(
        200,
        "POST",
        "/v1/runs/retry",
        Some(&json!({"task": "nightly", "status": "failed", "limit": 2})),
    );
    assert_eq!(
        (v["matched"].clone(), v["retried"].clone(), v["more"].clone()),
        (json!(2), json!(2), json!(true))
    );
    let retried = pluck(&v["runs"], "run");
    assert_eq!(retried, vec![failed[2].clone(), failed[1].clone()]);
    for r in v["runs"].as_array().unwrap() {
        let (s, new) = d.call("GET", &format!("/v1/runs/{}", r["retry"].as_str().unwrap()), None);
        assert_eq!(s, 200);
        assert_eq!(new["retry_of"], r["run"], "{new}");
    }
    assert_eq!(
        d.all_runs("task=report").len(),
        1,
        "the other task's runs were not touched"
    );

    // Bulk cancel: one run holds the only worker, three more wait behind it.
    task(
        &d,
        json!({"name": "stuck", "plugin": "hostile", "params": {"mode": "loop"}, "timeout_ms": 600000}),
    );
    let wait_idle = || {
        while d
            .all_runs("")
            .iter()
            .any(|r| r["status"] == "queued" || r["status"] == "running")
        {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    wait_idle();
    for _ in 0..4 {
        d.expect(202, "POST", "/v1/tasks/stuck/run", None);
    }
    let out = ok(&d, &["run", "cancel", "--task", "stuck"]);
    assert!(out.contains("4 matched, 4 cancelled"), "{out}");
    let stuck = d.all_runs("task=stuck");
    assert_eq!(stuck.len(), 4);
    assert!(stuck.iter().all(|r| r["status"] == "cancelled"), "{stuck:?}");

    // The CLI refuses an id with filters, and neither.
    for args in [
        vec!["run", "cancel", "01ARZ3NDEKTSV4RRFFQ69G5FAV", "--task", "stuck"],
        vec!["run", "retry"],
        vec!["run", "retry", "--task", "stuck", "--wait"],
    ] {
        let out = cli(&d, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}
