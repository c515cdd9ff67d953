//! Schedules driving tasks through the real daemon: links, 409 on delete, pause and
//! resume, edits, jitter and misfire policies on a test clock (exact, no sleeping), and
//! exactly-once slots across `kill -9` on the system clock.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;
use sundial_tests::{Daemon, column, instant, items, message, wait_until};

fn schedule_runs(d: &Daemon, task: &str) -> Vec<Value> {
    d.all_runs(&format!("task={task}&cause=schedule"))
}

/// The test clock's starting instant, and instants `secs` after it.
const T0: &str = "2026-06-01T00:00:00Z";

fn at(secs: i64) -> DateTime<Utc> {
    instant(&json!(T0)) + chrono::Duration::seconds(secs)
}

fn text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn secs(range: impl IntoIterator<Item = i64>) -> Vec<DateTime<Utc>> {
    range.into_iter().map(at).collect()
}

#[test]
fn a_schedule_drives_its_tasks_pauses_resumes_and_guards_its_links() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &["--test-clock", T0]);
    for name in ["a", "b"] {
        d.create("/v1/tasks", json!({"name": name, "plugin": "echo"}));
    }
    // From one second on, so both tasks are attached before the first slot.
    let s = d.create(
        "/v1/schedules",
        json!({"name": "tick", "rule": {"cron": "* * * * * *"}, "start": text(at(1))}),
    );
    d.expect(
        409,
        "POST",
        "/v1/schedules",
        Some(&json!({"name": "tick", "rule": {"cron": "@daily"}})),
    );
    for task in ["a", "b"] {
        d.attach("tick", task);
    }
    d.expect(
        404,
        "POST",
        "/v1/schedules/tick/tasks",
        Some(&json!({"task": "nope"})),
    );
    d.set_clock(&text(at(2)));
    assert_eq!(d.fired("a"), secs(1..=2));
    assert_eq!(d.fired("b"), secs(1..=2));
    let run = &d.all_runs("task=a&cause=schedule")[0];
    assert_eq!(run["cause"]["schedule"], s["id"]);
    assert_eq!(run["started_by"], "sundial");

    // Deleting a schedule that drives tasks names them; force detaches.
    let err = d.expect(409, "DELETE", "/v1/schedules/tick", None);
    let msg = message(&err);
    assert!(msg.contains("a, b") && msg.contains("force"), "{msg}");

    // Paused: the slots while paused never fire, not even as missed ones.
    let (status, paused) = d.call("POST", "/v1/schedules/tick/pause", None);
    assert_eq!((status, &paused["enabled"]), (200, &json!(false)), "{paused}");
    assert_eq!(paused["next_slot"], Value::Null, "{paused}");
    d.set_clock(&text(at(5)));
    assert_eq!(d.fired("a"), secs(1..=2), "a paused schedule does not fire");
    assert!(d.skipped("a").is_empty());
    // Resumed: it goes on from now (the slot at 5 s is due now), with no replay.
    let (status, resumed) = d.call("POST", "/v1/schedules/tick/resume", None);
    assert_eq!((status, &resumed["enabled"]), (200, &json!(true)), "{resumed}");
    d.set_clock(&text(at(7)));
    assert_eq!(d.fired("a"), [secs(1..=2), secs(5..=7)].concat());
    assert!(d.skipped("a").is_empty());

    let (status, detached) = d.call("DELETE", "/v1/schedules/tick/tasks/b", None);
    assert_eq!(
        (status, detached["tasks"].as_array().unwrap().len()),
        (200, 1),
        "{detached}"
    );
    d.set_clock(&text(at(8)));
    assert_eq!(
        d.fired("b"),
        [secs(1..=2), secs(5..=7)].concat(),
        "b no longer driven"
    );
    assert_eq!(d.fired("a").last(), Some(&at(8)));
    d.expect(204, "DELETE", "/v1/schedules/tick?force=true", None);
    d.expect(404, "GET", "/v1/schedules/tick", None);
    d.set_clock(&text(at(10)));
    assert_eq!(
        d.fired("a").last(),
        Some(&at(8)),
        "a deleted schedule does not fire"
    );
    let (_, audit) = d.call("GET", "/v1/audit?noun=schedule", None);
    let actions = column(&audit["entries"], "action");
    // Newest first: delete, detach, resume, pause, attach a and b, create.
    assert_eq!(actions.first(), Some(&"delete"), "{audit}");
    assert!(actions.contains(&"create") && actions.len() >= 6, "{actions:?}");
}

