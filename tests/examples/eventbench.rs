//! Event benchmark against a real `sundial serve` with durable commits and 1 000
//! triggers defined: ingest throughput (one event per request, and batches), then
//! event-to-run-start latency at a steady rate.
//!
//! ```sh
//! cargo build --release -p sundial && \
//!   cargo run --release -p sundial-tests --example eventbench -- 50000 200000 2000 10
//! ```
//!
//! Arguments: events sent one per request (default 50000, over 32 keep-alive
//! connections); events sent in batches of 100 (default 200000, over 8 connections);
//! the steady rate in events/s for the latency phase (default 2000); its length in
//! seconds (default 10). The ingest events match no trigger (pure ingest); each
//! latency event matches one trigger whose task runs the bundled `echo` plugin.
//! Latency is the run's `started_at` minus the moment the client sent the event.
//!
//! `SUNDIAL_BENCH_STORE=postgres` and `SUNDIAL_BENCH_NODES=N` run it against N nodes on
//! a fresh PostgreSQL database, the connections spread over them (see `loadgen`).

use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use sundial_tests::cluster::Bench;
use sundial_tests::metric;
use sundial_tests::{Daemon, KeepAlive};

fn store_stats(b: &Bench) -> (f64, f64) {
    let text = b.metrics_sum();
    (
        metric(&text, "sundial_store_commits_total"),
        metric(&text, "sundial_store_mutations_total"),
    )
}

/// Send `total` events in requests of `batch` over `conns` connections; returns events/s.
fn ingest(b: &Bench, label: &str, total: usize, batch: usize, conns: usize) -> f64 {
    let (c0, m0) = store_stats(b);
    let nodes: Vec<&Daemon> = b.nodes();
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut clients = Vec::new();
    for c in 0..conns {
        let d = nodes[c % nodes.len()];
        let (next, addr, token, label) = (next.clone(), d.addr.clone(), d.token.clone(), label.to_string());
        clients.push(std::thread::spawn(move || {
            let mut conn = KeepAlive::open(&addr);
            loop {
                let first = next.fetch_add(batch, Ordering::Relaxed);
                if first >= total {
                    break;
                }
                let events: Vec<Value> = (first..(first + batch).min(total))
                    .map(|i| {
                        json!({"specversion": "1.0", "id": format!("{label}-{i}"), "source": "/bench",
                               "type": "bench.ingest", "subject": format!("item-{}", i % 100), "data": {"n": i}})
                    })
                    .collect();
                let body = if batch == 1 {
                    events[0].to_string()
                } else {
                    Value::Array(events).to_string()
                };
                let (status, text) = conn.request("POST", "/v1/events", &token, Some(&body));
                assert_eq!(status, 202, "{text}");
            }
        }));
    }
    for c in clients {
        c.join().expect("client");
    }
    let secs = started.elapsed().as_secs_f64();
    let (c1, m1) = store_stats(b);
    let rate = total as f64 / secs;
    println!(
        "{label}: {total} events in {secs:.2} s = {rate:.0} events/s ({} commits, {:.1} mutations per commit)",
        c1 - c0,
        (m1 - m0) / (c1 - c0).max(1.0)
    );
    rate
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let (singles, batched, rate, seconds) = (arg(1, 50_000), arg(2, 200_000), arg(3, 2000), arg(4, 10));
    let flags = [
        "--workers",
        "64",
        "--keep-runs",
        "100000000",
        "--keep-events",
        "100000000",
        "--prune-interval",
        "3600s",
    ];
    let bench = Bench::start(&flags);
    let d = bench.first();
    d.create("/v1/tasks", json!({"name": "hit", "plugin": "echo"}));
    // 1 000 triggers: 999 for other event types (exact, globs, filters), one that the
    // latency events match.
    let defining = Instant::now();
    for i in 0..1000 {
        let on = match i % 3 {
            _ if i == 500 => json!({"type": "bench.hit"}),
            0 => json!({"type": format!("app{i}.event")}),
            1 => json!({"type": format!("svc{i}.*"), "subject": "x*"}),
            _ => json!({"type": format!("job{i}.done"), "filter": {"path": "data.ok", "eq": true}}),
        };
        let spec = json!({"name": format!("t{i}"), "on": on, "targets": [{"task": "hit"}]});
        d.expect(201, "POST", "/v1/triggers", Some(&spec));
    }
    println!(
        "1000 triggers defined in {:.2} s (one API call each)",
        defining.elapsed().as_secs_f64()
    );

    if bench.nodes().len() > 1 {
        // The other nodes take the triggers up on notice; within 5 s in any case.
        std::thread::sleep(Duration::from_secs(6));
    }
    let cpu_before = bench.cpu();
    ingest(&bench, "single", singles, 1, 32);
    ingest(&bench, "batch-100", batched, 100, 8);
    let cpu_after = bench.cpu();
    println!(
        "cpu during ingest: node(s) {:.2} s, PostgreSQL {:.2} s",
        cpu_after.0 - cpu_before.0,
        cpu_after.1 - cpu_before.1
    );

    // Latency at a steady rate: 8 senders, each on its own schedule.
    let senders = 8;
    let per_sender = rate as f64 / senders as f64;
    let total_per_sender = (per_sender * seconds as f64) as usize;
    let mut threads = Vec::new();
    let nodes = bench.nodes();
    for s in 0..senders {
        let node = nodes[s % nodes.len()];
        let (addr, token) = (node.addr.clone(), node.token.clone());
        threads.push(std::thread::spawn(move || {
            let mut conn = KeepAlive::open(&addr);
            let start = Instant::now();
            let mut sent = Vec::with_capacity(total_per_sender);
            for k in 0..total_per_sender {
                let due = start + Duration::from_secs_f64(k as f64 / per_sender);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let id = format!("lat-{s}-{k}");
                let body = json!({"specversion": "1.0", "id": id, "source": "/bench", "type": "bench.hit"})
                    .to_string();
                let at = chrono::Utc::now();
                let (status, text) = conn.request("POST", "/v1/events", &token, Some(&body));
                assert_eq!(status, 202, "{text}");
                sent.push((id, at));
            }
            sent
        }));
    }
    let sent: std::collections::HashMap<String, chrono::DateTime<chrono::Utc>> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("sender"))
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let mut late = Vec::new();
    let mut not_started = 0;
    for run in d.all_runs("task=hit") {
        let Some(id) = run["event"]["id"].as_str() else {
            continue;
        };
        let Some(at) = sent.get(id) else { continue };
        match run["started_at"].as_str() {
            Some(s) => {
                let started = chrono::DateTime::parse_from_rfc3339(s).expect("started_at");
                late.push(
                    (started.with_timezone(&chrono::Utc) - *at)
                        .num_microseconds()
                        .unwrap_or(0) as f64
                        / 1000.0,
                );
            }
            None => not_started += 1,
        }
    }
    late.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "latency at {rate} events/s for {seconds} s: {} runs ({not_started} not started after 2 s); event sent -> run start (ms): p50 {:.1}  p90 {:.1}  p99 {:.1}  max {:.1}",
        late.len(),
        percentile(&late, 0.5),
        percentile(&late, 0.9),
        percentile(&late, 0.99),
        late.last().copied().unwrap_or(f64::NAN)
    );
    for (i, node) in bench.nodes().iter().enumerate() {
        let log = node.stderr_text();
        let troubles: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .collect();
        if !troubles.is_empty() {
            println!(
                "node {i}: {} warnings or errors, the first: {:?}",
                troubles.len(),
                &troubles[..troubles.len().min(3)]
            );
        }
    }
}
