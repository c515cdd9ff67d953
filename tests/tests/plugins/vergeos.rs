//! The bundled `vergeos` action against the stand-in VergeOS v4 API: lookups, actions, errors, redaction.

use super::*;

const KEY: &str = "vergeos-api-key-0123456789abcdef";
const LOOKUP_GPU_1: &str = "/api/v4/vms?filter=name%20eq%20%27gpu-1%27&fields=%24key%2Cname";

/// A stand-in with VMs gpu-1 (7), gpu-2 (8) and two named `dup`, tenant acme (3,
/// running) and user jthompson (5).
fn stand_in() -> VergeOs {
    VergeOs::start(
        KEY,
        &[(7, "gpu-1"), (8, "gpu-2"), (20, "dup"), (21, "dup")],
        &[(3, "acme")],
        &[(5, "jthompson")],
    )
}

/// The port of `http://127.0.0.1:PORT[/...]`.
fn port_of(url: &str) -> u16 {
    let after = url.rsplit(':').next().unwrap_or_default();
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap_or_else(|_| panic!("no port in {url:?}"))
}

/// HTTP to the host of `url` and the `vergeos-key` secret.
fn grants(url: &str) -> Grants {
    Grants {
        secrets: vec!["vergeos-key".into()],
        ..host_grant(port_of(url))
    }
}

/// Run the plugin against `url` with `api_key_secret: vergeos-key` holding `key`
/// (none: the secret does not exist), the fields of `params` added.
fn vergeos_with(
    url: &str,
    key: Option<&str>,
    grants: Grants,
    params: Value,
    event: Option<Event>,
) -> RunReport<Value> {
    let mut all = json!({"url": url, "api_key_secret": "vergeos-key"});
    for (k, v) in params.as_object().expect("params are an object") {
        all[k] = v.clone();
    }
    let services: Arc<dyn HostServices> = Arc::new(MemoryServices::with_secrets(
        key.map(|k| ("vergeos-key".to_string(), k.to_string())),
    ));
    let cause = if event.is_some() {
        Cause::Event
    } else {
        Cause::Manual
    };
    let inv = Invocation {
        run_id: "01VERGERUN".into(),
        cause,
        event,
        ..Invocation::manual("vergeos-task", all)
    };
    run_action("vergeos", grants, services, Limits::default(), &inv)
}

fn vergeos(api: &VergeOs, params: Value) -> RunReport<Value> {
    vergeos_with(&api.url, Some(KEY), grants(&api.url), params, None)
}

/// The stand-in's calls as (method, path, decoded query, body, status).
fn calls(api: &VergeOs) -> Vec<(String, String, String, Value, u16)> {
    api.calls()
        .into_iter()
        .map(|c| (c.method, c.path, c.query, c.body, c.status))
        .collect()
}

fn call(
    method: &str,
    path: &str,
    query: &str,
    body: Value,
    status: u16,
) -> (String, String, String, Value, u16) {
    (method.into(), path.into(), query.into(), body, status)
}

fn row_action_answer(actions: &str) -> Value {
    json!({"location": format!("/v4/{actions}/1"), "dbpath": format!("{actions}/1"), "$row": 1, "$key": "1"})
}

#[test]
fn a_vm_is_powered_on_by_name_after_one_lookup() {
    let api = stand_in();
    let report = vergeos(&api, json!({"action": "vm.poweron", "target": "gpu-1"}));
    assert_eq!(
        report.result,
        Ok(json!({
            "target": {"table": "vms", "key": 7, "name": "gpu-1"},
            "calls": [{"action": "vm.poweron", "method": "POST", "path": "/api/v4/vm_actions", "status": 201,
                       "response": row_action_answer("vm_actions")}],
        })),
        "{report:#?}"
    );
    assert_eq!(
        calls(&api),
        [
            call(
                "GET",
                "/api/v4/vms",
                "filter=name eq 'gpu-1'&fields=$key,name",
                Value::Null,
                200
            ),
            call(
                "POST",
                "/api/v4/vm_actions",
                "",
                json!({"vm": "7", "action": "poweron", "params": {}}),
                201
            ),
        ]
    );
    assert!(api.is_on("vms", "gpu-1") && !api.is_on("vms", "gpu-2"));
    assert_eq!(
        plugin_lines(&report.log),
        [
            format!("GET {LOOKUP_GPU_1}"),
            "POST /api/v4/vm_actions".to_string()
        ],
        "{report:#?}"
    );
    assert_eq!(
        report.resources.hosts_contacted,
        [format!("127.0.0.1:{}", port_of(&api.url))],
        "{report:#?}"
    );
}

