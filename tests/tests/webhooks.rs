//! Webhook deliveries from the real daemon to real HTTP receivers on loopback: signed
//! and authenticated, retried, `Retry-After`, 410, final 4xx, the SSRF guard, a hanging
//! endpoint beside a healthy one, a delivery that survives `kill -9` mid-retry, and
//! connections kept alive (and receivers closing them).

use serde_json::{Value, json};
use std::time::{Duration, Instant};
use sundial_sdk::webhook::{Secret, verify};
use sundial_tests::{Daemon, Receiver, Reply, column, instant, items, message, pluck};

const SIGNING: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const TOKEN: &str = "bearer-token-value-77";

fn status(code: u16) -> Reply {
    Reply::Status(code, Vec::new())
}

fn secret(d: &Daemon, name: &str, value: &str) {
    let (s, v) = d.call(
        "PUT",
        &format!("/v1/secrets/{name}"),
        Some(&json!({"value": value})),
    );
    assert!(s == 201 || s == 200, "{v}");
}

fn webhook(d: &Daemon, spec: Value) -> Value {
    let (s, v) = d.call("POST", "/v1/webhooks", Some(&spec));
    assert_eq!(s, 201, "{spec}: {v}");
    v
}

fn fast_retry(attempts: u32, delay_ms: u64) -> Value {
    json!({"max_attempts": attempts, "initial_delay_ms": delay_ms, "multiplier": 1.0, "max_delay_ms": delay_ms.max(1000), "jitter": 0.0})
}

fn delivery_done(d: &Daemon, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, v) = d.call("GET", &format!("/v1/deliveries/{id}"), None);
        if v["status"] != "queued" {
            return v;
        }
        assert!(Instant::now() < deadline, "delivery {id} never finished: {v}");
        std::thread::sleep(Duration::from_millis(30));
    }
}

fn test_delivery(d: &Daemon, hook: &str) -> String {
    let v = d.expect(202, "POST", &format!("/v1/webhooks/{hook}/test"), None);
    v["id"].as_str().unwrap().to_string()
}

#[test]
fn signed_authenticated_retried_deliveries_from_a_trigger() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &["--allow-loopback"]);
    let rx = Receiver::start(vec![status(503), status(502)], status(204));
    secret(&d, "sign", SIGNING);
    secret(&d, "token", TOKEN);
    webhook(
        &d,
        json!({"name": "orders-hook", "url": rx.url("/hooks/orders?x=1"), "signing_secrets": ["sign"],
               "auth": {"type": "bearer", "token_secret": "token"}, "headers": [{"name": "X-Env", "value": "prod"}],
               "retry": fast_retry(5, 100)}),
    );
    d.create(
        "/v1/triggers",
        json!({"name": "t", "on": {"type": "order.created"}, "targets": [{"webhook": "orders-hook"}]}),
    );
    let (_, out) = d.call(
        "POST",
        "/v1/events",
        Some(&json!({"specversion": "1.0", "id": "o-1", "source": "/shop", "type": "order.created", "subject": "order/9", "data": {"total": 12.5}})),
    );
    let id = out["triggers"][0]["deliveries"][0]
        .as_str()
        .expect("a delivery")
        .to_string();
    let got = rx.wait_for(3);
    let done = delivery_done(&d, &id);
    assert_eq!(done["status"], "delivered", "{done}");
    let codes = pluck(&done["attempts"], "status_code");
    assert_eq!(codes, [json!(503), json!(502), json!(204)]);
    assert_eq!(done["attempts"][0]["response"], "answer 503");
    let secrets = [Secret::parse(SIGNING).unwrap()];
    for r in &got {
        assert_eq!(
            (r.method.as_str(), r.path.as_str()),
            ("POST", "/hooks/orders?x=1")
        );
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
        assert_eq!(r.header("x-env"), Some("prod"));
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(
            r.header("webhook-id"),
            Some(id.as_str()),
            "the same id on every attempt"
        );
        let ts = r.header("webhook-timestamp").unwrap();
        let now = chrono::Utc::now().timestamp();
        verify(
            &secrets,
            &id,
            ts,
            r.header("webhook-signature").unwrap(),
            &r.body,
            now,
        )
        .expect("a valid signature");
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["event"]["type"], "order.created");
        assert_eq!(body["event"]["subject"], "order/9");
        assert_eq!(body["event"]["data"]["total"], 12.5);
        assert_eq!(body["webhook"], "orders-hook");
    }
    // A tampered body does not verify.
    let r = &got[2];
    let ts = r.header("webhook-timestamp").unwrap();
    let sig = r.header("webhook-signature").unwrap();
    let now = chrono::Utc::now().timestamp();
    assert!(verify(&secrets, &id, ts, sig, b"{}", now).is_err());
    // The event log shows the delivery; the API never shows the token.
    let (_, e) = d.call(
        "GET",
        &format!("/v1/events/{}", out["seq"].as_str().unwrap()),
        None,
    );
    assert_eq!(e["triggers"][0]["deliveries"][0], id.as_str());
    let hook = d.expect(200, "GET", "/v1/webhooks/orders-hook", None);
    let deliveries = d.expect(200, "GET", "/v1/deliveries", None);
    assert!(
        !deliveries["deliveries"].as_array().unwrap().is_empty(),
        "{deliveries}"
    );
    let mut seen = hook.to_string();
    seen.push_str(&deliveries.to_string());
    seen.push_str(&d.stderr_text());
    assert!(
        !seen.contains(TOKEN) && !seen.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        "{seen}"
    );
}

