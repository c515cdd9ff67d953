//! The VergeOS Task Engine examples, end to end with the real daemon, the real bundled
//! plugins and real protocol peers on loopback: an SMTP server, a stand-in VergeOS API
//! that checks every request against the documented shape, and an HTTP receiver.

use serde_json::{Value, json};
use std::time::Duration;
use sundial_tests::smtp::SmtpServer;
use sundial_tests::vergeos::VergeOs;
use sundial_tests::{Daemon, Receiver, Reply, instant, message};

const RELAY_PASSWORD: &str = "relay-password-for-tests-1234";

/// A daemon whose `[mail]` relay is `smtp` (with AUTH as `sundial`).
fn daemon_with_mail(dir: &std::path::Path, smtp_port: u16, extra: &[&str]) -> Daemon {
    let config = dir.join("sundial.toml");
    std::fs::write(
        &config,
        format!(
            "[mail]\nhost = \"127.0.0.1\"\nport = {smtp_port}\nsecurity = \"none\"\n\
             username = \"sundial\"\npassword_secret = \"relay-password\"\n\
             from = \"Sundial <sundial@example.com>\"\ntimeout_secs = 5\n"
        ),
    )
    .unwrap();
    let data = dir.join("data");
    let mut args = vec!["--config", config.to_str().unwrap()];
    args.extend_from_slice(extra);
    let d = Daemon::start(&data, &args);
    d.put_secret(201, "relay-password", RELAY_PASSWORD);
    d
}

fn create(d: &Daemon, path: &str, body: Value) -> Value {
    let (s, v) = d.call("POST", path, Some(&body));
    assert_eq!(s, 201, "POST {path} {body}: {v}");
    v
}

fn post_event(d: &Daemon, event: Value) -> Value {
    let (s, v) = d.call("POST", "/v1/events", Some(&event));
    assert_eq!(s, 202, "{event}: {v}");
    v
}

/// Wait until `n` runs of `task` have finished; returns them newest first.
fn finished_runs(d: &Daemon, task: &str, n: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let runs: Vec<Value> = d
            .all_runs(&format!("task={task}"))
            .into_iter()
            .filter(|r| r["finished_at"].is_string())
            .collect();
        if runs.len() >= n {
            return runs;
        }
        assert!(std::time::Instant::now() < deadline, "{task}: {runs:?}");
        std::thread::sleep(Duration::from_millis(30));
    }
}