#[test]
fn editing_a_schedule_applies_from_now_and_a_refused_edit_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &["--test-clock", T0]);
    d.create("/v1/tasks", json!({"name": "t", "plugin": "echo"}));
    let hour = |h: i64| at(h * 3600);
    let minute = |m: i64| at(m * 60);
    let s = json!({"name": "s", "rule": {"cron": "0 * * * *"}, "start": text(at(1)), "timezone": "UTC"});
    d.expect(201, "POST", "/v1/schedules", Some(&s));
    d.attach("s", "t");
    d.set_clock(&text(minute(90)));
    assert_eq!(d.fired("t"), vec![hour(1)]);

    // Refused edits name the field and change nothing: the hourly rule still fires.
    for (patch, needle) in [
        (json!({"rule": {"cron": "61 * * * *"}}), "rule.cron"),
        (json!({"timezone": "Mars/Base"}), "timezone"),
        (
            json!({"id": "01JZZZZZZZZZZZZZZZZZZZZZZZ"}),
            "id: cannot be changed",
        ),
        (json!({"jitter_ms": 7_200_000}), "jitter_ms"),
        (json!({"end": text(at(0))}), "end"),
        (json!({"misfire": {"policy": "sometimes"}}), "misfire"),
    ] {
        let (status, v) = d.call("PATCH", "/v1/schedules/s", Some(&patch));
        assert_eq!(status, 400, "{patch}: {v}");
        assert!(message(&v).contains(needle), "{patch}: {v}");
    }
    let (_, current) = d.call("GET", "/v1/schedules/s", None);
    assert_eq!(current["rule"], json!({"cron": "0 * * * *"}), "{current}");
    assert_eq!(current["timezone"], "UTC");

    // A new rule applies from now: its slots between the last fire (01:00) and now
    // (01:30), such as 01:15, are not replayed; 01:30 is due now and fires.
    let v = d.patch("/v1/schedules/s", json!({"rule": {"cron": "*/15 * * * *"}}));
    assert_eq!(v["rule"], json!({"cron": "*/15 * * * *"}));
    // Let what is due now fire, then move on in steps: a jump past a due slot by more
    // than a minute is a misfire (its policy decides), not a fire.
    d.set_clock(&text(minute(90)));
    d.set_clock(&text(minute(105)));
    d.set_clock(&text(minute(120)));
    assert_eq!(d.fired("t"), vec![hour(1), minute(90), minute(105), minute(120)]);
    assert!(d.skipped("t").is_empty());

    // A new zone and rule: 09:00 in Berlin (CEST, UTC+2) is 07:00 UTC; nothing fires
    // between, and the view's next slot says so.
    let v = d.patch(
        "/v1/schedules/s",
        json!({"rule": {"cron": "0 9 * * *"}, "timezone": "Europe/Berlin"}),
    );
    assert_eq!(instant(&v["next_slot"]), hour(7), "{v}");
    d.set_clock(&text(hour(7) - chrono::Duration::seconds(1)));
    assert_eq!(d.fired("t").len(), 4, "nothing before 09:00 Berlin");
    d.set_clock(&text(hour(7)));
    assert_eq!(d.fired("t").last(), Some(&hour(7)));

    // `null` resets a field to its default; the audit log has every change, with the
    // rule before and after.
    let (status, v) = d.call("PATCH", "/v1/schedules/s", Some(&json!({"jitter_ms": 1000})));
    assert_eq!((status, &v["jitter_ms"]), (200, &json!(1000)), "{v}");
    let (status, v) = d.call("PATCH", "/v1/schedules/s", Some(&json!({"jitter_ms": null})));
    assert_eq!((status, &v["jitter_ms"]), (200, &json!(0)), "{v}");
    let (_, audit) = d.call("GET", "/v1/audit?noun=schedule", None);
    let updates: Vec<&Value> = items(&audit["entries"])
        .iter()
        .filter(|e| e["action"] == "update")
        .collect();
    assert_eq!(updates.len(), 4, "the refused edits are not audited: {audit}");
    let rule_change = &updates[3];
    assert_eq!(
        rule_change["before"]["spec"]["rule"],
        json!({"cron": "0 * * * *"}),
        "{rule_change}"
    );
    assert_eq!(
        rule_change["after"]["spec"]["rule"],
        json!({"cron": "*/15 * * * *"}),
        "{rule_change}"
    );
}