#[test]
fn every_auth_type_on_the_wire() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &["--allow-loopback"]);
    let rx = Receiver::start(vec![], status(200));
    secret(&d, "pw", "pa55-word");
    secret(&d, "key", "api-key-123");
    for (name, auth) in [
        (
            "basic",
            json!({"type": "basic", "username": "ada", "password_secret": "pw"}),
        ),
        (
            "apikey",
            json!({"type": "api_key", "header": "X-Api-Key", "key_secret": "key"}),
        ),
        ("none", json!({"type": "none"})),
    ] {
        webhook(
            &d,
            json!({"name": name, "url": rx.url(&format!("/{name}")), "auth": auth, "method": "PUT"}),
        );
        let id = test_delivery(&d, name);
        assert_eq!(delivery_done(&d, &id)["status"], "delivered");
    }
    let got = rx.wait_for(3);
    let by = |p: &str| got.iter().find(|r| r.path == p).unwrap().clone();
    assert_eq!(
        by("/basic").header("authorization"),
        Some("Basic YWRhOnBhNTUtd29yZA==")
    );
    assert_eq!(by("/apikey").header("x-api-key"), Some("api-key-123"));
    assert_eq!(by("/none").header("authorization"), None);
    assert!(got.iter().all(|r| r.method == "PUT"));
    assert!(
        by("/none").header("webhook-signature").is_none(),
        "unsigned without signing secrets"
    );
    // A webhook naming a secret that does not exist is refused up front.
    let v = d.expect(
        400,
        "POST",
        "/v1/webhooks",
        Some(
            &json!({"name": "x", "url": rx.url("/"), "auth": {"type": "bearer", "token_secret": "missing"}}),
        ),
    );
    assert!(message(&v).starts_with("auth.token_secret: secret \"missing\" does not exist"));
}

#[test]
fn retry_after_gone_final_4xx_and_the_ssrf_guard() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &["--allow-loopback"]);
    let slow = Receiver::start(
        vec![Reply::Status(429, vec![("retry-after".into(), "1".into())])],
        status(200),
    );
    let gone = Receiver::start(vec![], status(410));
    let bad = Receiver::start(vec![], status(404));
    for (name, rx) in [("slow", &slow), ("gone", &gone), ("bad", &bad)] {
        webhook(
            &d,
            json!({"name": name, "url": rx.url("/"), "retry": fast_retry(5, 50)}),
        );
    }
    let slow_id = test_delivery(&d, "slow");
    let gone_id = test_delivery(&d, "gone");
    let bad_id = test_delivery(&d, "bad");
    assert_eq!(delivery_done(&d, &slow_id)["status"], "delivered");
    let got = slow.wait_for(2);
    assert!(
        got[1].at.duration_since(got[0].at) >= Duration::from_millis(950),
        "Retry-After: 1 was honoured over the 50 ms backoff"
    );
    let g = delivery_done(&d, &gone_id);
    assert_eq!(
        (g["status"].clone(), g["attempts"].as_array().unwrap().len()),
        (json!("dead"), 1)
    );
    let (_, hook) = d.call("GET", "/v1/webhooks/gone", None);
    assert_eq!(hook["enabled"], false);
    assert!(hook["disabled_reason"].as_str().unwrap().contains("410"));
    let b = delivery_done(&d, &bad_id);
    assert_eq!(
        (b["status"].clone(), b["attempts"].as_array().unwrap().len()),
        (json!("dead"), 1)
    );
    assert!(b["error"].as_str().unwrap().contains("404"), "{b}");
    let (_, failed) = d.call("GET", "/v1/events?type=sundial.webhook.*", None);
    let kinds = column(&failed["events"], "event.type");
    assert!(
        kinds.contains(&"sundial.webhook.disabled")
            && kinds.iter().filter(|k| **k == "sundial.webhook.failed").count() == 2,
        "{kinds:?}"
    );
    // A retry while its webhook is disabled is refused and changes nothing: the attempt
    // would only kill it again.
    let refused = d.expect(409, "POST", &format!("/v1/deliveries/{gone_id}/retry"), None);
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("is disabled"),
        "{refused}"
    );
    assert_eq!(
        d.expect(200, "GET", &format!("/v1/deliveries/{gone_id}"), None),
        g
    );
    // Re-enabling clears the reason; a manual retry of a dead delivery sends again.
    let (status, hook) = d.call("PATCH", "/v1/webhooks/gone", Some(&json!({"enabled": true})));
    assert_eq!((status, &hook["enabled"]), (200, &json!(true)), "{hook}");
    assert!(
        hook.as_object().unwrap().contains_key("disabled_reason"),
        "{hook}"
    );
    assert_eq!(hook["disabled_reason"], Value::Null, "{hook}");
    let (_, again) = d.call("GET", "/v1/webhooks/gone", None);
    assert_eq!(
        (&again["enabled"], &again["disabled_reason"]),
        (&json!(true), &Value::Null),
        "{again}"
    );
    d.expect(202, "POST", &format!("/v1/deliveries/{bad_id}/retry"), None);
    bad.wait_for(2);
    d.expect(409, "POST", &format!("/v1/deliveries/{slow_id}/retry"), None);

    // Without --allow-loopback the SSRF guard refuses loopback and says so in the log.
    let dir2 = tempfile::tempdir().unwrap();
    let guarded = Daemon::start(dir2.path(), &[]);
    webhook(&guarded, json!({"name": "inside", "url": slow.url("/admin")}));
    let id = test_delivery(&guarded, "inside");
    let done = delivery_done(&guarded, &id);
    assert_eq!(done["status"], "dead");
    assert!(
        done["error"]
            .as_str()
            .unwrap()
            .contains("refused by the network policy"),
        "{done}"
    );
    assert!(guarded.stderr_text().contains("SSRF guard"));
    assert_eq!(slow.requests().len(), 2, "nothing reached the receiver");
}

