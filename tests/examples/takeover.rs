//! Recovery time of a killed node's runs: two nodes on a fresh PostgreSQL database
//! (default lease 10 s), `N` slow runs executing on the first, which is SIGKILLed; each
//! run's retry starts on the other node. Prints kill → re-start per run (p50, p99, max)
//! beside the lease. Retries are due 100 ms after the take-over (the task's backoff).
//!
//! ```sh
//! cargo build --release -p sundial && \
//!   cargo run --release -p sundial-tests --example takeover -- 20 10s
//! ```

use serde_json::json;
use std::time::{Duration, Instant};
use sundial_tests::cluster::Cluster;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(20);
    let lease = args.get(2).cloned().unwrap_or_else(|| "10s".into());
    let mut c = Cluster::start(2, &["--run-lease", &lease, "--workers", "64"]);
    let d = c.node(0);
    d.install_hostile(json!({}));
    d.create(
        "/v1/tasks",
        json!({"name": "slow", "plugin": "hostile", "params": {"mode": "drip", "lines": 600, "ms": 100},
               "retry": {"max_attempts": 3, "initial_delay_ms": 100, "multiplier": 1.0, "jitter": 0.0}}),
    );
    let ids: Vec<String> = (0..n)
        .map(|_| {
            d.expect(202, "POST", "/v1/tasks/slow/run", Some(&json!({})))["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    // All running on node 0 (they were queued there and its workers are free).
    let deadline = Instant::now() + Duration::from_secs(60);
    while ids.iter().any(|id| c.owner(id) != Some(0)) {
        assert!(Instant::now() < deadline, "the runs did not all start on node 0");
        std::thread::sleep(Duration::from_millis(50));
    }
    let killed = chrono::Utc::now();
    c.kill(0);
    let other = c.node(1);
    let mut restarts = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    for id in &ids {
        loop {
            let run = other.expect(200, "GET", &format!("/v1/runs/{id}"), None);
            if let Some(second) = run["attempts"].as_array().and_then(|a| a.get(1)) {
                let at = chrono::DateTime::parse_from_rfc3339(second["started_at"].as_str().unwrap())
                    .unwrap()
                    .with_timezone(&chrono::Utc);
                restarts.push((at - killed).num_milliseconds() as f64 / 1000.0);
                break;
            }
            assert!(Instant::now() < deadline, "run {id} was never taken over");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    restarts.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pick = |p: f64| restarts[((restarts.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "lease {lease}: {n} runs of a killed node re-started on the other, kill -> re-start (s): p50 {:.2}  p99 {:.2}  max {:.2}",
        pick(0.5),
        pick(0.99),
        restarts.last().unwrap()
    );
}
