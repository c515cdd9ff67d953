//! The CLI's client commands against a real daemon: every noun, tables and `--json`,
//! and exit codes (1 for an API error, 2 for usage or an unreachable daemon).

use serde_json::Value;
use std::process::{Command, Output};
use sundial_tests::{Daemon, sundial_bin, wasm};

fn cli(d: &Daemon, args: &[&str]) -> Output {
    d.cli(args)
}

fn ok(d: &Daemon, args: &[&str]) -> String {
    d.cli_ok(args)
}

#[test]
fn client_commands_cover_every_noun() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    let hello = wasm("sundial-fixture-hello").display().to_string();
    assert!(
        ok(&d, &["plugin", "install", &hello, "--name", "hello"]).contains("installed action plugin hello")
    );
    assert!(
        ok(&d, &["plugin", "list"])
            .lines()
            .any(|l| l.starts_with("hello "))
    );
    ok(
        &d,
        &[
            "task",
            "create",
            "greet",
            "--plugin",
            "hello",
            "--params",
            r#"{"name":"Ada"}"#,
            "--spec",
            r#"{"overlap":"forbid"}"#,
        ],
    );
    let tasks = ok(&d, &["task", "list"]);
    assert!(tasks.lines().next().unwrap().starts_with("NAME"));
    assert!(tasks.contains("greet") && tasks.contains("forbid"), "{tasks}");

    let run = ok(&d, &["task", "run", "greet", "--wait"]);
    assert!(
        run.contains("status   succeeded") && run.contains("greets Ada"),
        "{run}"
    );
    let runs: Value = serde_json::from_str(&ok(&d, &["run", "list", "--task", "greet", "--json"])).unwrap();
    let id = runs["runs"][0]["id"].as_str().unwrap().to_string();
    assert!(ok(&d, &["run", "get", &id]).contains("Hello, Ada!"));
    assert!(ok(&d, &["logs", "--task", "greet"]).contains("greet succeeded"));

    ok(
        &d,
        &["task", "update", "greet", r#"{"description":"says hello"}"#],
    );
    ok(&d, &["task", "disable", "greet"]);
    let refused = cli(&d, &["task", "run", "greet"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("409 conflict"));
    ok(&d, &["task", "enable", "greet"]);

    let created = ok(&d, &["token", "create", "bob", "--role", "viewer"]);
    let secret = created.lines().last().unwrap().trim().to_string();
    assert!(secret.starts_with("sdl_"));
    assert!(ok(&d, &["token", "list"]).contains("bob"));
    let as_bob = Command::new(sundial_bin())
        .args(["task", "delete", "greet"])
        .env("SUNDIAL_URL", format!("http://{}", d.addr))
        .env("SUNDIAL_TOKEN", &secret)
        .output()
        .unwrap();
    assert_eq!(as_bob.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&as_bob.stderr).contains("403 forbidden"));
    ok(&d, &["token", "revoke", "bob"]);
    assert!(ok(&d, &["audit", "--noun", "token"]).contains("delete"));

    ok(&d, &["task", "delete", "greet"]);
    assert!(ok(&d, &["plugin", "remove", "hello"]).contains("removed plugin hello"));
    let missing = cli(&d, &["run", "get", "01ARZ3NDEKTSV4RRFFQ69G5FAV"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("404 not_found"));
    let unreachable = Command::new(sundial_bin())
        .args(["--server", "http://127.0.0.1:1", "--token", "x", "task", "list"])
        .output()
        .unwrap();
    assert_eq!(unreachable.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unreachable.stderr).contains("cannot reach the daemon"));
}

