//! Load generator: sustained manual runs of the bundled `echo` plugin over HTTP against
//! a real `sundial serve` with durable commits.
//!
//! ```sh
//! cargo build --release -p sundial && cargo run --release -p sundial-tests --example loadgen -- 20000 32
//! ```
//!
//! Arguments: number of runs (default 20000), concurrent keep-alive connections
//! (default 32). Prints acknowledged runs/s, completed runs/s, how many mutations
//! shared one commit, and the CPU time the daemons (and PostgreSQL) used. Bounded in
//! count and time; talks to 127.0.0.1 only.
//!
//! `SUNDIAL_BENCH_STORE=postgres` runs the daemons on a fresh PostgreSQL database (on
//! the server at `SUNDIAL_TEST_PG`, default 127.0.0.1:5432; dropped at exit) and
//! `SUNDIAL_BENCH_NODES=N` starts N nodes on it, the connections spread over them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use sundial_tests::{KeepAlive as Conn, metric};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runs: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let conns: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(32);
    let setup = sundial_tests::cluster::Bench::start(&["--workers", "64"]);
    let daemon = setup.first();
    daemon.expect(
        201,
        "POST",
        "/v1/tasks",
        Some(&serde_json::json!({"name": "load", "plugin": "echo"})),
    );
    let before = setup.metrics_sum();
    let cpu_before = setup.cpu();

    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut clients = Vec::new();
    let nodes = setup.nodes();
    for c in 0..conns {
        let node = nodes[c % nodes.len()];
        let (next, addr, token) = (next.clone(), node.addr.clone(), node.token.clone());
        clients.push(std::thread::spawn(move || {
            let mut conn = Conn::open(&addr);
            let mut acked = 0usize;
            while next.fetch_add(1, Ordering::Relaxed) < runs {
                let (status, body) = conn.request("POST", "/v1/tasks/load/run", &token, None);
                assert_eq!(status, 202, "{body}");
                acked += 1;
            }
            acked
        }));
    }
    let acked: usize = clients.into_iter().map(|c| c.join().expect("client")).sum();
    let ack_time = started.elapsed();

    let deadline = Instant::now() + Duration::from_secs(300);
    let after = loop {
        let sum = setup.metrics_sum();
        if metric(&sum, "sundial_runs_finished_total") as usize >= acked || Instant::now() > deadline {
            break sum;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let done_time = started.elapsed();
    let finished = metric(&after, "sundial_runs_finished_total");
    let succeeded = metric(&after, "sundial_runs_finished_total{status=\"succeeded\"}");
    let commits =
        metric(&after, "sundial_store_commits_total") - metric(&before, "sundial_store_commits_total");
    let mutations =
        metric(&after, "sundial_store_mutations_total") - metric(&before, "sundial_store_mutations_total");
    let commit_secs = metric(&after, "sundial_store_commit_seconds_sum")
        - metric(&before, "sundial_store_commit_seconds_sum");
    println!(
        "runs acknowledged: {acked} in {:.2} s = {:.0} runs/s",
        ack_time.as_secs_f64(),
        acked as f64 / ack_time.as_secs_f64()
    );
    println!(
        "runs finished:     {finished} ({succeeded} succeeded) in {:.2} s = {:.0} runs/s end to end",
        done_time.as_secs_f64(),
        finished / done_time.as_secs_f64()
    );
    println!(
        "store: {commits} commits for {mutations} mutations = {:.1} mutations per commit, {:.2} ms average commit",
        mutations / commits.max(1.0),
        commit_secs * 1000.0 / commits.max(1.0)
    );
    let (nodes_cpu, pg_cpu) = setup.cpu();
    let nodes_cpu = nodes_cpu - cpu_before.0;
    let pg_cpu = pg_cpu - cpu_before.1;
    println!(
        "cpu: {} node(s) {:.2} s = {:.0} runs per node CPU-second; PostgreSQL {:.2} s = {:.0} µs per run",
        nodes.len(),
        nodes_cpu,
        finished / nodes_cpu.max(1e-9),
        pg_cpu,
        pg_cpu * 1e6 / finished.max(1.0)
    );
}
