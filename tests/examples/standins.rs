//! Stand-ins for the README tour: a VergeOS v4 API (the same one the tests check the
//! `vergeos` plugin against), an SMTP server and an alerting receiver on loopback, each
//! printing what it receives, so the six VergeOS examples run on a laptop.
//!
//! `cargo run --release -p sundial-tests --example standins`
//!
//! VergeOS API on 127.0.0.1:9440 (API key `tour-api-key`), SMTP on 127.0.0.1:2525 (no
//! authentication), alerting receiver on 127.0.0.1:9441. Ctrl-C stops them.

use sundial_tests::smtp::SmtpServer;
use sundial_tests::vergeos::VergeOs;
use sundial_tests::{Receiver, Reply};

fn main() {
    let api = VergeOs::start_on(
        9440,
        "tour-api-key",
        &[
            (42, "gpu-workstation-1"),
            (43, "gpu-workstation-2"),
            (50, "build-runner"),
        ],
        &[(7, "acme"), (8, "globex")],
        &[(100, "jthompson"), (101, "contractor-ann")],
    );
    let smtp = SmtpServer::start_on(2525, &[], None);
    let alerts = Receiver::start_on(9441, vec![], Reply::Status(202, Vec::new()));
    println!("VergeOS API stand-in on {} (API key tour-api-key)", api.url);
    println!("SMTP server on 127.0.0.1:{}", smtp.port);
    println!("alerting receiver on {}", alerts.url("/v2/enqueue"));
    let (mut calls, mut mails, mut posts) = (0, 0, 0);
    loop {
        std::thread::sleep(std::time::Duration::from_millis(200));
        for c in api.calls().iter().skip(calls) {
            calls += 1;
            let query = if c.query.is_empty() {
                String::new()
            } else {
                format!("?{}", c.query)
            };
            let body = if c.body.is_null() {
                String::new()
            } else {
                format!(" {}", c.body)
            };
            println!("[vergeos] {} {}{query}{body} -> {}", c.method, c.path, c.status);
        }
        for m in smtp.mails().iter().skip(mails) {
            mails += 1;
            println!(
                "[smtp] mail from {} to {}: {}",
                m.mail_from,
                m.rcpt_to.join(", "),
                m.header("Subject").unwrap_or_default()
            );
        }
        for r in alerts.requests().iter().skip(posts) {
            posts += 1;
            println!(
                "[alerting] {} {} {}",
                r.method,
                r.path,
                String::from_utf8_lossy(&r.body)
            );
        }
    }
}
