//! Chaos: events, a per-second schedule, webhook deliveries to a flaky endpoint and
//! manual runs go on together against the real binary, which is killed with SIGKILL at
//! random moments (24 times by default). After every restart, and once everything has
//! settled at the end, the invariants are checked:
//!
//! - the database opens and the daemon listens again (every restart);
//! - every acknowledged event, run and delivery is there;
//! - no schedule slot produced two runs of a task;
//! - no run recorded more attempts than its retry policy allows, and the flaky endpoint
//!   saw each run (by its idempotency key) at most that often;
//! - a run of `slow` (2 s per attempt) is in flight at nearly every kill: attempts cut by
//!   a kill are recorded as such and retried after the restart;
//! - no delivery recorded more attempts than its webhook's retry policy allows, and
//!   every `delivered` one really reached the endpoint with a 2xx answer;
//! - at the end every run and delivery has finished.
//!
//! `SUNDIAL_CHAOS_KILLS` sets the number of kills and `SUNDIAL_CHAOS_SEED` the seed of
//! the kill moments (printed, so a failing sequence can be replayed).

use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use sundial_tests::{Answer, Daemon, Received, serve_http, try_raw_http};

/// Attempts a run of task `call` may make.
const RUN_ATTEMPTS: usize = 3;
/// Attempts a delivery to webhook `flaky` may make.
const DELIVERY_ATTEMPTS: usize = 4;
/// Attempts the run of task `slow` may make (the most a policy allows: it is cut by
/// nearly every kill).
const SLOW_ATTEMPTS: usize = 100;
/// How long the endpoint takes to answer `slow`, in milliseconds: longer than any
/// cycle, so a kill finds the run in flight.
const SLOW_MS: u64 = 2000;

/// A small deterministic generator (xorshift64*) for the kill moments.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// What the flaky endpoint saw: requests per idempotency key (task runs) and per
/// webhook id (deliveries), and the webhook ids it answered with 2xx.
#[derive(Default)]
struct Seen {
    runs: HashMap<String, usize>,
    deliveries: HashMap<String, usize>,
    delivered: HashSet<String>,
}

/// An HTTP endpoint on loopback that answers every third request with 503, and
/// `/slow` with 200 after [`SLOW_MS`].
fn flaky_endpoint() -> (String, Arc<Mutex<Seen>>, tokio::runtime::Runtime) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let counter = AtomicU64::new(0);
    let log = seen.clone();
    let (addr, rt) = serve_http(Arc::new(move |req: Received| {
        let slow = req.path == "/slow";
        let fail = !slow && counter.fetch_add(1, Ordering::SeqCst) % 3 == 1;
        let status = if fail { 503 } else { 200 };
        let mut seen = log.lock().unwrap();
        if let Some(key) = req.header("idempotency-key") {
            *seen.runs.entry(key.to_string()).or_default() += 1;
        }
        if let Some(id) = req.header("webhook-id") {
            *seen.deliveries.entry(id.to_string()).or_default() += 1;
            if !fail {
                seen.delivered.insert(id.to_string());
            }
        }
        Answer {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: br#"{"ok": true}"#.to_vec(),
            hang: false,
            delay_ms: if slow { SLOW_MS } else { 0 },
        }
    }));
    (format!("127.0.0.1:{}", addr.port()), seen, rt)
}

/// Everything the API acknowledged (a 2xx answer fully received).
#[derive(Default)]
struct Acked {
    /// Event ids posted (source `/chaos`).
    events: HashSet<String>,
    runs: HashSet<String>,
    /// Delivery id -> the cycle (number of kills before it) it was acknowledged in.
    deliveries: HashMap<String, usize>,
    /// Delivery id -> the number of kills by the check that first saw it settled.
    settled: HashMap<String, usize>,
}

fn call(d: &Daemon, method: &str, path: &str, body: Value) -> Value {
    let (status, v) = d.call(method, path, Some(&body));
    assert!((200..300).contains(&status), "{method} {path}: {status} {v}");
    v
}

