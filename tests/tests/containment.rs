//! Containment against the real daemon: what one plugin run or one caller does stays
//! within its own limits, and the daemon keeps serving everyone else (issue 15,
//! classes 2, 3, 4 and 6).

use serde_json::{Value, json};
use std::time::{Duration, Instant};
use sundial_tests::{Daemon, items, metric, peak_rss_kib, reset_peak_rss, rss_kib, wait_until};

/// Wait up to `secs` for `sundial_run_backlog` to be `n` (`what` names it).
fn wait_for_backlog(d: &Daemon, n: f64, what: &str, secs: u64) {
    wait_until(what, secs, || metric(&metrics(d), "sundial_run_backlog") == n);
}

fn metrics(d: &Daemon) -> String {
    let v = d.expect(200, "GET", "/metrics", None);
    v.as_str().expect("metrics text").to_string()
}

/// Wait until nothing is queued or running and the number of runs of `task` has not
/// moved for two seconds; returns them.
fn quiet_runs(d: &Daemon, task: &str) -> Vec<Value> {
    quiet_runs_watching(d, task, || {})
}

/// [`quiet_runs`], calling `watch` at every poll.
fn quiet_runs_watching(d: &Daemon, task: &str, mut watch: impl FnMut()) -> Vec<Value> {
    let mut last = (usize::MAX, Instant::now());
    wait_until(&format!("the runs of {task} to settle"), 240, || {
        watch();
        let runs = d.all_runs(&format!("task={task}"));
        let busy = runs
            .iter()
            .any(|r| matches!(r["status"].as_str(), Some("queued" | "running")));
        if busy || runs.len() != last.0 {
            last = (runs.len(), Instant::now());
            return false;
        }
        last.1.elapsed() > Duration::from_secs(2)
    });
    d.all_runs(&format!("task={task}"))
}

/// A task that emits `count` events which each start it again, and its trigger.
fn self_feeding_task(d: &Daemon, count: u32) {
    d.install_hostile(json!({"grants": {"emit_events": true}}));
    let spec = json!({"name": "fan", "plugin": "hostile",
                      "params": {"mode": "fanout", "kind": "fixture.fan", "count": count},
                      "retry": {"max_attempts": 1}});
    d.expect(201, "POST", "/v1/tasks", Some(&spec));
    let trigger = json!({"name": "again", "on": {"type": "fixture.fan"}, "targets": [{"task": "fan"}]});
    d.expect(201, "POST", "/v1/triggers", Some(&trigger));
}

/// Every stored event of type `kind`, following cursors.
fn all_events(d: &Daemon, kind: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = d.expect(
            200,
            "GET",
            &format!("/v1/events?type={kind}&limit=1000{cursor}"),
            None,
        );
        all.extend(page["events"].as_array().expect("events").iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return all,
        }
    }
}

fn outside_event(id: &str) -> Value {
    json!({"specversion": "1.0", "id": id, "source": "/test", "type": "fixture.fan", "data": {}})
}