#[test]
fn a_hanging_endpoint_does_not_hold_up_a_healthy_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &["--allow-loopback"]);
    let hang = Receiver::start(vec![], Reply::Hang);
    let ok = Receiver::start(vec![], status(200));
    webhook(
        &d,
        json!({"name": "hang", "url": hang.url("/"), "timeout_ms": 60000, "retry": fast_retry(1, 100)}),
    );
    webhook(&d, json!({"name": "ok", "url": ok.url("/")}));
    let hung: Vec<String> = (0..20).map(|_| test_delivery(&d, "hang")).collect();
    let healthy: Vec<String> = (0..20).map(|_| test_delivery(&d, "ok")).collect();
    for id in &healthy {
        assert_eq!(delivery_done(&d, id)["status"], "delivered");
    }
    // Every healthy delivery is done while the hanging endpoint still holds its first
    // attempts (4 at a time, its concurrency limit).
    assert_eq!(hang.requests().len(), 4);
    for id in &hung {
        let (_, v) = d.call("GET", &format!("/v1/deliveries/{id}"), None);
        assert_eq!(v["status"], "queued");
        assert!(v["attempts"].as_array().unwrap().is_empty());
    }
}

#[test]
fn a_delivery_survives_kill_9_mid_retry() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &["--allow-loopback"]);
    let rx = Receiver::start(vec![status(503)], status(200));
    webhook(
        &d,
        json!({"name": "h", "url": rx.url("/"), "retry": fast_retry(5, 1500)}),
    );
    let id = test_delivery(&d, "h");
    rx.wait_for(1);
    // Wait until the failed first attempt is recorded, then kill the daemon during the
    // 1.5 s backoff.
    let deadline = Instant::now() + Duration::from_secs(30);
    while items(&d.call("GET", &format!("/v1/deliveries/{id}"), None).1["attempts"]).is_empty() {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(10));
    }
    d.kill9();
    let d = Daemon::start(dir.path(), &["--allow-loopback"]);
    let done = delivery_done(&d, &id);
    assert_eq!(done["status"], "delivered", "{done}");
    let got = rx.wait_for(2);
    assert!(got.iter().all(|r| r.header("webhook-id") == Some(id.as_str())));
    assert_eq!(
        done["attempts"].as_array().unwrap().last().unwrap()["status_code"],
        200
    );
}

#[test]
fn the_template_formatter_fills_placeholders_field_by_field() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &["--allow-loopback"]);
    let rx = Receiver::start(vec![], status(200));
    webhook(
        &d,
        json!({"name": "chat", "url": rx.url("/json"), "formatter": "template",
               "template": "{\"text\": \"${event.type} on ${event.subject}: ${event.data.message}\", \"hook\": \"${NAME}\", \"errors\": ${event.data.errors}, \"at\": ${TIMESTAMP}}"}),
    );
    webhook(
        &d,
        json!({"name": "pager", "url": rx.url("/text"), "formatter": "template",
               "template": "[${DATE}] ${task.name} ${run.status}: ${run.error.message} (attempt ${delivery.attempt})"}),
    );
    for (name, kind, hook) in [
        ("t1", "sync.failed", "chat"),
        ("t2", "sundial.run.failed", "pager"),
    ] {
        let spec = json!({"name": name, "on": {"type": kind}, "targets": [{"webhook": hook}]});
        d.expect(201, "POST", "/v1/triggers", Some(&spec));
    }
    let (_, _) = d.call(
        "POST",
        "/v1/events",
        Some(&json!({"specversion": "1.0", "id": "s1", "source": "/sync", "type": "sync.failed", "subject": "vm-7",
                     "data": {"message": "disk \"full\"", "errors": 3}})),
    );
    d.install_hostile(json!({}));
    let spec = json!({"name": "backup", "plugin": "hostile", "params": {"mode": "fail"}, "retry": {"max_attempts": 1}});
    d.expect(201, "POST", "/v1/tasks", Some(&spec));
    d.call("POST", "/v1/tasks/backup/run?wait=true", None);
    let deadline = Instant::now() + Duration::from_secs(30);
    let deliveries = loop {
        let (_, v) = d.call("GET", "/v1/deliveries", None);
        let list = v["deliveries"].as_array().unwrap().clone();
        if list.len() == 2 && list.iter().all(|x| x["status"] != "queued") {
            break list;
        }
        assert!(Instant::now() < deadline, "{v}");
        std::thread::sleep(Duration::from_millis(30));
    };
    for x in &deliveries {
        assert_eq!(x["status"], "delivered", "{x}");
    }
    let got = rx.wait_for(2);
    let json_req = got.iter().find(|r| r.path == "/json").unwrap();
    assert_eq!(json_req.header("content-type"), Some("application/json"));
    let body: Value = serde_json::from_slice(&json_req.body).unwrap();
    assert_eq!(body["text"], "sync.failed on vm-7: disk \"full\"");
    assert_eq!(body["hook"], "chat");
    assert_eq!(body["errors"], 3);
    let at = body["at"].as_i64().unwrap();
    assert!((at - chrono::Utc::now().timestamp()).abs() < 600, "{at}");
    let text_req = got.iter().find(|r| r.path == "/text").unwrap();
    assert_eq!(text_req.header("content-type"), Some("text/plain; charset=utf-8"));
    let text = String::from_utf8(text_req.body.clone()).unwrap();
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert!(text.starts_with(&format!("[{today} ")), "{text}");
    assert!(
        text.ends_with("UTC] backup failed: it failed on purpose (attempt 1)"),
        "{text}"
    );
}

