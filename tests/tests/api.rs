//! The HTTP surface of `sundial serve`: precise error statuses, roles, pagination,
//! the audit log, that the router serves exactly what `/openapi.json` describes, and
//! that every timestamp in an answer has the one documented format.

use serde_json::{Value, json};
use sundial_tests::{Daemon, column, message, raw_exchange, raw_http, wasm};

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
    let big = vec![b' '; 16 * 1024 * 1024];
    let headers = format!(
        "authorization: Bearer {}\r\ncontent-type: application/json\r\n",
        d.token
    );
    // Answered before the body is read: the client, still sending, reads the 413
    // (the daemon lingers instead of resetting the connection). Several times, as a
    // reset is a race.
    for _ in 0..5 {
        assert_eq!(raw_http(&d.addr, "POST", "/v1/tasks", &headers, &big).0, 413);
    }
    // A disabled task refuses runs.
    d.create("/v1/tasks", json!({"name": "off", "plugin": "echo"}));
    assert_eq!(d.call("POST", "/v1/tasks/off/disable", None).1["enabled"], false);
    d.expect(409, "POST", "/v1/tasks/off/run", None);
}

#[test]
fn run_lists_paginate_without_gaps_or_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    d.create("/v1/tasks", json!({"name": "e", "plugin": "echo"}));
    let mut started = Vec::new();
    for _ in 0..23 {
        let run = d.expect(202, "POST", "/v1/tasks/e/run", None);
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
    d.expect(
        409,
        "POST",
        "/v1/tokens",
        Some(&json!({"name": "op", "role": "viewer"})),
    );
    d.expect(
        400,
        "POST",
        "/v1/tokens",
        Some(&json!({"name": "x", "role": "god"})),
    );
    d.create("/v1/tasks", json!({"name": "t", "plugin": "echo"}));

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
        ("ing", "GET", "/openapi.json", None, 403),
        ("view", "GET", "/openapi.json", None, 200),
        ("ing", "GET", "/v1/admin/unreadable", None, 403),
        ("op", "GET", "/v1/admin/unreadable", None, 403),
    ];
    for (who, method, path, body, want) in cases {
        let (status, answer) = d.call_as(Some(&secrets[who]), method, path, body.as_ref());
        assert_eq!(status, want, "{who} {method} {path}: {answer}");
        if want == 403 {
            assert_eq!(answer["error"]["code"], "forbidden");
            assert!(message(&answer).contains(who), "{answer}");
        }
    }
    // Runs record who started them.
    let (_, runs) = d.call("GET", "/v1/runs?task=t", None);
    assert_eq!(runs["runs"][0]["started_by"], "op");

    // Revoked tokens stop working; the last admin token cannot be revoked.
    d.expect(204, "DELETE", "/v1/tokens/view", None);
    assert_eq!(d.call_as(Some(&secrets["view"]), "GET", "/v1/tasks", None).0, 401);
    d.expect(409, "DELETE", "/v1/tokens/admin", None);
    // Nor can a token revoke itself: another admin token must.
    let second = d.create("/v1/tokens", json!({"name": "admin2", "role": "admin"}));
    let second = second["secret"].as_str().unwrap().to_string();
    let (status, err) = d.call_as(Some(&second), "DELETE", "/v1/tokens/admin2", None);
    assert_eq!(status, 409, "{err}");
    assert!(message(&err).contains("another admin token"), "{err}");
    d.expect(204, "DELETE", "/v1/tokens/admin2", None);
    let (_, list) = d.call("GET", "/v1/tokens", None);
    let names = column(&list["tokens"], "name");
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
    d.expect(204, "DELETE", "/v1/tasks/t", None);

    let audit = d.expect(200, "GET", &format!("/v1/audit?noun=task&target={id}"), None);
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
    let all = d.expect(200, "GET", "/v1/audit?limit=1000", None);
    let entries = all["entries"].as_array().unwrap();
    assert!(
        entries.iter().any(|e| e["noun"] == "token"
            && e["action"] == "create"
            && (e["target"] == "alice" || e["after"]["name"] == "alice")),
        "alice's token is audited: {all}"
    );
    let text = all.to_string();
    assert!(
        !text.contains(&alice) && !text.contains(&d.token),
        "secrets must not be audited"
    );
    let (_, tokens) = d.call("GET", "/v1/audit?noun=token&actor=sundial", None);
    assert_eq!(tokens["entries"].as_array().unwrap().len(), 1);
    d.expect(400, "GET", "/v1/audit?since=never", None);
    let (status, err) = d.call("GET", "/v1/audit?cursor=null", None);
    assert_eq!(status, 400, "a cursor that is not an id: {err}");
}

