//! The daemon's mail relay over each transport, against a real SMTP server on loopback
//! with a real (self-signed) certificate: STARTTLS (the default) and TLS from the first
//! byte (SMTPS), trusted through `ca_file` or `allow_insecure_tls`; no mail goes out
//! in the clear when the relay cannot be verified or offers no STARTTLS.

use serde_json::{Value, json};
use sundial_tests::smtp::{Security, SmtpServer, self_signed};
use sundial_tests::{Daemon, message};

const PASSWORD: &str = "relay-password-0123";

/// A daemon whose `[mail]` section is `mail` (plus host, port, from, credentials), with
/// the relay password set and an `email` task `notify`.
fn daemon(dir: &std::path::Path, port: u16, mail: &str) -> Daemon {
    let config = dir.join("sundial.toml");
    std::fs::write(
        &config,
        format!(
            "[mail]\nhost = \"127.0.0.1\"\nport = {port}\nusername = \"sundial\"\npassword_secret = \"relay\"\n\
             from = \"Sundial <sundial@example.com>\"\ntimeout_secs = 5\n{mail}\n"
        ),
    )
    .unwrap();
    let d = Daemon::start(&dir.join("data"), &["--config", config.to_str().unwrap()]);
    d.put_secret(201, "relay", PASSWORD);
    d.create(
        "/v1/tasks",
        json!({"name": "notify", "plugin": "email", "retry": {"max_attempts": 1},
                     "params": {"to": "ops@example.com", "subject": "over ${run.id}", "body": "b"}}),
    );
    d
}

fn send(d: &Daemon) -> Value {
    d.expect(200, "POST", "/v1/tasks/notify/run?wait=true", None)
}

/// Write `pem` as `ca.pem` in `dir`; its path.
fn write_ca(dir: &std::path::Path, pem: &str) -> String {
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, pem).unwrap();
    ca.to_str().unwrap().to_string()
}

/// [`daemon`] trusting `pem` (written as `ca.pem` in `dir`) as the relay's CA.
fn daemon_trusting(dir: &std::path::Path, port: u16, pem: &str) -> Daemon {
    daemon(dir, port, &format!("ca_file = {:?}", write_ca(dir, pem)))
}

#[test]
fn starttls_and_smtps_deliver_to_a_relay_whose_certificate_is_trusted() {
    let (pem, tls) = self_signed(&["127.0.0.1"]);
    for (security, mode, relative) in [
        (Security::StartTls(tls.clone()), "security = \"starttls\"", false),
        // STARTTLS is the default; a relative ca_file is relative to the config file.
        (Security::StartTls(tls.clone()), "", true),
        (Security::Tls(tls.clone()), "security = \"tls\"", false),
    ] {
        let smtp = SmtpServer::start_secure(0, security, &[], Some(("sundial", PASSWORD)));
        let dir = tempfile::tempdir().unwrap();
        let ca = write_ca(dir.path(), &pem);
        let ca_file = if relative { "ca.pem".to_string() } else { ca };
        let d = daemon(dir.path(), smtp.port, &format!("{mode}\nca_file = {ca_file:?}"));
        let run = send(&d);
        assert_eq!(run["status"], "succeeded", "{mode:?}: {run}");
        assert!(
            run["output"]["accepted"].as_str().unwrap().starts_with("250 "),
            "{run}"
        );
        let mails = smtp.wait_for(1);
        assert!(mails[0].tls, "{mode:?}: the message came over TLS");
        assert_eq!(
            mails[0].auth_user.as_deref(),
            Some("sundial"),
            "authenticated over TLS"
        );
        assert_eq!(mails[0].rcpt_to, ["ops@example.com"]);
        // Nothing but the greeting and the upgrade went in the clear.
        let plain = smtp.plaintext_commands();
        let allowed = ["EHLO", "STARTTLS"];
        assert!(
            plain.iter().all(|v| allowed.contains(&v.as_str())),
            "{mode:?}: in the clear: {plain:?}"
        );
        if mode.contains("\"tls\"") {
            assert!(
                plain.is_empty(),
                "SMTPS is encrypted from the first byte: {plain:?}"
            );
        } else {
            assert_eq!(plain, ["EHLO", "STARTTLS"], "{mode:?}");
        }
    }
}

