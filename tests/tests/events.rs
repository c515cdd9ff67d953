//! Events and triggers through the real daemon: fan-out, chaining on internal events,
//! every filter operator, duplicates, delayed triggers across a restart, loop
//! protection, bad events, roles, plugin-emitted events.

use serde_json::{Value, json};
use sundial_tests::{Daemon, column, instant, items, message, raw_http, wait_until};

fn task(d: &Daemon, name: &str, plugin: &str, params: Value) {
    d.create(
        "/v1/tasks",
        json!({"name": name, "plugin": plugin, "params": params, "retry": {"max_attempts": 1}}),
    );
}

fn trigger(d: &Daemon, spec: Value) -> Value {
    let (status, v) = d.call("POST", "/v1/triggers", Some(&spec));
    assert_eq!(status, 201, "{spec}: {v}");
    v
}

fn event(kind: &str, id: &str, subject: Option<&str>, data: Value) -> Value {
    let mut e = json!({"specversion": "1.0", "id": id, "source": "/test", "type": kind, "data": data});
    if let Some(s) = subject {
        e["subject"] = json!(s);
    }
    e
}

fn post(d: &Daemon, e: &Value) -> Value {
    let (status, v) = d.call("POST", "/v1/events", Some(e));
    assert_eq!(status, 202, "{e}: {v}");
    v
}

fn runs(d: &Daemon, task: &str) -> Vec<Value> {
    d.all_runs(&format!("task={task}"))
}

fn finished(d: &Daemon, task: &str, n: usize) -> Vec<Value> {
    wait_until(&format!("{n} finished runs of {task}"), 60, || {
        let r = runs(d, task);
        r.len() >= n && r.iter().all(|r| r["finished_at"].is_string())
    });
    runs(d, task)
}

