//! The dashboard in a real browser: Debian's headless Chromium drives the real daemon
//! (see `sundial_tests::browser`). An operator logs in, creates a task, runs it and
//! watches its live log, retries a failed run, pauses a schedule, sends and sees a
//! webhook delivery, and logs out; a viewer sees no mutating control; axe-core reports
//! no serious or critical accessibility violation on any page, light or dark; every
//! page fits 360 px; the keyboard reaches the content first.
//!
//! Needs Chromium and axe-core, which the README's test command (`scripts/test`)
//! installs. Screenshots go to `target/screenshots` (`SUNDIAL_SCREENSHOTS` elsewhere:
//! `docs/screenshots` holds the ones the docs show).

use serde_json::{Value, json};
use std::path::PathBuf;
use sundial_tests::browser::Browser;
use sundial_tests::{Daemon, Receiver, Reply, workspace_root};

/// The axe-core script: `SUNDIAL_AXE`, else where `scripts/test` puts it.
fn axe_source() -> String {
    let path = std::env::var("SUNDIAL_AXE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join("target/test-deps/axe-core/axe.min.js"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "reading axe-core at {} ({e}): the README's test command (scripts/test) fetches it",
            path.display()
        )
    })
}

/// Where screenshots go.
fn screenshots() -> PathBuf {
    let dir = std::env::var("SUNDIAL_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join("target/screenshots"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Set a form field's value.
fn fill(b: &mut Browser, selector: &str, value: &str) {
    let script = format!(
        "(() => {{ const e = document.querySelector({}); if (!e) throw new Error('no field'); e.value = {}; }})()",
        json!(selector),
        json!(value)
    );
    b.eval(&script);
}

/// Log in through the login form with `token`; the overview must follow.
fn log_in(b: &mut Browser, base: &str, token: &str) {
    b.goto(&format!("{base}/login"));
    fill(b, "#token", token);
    b.click("form.login button");
    assert_eq!(b.path(), "/", "{}", b.text());
}

/// Run `id` through the API.
fn run_of(d: &Daemon, id: &str) -> Value {
    d.expect(200, "GET", &format!("/v1/runs/{id}"), None)
}

/// A daemon with the hostile fixture installed, a webhook `hook` to a receiver that
/// answers `status`, and a schedule `nightly` (02:30 in Berlin).
fn with_hook_and_schedule(dir: &std::path::Path, status: u16) -> (Daemon, Receiver) {
    let d = Daemon::start(dir, &["--allow-loopback"]);
    d.install_hostile(json!({}));
    let receiver = Receiver::start(vec![], Reply::Status(status, Vec::new()));
    let hook = json!({"name": "hook", "url": receiver.url("/hook")});
    d.create("/v1/webhooks", hook);
    let nightly = json!({"name": "nightly", "rule": {"cron": "30 2 * * *"}, "timezone": "Europe/Berlin"});
    d.create("/v1/schedules", nightly);
    (d, receiver)
}

#[test]
fn an_operator_drives_the_dashboard_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    let (d, receiver) = with_hook_and_schedule(dir.path(), 204);
    let base = format!("http://{}", d.addr);
    d.create(
        "/v1/tasks",
        json!({"name": "fails", "plugin": "hostile", "params": {"mode": "fail"}}),
    );
    let failed = d.run_wait("fails", json!({}));
    assert_eq!(failed["status"], "failed", "{failed}");

    let mut b = Browser::start();
    b.viewport(1280, 900, false);
    log_in(&mut b, &base, &d.token);

    // Create a task through the form.
    b.goto(&format!("{base}/tasks/new"));
    fill(&mut b, "#name", "drip");
    fill(&mut b, "#plugin", "hostile");
    fill(&mut b, "#params", r#"{"mode": "drip", "lines": 8, "ms": 250}"#);
    b.click("form[action='/tasks'] button");
    assert!(b.path().starts_with("/tasks/"), "{}", b.text());
    assert!(b.text().contains("Task drip"), "{}", b.text());

    // Run it, open the run, and watch its log arrive while it runs.
    b.click("form[action$='/run'] button");
    b.click("table a[href^='/runs/']");
    let run_id = b.path().trim_start_matches("/runs/").to_string();
    // Note when each line reaches the page (for the latency figure).
    b.eval(
        "window.arrivals = []; new MutationObserver(() => { \
           document.querySelectorAll('table[data-tail] tbody tr').forEach((r, i) => { \
             if (window.arrivals[i] === undefined) window.arrivals[i] = Date.now(); }); \
         }).observe(document.querySelector('table[data-tail] tbody'), {childList: true})",
    );
    b.wait_until(
        "the first two live lines",
        "document.querySelectorAll('table[data-tail] tbody tr').length >= 2",
    );
    // The lines came while the run was still running: a live tail, not a reload.
    assert_eq!(run_of(&d, &run_id)["status"], "running");
    b.wait_until(
        "the end of the run",
        "!document.getElementById('tail-reload').hidden",
    );
    let shown = b.eval("document.querySelectorAll('table[data-tail] tbody tr').length");
    assert_eq!(shown, json!(8), "every line once");
    let run = run_of(&d, &run_id);
    assert_eq!(run["status"], "succeeded", "{run}");
    let arrivals = b.eval("window.arrivals");
    let started = chrono::DateTime::parse_from_rfc3339(run["started_at"].as_str().unwrap())
        .unwrap()
        .timestamp_millis();
    let latencies: Vec<i64> = run["log"]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .zip(arrivals.as_array().unwrap())
        .filter_map(|(line, at)| Some(at.as_i64()? - (started + line["at_ms"].as_i64()?)))
        .collect();
    // The first line may have been written before the page was open; the others were
    // written while it listened.
    let mut open: Vec<i64> = latencies.iter().skip(1).copied().collect();
    open.sort();
    println!(
        "log line to open page, ms (sorted): {open:?} (the first line: {} ms)",
        latencies[0]
    );
    b.click("#tail-reload a");
    assert!(b.text().contains("dripped"), "the output: {}", b.text());

    // Retry the failed run: a new run, linked to it.
    let failed_id = failed["id"].as_str().unwrap();
    b.goto(&format!("{base}/runs/{failed_id}"));
    b.click("form[action$='/retry'] button");
    assert_ne!(b.path(), format!("/runs/{failed_id}"));
    assert!(b.text().contains("Retry of"), "{}", b.text());
    assert!(b.text().contains(failed_id), "{}", b.text());

    // Pause a schedule.
    b.goto(&format!("{base}/schedules"));
    b.click("table a[href^='/schedules/']");
    b.click("form[action$='/pause'] button");
    assert!(b.text().contains("paused"), "{}", b.text());
    let schedule = d.expect(200, "GET", "/v1/schedules/nightly", None);
    assert_eq!(schedule["enabled"], false, "{schedule}");

    // Send a test delivery and see it delivered.
    b.goto(&format!("{base}/webhooks"));
    b.click("table a[href^='/webhooks/']");
    b.click("form[action$='/test'] button");
    assert!(b.path().starts_with("/deliveries/"), "{}", b.path());
    receiver.wait_for(1);
    let delivery = b.path();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !b.text().contains("delivered") {
        assert!(std::time::Instant::now() < deadline, "{}", b.text());
        std::thread::sleep(std::time::Duration::from_millis(100));
        b.goto(&format!("{base}{delivery}"));
    }
    assert!(b.text().contains("204"), "the answer: {}", b.text());

    // Log out: the session is gone.
    b.click("form.logout button");
    assert_eq!(b.path(), "/login");
    b.goto(&format!("{base}/"));
    assert_eq!(b.path(), "/login");
}

/// Every page of the dashboard, with one of each noun to show.
fn all_pages(d: &Daemon) -> Vec<(String, String)> {
    // A string in an answer of the API, by JSON pointer.
    let read = |path: &str, pointer: &str| -> String {
        let answer = d.expect(200, "GET", path, None);
        let value = answer.pointer(pointer).and_then(Value::as_str);
        value
            .unwrap_or_else(|| panic!("no {pointer} in {answer}"))
            .to_string()
    };
    let task = read("/v1/tasks/fails", "/id");
    let run = d.all_runs("task=fails")[0]["id"].as_str().unwrap().to_string();
    let schedule = read("/v1/schedules/nightly", "/id");
    let event = read("/v1/events", "/events/0/seq");
    let hook = read("/v1/webhooks/hook", "/id");
    let delivery = read("/v1/deliveries", "/deliveries/0/id");
    [
        ("overview", "/".to_string()),
        ("tasks", "/tasks".into()),
        ("task", format!("/tasks/{task}")),
        ("task-new", "/tasks/new".into()),
        ("runs", "/runs".into()),
        ("run", format!("/runs/{run}")),
        ("schedules", "/schedules".into()),
        ("schedule", format!("/schedules/{schedule}")),
        (
            "preview",
            "/schedules/preview?rule=30+2+*+3+SUN&timezone=Europe%2FBerlin".into(),
        ),
        ("events", "/events".into()),
        ("event", format!("/events/{event}")),
        ("triggers", "/triggers".into()),
        ("timers", "/timers".into()),
        ("webhooks", "/webhooks".into()),
        ("webhook", format!("/webhooks/{hook}")),
        ("delivery", format!("/deliveries/{delivery}")),
        ("plugins", "/plugins".into()),
        ("plugin", "/plugins/hostile".into()),
        ("secrets", "/secrets".into()),
        ("tokens", "/tokens".into()),
        ("audit", "/audit".into()),
        ("login", "/login".into()),
    ]
    .into_iter()
    .map(|(n, p)| (n.to_string(), p))
    .collect()
}

/// A daemon with one of each noun (and a failed run, an event, a timer, a delivery).
fn populated(dir: &std::path::Path) -> (Daemon, Receiver) {
    let (d, receiver) = with_hook_and_schedule(dir, 500);
    d.create(
        "/v1/tasks",
        json!({"name": "fails", "plugin": "hostile", "params": {"mode": "fail"},
               "notify": [{"webhook": "hook"}]}),
    );
    d.attach("nightly", "fails");
    d.create(
        "/v1/triggers",
        json!({"name": "later", "on": {"type": "x.later"}, "targets": [{"task": "fails"}], "delay": "1h"}),
    );
    d.put_secret(201, "db-password", "s3cr3t");
    d.expect(
        202,
        "POST",
        "/v1/events",
        Some(&json!({"specversion": "1.0", "id": "e1", "source": "/test", "type": "x.later"})),
    );
    d.run_wait("fails", json!({}));
    receiver.wait_for(1);
    (d, receiver)
}

#[test]
fn every_page_passes_axe_fits_360_px_and_a_viewer_sees_no_control() {
    let dir = tempfile::tempdir().unwrap();
    let (d, _receiver) = populated(dir.path());
    let base = format!("http://{}", d.addr);
    let axe = axe_source();
    let shots = screenshots();
    let mut b = Browser::start();
    log_in(&mut b, &base, &d.token);
    let mut problems = Vec::new();
    for (name, path) in all_pages(&d) {
        for scheme in ["light", "dark"] {
            b.viewport(1280, 900, false);
            b.color_scheme(scheme);
            if name == "login" {
                b.goto(&format!("{base}/"));
            }
            b.goto(&format!("{base}{path}"));
            b.eval(&axe);
            let found = b.eval(
                "axe.run(document).then(r => ({passes: r.passes.length, violations: r.violations \
                   .filter(v => v.impact === 'serious' || v.impact === 'critical') \
                   .map(v => v.id + ' (' + v.impact + '): ' + v.nodes.map(n => n.target.join(' ')).slice(0, 3).join('; '))}))",
            );
            // axe ran its rules (colour contrast, names, landmarks...) on the page.
            assert!(found["passes"].as_u64().unwrap() >= 10, "{path}: {found}");
            for v in found["violations"].as_array().unwrap() {
                problems.push(format!("{path} [{scheme}] {v}"));
            }
            b.screenshot(&shots.join(format!("{name}-{scheme}.webp")));
            // At 360 px the page does not scroll sideways (wide tables scroll inside).
            b.viewport(360, 740, true);
            let fits = b.eval("document.documentElement.scrollWidth <= window.innerWidth");
            if fits != json!(true) {
                let width = b.eval("document.documentElement.scrollWidth");
                problems.push(format!("{path} [{scheme}] is {width} px wide at 360 px"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // The keyboard: the first Tab reaches the skip link, Enter moves to the content.
    b.viewport(1280, 900, false);
    b.goto(&format!("{base}/tasks"));
    b.press("Tab", 9);
    assert_eq!(b.eval("document.activeElement.className"), json!("skip"));
    b.press("Enter", 13);
    b.wait_until("the skip link", "location.hash === '#main'");

    // A viewer sees no mutating control on any page (only the theme switch and logout).
    let viewer = d.expect(
        201,
        "POST",
        "/v1/tokens",
        Some(&json!({"name": "eve", "role": "viewer"})),
    );
    let secret = viewer["secret"].as_str().unwrap().to_string();
    b.click("form.logout button");
    log_in(&mut b, &base, &secret);
    for (name, path) in all_pages(&d) {
        if name == "login" {
            continue;
        }
        b.goto(&format!("{base}{path}"));
        let controls = b.eval(
            "Array.from(document.querySelectorAll('form[method=post]:not(.theme):not(.logout), a[href$=\"/delete\"], a[href=\"/tasks/new\"]')).map(e => e.outerHTML.slice(0, 80))",
        );
        assert_eq!(controls, json!([]), "{path}");
    }
}