/// Example 1: send an email notification when a system update completes.
#[test]
fn example_1_email_when_a_system_update_completes() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start(&["nobody@example.com"], Some(("sundial", RELAY_PASSWORD)));
    let d = daemon_with_mail(dir.path(), smtp.port, &[]);
    create(
        &d,
        "/v1/tasks",
        json!({"name": "mail-update-done", "plugin": "email", "params": {
            "to": ["ops@example.com", "Lead <lead@example.com>"], "cc": "audit@example.com",
            "bcc": ["archive@example.com"],
            "subject": "VergeOS update ${event.data.version} completed on ${event.subject}",
            "body": "The system update to ${event.data.version} finished at ${event.time} (${event.data.nodes} nodes).\nTask ${task.name}, run ${run.id}."}}),
    );
    create(
        &d,
        "/v1/triggers",
        json!({"name": "on-update-completed", "on": {"type": "vergeos.system.update.completed"},
               "targets": [{"task": "mail-update-done"}]}),
    );
    post_event(
        &d,
        json!({"specversion": "1.0", "id": "u-1", "source": "/vergeos/prod", "type": "vergeos.system.update.completed",
               "subject": "cluster-1", "time": "2026-11-28T17:42:00Z", "data": {"version": "4.13.2", "nodes": 4}}),
    );
    let mails = smtp.wait_for(1);
    let m = &mails[0];
    assert_eq!(
        m.auth_user.as_deref(),
        Some("sundial"),
        "authenticated with the secret"
    );
    assert_eq!(m.mail_from, "sundial@example.com");
    let mut rcpt = m.rcpt_to.clone();
    rcpt.sort();
    assert_eq!(
        rcpt,
        [
            "archive@example.com",
            "audit@example.com",
            "lead@example.com",
            "ops@example.com"
        ]
    );
    assert_eq!(m.header("From").as_deref(), Some("Sundial <sundial@example.com>"));
    assert_eq!(
        m.header("To").as_deref(),
        Some("ops@example.com, Lead <lead@example.com>")
    );
    assert_eq!(m.header("Cc").as_deref(), Some("audit@example.com"));
    assert_eq!(m.header("Bcc"), None, "bcc stays out of the headers");
    assert_eq!(
        m.header("Subject").as_deref(),
        Some("VergeOS update 4.13.2 completed on cluster-1")
    );
    let runs = finished_runs(&d, "mail-update-done", 1);
    let run = &runs[0];
    assert_eq!(run["status"], "succeeded", "{run}");
    assert!(
        m.body().contains(&format!(
            "The system update to 4.13.2 finished at 2026-11-28T17:42:00Z (4 nodes).\r\nTask mail-update-done, run {}.",
            run["id"].as_str().unwrap()
        )),
        "{}",
        m.body()
    );
    assert_eq!(run["output"]["accepted"], "250 2.0.0 Ok: queued as Q1");

    // A refused recipient fails the run with the relay's answer; a bad address fails
    // it as invalid; an unreachable relay is retried, then fails.
    for (name, to, expect) in [
        (
            "refused",
            "nobody@example.com",
            "550 5.1.1 <nobody@example.com>: Recipient address rejected",
        ),
        (
            "bad-address",
            "not an address",
            "to[0]: \"not an address\" is not an address",
        ),
    ] {
        create(
            &d,
            "/v1/tasks",
            json!({"name": name, "plugin": "email", "retry": {"max_attempts": 1},
                   "params": {"to": to, "subject": "x", "body": "y"}}),
        );
        let (_, run) = d.call("POST", &format!("/v1/tasks/{name}/run?wait=true"), None);
        assert_eq!(run["status"], "failed", "{run}");
        let msg = message(&run);
        assert!(msg.contains(expect), "{name}: {msg}");
    }
    assert_eq!(smtp.mails().len(), 1, "nothing else was accepted");
}

/// The mail capability's failure modes: an unreachable relay is retried then fails,
/// a plugin without the `mail` grant and a daemon without a relay are denied.
#[test]
fn mail_relay_down_ungranted_and_unconfigured() {
    let dir = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let d = daemon_with_mail(dir.path(), closed, &[]);
    create(
        &d,
        "/v1/tasks",
        json!({"name": "notify", "plugin": "email",
               "retry": {"max_attempts": 2, "initial_delay_ms": 10, "jitter": 0.0},
               "params": {"to": "ops@example.com", "subject": "s", "body": "b"}}),
    );
    d.call("POST", "/v1/tasks/notify/run", None);
    let run = &finished_runs(&d, "notify", 1)[0];
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(run["attempt"], 2, "unavailable is retryable: {run}");
    let msg = message(&run);
    assert!(msg.starts_with("relay unavailable:"), "{msg}");

    let (s, v) = d.call(
        "PATCH",
        "/v1/plugins/email",
        Some(&json!({"grants": {"mail": false}})),
    );
    assert_eq!(s, 200, "{v}");
    let (_, run) = d.call("POST", "/v1/tasks/notify/run?wait=true", None);
    let msg = message(&run);
    assert!(msg.starts_with("denied:") && msg.contains("mail"), "{msg}");

    let other = tempfile::tempdir().unwrap();
    let bare = Daemon::start(other.path(), &[]);
    create(
        &bare,
        "/v1/tasks",
        json!({"name": "notify", "plugin": "email", "params": {"to": "ops@example.com", "subject": "s"}}),
    );
    let (_, run) = bare.call("POST", "/v1/tasks/notify/run?wait=true", None);
    let msg = message(&run);
    assert!(msg.contains("no SMTP relay is configured"), "{msg}");
}

const API_KEY: &str = "vergeos-api-key-0123456789";

/// A stand-in VergeOS with a few VMs, tenants and users, and a daemon whose bundled
/// `vergeos` plugin may reach it with the API key from a granted secret.
fn vergeos_daemon(dir: &std::path::Path, extra: &[&str]) -> (Daemon, VergeOs) {
    let api = VergeOs::start(
        API_KEY,
        &[
            (42, "gpu-workstation-1"),
            (43, "gpu-workstation-2"),
            (50, "build-runner"),
        ],
        &[(7, "acme"), (8, "globex")],
        &[(100, "jthompson"), (101, "contractor-ann")],
    );
    let mut args = vec!["--allow-loopback"];
    args.extend_from_slice(extra);
    let d = Daemon::start(dir, &args);
    grant_vergeos(&d);
    (d, api)
}