#[test]
fn targets_by_key_skip_the_lookup_and_names_can_be_templates() {
    let api = stand_in();
    for target in [json!(8), json!({"key": 8}), json!("8")] {
        let before = api.calls().len();
        let report = vergeos(&api, json!({"action": "vm.reset", "target": target}));
        assert_eq!(
            report.result,
            Ok(json!({
                "target": {"table": "vms", "key": 8, "name": ""},
                "calls": [{"action": "vm.reset", "method": "POST", "path": "/api/v4/vm_actions", "status": 201,
                           "response": row_action_answer("vm_actions")}],
            })),
            "{target}: {report:#?}"
        );
        assert_eq!(
            calls(&api)[before..],
            [call(
                "POST",
                "/api/v4/vm_actions",
                "",
                json!({"vm": "8", "action": "reset", "params": {}}),
                201
            )],
            "{target}: no lookup"
        );
    }

    // {"name": ...} and a template filled from the event; tenant and user keys
    // go as numbers.
    let login = Event {
        id: "l-1".into(),
        kind: "vergeos.user.login".into(),
        source: "/vergeos/prod".into(),
        subject: None,
        time: "2026-11-27T09:00:00Z".into(),
        data: json!({"vm": "gpu-2", "user": "jthompson"}),
    };
    let cases = [
        (
            json!({"action": "vm.poweron", "target": "${event.data.vm}"}),
            ("vms", 8, "gpu-2"),
            (
                "/api/v4/vm_actions",
                json!({"vm": "8", "action": "poweron", "params": {}}),
            ),
        ),
        (
            json!({"action": "user.disable", "target": {"name": "${event.data.user}"}}),
            ("users", 5, "jthompson"),
            (
                "/api/v4/user_actions",
                json!({"user": 5, "action": "disable", "params": {}}),
            ),
        ),
        (
            json!({"action": "tenant.poweroff", "target": {"name": "acme"}}),
            ("tenants", 3, "acme"),
            (
                "/api/v4/tenant_actions",
                json!({"tenant": 3, "action": "poweroff", "params": {}}),
            ),
        ),
    ];
    for (params, (table, key, name), (path, body)) in cases {
        let before = api.calls().len();
        let report = vergeos_with(
            &api.url,
            Some(KEY),
            grants(&api.url),
            params.clone(),
            Some(login.clone()),
        );
        let actions = path.trim_start_matches("/api/v4/");
        assert_eq!(
            report.result,
            Ok(json!({
                "target": {"table": table, "key": key, "name": name},
                "calls": [{"action": params["action"], "method": "POST", "path": path, "status": 201,
                           "response": row_action_answer(actions)}],
            })),
            "{params}: {report:#?}"
        );
        assert_eq!(
            calls(&api)[before..],
            [
                call(
                    "GET",
                    &format!("/api/v4/{table}"),
                    &format!("filter=name eq '{name}'&fields=$key,name"),
                    Value::Null,
                    200
                ),
                call("POST", path, "", body, 201),
            ],
            "{params}"
        );
    }
    assert!(api.is_on("vms", "gpu-2") && !api.is_on("users", "jthompson") && !api.is_on("tenants", "acme"));
}