#[test]
fn jitter_delays_each_slot_within_its_bound_and_records_when_it_was_due() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &["--test-clock", T0]);
    d.create("/v1/tasks", json!({"name": "t", "plugin": "echo"}));
    // Hourly with up to 10 minutes of jitter.
    let s = json!({"name": "s", "rule": {"cron": "0 * * * *"}, "start": text(at(1)), "jitter_ms": 600_000});
    d.expect(201, "POST", "/v1/schedules", Some(&s));
    d.attach("s", "t");
    // Step through four hours a minute at a time: at each step exactly the slots whose
    // due time (slot + jitter) has come have runs.
    let mut first_seen: std::collections::HashMap<String, DateTime<Utc>> = Default::default();
    for minute in 1..=(4 * 60 + 11) {
        let now = at(minute * 60);
        d.set_clock(&text(now));
        for run in d.all_runs("task=t&cause=schedule") {
            let id = run["id"].as_str().unwrap().to_string();
            first_seen.entry(id).or_insert(now);
        }
    }
    let runs = d.all_runs("task=t&cause=schedule");
    assert_eq!(runs.len(), 4, "one run per hourly slot");
    let mut delays = Vec::new();
    for run in &runs {
        let slot = instant(&run["cause"]["slot"]);
        let due = instant(&run["cause"]["due"]);
        let delay = due - slot;
        assert!(
            delay >= chrono::Duration::zero() && delay <= chrono::Duration::minutes(10),
            "due {due} is not within 10 minutes after slot {slot}: {run}"
        );
        // It appeared at the first minute step at or after its due time, not before.
        let seen = first_seen[run["id"].as_str().unwrap()];
        assert!(
            seen >= due && seen - due < chrono::Duration::minutes(1),
            "due {due}, seen at {seen}: {run}"
        );
        delays.push(delay);
    }
    // The delay is drawn per slot: four slots do not all get the same one.
    delays.dedup();
    assert!(delays.len() > 1, "every slot got the same jitter: {delays:?}");
}

/// The jitter the scheduler draws for a slot (`scheduler/slot.rs`: a hash of the
/// schedule id and the slot's milliseconds, modulo the bound plus one).
fn expected_jitter(id: &str, slot: DateTime<Utc>, jitter_ms: u64) -> chrono::Duration {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (id, slot.timestamp_millis()).hash(&mut h);
    chrono::Duration::milliseconds((h.finish() % (jitter_ms + 1)) as i64)
}

#[test]
fn a_restart_places_every_schedule_where_it_was_left_after_sigterm_and_after_kill_9() {
    // On redb start-up places schedules from the due-time index (each one's next slot,
    // kept in the commits that change it); on PostgreSQL from the records. Either way
    // an edit, a pause, a fired slot and a jitter made before a stop must hold after it.
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &["--test-clock", T0]);
    let every_ten = json!({"cron": "*/10 * * * * *"});
    let mut ids = std::collections::HashMap::new();
    for (name, extra) in [
        ("steady", json!({})),
        ("edited", json!({})),
        ("paused", json!({})),
        ("jittered", json!({"jitter_ms": 3000})),
    ] {
        d.create("/v1/tasks", json!({"name": name, "plugin": "echo"}));
        let mut spec = json!({"name": name, "rule": every_ten, "start": text(at(1))});
        spec.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let s = d.create("/v1/schedules", spec);
        ids.insert(name, s["id"].as_str().unwrap().to_string());
        d.attach(name, name);
    }
    d.patch(
        "/v1/schedules/edited",
        json!({"rule": {"cron": "5,15,25,35,45,55 * * * * *"}}),
    );
    d.expect(200, "POST", "/v1/schedules/paused/pause", None);
    d.set_clock(&text(at(14)));
    let fired =
        |d: &Daemon| ["steady", "edited", "paused", "jittered"].map(|t| (t, d.fired(t), d.skipped(t)));
    let want = |steady: Vec<DateTime<Utc>>, edited: Vec<DateTime<Utc>>, paused: Vec<DateTime<Utc>>| {
        [
            ("steady", steady.clone(), vec![]),
            ("edited", edited, vec![]),
            ("paused", paused, vec![]),
            ("jittered", steady, vec![]),
        ]
    };
    assert_eq!(fired(&d), want(secs([10]), secs([5]), vec![]));

    // Stopped cleanly at 14 s: nothing missed, everything waits where it was.
    d.stop();
    let d = Daemon::start(dir.path(), &["--test-clock", &text(at(14))]);
    d.set_clock(&text(at(24)));
    assert_eq!(
        fired(&d),
        want(secs([10, 20]), secs([5, 15]), vec![]),
        "after SIGTERM"
    );

    // Killed at 24 s: the slots fired before are durable, with their entries.
    d.kill9();
    let d = Daemon::start(dir.path(), &["--test-clock", &text(at(24))]);
    d.set_clock(&text(at(44)));
    assert_eq!(
        fired(&d),
        want(secs([10, 20, 30, 40]), secs([5, 15, 25, 35]), vec![]),
        "after kill -9"
    );
    // Every jittered slot was due at its own jitter, before and after both restarts.
    for run in schedule_runs(&d, "jittered") {
        let (slot, due) = (instant(&run["cause"]["slot"]), instant(&run["cause"]["due"]));
        assert_eq!(due - slot, expected_jitter(&ids["jittered"], slot, 3000), "{run}");
    }
    // The paused one, resumed, goes on from now.
    d.expect(200, "POST", "/v1/schedules/paused/resume", None);
    d.set_clock(&text(at(50)));
    assert_eq!(d.fired("paused"), secs([50]));
    assert!(d.skipped("paused").is_empty());
}

