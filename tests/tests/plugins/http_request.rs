//! The bundled `http-request` action against real HTTP servers on loopback: what is sent, what comes back, statuses, timeouts, grants, bad params.

use super::*;

const RUN_ID: &str = "01HTTPRUN";
const ITEMS_BODY: &str = r#"{"ok":true,"n":[1,2]}"#;

/// `/status/N` answers N with body `status N body`; `/hang` never answers;
/// `/long` answers 500 with 300 `é`; `/text` answers 200 in plain text; anything
/// else 201 with a JSON body and an `x-answer` header.
fn api() -> Http {
    Http::start(|req| {
        let path = req.path.split('?').next().unwrap_or_default();
        if let Some(code) = path.strip_prefix("/status/") {
            let status: u16 = code.parse().expect("a status in the path");
            return answer(status, &[], format!("status {status} body"));
        }
        match path {
            "/hang" => Answer {
                hang: true,
                ..answer(200, &[], "")
            },
            "/long" => answer(500, &[], "é".repeat(300)),
            "/text" => answer(200, &[("content-type", "text/plain")], "plain words"),
            _ => answer(201, &[JSON, ("x-answer", "yes")], ITEMS_BODY),
        }
    })
}

/// The output of a run that must have succeeded (panics, showing the report, otherwise).
fn output(report: &RunReport<Value>) -> Value {
    report
        .result
        .clone()
        .unwrap_or_else(|e| panic!("{e}\n{report:#?}"))
}

/// The status, body and parsed JSON body of an http-request output.
fn status_body_json(out: &Value) -> (&Value, &Value, &Value) {
    (&out["status"], &out["body"], &out["json"])
}

fn call(grants: Grants, params: Value) -> RunReport<Value> {
    let inv = Invocation {
        run_id: RUN_ID.into(),
        ..Invocation::manual("call-api", params)
    };
    run_action("http-request", grants, memory(), Limits::default(), &inv)
}

#[test]
fn a_json_body_is_sent_as_json_with_the_run_id_as_idempotency_key() {
    let server = api();
    let url = server.url("/items?x=1&y=two");
    let report = call(
        server.grants(),
        json!({"url": url, "method": "POST", "headers": {"X-Trace": "abc-123"},
               "body": {"b": [true, null], "a": 1}}),
    );
    let out = output(&report);
    assert_eq!(
        status_body_json(&out),
        (&json!(201), &json!(ITEMS_BODY), &json!({"ok": true, "n": [1, 2]})),
        "{report:#?}"
    );
    assert_eq!(
        out.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["body", "headers", "json", "status"],
        "{report:#?}"
    );
    assert_eq!(out["headers"]["x-answer"], "yes", "{report:#?}");
    assert_eq!(out["headers"]["content-type"], "application/json", "{report:#?}");
    assert_eq!(
        report.resources.hosts_contacted,
        [format!("127.0.0.1:{}", server.addr.port())],
        "{report:#?}"
    );
    assert_eq!(plugin_lines(&report.log), [format!("POST {url}")], "{report:#?}");

    let got = server.requests();
    assert_eq!(got.len(), 1, "{got:#?}");
    let req = &got[0];
    assert_eq!(
        (req.method.as_str(), req.path.as_str()),
        ("POST", "/items?x=1&y=two"),
        "{req:#?}"
    );
    assert_eq!(req.header("x-trace"), Some("abc-123"), "{req:#?}");
    assert_eq!(req.header("content-type"), Some("application/json"), "{req:#?}");
    assert_eq!(req.header("idempotency-key"), Some(RUN_ID), "{req:#?}");
    assert_eq!(
        String::from_utf8_lossy(&req.body),
        r#"{"a":1,"b":[true,null]}"#,
        "{req:#?}"
    );
}