#[test]
fn update_actions_read_the_update_source_once_then_post_in_order() {
    let api = stand_in();
    let report = vergeos(
        &api,
        json!({"action": ["updates.check", "updates.download", "updates.install"]}),
    );
    let posted = |action: &str, n: u32| {
        json!({"action": action, "method": "POST", "path": "/api/v4/update_actions", "status": 201,
               "response": {"location": format!("/v4/update_actions/{n}"), "$key": n.to_string()}})
    };
    assert_eq!(
        report.result,
        Ok(json!({
            "target": null,
            "calls": [posted("updates.check", 1), posted("updates.download", 2), posted("updates.install", 3)],
        })),
        "{report:#?}"
    );
    let post = |verb: &str| {
        call(
            "POST",
            "/api/v4/update_actions",
            "",
            json!({"source": 1, "action": verb}),
            201,
        )
    };
    assert_eq!(
        calls(&api),
        [
            call(
                "GET",
                "/api/v4/update_settings/1",
                "fields=source",
                Value::Null,
                200
            ),
            post("refresh"),
            post("download"),
            post("install"),
        ]
    );
    assert_eq!(api.update_actions(), ["refresh", "download", "install"]);

    // One action as a string.
    let report = vergeos(&api, json!({"action": "updates.check"}));
    assert_eq!(
        report.result,
        Ok(json!({"target": null, "calls": [posted("updates.check", 4)]})),
        "{report:#?}"
    );
}

