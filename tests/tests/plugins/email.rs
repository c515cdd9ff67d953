//! The bundled `email` action through the mail capability, to a real SMTP relay on loopback.

use super::*;

/// In-memory key-value and secrets, and mail through a real [`Mailer`].
struct MailServices {
    memory: MemoryServices,
    mailer: Mailer,
}

impl HostServices for MailServices {
    fn kv_get<'a>(&'a self, plugin: &'a str, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, String>> {
        self.memory.kv_get(plugin, key)
    }

    fn kv_set<'a>(
        &'a self,
        plugin: &'a str,
        key: &'a str,
        value: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), String>> {
        self.memory.kv_set(plugin, key, value)
    }

    fn kv_delete<'a>(&'a self, plugin: &'a str, key: &'a str) -> BoxFuture<'a, Result<(), String>> {
        self.memory.kv_delete(plugin, key)
    }

    fn secret<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Option<String>> {
        self.memory.secret(name)
    }

    fn send_mail<'a>(
        &'a self,
        _plugin: &'a str,
        message: Message,
    ) -> BoxFuture<'a, Result<String, MailError>> {
        Box::pin(async move { self.mailer.send(&message, None).await })
    }
}

/// Services whose relay is plain SMTP on `127.0.0.1:port`, without AUTH. The config
/// goes through its `[mail]` deserializer, so fields added later keep their defaults.
fn relay(port: u16) -> Arc<dyn HostServices> {
    let config: MailConfig = serde_json::from_value(json!({
        "host": "127.0.0.1", "port": port, "security": "none",
        "from": "Sundial <sundial@example.com>", "timeout_secs": 5,
    }))
    .expect("a [mail] config");
    let mailer = Mailer::new(config).expect("mailer");
    Arc::new(MailServices {
        memory: MemoryServices::default(),
        mailer,
    })
}

fn mail_grant() -> Grants {
    Grants {
        mail: true,
        ..Grants::default()
    }
}

fn update_event() -> Event {
    Event {
        id: "u-1".into(),
        kind: "vergeos.system.update.completed".into(),
        source: "/vergeos/prod".into(),
        subject: Some("cluster-1".into()),
        time: "2026-11-28T17:42:00Z".into(),
        data: json!({"version": "4.13.2", "nodes": 4, "owner": "Lead <lead@example.com>"}),
    }
}

fn send(grants: Grants, services: Arc<dyn HostServices>, params: Value) -> RunReport<Value> {
    let inv = Invocation {
        run_id: "01MAILRUN".into(),
        task: "notify-update".into(),
        attempt: 1,
        cause: Cause::Event,
        params,
        event: Some(update_event()),
    };
    run_action("email", grants, services, Limits::default(), &inv)
}

#[test]
fn a_templated_message_reaches_the_relay_with_every_header() {
    let smtp = SmtpServer::start(&[], None);
    let params = json!({
        "to": "ops@example.com, ${event.data.owner}",
        "cc": ["audit@example.com"],
        "bcc": "archive@example.com",
        "from": "Deploys <deploys@example.com>",
        "reply_to": "oncall@example.com",
        "subject": "Update ${event.data.version} on ${event.subject}",
        "body": "Task ${task.name}, run ${run.id}, attempt ${run.attempt}.\nCc ${params.cc.0}, ${event.data.nodes} nodes.",
        "html": "<p>Version <b>${event.data.version}</b></p>",
    });
    let report = send(mail_grant(), relay(smtp.port), params);
    assert_eq!(
        report.result,
        Ok(json!({"accepted": "250 2.0.0 Ok: queued as Q1",
                  "to": ["ops@example.com", "Lead <lead@example.com>"],
                  "subject": "Update 4.13.2 on cluster-1"})),
        "{report:#?}"
    );
    assert_eq!(
        plugin_lines(&report.log),
        ["sending \"Update 4.13.2 on cluster-1\" to ops@example.com, Lead <lead@example.com>"],
        "{report:#?}"
    );
    assert_host_logged(
        &report,
        Level::Info,
        "mail to 4 recipients accepted by the relay: 250 2.0.0 Ok: queued as Q1",
    );

    let mails = smtp.wait_for(1);
    let m = &mails[0];
    assert_eq!(m.mail_from, "deploys@example.com", "{m:#?}");
    let mut rcpt = m.rcpt_to.clone();
    rcpt.sort();
    assert_eq!(
        rcpt,
        [
            "archive@example.com",
            "audit@example.com",
            "lead@example.com",
            "ops@example.com"
        ],
        "bcc is in the envelope: {m:#?}"
    );
    let headers = [
        ("From", Some("Deploys <deploys@example.com>")),
        ("To", Some("ops@example.com, Lead <lead@example.com>")),
        ("Cc", Some("audit@example.com")),
        ("Reply-To", Some("oncall@example.com")),
        ("Subject", Some("Update 4.13.2 on cluster-1")),
        ("Bcc", None),
    ];
    for (name, value) in headers {
        assert_eq!(m.header(name).as_deref(), value, "{name}: {}", m.data);
    }
    let content_type = m.header("Content-Type").unwrap_or_default();
    assert!(content_type.starts_with("multipart/alternative"), "{}", m.data);
    let body = m.body();
    for part in [
        "text/plain",
        "Task notify-update, run 01MAILRUN, attempt 1.\r\nCc audit@example.com, 4 nodes.",
        "text/html",
        "<p>Version <b>4.13.2</b></p>",
    ] {
        assert!(body.contains(part), "{part:?} in:\n{body}");
    }
    assert!(
        !m.data.contains("archive@"),
        "bcc stays out of the message: {}",
        m.data
    );

    // Without `from`, the relay's default sender; without `html`, plain text only.
    let report = send(
        mail_grant(),
        relay(smtp.port),
        json!({"to": ["ops@example.com"], "subject": "plain", "body": "just text"}),
    );
    assert_eq!(
        report.result,
        Ok(json!({"accepted": "250 2.0.0 Ok: queued as Q2", "to": ["ops@example.com"], "subject": "plain"})),
        "{report:#?}"
    );
    let mails = smtp.wait_for(2);
    let m = &mails[1];
    assert_eq!(m.mail_from, "sundial@example.com", "{m:#?}");
    assert_eq!(m.rcpt_to, ["ops@example.com"], "{m:#?}");
    assert_eq!(
        m.header("From").as_deref(),
        Some("Sundial <sundial@example.com>"),
        "{}",
        m.data
    );
    assert_eq!(m.header("Reply-To"), None, "{}", m.data);
    assert_eq!(m.header("Cc"), None, "{}", m.data);
    assert!(
        m.header("Content-Type")
            .unwrap_or_default()
            .starts_with("text/plain"),
        "{}",
        m.data
    );
    assert!(m.body().contains("just text"), "{}", m.data);
}