#[test]
fn slack_teams_and_pagerduty_payloads_field_by_field() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &["--allow-loopback"]);
    let rx = Receiver::start(vec![], status(202));
    secret(&d, "pd-key", "R0UTINGKEY0123456789abcdef012345");
    d.patch(
        "/v1/plugins/pagerduty",
        json!({"grants": {"secrets": ["pd-key"]}}),
    );
    webhook(
        &d,
        json!({"name": "slack", "url": rx.url("/slack"), "formatter": "slack",
                       "formatter_config": {"title": "Sync failed on ${event.subject}"}}),
    );
    webhook(
        &d,
        json!({"name": "teams", "url": rx.url("/teams"), "formatter": "teams"}),
    );
    webhook(
        &d,
        json!({"name": "pd", "url": rx.url("/pd"), "formatter": "pagerduty",
                       "formatter_config": {"routing_key_secret": "pd-key", "severity": "critical", "component": "${event.data.host}"}}),
    );
    let targets = json!([{"webhook": "slack"}, {"webhook": "teams"}, {"webhook": "pd"}]);
    let spec = json!({"name": "t", "on": {"type": "sync.*"}, "targets": targets});
    d.expect(201, "POST", "/v1/triggers", Some(&spec));
    d.call(
        "POST",
        "/v1/events",
        Some(&json!({"specversion": "1.0", "id": "s1", "source": "/sync", "type": "sync.failed", "subject": "vm-7",
                     "time": "2026-11-27T10:00:00Z", "data": {"host": "node-3", "errors": 2}})),
    );
    let got = rx.wait_for(3);
    let body = |p: &str| -> Value {
        serde_json::from_slice(&got.iter().find(|r| r.path == p).unwrap().body).unwrap()
    };

    let slack = body("/slack");
    assert_eq!(slack["blocks"][0]["type"], "header");
    assert_eq!(slack["blocks"][0]["text"]["text"], "Sync failed on vm-7");
    assert_eq!(slack["blocks"][1]["text"]["type"], "mrkdwn");
    let section = slack["blocks"][1]["text"]["text"].as_str().unwrap();
    let data: Value = serde_json::from_str(section.strip_prefix("vm-7: ").unwrap()).unwrap();
    assert_eq!(data, json!({"host": "node-3", "errors": 2}));
    assert!(
        slack["blocks"][3]["elements"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("/sync · 2026-11-27T10:00:00Z")
    );
    assert_eq!(slack["text"], format!("Sync failed on vm-7: {section}"));

    let teams = body("/teams");
    assert_eq!(teams["type"], "message");
    let att = &teams["attachments"][0];
    assert_eq!(att["contentType"], "application/vnd.microsoft.card.adaptive");
    assert_eq!(att["content"]["type"], "AdaptiveCard");
    assert_eq!(att["content"]["version"], "1.4");
    assert_eq!(att["content"]["body"][0]["text"], "sync.failed");
    let facts = &att["content"]["body"][2]["facts"];
    assert_eq!(facts[1], json!({"title": "Subject", "value": "vm-7"}));
    assert_eq!(facts[2], json!({"title": "Source", "value": "/sync"}));

    let pd = body("/pd");
    assert_eq!(pd["routing_key"], "R0UTINGKEY0123456789abcdef012345");
    assert_eq!(pd["event_action"], "trigger");
    assert_eq!(pd["dedup_key"], "/sync/vm-7");
    assert_eq!(
        pd["payload"]["summary"],
        r#"sync.failed: vm-7: {"errors":2,"host":"node-3"}"#
    );
    assert_eq!(pd["payload"]["severity"], "critical");
    assert_eq!(pd["payload"]["source"], "/sync");
    assert_eq!(pd["payload"]["timestamp"], "2026-11-27T10:00:00Z");
    assert_eq!(pd["payload"]["component"], "node-3");
    assert_eq!(
        pd["payload"]["custom_details"]["data"],
        json!({"host": "node-3", "errors": 2})
    );

    // `sync.succeeded` resolves the same incident.
    d.call(
        "POST",
        "/v1/events",
        Some(&json!({"specversion": "1.0", "id": "s2", "source": "/sync", "type": "sync.succeeded", "subject": "vm-7"})),
    );
    let got = rx.wait_for(6);
    let resolve: Vec<Value> = got
        .iter()
        .filter(|r| r.path == "/pd")
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(resolve.len(), 2);
    assert_eq!(
        (
            resolve[1]["event_action"].clone(),
            resolve[1]["dedup_key"].clone()
        ),
        (json!("resolve"), json!("/sync/vm-7"))
    );
}