#[test]
fn string_null_and_typed_bodies_and_methods() {
    let server = api();
    let grants = server.grants();

    // A string body goes as it is, with no content type added.
    let report = call(
        grants.clone(),
        json!({"url": server.url("/text"), "method": "put", "body": "raw text, not JSON"}),
    );
    assert_eq!(
        status_body_json(&output(&report)),
        (&json!(200), &json!("plain words"), &Value::Null),
        "a body that is not JSON gives json null: {report:#?}"
    );

    // An explicit content type wins over the JSON default (any case).
    let report = call(
        grants.clone(),
        json!({"url": server.url("/patch"), "method": "PATCH",
               "headers": {"Content-Type": "application/merge-patch+json"}, "body": {"a": null}}),
    );
    assert!(report.result.is_ok(), "{report:#?}");

    // No method: GET; no path: `/`; a null body: none at all.
    let report = call(grants.clone(), json!({"url": format!("http://{}", server.addr)}));
    assert!(report.result.is_ok(), "{report:#?}");
    let report = call(
        grants.clone(),
        json!({"url": server.url("/empty"), "method": "POST", "body": null}),
    );
    assert!(report.result.is_ok(), "{report:#?}");
    // A number is JSON too; an extension method passes through.
    let report = call(
        grants,
        json!({"url": server.url("/n"), "method": "PURGE", "body": 42}),
    );
    assert!(report.result.is_ok(), "{report:#?}");

    let got = server.requests();
    let seen: Vec<(&str, &str, Vec<&str>, String)> = got
        .iter()
        .map(|r| {
            let types = r
                .headers
                .iter()
                .filter(|(k, _)| k == "content-type")
                .map(|(_, v)| v.as_str())
                .collect();
            (
                r.method.as_str(),
                r.path.as_str(),
                types,
                String::from_utf8_lossy(&r.body).into_owned(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("PUT", "/text", vec![], "raw text, not JSON".to_string()),
            (
                "PATCH",
                "/patch",
                vec!["application/merge-patch+json"],
                r#"{"a":null}"#.to_string()
            ),
            ("GET", "/", vec![], String::new()),
            ("POST", "/empty", vec![], String::new()),
            ("PURGE", "/n", vec!["application/json"], "42".to_string()),
        ],
        "{got:#?}"
    );
    for r in &got {
        assert_eq!(r.header("idempotency-key"), Some(RUN_ID), "{r:#?}");
    }
}

#[test]
fn a_status_outside_expect_status_fails_retryably_only_for_retry_on_status() {
    let server = api();
    let grants = server.grants();
    for (status, retryable) in [
        (408, true),
        (429, true),
        (500, true),
        (502, true),
        (503, true),
        (504, true),
        (400, false),
        (401, false),
        (403, false),
        (404, false),
        (409, false),
        (501, false),
    ] {
        let url = server.url(&format!("/status/{status}"));
        let report = call(grants.clone(), json!({ "url": url }));
        let msg = format!("{url} answered {status}: status {status} body");
        let expected = if retryable {
            RunError::Retryable(msg)
        } else {
            RunError::Failed(msg)
        };
        assert_eq!(report.result, Err(expected), "{status}: {report:#?}");
    }

    // retry_on_status replaces the default list.
    let url = server.url("/status/404");
    let report = call(grants.clone(), json!({"url": url, "retry_on_status": [404]}));
    assert_eq!(
        report.result,
        Err(RunError::Retryable(format!(
            "{url} answered 404: status 404 body"
        ))),
        "{report:#?}"
    );
    let url = server.url("/status/503");
    let report = call(grants.clone(), json!({"url": url, "retry_on_status": []}));
    assert_eq!(
        report.result,
        Err(RunError::Failed(format!("{url} answered 503: status 503 body"))),
        "{report:#?}"
    );

    // expect_status replaces "any 2xx".
    let url = server.url("/status/404");
    let report = call(grants.clone(), json!({"url": url, "expect_status": [404]}));
    assert_eq!(
        status_body_json(&output(&report)),
        (&json!(404), &json!("status 404 body"), &Value::Null),
        "{report:#?}"
    );
    let url = server.url("/items");
    let report = call(grants.clone(), json!({"url": url, "expect_status": [200]}));
    assert_eq!(
        report.result,
        Err(RunError::Failed(format!("{url} answered 201: {ITEMS_BODY}"))),
        "{report:#?}"
    );

    // The body in the error is cut at 200 characters (not bytes).
    let url = server.url("/long");
    let report = call(grants, json!({ "url": url }));
    assert_eq!(
        report.result,
        Err(RunError::Retryable(format!(
            "{url} answered 500: {}",
            "é".repeat(200)
        ))),
        "{report:#?}"
    );
}

#[test]
fn transport_failures_are_retryable_and_a_host_not_granted_is_never_contacted() {
    let server = api();

    // The plugin's own timeout_ms (first byte), well inside the run's 30 s.
    let url = server.url("/hang");
    // (The run's own 30 s limit would end it as a `Timeout` run error, not this.)
    let report = call(server.grants(), json!({"url": url, "timeout_ms": 300}));
    match error_of(&report) {
        RunError::Retryable(m) => assert!(m.starts_with(&format!("{url}: ")) && m.contains("Timeout"), "{m}"),
        other => panic!("expected a retryable timeout, got {other:?}\n{report:#?}"),
    }

    // Nobody listening.
    let port = closed_port();
    let url = format!("http://127.0.0.1:{port}/x");
    let report = call(host_grant(port), json!({ "url": url }));
    assert_connection_refused(&report, &format!("{url}: "));
    // With a body of many chunks the connection fails while the plugin still writes
    // it: the host reads the rest of the body before it answers, and the error is
    // still the connection's (the SDK also reports the response's error when the
    // body closes under it, as it did before the host read the rest).
    let big = "x".repeat(1 << 20);
    let report = call(
        host_grant(port),
        json!({ "url": url, "method": "post", "body": big }),
    );
    assert_connection_refused(&report, &format!("{url}: "));

    // A host that is not granted (only another port is): final, retrying cannot help.
    let before = server.requests().len();
    let url = server.url("/secret");
    let report = call(host_grant(port), json!({ "url": url }));
    assert_eq!(
        report.result,
        Err(RunError::Failed(format!(
            "{url}: request denied: host not granted to this plugin"
        ))),
        "{report:#?}"
    );
    assert!(report.resources.hosts_contacted.is_empty(), "{report:#?}");
    let denial = format!(
        "denied: host 127.0.0.1:{} is not granted to this plugin",
        server.addr.port()
    );
    assert!(
        report
            .log
            .lines
            .iter()
            .any(|l| l.level == Level::Warn && l.origin == Origin::Host && l.message.contains(&denial)),
        "{report:#?}"
    );
    assert_eq!(server.requests().len(), before, "the server saw nothing");
}

#[test]
fn urls_and_params_are_checked_before_anything_is_sent() {
    let server = api();
    // Final failures: an invalid URL never works.
    for (url, expected) in [
        (
            "ftp://127.0.0.1/file",
            "ftp://127.0.0.1/file: url \"ftp://127.0.0.1/file\" must start with http:// or https://",
        ),
        ("http:///x", "http:///x: url \"http:///x\" has no host"),
    ] {
        let report = call(server.grants(), json!({ "url": url }));
        assert_eq!(
            report.result,
            Err(RunError::Failed(expected.to_string())),
            "{report:#?}"
        );
        assert!(report.resources.hosts_contacted.is_empty(), "{report:#?}");
    }

    for (params, prefix) in [
        (
            json!({"url": server.url("/"), "verb": "GET"}),
            "params: unknown field `verb`, expected one of `url`, `method`, `headers`, `body`, \
             `timeout_ms`, `expect_status`, `retry_on_status`",
        ),
        (json!({"method": "GET"}), "params: missing field `url`"),
        (
            json!({"url": server.url("/"), "headers": {"x-count": 1}}),
            "params: invalid type: integer `1`, expected a string",
        ),
        (
            json!("http://127.0.0.1/"),
            "params: invalid type: string \"http://127.0.0.1/\"",
        ),
    ] {
        let report = call(server.grants(), params.clone());
        match error_of(&report) {
            RunError::InvalidParams(m) => assert!(m.starts_with(prefix), "{params}: {m}"),
            other => panic!("{params}: expected invalid params, got {other:?}\n{report:#?}"),
        }
    }
    assert!(server.requests().is_empty(), "{:#?}", server.requests());
}