#[test]
fn fan_out_chains_and_two_events_one_task() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    d.install_hostile(json!({}));
    task(&d, "a", "echo", json!({"who": "a", "keep": true}));
    task(&d, "b", "echo", json!({"who": "b"}));
    task(&d, "fails", "hostile", json!({"mode": "fail"}));
    task(&d, "on-fail", "echo", json!({}));
    task(&d, "audit", "echo", json!({}));
    trigger(
        &d,
        json!({"name": "orders", "on": {"type": "order.created"}, "targets": [{"task": "a"}, {"task": "b"}],
               "context": {"who": "trigger", "extra": 1}}),
    );
    trigger(
        &d,
        json!({"name": "chain", "on": {"type": "sundial.run.failed", "subject": "fails"}, "targets": [{"task": "on-fail"}]}),
    );
    trigger(
        &d,
        json!({"name": "logins", "on": {"type": "user.login"}, "targets": [{"task": "audit"}]}),
    );
    trigger(
        &d,
        json!({"name": "vpn", "on": {"type": "vpn.*"}, "targets": [{"task": "audit"}]}),
    );

    // One event, two tasks, context merged over their params, the event in the invocation.
    let out = post(
        &d,
        &event("order.created", "o-1", Some("order/42"), json!({"total": 99})),
    );
    assert_eq!(out["duplicate"], false);
    assert_eq!(out["triggers"][0]["name"], "orders");
    assert_eq!(out["triggers"][0]["runs"].as_array().unwrap().len(), 2);
    for (name, keep) in [("a", json!(true)), ("b", Value::Null)] {
        let run = &finished(&d, name, 1)[0];
        assert_eq!(run["status"], "succeeded", "{run}");
        assert_eq!(run["cause"]["kind"], "event");
        assert_eq!(run["cause"]["event"], out["seq"]);
        let output = &run["output"];
        assert_eq!(output["params"]["who"], "trigger");
        assert_eq!(output["params"]["extra"], 1);
        assert_eq!(output["params"]["keep"], keep);
        assert_eq!(output["cause"], "event");
        assert_eq!(output["event"]["type"], "order.created");
        assert_eq!(output["event"]["subject"], "order/42");
        assert_eq!(output["event"]["data"]["total"], 99);
    }

    // A fails; the internal sundial.run.failed event with A's subject starts B.
    let (status, failed) = d.call("POST", "/v1/tasks/fails/run?wait=true", None);
    assert_eq!(status, 200, "{failed}");
    assert_eq!(failed["status"], "failed");
    let chained = &finished(&d, "on-fail", 1)[0];
    let e = &chained["output"]["event"];
    assert_eq!(
        (&e["type"], &e["subject"], &e["source"]),
        (&json!("sundial.run.failed"), &json!("fails"), &json!("sundial"))
    );
    assert_eq!(e["data"]["run"], failed["id"]);
    assert_eq!(e["data"]["status"], "failed");
    assert_eq!(chained["depth"], 1);
    // Successful runs emitted sundial.run.succeeded, which no trigger wants.
    let (_, ok) = d.call("GET", "/v1/events?type=sundial.run.succeeded", None);
    let succeeded = ok["events"].as_array().unwrap();
    assert!(succeeded.len() >= 2, "{ok}");
    assert!(succeeded.iter().all(|e| e["triggers"] == json!([])), "{ok}");

    // One task, two distinct events.
    post(&d, &event("user.login", "l-1", Some("alice"), json!({})));
    post(&d, &event("vpn.connected", "v-1", Some("alice"), json!({})));
    post(&d, &event("unrelated.thing", "u-1", None, json!({})));
    let audit = finished(&d, "audit", 2);
    assert_eq!(audit.len(), 2);
    let mut kinds: Vec<String> = audit
        .iter()
        .map(|r| r["output"]["event"]["type"].as_str().unwrap().to_string())
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["user.login", "vpn.connected"]);

    // The event log shows what each event caused; internal events are there too.
    let (_, log) = d.call("GET", "/v1/events?type=order.*", None);
    let logged = &log["events"][0];
    assert_eq!(logged["event"]["id"], "o-1");
    assert_eq!(logged["triggers"][0]["runs"], out["triggers"][0]["runs"]);
    let (_, one) = d.call(
        "GET",
        &format!("/v1/events/{}", out["seq"].as_str().unwrap()),
        None,
    );
    assert_eq!(one["seq"], out["seq"]);
    let (_, installed) = d.call("GET", "/v1/events?type=sundial.plugin.installed", None);
    let names = column(&installed["events"], "event.subject");
    assert!(names.contains(&"echo") && names.contains(&"hostile"), "{names:?}");
    let (_, unrelated) = d.call("GET", "/v1/events?subject=alice", None);
    assert_eq!(unrelated["events"].as_array().unwrap().len(), 2);

    // Changing and deleting triggers takes effect at once.
    let v = d.patch(
        "/v1/triggers/vpn",
        json!({"on": {"type": "vpn.connected", "subject": "bob"}}),
    );
    assert_eq!(v["targets"][0]["task"], "audit");
    let out = post(&d, &event("vpn.connected", "v-2", Some("alice"), json!({})));
    assert!(out["triggers"].as_array().unwrap().is_empty(), "{out}");
    let out = post(&d, &event("vpn.connected", "v-3", Some("bob"), json!({})));
    assert_eq!(out["triggers"][0]["name"], "vpn");
    d.expect(204, "DELETE", "/v1/triggers/vpn", None);
    let out = post(&d, &event("vpn.connected", "v-4", Some("bob"), json!({})));
    assert!(out["triggers"].as_array().unwrap().is_empty(), "{out}");
    let (_, list) = d.call("GET", "/v1/triggers", None);
    let names = column(&list["triggers"], "name");
    assert_eq!(names, ["orders", "chain", "logins"]);
}

#[test]
fn every_filter_operator_matches_one_event_and_not_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    let filters = [
        ("eq", json!({"path": "data.user", "eq": "alice"})),
        ("ne", json!({"path": "data.env", "ne": "dev"})),
        ("in", json!({"path": "data.env", "in": ["prod", "stage"]})),
        ("glob", json!({"path": "data.host", "glob": "vm-*-0?"})),
        ("exists", json!({"path": "data.region", "exists": true})),
        ("gt", json!({"path": "data.size", "gt": 100})),
        ("gte", json!({"path": "data.size", "gte": 150})),
        ("lt", json!({"path": "data.age", "lt": 30})),
        ("lte", json!({"path": "data.age", "lte": 25})),
        ("contains", json!({"path": "data.tags", "contains": "ops"})),
        (
            "all",
            json!({"all": [{"path": "data.user", "eq": "alice"}, {"path": "data.size", "gt": 1}]}),
        ),
        (
            "any",
            json!({"any": [{"path": "data.user", "eq": "carol"}, {"path": "data.env", "eq": "prod"}]}),
        ),
        ("not", json!({"not": {"path": "data.env", "eq": "dev"}})),
        ("subject", json!({"path": "subject", "glob": "host/*"})),
    ];
    for (op, filter) in &filters {
        task(&d, &format!("t-{op}"), "echo", json!({}));
        trigger(
            &d,
            json!({"name": format!("f-{op}"), "on": {"type": "probe", "filter": filter}, "targets": [{"task": format!("t-{op}")}]}),
        );
    }
    let yes = json!({"user": "alice", "env": "prod", "host": "vm-web-01", "region": "eu", "size": 150,
                     "age": 25, "tags": ["ops", "dev"]});
    let no = json!({"user": "bob", "env": "dev", "host": "db-1", "size": 10, "age": 40, "tags": ["qa"]});
    let out = post(&d, &event("probe", "yes", Some("host/1"), yes));
    assert_eq!(out["triggers"].as_array().unwrap().len(), filters.len(), "{out}");
    let out = post(&d, &event("probe", "no", Some("other"), no));
    assert_eq!(out["triggers"].as_array().unwrap().len(), 0, "{out}");
    for (op, _) in &filters {
        let r = finished(&d, &format!("t-{op}"), 1);
        assert_eq!(r.len(), 1, "{op}");
        assert_eq!(r[0]["output"]["event"]["id"], "yes", "{op}");
    }
    // A bad filter is refused with the place named.
    let v = d.expect(
        400,
        "POST",
        "/v1/triggers",
        Some(
            &json!({"name": "bad", "on": {"type": "x", "filter": {"all": [{"path": "data.a", "gt": "ten"}]}},
                     "targets": [{"task": "t-eq"}]}),
        ),
    );
    assert_eq!(v["error"]["message"], "on.filter.all[0].gt: expected a number");
    let v = d.expect(
        404,
        "POST",
        "/v1/triggers",
        Some(&json!({"name": "bad", "on": {"type": "x"}, "targets": [{"task": "nope"}]})),
    );
    assert!(message(&v).contains("targets[0].task"));
}