#[test]
fn several_tasks_notify_one_webhook_when_their_runs_end() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &["--allow-loopback"]);
    let rx = Receiver::start(vec![], status(200));
    webhook(&d, json!({"name": "ops", "url": rx.url("/ops")}));
    d.install_hostile(json!({}));
    for spec in [
        json!({"name": "nightly", "plugin": "hostile", "params": {"mode": "fail"}, "retry": {"max_attempts": 1},
               "notify": [{"webhook": "ops"}]}),
        json!({"name": "report", "plugin": "echo", "notify": [{"webhook": "ops", "on": ["succeeded", "failed"]}]}),
        json!({"name": "quiet", "plugin": "echo", "notify": [{"webhook": "ops"}]}),
    ] {
        d.expect(201, "POST", "/v1/tasks", Some(&spec));
    }
    let (s, v) = d.call(
        "POST",
        "/v1/tasks",
        Some(&json!({"name": "x", "plugin": "echo", "notify": [{"webhook": "nope"}]})),
    );
    assert_eq!(s, 404, "a reference to a missing webhook: {v}");
    assert!(message(&v).starts_with("notify[0].webhook"));
    for (t, want) in [
        ("nightly", "failed"),
        ("report", "succeeded"),
        ("quiet", "succeeded"),
    ] {
        let (status, run) = d.call("POST", &format!("/v1/tasks/{t}/run?wait=true"), None);
        assert_eq!((status, run["status"].as_str()), (200, Some(want)), "{run}");
    }
    // A run's notifications are committed with its end: once the runs are answered,
    // exactly the two deliveries exist (quiet succeeded and notifies only on failure).
    let (_, deliveries) = d.call("GET", "/v1/deliveries?webhook=ops", None);
    assert_eq!(
        deliveries["deliveries"].as_array().unwrap().len(),
        2,
        "{deliveries}"
    );
    let got = rx.wait_for(2);
    let mut seen: Vec<(String, String)> = got
        .iter()
        .map(|r| {
            let b: Value = serde_json::from_slice(&r.body).unwrap();
            (
                b["run"]["task_name"].as_str().unwrap().to_string(),
                b["run"]["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("nightly".to_string(), "failed".to_string()),
            ("report".to_string(), "succeeded".to_string())
        ]
    );
}

#[test]
fn a_schedule_trigger_sends_each_fired_slot_to_a_webhook() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(
        dir.path(),
        &["--allow-loopback", "--test-clock", "2026-11-27T12:00:00Z"],
    );
    let rx = Receiver::start(vec![], status(204));
    webhook(&d, json!({"name": "weekly-report", "url": rx.url("/weekly")}));
    for (name, rule) in [
        ("saturdays", json!({"cron": "0 17 * * 6"})),
        ("hourly", json!({"cron": "0 * * * *"})),
    ] {
        d.create(
            "/v1/schedules",
            json!({"name": name, "rule": rule, "timezone": "Europe/Berlin"}),
        );
    }
    let v = d.create(
        "/v1/triggers",
        json!({"name": "saturday-report", "on": {"schedule": "saturdays"},
                      "targets": [{"webhook": "weekly-report"}]}),
    );
    assert_eq!(v["on"]["schedule"], "saturdays");
    let (s, v) = d.call(
        "POST",
        "/v1/triggers",
        Some(&json!({"name": "x", "on": {"schedule": "nope"}, "targets": [{"webhook": "weekly-report"}]})),
    );
    assert_eq!(
        (s, message(&v)),
        (404, "on.schedule: schedule \"nope\" not found")
    );
    let (s, v) = d.call(
        "POST",
        "/v1/triggers",
        Some(&json!({"name": "x", "on": {"schedule": "hourly", "type": "a"}, "targets": [{"webhook": "weekly-report"}]})),
    );
    assert_eq!(s, 400, "{v}");

    // Nobody outside can fake the daemon's own events.
    let fake = json!({"specversion": "1.0", "id": "f1", "source": "sundial", "type": "sundial.schedule.fired",
                      "data": {"schedule_id": "x"}});
    let v = d.expect(400, "POST", "/v1/events", Some(&fake));
    assert!(message(&v).starts_with("source: \"sundial\" is reserved"), "{v}");

    // Friday 12:00 UTC -> Sunday: one Saturday 17:00 Berlin (16:00 UTC) slot, ~36 hourly ones.
    let (s, v) = d.call("POST", "/v1/clock", Some(&json!({"to": "2026-11-29T00:00:00Z"})));
    assert_eq!(s, 200, "{v}");
    // Deliveries commit with the slot that caused them, so once the clock call returns
    // exactly one exists: the Saturday slot's, not the hourly ones'.
    let (_, list) = d.call("GET", "/v1/deliveries?webhook=weekly-report", None);
    assert_eq!(
        list["deliveries"].as_array().unwrap().len(),
        1,
        "only the Saturday slot, not the hourly ones: {list}"
    );
    let got = rx.wait_for(1);
    let body: Value = serde_json::from_slice(&got[0].body).unwrap();
    let event = &body["event"];
    assert_eq!(body["webhook"], "weekly-report");
    assert_eq!(event["type"], "sundial.schedule.fired");
    assert_eq!(event["source"], "sundial");
    assert_eq!(event["subject"], "saturdays");
    assert_eq!(event["data"]["schedule"], "saturdays");
    assert_eq!(
        instant(&event["data"]["slot"]),
        instant(&json!("2026-11-28T16:00:00Z"))
    );
    let (_, list) = d.call("GET", "/v1/deliveries?webhook=weekly-report", None);
    let deliveries = items(&list["deliveries"]);
    assert_eq!(deliveries.len(), 1, "{list}");
    let done = delivery_done(&d, deliveries[0]["id"].as_str().unwrap());
    assert_eq!(done["status"], "delivered", "{done}");
}