fn grant_vergeos(d: &Daemon) {
    let (s, v) = d.call(
        "PUT",
        "/v1/secrets/vergeos-key",
        Some(&json!({ "value": API_KEY })),
    );
    assert!(s == 201 || s == 200, "{v}");
    d.patch(
        "/v1/plugins/vergeos",
        json!({"grants": {"hosts": ["127.0.0.1:*"], "secrets": ["vergeos-key"]}}),
    );
}

/// A task of the vergeos plugin against `api`.
fn vergeos_task(d: &Daemon, api: &VergeOs, name: &str, action: Value, target: Option<Value>) {
    let mut params = json!({"url": api.url, "api_key_secret": "vergeos-key", "action": action});
    if let Some(t) = target {
        params["target"] = t;
    }
    create(
        d,
        "/v1/tasks",
        json!({"name": name, "plugin": "vergeos", "params": params,
               "retry": {"max_attempts": 3, "initial_delay_ms": 10, "jitter": 0.0}}),
    );
}

/// A schedule in Berlin time driving `tasks`.
fn scheduled(d: &Daemon, name: &str, rule: Value, tasks: &[&str]) {
    create(
        d,
        "/v1/schedules",
        json!({"name": name, "rule": rule, "timezone": "Europe/Berlin"}),
    );
    for task in tasks {
        d.attach(name, task);
    }
}

fn set_clock(d: &Daemon, to: &str) {
    d.expect(200, "POST", "/v1/clock", Some(&json!({ "to": to })));
}

fn login(d: &Daemon, id: &str, user: &str) -> Value {
    post_event(
        d,
        json!({"specversion": "1.0", "id": id, "source": "/vergeos/prod", "type": "vergeos.user.login",
               "subject": user, "data": {"user": user, "ip": "10.0.0.7"}}),
    )
}

/// Example 2: power on a specific VM when a designated user logs in; another user's
/// login does not.
#[test]
fn example_2_power_on_a_vm_when_a_designated_user_logs_in() {
    let dir = tempfile::tempdir().unwrap();
    let (d, api) = vergeos_daemon(dir.path(), &[]);
    vergeos_task(
        &d,
        &api,
        "power-on-gpu",
        json!("vm.poweron"),
        Some(json!("gpu-workstation-1")),
    );
    create(
        &d,
        "/v1/triggers",
        json!({"name": "jthompson-login", "on": {"type": "vergeos.user.login",
               "filter": {"path": "data.user", "eq": "jthompson"}}, "targets": [{"task": "power-on-gpu"}]}),
    );
    let other = login(&d, "l-1", "contractor-ann");
    assert_eq!(
        other["triggers"],
        json!([]),
        "another user's login matches nothing"
    );
    let mine = login(&d, "l-2", "jthompson");
    assert_eq!(mine["triggers"][0]["name"], "jthompson-login");
    let run = &finished_runs(&d, "power-on-gpu", 1)[0];
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(
        run["output"]["target"],
        json!({"table": "vms", "key": 42, "name": "gpu-workstation-1"})
    );
    // The documented calls: look the VM up by name, then post the power action.
    let calls = api.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(
        (
            calls[0].method.as_str(),
            calls[0].path.as_str(),
            calls[0].query.as_str()
        ),
        (
            "GET",
            "/api/v4/vms",
            "filter=name eq 'gpu-workstation-1'&fields=$key,name"
        )
    );
    assert_eq!(
        (calls[1].path.as_str(), &calls[1].body),
        (
            "/api/v4/vm_actions",
            &json!({"vm": "42", "action": "poweron", "params": {}})
        )
    );
    assert!(api.is_on("vms", "gpu-workstation-1"));
    assert!(!api.is_on("vms", "gpu-workstation-2"), "no other VM was touched");
    assert_eq!(
        finished_runs(&d, "power-on-gpu", 1).len(),
        1,
        "one run: the other login started none"
    );

    // The API's errors come back as failed runs with its message (the VM is running now).
    let (_, run) = d.call("POST", "/v1/tasks/power-on-gpu/run?wait=true", None);
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(
        run["error"]["message"],
        "VergeOS answered 409 to POST /api/v4/vm_actions: Cannot power on: already in running state"
    );
    assert_eq!(run["attempt"], 1, "a 409 is not retried");
    // 5xx is retryable: two 503s, then the third attempt works.
    vergeos_task(
        &d,
        &api,
        "power-off-gpu",
        json!("vm.poweroff"),
        Some(json!({"key": 42})),
    );
    api.fail_next(&[503, 503]);
    d.call("POST", "/v1/tasks/power-off-gpu/run", None);
    let run = &finished_runs(&d, "power-off-gpu", 1)[0];
    assert_eq!(
        (run["status"].as_str(), run["attempt"].as_u64()),
        (Some("succeeded"), Some(3)),
        "{run}"
    );
    assert!(!api.is_on("vms", "gpu-workstation-1"));
    // A missing name and an unknown action fail clearly.
    vergeos_task(&d, &api, "ghost", json!("vm.poweron"), Some(json!("no-such-vm")));
    let (_, run) = d.call("POST", "/v1/tasks/ghost/run?wait=true", None);
    assert_eq!(run["error"]["message"], "vms: no row named \"no-such-vm\"");
    vergeos_task(&d, &api, "typo", json!("vm.explode"), Some(json!(42)));
    let (_, run) = d.call("POST", "/v1/tasks/typo/run?wait=true", None);
    assert!(message(&run).starts_with("action: \"vm.explode\" is not one of"));
    assert!(
        api.calls().iter().all(|c| c.status != 401),
        "the API key was sent every time"
    );
}

