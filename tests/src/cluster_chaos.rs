//! Chaos for a cluster: three nodes on a PostgreSQL server of their own, under mixed
//! load (events whose trigger starts a run and queues a webhook delivery to a loopback
//! receiver, manual runs, a per-second schedule), while a random node is SIGKILLed and
//! started again every `kill_every` and PostgreSQL is crashed and restarted every
//! `pg_restart_every`. Then everything settles and the invariants are checked: every
//! acknowledged event started its run once and its delivery reached the receiver,
//! every acknowledged manual run finished, no slot fired twice, and every run's record
//! is consistent (its attempts closed, none recorded by a node that had lost it).
//!
//! The bounded version runs in the suite (`tests/tests/cluster.rs`); the ten-minute
//! one is `scripts/chaos-cluster.sh`.

use crate::cluster::Cluster;
use crate::pg::PrivateServer;
use crate::{Receiver, Reply, try_raw_http};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long, and how rough.
#[derive(Debug, Clone)]
pub struct Chaos {
    /// How long the load and the faults go on.
    pub duration: Duration,
    /// A random node is killed (and started again) this often.
    pub kill_every: Duration,
    /// PostgreSQL is crashed and restarted this often.
    pub pg_restart_every: Duration,
}

/// What happened, and what was checked.
#[derive(Debug, Default)]
pub struct Report {
    /// Events acknowledged (each must have started one run).
    pub events: usize,
    /// Manual runs acknowledged (each must have finished).
    pub runs: usize,
    /// Deliveries acknowledged (each must have reached the receiver).
    pub deliveries: usize,
    /// Schedule slots fired (none twice).
    pub slots: usize,
    /// Requests refused (503) or cut (a node killed) and so not acknowledged.
    pub refused: usize,
    /// Nodes killed.
    pub kills: usize,
    /// PostgreSQL crashes.
    pub pg_restarts: usize,
    /// Completions refused as stale (a node that had lost a lease), from the logs.
    pub stale_refused: usize,
    /// Runs retried because their node died or lost its lease.
    pub taken_over: usize,
    /// Time from the end of the load until everything had settled.
    pub settle: Duration,
}

/// The live nodes' (address, token), for the load threads.
type Targets = Arc<Mutex<Vec<Option<(String, String)>>>>;

#[derive(Default)]
struct Acked {
    events: HashSet<String>,
    runs: HashSet<String>,
    deliveries: HashSet<String>,
    refused: usize,
}

fn targets(c: &Cluster) -> Vec<Option<(String, String)>> {
    (0..c.len())
        .map(|i| Some((c.node(i).addr.clone(), c.node(i).token.clone())))
        .collect()
}

fn post(target: &Option<(String, String)>, path: &str, body: &Value) -> Option<Value> {
    let (addr, token) = target.as_ref()?;
    let headers = format!("authorization: Bearer {token}\r\ncontent-type: application/json\r\n");
    match try_raw_http(addr, "POST", path, &headers, body.to_string().as_bytes()) {
        Ok((status, text)) if (200..300).contains(&status) => serde_json::from_str(&text).ok(),
        _ => None,
    }
}