/// A delayed webhook target is a durable timer on the scheduler's clock, as a task
/// target is: nothing is sent until the clock reaches the delay, across a kill -9, and
/// then the event goes out once.
#[test]
fn a_delayed_webhook_target_waits_for_the_clock_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let flags = ["--allow-loopback", "--test-clock", "2026-11-27T12:00:00Z"];
    let d = Daemon::start(dir.path(), &flags);
    let rx = Receiver::start(vec![], status(204));
    webhook(&d, json!({"name": "later", "url": rx.url("/later")}));
    d.create(
        "/v1/triggers",
        json!({"name": "hour-later", "on": {"type": "order.placed"},
                      "targets": [{"webhook": "later"}], "delay": "1h"}),
    );
    let event = json!({"specversion": "1.0", "id": "o1", "source": "/shop", "type": "order.placed", "data": {"n": 1}});
    let v = d.expect(202, "POST", "/v1/events", Some(&event));
    let matched = &v["triggers"][0];
    assert_eq!(matched["timers"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(
        matched["deliveries"].as_array().map(Vec::len).unwrap_or(0),
        0,
        "{v}"
    );
    let (_, timers) = d.call("GET", "/v1/timers", None);
    let timer = &timers["timers"][0];
    assert_eq!(timer["webhook"]["name"], "later", "{timers}");
    assert_eq!(instant(&timer["due"]), instant(&json!("2026-11-27T13:00:00Z")));
    assert!(timer.get("task_id").is_none(), "{timer}");
    let (_, upcoming) = d.call("GET", "/v1/upcoming?hours=2", None);
    let entry = &upcoming["entries"][0];
    assert_eq!(
        (&entry["kind"], &entry["webhook"]),
        (&json!("timer"), &json!("later")),
        "{upcoming}"
    );

    // A minute short of the hour, on a restarted daemon: still nothing.
    let data = d.data.clone();
    d.kill9();
    let d = Daemon::start(&data, &flags);
    d.expect(
        200,
        "POST",
        "/v1/clock",
        Some(&json!({"to": "2026-11-27T12:59:00Z"})),
    );
    let (_, list) = d.call("GET", "/v1/deliveries?webhook=later", None);
    assert_eq!(list["deliveries"].as_array().unwrap().len(), 0, "{list}");
    assert_eq!(rx.count(), 0);

    // On the hour: one delivery of the event, and the timer is gone.
    d.expect(
        200,
        "POST",
        "/v1/clock",
        Some(&json!({"to": "2026-11-27T13:00:00Z"})),
    );
    let (_, list) = d.call("GET", "/v1/deliveries?webhook=later", None);
    let deliveries = items(&list["deliveries"]);
    assert_eq!(deliveries.len(), 1, "{list}");
    let done = delivery_done(&d, deliveries[0]["id"].as_str().unwrap());
    assert_eq!(done["status"], "delivered", "{done}");
    let got = rx.wait_for(1);
    let body: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body["event"]["type"], "order.placed", "{body}");
    assert_eq!(body["event"]["id"], "o1", "{body}");
    // Once: moving the clock again sends nothing more.
    d.expect(
        200,
        "POST",
        "/v1/clock",
        Some(&json!({"to": "2026-11-28T00:00:00Z"})),
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(rx.count(), 1, "the timer fired once");
    let (_, timers) = d.call("GET", "/v1/timers", None);
    assert_eq!(timers["timers"].as_array().unwrap().len(), 0, "{timers}");
    let (_, upcoming) = d.call("GET", "/v1/upcoming", None);
    assert!(
        items(&upcoming["entries"]).iter().all(|e| e["kind"] != "timer"),
        "{upcoming}"
    );
}

#[test]
fn a_task_whose_action_is_a_webhook() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &["--allow-loopback"]);
    let rx = Receiver::start(vec![], status(202));
    webhook(
        &d,
        json!({"name": "alerts", "url": rx.url("/alerts"), "formatter": "template",
               "template": "{\"alert\": \"${event.type}\", \"host\": \"${event.data.host}\", \"task\": \"${task.name}\"}"}),
    );
    let v = d.create("/v1/tasks", json!({"name": "page-ops", "webhook": "alerts"}));
    assert_eq!(v["webhook"], "alerts");
    for (bad, field, status) in [
        (
            json!({"name": "x", "webhook": "alerts", "plugin": "echo"}),
            "webhook",
            400,
        ),
        (json!({"name": "x", "webhook": "nope"}), "webhook", 404),
        (json!({"name": "x"}), "plugin", 400),
    ] {
        let (s, v) = d.call("POST", "/v1/tasks", Some(&bad));
        assert_eq!(s, status, "{bad}: {v}");
        assert!(message(&v).starts_with(field), "{v}");
    }
    // Several events, one task, one webhook.
    for kind in ["sync.failed", "replication.failed"] {
        d.create(
            "/v1/triggers",
            json!({"name": kind.replace('.', "-"), "on": {"type": kind}, "targets": [{"task": "page-ops"}]}),
        );
    }
    for (i, kind) in ["sync.failed", "replication.failed"].iter().enumerate() {
        let e = json!({"specversion": "1.0", "id": format!("e{i}"), "source": "/vergeos", "type": kind,
                       "data": {"host": format!("node-{i}")}});
        d.expect(202, "POST", "/v1/events", Some(&e));
    }
    let got = rx.wait_for(2);
    let mut bodies: Vec<Value> = got
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    bodies.sort_by_key(|b| b["host"].as_str().unwrap().to_string());
    assert_eq!(
        bodies,
        [
            json!({"alert": "sync.failed", "host": "node-0", "task": "page-ops"}),
            json!({"alert": "replication.failed", "host": "node-1", "task": "page-ops"})
        ]
    );
    let runs = d.all_runs("task=page-ops");
    assert_eq!(runs.len(), 2);
    for run in &runs {
        assert_eq!(run["status"], "succeeded", "{run}");
        let done = delivery_done(&d, run["output"]["delivery"].as_str().unwrap());
        assert_eq!(done["status"], "delivered", "{done}");
        assert_eq!(done["cause"], "task");
    }

    // A disabled webhook fails the run with the reason; a plugin task can switch to a
    // webhook action with a merge patch.
    d.patch("/v1/webhooks/alerts", json!({"enabled": false}));
    let (_, run) = d.call("POST", "/v1/tasks/page-ops/run?wait=true", None);
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(run["error"]["message"], "webhook \"alerts\" is disabled");
    d.create("/v1/tasks", json!({"name": "was-echo", "plugin": "echo"}));
    let (s, v) = d.call(
        "PATCH",
        "/v1/tasks/was-echo",
        Some(&json!({"plugin": null, "webhook": "alerts"})),
    );
    assert_eq!((s, &v["webhook"]), (200, &json!("alerts")), "{v}");
    assert!(v.get("plugin").is_none(), "{v}");
}