/// A concrete path for an OpenAPI path template (every parameter filled with an id
/// that names nothing).
#[test]
fn the_daemon_serves_the_dashboard_beside_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    let (status, head, _) = raw_exchange(&d.addr, "GET", "/", "", b"");
    assert_eq!(status, 303, "{head}");
    assert!(head.contains("\r\nlocation: /login"), "{head}");
    let (status, head, page) = raw_exchange(&d.addr, "GET", "/login", "", b"");
    assert_eq!(status, 200, "{head}");
    assert!(
        head.contains("content-security-policy: default-src 'none'"),
        "{head}"
    );
    assert!(page.contains("<h1>Log in</h1>"), "{page}");
    // The login form, as a browser on this page posts it, with the admin token.
    let form = format!("token={}", d.token);
    let origin = format!(
        "content-type: application/x-www-form-urlencoded\r\norigin: http://{}\r\n",
        d.addr
    );
    let (status, head, _) = raw_exchange(&d.addr, "POST", "/login", &origin, form.as_bytes());
    assert_eq!(status, 303, "{head}");
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_string();
    let (status, _, page) = raw_exchange(&d.addr, "GET", "/", &format!("cookie: {cookie}\r\n"), b"");
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("<h1>Overview</h1>") && page.contains("admin (admin)"),
        "{page}"
    );
}

fn concrete(template: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}').expect("closing brace") + open;
        out.push_str("01JZZZZZZZZZZZZZZZZZZZZZZZ");
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

#[test]
fn the_router_serves_exactly_what_openapi_describes() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    let doc = d.expect(200, "GET", "/openapi.json", None);
    let headers = format!(
        "authorization: Bearer {}\r\ncontent-type: application/json\r\n",
        d.token
    );
    let all = ["get", "post", "put", "patch", "delete"];
    let mut probed = 0;
    for (template, ops) in doc["paths"].as_object().unwrap() {
        let path = concrete(template);
        for method in all {
            // Side effects are harmless here: every id names nothing, every body is {}.
            let (status, body) = raw_http(&d.addr, &method.to_uppercase(), &path, &headers, b"{}");
            if ops.get(method).is_some() {
                probed += 1;
                assert_ne!(
                    status, 405,
                    "{method} {path} is documented but not served: {body}"
                );
                assert!(
                    !body.contains("no such endpoint"),
                    "{method} {path} is documented but not routed: {body}"
                );
            } else {
                assert_eq!(
                    status, 405,
                    "{method} {path} is served but not documented: {status} {body}"
                );
            }
        }
    }
    assert!(probed >= 60, "only {probed} operations documented");
    // And nothing outside the document is routed.
    for path in ["/v1", "/v1/nothing", "/v1/tasks/x/y/z", "/v2/tasks"] {
        let (status, body) = raw_http(&d.addr, "GET", path, &headers, b"");
        assert_eq!(status, 404, "GET {path}: {body}");
        assert!(body.contains("no such endpoint"), "GET {path}: {body}");
    }
}

