//! The VergeOS Task Engine examples, end to end with the real daemon, the real bundled
//! plugins and real protocol peers on loopback: an SMTP server, a stand-in VergeOS API
//! that checks every request against the documented shape, and an HTTP receiver.

use serde_json::{Value, json};
use std::time::Duration;
use sundial_tests::Daemon;
use sundial_tests::smtp::SmtpServer;

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
    let (s, v) = d.call(
        "PUT",
        "/v1/secrets/relay-password",
        Some(&json!({ "value": RELAY_PASSWORD })),
    );
    assert_eq!(s, 201, "{v}");
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
        let msg = run["error"]["message"].as_str().unwrap();
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
    let msg = run["error"]["message"].as_str().unwrap();
    assert!(msg.starts_with("relay unavailable:"), "{msg}");

    let (s, v) = d.call(
        "PATCH",
        "/v1/plugins/email",
        Some(&json!({"grants": {"mail": false}})),
    );
    assert_eq!(s, 200, "{v}");
    let (_, run) = d.call("POST", "/v1/tasks/notify/run?wait=true", None);
    let msg = run["error"]["message"].as_str().unwrap();
    assert!(msg.starts_with("denied:") && msg.contains("mail"), "{msg}");

    let other = tempfile::tempdir().unwrap();
    let bare = Daemon::start(other.path(), &[]);
    create(
        &bare,
        "/v1/tasks",
        json!({"name": "notify", "plugin": "email", "params": {"to": "ops@example.com", "subject": "s"}}),
    );
    let (_, run) = bare.call("POST", "/v1/tasks/notify/run?wait=true", None);
    let msg = run["error"]["message"].as_str().unwrap();
    assert!(msg.contains("no SMTP relay is configured"), "{msg}");
}
