//! Cluster mode: three `sundial serve` nodes on loopback sharing one PostgreSQL
//! database (a fresh one per test), each with its own data directory, killed with
//! SIGKILL, paused with SIGSTOP. Leases are 2 s here (10 s by default) to keep the
//! tests short; nothing is timed, the tests wait for outcomes.

use serde_json::{Value, json};
use sundial_tests::cluster::Cluster;
use sundial_tests::{Daemon, pg, wait_until};

/// The lease the nodes run with.
const LEASE: &str = "2s";

/// The nodes' settings here.
const NODE: &[&str] = &["--run-lease", LEASE, "--workers", "4"];

fn run(d: &Daemon, id: &str) -> Value {
    d.expect(200, "GET", &format!("/v1/runs/{id}"), None)
}

/// Start a manual run of `task` on node `d` without waiting; its id.
fn start(d: &Daemon, task: &str) -> String {
    let v = d.expect(202, "POST", &format!("/v1/tasks/{task}/run"), Some(&json!({})));
    v["id"].as_str().expect("run id").to_string()
}

fn slow_task(d: &Daemon, name: &str, lines: u32) {
    d.install_hostile(json!({}));
    d.create(
        "/v1/tasks",
        json!({"name": name, "plugin": "hostile", "params": {"mode": "drip", "lines": lines, "ms": 100},
               "retry": {"max_attempts": 3, "initial_delay_ms": 100, "jitter": 0.0}}),
    );
}

/// Wait until node `c.node(i)` owns run `id` while it runs; the node's index.
fn running_on(c: &Cluster, id: &str) -> usize {
    let mut owner = None;
    wait_until(&format!("run {id} running"), 60, || {
        owner = c.owner(id);
        owner.is_some() && run(c.any(), id)["status"] == "running"
    });
    owner.unwrap()
}

#[test]
fn a_per_second_schedule_fires_each_slot_once_while_nodes_are_killed() {
    let mut c = Cluster::start(3, NODE);
    let d = c.node(0);
    d.create("/v1/tasks", json!({"name": "tick", "plugin": "echo"}));
    d.create(
        "/v1/schedules",
        json!({"name": "every-second", "rule": {"cron": "* * * * * *"}}),
    );
    d.attach("every-second", "tick");
    // Kill a node (round robin) every couple of seconds and start it again.
    for round in 0..8 {
        std::thread::sleep(std::time::Duration::from_millis(1500));
        c.restart(round % 3);
    }
    std::thread::sleep(std::time::Duration::from_secs(3));
    let fired = c.any().fired("tick");
    let mut unique = fired.clone();
    unique.dedup();
    assert_eq!(unique.len(), fired.len(), "a slot fired twice: {fired:?}");
    assert!(fired.len() >= 10, "slots fired: {fired:?}");
    // With at least two nodes up at every moment no slot is missed.
    for pair in fired.windows(2) {
        assert_eq!(
            (pair[1] - pair[0]).num_seconds(),
            1,
            "a slot is missing between {} and {}",
            pair[0],
            pair[1]
        );
    }
}

#[test]
fn the_runs_of_a_killed_node_are_taken_over_and_finish_once() {
    let mut c = Cluster::start(3, NODE);
    slow_task(c.node(0), "slow", 30);
    let ids: Vec<String> = (0..3).map(|i| start(c.node(i), "slow")).collect();
    let victim = running_on(&c, &ids[0]);
    c.kill(victim);
    let survivor = (0..3).find(|&i| i != victim).unwrap();
    let mut done = Vec::new();
    wait_until("every run finished", 120, || {
        done = ids.iter().map(|id| run(c.node(survivor), id)).collect();
        done.iter().all(|r| r["finished_at"].is_string())
    });
    for r in &done {
        assert_eq!(r["status"], "succeeded", "{r}");
    }
    // The first run's attempt on the killed node was closed by the node that took it
    // over, and its retry ran once.
    let first = &done[0];
    assert_eq!(first["attempt"], 2, "{first}");
    let attempts = first["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{first}");
    let why = attempts[0]["error"].to_string();
    assert!(why.contains("stopped renewing its lease"), "{why}");
}