/// The chat and paging formatters at the daemon: a run notification, a task whose
/// action is the webhook (run by hand, so no event) and `webhook test` each produce a
/// message that says what happened (they used to be empty without an event).
#[test]
fn chat_formatters_report_runs_task_actions_and_tests() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &["--allow-loopback"]);
    let rx = Receiver::start(vec![], status(202));
    d.install_hostile(json!({}));
    webhook(
        &d,
        json!({"name": "slack", "url": rx.url("/slack"), "formatter": "slack"}),
    );
    webhook(
        &d,
        json!({"name": "teams", "url": rx.url("/teams"), "formatter": "teams"}),
    );
    webhook(
        &d,
        json!({"name": "pd", "url": rx.url("/pd"), "formatter": "pagerduty",
               "formatter_config": {"routing_key": "k-0123"}}),
    );
    let notify = json!([{"webhook": "slack"}, {"webhook": "teams"}, {"webhook": "pd"}]);
    for spec in [
        json!({"name": "nightly", "plugin": "hostile", "params": {"mode": "fail"}, "retry": {"max_attempts": 1},
               "notify": notify}),
        json!({"name": "page", "webhook": "slack", "params": {"level": 2}}),
    ] {
        d.expect(201, "POST", "/v1/tasks", Some(&spec));
    }
    let (_, run) = d.call("POST", "/v1/tasks/nightly/run?wait=true", None);
    assert_eq!(run["status"], "failed", "{run}");
    let id = run["id"].as_str().unwrap().to_string();
    let (_, page) = d.call("POST", "/v1/tasks/page/run?wait=true", None);
    assert_eq!(page["status"], "succeeded", "{page}");
    d.expect(202, "POST", "/v1/webhooks/teams/test", None);
    let got = rx.wait_for(5);
    let bodies = |p: &str| -> Vec<Value> {
        got.iter()
            .filter(|r| r.path == p)
            .map(|r| serde_json::from_slice(&r.body).unwrap())
            .collect()
    };
    let slack = bodies("/slack");
    assert_eq!(slack.len(), 2, "{slack:?}");
    let fallback = |b: &Value| b["text"].as_str().unwrap().to_string();
    let texts: Vec<String> = slack.iter().map(fallback).collect();
    assert!(
        texts.iter().any(|t| t.starts_with("Task nightly failed: Run ")
            && t.contains(&id)
            && t.contains("after 1 attempt")),
        "{texts:?}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("Task page: Task page ran (run ") && t.contains(r#"with {"level":2}"#)),
        "{texts:?}"
    );
    let teams = bodies("/teams");
    let titles: Vec<&str> = teams
        .iter()
        .map(|b| {
            b["attachments"][0]["content"]["body"][0]["text"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert!(titles.contains(&"Task nightly failed"), "{titles:?}");
    assert!(titles.contains(&"Test delivery to webhook teams"), "{titles:?}");
    let pd = bodies("/pd");
    assert_eq!(pd.len(), 1, "{pd:?}");
    assert_eq!(pd[0]["event_action"], "trigger");
    assert_eq!(pd[0]["dedup_key"], "sundial/nightly");
    assert!(
        pd[0]["payload"]["summary"]
            .as_str()
            .unwrap()
            .starts_with(&format!("Task nightly failed: Run {id} of task nightly failed")),
        "{}",
        pd[0]
    );
}

/// A raw HTTP/1.1 receiver on loopback that answers `200` to the first request on each
/// connection (keep-alive, as HTTP/1.1 implies) and then closes the connection as
/// `mode` says; it counts the connections, the requests it read and those it answered.
struct OneAnswerPerConnection {
    addr: std::net::SocketAddr,
    read: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    answered: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

#[derive(Clone, Copy)]
enum Closing {
    /// Close the connection 20 ms after answering, while it is idle.
    WhenIdle,
    /// Read the second request on a connection whole, then close without a word.
    UnderTheSecondRequest,
    /// Say `Connection: close` in the answer, then close.
    SayClose,
    /// Answer with a 4 000-byte body, send 600 bytes of it, then stall for 3 s.
    StallTheBody,
}

impl OneAnswerPerConnection {
    fn start(mode: Closing) -> OneAnswerPerConnection {
        use std::io::{BufRead, BufReader, Read, Write};
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let counters: [std::sync::Arc<AtomicUsize>; 3] = Default::default();
        let [read, answered, connections] = counters.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                connections.fetch_add(1, Ordering::SeqCst);
                let (read, answered) = (read.clone(), answered.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut writer = stream;
                    for n in 0.. {
                        // One request: the head, then a Content-Length body.
                        let mut length = 0usize;
                        loop {
                            let mut line = String::new();
                            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                                return;
                            }
                            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                                length = v.trim().parse().unwrap();
                            }
                            if line == "\r\n" {
                                break;
                            }
                        }
                        let mut body = vec![0; length];
                        reader.read_exact(&mut body).unwrap();
                        read.fetch_add(1, Ordering::SeqCst);
                        if n > 0 {
                            return; // UnderTheSecondRequest: closed unanswered
                        }
                        let head = match mode {
                            Closing::SayClose => {
                                "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok"
                                    .to_string()
                            }
                            Closing::StallTheBody => {
                                format!(
                                    "HTTP/1.1 200 OK\r\ncontent-length: 4000\r\n\r\n{}",
                                    "x".repeat(600)
                                )
                            }
                            _ => "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_string(),
                        };
                        writer.write_all(head.as_bytes()).unwrap();
                        answered.fetch_add(1, Ordering::SeqCst);
                        match mode {
                            Closing::UnderTheSecondRequest => {}
                            Closing::SayClose => return,
                            Closing::StallTheBody => {
                                std::thread::sleep(Duration::from_secs(3));
                                return;
                            }
                            Closing::WhenIdle => {
                                std::thread::sleep(Duration::from_millis(20));
                                return;
                            }
                        }
                    }
                });
            }
        });
        let [read, answered, connections] = counters;
        OneAnswerPerConnection {
            addr,
            read,
            answered,
            connections,
        }
    }

    fn count(&self) -> [usize; 3] {
        use std::sync::atomic::Ordering::SeqCst;
        [
            self.connections.load(SeqCst),
            self.read.load(SeqCst),
            self.answered.load(SeqCst),
        ]
    }
}