fn setup(d: &Daemon, endpoint: &str) {
    d.patch(
        "/v1/plugins/http-request",
        json!({"grants": {"hosts": [endpoint]}}),
    );
    let retention = json!({"keep_last": 100000, "max_age_days": 30});
    d.create(
        "/v1/tasks",
        json!({"name": "call", "plugin": "http-request", "params": {"url": format!("http://{endpoint}/task"), "method": "POST"},
               "retry": {"max_attempts": RUN_ATTEMPTS, "initial_delay_ms": 30, "multiplier": 1.0, "max_delay_ms": 30, "jitter": 0.0},
               "retention": retention}),
    );
    d.create(
        "/v1/tasks",
        json!({"name": "slow", "plugin": "http-request", "params": {"url": format!("http://{endpoint}/slow"), "method": "POST"},
               "timeout_ms": 30000,
               "retry": {"max_attempts": SLOW_ATTEMPTS, "initial_delay_ms": 30, "multiplier": 1.0, "max_delay_ms": 30, "jitter": 0.0},
               "retention": retention}),
    );
    d.create(
        "/v1/tasks",
        json!({"name": "tick", "plugin": "echo", "retention": retention}),
    );
    d.create(
        "/v1/schedules",
        json!({"name": "every-second", "rule": {"cron": "* * * * * *"}}),
    );
    d.attach("every-second", "tick");
    d.create(
        "/v1/webhooks",
        json!({"name": "flaky", "url": format!("http://{endpoint}/hook"),
               "retry": {"max_attempts": DELIVERY_ATTEMPTS, "initial_delay_ms": 30, "multiplier": 1.0, "max_delay_ms": 1000, "jitter": 0.0}}),
    );
    d.create(
        "/v1/triggers",
        json!({"name": "on-ping", "on": {"type": "chaos.ping"}, "targets": [{"webhook": "flaky"}, {"task": "call"}]}),
    );
}

/// Post `body` as the admin; the parsed answer when the API acknowledged it.
fn post(addr: &str, token: &str, path: &str, body: &Value) -> Option<Value> {
    let headers = format!("authorization: Bearer {token}\r\ncontent-type: application/json\r\n");
    match try_raw_http(addr, "POST", path, &headers, body.to_string().as_bytes()) {
        Ok((status, text)) if (200..300).contains(&status) => serde_json::from_str(&text).ok(),
        _ => None,
    }
}

/// Clients that post events and start manual runs until `stop`, recording what the
/// API acknowledged. Requests cut by the kill are simply not acknowledged.
fn load(
    addr: String,
    token: String,
    cycle: usize,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Acked>>,
) -> Vec<std::thread::JoinHandle<()>> {
    let events = {
        let (addr, token, stop, acked) = (addr.clone(), token.clone(), stop.clone(), acked.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let id = format!("c{cycle}-e{n}");
                let event = json!({"specversion": "1.0", "id": id, "source": "/chaos", "type": "chaos.ping", "data": {"n": n}});
                if let Some(answer) = post(&addr, &token, "/v1/events", &event) {
                    let mut acked = acked.lock().unwrap();
                    acked.events.insert(id);
                    for t in answer["triggers"].as_array().into_iter().flatten() {
                        for d in t["deliveries"].as_array().into_iter().flatten() {
                            acked.deliveries.insert(d.as_str().unwrap().to_string(), cycle);
                        }
                        for r in t["runs"].as_array().into_iter().flatten() {
                            acked.runs.insert(r.as_str().unwrap().to_string());
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(15));
            }
        })
    };
    let runs = std::thread::spawn(move || {
        let mut n = 0u64;
        while !stop.load(Ordering::SeqCst) {
            n += 1;
            let task = if n.is_multiple_of(2) { "call" } else { "tick" };
            if let Some(answer) = post(&addr, &token, &format!("/v1/tasks/{task}/run"), &json!({})) {
                acked
                    .lock()
                    .unwrap()
                    .runs
                    .insert(answer["id"].as_str().unwrap().to_string());
            }
            std::thread::sleep(Duration::from_millis(15));
        }
    });
    vec![events, runs]
}

