//! Webhook delivery benchmark: a real `sundial serve` delivering to a real HTTP receiver
//! on loopback, each delivery formatted by the bundled `json` formatter plugin, signed
//! (Standard Webhooks) and recorded durably; then the same with a hanging endpoint
//! receiving deliveries beside the healthy one.
//!
//! ```sh
//! cargo build --release -p sundial && \
//!   cargo run --release -p sundial-tests --example webhookbench -- 20000 32
//! ```
//!
//! Arguments: deliveries per phase (default 20000); the healthy webhook's
//! `max_concurrency` (default 32). Deliveries are caused by events posted in batches of
//! 100, each matching one trigger whose target is the webhook.

use serde_json::json;
use std::time::{Duration, Instant};
use sundial_tests::{Daemon, KeepAlive, Receiver, Reply};

fn post_events(d: &Daemon, kind: &str, n: usize, tag: &str) {
    let mut conn = KeepAlive::open(&d.addr);
    for chunk in 0..n.div_ceil(100) {
        let events: Vec<serde_json::Value> = (chunk * 100..((chunk + 1) * 100).min(n))
            .map(|i| json!({"specversion": "1.0", "id": format!("{tag}-{i}"), "source": "/bench", "type": kind, "data": {"n": i}}))
            .collect();
        let (status, text) = conn.request(
            "POST",
            "/v1/events",
            &d.token,
            Some(&serde_json::Value::Array(events).to_string()),
        );
        assert_eq!(status, 202, "{text}");
    }
}

fn phase(d: &Daemon, rx: &Receiver, n: usize, tag: &str) -> f64 {
    let before = rx.count();
    let started = Instant::now();
    post_events(d, "bench.ok", n, tag);
    let deadline = Instant::now() + Duration::from_secs(600);
    while rx.count() < before + n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} delivered",
            rx.count() - before
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    n as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let concurrency: u32 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(32);
    let dir = tempfile::tempdir().expect("temp dir");
    let d = Daemon::start(
        dir.path(),
        &[
            "--allow-loopback",
            "--keep-events",
            "100000000",
            "--prune-interval",
            "3600s",
        ],
    );
    let ok = Receiver::start(vec![], Reply::Status(200, Vec::new()));
    let hang = Receiver::start(vec![], Reply::Hang);
    let call = |method: &str, path: &str, body: serde_json::Value| {
        let (status, v) = d.call(method, path, Some(&body));
        assert!(status < 300, "{path}: {v}");
    };
    call(
        "PUT",
        "/v1/secrets/sign",
        json!({"value": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}),
    );
    call(
        "POST",
        "/v1/webhooks",
        json!({"name": "ok", "url": ok.url("/"), "signing_secrets": ["sign"], "max_concurrency": concurrency}),
    );
    call(
        "POST",
        "/v1/webhooks",
        json!({"name": "hang", "url": hang.url("/"), "timeout_ms": 120000, "retry": {"max_attempts": 1}}),
    );
    call(
        "POST",
        "/v1/triggers",
        json!({"name": "to-ok", "on": {"type": "bench.ok"}, "targets": [{"webhook": "ok"}]}),
    );
    call(
        "POST",
        "/v1/triggers",
        json!({"name": "to-hang", "on": {"type": "bench.hang"}, "targets": [{"webhook": "hang"}]}),
    );

    let first = phase(&d, &ok, n, "a0");
    let alone = phase(&d, &ok, n, "a");
    println!(
        "healthy endpoint alone: {n} deliveries (json formatter + signing + durable records) at {alone:.0} deliveries/s (a first, warm-up pass: {first:.0}/s)"
    );
    // A hanging endpoint gets 1 000 deliveries first; it holds its slots for 120 s.
    post_events(&d, "bench.hang", 1000, "h");
    std::thread::sleep(Duration::from_millis(500));
    let beside = phase(&d, &ok, n, "b");
    println!(
        "healthy endpoint beside a hanging one ({} requests hanging): {beside:.0} deliveries/s ({:+.1} %)",
        hang.count(),
        (beside / alone - 1.0) * 100.0
    );
}
