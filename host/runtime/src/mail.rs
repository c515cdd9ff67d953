//! Mail: the operator's SMTP relay (`[mail]` in the daemon config) and the host side
//! of the `sundial:plugin/mail` interface. Messages are checked and built with
//! lettre's typed builder (addresses parsed, headers encoded) and sent with its async
//! SMTP transport; the relay's answer comes back word for word, success or not.

use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde::Deserialize;
use std::time::Duration;

/// Most recipients (to + cc + bcc) of one message.
pub const MAX_RECIPIENTS: usize = 100;
/// Largest body (text plus HTML), in bytes: 10 MiB.
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;
/// Longest subject, in bytes.
pub const MAX_SUBJECT_BYTES: usize = 998;

/// How the connection to the relay is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// Plain connection upgraded with STARTTLS, which is required (default; port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS; port 465).
    Tls,
    /// No encryption: only for a relay on localhost or a trusted network.
    None,
}

/// The `[mail]` section of the daemon config.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailConfig {
    /// Relay host name or address. Required.
    pub host: String,
    /// Relay port. Default: 587 for `starttls`, 465 for `tls`, 25 for `none`.
    #[serde(default)]
    pub port: Option<u16>,
    /// `starttls` (default), `tls` or `none`.
    #[serde(default)]
    pub security: Security,
    /// User name for SMTP AUTH. Default: no authentication.
    #[serde(default)]
    pub username: Option<String>,
    /// Name of the Sundial secret holding the password (`sundial secret set NAME`).
    #[serde(default)]
    pub password_secret: Option<String>,
    /// `From` of messages that do not set one, e.g. `Sundial <sundial@example.com>`.
    /// Required.
    pub from: String,
    /// Connect and per-command timeout in seconds. Default 30.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// A PEM file of CA certificates to trust for the relay, besides the public roots
    /// (a relay with a certificate from an internal CA). Default: none.
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
    /// Accept any certificate from the relay (self-signed lab relays). Default false.
    #[serde(default)]
    pub allow_insecure_tls: bool,
}

fn default_timeout() -> u64 {
    30
}

impl MailConfig {
    /// Check every field, naming the first bad one.
    pub fn validate(&self) -> Result<(), String> {
        if self.host.trim().is_empty() {
            return Err("mail.host: required".into());
        }
        self.from
            .parse::<Mailbox>()
            .map_err(|e| format!("mail.from: {:?} is not an address ({e})", self.from))?;
        if self.username.is_some() != self.password_secret.is_some() {
            return Err("mail.username and mail.password_secret: give both or neither".into());
        }
        if !(1..=600).contains(&self.timeout_secs) {
            return Err(format!(
                "mail.timeout_secs: {} is outside 1..=600",
                self.timeout_secs
            ));
        }
        Ok(())
    }

    /// The port to connect to.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.security {
            Security::Starttls => 587,
            Security::Tls => 465,
            Security::None => 25,
        })
    }
}

/// One message, as a plugin gives it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Message {
    /// `From`; none = the relay's default.
    pub from: Option<String>,
    /// `To` addresses.
    pub to: Vec<String>,
    /// `Cc` addresses.
    pub cc: Vec<String>,
    /// `Bcc` addresses (envelope only).
    pub bcc: Vec<String>,
    /// `Reply-To`.
    pub reply_to: Option<String>,
    /// Subject.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
    /// HTML alternative.
    pub html: Option<String>,
}

/// Why a message was not sent (mirrors the WIT `mail-error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailError {
    /// Not granted, or no relay configured.
    Denied(String),
    /// The message is invalid; retrying cannot help.
    Invalid(String),
    /// The relay refused it for good (5xx), with its answer.
    Rejected(String),
    /// Unreachable, timed out, or a 4xx answer: worth retrying.
    Unavailable(String),
}

impl std::fmt::Display for MailError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MailError::Denied(m) => write!(f, "denied: {m}"),
            MailError::Invalid(m) => write!(f, "invalid: {m}"),
            MailError::Rejected(m) => write!(f, "rejected: {m}"),
            MailError::Unavailable(m) => write!(f, "unavailable: {m}"),
        }
    }
}

fn mailbox(field: &str, text: &str) -> Result<Mailbox, MailError> {
    text.trim()
        .parse::<Mailbox>()
        .map_err(|e| MailError::Invalid(format!("{field}: {text:?} is not an address ({e})")))
}

