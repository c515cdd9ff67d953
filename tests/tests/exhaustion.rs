//! Resource exhaustion against the real binary: a full data disk (503 with a clear
//! message, nothing acknowledged lost, recovery by itself once space returns), a flood
//! of requests beyond the worker pool and the request limit (429 and 503 with
//! `Retry-After`, memory bounded), and 1 000 hostile plugin runs in a row (memory flat).
//!
//! The disk is made full with the daemon's testing hook `--inject-disk-full PATH`:
//! while PATH exists, every write to the store fails with ENOSPC, exactly what a full
//! filesystem answers (a real small filesystem needs mount privileges).

use serde_json::{Value, json};
use std::collections::HashSet;
use std::io::Write;
use std::time::{Duration, Instant};
use sundial_tests::{
    Daemon, KeepAlive, column, message, metric, peak_rss_kib, pluck, reset_peak_rss, rss_kib, try_raw_http,
    wait_until,
};

fn ok(d: &Daemon, method: &str, path: &str, body: Value) -> Value {
    let (status, v) = d.call(method, path, Some(&body));
    assert!((200..300).contains(&status), "{method} {path}: {status} {v}");
    v
}

fn hostile(d: &Daemon) {
    d.install_hostile(json!({}));
}

fn terminal(run: &Value) -> bool {
    !matches!(run["status"].as_str(), Some("queued" | "running"))
}

