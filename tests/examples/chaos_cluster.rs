//! The cluster chaos run for as long as asked (`sundial_tests::cluster_chaos`): three
//! nodes on a PostgreSQL server of their own, mixed load, a random node SIGKILLed every
//! few seconds, PostgreSQL crashed and restarted every minute; then every invariant is
//! checked and the figures printed.
//!
//! ```sh
//! scripts/chaos-cluster.sh            # 10 minutes, a kill every 5 s, PostgreSQL every 60 s
//! cargo run --release -p sundial-tests --example chaos_cluster -- MINUTES KILL_S PG_S
//! ```

use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, default: f64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let chaos = sundial_tests::cluster_chaos::Chaos {
        duration: Duration::from_secs_f64(arg(1, 10.0) * 60.0),
        kill_every: Duration::from_secs_f64(arg(2, 5.0)),
        pg_restart_every: Duration::from_secs_f64(arg(3, 60.0)),
    };
    println!("chaos: {chaos:?}");
    let started = Instant::now();
    let report = sundial_tests::cluster_chaos::run(&chaos);
    println!(
        "all invariants held after {:.0} s:\n  acknowledged: {} events, {} manual runs, {} deliveries; {} slots fired, none twice\n  \
         lost: 0 events, 0 runs, 0 deliveries; duplicate slots: 0\n  faults: {} nodes killed, {} PostgreSQL crashes; {} requests refused or cut (not acknowledged)\n  \
         {} runs retried after their node died or lost its lease; {} stale completions refused (in the logs of the nodes alive at the end)\n  \
         settled {:.1} s after the load stopped",
        started.elapsed().as_secs_f64(),
        report.events,
        report.runs,
        report.deliveries,
        report.slots,
        report.kills,
        report.pg_restarts,
        report.refused,
        report.taken_over,
        report.stale_refused,
        report.settle.as_secs_f64()
    );
}