#[test]
fn schedule_commands_with_friendly_flags() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    ok(&d, &["task", "create", "t", "--plugin", "echo"]);
    let out = ok(
        &d,
        &[
            "schedule",
            "create",
            "sat",
            "--every",
            "week",
            "--on",
            "sat",
            "--at",
            "17:00",
            "--tz",
            "Europe/Berlin",
            "--misfire",
            "skip",
        ],
    );
    assert!(out.contains("created schedule sat"), "{out}");
    ok(&d, &["schedule", "attach", "sat", "t"]);
    let list = ok(&d, &["schedule", "list"]);
    assert!(list.contains("sat") && list.contains("Europe/Berlin"), "{list}");
    let preview = ok(&d, &["schedule", "preview", "sat", "--count", "2"]);
    // The rule in words, the table's head, then the slots.
    assert_eq!(
        preview.lines().next(),
        Some("every week on Sat at 17:00 (Europe/Berlin)"),
        "{preview}"
    );
    assert!(
        preview.lines().nth(2).unwrap().contains("T17:00:00.000+0"),
        "{preview}"
    );
    let refused = cli(&d, &["schedule", "delete", "sat"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("409 conflict"));
    ok(&d, &["schedule", "pause", "sat"]);
    ok(&d, &["schedule", "detach", "sat", "t"]);
    ok(&d, &["schedule", "delete", "sat"]);
    let bad = cli(&d, &["schedule", "create", "x", "--every", "3 fortnights"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown unit"));
    let past = cli(&d, &["schedule", "create", "x", "--once", "2020-01-01T00:00"]);
    assert_eq!(past.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&past.stderr).contains("in the past"));
}

#[test]
fn events_triggers_and_timers_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    ok(&d, &["task", "create", "greet", "--plugin", "echo"]);
    let created = ok(
        &d,
        &[
            "trigger",
            "create",
            "logins",
            "--on",
            "user.login",
            "--subject",
            "ada",
            "--task",
            "greet",
            "--context",
            r#"{"welcome":true}"#,
        ],
    );
    assert!(created.starts_with("created trigger logins"), "{created}");
    ok(
        &d,
        &[
            "trigger",
            "create",
            "later",
            "--on",
            "user.login",
            "--task",
            "greet",
            "--delay",
            "30d",
        ],
    );
    let list = ok(&d, &["trigger", "list"]);
    assert!(
        list.starts_with("NAME") && list.contains("logins") && list.contains("30d"),
        "{list}"
    );
    let emitted = ok(
        &d,
        &[
            "event",
            "emit",
            "user.login",
            "--subject",
            "ada",
            "--data",
            r#"{"ip":"10.0.0.1"}"#,
            "--id",
            "e-1",
        ],
    );
    assert!(
        emitted.contains("2 triggers matched, 1 runs started, 1 timers set"),
        "{emitted}"
    );
    let again = ok(
        &d,
        &["event", "emit", "user.login", "--subject", "ada", "--id", "e-1"],
    );
    assert!(again.contains("duplicate"), "{again}");
    let events = ok(&d, &["event", "list", "--type", "user.*"]);
    assert!(
        events.starts_with("RECEIVED") && events.contains("user.login"),
        "{events}"
    );
    let timers = ok(&d, &["timer", "list"]);
    assert!(timers.contains("greet") && timers.contains("later"), "{timers}");
    let id = timers
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .last()
        .unwrap()
        .to_string();
    assert!(ok(&d, &["timer", "cancel", &id]).contains("cancelled"));
    assert_eq!(
        ok(&d, &["timer", "list"]).lines().count(),
        1,
        "only the header is left"
    );
    ok(&d, &["trigger", "disable", "logins"]);
    assert!(ok(&d, &["event", "emit", "user.login", "--subject", "ada"]).contains("1 triggers matched"));
    let bad = cli(&d, &["event", "emit", "x", "--data", "{nope"]);
    assert_eq!(bad.status.code(), Some(2));
    let bad = cli(&d, &["trigger", "create", "t2", "--on", "x", "--task", "missing"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("targets[0].task"));
}

#[test]
fn webhooks_deliveries_and_secrets_from_the_cli() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &["--allow-loopback"]);
    let rx = sundial_tests::Receiver::start(
        vec![sundial_tests::Reply::Status(500, Vec::new())],
        sundial_tests::Reply::Status(204, Vec::new()),
    );
    // The value goes in through stdin and never comes back out.
    let value = "cli-signing-secret-0123456789abcdef";
    let mut child = Command::new(sundial_bin())
        .args(["secret", "set", "sign"])
        .env("SUNDIAL_URL", format!("http://{}", d.addr))
        .env("SUNDIAL_TOKEN", &d.token)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{value}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("set secret sign (35 bytes)"), "{said}");
    let secrets = ok(&d, &["secret", "list"]);
    assert!(secrets.starts_with("NAME") && secrets.contains("sign") && !secrets.contains(value));

    let url = rx.url("/hook");
    let created = ok(
        &d,
        &[
            "webhook",
            "create",
            "ops",
            "--url",
            &url,
            "--header",
            "X-Team: infra",
            "--sign",
            "sign",
            "--timeout-ms",
            "2000",
        ],
    );
    assert!(created.starts_with("created webhook ops"), "{created}");
    let bad = cli(
        &d,
        &["webhook", "create", "x", "--url", &url, "--header", "no-colon"],
    );
    assert_eq!(bad.status.code(), Some(2));
    let bad = cli(&d, &["webhook", "create", "x", "--url", &url, "--sign", "nope"]);
    assert_eq!(bad.status.code(), Some(1), "an unknown secret is refused");
    let list = ok(&d, &["webhook", "list"]);
    assert!(list.contains("ops") && list.contains(&url), "{list}");

    // A schedule-driven trigger to the webhook, from the CLI.
    ok(
        &d,
        &["schedule", "create", "nightly", "--every", "day", "--at", "03:00"],
    );
    let t = ok(
        &d,
        &[
            "trigger",
            "create",
            "report",
            "--schedule",
            "nightly",
            "--webhook",
            "ops",
        ],
    );
    assert!(t.starts_with("created trigger report"), "{t}");
    let triggers = ok(&d, &["trigger", "list"]);
    assert!(
        triggers.contains("schedule:nightly") && triggers.contains("webhook:ops"),
        "{triggers}"
    );
    let both = cli(
        &d,
        &[
            "trigger",
            "create",
            "x",
            "--schedule",
            "nightly",
            "--on",
            "a",
            "--webhook",
            "ops",
        ],
    );
    assert_eq!(both.status.code(), Some(2));

    // Test delivery: 500 first, then 204 on the retry (default backoff is 5 s, so
    // `delivery retry` makes it due now).
    let test = ok(&d, &["webhook", "test", "ops"]);
    let id = test.split_whitespace().nth(3).unwrap().to_string();
    rx.wait_for(1);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let got: Value = serde_json::from_str(&ok(&d, &["delivery", "get", &id, "--json"])).unwrap();
        if got["attempts"].as_array().unwrap().len() == 1 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{got}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(ok(&d, &["delivery", "retry", &id]).contains("is queued"));
    rx.wait_for(2);
    loop {
        let got: Value = serde_json::from_str(&ok(&d, &["delivery", "get", &id, "--json"])).unwrap();
        if got["status"] == "delivered" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{got}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let list = ok(&d, &["delivery", "list", "--webhook", "ops"]);
    let row = list.lines().nth(1).unwrap();
    assert!(
        row.contains("delivered") && row.contains(" 2 ") && row.contains("204"),
        "{list}"
    );
    assert!(rx.requests()[1].header("x-team") == Some("infra"));
    let bad = cli(&d, &["delivery", "list", "--status", "lost"]);
    assert_eq!(bad.status.code(), Some(1));

    ok(&d, &["webhook", "disable", "ops"]);
    let got: Value = serde_json::from_str(&ok(&d, &["webhook", "get", "ops", "--json"])).unwrap();
    assert_eq!(got["enabled"], false);
    ok(&d, &["webhook", "enable", "ops"]);
    ok(&d, &["trigger", "delete", "report"]);
    ok(&d, &["webhook", "delete", "ops"]);
    assert!(ok(&d, &["secret", "delete", "sign"]).contains("deleted secret sign"));
    assert!(!d.stderr_text().contains(value));
}

