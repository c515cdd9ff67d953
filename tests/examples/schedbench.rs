//! Scheduler benchmark: many active schedules of mixed kinds in a real `sundial serve`,
//! then a restart (start-up time and resident memory with all of them loaded) and a
//! steady firing load (lateness from each slot's due time to its run's start).
//!
//! ```sh
//! cargo build --release -p sundial && \
//!   cargo run --release -p sundial-tests --example schedbench -- 100000 1000 30 spread
//! ```
//!
//! Arguments: schedules in total (default 100000); how many of them fire every second
//! (default 1000, each attached to the task `fire`); seconds to measure (default 30);
//! `spread` (default: the firing schedules have a 999 ms jitter, so 1,000 fires/s arrive
//! spread over each second) or `burst` (no jitter: all of them are due at the same
//! instant each second). The other schedules are cron (zones, weekday lists), calendar
//! (every N days / minutes in a daily window / last day of month) and one-time `at` rules, each
//! attached to the task `idle`; none of them comes due during the run.

use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use sundial_tests::{Daemon, KeepAlive};

const ZONES: &[&str] = &[
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Tokyo",
    "Australia/Sydney",
    "America/Sao_Paulo",
    "Asia/Kolkata",
    "Europe/London",
];

/// Steps of the windowed minute rules (each lands in a one-hour window).
const MINUTES: [u32; 5] = [5, 10, 15, 30, 60];

/// The i-th idle schedule: a mix of rule kinds, none due within hours of `now`.
fn idle_schedule(i: usize, now: chrono::DateTime<chrono::Utc>) -> Value {
    use chrono::Timelike;
    let zone = ZONES[i % ZONES.len()];
    let tz: chrono_tz::Tz = zone.parse().expect("zone");
    // Six hours from now on the zone's wall clock (22:00 at the latest, for windows).
    let hour = (now + chrono::Duration::hours(6))
        .with_timezone(&tz)
        .hour()
        .min(22);
    let rule = match i % 4 {
        0 => {
            let days = ["*", "1-5", "0,6", "MON,WED,FRI"][(i / 4) % 4];
            json!({"cron": format!("{} {} {hour} * * {days}", i % 60, (i / 60) % 60)})
        }
        1 => {
            json!({"calendar": {"every": 1 + i % 3, "unit": "days", "at": format!("{hour:02}:{:02}:00", i % 60)}})
        }
        2 if i % 8 == 2 => {
            json!({"calendar": {"every": 1, "unit": "months", "day_of_month": "last", "at": format!("{hour:02}:30:00")}})
        }
        2 => json!({"calendar": {"every": MINUTES[(i / 8) % 5], "unit": "minutes",
            "window": [format!("{hour:02}:00:00"), format!("{:02}:00:00", hour + 1)], "weekdays": ["Sat", "Sun", "Mon"]}}),
        _ => json!({"at": (now + chrono::Duration::days(1 + (i % 365) as i64)).to_rfc3339()}),
    };
    json!({"name": format!("idle-{i}"), "rule": rule, "timezone": zone})
}