/// Class 4: a run that emits ten events which each start it again would make 10^8 runs
/// within the depth limit. The chain's budget stops it: at most `max_chain` runs, the
/// events past it are stored with the reason, the runs that emitted them say so in
/// their log, the metric counts them, and everyone else is still served.
#[test]
fn a_self_feeding_trigger_chain_stops_at_its_budget() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &["--max-chain", "150", "--workers", "4"]);
    self_feeding_task(&d, 10);
    let (status, v) = d.call("POST", "/v1/events", Some(&outside_event("root-1")));
    assert_eq!(status, 202, "{v}");
    let root = v["seq"]
        .as_str()
        .unwrap_or_else(|| panic!("an event seq: {v}"))
        .to_string();

    let runs = quiet_runs(&d, "fan");
    // Each event starts one run: 1 + 10 + 100 runs, then 39 of the next generation's
    // 1000, and nothing after: the budget is spent to exactly 150.
    assert_eq!(runs.len(), 150, "the chain stops at its budget of 150 runs");
    for r in &runs {
        assert_eq!(r["root"], json!(root), "every run is in the event's chain: {r}");
        assert_eq!(r["status"], "succeeded", "{r}");
    }
    let stopped = metric(
        &metrics(&d),
        "sundial_events_stopped_total{reason=\"chain_budget\"}",
    );
    assert!(stopped >= 1.0, "the metric counts held-back events: {stopped}");
    let events = all_events(&d, "fixture.fan");
    let held: Vec<&Value> = events
        .iter()
        .filter(|e| e["stopped"].as_str().is_some_and(|s| s.contains("max_chain")))
        .collect();
    assert_eq!(
        held.len() as f64,
        stopped,
        "each held-back event is stored with the reason"
    );
    assert!(
        held.iter().all(|e| e["triggers"][0]["runs"] == json!([])),
        "{held:?}"
    );
    // The runs whose events were held back say so in their log.
    let noted = runs
        .iter()
        .filter(|r| {
            items(&r["log"]["lines"])
                .iter()
                .any(|l| l["message"].as_str().unwrap().contains("max_chain"))
        })
        .count();
    assert!(noted >= 1, "a run's log names the budget");

    // The queue is empty again and others are served: a manual run and a new chain.
    let (status, v) = d.call(
        "POST",
        "/v1/tasks/fan/run",
        Some(&json!({"params": {"mode": "fanout", "count": 0}})),
    );
    assert_eq!(status, 202, "a manual run is accepted: {v}");
    let (status, v) = d.call("POST", "/v1/events", Some(&outside_event("root-2")));
    assert_eq!(status, 202, "a new chain is accepted: {v}");
    let runs = quiet_runs(&d, "fan");
    assert_eq!(runs.len(), 150 + 1 + 150, "the new chain has a budget of its own");
}

/// Class 4, the queue: runs started by plugins and triggers obey `max_queued_runs` like
/// manual runs and outside events. With one worker and five places, a chain whose
/// budget would allow thousands never has more than five runs waiting; what did not
/// fit is recorded on its event as `queue_full`.
#[test]
fn runs_started_by_runs_obey_the_queue_limit() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(
        dir.path(),
        &[
            "--max-chain",
            "100000",
            "--workers",
            "1",
            "--max-queued-runs",
            "5",
            "--max-event-depth",
            "3",
        ],
    );
    self_feeding_task(&d, 10);
    d.expect(202, "POST", "/v1/events", Some(&outside_event("root-q")));
    let mut most_waiting = 0.0f64;
    let runs = quiet_runs_watching(&d, "fan", || {
        most_waiting = most_waiting.max(metric(&metrics(&d), "sundial_run_backlog"));
    });
    assert!(
        most_waiting <= 5.0,
        "at most max_queued_runs wait: saw {most_waiting}"
    );
    // Depth 3 would allow 1 + 10 + 100 + 1000 runs; the queue holds back most.
    assert!(runs.len() < 1111, "{} runs", runs.len());
    let full = metric(
        &metrics(&d),
        "sundial_events_stopped_total{reason=\"queue_full\"}",
    );
    assert!(full >= 1.0, "events were held back by the queue: {full}");
    assert!(
        all_events(&d, "fixture.fan").iter().any(|e| e["stopped"]
            .as_str()
            .is_some_and(|s| s.contains("max_queued_runs"))),
        "the reason is on the event"
    );
}