#[test]
fn a_paused_node_cannot_record_a_stale_completion() {
    let mut c = Cluster::start(2, NODE);
    slow_task(c.node(0), "slow", 40);
    let id = start(c.node(0), "slow");
    let paused = running_on(&c, &id);
    let pid = c.node(paused).pid() as i32;
    // SAFETY: signals to a child process this test started.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let other = 1 - paused;
    wait_until("the run retried elsewhere and finished", 120, || {
        run(c.node(other), &id)["status"] == "succeeded"
    });
    let settled = run(c.node(other), &id);
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    // The paused node wakes up with its attempt: it finds its lease gone and stops, or
    // finishes and is refused. Either way the record stays the retry's.
    wait_until("the woken node gave the run up", 60, || {
        let text = c.node(paused).stderr_text();
        text.contains("no longer this node's")
            || text.contains("lost its lease")
            || text.contains("stopping the run here")
    });
    std::thread::sleep(std::time::Duration::from_secs(1));
    let after = run(c.node(other), &id);
    assert_eq!(after, settled, "the paused node changed the record");
    assert_eq!(after["attempt"], 2, "{after}");
    c.kill(paused);
}

#[test]
fn events_posted_to_different_nodes_start_their_runs_once() {
    let c = Cluster::start(3, NODE);
    let d = c.node(0);
    d.create("/v1/tasks", json!({"name": "on-ping", "plugin": "echo"}));
    d.create(
        "/v1/triggers",
        json!({"name": "ping", "on": {"type": "cluster.ping"}, "targets": [{"task": "on-ping"}]}),
    );
    let event =
        |id: &str| json!({"specversion": "1.0", "id": id, "source": "/cluster", "type": "cluster.ping"});
    // A trigger made on one node reaches the others' indexes on notice, and within 5 s
    // whatever happens to notices (docs/cluster.md). A probe trigger made after it shows
    // when a node has taken both up: each reload reads every trigger at once.
    d.create("/v1/tasks", json!({"name": "probe", "plugin": "echo"}));
    d.create(
        "/v1/triggers",
        json!({"name": "probe", "on": {"type": "cluster.probe"}, "targets": [{"task": "probe"}]}),
    );
    for i in 0..3 {
        let mut n = 0;
        wait_until(&format!("node {i} routing with the new triggers"), 30, || {
            n += 1;
            let probe = json!({"specversion": "1.0", "id": format!("probe-{i}-{n}"),
                "source": "/cluster", "type": "cluster.probe"});
            let (status, v) = c.node(i).call("POST", "/v1/events", Some(&probe));
            assert_eq!(status, 202, "{v}");
            v["triggers"].as_array().is_some_and(|t| !t.is_empty())
        });
    }
    // The same event to every node at once: one run.
    std::thread::scope(|s| {
        for i in 0..3 {
            let node = c.node(i);
            let e = event("same");
            s.spawn(move || {
                let (status, v) = node.call("POST", "/v1/events", Some(&e));
                assert_eq!(status, 202, "{v}");
            });
        }
    });
    // Thirty different events spread over the nodes: thirty runs.
    for n in 0..30 {
        let (status, v) = c
            .node(n % 3)
            .call("POST", "/v1/events", Some(&event(&format!("e{n}"))));
        assert_eq!(status, 202, "{v}");
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let runs = c.any().all_runs("task=on-ping");
        if runs.len() >= 31 && runs.iter().all(|r| r["status"] == "succeeded") {
            break;
        }
        if std::time::Instant::now() > deadline {
            let statuses: Vec<String> = runs
                .iter()
                .map(|r| format!("{} {} on {}", r["event"]["id"], r["status"], r["node"]))
                .collect();
            let (_, events) = c
                .any()
                .call("GET", "/v1/events?type=cluster.ping&limit=100", None);
            panic!("timed out after 60 s waiting for 31 runs finished; runs: {statuses:?}; events: {events}");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_secs(1));
    let runs = c.any().all_runs("task=on-ping");
    assert_eq!(runs.len(), 31, "one run per event");
    let mut ids: Vec<&str> = runs
        .iter()
        .map(|r| r["event"]["id"].as_str().unwrap_or(""))
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 31, "each event started one run");
}