#[test]
fn a_full_disk_gives_503_loses_nothing_and_recovers_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let full = dir.path().join("disk-is-full");
    let switch = full.to_str().unwrap().to_string();
    let d = Daemon::start(&data, &["--inject-disk-full", &switch]);
    hostile(&d);
    ok(&d, "POST", "/v1/tasks", json!({"name": "e", "plugin": "echo"}));
    ok(
        &d,
        "POST",
        "/v1/tasks",
        // Its first attempt ends (times out) while the disk is full: the outage below
        // lasts twice as long as the attempt, whenever the attempt started before it.
        json!({"name": "spin", "plugin": "hostile", "params": {"mode": "loop"}, "timeout_ms": 2500,
               "retry": {"max_attempts": 2, "initial_delay_ms": 10, "max_delay_ms": 10}}),
    );
    ok(
        &d,
        "POST",
        "/v1/schedules",
        json!({"name": "tick", "rule": {"cron": "* * * * * *"}}),
    );
    ok(&d, "POST", "/v1/schedules/tick/tasks", json!({"task": "e"}));

    let mut runs: Vec<String> = Vec::new();
    let mut events: Vec<String> = Vec::new();
    for i in 0..20 {
        runs.push(
            ok(&d, "POST", "/v1/tasks/e/run", json!({}))["id"]
                .as_str()
                .unwrap()
                .into(),
        );
        let ev = json!({"specversion": "1.0", "id": format!("before-{i}"), "source": "/disk", "type": "disk.test"});
        events.push(ok(&d, "POST", "/v1/events", ev)["seq"].as_str().unwrap().into());
    }
    // A run that is mid-flight when the disk fills: its end cannot be recorded.
    let spin = ok(&d, "POST", "/v1/tasks/spin/run", json!({}))["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_until("the spin run to start", 30, || {
        d.call("GET", &format!("/v1/runs/{spin}"), None).1["status"] == "running"
    });

    std::fs::write(&full, b"").unwrap();
    let mut refused = 0;
    let outage = Instant::now();
    while outage.elapsed() < Duration::from_secs(5) {
        for (path, body) in [
            ("/v1/tasks/e/run", json!({})),
            (
                "/v1/events",
                json!({"specversion": "1.0", "id": format!("during-{refused}"), "source": "/disk", "type": "disk.test"}),
            ),
            (
                "/v1/tasks",
                json!({"name": format!("t{refused}"), "plugin": "echo"}),
            ),
        ] {
            let (status, v) = d.call("POST", path, Some(&body));
            assert_eq!(status, 503, "POST {path} on a full disk: {status} {v}");
            assert_eq!(v["error"]["code"], "storage_unavailable", "{v}");
            let message = message(&v);
            assert!(message.contains("data file"), "{message}");
            assert!(message.contains("retry later"), "{message}");
            refused += 1;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // Retry-After tells clients when to come back.
    let (_, head) = head_of(&d, "/v1/tasks/e/run");
    assert!(head.to_ascii_lowercase().contains("retry-after: 1"), "{head}");
    assert!(
        d.stderr_text().contains("No space left on device"),
        "the log names the cause:\n{}",
        d.stderr_text()
    );

    // Space returns: the daemon recovers without a restart.
    std::fs::remove_file(&full).unwrap();
    let recovered = Instant::now();
    let mut after = None;
    wait_until("writes to succeed again", 60, || {
        let (status, v) = d.call("POST", "/v1/tasks/e/run", Some(&json!({})));
        if status == 202 {
            after = Some(v["id"].as_str().unwrap().to_string());
        }
        status == 202
    });
    runs.push(after.unwrap());
    eprintln!(
        "disk full: {refused} writes refused with 503 in 5 s; writable again {} ms after space returned",
        recovered.elapsed().as_millis()
    );
    // Everything acknowledged is there and finishes; the interrupted run was settled
    // per its retry policy; the schedule goes on.
    wait_until("every acknowledged run to finish", 60, || {
        runs.iter()
            .all(|id| terminal(&d.call("GET", &format!("/v1/runs/{id}"), None).1))
    });
    wait_until("the spin run to be settled", 60, || {
        terminal(&d.call("GET", &format!("/v1/runs/{spin}"), None).1)
    });
    // Its first attempt ended (timed out) while nothing could be written: settled as
    // interrupted by the disk, then retried, and the retry timed out as recorded.
    let spun = d.call("GET", &format!("/v1/runs/{spin}"), None).1;
    let attempts = spun["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{spun}");
    assert!(
        attempts[0]["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("data disk failed"),
        "{spun}"
    );
    assert_eq!(spun["status"], "timed_out", "{spun}");
    let scheduled = |d: &Daemon| d.all_runs("task=e&cause=schedule").len();
    let before = scheduled(&d);
    wait_until("the schedule to fire after the recovery", 30, || {
        scheduled(&d) > before
    });

    d.kill9();
    let d = Daemon::start(&data, &[]);
    for id in &runs {
        let (status, run) = d.call("GET", &format!("/v1/runs/{id}"), None);
        assert_eq!(status, 200, "acknowledged run {id} lost: {run}");
        assert_eq!(run["status"], "succeeded", "{run}");
    }
    for seq in &events {
        let (status, e) = d.call("GET", &format!("/v1/events/{seq}"), None);
        assert_eq!(status, 200, "acknowledged event {seq} lost: {e}");
    }
    let (_, tasks) = d.call("GET", "/v1/tasks", None);
    let names: HashSet<&str> = column(&tasks["tasks"], "name").into_iter().collect();
    assert_eq!(
        names,
        HashSet::from(["e", "spin"]),
        "refused creates left nothing behind"
    );
    assert!(!d.stderr_text().contains("panicked"));
}

/// Send a POST and return (status, response head) for header checks.
fn head_of(d: &Daemon, path: &str) -> (u16, String) {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(&d.addr).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        d.token
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let head = text.split("\r\n\r\n").next().unwrap_or_default().to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head)
}

/// A `POST /v1/tasks` whose body never finishes: it holds a request slot for as
/// long as the connection stays open.
fn stalled_upload(d: &Daemon) -> std::net::TcpStream {
    let mut s = std::net::TcpStream::connect(&d.addr).unwrap();
    s.set_nodelay(true).unwrap();
    // One write: the whole head and the first body byte leave in one segment.
    let head = format!(
        "POST /v1/tasks HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{",
        d.token
    );
    s.write_all(head.as_bytes()).unwrap();
    s
}

/// What the daemon answered on `s` so far (its first line, or "closed"), without
/// waiting; `None` while it is silent.
fn answered(s: &std::net::TcpStream) -> Option<String> {
    let mut buf = [0u8; 256];
    s.set_nonblocking(true).ok()?;
    let got = s.peek(&mut buf);
    s.set_nonblocking(false).ok()?;
    match got {
        Ok(0) => Some("closed".into()),
        Ok(n) => Some(
            String::from_utf8_lossy(&buf[..n])
                .lines()
                .next()
                .unwrap_or("")
                .to_string(),
        ),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => None,
        Err(e) => Some(e.to_string()),
    }
}

#[test]
fn a_flood_beyond_the_workers_gets_429_and_503_and_memory_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(
        dir.path(),
        &[
            "--workers",
            "1",
            "--max-queued-runs",
            "50",
            "--max-requests",
            "16",
        ],
    );
    hostile(&d);
    ok(
        &d,
        "POST",
        "/v1/tasks",
        json!({"name": "slow", "plugin": "hostile", "params": {"mode": "loop"}, "timeout_ms": 1000,
               "retry": {"max_attempts": 1}}),
    );
    let base = rss_kib(d.pid());
    reset_peak_rss(d.pid());

    // The run queue: one worker, so runs pile up until the limit refuses more.
    let mut accepted = Vec::new();
    let mut refused = None;
    for _ in 0..200 {
        let (status, v) = d.call("POST", "/v1/tasks/slow/run", Some(&json!({})));
        match status {
            202 => accepted.push(v["id"].as_str().unwrap().to_string()),
            429 => {
                refused = Some(v);
                break;
            }
            other => panic!("unexpected {other}: {v}"),
        }
    }
    let refused = refused.expect("the queue limit refused a run");
    assert_eq!(refused["error"]["code"], "queue_full", "{refused}");
    assert!(message(&refused).contains("max_queued_runs is 50"));
    // Refused at exactly 50 waiting runs; the worker took one or more of those accepted
    // (how many depends on how fast the requests came, so only the floor is fixed).
    assert!(
        message(&refused).starts_with("50 runs are waiting for a worker"),
        "{refused}"
    );
    assert!(accepted.len() >= 50, "{} runs accepted", accepted.len());
    // Events wait too. The single worker frees a place about once a second, so an
    // event can slip into one: ask until the queue is full at that moment.
    let ev = json!({"specversion": "1.0", "id": "flood-1", "source": "/flood", "type": "flood"});
    let event_refused = (0..50).any(|_| d.call("POST", "/v1/events", Some(&ev)).0 == 429);
    assert!(
        event_refused,
        "an event was refused with 429 while the queue was full"
    );

    // 64 clients flood the full queue: every answer is 202, 429 or 503, fast.
    let mut statuses = std::collections::HashMap::new();
    // Meanwhile /healthz is probed on fresh connections: it must answer throughout.
    let flooding = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let probe = {
        let (addr, flooding) = (d.addr.clone(), flooding.clone());
        std::thread::spawn(move || {
            let mut latencies = Vec::new();
            while flooding.load(std::sync::atomic::Ordering::Relaxed) {
                let t = Instant::now();
                let (status, text) = try_raw_http(&addr, "GET", "/healthz", "", b"").unwrap();
                assert_eq!(status, 200, "/healthz during the flood: {text}");
                latencies.push(t.elapsed());
                std::thread::sleep(Duration::from_millis(20));
            }
            latencies.sort();
            latencies
        })
    };
    let threads: Vec<_> = (0..64)
        .map(|_| {
            let (addr, token) = (d.addr.clone(), d.token.clone());
            std::thread::spawn(move || {
                let mut c = KeepAlive::open(&addr);
                (0..100)
                    .map(|_| c.request("POST", "/v1/tasks/slow/run", &token, Some("{}")).0)
                    .collect::<Vec<u16>>()
            })
        })
        .collect();
    for t in threads {
        for s in t.join().unwrap() {
            *statuses.entry(s).or_insert(0u32) += 1;
        }
    }
    flooding.store(false, std::sync::atomic::Ordering::Relaxed);
    let latencies = probe.join().expect("the /healthz probe");
    assert!(!latencies.is_empty());
    eprintln!(
        "/healthz during the flood: {} probes, median {:?}, slowest {:?}",
        latencies.len(),
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1]
    );
    let unexpected: Vec<_> = statuses
        .keys()
        .filter(|s| ![202, 429, 503].contains(*s))
        .collect();
    assert!(unexpected.is_empty(), "{statuses:?}");
    assert!(statuses.get(&429).copied().unwrap_or(0) > 0, "{statuses:?}");

    // The request limit: 16 uploads that never finish hold every slot; the next
    // request is refused at once with 503, while /healthz still answers. An upload
    // that arrived while another request still held a slot was itself refused; it is
    // logged and replaced until all 16 wait inside the daemon.
    let mut stalled: Vec<std::net::TcpStream> = (0..16).map(|_| stalled_upload(&d)).collect();
    let metrics = |d: &Daemon| {
        let auth = format!("authorization: Bearer {}\r\n", d.token);
        try_raw_http(&d.addr, "GET", "/metrics", &auth, b"")
            .map(|(_, text)| text)
            .unwrap_or_default()
    };
    // Wait (through the gauge, which is never refused and not counted) until every
    // upload holds its slot before probing: a probe sent earlier could take the last
    // slot itself and get the last upload refused.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for s in stalled.iter_mut() {
            if let Some(answer) = answered(s) {
                eprintln!("a stalled upload was answered, replacing it: {answer}");
                *s = stalled_upload(&d);
            }
        }
        let text = metrics(&d);
        if metric(&text, "sundial_http_requests_in_progress") == 16.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the stalled uploads never held every slot:\n{}\ndaemon log:\n{}",
            text.lines()
                .filter(|l| l.starts_with("sundial_http"))
                .collect::<Vec<_>>()
                .join("\n"),
            d.stderr_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let refused_before = metric(&metrics(&d), "sundial_http_requests_refused_total");
    let overloaded = head_of(&d, "/v1/tasks/slow/run");
    assert_eq!(overloaded.0, 503, "{}", overloaded.1);
    // Every slot is held by a stalled upload, and this refusal is counted.
    let text = metrics(&d);
    assert_eq!(metric(&text, "sundial_http_requests_in_progress"), 16.0, "{text}");
    assert_eq!(
        metric(&text, "sundial_http_requests_refused_total"),
        refused_before + 1.0,
        "{text}"
    );
    assert!(
        overloaded.1.to_ascii_lowercase().contains("retry-after: 1"),
        "{}",
        overloaded.1
    );
    let (status, text) = try_raw_http(&d.addr, "GET", "/healthz", "", b"").unwrap();
    assert_eq!(status, 200, "{text}");
    let (status, v) = d.call("GET", "/v1/tasks", None);
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (503, Some("overloaded")),
        "{v}"
    );
    stalled.clear();
    wait_until("the slots to be free again", 30, || {
        d.call("GET", "/v1/tasks", None).0 == 200
    });

    // The peak over the whole flood (VmHWM), not a sample after it.
    let peak = peak_rss_kib(d.pid());
    eprintln!(
        "flood: {statuses:?}; queue limit refused at {} queued runs; VmRSS {base} KiB before, peak {peak} KiB",
        accepted.len()
    );
    assert!(
        peak < base + 128 * 1024,
        "memory grew from {base} KiB to {peak} KiB"
    );
    // Nothing acknowledged is lost: every accepted run is there.
    for id in &accepted {
        d.expect(200, "GET", &format!("/v1/runs/{id}"), None);
    }
}