#[test]
fn duplicates_bad_events_and_the_ingest_role() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &["--max-event-size", "2KiB"]);
    task(&d, "t", "echo", json!({}));
    trigger(
        &d,
        json!({"name": "tr", "on": {"type": "thing.happened"}, "targets": [{"task": "t"}]}),
    );
    let e = event("thing.happened", "same", None, json!({"n": 1}));
    let first = post(&d, &e);
    let again = post(&d, &e);
    assert_eq!(
        (first["duplicate"].clone(), again["duplicate"].clone()),
        (json!(false), json!(true))
    );
    assert_eq!(again["seq"], first["seq"]);
    // A batch with the same event twice and a new one.
    let batch = json!([
        e,
        event("thing.happened", "new", None, json!({})),
        event("thing.happened", "new", None, json!({}))
    ]);
    let body = batch.to_string();
    let headers = format!(
        "authorization: Bearer {}\r\ncontent-type: application/cloudevents-batch+json\r\n",
        d.token
    );
    let (status, text) = raw_http(&d.addr, "POST", "/v1/events", &headers, body.as_bytes());
    assert_eq!(status, 202, "{text}");
    let out: Value = serde_json::from_str(&text).unwrap();
    let dup: Vec<bool> = items(&out["events"])
        .iter()
        .map(|e| e["duplicate"].as_bool().unwrap())
        .collect();
    assert_eq!(dup, [true, false, true]);
    assert_eq!(finished(&d, "t", 2).len(), 2, "two distinct events, two runs");

    // Bad events: a clear 4xx and nothing stored.
    let (_, before) = d.call("GET", "/v1/events?limit=1000", None);
    let count = before["events"].as_array().unwrap().len();
    let mut no_type = event("x", "1", None, json!({}));
    no_type.as_object_mut().unwrap().remove("type");
    let mut old = event("x", "2", None, json!({}));
    old["specversion"] = json!("0.3");
    let big = event("x", "3", None, json!({"blob": "z".repeat(3000)}));
    for (body, status, want) in [
        (no_type, 400, "type: required"),
        (old, 400, "\"0.3\" is not supported"),
        (json!({"specversion": "1.0"}), 400, "id: required"),
        (big, 413, "over the limit of 2048 bytes"),
        (json!([]), 400, "1-1000 events"),
    ] {
        let (got, v) = d.call("POST", "/v1/events", Some(&body));
        assert_eq!(got, status, "{v}");
        let msg = message(&v);
        assert!(msg.contains(want), "{msg}");
    }
    // Binary mode: data declared JSON but not JSON.
    let headers = format!(
        "authorization: Bearer {}\r\nce-specversion: 1.0\r\nce-id: b1\r\nce-source: /bin\r\nce-type: x\r\ncontent-type: application/json\r\n",
        d.token
    );
    let (status, text) = raw_http(&d.addr, "POST", "/v1/events", &headers, b"{not json");
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("the body is not JSON"), "{text}");
    let headers = format!(
        "authorization: Bearer {}\r\ncontent-type: text/plain\r\n",
        d.token
    );
    assert_eq!(raw_http(&d.addr, "POST", "/v1/events", &headers, b"hi").0, 415);
    let (_, after) = d.call("GET", "/v1/events?limit=1000", None);
    assert_eq!(after["events"].as_array().unwrap().len(), count, "nothing stored");
    // A good binary-mode event.
    let headers = format!(
        "authorization: Bearer {}\r\nce-specversion: 1.0\r\nce-id: b2\r\nce-source: /bin\r\nce-type: thing.happened\r\ncontent-type: application/json\r\n",
        d.token
    );
    let (status, text) = raw_http(&d.addr, "POST", "/v1/events", &headers, br#"{"n": 2}"#);
    assert_eq!(status, 202, "{text}");

    // The ingest role posts events and nothing else.
    let (_, tok) = d.call(
        "POST",
        "/v1/tokens",
        Some(&json!({"name": "hook", "role": "ingest"})),
    );
    let secret = tok["secret"].as_str().unwrap();
    let (status, _) = d.call_as(
        Some(secret),
        "POST",
        "/v1/events",
        Some(&event("x", "i-1", None, json!({}))),
    );
    assert_eq!(status, 202);
    for (method, path) in [
        ("GET", "/v1/events"),
        ("GET", "/v1/tasks"),
        ("POST", "/v1/tasks/t/run"),
    ] {
        assert_eq!(
            d.call_as(Some(secret), method, path, None).0,
            403,
            "{method} {path}"
        );
    }
}