#[test]
fn postgresql_restarted_mid_load_answers_503_recovers_and_loses_nothing_acknowledged() {
    let server = pg::PrivateServer::start();
    pg::psql_at(&server.url("postgres"), "CREATE DATABASE sundial");
    let c = Cluster::start_on(server.url("sundial"), 2, NODE);
    let d = c.node(0);
    d.create("/v1/tasks", json!({"name": "on-load", "plugin": "echo"}));
    d.create(
        "/v1/triggers",
        json!({"name": "load", "on": {"type": "load.ping"}, "targets": [{"task": "on-load"}]}),
    );
    // The other node takes the trigger up on notice, at most 5 s later by polling.
    std::thread::sleep(std::time::Duration::from_secs(6));
    let stop = std::sync::atomic::AtomicBool::new(false);
    let acked = std::sync::Mutex::new(Vec::<String>::new());
    let refused = std::sync::atomic::AtomicUsize::new(0);
    let after_restart = std::sync::atomic::AtomicUsize::new(0);
    let restarted = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let id = format!("e{n}");
                let e = json!({"specversion": "1.0", "id": id, "source": "/load", "type": "load.ping"});
                let (status, v) = c.node(n % 2).call("POST", "/v1/events", Some(&e));
                match status {
                    202 => {
                        acked.lock().unwrap().push(id);
                        if restarted.load(std::sync::atomic::Ordering::Relaxed) {
                            after_restart.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                    503 => {
                        assert_eq!(v["error"]["code"], "storage_unavailable", "{v}");
                        refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    other => panic!("event {id}: {other} {v}"),
                }
                n += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        });
        std::thread::sleep(std::time::Duration::from_secs(2));
        server.crash();
        wait_until("requests refused while the database is down", 60, || {
            refused.load(std::sync::atomic::Ordering::Relaxed) >= 5
        });
        server.up();
        restarted.store(true, std::sync::atomic::Ordering::Relaxed);
        wait_until("events acknowledged again after the restart", 120, || {
            after_restart.load(std::sync::atomic::Ordering::Relaxed) >= 20
        });
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let acked = acked.into_inner().unwrap();
    // Every acknowledged event started its run (committed with the event), once.
    let mut runs = Vec::new();
    wait_until("a finished run for every acknowledged event", 120, || {
        runs = c.any().all_runs("task=on-load");
        runs.len() >= acked.len() && runs.iter().all(|r| r["finished_at"].is_string())
    });
    let mut started: Vec<&str> = runs
        .iter()
        .map(|r| r["event"]["id"].as_str().unwrap_or(""))
        .collect();
    started.sort();
    let mut unique = started.clone();
    unique.dedup();
    assert_eq!(unique.len(), started.len(), "an event started two runs");
    for id in &acked {
        assert!(
            started.binary_search(&id.as_str()).is_ok(),
            "acknowledged event {id} started no run"
        );
    }
}

#[test]
fn a_single_node_store_moves_into_postgresql_with_sundial_migrate() {
    let dir = tempfile::tempdir().unwrap();
    let url = pg::fresh_database("migrate");
    let runs_before;
    {
        // The single node, on redb (whatever the pass).
        let d = Daemon::start(dir.path(), &["--store", "redb"]);
        d.create(
            "/v1/tasks",
            json!({"name": "t", "plugin": "echo", "params": {"who": "redb"}}),
        );
        d.create(
            "/v1/schedules",
            json!({"name": "nightly", "rule": {"cron": "0 3 * * *"}}),
        );
        d.attach("nightly", "t");
        d.create(
            "/v1/triggers",
            json!({"name": "on-ping", "on": {"type": "ping"}, "targets": [{"task": "t"}]}),
        );
        d.put_secret(201, "api-key", "s3cr3t");
        for _ in 0..3 {
            d.run_wait("t", json!({}));
        }
        let e = json!({"specversion": "1.0", "id": "p1", "source": "/m", "type": "ping"});
        d.expect(202, "POST", "/v1/events", Some(&e));
        wait_until("the event's run finished", 60, || {
            d.all_runs("task=t").iter().all(|r| r["finished_at"].is_string())
                && d.all_runs("task=t").len() == 4
        });
        runs_before = d.all_runs("task=t");
        d.kill9();
    }
    let migrate = |from: &str, to: &str| {
        std::process::Command::new(sundial_tests::sundial_bin())
            .args(["migrate", "--from", from, "--to", to])
            .output()
            .unwrap()
    };
    let out = migrate(&format!("redb:{}", dir.path().display()), &url);
    let said = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("runs: 4"), "{said}");
    // A second copy into the same (no longer empty) database is refused.
    let again = migrate(&format!("redb:{}", dir.path().display()), &url);
    assert_eq!(again.status.code(), Some(2), "{:?}", again);
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds data"));
    // Bad arguments are named.
    let bad = migrate(dir.path().to_str().unwrap(), &url);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--from"), "{bad:?}");
    // A node on the database has everything: definitions, links, the task log, the
    // dedup key of the event, the secret (same key file in the data directory).
    let node = Daemon::start(dir.path(), &["--store", &url]);
    let after = node.all_runs("task=t");
    assert_eq!(after, runs_before);
    let task_id = runs_before[0]["task_id"].clone();
    assert_eq!(
        node.expect(200, "GET", "/v1/schedules/nightly/tasks", None)["tasks"],
        json!([task_id])
    );
    node.expect(200, "GET", "/v1/triggers/on-ping", None);
    let e = json!({"specversion": "1.0", "id": "p1", "source": "/m", "type": "ping"});
    let dup = node.expect(202, "POST", "/v1/events", Some(&e));
    assert_eq!(dup["duplicate"], true, "{dup}");
    node.expect(200, "GET", "/v1/secrets/api-key", None);
    let run = node.run_wait("t", json!({}));
    assert_eq!(run["status"], "succeeded", "{run}");
}

