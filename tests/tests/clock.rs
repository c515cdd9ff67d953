//! The scheduler on an injectable clock, through the real daemon: `sundial serve
//! --test-clock TIME` and `POST /v1/clock` jump across DST transitions, month ends, a
//! leap day and downtime without sleeping. `POST /v1/clock` returns once every slot
//! due by the new time is recorded, so each assertion is exact.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sundial_tests::{Daemon, column, instant, message};

/// An RFC 3339 time as an instant: slots are compared as instants, not as text.
fn t(text: &str) -> DateTime<Utc> {
    instant(&json!(text))
}

fn set_clock(d: &Daemon, to: &str) {
    let v = d.expect(200, "POST", "/v1/clock", Some(&json!({ "to": to })));
    assert_eq!(v["manual"], true);
}

/// A task named `name` driven by a new schedule of the same name.
fn scheduled_task(d: &Daemon, name: &str, schedule: Value) {
    d.create("/v1/tasks", json!({"name": name, "plugin": "echo"}));
    let mut schedule = schedule;
    schedule["name"] = json!(name);
    d.expect(201, "POST", "/v1/schedules", Some(&schedule));
    d.attach(name, name);
}

#[test]
fn dst_month_ends_and_a_leap_day_fire_exactly_on_a_test_clock() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &["--test-clock", "2026-03-01T00:00:00Z"]);
    let (_, clock) = d.call("GET", "/v1/clock", None);
    assert_eq!(instant(&clock["now"]), t("2026-03-01T00:00:00Z"));
    assert_eq!(clock["manual"], true);

    let cron = |expr: &str, tz: &str, start: &str, end: Option<&str>| {
        let mut s =
            json!({"rule": {"cron": expr}, "timezone": tz, "start": start, "misfire": {"policy": "skip"}});
        if let Some(end) = end {
            s["end"] = json!(end);
        }
        s
    };
    // Each case: (task, schedule, every slot it must fire, in UTC).
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        (
            // 02:30 does not exist in New York on 8 March: first instant after the gap.
            "ny-spring",
            cron(
                "30 2 * * *",
                "America/New_York",
                "2026-03-07T12:00:00Z",
                Some("2026-03-09T00:00:00Z"),
            ),
            vec!["2026-03-08T07:00:00.000Z"],
        ),
        (
            "berlin-spring",
            cron(
                "30 2 * * *",
                "Europe/Berlin",
                "2026-03-28T12:00:00Z",
                Some("2026-03-30T00:00:00Z"),
            ),
            vec!["2026-03-29T01:00:00.000Z"],
        ),
        (
            // The last day of April and of May.
            "month-end",
            json!({"rule": {"calendar": {"every": 1, "unit": "months", "day_of_month": "last", "at": "09:00:00"}},
                   "timezone": "UTC", "start": "2026-04-01T00:00:00Z", "end": "2026-06-01T00:00:00Z",
                   "misfire": {"policy": "skip"}}),
            vec!["2026-04-30T09:00:00.000Z", "2026-05-31T09:00:00.000Z"],
        ),
        (
            // 02:30 happens twice in Berlin on 25 October: only the first (CEST) fires.
            "berlin-fall",
            cron(
                "30 2 * * *",
                "Europe/Berlin",
                "2026-10-24T12:00:00Z",
                Some("2026-10-26T00:00:00Z"),
            ),
            vec!["2026-10-25T00:30:00.000Z"],
        ),
        (
            "ny-fall",
            cron(
                "30 1 * * *",
                "America/New_York",
                "2026-10-31T12:00:00Z",
                Some("2026-11-02T00:00:00Z"),
            ),
            vec!["2026-11-01T05:30:00.000Z"],
        ),
        (
            // No 29 February in 2027: the next one is in 2028.
            "leap",
            cron("0 12 29 2 *", "UTC", "2026-03-01T00:00:00Z", None),
            vec!["2028-02-29T12:00:00.000Z"],
        ),
    ];
    for (task, schedule, _) in &cases {
        scheduled_task(&d, task, schedule.clone());
    }
    let mut steps: Vec<(&str, &str)> = cases
        .iter()
        .flat_map(|(task, _, slots)| slots.iter().map(move |s| (*s, *task)))
        .collect();
    steps.sort();
    for (slot, task) in &steps {
        let before = d.fired(task).len();
        let just_before = chrono::DateTime::parse_from_rfc3339(slot).unwrap() - chrono::Duration::seconds(1);
        set_clock(&d, &just_before.to_rfc3339());
        assert_eq!(d.fired(task).len(), before, "{task} fired before {slot}");
        set_clock(&d, slot);
        let now = d.fired(task);
        assert_eq!(now.len(), before + 1, "{task} fires at {slot}: {now:?}");
        assert_eq!(now.last(), Some(&t(slot)));
    }
    for (task, _, expected) in &cases {
        let expected: Vec<DateTime<Utc>> = expected.iter().map(|s| t(s)).collect();
        assert_eq!(d.fired(task), expected, "{task}");
        assert!(d.skipped(task).is_empty(), "{task}: nothing was missed");
    }
    // The schedule shows where it is: the leap schedule's next slot is four years on.
    let (_, leap) = d.call("GET", "/v1/schedules/leap", None);
    assert_eq!(
        instant(&leap["last_slot"]),
        instant(&json!("2028-02-29T12:00:00Z"))
    );
    assert_eq!(
        instant(&leap["next_slot"]),
        instant(&json!("2032-02-29T12:00:00Z"))
    );
}