fn rss_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Create schedules `[from, to)` over `conns` connections, each attached to a task.
fn create(
    daemon: &Daemon,
    from: usize,
    to: usize,
    conns: usize,
    make: Arc<dyn Fn(usize) -> (Value, &'static str) + Send + Sync>,
) {
    let next = Arc::new(AtomicUsize::new(from));
    let mut clients = Vec::new();
    for _ in 0..conns {
        let (next, addr, token, make) = (
            next.clone(),
            daemon.addr.clone(),
            daemon.token.clone(),
            make.clone(),
        );
        clients.push(std::thread::spawn(move || {
            let mut conn = KeepAlive::open(&addr);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= to {
                    break;
                }
                let (spec, task) = make(i);
                let (status, body) = conn.request("POST", "/v1/schedules", &token, Some(&spec.to_string()));
                assert_eq!(status, 201, "{spec}: {body}");
                let name = spec["name"].as_str().unwrap();
                let link = json!({"task": task}).to_string();
                let (status, body) = conn.request(
                    "POST",
                    &format!("/v1/schedules/{name}/tasks"),
                    &token,
                    Some(&link),
                );
                assert_eq!(status, 200, "{body}");
            }
        }));
    }
    for c in clients {
        c.join().expect("client");
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let total: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let firing: usize = args
        .get(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000)
        .min(total);
    let seconds: u64 = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(30);
    let spread = args.get(4).map(String::as_str) != Some("burst");
    // SCHEDBENCH_DIR keeps the data directory for a look afterwards.
    let keep = std::env::var_os("SCHEDBENCH_DIR").map(std::path::PathBuf::from);
    let temp = tempfile::tempdir().expect("temp dir");
    let dir = keep.as_deref().unwrap_or(temp.path());
    let flags = [
        "--workers",
        "64",
        "--keep-runs",
        "100000000",
        "--prune-interval",
        "3600s",
    ];
    let daemon = Daemon::start(dir, &flags);
    // What the daemon holds with no schedule at all, for the memory per schedule.
    let fresh_kib = rss_kib(daemon.pid(), "VmRSS:");
    for task in ["fire", "idle"] {
        daemon.create("/v1/tasks", json!({"name": task, "plugin": "echo"}));
    }

    // The idle schedules first, then the firing ones (so they fire only briefly before
    // the restart).
    let started = Instant::now();
    let now = chrono::Utc::now();
    create(
        &daemon,
        firing,
        total,
        32,
        Arc::new(move |i| (idle_schedule(i, now), "idle")),
    );
    let jitter = if spread { 999 } else { 0 };
    create(
        &daemon,
        0,
        firing,
        32,
        Arc::new(move |i| {
            (
                json!({"name": format!("fire-{i}"), "rule": {"cron": "* * * * * *"}, "jitter_ms": jitter}),
                "fire",
            )
        }),
    );
    let took = started.elapsed().as_secs_f64();
    println!(
        "created {total} schedules ({firing} firing every second, {}) and their task links in {took:.1} s = {:.0} schedules/s",
        if spread {
            "spread by a 999 ms jitter"
        } else {
            "all due at the same instant"
        },
        total as f64 / took
    );

    // Restart with everything in place: start-up time and memory.
    daemon.kill9();
    let t0 = Instant::now();
    let daemon = Daemon::start(dir, &flags);
    let startup = t0.elapsed();
    let (status, _) = daemon.call("GET", "/v1/schedules?limit=1", None);
    assert_eq!(status, 200);
    let ready = t0.elapsed();
    let pid = daemon.pid();
    println!(
        "restart after SIGKILL with {total} schedules: listening after {} ms, first API answer after {} ms, RSS {} MiB (peak so far {} MiB)",
        startup.as_millis(),
        ready.as_millis(),
        rss_kib(pid, "VmRSS:") / 1024,
        rss_kib(pid, "VmHWM:") / 1024
    );
    // And after a clean stop (SIGTERM): no repair of the data file first.
    assert!(daemon.stop().success());
    let t0 = Instant::now();
    let daemon = Daemon::start(dir, &flags);
    let startup = t0.elapsed();
    let pid = daemon.pid();
    let rss = rss_kib(pid, "VmRSS:");
    println!(
        "restart after SIGTERM with {total} schedules: listening after {} ms, RSS {} MiB (peak so far {} MiB)",
        startup.as_millis(),
        rss / 1024,
        rss_kib(pid, "VmHWM:") / 1024
    );
    println!(
        "memory per schedule: {} bytes (RSS now minus a fresh daemon's {} MiB, over {total}; includes redb's page cache, up to 8 MiB by default)",
        rss.saturating_sub(fresh_kib) * 1024 / total as u64,
        fresh_kib / 1024
    );

    // Steady firing: skip 3 s of warm-up, then measure.
    std::thread::sleep(Duration::from_secs(3));
    let from = chrono::Utc::now();
    let mut rss_max = 0;
    for _ in 0..seconds {
        std::thread::sleep(Duration::from_secs(1));
        rss_max = rss_max.max(rss_kib(pid, "VmRSS:"));
    }
    let until = chrono::Utc::now();
    std::thread::sleep(Duration::from_secs(3)); // let the last runs start
    let runs = daemon.all_runs("task=fire&cause=schedule");
    let mut late_ms = Vec::new();
    let mut not_started = 0;
    for run in &runs {
        let due = run["cause"]["due"].as_str().expect("due");
        let due = chrono::DateTime::parse_from_rfc3339(due).expect("due time");
        if due < from || due >= until || run["status"] == "skipped" {
            continue;
        }
        match run["started_at"].as_str() {
            Some(s) => {
                let started = chrono::DateTime::parse_from_rfc3339(s).expect("started_at");
                late_ms.push((started - due).num_microseconds().unwrap_or(0) as f64 / 1000.0);
            }
            None => not_started += 1,
        }
    }
    late_ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let window = (until - from).num_milliseconds() as f64 / 1000.0;
    println!(
        "fired {} runs in {window:.1} s = {:.0} fires/s ({not_started} not started 3 s after the window)",
        late_ms.len() + not_started,
        (late_ms.len() + not_started) as f64 / window
    );
    println!(
        "lateness due -> run start (ms): p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}",
        percentile(&late_ms, 0.5),
        percentile(&late_ms, 0.9),
        percentile(&late_ms, 0.99),
        percentile(&late_ms, 0.999),
        late_ms.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "resident memory while firing: max VmRSS {} MiB, peak VmHWM {} MiB",
        rss_max / 1024,
        rss_kib(pid, "VmHWM:") / 1024
    );
    // The idle schedules must not have come due: what the figures above assume.
    let idle = daemon.all_runs("task=idle").len();
    println!("runs of the idle schedules during the run: {idle}");
    assert_eq!(
        idle, 0,
        "an idle schedule fired: the benchmark measured something else"
    );
}
