//! Hostile input against the real daemon: what a caller or a plugin sends cannot make a
//! record unreadable, the daemon unable to start, or a terminal act on stored text.
//! (Issue 15, classes 1 and 7; the address classes are table-tested in
//! `host/core/src/address.rs`.)

use redb::ReadableDatabase;
use serde_json::{Value, json};
use sundial_tests::{Daemon, items, message, raw_http};

/// JSON text of arrays nested `levels` deep around `1`.
fn nested(levels: usize) -> String {
    format!("{}1{}", "[".repeat(levels), "]".repeat(levels))
}

fn post_raw(d: &Daemon, path: &str, body: &str) -> (u16, Value) {
    let headers = format!(
        "authorization: Bearer {}\r\ncontent-type: application/json\r\n",
        d.token
    );
    let (status, text) = raw_http(&d.addr, "POST", path, &headers, body.as_bytes());
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// Every list the daemon serves answers 200 (a poison record would make one 500).
fn every_list_reads(d: &Daemon) {
    d.read_all(&[
        "/v1/tasks",
        "/v1/runs?limit=1000",
        "/v1/triggers",
        "/v1/webhooks",
        "/v1/events?limit=1000",
        "/v1/audit?limit=1000",
        "/v1/schedules",
        "/v1/timers",
        "/v1/deliveries",
        "/v1/plugins",
    ]);
}

/// A daemon on a new data directory with the hostile fixture installed with `extra`.
fn daemon_with_hostile(extra: Value) -> (tempfile::TempDir, Daemon) {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    d.install_hostile(extra);
    (dir, d)
}

#[test]
fn nothing_nested_deeper_than_the_limit_is_stored_and_what_is_stored_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &["--allow-loopback"]);
    // A body nests at most 64 levels, its own included: `{"params": {"v": X}}` leaves X
    // 62 of them.
    let deep = nested(62);
    let too_deep = nested(63);
    // Every way a caller puts a JSON value into a record, at the limit and one past it.
    let bodies = |v: &str, n: u32| {
        [
            (
                "/v1/tasks",
                format!(r#"{{"name": "t{n}", "plugin": "echo", "params": {{"v": {v}}}}}"#),
            ),
            ("/v1/tasks/t0/run", format!(r#"{{"params": {{"v": {v}}}}}"#)),
            (
                "/v1/triggers",
                format!(
                    r#"{{"name": "g{n}", "on": {{"type": "x"}}, "targets": [{{"task": "t0"}}], "context": {{"v": {v}}}}}"#
                ),
            ),
            (
                "/v1/webhooks",
                format!(
                    r#"{{"name": "w{n}", "url": "http://127.0.0.1:9/", "formatter_config": {{"v": {v}}}}}"#
                ),
            ),
            (
                "/v1/events",
                format!(
                    r#"{{"specversion": "1.0", "id": "e{n}", "source": "/deep", "type": "x", "data": {{"v": {v}}}}}"#
                ),
            ),
        ]
    };
    for (path, body) in bodies(&deep, 0) {
        let (status, v) = post_raw(&d, path, &body);
        assert!(
            (200..300).contains(&status),
            "at the limit, POST {path}: {status} {v}"
        );
    }
    for (path, body) in bodies(&too_deep, 1) {
        let (status, v) = post_raw(&d, path, &body);
        assert_eq!(status, 400, "past the limit, POST {path}: {v}");
        assert!(
            message(&v).contains("nested deeper than 64 levels"),
            "POST {path}: {v}"
        );
    }
    every_list_reads(&d);
    let (status, v) = d.call("GET", "/v1/tasks/t1", None);
    assert_eq!(status, 404, "nothing past the limit was stored: {v}");
    // Restarted (kill -9) on all of it: the daemon starts, and everything reads.
    d.kill9();
    let d = Daemon::start(dir.path(), &["--allow-loopback"]);
    every_list_reads(&d);
    let (_, task) = d.call("GET", "/v1/tasks/t0", None);
    assert_eq!(
        sundial_core::json::depth(&task["params"]),
        63,
        "{}",
        task["params"]
    );
    d.cli_ok(&["export"]);
}

#[test]
fn a_plugin_cannot_store_what_a_caller_cannot() {
    let (dir, d) = daemon_with_hostile(json!({"grants": {"emit_events": true}}));
    for (name, mode, depth) in [
        ("out-ok", "deep-output", 64),
        ("out-deep", "deep-output", 100),
        ("ev-deep", "deep-event", 100),
    ] {
        let spec = json!({"name": name, "plugin": "hostile", "params": {"mode": mode, "depth": depth},
                          "retry": {"max_attempts": 1}});
        d.expect(201, "POST", "/v1/tasks", Some(&spec));
    }
    let (_, ok) = d.call("POST", "/v1/tasks/out-ok/run?wait=true", None);
    assert_eq!(ok["status"], "succeeded", "{ok}");
    let (_, deep) = d.call("POST", "/v1/tasks/out-deep/run?wait=true", None);
    assert_eq!(
        (deep["status"].as_str(), deep["error"]["kind"].as_str()),
        (Some("failed"), Some("bad_output")),
        "{deep}"
    );
    assert!(message(&deep).contains("nested deeper than 64 levels"), "{deep}");
    let (_, ev) = d.call("POST", "/v1/tasks/ev-deep/run?wait=true", None);
    assert_eq!(ev["status"], "succeeded", "{ev}");
    let emit = ev["output"]["emit"].as_str().unwrap();
    assert!(
        emit.contains("nested deeper than 64 levels"),
        "the emit was refused: {ev}"
    );
    let (_, events) = d.call("GET", "/v1/events?type=fixture.deep", None);
    assert_eq!(events["events"], json!([]), "{events}");
    every_list_reads(&d);
    d.kill9();
    let d = Daemon::start(dir.path(), &[]);
    every_list_reads(&d);
}

#[test]
fn duplicate_keys_and_control_characters_are_refused_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    for (path, body, want) in [
        (
            "/v1/tasks",
            r#"{"name": "a", "name": "b", "plugin": "echo"}"#,
            "duplicate key \"name\" at the top level",
        ),
        (
            "/v1/tasks",
            r#"{"name": "a", "plugin": "echo", "params": {"x": 1, "x": 2}}"#,
            "duplicate key \"x\" at params",
        ),
        (
            "/v1/events",
            r#"{"specversion": "1.0", "id": "1", "id": "2", "source": "/s", "type": "t"}"#,
            "duplicate key \"id\"",
        ),
    ] {
        let (status, v) = post_raw(&d, path, body);
        assert_eq!(status, 400, "{body}: {v}");
        assert!(message(&v).contains(want), "{body}: {v}");
    }
    let (_, tasks) = d.call("GET", "/v1/tasks", None);
    assert_eq!(tasks["tasks"], json!([]), "{tasks}");
    // A PATCH too.
    d.create("/v1/tasks", json!({"name": "t", "plugin": "echo"}));
    let headers = format!(
        "authorization: Bearer {}\r\ncontent-type: application/json\r\n",
        d.token
    );
    let (status, text) = raw_http(
        &d.addr,
        "PATCH",
        "/v1/tasks/t",
        &headers,
        br#"{"description": "a", "description": "b"}"#,
    );
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("duplicate key"), "{text}");

    // CloudEvents attributes with control characters: 400, nothing stored.
    for (attr, value) in [
        ("type", "a\u{0}b"),
        ("id", "esc\u{1b}[2J"),
        ("source", "/s\u{7f}"),
        ("subject", "line\nbreak"),
        ("subject", "c1\u{85}"),
        ("traceparent", "x\u{1b}"),
    ] {
        let mut e = json!({"specversion": "1.0", "id": "ok", "source": "/s", "type": "t"});
        e[attr] = json!(value);
        let (status, v) = d.call("POST", "/v1/events", Some(&e));
        assert_eq!(status, 400, "{attr}={value:?}: {v}");
        assert!(message(&v).starts_with(&format!("{attr}: character U+")), "{v}");
    }
    // Binary mode, with the control character %-encoded in a header.
    let headers = format!(
        "authorization: Bearer {}\r\nce-specversion: 1.0\r\nce-id: b1\r\nce-source: /s\r\nce-type: t%1B\r\n",
        d.token
    );
    let (status, text) = raw_http(&d.addr, "POST", "/v1/events", &headers, b"");
    assert_eq!(status, 400, "{text}");
    let (_, events) = d.call("GET", "/v1/events?source=/s", None);
    assert_eq!(events["events"], json!([]), "{events}");
}