#[test]
fn not_granted_no_relay_refused_and_unreachable() {
    let smtp = SmtpServer::start(&["nobody@example.com"], None);
    let ok = json!({"to": "ops@example.com", "subject": "s", "body": "b"});

    let report = send(Grants::default(), relay(smtp.port), ok.clone());
    assert_refused(
        &report,
        RunError::Failed("denied: sending mail is not granted to plugin \"email\"".into()),
        Level::Warn,
        "sending mail is not granted to plugin \"email\"",
    );

    let report = send(mail_grant(), memory(), ok.clone());
    assert_refused(
        &report,
        RunError::Failed("denied: no SMTP relay is configured on this daemon ([mail] in the config)".into()),
        Level::Warn,
        "mail not sent: denied: no SMTP relay is configured on this daemon ([mail] in the config)",
    );

    // A refused recipient fails the whole message with the relay's answer.
    for to in [
        json!("nobody@example.com"),
        json!(["ops@example.com", "nobody@example.com"]),
    ] {
        let report = send(
            mail_grant(),
            relay(smtp.port),
            json!({"to": to, "subject": "s", "body": "b"}),
        );
        match error_of(&report) {
            RunError::Failed(m) => assert!(
                m.starts_with(
                    "rejected by the relay: 550 5.1.1 <nobody@example.com>: Recipient address rejected"
                ),
                "{to}: {m}"
            ),
            other => panic!("{to}: expected failed, got {other:?}\n{report:#?}"),
        }
    }
    assert!(smtp.mails().is_empty(), "nothing accepted: {:#?}", smtp.mails());

    // Nobody listening: worth retrying.
    let report = send(mail_grant(), relay(closed_port()), ok);
    let m = error_message(&report, "retryable");
    assert!(m.starts_with("relay unavailable: "), "{m}");
}

#[test]
fn bad_params_are_invalid_and_never_reach_the_relay() {
    let smtp = SmtpServer::start(&[], None);
    let exact = [
        (
            json!({"subject": "s"}),
            "to: at least one recipient (to, cc or bcc)",
        ),
        (
            json!({"to": " , ", "cc": [], "bcc": [""], "subject": "s"}),
            "to: at least one recipient (to, cc or bcc)",
        ),
        (
            json!({"to": "ops@example.com", "subject": "a\r\nBcc: evil@example.com"}),
            "invalid: subject: one line of at most 998 bytes",
        ),
    ];
    for (params, expected) in exact {
        let report = send(mail_grant(), relay(smtp.port), params.clone());
        assert_eq!(
            report.result,
            Err(RunError::InvalidParams(expected.into())),
            "{params}: {report:#?}"
        );
    }
    // The rest end in a library's words; the stable start is pinned.
    let prefixed = [
        (
            json!({"to": "not an address", "subject": "s"}),
            "invalid: to[0]: \"not an address\" is not an address (",
        ),
        (
            json!({"to": ["ops@example.com"], "cc": "a@example.com, broken", "subject": "s"}),
            "invalid: cc[1]: \"broken\" is not an address (",
        ),
        (
            json!({"to": "ops@example.com", "subject": "s", "from": "nobody"}),
            "invalid: from: \"nobody\" is not an address (",
        ),
        (
            json!({"to": "ops@example.com"}),
            "params: missing field `subject`",
        ),
        (
            json!({"to": "ops@example.com", "subject": "s", "attachments": []}),
            "params: unknown field `attachments`",
        ),
    ];
    for (params, prefix) in prefixed {
        let report = send(mail_grant(), relay(smtp.port), params.clone());
        match error_of(&report) {
            RunError::InvalidParams(m) => assert!(m.starts_with(prefix), "{params}: {m}"),
            other => panic!("{params}: expected invalid params, got {other:?}\n{report:#?}"),
        }
    }
    assert!(smtp.mails().is_empty(), "{:#?}", smtp.mails());
}