/// Class 4, schedules: a slot that comes due while `max_queued_runs` runs wait still
/// gets its one run (exactly once), recorded `skipped` with the reason; the next slot,
/// with room in the queue, runs.
#[test]
fn a_slot_due_while_the_queue_is_full_is_recorded_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = "2026-06-01T00:00:00Z";
    let d = Daemon::start(
        dir.path(),
        &["--test-clock", t0, "--workers", "1", "--max-queued-runs", "2"],
    );
    d.install_hostile(json!({}));
    let spin = json!({"name": "spin", "plugin": "hostile", "params": {"mode": "loop"},
                      "retry": {"max_attempts": 1}, "timeout_ms": 60000});
    d.expect(201, "POST", "/v1/tasks", Some(&spin));
    d.create("/v1/tasks", json!({"name": "tick", "plugin": "echo"}));
    d.create(
        "/v1/schedules",
        json!({"name": "every-second", "rule": {"cron": "* * * * * *"}, "start": "2026-06-01T00:00:01Z"}),
    );
    d.attach("every-second", "tick");
    // One spinning run holds the only worker, two more wait: the queue is full.
    let spin = || {
        let (status, r) = d.call("POST", "/v1/tasks/spin/run", None);
        assert_eq!(status, 202, "{r}");
        r["id"].as_str().unwrap().to_string()
    };
    let first = spin();
    wait_until("the first spin to run", 30, || {
        d.call("GET", &format!("/v1/runs/{first}"), None).1["status"] == "running"
    });
    let spins = [first, spin(), spin()];
    wait_for_backlog(&d, 2.0, "two runs waiting for the worker", 30);
    d.set_clock("2026-06-01T00:00:01Z");
    let slots = d.schedule_slots("tick");
    assert_eq!(slots.len(), 1, "{slots:?}");
    assert_eq!(slots[0].1, "skipped", "{slots:?}");
    let run = &d.all_runs("task=tick")[0];
    let log = run["log"]["lines"].to_string();
    assert!(log.contains("max_queued_runs"), "the reason is on the run: {log}");
    // Room again: the next slot runs.
    for id in &spins {
        d.call("POST", &format!("/v1/runs/{id}/cancel"), None);
    }
    wait_for_backlog(&d, 0.0, "the queue to empty", 60);
    d.set_clock("2026-06-01T00:00:02Z");
    let slots = d.schedule_slots("tick");
    assert_eq!(slots.len(), 2, "exactly one run per slot: {slots:?}");
    assert_ne!(slots[1].1, "skipped", "{slots:?}");
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap_or_else(|e| panic!("reading /proc/{pid}/fd: {e}"))
        .count()
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn error_of(run: &Value) -> (&str, &str, &str) {
    (
        run["status"].as_str().unwrap_or_default(),
        run["error"]["kind"].as_str().unwrap_or_default(),
        run["error"]["message"].as_str().unwrap_or_default(),
    )
}

/// Assert that `run` failed with `resource_limit`, its message containing `text`.
#[track_caller]
fn assert_resource_limit(run: &Value, text: &str, round: usize) {
    let (status, kind, message) = error_of(run);
    assert_eq!(
        (status, kind),
        ("failed", "resource_limit"),
        "round {round}: {run}"
    );
    assert!(message.contains(text), "{run}");
}

/// Class 2: header maps, requests and streams live in the host's memory, outside the
/// plugin's 64 MiB. Each run may hold `max_resources` (256) of them and a header map
/// at most 16 KiB: thousands of 100 kB header maps fail the run with `resource_limit`
/// instead of growing the daemon by hundreds of MiB, and the memory is given back.
#[test]
fn a_plugin_cannot_grow_host_memory_through_wasi_resources() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &["--workers", "4"]);
    d.install_hostile(json!({}));
    let spec = json!({"name": "hold", "plugin": "hostile", "params": {"mode": "fields"},
                      "retry": {"max_attempts": 1}});
    d.expect(201, "POST", "/v1/tasks", Some(&spec));
    // Within the limits it works (and the plugin is compiled and warm).
    let ok = d.run_wait("hold", json!({"mode": "fields", "count": 100, "bytes": 8000}));
    assert_eq!(ok["status"], "succeeded", "{ok}");
    assert_eq!(ok["output"]["held"], 100, "{ok}");
    let pid = d.pid();
    let before = rss_kib(pid);
    reset_peak_rss(pid);
    for round in 0..3 {
        // 5 000 maps of 100 kB: the first map is already over 16 KiB.
        let big = d.run_wait("hold", json!({"mode": "fields", "count": 5000, "bytes": 100_000}));
        assert_resource_limit(&big, "header map larger than 16 KiB", round);
        // 5 000 maps of 8 kB each: fine one by one, too many at once.
        let many = d.run_wait("hold", json!({"mode": "fields", "count": 5000, "bytes": 8000}));
        assert_resource_limit(&many, "max_resources", round);
    }
    // Four at once, as the workers allow.
    let runs: Vec<String> = (0..8)
        .map(|_| {
            let (status, r) = d.call(
                "POST",
                "/v1/tasks/hold/run",
                Some(&json!({"params": {"mode": "fields", "count": 5000, "bytes": 8000}})),
            );
            assert_eq!(status, 202, "{r}");
            r["id"].as_str().unwrap().to_string()
        })
        .collect();
    for id in &runs {
        wait_until("the run to end", 120, || {
            d.call("GET", &format!("/v1/runs/{id}"), None).1["finished_at"].is_string()
        });
        let (_, run) = d.call("GET", &format!("/v1/runs/{id}"), None);
        assert_eq!(error_of(&run).1, "resource_limit", "{run}");
    }
    let peak = peak_rss_kib(pid);
    std::thread::sleep(Duration::from_secs(1));
    let after = rss_kib(pid);
    eprintln!(
        "host memory through WASI resources: VmRSS {:.1} MiB before, peak {:.1} MiB, {:.1} MiB after",
        mib(before),
        mib(peak),
        mib(after)
    );
    // The attack this stops grew the daemon by 758 MiB in one run. The bound per run
    // is 256 maps of 16 KiB (4 MiB) plus the instance; 14 runs left it where it was.
    assert!(
        peak < before + 96 * 1024,
        "peak {peak} KiB against {before} KiB before"
    );
    assert!(
        after < before + 32 * 1024,
        "after {after} KiB against {before} KiB before"
    );
    let again = d.run_wait("hold", json!({"mode": "fields", "count": 10, "bytes": 100}));
    assert_eq!(again["status"], "succeeded", "the plugin still runs: {again}");
}