/// Run the chaos; panics (naming what) when an invariant does not hold.
pub fn run(chaos: &Chaos) -> Report {
    let server = PrivateServer::start();
    crate::pg::psql_at(&server.url("postgres"), "CREATE DATABASE sundial");
    let receiver = Receiver::start(Vec::new(), Reply::Status(200, Vec::new()));
    let mut c = Cluster::start_on(
        server.url("sundial"),
        3,
        &["--run-lease", "2s", "--workers", "8", "--allow-loopback"],
    );
    let d = c.node(0);
    let retry = json!({"max_attempts": 100, "initial_delay_ms": 50, "multiplier": 1.0, "max_delay_ms": 50, "jitter": 0.0});
    let keep = json!({"keep_last": 1000000, "max_age_days": 30});
    for task in ["on-event", "manual", "tick"] {
        d.create(
            "/v1/tasks",
            json!({"name": task, "plugin": "echo", "retry": retry, "retention": keep}),
        );
    }
    d.create(
        "/v1/schedules",
        json!({"name": "every-second", "rule": {"cron": "* * * * * *"}}),
    );
    d.attach("every-second", "tick");
    d.create(
        "/v1/webhooks",
        json!({"name": "sink", "url": receiver.url("/hook"),
               "retry": {"max_attempts": 20, "initial_delay_ms": 100, "multiplier": 2.0, "max_delay_ms": 2000, "jitter": 0.0}}),
    );
    d.create(
        "/v1/triggers",
        json!({"name": "on-ping", "on": {"type": "chaos.ping"}, "targets": [{"task": "on-event"}, {"webhook": "sink"}]}),
    );
    // Every node knows the trigger (notices, else within 5 s).
    std::thread::sleep(Duration::from_secs(6));

    let live: Targets = Arc::new(Mutex::new(targets(&c)));
    let acked = Arc::new(Mutex::new(Acked::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for worker in 0..2 {
        let (live, acked, stop) = (live.clone(), acked.clone(), stop.clone());
        load.push(std::thread::spawn(move || {
            let mut n = 0usize;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let target = {
                    let live = live.lock().unwrap();
                    live[(n + worker) % live.len()].clone()
                };
                if worker == 0 {
                    let id = format!("e{n}");
                    let e = json!({"specversion": "1.0", "id": id, "source": "/chaos", "type": "chaos.ping"});
                    match post(&target, "/v1/events", &e) {
                        Some(answer) => {
                            let mut acked = acked.lock().unwrap();
                            acked.events.insert(id);
                            for t in answer["triggers"].as_array().into_iter().flatten() {
                                for d in t["deliveries"].as_array().into_iter().flatten() {
                                    acked
                                        .deliveries
                                        .insert(d.as_str().unwrap_or_default().to_string());
                                }
                            }
                        }
                        None => acked.lock().unwrap().refused += 1,
                    }
                } else {
                    match post(&target, "/v1/tasks/manual/run", &json!({})) {
                        Some(answer) => {
                            let id = answer["id"].as_str().unwrap_or_default().to_string();
                            acked.lock().unwrap().runs.insert(id);
                        }
                        None => acked.lock().unwrap().refused += 1,
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }));
    }

    let mut report = Report::default();
    let started = Instant::now();
    let mut next_kill = started + chaos.kill_every;
    let mut next_pg = started + chaos.pg_restart_every;
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15 ^ started.elapsed().as_nanos() as u64;
    while started.elapsed() < chaos.duration {
        std::thread::sleep(Duration::from_millis(100));
        if Instant::now() >= next_kill {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let i = (seed % c.len() as u64) as usize;
            live.lock().unwrap()[i] = None;
            c.restart(i);
            live.lock().unwrap()[i] = Some((c.node(i).addr.clone(), c.node(i).token.clone()));
            report.kills += 1;
            next_kill = Instant::now() + chaos.kill_every;
        }
        if Instant::now() >= next_pg {
            server.crash();
            std::thread::sleep(Duration::from_secs(2));
            server.up();
            report.pg_restarts += 1;
            next_pg = Instant::now() + chaos.pg_restart_every;
        }
    }
    stop.store(true, Ordering::SeqCst);
    for l in load {
        l.join().expect("load thread");
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    report.events = acked.events.len();
    report.runs = acked.runs.len();
    report.deliveries = acked.deliveries.len();
    report.refused = acked.refused;

    // Settle: every run and delivery finished.
    let settling = Instant::now();
    let deadline = settling + Duration::from_secs(300);
    let (runs, deliveries) = loop {
        let d = c.any();
        // The database may still be coming back from the last crash.
        if d.call("GET", "/v1/runs?limit=1", None).0 != 200 {
            assert!(Instant::now() < deadline, "the nodes never answered again");
            std::thread::sleep(Duration::from_millis(500));
            continue;
        }
        let runs = d.all_runs("");
        let deliveries = d.all_pages("/v1/deliveries?webhook=sink", "deliveries");
        let open = runs
            .iter()
            .filter(|r| matches!(r["status"].as_str(), Some("queued" | "running")))
            .count()
            + deliveries.iter().filter(|x| x["status"] == "queued").count();
        if open == 0 {
            break (runs, deliveries);
        }
        assert!(
            Instant::now() < deadline,
            "{open} runs or deliveries never finished"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    report.settle = settling.elapsed();

    // Events: one run each.
    let mut by_event: HashMap<&str, usize> = HashMap::new();
    let mut slots: HashSet<&str> = HashSet::new();
    let by_id: HashMap<&str, &Value> = runs.iter().map(|r| (r["id"].as_str().unwrap_or(""), r)).collect();
    for run in &runs {
        let id = run["id"].as_str().unwrap_or("");
        if run["task_name"] == "on-event" {
            *by_event
                .entry(run["event"]["id"].as_str().unwrap_or(""))
                .or_default() += 1;
        }
        if run["cause"]["kind"] == "schedule" {
            let slot = run["cause"]["slot"].as_str().unwrap_or("");
            assert!(slots.insert(slot), "slot {slot} fired twice");
        }
        // The record is consistent: its attempts numbered 1..=attempt, all closed.
        let attempts = run["attempts"].as_array().map(Vec::len).unwrap_or(0);
        assert_eq!(run["attempt"], json!(attempts), "run {id}: {run}");
        for a in run["attempts"].as_array().into_iter().flatten() {
            assert!(
                a["finished_at"].is_string(),
                "run {id} has an open attempt: {run}"
            );
        }
        if attempts > 1 {
            report.taken_over += 1;
        }
    }
    report.slots = slots.len();
    for id in &acked.events {
        let n = by_event.get(id.as_str()).copied().unwrap_or(0);
        assert_eq!(n, 1, "acknowledged event {id} started {n} runs");
    }
    for id in &acked.runs {
        let run = by_id
            .get(id.as_str())
            .unwrap_or_else(|| panic!("acknowledged run {id} is missing"));
        assert_eq!(run["status"], "succeeded", "run {id}: {run}");
    }
    let delivered: HashSet<&str> = deliveries
        .iter()
        .filter(|x| x["status"] == "delivered")
        .map(|x| x["id"].as_str().unwrap_or(""))
        .collect();
    let reached: HashSet<String> = receiver
        .requests()
        .iter()
        .filter_map(|r| r.header("webhook-id").map(str::to_string))
        .collect();
    for id in &acked.deliveries {
        assert!(
            delivered.contains(id.as_str()),
            "acknowledged delivery {id} was not delivered"
        );
        assert!(
            reached.contains(id),
            "delivery {id} is recorded delivered but never reached the receiver"
        );
    }
    report.stale_refused = c
        .live()
        .map(|d| d.stderr_text().matches("no longer this node's").count())
        .sum();
    report
}