/// Every string in `v` that looks like a timestamp, with the path to it.
fn timestamps(v: &Value, path: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                timestamps(x, &format!("{path}.{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                timestamps(x, &format!("{path}[{i}]"), out);
            }
        }
        Value::String(s) => {
            let b = s.as_bytes();
            if b.len() >= 19
                && b[4] == b'-'
                && b[7] == b'-'
                && b[10] == b'T'
                && b[13] == b':'
                && b[16] == b':'
            {
                out.push((path.to_string(), s.clone()));
            }
        }
        _ => {}
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmm` followed by `tail`'s shape: `Z`, or `+HH:MM` for local times.
fn has_format(s: &str, local: bool) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| r.into_iter().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    let head = b.len() >= 23
        && digits(0..4)
        && digits(5..7)
        && digits(8..10)
        && digits(11..13)
        && digits(14..16)
        && digits(17..19)
        && b[19] == b'.'
        && digits(20..23);
    if local {
        head && b.len() == 29
            && matches!(b[23], b'+' | b'-')
            && digits(24..26)
            && b[26] == b':'
            && digits(27..29)
    } else {
        head && b.len() == 24 && b[23] == b'Z'
    }
}

#[test]
fn every_timestamp_in_an_answer_has_one_format() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &["--allow-loopback"]);
    let post = |path: &str, body: Value| {
        let (status, v) = d.call("POST", path, Some(&body));
        assert!((200..300).contains(&status), "POST {path}: {status} {v}");
        v
    };
    // One of every noun, with times set by the daemon, given by the caller (with
    // microseconds and an offset) and computed (next slot, preview, timers, deliveries).
    post("/v1/tasks", json!({"name": "t", "plugin": "echo"}));
    post(
        "/v1/schedules",
        json!({"name": "s", "rule": {"cron": "*/5 * * * *"}, "timezone": "Europe/Berlin",
               "start": "2026-01-01T10:00:00.123456+01:00", "end": "2099-01-01T00:00:00Z"}),
    );
    post(
        "/v1/schedules",
        json!({"name": "once", "rule": {"at": "2099-06-01T12:00:00.5+02:00"}}),
    );
    post("/v1/schedules/s/tasks", json!({"task": "t"}));
    post(
        "/v1/triggers",
        json!({"name": "later", "on": {"type": "x.later"}, "targets": [{"task": "t"}], "delay": "1h"}),
    );
    post(
        "/v1/webhooks",
        json!({"name": "hook", "url": "http://127.0.0.1:9/never"}),
    );
    post(
        "/v1/triggers",
        json!({"name": "out", "on": {"type": "x.out"}, "targets": [{"webhook": "hook"}]}),
    );
    post("/v1/tokens", json!({"name": "viewer", "role": "viewer"}));
    let (status, v) = d.call("PUT", "/v1/secrets/k", Some(&json!({"value": "a-secret-value"})));
    assert!((200..300).contains(&status), "{v}");
    post("/v1/tasks/t/run?wait=true", json!({}));
    post(
        "/v1/events",
        json!({"specversion": "1.0", "id": "e1", "source": "/t", "type": "x.later"}),
    );
    post(
        "/v1/events",
        json!({"specversion": "1.0", "id": "e2", "source": "/t", "type": "x.out"}),
    );
    let mut answers = d.read_all(&[
        "/v1/tasks",
        "/v1/runs",
        "/v1/schedules",
        "/v1/schedules/s",
        "/v1/schedules/s/preview?count=3&from=2026-03-29T00:00:00.999999Z",
        "/v1/triggers",
        "/v1/timers",
        "/v1/webhooks",
        "/v1/deliveries",
        "/v1/events",
        "/v1/tokens",
        "/v1/secrets",
        "/v1/plugins",
        "/v1/audit?limit=1000",
        "/v1/clock",
    ]);
    let preview = post(
        "/v1/schedules/preview",
        json!({"rule": {"cron": "30 2 * * *"}, "timezone": "Europe/Berlin", "from": "2026-03-27T12:00:00.5Z", "count": 3}),
    );
    answers.push(("/v1/schedules/preview", preview));
    let mut found = Vec::new();
    for (path, v) in &answers {
        timestamps(v, path, &mut found);
    }
    assert!(found.len() > 40, "too few timestamps to mean anything: {found:?}");
    let mut wrong = Vec::new();
    for (path, t) in &found {
        let field = path.rsplit('.').next().unwrap_or_default();
        let local = field == "local" || field.ends_with("_local");
        // A CloudEvent's own `time` is the producer's (events e1/e2 have none, so the
        // daemon's receive time stands in and must be in the format too).
        if !has_format(t, local) {
            wrong.push(format!("{path} = {t}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "timestamps not in the one format:\n{}",
        wrong.join("\n")
    );
}