/// Check `message` and build it, with `default_from` when it names no sender (pure).
pub fn build(message: &Message, default_from: &str) -> Result<lettre::Message, MailError> {
    let recipients = message.to.len() + message.cc.len() + message.bcc.len();
    if recipients == 0 {
        return Err(MailError::Invalid(
            "to: at least one recipient (to, cc or bcc)".into(),
        ));
    }
    if recipients > MAX_RECIPIENTS {
        return Err(MailError::Invalid(format!(
            "{recipients} recipients, at most {MAX_RECIPIENTS}"
        )));
    }
    if message.subject.len() > MAX_SUBJECT_BYTES || message.subject.contains(['\r', '\n']) {
        return Err(MailError::Invalid(format!(
            "subject: one line of at most {MAX_SUBJECT_BYTES} bytes"
        )));
    }
    let body_bytes = message.body.len() + message.html.as_ref().map_or(0, String::len);
    if body_bytes > MAX_BODY_BYTES {
        return Err(MailError::Invalid(format!(
            "body: {body_bytes} bytes, at most {MAX_BODY_BYTES}"
        )));
    }
    let from = match &message.from {
        Some(f) => mailbox("from", f)?,
        None => mailbox("mail.from (daemon config)", default_from)?,
    };
    let mut builder = lettre::Message::builder()
        .from(from)
        .subject(message.subject.clone());
    for (i, a) in message.to.iter().enumerate() {
        builder = builder.to(mailbox(&format!("to[{i}]"), a)?);
    }
    for (i, a) in message.cc.iter().enumerate() {
        builder = builder.cc(mailbox(&format!("cc[{i}]"), a)?);
    }
    for (i, a) in message.bcc.iter().enumerate() {
        builder = builder.bcc(mailbox(&format!("bcc[{i}]"), a)?);
    }
    if let Some(r) = &message.reply_to {
        builder = builder.reply_to(mailbox("reply_to", r)?);
    }
    let built = match &message.html {
        None => builder.singlepart(SinglePart::plain(message.body.clone())),
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(
            message.body.clone(),
            html.clone(),
        )),
    };
    built.map_err(|e| MailError::Invalid(e.to_string()))
}

/// The relay's answer to an error, classified: 5xx permanent, everything else
/// (4xx, connection, timeout, TLS) worth retrying.
fn classify(e: &lettre::transport::smtp::Error) -> MailError {
    let mut text = e.to_string();
    // lettre says "permanent error (550): 5.1.1 ..."; give the relay's line as it was.
    if let (Some(code), Some((_, rest))) = (e.status(), text.split_once("): ")) {
        text = format!("{code} {rest}");
    }
    if e.is_permanent() {
        MailError::Rejected(text)
    } else {
        MailError::Unavailable(text)
    }
}

/// The certificates of a PEM file, each checked as a trust anchor (a file without one is
/// an error).
fn ca_certificates(path: &std::path::Path) -> Result<Vec<Certificate>, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let what = format!("mail.ca_file: {}", path.display());
    let text = std::fs::read(path).map_err(|e| format!("{what}: {e}"))?;
    let ders: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{what}: {e}"))?;
    if ders.is_empty() {
        return Err(format!(
            "{what}: no PEM certificate (-----BEGIN CERTIFICATE-----) in it"
        ));
    }
    let mut certs = Vec::new();
    for (i, der) in ders.into_iter().enumerate() {
        rustls::RootCertStore::empty()
            .add(der.clone())
            .map_err(|e| format!("{what}: certificate {} is not valid: {e}", i + 1))?;
        certs.push(
            Certificate::from_der(der.to_vec())
                .map_err(|e| format!("{what}: certificate {} is not valid: {e}", i + 1))?,
        );
    }
    Ok(certs)
}

/// The relay: each message gets its own connection (mail from tasks is rare; no pool
/// to go stale), authenticated with the password secret as it is at send time.
#[derive(Clone)]
pub struct Mailer {
    config: MailConfig,
    tls: Tls,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("host", &self.config.host)
            .field("port", &self.config.port())
            .finish()
    }
}