#[test]
fn requests_carry_the_api_key_accept_and_a_content_type_on_posts() {
    // A lookup answer with a near miss and a string `$key`: only the exact name counts.
    let server = Http::start(|req| {
        match (
            req.method.as_str(),
            req.path.split('?').next().unwrap_or_default(),
        ) {
            ("GET", "/api/v4/vms") => answer(
                200,
                &[JSON],
                r#"[{"$key": 70, "name": "gpu-10"}, {"$key": "7", "name": "gpu-1"}]"#,
            ),
            ("POST", "/api/v4/vm_actions") => answer(201, &[JSON], r#"{"ok": 1}"#),
            _ => answer(404, &[JSON], r#"{"err": "Resource not found"}"#),
        }
    });
    // A trailing slash on the URL is dropped.
    let url = server.url("/");
    let report = vergeos_with(
        &url,
        Some(KEY),
        grants(&url),
        json!({"action": "vm.poweroff", "target": "gpu-1"}),
        None,
    );
    assert_eq!(
        report.result,
        Ok(json!({
            "target": {"table": "vms", "key": 7, "name": "gpu-1"},
            "calls": [{"action": "vm.poweroff", "method": "POST", "path": "/api/v4/vm_actions", "status": 201,
                       "response": {"ok": 1}}],
        })),
        "{report:#?}"
    );
    let got = server.requests();
    assert_eq!(got.len(), 2, "{got:#?}");
    let bearer = format!("Bearer {KEY}");
    for (req, method, path, content_type) in [
        (&got[0], "GET", LOOKUP_GPU_1, None),
        (&got[1], "POST", "/api/v4/vm_actions", Some("application/json")),
    ] {
        assert_eq!(
            (req.method.as_str(), req.path.as_str()),
            (method, path),
            "{req:#?}"
        );
        assert_eq!(req.header("authorization"), Some(bearer.as_str()), "{req:#?}");
        assert_eq!(req.header("accept"), Some("application/json"), "{req:#?}");
        assert_eq!(req.header("content-type"), content_type, "{req:#?}");
    }
    assert!(got[0].body.is_empty(), "{:#?}", got[0]);
    let posted: Value = serde_json::from_slice(&got[1].body).expect("a JSON body");
    assert_eq!(posted, json!({"vm": "7", "action": "poweroff", "params": {}}));
}

#[test]
fn actions_urls_and_targets_are_checked() {
    let api = stand_in();
    let invalid = [
        (json!({"action": []}), "action: 1-10 actions"),
        (
            json!({"action": vec!["updates.check"; 11]}),
            "action: 1-10 actions",
        ),
        (
            json!({"action": "vm.explode", "target": 7}),
            "action: \"vm.explode\" is not one of vm.poweron, vm.poweroff, vm.kill, vm.reset, \
             tenant.poweron, tenant.poweroff, tenant.reset, user.disable, user.enable, updates.check, \
             updates.download, updates.install",
        ),
        (
            json!({"action": ["vm.poweron", "user.disable"], "target": 7}),
            "action: a list of actions must act on one kind of row",
        ),
        (
            json!({"action": "vm.poweron", "target": 7, "url": "ftp://vergeos.example.com/"}),
            "url: \"ftp://vergeos.example.com\" must start with https:// (or http://)",
        ),
        (json!({"action": "vm.poweron"}), "target: required for vm.poweron"),
        (
            json!({"action": "vm.poweron", "target": ""}),
            "target: \"\": give a name without quotes, or the key",
        ),
        (
            json!({"action": "vm.poweron", "target": "o'brien"}),
            "target: \"o'brien\": give a name without quotes, or the key",
        ),
        (
            // A template with nothing to fill it (no event) is empty.
            json!({"action": "vm.poweron", "target": {"name": "${event.data.vm}"}}),
            "target: \"\": give a name without quotes, or the key",
        ),
    ];
    for (params, expected) in invalid {
        let report = vergeos(&api, params.clone());
        assert_eq!(
            report.result,
            Err(RunError::InvalidParams(expected.into())),
            "{params}: {report:#?}"
        );
    }
    let report = vergeos(&api, json!({"action": "vm.poweron", "target": 7, "verb": 1}));
    let m = error_message(&report, "invalid_params");
    assert!(m.starts_with("params: unknown field `verb`"), "{m}");
    assert!(api.calls().is_empty(), "{:#?}", api.calls());
}

#[test]
fn api_errors_are_failed_and_outages_retryable() {
    let api = stand_in();
    let reset = json!({"action": "vm.reset", "target": 7});

    // The secret: not granted, or granted but missing.
    let expected = "api_key_secret: secret \"vergeos-key\" is not granted to this plugin or does not exist";
    let report = vergeos_with(
        &api.url,
        Some(KEY),
        host_grant(port_of(&api.url)),
        reset.clone(),
        None,
    );
    assert_refused(
        &report,
        RunError::Failed(expected.into()),
        Level::Warn,
        "secret \"vergeos-key\" is not granted to plugin \"vergeos\"",
    );
    let report = vergeos_with(&api.url, None, grants(&api.url), reset.clone(), None);
    assert_eq!(
        report.result,
        Err(RunError::Failed(expected.into())),
        "{report:#?}"
    );
    assert!(api.calls().is_empty(), "{:#?}", api.calls());

    // Lookups that do not give one row.
    for (target, expected) in [
        ("nope", "vms: no row named \"nope\""),
        ("dup", "vms: 2 rows are named \"dup\"; give the key"),
    ] {
        let report = vergeos(&api, json!({"action": "vm.poweron", "target": target}));
        assert_eq!(
            report.result,
            Err(RunError::Failed(expected.into())),
            "{target}: {report:#?}"
        );
    }

    // The API's own errors, with its message.
    let report = vergeos_with(
        &api.url,
        Some("wrong-key-0000"),
        grants(&api.url),
        reset.clone(),
        None,
    );
    assert_eq!(
        report.result,
        Err(RunError::Failed(
            "VergeOS answered 401 to POST /api/v4/vm_actions: Login required".into()
        )),
        "{report:#?}"
    );
    let report = vergeos(&api, json!({"action": "vm.reset", "target": 99}));
    assert_eq!(
        report.result,
        Err(RunError::Failed(
            "VergeOS answered 404 to POST /api/v4/vm_actions: vms/99 not found".into()
        )),
        "{report:#?}"
    );
    let report = vergeos(&api, json!({"action": "tenant.poweron", "target": "acme"}));
    assert_eq!(
        report.result,
        Err(RunError::Failed(
            "VergeOS answered 409 to POST /api/v4/tenant_actions: Cannot power on: already in running state"
                .into()
        )),
        "{report:#?}"
    );

    // 5xx, 408 and 429 are retryable; other 4xx are not.
    for (status, retryable) in [(503, true), (500, true), (429, true), (408, true), (422, false)] {
        api.fail_next(&[status]);
        let report = vergeos(&api, reset.clone());
        let msg =
            format!("VergeOS answered {status} to POST /api/v4/vm_actions: Service temporarily unavailable");
        let expected = if retryable {
            RunError::Retryable(msg)
        } else {
            RunError::Failed(msg)
        };
        assert_eq!(report.result, Err(expected), "{status}: {report:#?}");
    }
    // After the outage the same call works.
    assert!(vergeos(&api, reset.clone()).result.is_ok());

    // Nobody listening.
    let port = closed_port();
    let url = format!("http://127.0.0.1:{port}");
    let report = vergeos_with(&url, Some(KEY), grants(&url), reset, None);
    assert_connection_refused(&report, "POST /api/v4/vm_actions: ");
}

#[test]
fn without_an_update_source_nothing_is_posted() {
    for settings in [r#"{"$key": 1, "source": 0}"#, r#"{"$key": 1}"#] {
        let server = Http::start(move |req| match req.path.as_str() {
            "/api/v4/update_settings/1?fields=source" => answer(200, &[JSON], settings),
            _ => answer(404, &[JSON], r#"{"err": "Resource not found"}"#),
        });
        let url = server.url("");
        let report = vergeos_with(
            &url,
            Some(KEY),
            grants(&url),
            json!({"action": ["updates.check", "updates.install"]}),
            None,
        );
        assert_eq!(
            report.result,
            Err(RunError::Failed(
                "update_settings: no update source is configured".into()
            )),
            "{settings}: {report:#?}"
        );
        let paths: Vec<String> = server
            .requests()
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect();
        assert_eq!(
            paths,
            ["GET /api/v4/update_settings/1?fields=source"],
            "{settings}"
        );
    }
}

#[test]
fn the_api_key_never_shows_in_log_error_or_output() {
    // An API that echoes the Authorization header back, in an answer and in an error.
    let server = Http::start(|req| {
        let auth = req.header("authorization").unwrap_or_default().to_string();
        match req.path.as_str() {
            "/api/v4/vm_actions" => answer(201, &[JSON], json!({ "seen": auth }).to_string()),
            _ => answer(
                403,
                &[JSON],
                json!({ "err": format!("refused {auth}") }).to_string(),
            ),
        }
    });
    let url = server.url("");
    let ok = vergeos_with(
        &url,
        Some(KEY),
        grants(&url),
        json!({"action": "vm.reset", "target": 7}),
        None,
    );
    assert_eq!(
        ok.result,
        Ok(json!({
            "target": {"table": "vms", "key": 7, "name": ""},
            "calls": [{"action": "vm.reset", "method": "POST", "path": "/api/v4/vm_actions", "status": 201,
                       "response": {"seen": "Bearer [redacted]"}}],
        })),
        "{ok:#?}"
    );
    let failed = vergeos_with(
        &url,
        Some(KEY),
        grants(&url),
        json!({"action": "tenant.reset", "target": 3}),
        None,
    );
    assert_eq!(
        failed.result,
        Err(RunError::Failed(
            "VergeOS answered 403 to POST /api/v4/tenant_actions: refused Bearer [redacted]".into()
        )),
        "{failed:#?}"
    );
    let bearer = format!("Bearer {KEY}");
    for req in server.requests() {
        assert_eq!(
            req.header("authorization"),
            Some(bearer.as_str()),
            "the key was sent: {req:#?}"
        );
    }
    for report in [&ok, &failed] {
        let text = serde_json::to_vec(report).expect("a report serializes");
        assert_eq!(find_secret(&text, KEY), None, "{report:#?}");
    }
}