#[test]
fn the_cli_never_prints_control_characters_from_stored_data() {
    let (_dir, d) = daemon_with_hostile(json!({}));
    let spec = json!({"name": "ansi", "plugin": "hostile", "params": {"mode": "terminal"}});
    d.expect(201, "POST", "/v1/tasks", Some(&spec));
    let (_, run) = d.call("POST", "/v1/tasks/ansi/run?wait=true", None);
    assert_eq!(run["status"], "succeeded", "{run}");
    let id = run["id"].as_str().unwrap().to_string();
    for args in [
        vec!["logs", "--task", "ansi"],
        vec!["run", "get", &id],
        vec!["run", "list"],
    ] {
        let out = d.cli(&args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let raw: Vec<char> = text
            .chars()
            .filter(|c| (c.is_control() && *c != '\n') || matches!(c, '\u{202a}'..='\u{202e}'))
            .collect();
        assert!(raw.is_empty(), "{args:?} printed raw {raw:?}:\n{text}");
        if args[0] == "logs" {
            assert!(
                text.contains("\\u{1b}[31mred") && text.contains("\\u{202e}desrever"),
                "{text}"
            );
        }
    }
}

/// Write `value` under `key` of the JSON table `table` of a stopped daemon's data file.
fn poison(data: &std::path::Path, table: &str, key: &str, value: &[u8]) {
    let db = redb::Database::open(data.join("sundial.redb")).expect("open the data file");
    let txn = db.begin_write().unwrap();
    {
        let def: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new(table);
        txn.open_table(def).unwrap().insert(key, value).unwrap();
    }
    txn.commit().unwrap();
}

/// The bytes stored under `key` of `table`.
fn stored(data: &std::path::Path, table: &str, key: &str) -> Vec<u8> {
    let db = redb::Database::open(data.join("sundial.redb")).expect("open the data file");
    let txn = db.begin_read().unwrap();
    let def: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new(table);
    let t = txn.open_table(def).unwrap();
    t.get(key).unwrap().expect("the record").value().to_vec()
}

#[test]
fn a_schedule_whose_record_stops_decoding_is_skipped_when_due_and_the_others_fire() {
    // Start-up places schedules from the due-time index without reading their records:
    // one whose record no longer decodes is found out when its slot comes due, and is
    // then skipped like any unreadable record (not retried for ever), while the
    // schedule beside it, whose entry is garbage, is read from its record and fires.
    let t0 = "2026-06-01T00:00:00Z";
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &["--test-clock", t0]);
    d.create("/v1/tasks", json!({"name": "t", "plugin": "echo"}));
    let mut ids = Vec::new();
    for name in ["good", "bad"] {
        let s = d.create(
            "/v1/schedules",
            json!({"name": name, "rule": {"cron": "*/10 * * * * *"}, "start": "2026-06-01T00:00:01Z"}),
        );
        ids.push(s["id"].as_str().unwrap().to_string());
        d.attach(name, "t");
    }
    d.stop();
    poison(dir.path(), "schedules", &ids[1], b"{\"id\": \"broken");
    // And the readable one's due-time entry is not one: its record is read instead.
    poison(dir.path(), "schedule_due", &ids[0], b"not an entry");

    let d = Daemon::start(dir.path(), &["--test-clock", t0]);
    d.set_clock("2026-06-01T00:00:10Z");
    d.set_clock("2026-06-01T00:00:20Z");
    let causes: Vec<String> = d
        .all_runs("task=t&cause=schedule")
        .iter()
        .map(|r| r["cause"]["schedule"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        causes,
        [ids[0].clone(), ids[0].clone()],
        "only the readable one fires"
    );
    let stderr = d.stderr_text();
    assert!(
        stderr.contains("skipped a record that cannot be read"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("retrying"),
        "an unreadable record is not retried: {stderr}"
    );
    // An admin deletes it, entry and all; the daemon starts again as before.
    d.expect(
        204,
        "DELETE",
        &format!("/v1/admin/unreadable/schedules/{}", ids[1]),
        None,
    );
    d.stop();
    let d = Daemon::start(dir.path(), &["--test-clock", "2026-06-01T00:00:20Z"]);
    d.set_clock("2026-06-01T00:00:30Z");
    assert_eq!(d.all_runs("task=t&cause=schedule").len(), 3);
}

#[test]
fn unreadable_records_are_skipped_counted_listed_and_deletable_and_the_daemon_starts() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    d.create("/v1/tasks", json!({"name": "t", "plugin": "echo"}));
    let (_, trigger) = d.call(
        "POST",
        "/v1/triggers",
        Some(&json!({"name": "g", "on": {"type": "x"}, "targets": [{"task": "t"}]})),
    );
    let trigger_id = trigger["id"].as_str().unwrap().to_string();
    let (_, run) = d.call("POST", "/v1/tasks/t/run?wait=true", None);
    assert_eq!(run["status"], "succeeded", "{run}");
    d.kill9();

    // What an older version could store (context nested 200 deep: past serde_json's
    // default limit, which made such a trigger stop the daemon from starting), and
    // records that cannot decode at all: garbage bytes, and nesting past any sane depth.
    let mut legacy: Value = serde_json::from_slice(&stored(dir.path(), "triggers", &trigger_id)).unwrap();
    legacy["spec"]["context"] = json!({"deep": serde_json::from_str::<Value>(&nested(120)).unwrap()});
    let text = serde_json::to_string(&legacy).unwrap();
    // Nest it 200 levels by wrapping the innermost array further, as text.
    let text = text.replacen(&nested(120), &nested(200), 1);
    poison(dir.path(), "triggers", &trigger_id, text.as_bytes());
    poison(
        dir.path(),
        "tasks",
        "01JBADTASK0000000000000000",
        b"{\"id\": \"01JBADTASK\", \"spe",
    );
    poison(
        dir.path(),
        "runs",
        "01JBADRUN00000000000000000",
        b"\xff\xfe not json",
    );
    let deep_hook = format!("{{\"id\": \"x\", \"spec\": {}}}", nested(300));
    poison(
        dir.path(),
        "webhooks",
        "01JBADHOOK0000000000000000",
        deep_hook.as_bytes(),
    );

    let d = Daemon::start(dir.path(), &[]);
    every_list_reads(&d);
    // The legacy trigger reads, deep context and all (parsed here as the store reads,
    // without serde_json's default limit).
    let headers = format!("authorization: Bearer {}\r\n", d.token);
    let (status, text) = raw_http(
        &d.addr,
        "GET",
        &format!("/v1/triggers/{trigger_id}"),
        &headers,
        b"",
    );
    assert_eq!(status, 200, "{text}");
    let t: Value = sundial_store::tables::decode(text.as_bytes()).unwrap();
    assert_eq!(sundial_core::json::depth(&t["context"]["deep"]), 200);
    // The unreadable ones are skipped by the lists and counted...
    let (_, tasks) = d.call("GET", "/v1/tasks", None);
    assert_eq!(tasks["tasks"].as_array().unwrap().len(), 1, "{tasks}");
    let (_, metrics) = d.call("GET", "/metrics", None);
    let skipped = sundial_tests::metric(
        metrics.as_str().unwrap(),
        "sundial_store_unreadable_skipped_total",
    );
    assert!(skipped >= 2.0, "skips are counted: {skipped}");
    assert!(
        d.stderr_text().contains("skipped a record that cannot be read"),
        "and logged"
    );
    // ...listed for an admin, and only for an admin...
    let list = d.expect(200, "GET", "/v1/admin/unreadable", None);
    let mut found: Vec<(String, String)> = items(&list["records"])
        .iter()
        .map(|r| {
            (
                r["table"].as_str().unwrap().to_string(),
                r["key"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            ("runs".to_string(), "01JBADRUN00000000000000000".to_string()),
            ("tasks".to_string(), "01JBADTASK0000000000000000".to_string()),
            ("webhooks".to_string(), "01JBADHOOK0000000000000000".to_string()),
        ],
        "{list}"
    );
    let (_, t) = d.call(
        "POST",
        "/v1/tokens",
        Some(&json!({"name": "ops", "role": "operator"})),
    );
    let ops = t["secret"].as_str().unwrap().to_string();
    assert_eq!(d.call_as(Some(&ops), "GET", "/v1/admin/unreadable", None).0, 403);
    // ...and deleted by one; a readable record is not deleted this way.
    d.expect(
        409,
        "DELETE",
        &format!("/v1/admin/unreadable/triggers/{trigger_id}"),
        None,
    );
    d.expect(400, "DELETE", "/v1/admin/unreadable/nope/x", None);
    for (table, key) in &found {
        let (status, v) = d.call("DELETE", &format!("/v1/admin/unreadable/{table}/{key}"), None);
        assert_eq!(status, 204, "{table}/{key}: {v}");
    }
    let (_, list) = d.call("GET", "/v1/admin/unreadable", None);
    assert_eq!(list["records"], json!([]), "{list}");
    let (_, audit) = d.call("GET", "/v1/audit?noun=unreadable_record", None);
    assert_eq!(audit["entries"].as_array().unwrap().len(), 3, "{audit}");
    d.kill9();
    let d = Daemon::start(dir.path(), &[]);
    every_list_reads(&d);
    let (_, list) = d.call("GET", "/v1/admin/unreadable", None);
    assert_eq!(list["records"], json!([]), "{list}");
}

#[test]
fn a_plugin_s_key_value_namespace_has_a_quota() {
    let (dir, d) = daemon_with_hostile(json!({"grants": {"kv": true}}));
    let file = dir.path().join("sundial.redb");
    let size_before = std::fs::metadata(&file).unwrap().len();
    // 300 values of 1 MiB (the attack that grew a data file from 6.5 to 836 MiB): the
    // default quota (16 MiB) takes 15 of them and refuses the 16th with a clear error.
    let spec = json!({"name": "fill", "plugin": "hostile", "params": {"mode": "kv-fill", "count": 300, "size": 1048576},
                      "retry": {"max_attempts": 1}, "timeout_ms": 120000});
    d.expect(201, "POST", "/v1/tasks", Some(&spec));
    let (_, run) = d.call("POST", "/v1/tasks/fill/run?wait=true", None);
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["output"]["written"], 15, "{run}");
    let refused = run["output"]["refused"].as_str().unwrap();
    assert!(
        refused.contains("kv quota") && refused.contains("limits.kv_max_bytes"),
        "{refused}"
    );
    assert_eq!(run["output"]["deleted"], true);
    let (_, plugin) = d.call("GET", "/v1/plugins/hostile", None);
    let kv = &plugin["kv"];
    assert_eq!(
        (
            kv["keys"].as_u64(),
            kv["max_keys"].as_u64(),
            kv["max_bytes"].as_u64()
        ),
        (Some(14), Some(10_000), Some(16 << 20)),
        "{plugin}"
    );
    assert!(kv["bytes"].as_u64().unwrap() <= 16 << 20, "{plugin}");
    let grown = std::fs::metadata(&file).unwrap().len() - size_before;
    eprintln!("kv quota: data file grew by {} MiB", grown >> 20);
    // (redb writes each change to new pages first: the file grows by a few times the
    // data before freed pages are reused; without the quota it grew by 830 MiB.)
    assert!(grown < 128 << 20, "the data file grew by {grown} bytes");

    // The quota is per plugin and can be changed: 3 keys at most.
    d.patch(
        "/v1/plugins/hostile",
        json!({"limits": {"kv_max_keys": 3, "kv_max_bytes": 16777216}}),
    );
    let spec = json!({"name": "few", "plugin": "hostile", "params": {"mode": "kv-fill", "count": 5, "size": 10},
                      "retry": {"max_attempts": 1}});
    d.expect(201, "POST", "/v1/tasks", Some(&spec));
    let (_, run) = d.call("POST", "/v1/tasks/few/run?wait=true", None);
    // 14 keys are there already (over the new 3): no new key is taken.
    assert_eq!(run["output"]["written"], 0, "{run}");
    assert!(
        run["output"]["refused"]
            .as_str()
            .unwrap()
            .contains("limits.kv_max_keys"),
        "{run}"
    );
    let v = d.expect(
        400,
        "PATCH",
        "/v1/plugins/hostile",
        Some(&json!({"limits": {"kv_max_keys": 20000000}})),
    );
    assert!(message(&v).contains("kv_max_keys"), "{v}");
    // Survives a restart (usage is kept with the data).
    d.kill9();
    let d = Daemon::start(dir.path(), &[]);
    let (_, plugin) = d.call("GET", "/v1/plugins/hostile", None);
    assert_eq!(plugin["kv"]["keys"], 14, "{plugin}");
}

/// Class 9: a denial is final. A host that is not granted, or a granted name whose
/// address the policy refuses, fails the run at once with the reason, although its
/// task would retry transient failures three times.
#[test]
fn a_denied_request_fails_the_run_without_retries() {
    let peer = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = peer.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    // No --allow-loopback: 127.0.0.1 is refused even where it is granted.
    let d = Daemon::start(dir.path(), &[]);
    let grants = json!({"grants": {"hosts": [format!("http://127.0.0.1:{port}"), "http://localhost:1"]}});
    let (status, v) = d.call("PATCH", "/v1/plugins/http-request", Some(&grants));
    assert_eq!(status, 200, "{v}");
    let retry = json!({"max_attempts": 3, "initial_delay_ms": 10});
    for (name, url, why) in [
        ("refused", format!("http://127.0.0.1:{port}/"), "prohibited"),
        (
            "not-granted",
            format!("http://127.0.0.1:{}/", port.wrapping_add(1).max(1)),
            "host not granted",
        ),
    ] {
        let spec = json!({"name": name, "plugin": "http-request", "params": {"url": url}, "retry": retry});
        d.expect(201, "POST", "/v1/tasks", Some(&spec));
        let (_, run) = d.call("POST", &format!("/v1/tasks/{name}/run?wait=true"), None);
        let brief = format!(
            "{} {} attempts {}",
            run["status"],
            run["error"],
            run["attempts"].as_array().map_or(0, Vec::len)
        );
        assert_eq!(run["status"], "failed", "{brief}");
        assert_eq!(
            run["attempts"].as_array().unwrap().len(),
            1,
            "a denial is not retried: {brief}"
        );
        let message = run["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(why), "the reason is given: {brief}");
    }
    // The refused address was never contacted.
    peer.set_nonblocking(true).unwrap();
    assert!(peer.accept().is_err(), "nothing reached the refused address");
}