#[test]
fn a_relay_that_cannot_be_verified_or_offers_no_starttls_gets_nothing() {
    let (pem, tls) = self_signed(&["127.0.0.1"]);
    // An unknown issuer (no ca_file): the run fails as retryable, nothing is sent.
    let smtp = SmtpServer::start_secure(
        0,
        Security::StartTls(tls.clone()),
        &[],
        Some(("sundial", PASSWORD)),
    );
    let dir = tempfile::tempdir().unwrap();
    let d = daemon(dir.path(), smtp.port, "");
    let run = send(&d);
    assert_eq!(run["status"], "failed", "{run}");
    let msg = message(&run);
    assert!(msg.starts_with("relay unavailable:"), "{msg}");
    assert!(smtp.mails().is_empty());
    assert!(
        !smtp
            .plaintext_commands()
            .iter()
            .any(|v| v == "AUTH" || v == "MAIL"),
        "{:?}",
        smtp.plaintext_commands()
    );

    // A certificate for another name, even from a trusted CA: refused the same way.
    let (other_pem, other_tls) = self_signed(&["relay.example.com"]);
    let smtp = SmtpServer::start_secure(0, Security::StartTls(other_tls), &[], Some(("sundial", PASSWORD)));
    let dir = tempfile::tempdir().unwrap();
    let d = daemon_trusting(dir.path(), smtp.port, &other_pem);
    let run = send(&d);
    assert_eq!(run["status"], "failed", "{run}");
    assert!(
        smtp.mails().is_empty(),
        "a certificate for another host name is refused"
    );

    // STARTTLS is required, not opportunistic: a relay that does not offer it gets no
    // credentials and no message in the clear.
    let smtp = SmtpServer::start_secure(0, Security::None, &[], Some(("sundial", PASSWORD)));
    let dir = tempfile::tempdir().unwrap();
    let d = daemon_trusting(dir.path(), smtp.port, &pem);
    let run = send(&d);
    assert_eq!(run["status"], "failed", "{run}");
    assert!(smtp.mails().is_empty());
    let plain = smtp.plaintext_commands();
    assert!(
        !plain.iter().any(|v| v == "AUTH" || v == "MAIL"),
        "sent in the clear: {plain:?}"
    );

    // allow_insecure_tls accepts the unknown certificate (a lab relay), still over TLS.
    let smtp = SmtpServer::start_secure(0, Security::StartTls(tls), &[], Some(("sundial", PASSWORD)));
    let dir = tempfile::tempdir().unwrap();
    let d = daemon(dir.path(), smtp.port, "allow_insecure_tls = true");
    let run = send(&d);
    assert_eq!(run["status"], "succeeded", "{run}");
    assert!(smtp.wait_for(1)[0].tls);
}

#[test]
fn a_bad_ca_file_stops_the_daemon_at_start_naming_it() {
    for (content, want) in [
        (None, "mail.ca_file"),
        (Some("not a certificate"), "no PEM certificate"),
        (
            Some("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
            "is not valid",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        if let Some(c) = content {
            std::fs::write(&ca, c).unwrap();
        }
        let config = dir.path().join("sundial.toml");
        std::fs::write(
            &config,
            format!(
                "[mail]\nhost = \"127.0.0.1\"\nfrom = \"s@example.com\"\nca_file = {:?}\n",
                ca.to_str().unwrap()
            ),
        )
        .unwrap();
        let err = Daemon::try_start(
            &dir.path().join("data"),
            &["--config", config.to_str().unwrap()],
            &[],
        )
        .err()
        .unwrap_or_else(|| panic!("the daemon started with ca_file {content:?}"));
        assert!(
            err.contains("mail.ca_file") && err.contains(want),
            "{content:?}: {err}"
        );
    }
}
