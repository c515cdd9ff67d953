//! Durability: acknowledged runs survive `kill -9` at any moment; finished runs keep
//! their result; runs caught mid-flight are interrupted and retried; the store reopens.

use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use sundial_tests::{Daemon, try_raw_http};

fn wait_all_terminal(d: &Daemon, ids: &[String]) -> HashMap<String, Value> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut done = HashMap::new();
    while done.len() < ids.len() {
        assert!(
            Instant::now() < deadline,
            "{} of {} runs never finished",
            ids.len() - done.len(),
            ids.len()
        );
        for id in ids {
            if done.contains_key(id) {
                continue;
            }
            let (status, run) = d.call("GET", &format!("/v1/runs/{id}"), None);
            assert_eq!(
                status, 200,
                "acknowledged run {id} is missing after restart: {run}"
            );
            let st = run["status"].as_str().unwrap_or_default();
            if !matches!(st, "queued" | "running") {
                done.insert(id.clone(), run);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    done
}

/// Wait (up to 60 s) until ten `what`s are acknowledged in `acks`, then `then_ms` more.
fn wait_for_acks<T>(acks: &Mutex<Vec<T>>, what: &str, then_ms: u64) {
    let flowing = Instant::now();
    while acks.lock().unwrap().len() < 10 {
        assert!(
            flowing.elapsed() < Duration::from_secs(60),
            "no {what} was acknowledged"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(then_ms));
}

#[test]
fn acknowledged_runs_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut acknowledged: Vec<String> = Vec::new();
    let mut finished_before: HashMap<String, Value> = HashMap::new();
    let mut spin_ids = Vec::new();

    for (round, kill_after_ms) in [120u64, 350, 600].into_iter().enumerate() {
        let d = Daemon::start(dir.path(), &["--workers", "4"]);
        if round == 0 {
            let hostile = std::fs::read(sundial_tests::wasm("sundial-fixture-hostile")).unwrap();
            use base64::Engine as _;
            let body = json!({"name": "hostile", "wasm_base64": base64::engine::general_purpose::STANDARD.encode(hostile)});
            d.expect(201, "POST", "/v1/plugins", Some(&body));
            d.create("/v1/tasks", json!({"name": "e", "plugin": "echo"}));
            // 5 s: far longer than a round lasts, so the kill finds it mid-flight even on
            // a loaded machine.
            let spin = json!({"name": "spin", "plugin": "hostile", "params": {"mode": "loop"}, "timeout_ms": 5000,
                              "retry": {"max_attempts": 2, "initial_delay_ms": 10, "max_delay_ms": 10}});
            d.expect(201, "POST", "/v1/tasks", Some(&spin));
        }
        // One long run that is surely mid-flight when the daemon dies.
        let (status, spin) = d.call("POST", "/v1/tasks/spin/run", None);
        assert_eq!(status, 202);
        let spin_id = spin["id"].as_str().unwrap().to_string();
        let wait_running = Instant::now();
        while d.call("GET", &format!("/v1/runs/{spin_id}"), None).1["status"] != "running" {
            assert!(
                wait_running.elapsed() < Duration::from_secs(30),
                "spin run never started"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        acknowledged.push(spin_id.clone());
        spin_ids.push(spin_id);

        // Clients fire runs concurrently until the daemon dies under them.
        let acks = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let headers = format!("authorization: Bearer {}\r\n", d.token);
        let mut clients = Vec::new();
        for _ in 0..4 {
            let (acks, stop, addr, headers) = (acks.clone(), stop.clone(), d.addr.clone(), headers.clone());
            clients.push(std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let result = try_raw_http(&addr, "POST", "/v1/tasks/e/run", &headers, b"");
                    match result {
                        Ok((202, body)) => {
                            let v: Value = serde_json::from_str(&body).unwrap();
                            acks.lock().unwrap().push(v["id"].as_str().unwrap().to_string());
                        }
                        other => {
                            // The daemon is gone: this request was never acknowledged.
                            if !stop.load(Ordering::Relaxed) {
                                eprintln!("client stopped on {other:?}");
                            }
                            break;
                        }
                    }
                }
            }));
        }
        // Kill at a different moment each round, but only once runs are flowing, so a
        // slow machine cannot turn a round into one with nothing acknowledged.
        wait_for_acks(&acks, "run", kill_after_ms);
        // Record runs that finished before the kill, with their results (at least one:
        // wait for it, so the check after the restart always has something to compare).
        let acked_now: Vec<String> = acks.lock().unwrap().clone();
        let recorded = finished_before.len();
        let finishing = Instant::now();
        loop {
            for id in acked_now.iter().take(20) {
                let (_, run) = d.call("GET", &format!("/v1/runs/{id}"), None);
                if run["status"] == "succeeded" {
                    finished_before.insert(id.clone(), run);
                }
            }
            if finished_before.len() > recorded {
                break;
            }
            assert!(
                finishing.elapsed() < Duration::from_secs(60),
                "no acknowledged run finished"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        d.kill9();
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            c.join().expect("a client thread panicked");
        }
        let round_acks = acks.lock().unwrap().clone();
        assert!(!round_acks.is_empty(), "round {round}: no run was acknowledged");
        acknowledged.extend(round_acks);
    }

    // Restart once more and account for every acknowledged run.
    let d = Daemon::start(dir.path(), &["--workers", "4"]);
    let runs = wait_all_terminal(&d, &acknowledged);
    for (id, before) in &finished_before {
        let after = &runs[id];
        assert_eq!(after["status"], "succeeded");
        assert_eq!(after["output"], before["output"], "run {id} kept its result");
        assert_eq!(
            sundial_tests::instant(&after["finished_at"]),
            sundial_tests::instant(&before["finished_at"]),
            "run {id} kept its end time"
        );
    }
    for id in &acknowledged {
        let st = runs[id]["status"].as_str().unwrap();
        if !spin_ids.contains(id) {
            assert_eq!(st, "succeeded", "echo run {id}: {}", runs[id]);
        }
    }
    for id in &spin_ids {
        let run = &runs[id];
        let first = &run["attempts"][0];
        assert!(
            first["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("daemon stopped"),
            "spin run {id} was interrupted mid-flight: {run}"
        );
        assert_eq!(run["attempt"], 2, "and retried: {run}");
        // The retry either ran to its timeout, or was itself cut short by the next kill
        // (then, with no attempts left, the run ends `interrupted`).
        let second = run["attempts"][1]["error"]["message"]
            .as_str()
            .unwrap_or_default();
        let expected = if second.contains("daemon stopped") {
            "interrupted"
        } else {
            "timed_out"
        };
        assert_eq!(run["status"], expected, "{run}");
    }
    eprintln!(
        "durability: {} acknowledged runs across 3 kills, {} checked finished-before-kill, all accounted for",
        acknowledged.len(),
        finished_before.len()
    );
}

#[test]
fn acknowledged_events_survive_kill_9_and_start_their_runs_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut acknowledged: Vec<(String, String)> = Vec::new(); // (event id, seq)
    for (round, kill_after_ms) in [150u64, 400].into_iter().enumerate() {
        let d = Daemon::start(dir.path(), &["--workers", "4"]);
        if round == 0 {
            for t in ["e1", "e2"] {
                let spec = json!({"name": t, "plugin": "echo"});
                d.expect(201, "POST", "/v1/tasks", Some(&spec));
            }
            for (name, kind, target) in [("all-load", "load.*", "e1"), ("ticks", "load.tick", "e2")] {
                let spec = json!({"name": name, "on": {"type": kind}, "targets": [{"task": target}]});
                d.expect(201, "POST", "/v1/triggers", Some(&spec));
            }
        }
        let acks = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let headers = format!(
            "authorization: Bearer {}\r\ncontent-type: application/json\r\n",
            d.token
        );
        let mut clients = Vec::new();
        for client in 0..4 {
            let (acks, stop, addr, headers) = (acks.clone(), stop.clone(), d.addr.clone(), headers.clone());
            clients.push(std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let id = format!("r{round}-c{client}-{n}");
                    let body =
                        json!({"specversion": "1.0", "id": id, "source": "/load", "type": "load.tick"});
                    match try_raw_http(&addr, "POST", "/v1/events", &headers, body.to_string().as_bytes()) {
                        Ok((202, text)) => {
                            let v: Value = serde_json::from_str(&text).unwrap();
                            acks.lock()
                                .unwrap()
                                .push((id, v["seq"].as_str().unwrap().to_string()));
                        }
                        _ => break, // the daemon is gone: not acknowledged
                    }
                }
            }));
        }
        wait_for_acks(&acks, "event", kill_after_ms);
        d.kill9();
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            c.join().expect("a client thread panicked");
        }
        acknowledged.extend(acks.lock().unwrap().iter().cloned());
    }

    let d = Daemon::start(dir.path(), &["--workers", "4"]);
    // Every acknowledged event is there, with its two runs.
    for (id, seq) in &acknowledged {
        let (status, e) = d.call("GET", &format!("/v1/events/{seq}"), None);
        assert_eq!(status, 200, "acknowledged event {id} is missing: {e}");
        assert_eq!(e["event"]["id"], id.as_str());
        assert_eq!(e["triggers"].as_array().unwrap().len(), 2, "{e}");
    }
    // Each stored event started exactly one run per trigger, and every run finishes.
    let deadline = Instant::now() + Duration::from_secs(120);
    for task in ["e1", "e2"] {
        let runs = loop {
            let runs = d.all_runs(&format!("task={task}"));
            if runs.iter().all(|r| r["status"] == "succeeded") {
                break runs;
            }
            assert!(Instant::now() < deadline, "runs of {task} never finished");
            std::thread::sleep(Duration::from_millis(100));
        };
        let mut per_event: HashMap<String, usize> = HashMap::new();
        for r in &runs {
            *per_event
                .entry(r["cause"]["event"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
        assert!(
            per_event.values().all(|n| *n == 1),
            "{task}: an event started two runs"
        );
        for (id, seq) in &acknowledged {
            assert!(
                per_event.contains_key(seq),
                "{task}: no run for acknowledged event {id}"
            );
        }
    }
    // Deduplication survived the kills: a resend is recognised.
    let (id, seq) = &acknowledged[0];
    let resend = json!({"specversion": "1.0", "id": id, "source": "/load", "type": "load.tick"});
    let (status, v) = d.call("POST", "/v1/events", Some(&resend));
    assert_eq!(
        (status, &v["duplicate"], &v["seq"]),
        (202, &json!(true), &json!(seq))
    );
}

/// Clients that hang up while their requests commit: every run they got committed
/// (manual runs, and runs of the events they posted) is still handed to the workers.
/// Before the commit ran on a task of its own, a request dropped mid-commit left its
/// runs durable but queued until the next start.
#[test]
fn runs_committed_for_clients_that_hung_up_still_run() {
    use std::io::Write;
    let data = tempfile::tempdir().unwrap();
    let d = Daemon::start(data.path(), &[]);
    d.create("/v1/tasks", json!({"name": "hang", "plugin": "echo"}));
    d.create(
        "/v1/triggers",
        json!({"name": "hang", "on": {"type": "hang.up"}, "targets": [{"task": "hang"}]}),
    );
    // Rounds of 64 connections, each sending one request and closing at once, the
    // close a little later each round so that some land while their commit is on its
    // way (requests closed before it commit nothing, those closed after it are
    // answered: both are fine).
    for round in 0..20u64 {
        let mut socks = Vec::new();
        for i in 0..64 {
            let Ok(mut s) = std::net::TcpStream::connect(&d.addr) else {
                continue;
            };
            let (path, body) = if i % 2 == 0 {
                ("/v1/tasks/hang/run", "{}".to_string())
            } else {
                let e = json!({"specversion": "1.0", "id": format!("{round}-{i}"),
                    "source": "/hang", "type": "hang.up"});
                ("/v1/events", e.to_string())
            };
            let req = format!(
                "POST {path} HTTP/1.1\r\nhost: sundial\r\nauthorization: Bearer {}\r\n\
                 content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                d.token,
                body.len()
            );
            let _ = s.write_all(req.as_bytes());
            socks.push(s);
        }
        std::thread::sleep(Duration::from_micros(round * 150));
        drop(socks);
    }
    // Whatever got committed runs to the end: nothing stays queued.
    // Done when there are runs, all succeeded, and their count held for a second (a
    // commit of a request that was hung up on may still be landing).
    let mut runs: Vec<Value>;
    let mut settled: Option<(usize, Instant)> = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        runs = d.all_runs("task=hang");
        if !runs.is_empty() && runs.iter().all(|r| r["status"] == "succeeded") {
            match settled {
                Some((n, since)) if n == runs.len() => {
                    if since.elapsed() >= Duration::from_secs(1) {
                        break;
                    }
                }
                _ => settled = Some((runs.len(), Instant::now())),
            }
        } else {
            settled = None;
        }
        if Instant::now() > deadline {
            let stuck: Vec<&Value> = runs.iter().filter(|r| r["status"] != "succeeded").collect();
            panic!(
                "{} of {} runs never finished: {:?}",
                stuck.len(),
                runs.len(),
                stuck.iter().map(|r| (&r["id"], &r["status"])).collect::<Vec<_>>()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!runs.is_empty(), "no request got as far as its commit");
    println!(
        "{} runs committed for clients that hung up, all finished",
        runs.len()
    );
}