/// Example 3: notify an external alerting system through a webhook when a sync error
/// is detected (PagerDuty Events API v2 shape, checked field by field).
#[test]
fn example_3_webhook_to_alerting_on_a_sync_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &["--allow-loopback"]);
    let rx = Receiver::start(vec![], Reply::Status(202, Vec::new()));
    d.put_secret(201, "pd-routing", "R0UT1NGKEY0123456789abcdef");
    let (s, v) = d.call(
        "PATCH",
        "/v1/plugins/pagerduty",
        Some(&json!({"grants": {"secrets": ["pd-routing"]}})),
    );
    assert_eq!(s, 200, "{v}");
    create(
        &d,
        "/v1/webhooks",
        json!({"name": "alerting", "url": rx.url("/v2/enqueue"), "formatter": "pagerduty",
               "formatter_config": {"routing_key_secret": "pd-routing", "severity": "error",
                                    "summary": "VergeOS sync error on ${event.subject}: ${event.data.message}",
                                    "dedup_key": "${event.subject}"}}),
    );
    create(
        &d,
        "/v1/triggers",
        json!({"name": "sync-errors", "on": {"type": "vergeos.sync.error"}, "targets": [{"webhook": "alerting"}]}),
    );
    post_event(
        &d,
        json!({"specversion": "1.0", "id": "s-1", "source": "/vergeos/prod", "type": "vergeos.sync.error",
               "subject": "site-b", "data": {"message": "repository unreachable"}}),
    );
    let got = rx.wait_for(1);
    let body: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(got[0].path, "/v2/enqueue");
    assert_eq!(body["routing_key"], "R0UT1NGKEY0123456789abcdef");
    assert_eq!(body["event_action"], "trigger");
    assert_eq!(body["dedup_key"], "site-b");
    assert_eq!(
        body["payload"]["summary"],
        "VergeOS sync error on site-b: repository unreachable"
    );
    assert_eq!(body["payload"]["severity"], "error");
    assert_eq!(body["payload"]["source"], "/vergeos/prod");
}

