//! `sundial upcoming` and `GET /v1/upcoming`: schedules and timers merged into one
//! agenda on the daemon's test clock, across Berlin's spring-forward night.

use serde_json::{Value, json};
use std::process::Command;
use sundial_tests::{Daemon, items, sundial_bin};

#[test]
fn the_agenda_merges_schedules_and_timers_with_dst_notes() {
    let dir = tempfile::tempdir().unwrap();
    // Berlin springs forward on 2026-03-29 at 02:00 (01:00 UTC).
    let d = Daemon::start(dir.path(), &["--test-clock", "2026-03-28T00:00:00Z"]);
    for spec in [
        json!({"name": "backup", "plugin": "echo"}),
        json!({"name": "report", "plugin": "echo"}),
        json!({"name": "page", "plugin": "echo"}),
    ] {
        d.expect(201, "POST", "/v1/tasks", Some(&spec));
    }
    for (name, rule, tz, task) in [
        (
            "nightly",
            json!({"cron": "30 2 * * *"}),
            "Europe/Berlin",
            Some("backup"),
        ),
        (
            "ny",
            json!({"cron": "0 9 * * *"}),
            "America/New_York",
            Some("report"),
        ),
        ("idle", json!({"cron": "* * * * *"}), "UTC", None),
    ] {
        d.create(
            "/v1/schedules",
            json!({"name": name, "rule": rule, "timezone": tz}),
        );
        if let Some(t) = task {
            let (s, v) = d.call(
                "POST",
                &format!("/v1/schedules/{name}/tasks"),
                Some(&json!({"task": t})),
            );
            assert!(s == 200 || s == 201, "{v}");
        }
    }
    d.create(
        "/v1/triggers",
        json!({"name": "late", "on": {"type": "order.late"}, "targets": [{"task": "page"}], "delay": "29h"}),
    );
    d.expect(
        202,
        "POST",
        "/v1/events",
        Some(&json!({"specversion": "1.0", "id": "l-1", "source": "/shop", "type": "order.late"})),
    );

    let a = d.expect(200, "GET", "/v1/upcoming?hours=48", None);
    let got: Vec<(String, String, Value, Value)> = items(&a["entries"])
        .iter()
        .map(|e| {
            (
                e["local"].as_str().unwrap().to_string(),
                e["name"].as_str().unwrap().to_string(),
                e["tasks"].clone(),
                e["dst"].clone(),
            )
        })
        .collect();
    let row =
        |local: &str, name: &str, tasks: Value, dst: Value| (local.to_string(), name.to_string(), tasks, dst);
    assert_eq!(
        got,
        vec![
            row(
                "2026-03-28T02:30:00.000+01:00",
                "nightly",
                json!(["backup"]),
                Value::Null
            ),
            row(
                "2026-03-28T09:00:00.000-04:00",
                "ny",
                json!(["report"]),
                Value::Null
            ),
            row(
                "2026-03-29T03:00:00.000+02:00",
                "nightly",
                json!(["backup"]),
                json!("moved_out_of_gap")
            ),
            row(
                "2026-03-29T05:00:00.000+00:00",
                "late",
                json!(["page"]),
                Value::Null
            ),
            row(
                "2026-03-29T09:00:00.000-04:00",
                "ny",
                json!(["report"]),
                Value::Null
            ),
        ],
        "{a}"
    );
    assert_eq!(a["entries"][3]["kind"], "timer");
    assert_eq!(
        a["transitions"],
        json!([{"timezone": "Europe/Berlin", "at": "2026-03-29T01:00:00.000Z", "from": "+01:00", "to": "+02:00"}])
    );

    // One task only; a wrong name is 404; bounds are checked.
    let (_, a) = d.call("GET", "/v1/upcoming?hours=48&task=page", None);
    assert_eq!(a["entries"].as_array().unwrap().len(), 1, "{a}");
    d.expect(404, "GET", "/v1/upcoming?task=nope", None);
    for bad in ["hours=0", "hours=745", "limit=0", "colour=red"] {
        assert_eq!(
            d.call("GET", &format!("/v1/upcoming?{bad}"), None).0,
            400,
            "{bad}"
        );
    }

    // The CLI: a table in each zone, the DST note and the change.
    let out = Command::new(sundial_bin())
        .args(["upcoming", "--hours", "48"])
        .env("SUNDIAL_URL", format!("http://{}", d.addr))
        .env("SUNDIAL_TOKEN", &d.token)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("WHEN"), "{text}");
    assert!(
        lines[3].starts_with("2026-03-29T03:00:00.000+02:00")
            && lines[3].contains("Europe/Berlin")
            && lines[3].contains("DST: moved past the skipped hour"),
        "{text}"
    );
    assert!(
        lines[4].contains("timer") && lines[4].contains("late") && lines[4].contains("page"),
        "{text}"
    );
    assert!(
        text.contains("DST: Europe/Berlin changes from +01:00 to +02:00 at 2026-03-29T01:00:00.000Z"),
        "{text}"
    );
}