/// Check every invariant; `settled` adds that everything has finished. Returns
/// (runs, deliveries) still unfinished.
fn check(d: &Daemon, acked: &mut Acked, seen: &Seen, kills: usize, settled: bool) -> usize {
    let runs = d.all_runs("");
    let by_id: HashMap<&str, &Value> = runs.iter().map(|r| (r["id"].as_str().unwrap(), r)).collect();
    for id in &acked.runs {
        assert!(
            by_id.contains_key(id.as_str()),
            "acknowledged run {id} is missing"
        );
    }
    let events: HashSet<String> = d
        .all_pages("/v1/events?source=/chaos", "events")
        .iter()
        .map(|e| e["event"]["id"].as_str().unwrap().to_string())
        .collect();
    for id in &acked.events {
        assert!(events.contains(id), "acknowledged event {id} is missing");
    }
    let deliveries = d.all_pages("/v1/deliveries?webhook=flaky", "deliveries");
    let delivery_ids: HashSet<&str> = deliveries.iter().map(|x| x["id"].as_str().unwrap()).collect();
    for id in acked.deliveries.keys() {
        assert!(
            delivery_ids.contains(id.as_str()),
            "acknowledged delivery {id} is missing"
        );
    }

    let mut slots: HashMap<(String, String), usize> = HashMap::new();
    let mut unfinished = 0;
    for run in &runs {
        let id = run["id"].as_str().unwrap();
        let attempts = run["attempts"].as_array().unwrap().len();
        let limit = match run["task_name"].as_str() {
            Some("call") => Some(RUN_ATTEMPTS),
            Some("slow") => Some(SLOW_ATTEMPTS),
            _ => None,
        };
        if let Some(limit) = limit {
            assert!(attempts <= limit, "run {id} made {attempts} attempts: {run}");
            let executed = seen.runs.get(id).copied().unwrap_or(0);
            assert!(
                executed <= attempts,
                "run {id} reached the endpoint {executed} times with {attempts} attempts recorded"
            );
            if run["status"] == "succeeded" {
                assert!(executed >= 1, "run {id} succeeded without reaching the endpoint");
            }
        }
        if run["cause"]["kind"] == "schedule" {
            let key = (
                run["task_name"].as_str().unwrap().to_string(),
                run["cause"]["slot"].as_str().unwrap().to_string(),
            );
            *slots.entry(key.clone()).or_default() += 1;
            assert_eq!(slots[&key], 1, "slot {key:?} fired twice");
        }
        if matches!(run["status"].as_str(), Some("queued" | "running")) {
            unfinished += 1;
        }
    }
    for delivery in &deliveries {
        let id = delivery["id"].as_str().unwrap();
        let attempts = delivery["attempts"].as_array().unwrap().len();
        assert!(
            attempts <= DELIVERY_ATTEMPTS,
            "delivery {id} made {attempts} attempts"
        );
        let reached = seen.deliveries.get(id).copied().unwrap_or(0);
        // At least once: an attempt cut by a kill is sent again, so the endpoint may
        // see a delivery once more per kill during its life than recorded, never more.
        if matches!(delivery["status"].as_str(), Some("delivered" | "dead")) {
            acked.settled.entry(id.to_string()).or_insert(kills);
        }
        let born = acked.deliveries.get(id).copied().unwrap_or(0);
        let ended = acked.settled.get(id).copied().unwrap_or(kills);
        let kills_in_life = ended.saturating_sub(born);
        // A queued delivery may have an attempt in flight: the endpoint counted it (its
        // count was read first) and the daemon records it when the answer arrives.
        let in_flight = usize::from(delivery["status"] == "queued");
        assert!(
            reached <= attempts + kills_in_life + in_flight,
            "delivery {id} reached the endpoint {reached} times with {attempts} attempts recorded, \
             {kills_in_life} kills while it was pending (born in cycle {born}, settled by {ended}) \
             and {in_flight} in flight: {delivery}"
        );
        if delivery["status"] == "delivered" {
            assert!(
                seen.delivered.contains(id),
                "delivery {id} is delivered but the endpoint never answered it with 2xx"
            );
        }
        if delivery["status"] == "queued" {
            unfinished += 1;
        }
    }
    if settled {
        assert_eq!(unfinished, 0, "runs or deliveries never finished");
    }
    unfinished
}