#[test]
fn a_stalled_upload_is_cut_at_the_body_timeout_and_frees_its_slot() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &["--body-timeout", "1s", "--max-requests", "4"]);
    let auth = format!("authorization: Bearer {}\r\n", d.token);
    let in_progress = || {
        let (_, text) = try_raw_http(&d.addr, "GET", "/metrics", &auth, b"").unwrap();
        metric(&text, "sundial_http_requests_in_progress")
    };
    // Four uploads that stall after their head: they hold every slot...
    let mut stalled: Vec<std::net::TcpStream> = (0..4).map(|_| stalled_upload(&d)).collect();
    let (_, text) = try_raw_http(&d.addr, "GET", "/metrics", &auth, b"").unwrap();
    assert!(
        text.contains("sundial_http_requests_in_progress"),
        "the gauge is there: {text}"
    );
    // ...until the body timeout answers each 408 and frees its slot, although the
    // connections stay open.
    for s in &mut stalled {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("\"code\":\"body_timeout\""), "{answer}");
        assert!(
            answer.contains("the request body did not arrive within 1 s (body_timeout)"),
            "{answer}"
        );
    }
    wait_until("the slots to be free", 30, || in_progress() == 0.0);
    ok(
        &d,
        "POST",
        "/v1/tasks",
        json!({"name": "after", "plugin": "echo"}),
    );
    // A body the client breaks off is a 400 naming the cause, not a 413.
    let mut s = stalled_upload(&d);
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("the request body could not be read"), "{answer}");
    // Nothing half-written: only the complete task exists.
    let (_, tasks) = d.call("GET", "/v1/tasks", None);
    let names = pluck(&tasks["tasks"], "name");
    assert_eq!(names, vec![json!("after")], "{tasks}");
}