/// A TCP server on loopback that accepts connections and never answers; counts how many
/// are open now and the most ever open at once.
struct Sink {
    port: u16,
    open: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    most: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Sink {
    fn start() -> Sink {
        use std::sync::atomic::Ordering::SeqCst;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let open = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let most = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (o, m) = (open.clone(), most.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let now = o.fetch_add(1, SeqCst) + 1;
                m.fetch_max(now, SeqCst);
                let o = o.clone();
                std::thread::spawn(move || {
                    // Read (and ignore) until the client closes; never answer.
                    let mut buf = [0u8; 4096];
                    while matches!(std::io::Read::read(&mut stream, &mut buf), Ok(n) if n > 0) {}
                    o.fetch_sub(1, SeqCst);
                });
            }
        });
        Sink { port, open, most }
    }

    fn open(&self) -> usize {
        self.open.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn most(&self) -> usize {
        self.most.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Class 3: a run that opens requests to a host that never answers holds at most
/// `max_connections` (16) of them, all runs together at most the daemon's share of its
/// open-file limit, which the daemon raised to the hard limit at start; `/healthz`
/// answers throughout, and every socket is closed when the runs end.
#[test]
fn outbound_connections_are_capped_per_run_and_per_daemon() {
    let sink = Sink::start();
    let dir = tempfile::tempdir().unwrap();
    // Soft 128, hard 512: the daemon raises the soft limit to 512, and plugin requests
    // get a quarter of it: 128.
    let d = Daemon::start_with_nofile(dir.path(), &["--allow-loopback", "--workers", "10"], 128, 512);
    let pid = d.pid();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap();
    assert_eq!(
        line.split_whitespace().collect::<Vec<_>>()[3..5],
        ["512", "512"],
        "{line}"
    );
    wait_until("the limit in the log", 10, || {
        d.stderr_text().contains("raised the open-file limit")
    });
    d.install_hostile(json!({"grants": {"hosts": [format!("http://127.0.0.1:{}", sink.port)]}}));
    let authority = format!("127.0.0.1:{}", sink.port);
    let spec = json!({"name": "dial", "plugin": "hostile",
                      "params": {"mode": "connections", "authority": authority, "count": 200, "wait_ms": 3000},
                      "retry": {"max_attempts": 1}});
    d.expect(201, "POST", "/v1/tasks", Some(&spec));
    let fds_before = fds(pid);
    let rss_before = rss_kib(pid);

    // One run alone: 16 open, the other 184 refused inside the plugin.
    let one = d.run_wait(
        "dial",
        json!({"mode": "connections", "authority": authority, "count": 200, "wait_ms": 2000}),
    );
    let brief = |r: &Value| format!("{} {} {}", r["status"], r["error"], r["output"]);
    assert_eq!(one["status"], "succeeded", "{}", brief(&one));
    assert_eq!(
        (one["output"]["open"].as_u64(), one["output"]["limited"].as_u64()),
        (Some(16), Some(184)),
        "{}",
        brief(&one)
    );
    assert!(
        one["log"]["lines"][0]["message"]
            .as_str()
            .unwrap()
            .contains("limits.max_connections"),
        "the log says why: {}",
        one["log"]["lines"][0]
    );
    wait_until("the run's sockets to close", 30, || sink.open() == 0);

    // Ten at once: 160 wanted, 128 allowed for the whole daemon.
    let ids: Vec<String> = (0..10)
        .map(|_| {
            let r = d.expect(202, "POST", "/v1/tasks/dial/run", None);
            r["id"].as_str().unwrap().to_string()
        })
        .collect();
    let mut worst_healthz = Duration::ZERO;
    let mut most_fds = 0;
    let mut most_requests = 0.0f64;
    let finished = |id: &String| d.call("GET", &format!("/v1/runs/{id}"), None).1["finished_at"].is_string();
    wait_until("the ten runs to end", 120, || {
        let t = Instant::now();
        let (status, _) = d.call_as(None, "GET", "/healthz", None);
        assert_eq!(status, 200, "/healthz answers while plugins hold sockets");
        worst_healthz = worst_healthz.max(t.elapsed());
        most_fds = most_fds.max(fds(pid));
        most_requests = most_requests.max(metric(&metrics(&d), "sundial_plugin_http_requests_open"));
        ids.iter().all(finished)
    });
    let mut open_total = 0;
    for id in &ids {
        let (_, run) = d.call("GET", &format!("/v1/runs/{id}"), None);
        assert_eq!(run["status"], "succeeded", "{}", brief(&run));
        let open = run["output"]["open"].as_u64().unwrap();
        assert!(open <= 16, "one run held {open}: {}", brief(&run));
        assert_eq!(
            open + run["output"]["limited"].as_u64().unwrap(),
            200,
            "{}",
            brief(&run)
        );
        open_total += open;
    }
    assert!(
        most_requests <= 128.0,
        "the daemon had {most_requests} plugin requests open"
    );
    // The sink notices a close a moment after it happens: one run's worth of slack.
    assert!(
        sink.most() <= 128 + 16,
        "the sink saw {} connections at once",
        sink.most()
    );
    eprintln!("ten runs held {open_total} requests in all (not all at once)");
    wait_until("every socket to close", 30, || sink.open() == 0);

    // A run that asks for 4 500: it runs out of host resources first.
    let flood = d.run_wait(
        "dial",
        json!({"mode": "connections", "authority": authority, "count": 4500, "wait_ms": 100}),
    );
    assert_eq!(error_of(&flood).1, "resource_limit", "{}", brief(&flood));
    wait_until("every socket to close", 30, || sink.open() == 0);
    std::thread::sleep(Duration::from_millis(500));
    let (fds_after, rss_after) = (fds(pid), rss_kib(pid));
    eprintln!(
        "outbound sockets: sink saw at most {} at once; daemon fds {fds_before} before, at most {most_fds} during, {fds_after} after; \
         VmRSS {:.1} -> {:.1} MiB; slowest /healthz {:?}",
        sink.most(),
        mib(rss_before),
        mib(rss_after),
        worst_healthz
    );
    assert!(
        most_fds < 512,
        "the daemon stayed under its open-file limit: {most_fds}"
    );
    assert!(
        fds_after <= fds_before + 8,
        "sockets were closed: {fds_before} -> {fds_after}"
    );
}

/// Class 6: clients that send their request head a byte at a time are cut at the
/// header timeout, at the connection limit the oldest idle connection gives way to a
/// new one, and `/healthz` and ordinary requests are answered throughout.
#[test]
fn slow_clients_are_cut_and_cannot_crowd_out_others() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(
        dir.path(),
        &["--header-timeout", "3s", "--max-connections", "200"],
    );
    let pid = d.pid();
    let (fds_before, rss_before) = (fds(pid), rss_kib(pid));
    // 600 connections, each sending one byte of a request head.
    let mut slow: Vec<std::net::TcpStream> = (0..600)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(&d.addr).unwrap();
            s.write_all(b"G").unwrap();
            s
        })
        .collect();
    let started = Instant::now();
    let mut worst = Duration::ZERO;
    let mut served = 0;
    let mut most_fds = 0;
    // For 6 s (twice the header timeout) they keep trickling a byte every 500 ms
    // while /healthz and an authenticated read are asked for.
    while started.elapsed() < Duration::from_secs(6) {
        for s in &mut slow {
            let _ = s.write_all(b"E");
        }
        for _ in 0..5 {
            let t = Instant::now();
            let (status, _) = d.call_as(None, "GET", "/healthz", None);
            assert_eq!(status, 200, "/healthz during the slow-client flood");
            let (status, v) = d.call("GET", "/v1/tasks", None);
            assert_eq!(status, 200, "an ordinary request during the flood: {v}");
            worst = worst.max(t.elapsed());
            served += 2;
        }
        most_fds = most_fds.max(fds(pid));
        std::thread::sleep(Duration::from_millis(500));
    }
    // Every slow connection has been closed by the daemon: evicted at the limit, or cut
    // at the header timeout.
    wait_until("every slow connection to be closed by the daemon", 30, || {
        slow.iter_mut().all(closed)
    });
    let text = metrics(&d);
    let evicted = metric(&text, "sundial_http_connections_evicted_total");
    // How many gave way at the limit and how many ran into the timeout depends on how
    // fast they were accepted; both end closed.
    assert!(
        evicted >= 1.0,
        "600 slow connections against 200 places: {evicted} evicted"
    );
    assert!(metric(&text, "sundial_http_connections_open") <= 200.0, "{text}");
    drop(slow);
    std::thread::sleep(Duration::from_millis(500));
    let (fds_after, rss_after) = (fds(pid), rss_kib(pid));
    eprintln!(
        "slow clients: {served} requests served during the flood, slowest {worst:?}; {evicted} evicted; \
         daemon fds {fds_before} before, at most {most_fds} during, {fds_after} after; VmRSS {:.1} -> {:.1} MiB",
        mib(rss_before),
        mib(rss_after)
    );
    assert!(
        most_fds < fds_before + 260,
        "open connections stayed capped: {most_fds} fds"
    );
    assert!(fds_after <= fds_before + 8, "{fds_before} -> {fds_after}");
}