/// Example 4: check for and download system updates every Saturday at 17:00, on the
/// injectable clock.
#[test]
fn example_4_updates_every_saturday_at_17() {
    let dir = tempfile::tempdir().unwrap();
    // Friday 27 November 2026, noon in Berlin.
    let (d, api) = vergeos_daemon(dir.path(), &["--test-clock", "2026-11-27T11:00:00Z"]);
    vergeos_task(
        &d,
        &api,
        "updates",
        json!(["updates.check", "updates.download"]),
        None,
    );
    scheduled(&d, "saturdays-17", json!({"cron": "0 17 * * 6"}), &["updates"]);
    set_clock(&d, "2026-11-28T15:59:59Z");
    // The clock call returns once every due slot is recorded: no run means none was due.
    assert!(
        d.all_runs("task=updates").is_empty(),
        "nothing before Saturday 17:00 Berlin"
    );
    assert!(api.calls().is_empty());
    set_clock(&d, "2026-11-28T16:00:00Z");
    let run = &finished_runs(&d, "updates", 1)[0];
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(
        instant(&run["cause"]["slot"]),
        instant(&json!("2026-11-28T16:00:00Z"))
    );
    assert_eq!(api.update_actions(), ["refresh", "download"]);
    let calls = api.calls();
    assert_eq!(
        (
            calls[0].method.as_str(),
            calls[0].path.as_str(),
            calls[0].query.as_str()
        ),
        ("GET", "/api/v4/update_settings/1", "fields=source")
    );
    assert_eq!(calls[1].body, json!({"source": 1, "action": "refresh"}));
    assert_eq!(calls[2].body, json!({"source": 1, "action": "download"}));
    // A week later, once more; not in between.
    set_clock(&d, "2026-12-05T15:59:00Z");
    assert_eq!(d.all_runs("task=updates").len(), 1, "not in between");
    assert_eq!(api.update_actions().len(), 2);
    set_clock(&d, "2026-12-05T16:00:00Z");
    finished_runs(&d, "updates", 2);
    assert_eq!(
        api.update_actions(),
        ["refresh", "download", "refresh", "download"]
    );
}

/// Example 5: disable a user account 30 days after it was created: a durable timer
/// due exactly 30 days after the creation event, across a daemon restart, fired by
/// advancing the clock.
#[test]
fn example_5_disable_a_user_30_days_after_creation() {
    let dir = tempfile::tempdir().unwrap();
    let (d, api) = vergeos_daemon(dir.path(), &["--test-clock", "2026-11-27T09:00:00Z"]);
    vergeos_task(
        &d,
        &api,
        "disable-user",
        json!("user.disable"),
        Some(json!("${event.data.name}")),
    );
    create(
        &d,
        "/v1/triggers",
        json!({"name": "trial-accounts", "on": {"type": "vergeos.user.created"},
               "targets": [{"task": "disable-user"}], "delay": "30d"}),
    );
    let answer = post_event(
        &d,
        json!({"specversion": "1.0", "id": "c-1", "source": "/vergeos/prod", "type": "vergeos.user.created",
               "subject": "contractor-ann", "data": {"name": "contractor-ann"}}),
    );
    assert_eq!(answer["triggers"][0]["timers"].as_array().unwrap().len(), 1);
    let (_, timers) = d.call("GET", "/v1/timers", None);
    let timer = &timers["timers"][0];
    assert_eq!(
        instant(&timer["created_at"]),
        instant(&json!("2026-11-27T09:00:00Z")),
        "{timers}"
    );
    assert_eq!(
        instant(&timer["due"]),
        instant(&json!("2026-12-27T09:00:00Z")),
        "exactly 30 days after the event: {timers}"
    );
    // Restart (kill -9) in between: the timer is durable.
    let data = d.data.clone();
    d.kill9();
    let d = Daemon::start(
        &data,
        &["--allow-loopback", "--test-clock", "2026-12-27T08:59:59Z"],
    );
    let (status, now) = d.call("POST", "/v1/clock", Some(&json!({"advance_seconds": 0})));
    assert_eq!(status, 200, "{now}");
    let (_, timers) = d.call("GET", "/v1/timers", None);
    assert_eq!(timers["timers"].as_array().unwrap().len(), 1, "{timers}");
    assert!(d.all_runs("task=disable-user").is_empty(), "not before 30 days");
    assert!(api.is_on("users", "contractor-ann"));
    set_clock(&d, "2026-12-27T09:00:00Z");
    let run = &finished_runs(&d, "disable-user", 1)[0];
    assert_eq!(run["status"], "succeeded", "{run}");
    assert!(!api.is_on("users", "contractor-ann"));
    assert!(api.is_on("users", "jthompson"));
    assert_eq!(
        api.actions(),
        [(
            "/api/v4/user_actions".to_string(),
            json!({"user": 101, "action": "disable", "params": {}})
        )]
    );
}