#[test]
fn a_delayed_trigger_fires_after_a_restart_and_timers_can_be_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let start = ["--test-clock", "2026-11-01T09:00:00Z"];
    let d = Daemon::start(dir.path(), &start);
    task(&d, "disable-user", "echo", json!({"action": "disable"}));
    trigger(
        &d,
        json!({"name": "thirty-days", "on": {"type": "user.created"}, "targets": [{"task": "disable-user"}],
               "delay": "30d", "context": {"reason": "trial over"}}),
    );
    let out = post(
        &d,
        &event("user.created", "u-1", Some("alice"), json!({"user": "alice"})),
    );
    assert_eq!(out["triggers"][0]["timers"].as_array().unwrap().len(), 1);
    let out2 = post(
        &d,
        &event("user.created", "u-2", Some("bob"), json!({"user": "bob"})),
    );
    let (_, timers) = d.call("GET", "/v1/timers?trigger=thirty-days", None);
    let timers = timers["timers"].as_array().unwrap().clone();
    assert_eq!(timers.len(), 2);
    assert_eq!(
        instant(&timers[0]["due"]),
        instant(&json!("2026-12-01T09:00:00Z")),
        "exactly 30 days later"
    );
    assert!(runs(&d, "disable-user").is_empty());
    // Bob's timer is cancelled.
    let bob = out2["triggers"][0]["timers"][0].as_str().unwrap();
    d.expect(204, "DELETE", &format!("/v1/timers/{bob}"), None);
    d.expect(404, "DELETE", &format!("/v1/timers/{bob}"), None);

    // The daemon dies; the timer survives.
    d.kill9();
    let d = Daemon::start(dir.path(), &start);
    d.set_clock("2026-12-01T08:59:59Z");
    assert!(runs(&d, "disable-user").is_empty(), "not before it is due");
    d.set_clock("2026-12-01T09:00:00Z");
    let r = finished(&d, "disable-user", 1);
    assert_eq!(r.len(), 1);
    assert_eq!(
        r[0]["output"]["params"],
        json!({"action": "disable", "reason": "trial over"})
    );
    assert_eq!(r[0]["output"]["event"]["subject"], "alice");
    assert_eq!(r[0]["cause"]["event"], out["seq"]);
    assert!(r[0]["cause"]["timer"].is_string());
    let (_, timers) = d.call("GET", "/v1/timers", None);
    assert!(timers["timers"].as_array().unwrap().is_empty());
    let clock = d.expect(200, "POST", "/v1/clock", Some(&json!({"advance_seconds": 86400})));
    assert_eq!(
        instant(&clock["now"]),
        instant(&json!("2026-12-02T09:00:00Z")),
        "{clock}"
    );
    assert_eq!(runs(&d, "disable-user").len(), 1, "fired once");
}