#[test]
fn clock_jumps_and_downtime_obey_the_misfire_policy() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &["--test-clock", "2026-06-01T00:30:00Z"]);
    for (task, misfire) in [
        ("skip", json!({"policy": "skip"})),
        ("once", json!({"policy": "run_once"})),
        ("all", json!({"policy": "run_all", "max": 2})),
    ] {
        scheduled_task(
            &d,
            task,
            json!({"rule": {"cron": "0 * * * *"}, "misfire": misfire}),
        );
    }
    let h = |hour: u32| t(&format!("2026-06-01T{hour:02}:00:00Z"));
    // Five hourly slots (01:00 to 05:00) pass in one jump.
    set_clock(&d, "2026-06-01T05:30:00Z");
    assert!(d.fired("skip").is_empty());
    assert_eq!(d.skipped("skip"), (1..=5).map(h).collect::<Vec<_>>());
    assert_eq!(d.fired("once"), vec![h(5)]);
    assert_eq!(d.skipped("once"), (1..=4).map(h).collect::<Vec<_>>());
    assert_eq!(d.fired("all"), vec![h(4), h(5)]);
    assert_eq!(d.skipped("all"), (1..=3).map(h).collect::<Vec<_>>());
    let (_, run) = d.call(
        "GET",
        &format!(
            "/v1/runs/{}",
            d.all_runs("task=skip&cause=schedule")[0]["id"].as_str().unwrap()
        ),
        None,
    );
    assert!(
        run["log"].to_string().contains("sundial.schedule.missed"),
        "{run}"
    );

    // On time again: every policy fires the 06:00 slot normally.
    set_clock(&d, "2026-06-01T06:00:00Z");
    for task in ["skip", "once", "all"] {
        assert_eq!(d.fired(task).last(), Some(&h(6)), "{task}");
    }

    // The clock refuses nonsense.
    // Backwards conflicts with where the clock stands (409); the rest is bad input (400).
    let v = d.expect(
        409,
        "POST",
        "/v1/clock",
        Some(&json!({"to": "2026-06-01T05:00:00Z"})),
    );
    assert!(message(&v).contains("backwards"), "{v}");
    for (body, want) in [
        (json!({}), "exactly one"),
        (
            json!({"to": "2026-06-01T07:00:00Z", "advance_seconds": 5}),
            "exactly one",
        ),
        (json!({"advance_seconds": -5}), "advance_seconds"),
        (json!({"advance_seconds": 4_000_000_000u64}), "100 years"),
    ] {
        let (status, v) = d.call("POST", "/v1/clock", Some(&body));
        assert_eq!(status, 400, "{body}: {v}");
        let msg = message(&v);
        assert!(msg.contains(want), "{body}: {msg}");
    }

    // Down from 06:00 until 09:00:30: three slots missed (07:00, 08:00, 09:00).
    d.kill9();
    let d = Daemon::start(dir.path(), &["--test-clock", "2026-06-01T09:00:30Z"]);
    d.expect(200, "POST", "/v1/clock", Some(&json!({"advance_seconds": 0})));
    assert_eq!(d.fired("skip"), vec![h(6)]);
    assert_eq!(d.skipped("skip"), (1..=5).chain(7..=9).map(h).collect::<Vec<_>>());
    assert_eq!(d.fired("once"), vec![h(5), h(6), h(9)]);
    assert_eq!(d.skipped("once"), (1..=4).chain(7..=8).map(h).collect::<Vec<_>>());
    assert_eq!(d.fired("all"), vec![h(4), h(5), h(6), h(8), h(9)]);
    assert_eq!(d.skipped("all"), (1..=3).chain(7..=7).map(h).collect::<Vec<_>>());
    // And the clock keeps driving them after the restart.
    let (_, v) = d.call("POST", "/v1/clock", Some(&json!({"advance_seconds": 3570})));
    assert_eq!(instant(&v["now"]), h(10));
    for task in ["skip", "once", "all"] {
        assert_eq!(d.fired(task).last(), Some(&h(10)), "{task}");
    }
}

