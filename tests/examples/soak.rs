//! Soak: a steady mixed load against a real `sundial serve` (release build) for a
//! bounded time, sampled every few seconds into a CSV: memory, data file size, request
//! latency percentiles and error counts over time. `scripts/soak.sh` runs it and plots
//! the CSV.
//!
//! ```sh
//! cargo build --release -p sundial && cargo run --release -p sundial-tests --example soak -- 600 docs/soak.csv
//! ```
//!
//! Arguments: seconds (default 600), CSV path (default `soak.csv`). The load, each from
//! its own keep-alive connection at a fixed pace: 40 events/s (each matching a trigger
//! that starts a run and queues a webhook delivery to a receiver on loopback), 20
//! manual runs/s, 10 reads/s (run list, event list, one run), and a schedule firing a
//! run every second. Retention is tightened (1 000 runs per task, 20 000 events, every
//! 10 s) so the file reaches its steady size within the soak.

use serde_json::json;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use sundial_tests::{Daemon, KeepAlive, Receiver, Reply, rss_kib};

/// Seconds between samples.
const SAMPLE_EVERY: u64 = 5;

/// Latencies (µs) and errors of the current sample interval.
#[derive(Default)]
struct Interval {
    latencies: Vec<u64>,
    errors: u64,
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// What every paced client shares: the daemon's address and token, the stop flag and
/// the sample interval its latencies go to.
struct Load {
    addr: String,
    token: String,
    stop: Arc<AtomicBool>,
    sink: Arc<Mutex<Interval>>,
}

/// A client that sends `request()` every `period` until `stop`.
fn paced(
    load: &Load,
    period: Duration,
    request: impl Fn(u64) -> (&'static str, String, Option<String>) + Send + 'static,
) -> std::thread::JoinHandle<()> {
    let (addr, token) = (load.addr.clone(), load.token.clone());
    let (stop, sink) = (load.stop.clone(), load.sink.clone());
    std::thread::spawn(move || {
        let mut conn = KeepAlive::open(&addr);
        let start = Instant::now();
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let due = start + period * n as u32;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let (method, path, body) = request(n);
            let sent = Instant::now();
            let (status, _) = conn.request(method, &path, &token, body.as_deref());
            let took = sent.elapsed().as_micros() as u64;
            let mut s = sink.lock().unwrap();
            s.latencies.push(took);
            if !(200..300).contains(&status) {
                s.errors += 1;
            }
            n += 1;
        }
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(600);
    let out = args.get(2).cloned().unwrap_or_else(|| "soak.csv".into());
    let dir = tempfile::tempdir().expect("temp dir");
    let d = Daemon::start(
        dir.path(),
        &[
            "--allow-loopback",
            "--workers",
            "8",
            "--keep-runs",
            "1000",
            "--keep-events",
            "20000",
            "--prune-interval",
            "10s",
        ],
    );
    let rx = Receiver::start(Vec::new(), Reply::Status(204, Vec::new()));
    d.create("/v1/tasks", json!({"name": "on-event", "plugin": "echo"}));
    d.create("/v1/tasks", json!({"name": "manual", "plugin": "echo"}));
    d.create("/v1/tasks", json!({"name": "tick", "plugin": "echo"}));
    d.create(
        "/v1/schedules",
        json!({"name": "every-second", "rule": {"cron": "* * * * * *"}}),
    );
    d.attach("every-second", "tick");
    d.create("/v1/webhooks", json!({"name": "sink", "url": rx.url("/sink")}));
    d.create(
        "/v1/triggers",
        json!({"name": "soak", "on": {"type": "soak.event"}, "targets": [{"task": "on-event"}, {"webhook": "sink"}]}),
    );

    let stop = Arc::new(AtomicBool::new(false));
    let sink = Arc::new(Mutex::new(Interval::default()));
    let last_run = Arc::new(Mutex::new(String::new()));
    let events_sent = Arc::new(AtomicU64::new(0));
    let load = Load {
        addr: d.addr.clone(),
        token: d.token.clone(),
        stop: stop.clone(),
        sink: sink.clone(),
    };
    let mut clients = Vec::new();
    {
        let sent = events_sent.clone();
        clients.push(paced(&load, Duration::from_millis(25), move |n| {
            sent.fetch_add(1, Ordering::Relaxed);
            let event = json!({"specversion": "1.0", "id": format!("soak-{n}"), "source": "/soak",
                                   "type": "soak.event", "data": {"n": n, "note": "x".repeat(200)}});
            ("POST", "/v1/events".into(), Some(event.to_string()))
        }));
    }
    clients.push(paced(&load, Duration::from_millis(50), |n| {
        let body = json!({"params": {"n": n}}).to_string();
        ("POST", "/v1/tasks/manual/run".into(), Some(body))
    }));
    {
        let last = last_run.clone();
        clients.push(paced(&load, Duration::from_millis(100), move |n| match n % 3 {
            0 => ("GET", "/v1/runs?limit=50".into(), None),
            1 => ("GET", "/v1/events?limit=50".into(), None),
            _ => {
                let id = last.lock().unwrap().clone();
                if id.is_empty() {
                    ("GET", "/v1/tasks".into(), None)
                } else {
                    ("GET", format!("/v1/runs/{id}"), None)
                }
            }
        }));
    }

    let db = dir.path().join("sundial.redb");
    let mut csv = std::fs::File::create(&out).expect("create the CSV");
    writeln!(
        csv,
        "elapsed_s,rss_mib,db_mib,requests,errors,p50_ms,p99_ms,max_ms,events_sent,deliveries_received,runs_total"
    )
    .unwrap();
    let started = Instant::now();
    let mut all: Vec<u64> = Vec::new();
    let (mut errors_total, mut max_rss) = (0u64, 0u64);
    let mut first_rss = None;
    let mut tick = 1;
    while started.elapsed() < Duration::from_secs(seconds) {
        let next = started + Duration::from_secs(SAMPLE_EVERY * tick);
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        tick += 1;
        let interval = std::mem::take(&mut *sink.lock().unwrap());
        let mut lat = interval.latencies;
        lat.sort_unstable();
        let rss = rss_kib(d.pid());
        max_rss = max_rss.max(rss);
        first_rss.get_or_insert(rss);
        errors_total += interval.errors;
        let size = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
        let (_, runs) = d.call("GET", "/v1/runs?limit=1", None);
        if let Some(id) = runs["runs"][0]["id"].as_str() {
            *last_run.lock().unwrap() = id.to_string();
        }
        let runs_total = finished_runs(&d);
        let line = format!(
            "{},{:.1},{:.1},{},{},{:.2},{:.2},{:.2},{},{},{}",
            started.elapsed().as_secs(),
            rss as f64 / 1024.0,
            size as f64 / 1048576.0,
            lat.len(),
            interval.errors,
            percentile(&lat, 0.50),
            percentile(&lat, 0.99),
            lat.last().copied().unwrap_or(0) as f64 / 1000.0,
            events_sent.load(Ordering::Relaxed),
            rx.count(),
            runs_total,
        );
        println!("{line}");
        writeln!(csv, "{line}").unwrap();
        all.extend(lat);
    }
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().unwrap();
    }
    all.sort_unstable();
    println!(
        "soak: {} s, {} requests, {} errors, latency p50 {:.2} ms p99 {:.2} ms p99.9 {:.2} ms max {:.2} ms, \
         VmRSS first sample {:.1} MiB max {:.1} MiB, data file {:.1} MiB, {} deliveries received",
        seconds,
        all.len(),
        errors_total,
        percentile(&all, 0.50),
        percentile(&all, 0.99),
        percentile(&all, 0.999),
        all.last().copied().unwrap_or(0) as f64 / 1000.0,
        first_rss.unwrap_or(0) as f64 / 1024.0,
        max_rss as f64 / 1024.0,
        std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0) as f64 / 1048576.0,
        rx.count(),
    );
    assert!(!d.stderr_text().contains("panicked"), "the daemon panicked");
}

/// Runs finished so far (sum of `sundial_runs_finished_total`).
fn finished_runs(d: &Daemon) -> u64 {
    let text = sundial_tests::raw_http(
        &d.addr,
        "GET",
        "/metrics",
        &format!("authorization: Bearer {}\r\n", d.token),
        b"",
    )
    .1;
    sundial_tests::metric(&text, "sundial_runs_finished_total") as u64
}