#[test]
fn sigkill_at_random_moments_keeps_every_invariant() {
    let kills: usize = std::env::var("SUNDIAL_CHAOS_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    let seed: u64 = std::env::var("SUNDIAL_CHAOS_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("chaos: {kills} kills, SUNDIAL_CHAOS_SEED={seed}");
    let mut rng = Rng(seed);
    let (endpoint, seen, _server) = flaky_endpoint();
    let dir = tempfile::tempdir().unwrap();
    let acked = Arc::new(Mutex::new(Acked::default()));
    let flags = ["--allow-loopback", "--workers", "4"];

    // The daemon of the last cycle is the one that lives to the end: dropping it would
    // SIGKILL it once more than `kills` counts (an attempt it had in flight would reach
    // the endpoint unrecorded and unaccounted for).
    let mut last = None;
    for cycle in 0..=kills {
        let d = Daemon::start(dir.path(), &flags);
        if cycle == 0 {
            setup(&d, &endpoint);
            // One long run, cut by nearly every kill and retried after each restart.
            let slow = call(&d, "POST", "/v1/tasks/slow/run", json!({}));
            acked
                .lock()
                .unwrap()
                .runs
                .insert(slow["id"].as_str().unwrap().to_string());
        } else {
            let mut acked = acked.lock().unwrap();
            let seen = seen.lock().unwrap();
            check(&d, &mut acked, &seen, cycle, false);
        }
        if cycle == kills {
            last = Some(d);
            break;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let clients = load(
            d.addr.clone(),
            d.token.clone(),
            cycle,
            stop.clone(),
            acked.clone(),
        );
        std::thread::sleep(Duration::from_millis(100 + rng.below(1400)));
        let log = d.stderr_text();
        d.kill9();
        stop.store(true, Ordering::SeqCst);
        for c in clients {
            c.join().unwrap();
        }
        assert!(!log.contains("panicked"), "the daemon panicked:\n{log}");
    }

    // The last daemon lives: let every run and delivery finish, then check again.
    let d = last.expect("the last cycle keeps its daemon");
    let (status, paused) = d.call("POST", "/v1/schedules/every-second/pause", None);
    assert_eq!(status, 200, "{paused}");
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let mut acked = acked.lock().unwrap();
        let seen = seen.lock().unwrap();
        let unfinished = check(&d, &mut acked, &seen, kills, false);
        if unfinished == 0 {
            check(&d, &mut acked, &seen, kills, true);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{unfinished} runs or deliveries never finished"
        );
        drop((acked, seen));
        std::thread::sleep(Duration::from_millis(500));
    }
    let runs = d.all_runs("");
    let cut = |a: &Value| a["error"].to_string().contains("daemon stopped");
    let interrupted = runs
        .iter()
        .flat_map(|r| r["attempts"].as_array().unwrap())
        .filter(|a| cut(a))
        .count();
    // Runs retried after an attempt a kill cut, and after one the endpoint failed.
    let earlier = |r: &Value| {
        let attempts = r["attempts"].as_array().unwrap().clone();
        attempts[..attempts.len().saturating_sub(1)].to_vec()
    };
    let retried_after_kill = runs.iter().filter(|r| earlier(r).iter().any(cut)).count();
    let retried_after_failure = runs.iter().filter(|r| earlier(r).iter().any(|a| !cut(a))).count();
    let scheduled = runs.iter().filter(|r| r["cause"]["kind"] == "schedule").count();
    let deliveries = d.all_pages("/v1/deliveries?webhook=flaky", "deliveries");
    let redelivered = deliveries
        .iter()
        .filter(|x| x["attempts"].as_array().unwrap().len() > 1)
        .count();
    eprintln!(
        "chaos: {} runs ({scheduled} scheduled, {retried_after_failure} retried after a failure, \
         {retried_after_kill} retried after a kill, {interrupted} attempts cut by a kill), \
         {} deliveries ({redelivered} retried)",
        runs.len(),
        deliveries.len()
    );
    // The run must have exercised what the invariants are about: both kinds of retry,
    // attempts cut by kills, redeliveries and schedule slots.
    assert!(interrupted > 0, "no kill cut an attempt");
    assert!(
        retried_after_kill > 0,
        "no run was retried after a kill cut its attempt"
    );
    assert!(
        retried_after_failure > 0,
        "no run was retried after the endpoint failed it"
    );
    assert!(redelivered > 0, "no delivery was retried");
    assert!(scheduled > 0, "no schedule slot fired");
    let slow: Vec<&Value> = runs.iter().filter(|r| r["task_name"] == "slow").collect();
    assert_eq!(slow.len(), 1, "one run of slow");
    // Settled: it succeeded, unless the kills used up every attempt it had.
    let want = if slow[0]["attempts"].as_array().unwrap().len() < SLOW_ATTEMPTS {
        "succeeded"
    } else {
        "interrupted"
    };
    assert_eq!(slow[0]["status"], want, "{}", slow[0]);
    let acked = acked.lock().unwrap();
    assert!(
        acked.events.len() >= kills && acked.runs.len() >= kills && acked.deliveries.len() >= kills,
        "too little load to mean anything: {} events, {} runs, {} deliveries",
        acked.events.len(),
        acked.runs.len(),
        acked.deliveries.len()
    );
    eprintln!(
        "chaos: survived {kills} kills; acknowledged {} events, {} runs, {} deliveries; 0 invariant violations",
        acked.events.len(),
        acked.runs.len(),
        acked.deliveries.len()
    );
    assert!(!d.stderr_text().contains("panicked"));
}