/// Whether the daemon has closed `s` (what it sent before closing is read and dropped).
fn closed(s: &mut std::net::TcpStream) -> bool {
    use std::io::Read;
    s.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

/// Class 6, the other side: when every open connection is in a request, a new one is
/// answered `503 too_many_connections` at once rather than waiting.
#[test]
fn a_connection_beyond_the_limit_is_refused_when_all_are_busy() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &["--max-connections", "5"]);
    // An upload whose body never finishes: a connection in a request.
    let stalled = || {
        let mut s = std::net::TcpStream::connect(&d.addr).unwrap();
        let head = format!(
            "POST /v1/tasks HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{",
            d.token
        );
        s.write_all(head.as_bytes()).unwrap();
        s
    };
    let mut busy: Vec<std::net::TcpStream> = (0..4).map(|_| stalled()).collect();
    // Four in their request (the fifth place serves this check).
    wait_until("four requests in progress", 30, || {
        metric(&metrics(&d), "sundial_http_requests_in_progress") >= 4.0
    });
    // The fifth: once it is in its request too, a sixth connection finds every place
    // busy. (Until then the sixth takes the fifth's place, which is idle: try again.)
    let mut answer = (0, String::new());
    for _ in 0..50 {
        busy.push(stalled());
        std::thread::sleep(Duration::from_millis(200));
        answer =
            sundial_tests::try_raw_http(&d.addr, "GET", "/healthz", "", b"").unwrap_or((0, String::new()));
        if answer.0 == 503 {
            break;
        }
    }
    assert_eq!(answer.0, 503, "{answer:?}");
    assert!(answer.1.contains("too_many_connections"), "{answer:?}");
    drop(busy);
    wait_until("room again", 30, || {
        d.call_as(None, "GET", "/healthz", None).0 == 200
    });
    let text = metrics(&d);
    assert!(
        metric(&text, "sundial_http_connections_refused_total") >= 1.0,
        "{text}"
    );
}