/// The bounded chaos run: 40 s of mixed load on three nodes, a node killed every 4 s,
/// PostgreSQL crashed and restarted every 20 s (`scripts/chaos-cluster.sh` runs it for
/// ten minutes).
#[test]
fn chaos_kills_nodes_and_restarts_postgresql_and_loses_nothing() {
    let report = sundial_tests::cluster_chaos::run(&sundial_tests::cluster_chaos::Chaos {
        duration: std::time::Duration::from_secs(40),
        kill_every: std::time::Duration::from_secs(4),
        pg_restart_every: std::time::Duration::from_secs(20),
    });
    eprintln!("{report:?}");
    assert!(report.kills >= 5 && report.pg_restarts >= 1, "{report:?}");
    assert!(
        report.events > 0 && report.runs > 0 && report.deliveries > 0,
        "{report:?}"
    );
}

#[test]
fn overlap_forbid_holds_across_nodes_and_a_cancel_reaches_the_node_running_the_run() {
    let c = Cluster::start(2, NODE);
    c.node(0).install_hostile(json!({}));
    c.node(0).create(
        "/v1/tasks",
        json!({"name": "alone", "plugin": "hostile", "overlap": "forbid",
               "params": {"mode": "drip", "lines": 100, "ms": 100}, "retry": {"max_attempts": 1}}),
    );
    let first = start(c.node(0), "alone");
    let owner = running_on(&c, &first);
    // A second run started through the other node while the first runs: skipped.
    let second = start(c.node(1 - owner), "alone");
    let mut skipped = Value::Null;
    wait_until("the second run skipped", 60, || {
        skipped = run(c.node(1 - owner), &second);
        skipped["finished_at"].is_string()
    });
    assert_eq!(skipped["status"], "skipped", "{skipped}");
    assert!(skipped.to_string().contains("overlap policy forbid"), "{skipped}");
    // Cancelled through the node that does not run it: the owner stops it.
    let (status, cancelled) = c
        .node(1 - owner)
        .call("POST", &format!("/v1/runs/{first}/cancel"), None);
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    assert_eq!(run(c.node(owner), &first)["status"], "cancelled");
}