impl Mailer {
    /// A mailer for `config` (validated; TLS set up once).
    pub fn new(config: MailConfig) -> Result<Mailer, String> {
        config.validate()?;
        let roots = match &config.ca_file {
            None => Vec::new(),
            Some(path) => ca_certificates(path)?,
        };
        let tls = |host: &str| {
            let mut builder = TlsParameters::builder(host.to_string())
                .dangerous_accept_invalid_certs(config.allow_insecure_tls)
                .dangerous_accept_invalid_hostnames(config.allow_insecure_tls);
            for cert in &roots {
                builder = builder.add_root_certificate(cert.clone());
            }
            builder
                .build_rustls()
                .map_err(|e| format!("mail: TLS setup for {host}: {e}"))
        };
        let tls = match config.security {
            Security::None => Tls::None,
            Security::Starttls => Tls::Required(tls(&config.host)?),
            Security::Tls => Tls::Wrapper(tls(&config.host)?),
        };
        Ok(Mailer { config, tls })
    }

    /// The configuration.
    pub fn config(&self) -> &MailConfig {
        &self.config
    }

    /// Send one message, authenticating with `password` (the value of
    /// `password_secret`); the relay's final answer on success.
    pub async fn send(&self, message: &Message, password: Option<String>) -> Result<String, MailError> {
        let built = build(message, &self.config.from)?;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(self.config.host.clone())
            .port(self.config.port())
            .tls(self.tls.clone())
            .timeout(Some(Duration::from_secs(self.config.timeout_secs)));
        if let (Some(user), Some(pass)) = (&self.config.username, password) {
            builder = builder.credentials(Credentials::new(user.clone(), pass));
        }
        let transport: AsyncSmtpTransport<Tokio1Executor> = builder.build();
        let response = transport.send(built).await.map_err(|e| classify(&e))?;
        let text: Vec<&str> = response.message().collect();
        Ok(format!("{} {}", response.code(), text.join(" ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg() -> Message {
        Message {
            to: vec!["Ops <ops@example.com>".into()],
            subject: "Update installed".into(),
            body: "done".into(),
            ..Message::default()
        }
    }

    #[test]
    fn build_checks_addresses_counts_and_subject() {
        let built = build(&msg(), "Sundial <sundial@example.com>").unwrap();
        let text = String::from_utf8(built.formatted()).unwrap();
        assert!(text.contains("From: Sundial <sundial@example.com>"), "{text}");
        assert!(text.contains("To: Ops <ops@example.com>"), "{text}");
        let bad = |m: Message| build(&m, "sundial@example.com").unwrap_err();
        assert_eq!(
            bad(Message { to: vec![], ..msg() }),
            MailError::Invalid("to: at least one recipient (to, cc or bcc)".into())
        );
        match bad(Message {
            cc: vec!["ok@example.com".into(), "not an address".into()],
            ..msg()
        }) {
            MailError::Invalid(m) => assert!(m.starts_with("cc[1]: \"not an address\""), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            bad(Message {
                subject: "a\r\nBcc: evil@example.com".into(),
                ..msg()
            }),
            MailError::Invalid(m) if m.starts_with("subject")
        ));
        assert!(matches!(
            bad(Message {
                to: vec!["a@example.com".into(); 101],
                ..msg()
            }),
            MailError::Invalid(m) if m.contains("at most 100")
        ));
        // Bcc recipients are in the envelope, never in the headers.
        let with_bcc = build(
            &Message {
                bcc: vec!["hidden@example.com".into()],
                ..msg()
            },
            "s@example.com",
        )
        .unwrap();
        assert!(
            with_bcc
                .envelope()
                .to()
                .iter()
                .any(|a| a.to_string() == "hidden@example.com")
        );
        assert!(
            !String::from_utf8(with_bcc.formatted())
                .unwrap()
                .contains("hidden@")
        );
    }

    #[test]
    fn config_is_validated() {
        let c: MailConfig = toml::from_str("host = \"smtp.example.com\"\nfrom = \"s@example.com\"").unwrap();
        assert_eq!((c.port(), c.security), (587, Security::Starttls));
        c.validate().unwrap();
        let bad = MailConfig {
            from: "nope".into(),
            ..c.clone()
        };
        assert!(bad.validate().unwrap_err().starts_with("mail.from"));
        let half = MailConfig {
            username: Some("u".into()),
            ..c
        };
        assert!(half.validate().unwrap_err().contains("both or neither"));
    }
}
