//! Schedules driving tasks through the real daemon: links, 409 on delete, pause, and
//! exactly-once slots across `kill -9` with each misfire policy.

use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::{Duration, Instant};
use sundial_tests::Daemon;

fn schedule_runs(d: &Daemon, task: &str) -> Vec<Value> {
    d.all_runs(&format!("task={task}&cause=schedule"))
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_schedule_drives_its_tasks_and_guards_its_links() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    for name in ["a", "b"] {
        assert_eq!(
            d.call(
                "POST",
                "/v1/tasks",
                Some(&json!({"name": name, "plugin": "echo"}))
            )
            .0,
            201
        );
    }
    let (status, s) = d.call(
        "POST",
        "/v1/schedules",
        Some(&json!({"name": "tick", "rule": {"cron": "* * * * * *"}})),
    );
    assert_eq!(status, 201, "{s}");
    assert_eq!(
        d.call(
            "POST",
            "/v1/schedules",
            Some(&json!({"name": "tick", "rule": {"cron": "@daily"}}))
        )
        .0,
        409
    );
    for task in ["a", "b"] {
        assert_eq!(
            d.call("POST", "/v1/schedules/tick/tasks", Some(&json!({"task": task})))
                .0,
            200
        );
    }
    assert_eq!(
        d.call("POST", "/v1/schedules/tick/tasks", Some(&json!({"task": "nope"})))
            .0,
        404
    );
    wait_until("two slots for both tasks", || {
        schedule_runs(&d, "a").len() >= 2 && schedule_runs(&d, "b").len() >= 2
    });
    let run = &schedule_runs(&d, "a")[0];
    assert_eq!(run["cause"]["schedule"], s["id"]);
    assert!(run["cause"]["slot"].as_str().unwrap().ends_with(".000Z"));
    assert_eq!(run["started_by"], "sundial");

    // Deleting a schedule that drives tasks names them; force detaches.
    let (status, err) = d.call("DELETE", "/v1/schedules/tick", None);
    assert_eq!(status, 409);
    let msg = err["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains('a') && msg.contains('b') && msg.contains("force"),
        "{msg}"
    );
    // Paused: no new slots.
    assert_eq!(
        d.call("POST", "/v1/schedules/tick/pause", None).1["enabled"],
        false
    );
    std::thread::sleep(Duration::from_millis(300));
    let before = schedule_runs(&d, "a").len();
    std::thread::sleep(Duration::from_millis(2200));
    assert_eq!(
        schedule_runs(&d, "a").len(),
        before,
        "a paused schedule does not fire"
    );
    assert_eq!(
        d.call("DELETE", "/v1/schedules/tick/tasks/b", None).1["tasks"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(d.call("DELETE", "/v1/schedules/tick?force=true", None).0, 204);
    assert_eq!(d.call("GET", "/v1/schedules/tick", None).0, 404);
    let (_, audit) = d.call("GET", "/v1/audit?noun=schedule", None);
    assert!(audit["entries"].as_array().unwrap().len() >= 5);
}

fn setup(d: &Daemon, misfire: Value, end: Option<String>) {
    assert_eq!(
        d.call("POST", "/v1/tasks", Some(&json!({"name": "t", "plugin": "echo"})))
            .0,
        201
    );
    let s = json!({"name": "s", "rule": {"cron": "* * * * * *"}, "misfire": misfire, "end": end});
    assert_eq!(d.call("POST", "/v1/schedules", Some(&s)).0, 201);
    assert_eq!(
        d.call("POST", "/v1/schedules/s/tasks", Some(&json!({"task": "t"})))
            .0,
        200
    );
}

fn no_duplicate_slots(runs: &[Value]) -> HashSet<String> {
    let mut slots = HashSet::new();
    for r in runs {
        let slot = r["cause"]["slot"].as_str().unwrap().to_string();
        assert!(slots.insert(slot.clone()), "slot {slot} fired twice");
    }
    slots
}

#[test]
fn slots_fire_exactly_once_across_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    setup(&d, json!({"policy": "run_all", "max": 100}), None);
    let mut d = d;
    for _ in 0..3 {
        wait_until("a few slots", || schedule_runs(&d, "t").len() >= 2);
        std::thread::sleep(Duration::from_millis(700));
        d.kill9();
        std::thread::sleep(Duration::from_millis(1500));
        d = Daemon::start(dir.path(), &[]);
    }
    std::thread::sleep(Duration::from_millis(1500));
    let runs = schedule_runs(&d, "t");
    let slots = no_duplicate_slots(&runs);
    // run_all: every second from the first slot to now is there, downtime included.
    let mut sorted: Vec<&String> = slots.iter().collect();
    sorted.sort();
    let first = chrono::DateTime::parse_from_rfc3339(sorted[0]).unwrap();
    let last = chrono::DateTime::parse_from_rfc3339(sorted[sorted.len() - 1]).unwrap();
    let expected = (last - first).num_seconds() + 1;
    assert_eq!(slots.len() as i64, expected, "a gap or an extra slot: {sorted:?}");
}

#[test]
fn misfire_policies_after_downtime() {
    for (policy, check) in [
        (json!({"policy": "skip"}), "skip"),
        (json!({"policy": "run_once"}), "run_once"),
        (json!({"policy": "run_all", "max": 2}), "run_all"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let d = Daemon::start(dir.path(), &[]);
        // The schedule ends while the daemon is down, so after the restart only the
        // misfire policy creates runs.
        let end = (chrono::Utc::now() + chrono::Duration::milliseconds(3600)).to_rfc3339();
        setup(&d, policy, Some(end));
        wait_until("the first slot", || !schedule_runs(&d, "t").is_empty());
        let before: HashSet<String> = schedule_runs(&d, "t")
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect();
        d.kill9();
        std::thread::sleep(Duration::from_millis(4500));
        let d = Daemon::start(dir.path(), &[]);
        let after = schedule_runs(&d, "t");
        no_duplicate_slots(&after);
        let new: Vec<&Value> = after
            .iter()
            .filter(|r| !before.contains(r["id"].as_str().unwrap()))
            .collect();
        let skipped = new.iter().filter(|r| r["status"] == "skipped").count();
        let missed_logged = new
            .iter()
            .filter(|r| {
                r["log"]["lines"][0]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("sundial.schedule.missed")
            })
            .count();
        assert_eq!(
            skipped, missed_logged,
            "{check}: every skipped slot says sundial.schedule.missed"
        );
        let ran = new.len() - skipped;
        let missed = new.len();
        assert!(missed >= 2, "{check}: the downtime covered {missed} slots");
        match check {
            "skip" => assert_eq!((ran, skipped), (0, missed), "skip"),
            "run_once" => assert_eq!((ran, skipped), (1, missed - 1), "run_once"),
            _ => assert_eq!((ran, skipped), (2, missed - 2), "run_all max 2"),
        }
        // The run that ran is the newest missed slot.
        if check == "run_once" {
            let newest = new
                .iter()
                .map(|r| r["cause"]["slot"].as_str().unwrap())
                .max()
                .unwrap();
            let ran_slot = new.iter().find(|r| r["status"] != "skipped").unwrap()["cause"]["slot"]
                .as_str()
                .unwrap();
            assert_eq!(ran_slot, newest);
        }
    }
}