#[test]
fn logs_follow_prints_every_finished_run_once_however_many_and_however_long() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &["--workers", "4"]);
    d.install_hostile(serde_json::json!({}));
    let task = |spec: Value| {
        d.expect(201, "POST", "/v1/tasks", Some(&spec));
    };
    task(serde_json::json!({"name": "quick", "plugin": "echo"}));
    task(
        serde_json::json!({"name": "slow", "plugin": "hostile", "params": {"mode": "loop"},
                            "timeout_ms": 9000, "retry": {"max_attempts": 1}}),
    );
    let start = |task: &str| {
        let (status, v) = d.call("POST", &format!("/v1/tasks/{task}/run"), None);
        assert_eq!(status, 202, "{v}");
        v["id"].as_str().unwrap().to_string()
    };
    let (_, done) = d.call("POST", "/v1/tasks/quick/run?wait=true", None);
    assert_eq!(done["status"], "succeeded", "{done}");
    let before = done["id"].as_str().unwrap().to_string();

    let mut follower = Command::new(sundial_bin())
        .args(["logs", "--follow", "--json"])
        .env("SUNDIAL_URL", format!("http://{}", d.addr))
        .env("SUNDIAL_TOKEN", &d.token)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start sundial logs --follow");
    let stdout = follower.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Value>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let run: Value = serde_json::from_str(&line).expect("one JSON run per line");
            if tx.send(run).is_err() {
                return;
            }
        }
    });
    // The run that finished before is printed first, as `tail` would.
    let first = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the finished run");
    assert_eq!(first["id"], before.as_str(), "{first}");

    // A slow run, then, more than the follower's 5 s margin later (a pause to place it
    // there, not a synchronisation), more quick runs than the newest hundred: the quick
    // ones finish many to a poll, and the slow one, out of the pages by then, is looked
    // up until it ends.
    let slow = start("slow");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while d.call("GET", &format!("/v1/runs/{slow}"), None).1["status"] != "running" {
        assert!(std::time::Instant::now() < deadline, "the slow run never started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_secs(6));
    let mut want: std::collections::HashSet<String> = (0..150).map(|_| start("quick")).collect();
    want.insert(slow.clone());
    let mut got = std::collections::HashMap::new();
    while got.len() < want.len() {
        let run = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .unwrap_or_else(|_| {
                panic!(
                    "{} of {} runs printed; missing e.g. {:?}",
                    got.len(),
                    want.len(),
                    want.iter().find(|id| !got.contains_key(*id))
                )
            });
        let id = run["id"].as_str().unwrap().to_string();
        assert!(
            want.contains(&id),
            "printed a run twice or one not asked for: {run}"
        );
        assert!(
            run["finished_at"].is_string(),
            "printed before it finished: {run}"
        );
        assert!(got.insert(id, run).is_none(), "printed twice");
    }
    assert_eq!(got[&slow]["status"], "timed_out", "{}", got[&slow]);
    // Nothing more comes (no run is printed twice) while another quick one does.
    let last = start("quick");
    let run = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the last run");
    assert_eq!(run["id"], last.as_str(), "{run}");
    let _ = follower.kill();
    let _ = follower.wait();

    // Without --follow: the newest finished runs as text, with their log lines, once.
    let text = ok(&d, &["logs", "--task", "slow"]);
    assert_eq!(
        text.lines()
            .filter(|l| l.contains(" slow timed_out attempt 1"))
            .count(),
        1,
        "{text}"
    );
}

/// A closed output pipe (`sundial webhook get alerts | head`) ends a command quietly:
/// no panic, no "Broken pipe" on stderr, just the end that `cat` or `grep` would have.
#[test]
fn a_closed_pipe_ends_every_command_quietly() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    ok(&d, &["task", "create", "piped", "--plugin", "echo"]);
    ok(&d, &["task", "run", "piped", "--wait"]);
    for args in [
        &["plugin", "list"][..],
        &["task", "list"],
        &["task", "get", "piped"],
        &["run", "list"],
        &["run", "list", "--json"],
        &["event", "list"],
        &["audit"],
        &["webhook", "list"],
        &["token", "list"],
    ] {
        let mut child = Command::new(sundial_bin())
            .args(args)
            .env("SUNDIAL_URL", format!("http://{}", d.addr))
            .env("SUNDIAL_TOKEN", &d.token)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run sundial");
        // The reader goes away before the command has its answer to print.
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait for sundial");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "{args:?}: {stderr}"
        );
        assert!(
            out.status.signal() == Some(libc::SIGPIPE) || out.status.code() == Some(0),
            "{args:?} ended with {:?}: {stderr}",
            out.status
        );
    }
}

