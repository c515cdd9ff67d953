//! Calendars and maintenance windows on the daemon's test clock: "weekdays 08:00
//! Europe/Berlin except public holidays", a deferred slot, and the refusals.

use serde_json::{Value, json};
use std::process::Output;
use sundial_tests::{Daemon, items};

fn cli(d: &Daemon, args: &[&str]) -> Output {
    d.cli(args)
}

fn ok(d: &Daemon, args: &[&str]) -> String {
    d.cli_ok(args)
}

fn clock_to(d: &Daemon, at: &str) {
    d.expect(200, "POST", "/v1/clock", Some(&json!({ "to": at })));
}

/// (slot, status, first log line) of every run of `task`, oldest first.
fn slots(d: &Daemon, task: &str) -> Vec<(String, String, String)> {
    let mut runs = d.all_runs(&format!("task={task}"));
    runs.reverse();
    runs.iter()
        .map(|r: &Value| {
            (
                r["cause"]["slot"].as_str().unwrap_or_default().to_string(),
                r["status"].as_str().unwrap_or_default().to_string(),
                r["log"]["lines"][0]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

/// Wait until `task` has `n` runs, none queued or running.
fn settled(d: &Daemon, task: &str, n: usize) -> Vec<(String, String, String)> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let runs = d.all_runs(&format!("task={task}"));
        if runs.len() == n
            && runs
                .iter()
                .all(|r| r["status"] != "queued" && r["status"] != "running")
        {
            return slots(d, task);
        }
        assert!(std::time::Instant::now() < deadline, "{task}: {runs:?}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

const ICS: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n\
BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20261225\r\nDTEND;VALUE=DATE:20261226\r\nSUMMARY:1. Weihnachtstag\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20260101\r\nRRULE:FREQ=YEARLY\r\nSUMMARY:Neujahr\r\nEND:VEVENT\r\n\
END:VCALENDAR\r\n";

#[test]
fn weekdays_at_eight_in_berlin_except_public_holidays() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(tmp.path(), &["--test-clock", "2026-12-23T00:00:00Z"]);
    let ics = tmp.path().join("holidays.ics");
    std::fs::write(&ics, ICS).unwrap();
    let out = ok(
        &d,
        &[
            "calendar",
            "create",
            "de-holidays",
            "--ics",
            ics.to_str().unwrap(),
            "--date",
            "2026-12-31",
        ],
    );
    assert!(
        out.contains("created calendar de-holidays") && out.contains("2026-12-31"),
        "{out}"
    );
    ok(&d, &["task", "create", "standup", "--plugin", "echo"]);
    // A calendar that does not exist is refused, and nothing is made.
    let bad = cli(
        &d,
        &[
            "schedule",
            "create",
            "x",
            "--every",
            "day",
            "--at",
            "08:00",
            "--calendar",
            "nope",
        ],
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("calendars[0]: calendar \"nope\" not found"));
    ok(
        &d,
        &[
            "schedule",
            "create",
            "workdays",
            "--every",
            "week",
            "--on",
            "mon-fri",
            "--at",
            "08:00",
            "--tz",
            "Europe/Berlin",
            "--calendar",
            "de-holidays",
        ],
    );
    ok(&d, &["schedule", "attach", "workdays", "standup"]);
    let check = ok(
        &d,
        &[
            "calendar",
            "check",
            "de-holidays",
            "--at",
            "2026-12-25T07:00:00Z",
            "--tz",
            "Europe/Berlin",
        ],
    );
    assert!(
        check.contains("is excluded by calendar de-holidays: 2026-12-25 (1. Weihnachtstag)"),
        "{check}"
    );
    // The agenda says ahead of time.
    let agenda = ok(&d, &["upcoming", "--hours", "72"]);
    let christmas: Vec<&str> = agenda
        .lines()
        .filter(|l| l.starts_with("2026-12-25T08:00"))
        .collect();
    assert_eq!(christmas.len(), 1, "{agenda}");
    assert!(
        christmas[0].contains("skipped: calendar de-holidays: 2026-12-25"),
        "{agenda}"
    );
    assert!(
        !agenda
            .lines()
            .any(|l| l.starts_with("2026-12-24T08:00") && l.contains("skipped")),
        "{agenda}"
    );
    // Step the clock to each weekday's 08:00 Berlin (07:00 UTC), as time would pass.
    for day in [
        "2026-12-23",
        "2026-12-24",
        "2026-12-25",
        "2026-12-28",
        "2026-12-29",
        "2026-12-30",
        "2026-12-31",
        "2027-01-01",
        "2027-01-04",
    ] {
        clock_to(&d, &format!("{day}T07:00:00Z"));
    }
    let got = settled(&d, "standup", 9);
    let statuses: Vec<(&str, &str)> = got.iter().map(|(s, st, _)| (&s[..10], st.as_str())).collect();
    assert_eq!(
        statuses,
        vec![
            ("2026-12-23", "succeeded"),
            ("2026-12-24", "succeeded"),
            ("2026-12-25", "skipped"),
            ("2026-12-28", "succeeded"),
            ("2026-12-29", "succeeded"),
            ("2026-12-30", "succeeded"),
            ("2026-12-31", "skipped"),
            ("2027-01-01", "skipped"),
            ("2027-01-04", "succeeded"),
        ],
        "{got:?}"
    );
    assert!(
        got[2]
            .2
            .contains("is excluded by calendar de-holidays: 2026-12-25 (1. Weihnachtstag)"),
        "{}",
        got[2].2
    );
    assert!(
        got[7].2.contains("every 01-01") && got[7].2.contains("Neujahr"),
        "{}",
        got[7].2
    );
    // The skipped slot says so in the event log, and starts nothing.
    let (_, events) = d.call("GET", "/v1/events?type=sundial.schedule.skipped", None);
    assert_eq!(events["events"].as_array().map(Vec::len), Some(3), "{events}");
    // In use: not deleted.
    let del = cli(&d, &["calendar", "delete", "de-holidays"]);
    assert_eq!(del.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&del.stderr).contains("used by schedule workdays"));
}

#[test]
fn maintenance_defers_or_skips_and_can_end_early() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(tmp.path(), &["--test-clock", "2026-06-01T00:00:00Z"]);
    ok(&d, &["task", "create", "backup", "--plugin", "echo"]);
    ok(&d, &["task", "create", "report", "--plugin", "echo"]);
    ok(
        &d,
        &[
            "schedule",
            "create",
            "nightly",
            "--cron",
            "0 3 * * *",
            "--tz",
            "UTC",
            "--excluded",
            "defer",
        ],
    );
    ok(&d, &["schedule", "attach", "nightly", "backup"]);
    ok(
        &d,
        &[
            "schedule",
            "create",
            "hourly",
            "--cron",
            "0 * * * *",
            "--tz",
            "UTC",
        ],
    );
    ok(&d, &["schedule", "attach", "hourly", "report"]);
    // 02:00-04:00 for nightly only; 03:00-05:00 for everything.
    d.create(
        "/v1/maintenance",
        json!({"for": "2 hours", "from": "2026-06-01T02:00:00Z", "schedules": ["nightly"], "reason": "disk swap"}),
    );
    let out = ok(
        &d,
        &[
            "maintenance",
            "start",
            "--for",
            "2h",
            "--from",
            "2026-06-01T03:00:00Z",
            "--reason",
            "upgrade",
        ],
    );
    assert!(
        out.starts_with("started maintenance ") && out.contains("for all schedules"),
        "{out}"
    );
    let all_id = out.split_whitespace().nth(2).unwrap().to_string();
    for bad in [
        json!({"for": "10s"}),
        json!({"for": "31d"}),
        json!({"for": "2h", "schedules": ["nope"]}),
        json!({"for": "soon"}),
    ] {
        let (s, v) = d.call("POST", "/v1/maintenance", Some(&bad));
        assert!(s == 400 || s == 404, "{bad}: {s} {v}");
    }
    for at in [
        "2026-06-01T01:00:00Z",
        "2026-06-01T02:00:00Z",
        "2026-06-01T03:00:00Z",
    ] {
        clock_to(&d, at);
    }
    // Nightly's 03:00 slot waits for the end of both windows (05:00 by now).
    assert!(d.all_runs("task=backup").is_empty(), "deferred, not run");
    // End the window for everything early, at 03:30: nightly's own ends at 04:00, and
    // the slot is placed again for then (not 05:00).
    clock_to(&d, "2026-06-01T03:30:00Z");
    let ended = ok(&d, &["maintenance", "end", &all_id]);
    assert!(ended.contains("until 2026-06-01T03:30:00.000Z"), "{ended}");
    clock_to(&d, "2026-06-01T04:00:00Z");
    let backup = settled(&d, "backup", 1);
    assert_eq!(
        backup[0].0, "2026-06-01T03:00:00.000Z",
        "the 03:00 slot, deferred: {backup:?}"
    );
    assert_eq!(backup[0].1, "succeeded");
    clock_to(&d, "2026-06-01T05:00:00Z");
    // Hourly: 01:00, 02:00 ran; 03:00 skipped (maintenance for all); 04:00 and 05:00 ran.
    let report = settled(&d, "report", 5);
    let statuses: Vec<(&str, &str)> = report
        .iter()
        .map(|(s, st, _)| (&s[11..16], st.as_str()))
        .collect();
    assert_eq!(
        statuses,
        vec![
            ("01:00", "succeeded"),
            ("02:00", "succeeded"),
            ("03:00", "skipped"),
            ("04:00", "succeeded"),
            ("05:00", "succeeded")
        ],
        "{report:?}"
    );
    assert!(
        report[2].2.contains("maintenance") && report[2].2.contains("(upgrade)"),
        "{}",
        report[2].2
    );
    let list = ok(&d, &["maintenance", "list"]);
    assert!(list.contains("disk swap") && list.contains("nightly"), "{list}");
    let again = cli(&d, &["maintenance", "end", &all_id]);
    assert_eq!(again.status.code(), Some(1), "already ended");
}

#[test]
fn triggers_skip_or_defer_inside_a_calendars_window() {
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(tmp.path(), &["--test-clock", "2026-06-01T09:00:00Z"]);
    ok(
        &d,
        &[
            "calendar",
            "create",
            "quiet",
            "--range",
            "2026-06-01T10:00:00Z..2026-06-01T12:00:00Z",
        ],
    );
    ok(&d, &["task", "create", "page", "--plugin", "echo"]);
    ok(&d, &["task", "create", "later", "--plugin", "echo"]);
    ok(
        &d,
        &[
            "trigger",
            "create",
            "now-or-never",
            "--on",
            "alert",
            "--task",
            "page",
            "--calendar",
            "quiet",
        ],
    );
    ok(
        &d,
        &[
            "trigger",
            "create",
            "after-quiet",
            "--on",
            "alert",
            "--task",
            "later",
            "--calendar",
            "quiet",
            "--excluded",
            "defer",
        ],
    );
    let bad = cli(
        &d,
        &[
            "trigger",
            "create",
            "x",
            "--on",
            "alert",
            "--task",
            "page",
            "--calendar",
            "nope",
        ],
    );
    assert_eq!(bad.status.code(), Some(1));
    let emit = |id: &str| {
        let (s, v) = d.call(
            "POST",
            "/v1/events",
            Some(&json!({"specversion": "1.0", "id": id, "source": "/mon", "type": "alert"})),
        );
        assert_eq!(s, 202, "{v}");
    };
    emit("a1"); // 09:00: outside, both start at once
    settled(&d, "page", 1);
    settled(&d, "later", 1);
    clock_to(&d, "2026-06-01T11:00:00Z");
    emit("a2"); // inside: page is skipped, later waits for 12:00
    let (_, events) = d.call("GET", "/v1/events?type=alert", None);
    let a2 = items(&events["events"])
        .iter()
        .find(|e| e["event"]["id"] == "a2")
        .cloned()
        .unwrap();
    let notes: Vec<String> = items(&a2["triggers"])
        .iter()
        .flat_map(|t| t["skipped"].as_array().cloned().unwrap_or_default())
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    assert!(
        notes.iter().any(|n| n.starts_with("excluded by calendar quiet")),
        "{a2}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("deferred to 2026-06-01T12:00:00.000Z")),
        "{a2}"
    );
    let (_, timers) = d.call("GET", "/v1/timers", None);
    assert_eq!(timers["timers"][0]["due"], "2026-06-01T12:00:00.000Z", "{timers}");
    assert_eq!(d.all_runs("task=page").len(), 1, "skipped inside the window");
    clock_to(&d, "2026-06-01T12:00:00Z");
    settled(&d, "later", 2);
    assert_eq!(d.all_runs("task=page").len(), 1);
}

#[test]
fn missed_slots_honour_calendars_and_deferred_slots_do_not_pile_up() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = Daemon::start(&data, &["--test-clock", "2026-12-25T06:00:00Z"]);
    ok(&d, &["calendar", "create", "xmas", "--yearly", "12-25"]);
    ok(&d, &["task", "create", "daily", "--plugin", "echo"]);
    ok(&d, &["task", "create", "often", "--plugin", "echo"]);
    ok(
        &d,
        &[
            "schedule",
            "create",
            "seven",
            "--cron",
            "0 7 * * *",
            "--tz",
            "UTC",
            "--calendar",
            "xmas",
        ],
    );
    ok(&d, &["schedule", "attach", "seven", "daily"]);
    ok(
        &d,
        &[
            "schedule",
            "create",
            "tens",
            "--cron",
            "*/10 * * * *",
            "--tz",
            "UTC",
            "--excluded",
            "defer",
        ],
    );
    ok(&d, &["schedule", "attach", "tens", "often"]);
    clock_to(&d, "2026-12-25T06:00:00Z");
    d.kill9();
    // Down over 07:00 on Christmas Day: the misfire policy runs the newest missed slot,
    // unless a calendar excludes it.
    let d = Daemon::start(&data, &["--test-clock", "2026-12-25T08:00:00Z"]);
    let daily = settled(&d, "daily", 1);
    assert_eq!(daily[0].0, "2026-12-25T07:00:00.000Z");
    assert_eq!(daily[0].1, "skipped", "{daily:?}");
    assert!(daily[0].2.contains("excluded by calendar xmas"), "{daily:?}");
    // The every-ten-minutes schedule, deferring: a window from 08:05 to 09:05 holds
    // its 08:10 slot until 09:05; the slots that came due meanwhile do not pile up
    // behind it: they are recorded as skipped.
    let (s, v) = d.call(
        "POST",
        "/v1/maintenance",
        Some(&json!({"for": "1h", "from": "2026-12-25T08:05:00Z", "schedules": ["tens"]})),
    );
    assert_eq!(s, 201, "{v}");
    let before = d.all_runs("task=often").len();
    clock_to(&d, "2026-12-25T08:10:00Z");
    clock_to(&d, "2026-12-25T09:00:00Z");
    assert_eq!(
        d.all_runs("task=often").len(),
        before,
        "nothing runs inside the window"
    );
    clock_to(&d, "2026-12-25T09:05:00Z");
    clock_to(&d, "2026-12-25T09:10:00Z");
    let mut often = settled(&d, "often", before + 7);
    // Slot jobs commit concurrently: order by slot.
    often.sort();
    let tail: Vec<(&str, &str)> = often[before..]
        .iter()
        .map(|(s, st, _)| (&s[11..16], st.as_str()))
        .collect();
    assert_eq!(
        tail,
        vec![
            ("08:10", "succeeded"),
            ("08:20", "skipped"),
            ("08:30", "skipped"),
            ("08:40", "skipped"),
            ("08:50", "skipped"),
            ("09:00", "skipped"),
            ("09:10", "succeeded"),
        ],
        "{often:?}"
    );
    assert!(
        often[before + 1]
            .2
            .contains("the deferred slot 2026-12-25T08:10:00.000Z ran for it"),
        "{often:?}"
    );
}