/// Example 6: power off a tenant on a specific date (a one-time schedule).
#[test]
fn example_6_power_off_a_tenant_on_a_date() {
    let dir = tempfile::tempdir().unwrap();
    let (d, api) = vergeos_daemon(dir.path(), &["--test-clock", "2026-12-30T12:00:00Z"]);
    vergeos_task(
        &d,
        &api,
        "acme-off",
        json!("tenant.poweroff"),
        Some(json!("acme")),
    );
    scheduled(
        &d,
        "acme-contract-end",
        json!({"at": "2026-12-31T23:00:00+01:00"}),
        &["acme-off"],
    );
    set_clock(&d, "2026-12-31T21:59:59Z");
    assert!(d.all_runs("task=acme-off").is_empty(), "not before 23:00 Berlin");
    assert!(api.is_on("tenants", "acme"));
    set_clock(&d, "2026-12-31T22:00:00Z");
    let run = &finished_runs(&d, "acme-off", 1)[0];
    assert_eq!(run["status"], "succeeded", "{run}");
    assert!(!api.is_on("tenants", "acme"));
    assert!(api.is_on("tenants", "globex"));
    assert_eq!(
        api.actions(),
        [(
            "/api/v4/tenant_actions".to_string(),
            json!({"tenant": 7, "action": "poweroff", "params": {}})
        )]
    );
    set_clock(&d, "2027-12-31T22:00:00Z");
    assert_eq!(
        d.all_runs("task=acme-off").len(),
        1,
        "a one-time schedule fires once"
    );
}

/// The reuse patterns: several events to one webhook, one task from several events,
/// one schedule for several tasks.
#[test]
fn reuse_patterns() {
    let dir = tempfile::tempdir().unwrap();
    // Friday 4 December 2026, 17:00 in Berlin.
    let (d, api) = vergeos_daemon(dir.path(), &["--test-clock", "2026-12-04T16:00:00Z"]);
    let rx = Receiver::start(vec![], Reply::Status(204, Vec::new()));

    // Two event types, one webhook.
    create(
        &d,
        "/v1/webhooks",
        json!({"name": "ops-channel", "url": rx.url("/ops")}),
    );
    for kind in ["vergeos.sync.error", "vergeos.node.offline"] {
        create(
            &d,
            "/v1/triggers",
            json!({"name": kind.replace('.', "-"), "on": {"type": kind}, "targets": [{"webhook": "ops-channel"}]}),
        );
    }
    for (i, kind) in ["vergeos.sync.error", "vergeos.node.offline"].iter().enumerate() {
        post_event(
            &d,
            json!({"specversion": "1.0", "id": format!("r-{i}"), "source": "/vergeos/prod", "type": kind, "subject": "node-2"}),
        );
    }
    let mut kinds: Vec<String> = rx
        .wait_for(2)
        .iter()
        .map(|r| {
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            body["event"]["type"].as_str().unwrap().to_string()
        })
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["vergeos.node.offline", "vergeos.sync.error"]);

    // One task, two different events.
    vergeos_task(
        &d,
        &api,
        "power-on-gpu",
        json!("vm.poweron"),
        Some(json!("gpu-workstation-1")),
    );
    create(
        &d,
        "/v1/triggers",
        json!({"name": "on-login", "on": {"type": "vergeos.user.login", "filter": {"path": "data.user", "eq": "jthompson"}},
               "targets": [{"task": "power-on-gpu"}]}),
    );
    create(
        &d,
        "/v1/triggers",
        json!({"name": "on-render-job", "on": {"type": "render.job.queued"},
               "targets": [{"task": "power-on-gpu"}], "context": {"target": "gpu-workstation-2"}}),
    );
    login(&d, "l-9", "jthompson");
    post_event(
        &d,
        json!({"specversion": "1.0", "id": "j-1", "source": "/render-farm", "type": "render.job.queued", "data": {"job": 7}}),
    );
    let runs = finished_runs(&d, "power-on-gpu", 2);
    assert!(runs.iter().all(|r| r["status"] == "succeeded"), "{runs:?}");
    assert!(api.is_on("vms", "gpu-workstation-1") && api.is_on("vms", "gpu-workstation-2"));

    // One schedule (Fridays 18:00, as in the VergeOS example), three tasks.
    for (task, vm) in [
        ("off-gpu-1", "gpu-workstation-1"),
        ("off-gpu-2", "gpu-workstation-2"),
        ("off-runner", "build-runner"),
    ] {
        vergeos_task(&d, &api, task, json!("vm.poweroff"), Some(json!(vm)));
    }
    scheduled(
        &d,
        "friday-18",
        json!({"cron": "0 18 * * 5"}),
        &["off-gpu-1", "off-gpu-2", "off-runner"],
    );
    set_clock(&d, "2026-12-04T17:00:00Z");
    for task in ["off-gpu-1", "off-gpu-2", "off-runner"] {
        let run = &finished_runs(&d, task, 1)[0];
        assert_eq!(run["status"], "succeeded", "{task}: {run}");
        assert_eq!(
            instant(&run["cause"]["slot"]),
            instant(&json!("2026-12-04T17:00:00Z"))
        );
    }
    assert!(!api.is_on("vms", "gpu-workstation-1") && !api.is_on("vms", "gpu-workstation-2"));
    let offs: Vec<Value> = api
        .actions()
        .into_iter()
        .filter(|(_, b)| b["action"] == "poweroff")
        .map(|(_, b)| b["vm"].clone())
        .collect();
    let mut offs: Vec<String> = offs.iter().map(|v| v.as_str().unwrap().to_string()).collect();
    offs.sort();
    assert_eq!(offs, ["42", "43", "50"]);
}