#[test]
fn the_system_clock_cannot_be_moved_the_default_zone_applies_and_lists_page() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &["--timezone", "Europe/Berlin"]);
    let (status, v) = d.call("GET", "/v1/clock", None);
    assert_eq!((status, &v["manual"]), (200, &json!(false)));
    let v = d.expect(
        409,
        "POST",
        "/v1/clock",
        Some(&json!({"to": "2099-01-01T00:00:00Z"})),
    );
    assert!(message(&v).contains("--test-clock"));
    let v = d.create(
        "/v1/schedules",
        json!({"name": "zoned", "rule": {"cron": "@daily"}}),
    );
    assert_eq!(v["timezone"], "Europe/Berlin");
    // Midnight on the Berlin wall clock: 23:00 or 22:00 UTC.
    let next = v["next_slot_local"].as_str().unwrap();
    assert!(
        next.ends_with("T00:00:00.000+01:00") || next.ends_with("T00:00:00.000+02:00"),
        "{v}"
    );
    assert_eq!(instant(&v["next_slot"]), instant(&v["next_slot_local"]), "{v}");
    let v = d.expect(
        200,
        "POST",
        "/v1/schedules/preview",
        Some(&json!({"rule": {"cron": "@daily"}, "count": 1})),
    );
    assert_eq!(v["timezone"], "Europe/Berlin");

    // Lists are paginated with a cursor.
    for name in ["two", "three"] {
        let spec = json!({"name": name, "rule": {"cron": "@daily"}, "timezone": "UTC"});
        d.expect(201, "POST", "/v1/schedules", Some(&spec));
    }
    let (_, page) = d.call("GET", "/v1/schedules?limit=2", None);
    let names = column(&page["schedules"], "name");
    assert_eq!(names, ["zoned", "two"]);
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, page) = d.call("GET", &format!("/v1/schedules?limit=2&cursor={cursor}"), None);
    assert_eq!(page["schedules"][0]["name"], "three");
    assert!(page["next_cursor"].is_null());
    for (query, want) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("cursor=nope", "cursor"),
        ("colour=red", "unknown field"),
    ] {
        for noun in ["schedules", "tasks"] {
            let (status, v) = d.call("GET", &format!("/v1/{noun}?{query}"), None);
            assert_eq!(status, 400, "{noun}?{query}: {v}");
            assert!(message(&v).contains(want), "{v}");
        }
    }
}