/// `--on` takes weekday lists and ranges, and refuses what is not a weekday, naming it.
#[test]
fn schedule_weekdays_take_ranges_and_refuse_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    ok(
        &d,
        &[
            "schedule", "create", "workdays", "--every", "week", "--on", "mon-fri", "--at", "09:00",
        ],
    );
    let out = ok(
        &d,
        &[
            "schedule",
            "create",
            "weekend",
            "--every",
            "2 weeks",
            "--on",
            "sat,sun",
            "--at",
            "10:30",
            "--tz",
            "Europe/Berlin",
        ],
    );
    assert!(
        out.contains("created schedule weekend: every 2 weeks on Sat, Sun at 10:30 (Europe/Berlin)\nnext: "),
        "the parsed rule in words: {out}"
    );
    let out = ok(
        &d,
        &[
            "schedule",
            "create",
            "either",
            "--cron",
            "0 9 1 * 1",
            "--tz",
            "UTC",
        ],
    );
    assert!(
        out.contains("created schedule either: at 09:00, on day 1 of the month or on Mon (UTC)"),
        "{out}"
    );
    let out = ok(
        &d,
        &[
            "schedule",
            "preview",
            "--every",
            "week",
            "--on",
            "mon-wed,fri",
            "--at",
            "07:00",
            "--tz",
            "UTC",
            "--count",
            "4",
        ],
    );
    assert!(
        out.starts_with("every week on Mon-Wed, Fri at 07:00 (UTC)\n"),
        "{out}"
    );
    let (_, s) = d.call("GET", "/v1/schedules/workdays", None);
    assert!(
        s["summary"]
            .as_str()
            .unwrap_or_default()
            .starts_with("every week on Mon-Fri at 09:00 ("),
        "{s}"
    );
    assert_eq!(
        s["rule"]["calendar"]["weekdays"],
        serde_json::json!(["Mon", "Tue", "Wed", "Thu", "Fri"]),
        "{s}"
    );
    for bad in ["monkey", "mon-frx"] {
        let out = cli(&d, &["schedule", "create", "bad", "--every", "week", "--on", bad]);
        assert_eq!(out.status.code(), Some(2), "--on {bad} is a usage error");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("is not a weekday"), "{stderr}");
    }
    assert_eq!(
        d.call("GET", "/v1/schedules/bad", None).0,
        404,
        "nothing was created"
    );
}