#[test]
fn a_thousand_hostile_runs_leave_memory_flat() {
    let dir = tempfile::tempdir().unwrap();
    // The store's page cache (16 MiB by default) fills as the file grows and would
    // read as growth here; a small one keeps the measurement about everything else.
    let d = Daemon::start(dir.path(), &["--workers", "4", "--store-cache-mb", "8"]);
    hostile(&d);
    let modes = [
        "loop",
        "membomb",
        "trap",
        "panic",
        "stack",
        "flood",
        "bad-output",
        "escape",
    ];
    // Live listeners the escape attempts aim at: reaching them would be an escape.
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for mode in modes {
        // Only the endless loop meets its timeout; every other mode ends by itself
        // (a generous timeout, so a loaded machine cannot turn its end into a timeout).
        let timeout_ms = if mode == "loop" { 100 } else { 60_000 };
        let params = json!({"mode": mode, "lines": 2000, "tcp": tcp.local_addr().unwrap().to_string(),
                            "udp": udp.local_addr().unwrap().to_string()});
        ok(
            &d,
            "POST",
            "/v1/tasks",
            json!({"name": mode, "plugin": "hostile", "params": params, "timeout_ms": timeout_ms,
                   "retry": {"max_attempts": 1}, "retention": {"keep_last": 1000}}),
        );
    }
    let mut ids = Vec::new();
    let mut samples = Vec::new();
    for batch in 0..10 {
        let start = ids.len();
        for i in 0..100 {
            let mode = modes[(batch * 100 + i) % modes.len()];
            ids.push(
                ok(&d, "POST", &format!("/v1/tasks/{mode}/run"), json!({}))["id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        wait_until("a batch of hostile runs", 300, || {
            ids[start..].iter().all(|id| {
                let (status, run) = d.call("GET", &format!("/v1/runs/{id}"), None);
                assert_eq!(status, 200, "run {id}: {run}");
                terminal(&run)
            })
        });
        samples.push(rss_kib(d.pid()));
    }
    // Every hostile run ended as its misbehaviour must, on its own.
    for (i, id) in ids.iter().enumerate() {
        let mode = modes[i % modes.len()];
        let (_, run) = d.call("GET", &format!("/v1/runs/{id}"), None);
        let (status, kind) = (run["status"].as_str(), run["error"]["kind"].as_str());
        match mode {
            "loop" => assert_eq!(
                (status, kind),
                (Some("timed_out"), Some("timeout")),
                "{mode}: {run}"
            ),
            "membomb" => assert_eq!(
                (status, kind),
                (Some("failed"), Some("memory_limit")),
                "{mode}: {run}"
            ),
            "trap" | "panic" | "stack" => {
                assert_eq!((status, kind), (Some("failed"), Some("trap")), "{mode}: {run}")
            }
            "bad-output" => assert_eq!(
                (status, kind),
                (Some("failed"), Some("bad_output")),
                "{mode}: {run}"
            ),
            "flood" => {
                // A log flood succeeds, with its log cut at the limit.
                assert_eq!(status, Some("succeeded"), "{mode}: {run}");
                assert_eq!(run["log"]["truncated"], true, "{mode}: {run}");
            }
            "escape" => {
                // The escape attempts all fail inside the sandbox; the run reports them.
                assert_eq!(status, Some("succeeded"), "{mode}: {run}");
                for key in ["read_root", "read_passwd", "write_file", "tcp", "udp"] {
                    assert!(
                        run["output"][key].is_string(),
                        "{mode}: {key} did not fail: {run}"
                    );
                }
                assert_eq!(run["output"]["env"], json!([]), "{run}");
            }
            other => unreachable!("{other}"),
        }
    }
    tcp.set_nonblocking(true).unwrap();
    udp.set_nonblocking(true).unwrap();
    assert!(
        matches!(tcp.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "an escape reached the TCP listener"
    );
    assert!(
        matches!(udp.recv_from(&mut [0u8; 64]), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "an escape reached the UDP socket"
    );
    // The daemon still works.
    let (status, echo) = d.call("POST", "/v1/tasks", Some(&json!({"name": "e", "plugin": "echo"})));
    assert_eq!(status, 201, "{echo}");
    let run = ok(&d, "POST", "/v1/tasks/e/run?wait=true", json!({}));
    assert_eq!(run["status"], "succeeded", "{run}");
    let (warm, last) = (samples[1], samples[9]);
    eprintln!("hostile runs: VmRSS KiB after each 100: {samples:?}");
    assert!(
        last < warm + 32 * 1024,
        "memory grew from {warm} KiB (200 runs) to {last} KiB (1000 runs): {samples:?}"
    );
    assert!(!d.stderr_text().contains("panicked at"), "{}", d.stderr_text());
}