/// Deliveries reuse their connections; a receiver that closes them (while idle, under a
/// request, or saying so) still gets every delivery, and never sees a delivery more
/// often than its attempts say.
#[test]
fn connections_and_formatter_instances_are_kept_and_a_receiver_closing_them_loses_no_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &["--allow-loopback"]);
    let keeps = Receiver::start(vec![], status(200));
    let when_idle = OneAnswerPerConnection::start(Closing::WhenIdle);
    let under = OneAnswerPerConnection::start(Closing::UnderTheSecondRequest);
    let says = OneAnswerPerConnection::start(Closing::SayClose);
    let stalls = OneAnswerPerConnection::start(Closing::StallTheBody);
    // One at a time, so each delivery could reuse the connection of the one before.
    let hook = |name: &str, url: String| {
        webhook(
            &d,
            json!({"name": name, "url": url, "max_concurrency": 1, "retry": fast_retry(3, 50)}),
        )
    };
    hook("keeps", keeps.url("/"));
    hook("when-idle", format!("http://{}/", when_idle.addr));
    hook("under", format!("http://{}/", under.addr));
    hook("says", format!("http://{}/", says.addr));
    hook("stalls", format!("http://{}/", stalls.addr));
    const N: usize = 12;
    let mut attempts = std::collections::HashMap::new();
    for name in ["keeps", "when-idle", "under", "says", "stalls"] {
        let mut total = 0;
        for _ in 0..N {
            // Spaced, so that a receiver's idle close has arrived before the next one.
            let done = delivery_done(&d, &test_delivery(&d, name));
            assert_eq!(done["status"], "delivered", "{name}: {done}");
            total += items(&done["attempts"]).len();
            if name == "stalls" {
                let kept = done["attempts"][0]["response"].as_str().unwrap_or_default();
                assert_eq!(kept.len(), 512, "the first 512 bytes of the body: {done}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        attempts.insert(name, total);
    }
    // The bundled json formatter is installed keeping its instance, and the deliveries
    // left one idle to format the next.
    let json = d.expect(200, "GET", "/v1/plugins/json", None);
    assert_eq!(json["limits"]["runs_per_instance"], 1000, "{json}");
    let (_, text) = d.call("GET", "/metrics", None);
    let idle = sundial_tests::metric(text.as_str().unwrap_or_default(), "sundial_plugin_instances_idle");
    assert!(idle >= 1.0, "no formatter instance kept: {text}");
    // Kept alive: a few connections for all of them.
    let got = keeps.wait_for(N);
    let peers: std::collections::HashSet<_> = got.iter().map(|r| r.peer).collect();
    assert!(
        peers.len() <= N / 3,
        "{N} deliveries one after another came on {} connections",
        peers.len()
    );
    assert_eq!(attempts["keeps"], N);
    // Closed while idle, or with `Connection: close`: a new connection each time, and
    // no attempt lost to a closed one.
    // A body that stalls after the status: delivered by its status, its connection
    // not kept (it still has a body to come).
    for (name, rx) in [("when-idle", &when_idle), ("says", &says), ("stalls", &stalls)] {
        assert_eq!(
            rx.count(),
            [N, N, N],
            "{name}: connections, requests read, answered"
        );
        assert_eq!(attempts[name], N, "{name}");
    }
    // Closed under a written request: that attempt failed and was retried, and the
    // receiver read exactly as many requests as there are attempts.
    let [connections, read, answered] = under.count();
    assert_eq!(answered, N);
    assert_eq!(read, attempts["under"], "requests read against attempts recorded");
    // Each delivery but the first met a closing connection, unless a stall of the
    // machine let that connection idle out first.
    assert!(read >= N + N / 2, "{read} requests read for {N} deliveries");
    assert_eq!(connections, N);
}