#[test]
fn a_trigger_loop_stops_at_the_depth_limit() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &["--max-event-depth", "3"]);
    d.install_hostile(json!({}));
    task(&d, "loop", "hostile", json!({"mode": "fail"}));
    trigger(
        &d,
        json!({"name": "again", "on": {"type": "sundial.run.failed", "subject": "loop"}, "targets": [{"task": "loop"}]}),
    );
    d.expect(202, "POST", "/v1/tasks/loop/run", None);
    wait_until("the stopped event", 60, || {
        let (_, v) = d.call("GET", "/v1/events?type=sundial.run.failed", None);
        items(&v["events"]).iter().any(|e| e["stopped"].is_string())
    });
    let r = finished(&d, "loop", 4);
    let mut depths: Vec<u64> = r.iter().map(|r| r["depth"].as_u64().unwrap()).collect();
    depths.sort();
    assert_eq!(depths, [0, 1, 2, 3], "the manual run and three chained ones");
    // The last run's failure event is the stopped one: it started nothing, so the
    // chain is complete (no sleep needed to see that no fifth run comes).
    assert_eq!(runs(&d, "loop").len(), 4, "and no more");
    let (_, v) = d.call("GET", "/v1/events?type=sundial.run.failed", None);
    let stopped: Vec<&Value> = items(&v["events"])
        .iter()
        .filter(|e| e["stopped"].is_string())
        .collect();
    assert_eq!(stopped.len(), 1);
    assert_eq!(stopped[0]["depth"], 4);
    assert!(
        stopped[0]["stopped"]
            .as_str()
            .unwrap()
            .contains("max_event_depth")
    );
}

#[test]
fn plugins_emit_events_that_trigger_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    d.install_hostile(json!({"grants": {"emit_events": true}}));
    task(&d, "prober", "hostile", json!({"mode": "probe"}));
    task(&d, "listener", "echo", json!({}));
    trigger(
        &d,
        json!({"name": "heard", "on": {"type": "fixture.probed", "source": "sundial/plugin/*"}, "targets": [{"task": "listener"}]}),
    );
    let (_, run) = d.call("POST", "/v1/tasks/prober/run?wait=true", None);
    let heard = &finished(&d, "listener", 1)[0];
    let e = &heard["output"]["event"];
    assert_eq!(
        (&e["type"], &e["source"], &e["subject"]),
        (
            &json!("fixture.probed"),
            &json!("sundial/plugin/hostile"),
            &json!("probe")
        )
    );
    assert_eq!(e["data"]["run"], run["id"]);
    let (_, log) = d.call("GET", "/v1/events?type=fixture.probed", None);
    assert_eq!(log["events"][0]["caused_by"], run["id"]);
    assert_eq!(log["events"][0]["depth"], 1);
}

#[test]
fn a_disabled_trigger_matches_nothing_until_it_is_enabled_again() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    task(&d, "t", "echo", json!({}));
    let created = trigger(
        &d,
        json!({"name": "on-ping", "on": {"type": "x.ping"}, "targets": [{"task": "t"}]}),
    );
    assert_eq!(created["enabled"], true, "{created}");
    let matched = |answer: &Value| answer["triggers"].as_array().unwrap().len();
    assert_eq!(matched(&post(&d, &event("x.ping", "p1", None, json!({})))), 1);

    let (status, v) = d.call("POST", "/v1/triggers/on-ping/disable", None);
    assert_eq!((status, &v["enabled"]), (200, &json!(false)), "{v}");
    assert_eq!(
        matched(&post(&d, &event("x.ping", "p2", None, json!({})))),
        0,
        "disabled"
    );
    // Disabled survives a restart (the index is rebuilt from the store).
    d.kill9();
    let d = Daemon::start(dir.path(), &[]);
    assert_eq!(
        matched(&post(&d, &event("x.ping", "p3", None, json!({})))),
        0,
        "still disabled"
    );

    let (status, v) = d.call("POST", "/v1/triggers/on-ping/enable", None);
    assert_eq!((status, &v["enabled"]), (200, &json!(true)), "{v}");
    let answer = post(&d, &event("x.ping", "p4", None, json!({})));
    assert_eq!(matched(&answer), 1, "enabled again: {answer}");
    assert_eq!(
        answer["triggers"][0]["runs"].as_array().unwrap().len(),
        1,
        "{answer}"
    );
    let runs = finished(&d, "t", 2);
    let events: Vec<&str> = runs.iter().map(|r| r["event"]["id"].as_str().unwrap()).collect();
    let mut sorted = events.clone();
    sorted.sort();
    assert_eq!(sorted, ["p1", "p4"], "only the events while enabled started runs");
    // Enabling twice is no error and changes nothing; an unknown trigger is 404.
    d.expect(200, "POST", "/v1/triggers/on-ping/enable", None);
    d.expect(404, "POST", "/v1/triggers/nope/enable", None);
    let (_, audit) = d.call("GET", "/v1/audit?noun=trigger", None);
    assert!(audit["entries"].as_array().unwrap().len() >= 3, "{audit}");
}