/// Every action of the vergeos plugin makes exactly its documented call
/// (docs/plugins/vergeos.md), targets by key and by name alike.
#[test]
fn every_vergeos_action_makes_its_documented_call() {
    let dir = tempfile::tempdir().unwrap();
    let (d, api) = vergeos_daemon(dir.path(), &[]);
    let cases: Vec<(&str, Value, &str, Value)> = vec![
        (
            "vm.reset",
            json!(43),
            "/api/v4/vm_actions",
            json!({"vm": "43", "action": "reset", "params": {}}),
        ),
        (
            "vm.kill",
            json!({"name": "build-runner"}),
            "/api/v4/vm_actions",
            json!({"vm": "50", "action": "kill", "params": {}}),
        ),
        (
            "tenant.reset",
            json!("globex"),
            "/api/v4/tenant_actions",
            json!({"tenant": 8, "action": "reset", "params": {}}),
        ),
        (
            "tenant.poweroff",
            json!({"key": 8}),
            "/api/v4/tenant_actions",
            json!({"tenant": 8, "action": "poweroff", "params": {}}),
        ),
        (
            "tenant.poweron",
            json!({"key": 8}),
            "/api/v4/tenant_actions",
            json!({"tenant": 8, "action": "poweron", "params": {}}),
        ),
        (
            "user.enable",
            json!("jthompson"),
            "/api/v4/user_actions",
            json!({"user": 100, "action": "enable", "params": {}}),
        ),
        (
            "updates.install",
            Value::Null,
            "/api/v4/update_actions",
            json!({"source": 1, "action": "install"}),
        ),
    ];
    for (i, (action, target, path, body)) in cases.iter().enumerate() {
        let name = format!("case-{i}");
        let target = (!target.is_null()).then(|| target.clone());
        vergeos_task(&d, &api, &name, json!(action), target);
        let (_, run) = d.call("POST", &format!("/v1/tasks/{name}/run?wait=true"), None);
        assert_eq!(run["status"], "succeeded", "{action}: {run}");
        let last = api.actions().pop().unwrap();
        assert_eq!((last.0.as_str(), &last.1), (*path, body), "{action}");
    }
    // A list mixing kinds of rows, and a missing target, are refused before any call.
    let before = api.calls().len();
    vergeos_task(
        &d,
        &api,
        "mixed",
        json!(["vm.poweron", "user.disable"]),
        Some(json!(1)),
    );
    vergeos_task(&d, &api, "untargeted", json!("vm.poweron"), None);
    for (task, expect) in [("mixed", "one kind of row"), ("untargeted", "target: required")] {
        let (_, run) = d.call("POST", &format!("/v1/tasks/{task}/run?wait=true"), None);
        assert!(message(&run).contains(expect), "{run}");
    }
    assert_eq!(api.calls().len(), before);
}