#[test]
fn after_long_downtime_every_missed_slot_is_recorded_once_though_commits_are_paced() {
    // Two schedules every second, down 5 minutes: 600 missed slots, more than the 256
    // slot commits start-up keeps in flight (`scheduler/startup.rs`).
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &["--test-clock", T0]);
    for name in ["a", "b"] {
        d.create("/v1/tasks", json!({"name": name, "plugin": "echo"}));
        d.create(
            "/v1/schedules",
            json!({"name": name, "rule": {"cron": "* * * * * *"}, "start": text(at(1)),
                   "misfire": {"policy": "run_once"}}),
        );
        d.attach(name, name);
    }
    d.set_clock(&text(at(1)));
    d.stop();
    let d = Daemon::start(dir.path(), &["--test-clock", &text(at(301))]);
    for name in ["a", "b"] {
        // run_once: every slot in between recorded as missed, the newest one run.
        assert_eq!(d.fired(name), secs([1, 301]), "{name}");
        assert_eq!(d.skipped(name), secs(2..=300), "{name}");
    }
    // And it goes on from there.
    d.set_clock(&text(at(302)));
    assert_eq!(d.fired("a"), secs([1, 301, 302]));
}

fn setup(d: &Daemon, misfire: Value, end: Option<String>) {
    d.create("/v1/tasks", json!({"name": "t", "plugin": "echo"}));
    // On a test clock the schedule starts at 1 s, after the task is attached; on the
    // system clock `start` is now.
    let start = d.call("GET", "/v1/clock", None).1["manual"] == true;
    let mut s = json!({"name": "s", "rule": {"cron": "* * * * * *"}, "misfire": misfire, "end": end});
    if start {
        s["start"] = json!(text(at(1)));
    }
    d.expect(201, "POST", "/v1/schedules", Some(&s));
    d.attach("s", "t");
}

fn no_duplicate_slots(runs: &[Value]) -> HashSet<DateTime<Utc>> {
    let mut slots = HashSet::new();
    for r in runs {
        let slot = instant(&r["cause"]["slot"]);
        assert!(slots.insert(slot), "slot {slot} fired twice");
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
        wait_until("a few slots", 30, || schedule_runs(&d, "t").len() >= 2);
        std::thread::sleep(Duration::from_millis(700));
        d.kill9();
        std::thread::sleep(Duration::from_millis(1500));
        d = Daemon::start(dir.path(), &[]);
    }
    // The missed slots are recorded before the daemon listens; a few more fire now.
    wait_until("slots after the last restart", 30, || {
        schedule_runs(&d, "t").len() >= 8
    });
    let runs = schedule_runs(&d, "t");
    let slots = no_duplicate_slots(&runs);
    // run_all: every second from the first slot to now is there, downtime included.
    let mut sorted: Vec<&DateTime<Utc>> = slots.iter().collect();
    sorted.sort();
    let (first, last) = (sorted[0], sorted[sorted.len() - 1]);
    let expected = (*last - *first).num_seconds() + 1;
    assert_eq!(slots.len() as i64, expected, "a gap or an extra slot: {sorted:?}");
}

#[test]
fn misfire_policies_after_downtime() {
    // A per-second schedule that ends at 5 s; the daemon is down from 1 s to 10 s, so
    // the slots at 2..=5 s are missed and after the restart only the misfire policy
    // creates runs for them (on a test clock: exact, no sleeping).
    for (policy, want_fired, want_missed) in [
        (json!({"policy": "skip"}), secs([1]), secs(2..=5)),
        (json!({"policy": "run_once"}), secs([1, 5]), secs(2..=4)),
        (
            json!({"policy": "run_all", "max": 2}),
            secs([1, 4, 5]),
            secs(2..=3),
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let d = Daemon::start(dir.path(), &["--test-clock", T0]);
        setup(&d, policy.clone(), Some(text(at(5))));
        d.set_clock(&text(at(1)));
        assert_eq!(d.fired("t"), secs([1]), "{policy}");
        d.kill9();
        let d = Daemon::start(dir.path(), &["--test-clock", &text(at(10))]);
        d.set_clock(&text(at(10)));
        assert_eq!(d.fired("t"), want_fired, "{policy}");
        assert_eq!(d.skipped("t"), want_missed, "{policy}");
        for run in d.all_runs("task=t&cause=schedule&status=skipped") {
            let line = run["log"]["lines"][0]["message"].as_str().unwrap_or_default();
            assert!(line.contains("sundial.schedule.missed"), "{policy}: {run}");
        }
        // Past its end it fires no more.
        d.set_clock(&text(at(20)));
        assert_eq!(d.fired("t"), want_fired, "{policy}");
    }
}
