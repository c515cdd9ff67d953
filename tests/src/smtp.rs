//! A real SMTP server on loopback for tests: ESMTP with `AUTH PLAIN`/`LOGIN`, a list
//! of recipients it refuses with 550, `STARTTLS` or TLS from the first byte (SMTPS) with
//! a real certificate, and every accepted message kept (envelope, authenticated user,
//! whether it came over TLS, raw data) for the test to read.

use base64::Engine;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One accepted message.
#[derive(Debug, Clone)]
pub struct Mail {
    /// `MAIL FROM` address.
    pub mail_from: String,
    /// `RCPT TO` addresses that were accepted.
    pub rcpt_to: Vec<String>,
    /// The user that authenticated, if any.
    pub auth_user: Option<String>,
    /// The message as sent after `DATA` (dot-unstuffed, CRLF line ends).
    pub data: String,
    /// Whether the session was encrypted when the message came.
    pub tls: bool,
}

impl Mail {
    /// The first header `name` (case-insensitive), unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or_default();
        let mut value: Option<String> = None;
        for line in head.split("\r\n") {
            if let Some(v) = value.as_mut() {
                if line.starts_with([' ', '\t']) {
                    v.push(' ');
                    v.push_str(line.trim());
                    continue;
                }
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case(name)
            {
                value = Some(v.trim().to_string());
            }
        }
        value
    }

    /// The body after the headers (undecoded).
    pub fn body(&self) -> String {
        self.data
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default()
    }
}

#[derive(Default)]
struct Shared {
    mails: Vec<Mail>,
    refuse: Vec<String>,
    credentials: Option<(String, String)>,
    /// Commands (verbs) received before the session was encrypted.
    plaintext: Vec<String>,
}

/// How a [`SmtpServer`] secures its sessions.
#[derive(Clone)]
pub enum Security {
    /// Plain text, no `STARTTLS` offered.
    None,
    /// Plain text first; `STARTTLS` offered and upgraded with this certificate.
    StartTls(Arc<rustls::ServerConfig>),
    /// TLS from the first byte (SMTPS).
    Tls(Arc<rustls::ServerConfig>),
}

/// A self-signed certificate for `names` (DNS names or IP addresses): the PEM a client
/// trusts, and a TLS server configuration that presents it.
pub fn self_signed(names: &[&str]) -> (String, Arc<rustls::ServerConfig>) {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .expect("generate a certificate");
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(signing_key.serialize_der().into());
    let config =
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key)
            .expect("server certificate");
    (cert.pem(), Arc::new(config))
}

/// A session's connection, plain or encrypted.
enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>),
}

impl std::io::Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

/// Wrap `tcp` in TLS as the server; the handshake runs on first use.
fn encrypt(tcp: TcpStream, config: &Arc<rustls::ServerConfig>) -> std::io::Result<Conn> {
    let conn = rustls::ServerConnection::new(config.clone()).map_err(std::io::Error::other)?;
    Ok(Conn::Tls(Box::new(rustls::StreamOwned::new(conn, tcp))))
}

/// A running SMTP server; it stops with the test process.
#[derive(Clone)]
pub struct SmtpServer {
    /// `127.0.0.1`-bound port.
    pub port: u16,
    shared: Arc<Mutex<Shared>>,
}

impl SmtpServer {
    /// Start a server that refuses the recipients in `refuse` (550) and, when
    /// `credentials` are given, requires that user and password.
    pub fn start(refuse: &[&str], credentials: Option<(&str, &str)>) -> SmtpServer {
        SmtpServer::start_on(0, refuse, credentials)
    }

    /// [`SmtpServer::start`] on a given port (0: any free one).
    pub fn start_on(port: u16, refuse: &[&str], credentials: Option<(&str, &str)>) -> SmtpServer {
        SmtpServer::start_secure(port, Security::None, refuse, credentials)
    }

    /// [`SmtpServer::start_on`], securing sessions as `security` says.
    pub fn start_secure(
        port: u16,
        security: Security,
        refuse: &[&str],
        credentials: Option<(&str, &str)>,
    ) -> SmtpServer {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind smtp");
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Mutex::new(Shared {
            mails: Vec::new(),
            refuse: refuse.iter().map(|s| s.to_string()).collect(),
            credentials: credentials.map(|(u, p)| (u.to_string(), p.to_string())),
            plaintext: Vec::new(),
        }));
        let s = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (s, security) = (s.clone(), security.clone());
                std::thread::spawn(move || {
                    let _ = session(stream, &security, &s);
                });
            }
        });
        SmtpServer { port, shared }
    }

    /// Messages accepted so far.
    pub fn mails(&self) -> Vec<Mail> {
        self.shared.lock().unwrap().mails.clone()
    }

    /// Command verbs received before a session was encrypted, in order (every
    /// session's).
    pub fn plaintext_commands(&self) -> Vec<String> {
        self.shared.lock().unwrap().plaintext.clone()
    }

    /// Wait (up to 30 s) until `n` messages arrived.
    pub fn wait_for(&self, n: usize) -> Vec<Mail> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mails = self.mails();
            if mails.len() >= n {
                return mails;
            }
            assert!(
                Instant::now() < deadline,
                "only {} of {n} mails arrived",
                mails.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn decode(b64: &str) -> String {
    base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn address(arg: &str) -> String {
    let start = arg.find('<').map_or(0, |i| i + 1);
    let end = arg.rfind('>').unwrap_or(arg.len());
    arg.get(start..end).unwrap_or_default().to_string()
}

fn session(stream: TcpStream, security: &Security, shared: &Mutex<Shared>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let (conn, mut tls) = match security {
        Security::Tls(config) => (encrypt(stream, config)?, true),
        _ => (Conn::Plain(stream), false),
    };
    let mut input = BufReader::new(conn);
    let (refuse, credentials) = {
        let s = shared.lock().unwrap();
        (s.refuse.clone(), s.credentials.clone())
    };
    fn say(input: &mut BufReader<Conn>, text: &str) -> std::io::Result<()> {
        let out = input.get_mut();
        out.write_all(format!("{text}\r\n").as_bytes())?;
        out.flush()
    }
    macro_rules! say {
        ($text:expr) => {
            say(&mut input, $text)
        };
    }
    say!("220 mail.test ESMTP sundial-tests")?;
    let (mut from, mut rcpt, mut user) = (String::new(), Vec::new(), None::<String>);
    let mut line = String::new();
    loop {
        line.clear();
        if input.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_string();
        let upper = cmd.to_ascii_uppercase();
        let verb = upper.split_whitespace().next().unwrap_or_default().to_string();
        if !tls {
            shared.lock().unwrap().plaintext.push(verb.clone());
        }
        match verb.as_str() {
            "EHLO" | "HELO" => {
                say!("250-mail.test")?;
                if credentials.is_some() {
                    say!("250-AUTH PLAIN LOGIN")?;
                }
                if !tls && matches!(security, Security::StartTls(_)) {
                    say!("250-STARTTLS")?;
                }
                say!("250 8BITMIME")?;
            }
            "STARTTLS" => match security {
                Security::StartTls(config) if !tls => {
                    say!("220 2.0.0 Ready to start TLS")?;
                    // The client sends nothing more until the handshake, so nothing is
                    // buffered; the session starts over (RFC 3207).
                    let Conn::Plain(tcp) = input.into_inner() else {
                        unreachable!("plain before STARTTLS");
                    };
                    input = BufReader::new(encrypt(tcp, config)?);
                    tls = true;
                    from.clear();
                    rcpt.clear();
                    user = None;
                }
                _ => say!("502 5.5.1 STARTTLS not offered")?,
            },
            "AUTH" => {
                let parts: Vec<&str> = cmd.split_whitespace().collect();
                let (u, p) = match parts.get(1).map(|m| m.to_ascii_uppercase()).as_deref() {
                    Some("PLAIN") => {
                        let blob = match parts.get(2) {
                            Some(b) => decode(b),
                            None => {
                                say!("334 ")?;
                                let mut l = String::new();
                                input.read_line(&mut l)?;
                                decode(&l)
                            }
                        };
                        let mut f = blob.split('\0').skip(1);
                        (
                            f.next().unwrap_or_default().to_string(),
                            f.next().unwrap_or_default().to_string(),
                        )
                    }
                    Some("LOGIN") => {
                        say!("334 VXNlcm5hbWU6")?;
                        let mut l = String::new();
                        input.read_line(&mut l)?;
                        let u = decode(&l);
                        say!("334 UGFzc3dvcmQ6")?;
                        l.clear();
                        input.read_line(&mut l)?;
                        (u, decode(&l))
                    }
                    _ => {
                        say!("504 5.5.4 mechanism not supported")?;
                        continue;
                    }
                };
                if credentials.as_ref() == Some(&(u.clone(), p)) {
                    user = Some(u);
                    say!("235 2.7.0 Authentication successful")?;
                } else {
                    say!("535 5.7.8 Authentication credentials invalid")?;
                }
            }
            "MAIL" => {
                if credentials.is_some() && user.is_none() {
                    say!("530 5.7.0 Authentication required")?;
                    continue;
                }
                from = address(&cmd);
                rcpt.clear();
                say!("250 2.1.0 Ok")?;
            }
            "RCPT" => {
                let to = address(&cmd);
                if refuse.iter().any(|r| r.eq_ignore_ascii_case(&to)) {
                    say!(&format!(
                        "550 5.1.1 <{to}>: Recipient address rejected: User unknown"
                    ))?;
                } else {
                    rcpt.push(to);
                    say!("250 2.1.5 Ok")?;
                }
            }
            "DATA" => {
                if rcpt.is_empty() {
                    say!("554 5.5.1 No valid recipients")?;
                    continue;
                }
                say!("354 End data with <CR><LF>.<CR><LF>")?;
                let mut data = String::new();
                loop {
                    let mut l = String::new();
                    if input.read_line(&mut l)? == 0 {
                        return Ok(());
                    }
                    if l == ".\r\n" || l == ".\n" {
                        break;
                    }
                    data.push_str(l.strip_prefix('.').unwrap_or(&l));
                }
                let n = {
                    let mut s = shared.lock().unwrap();
                    s.mails.push(Mail {
                        mail_from: from.clone(),
                        rcpt_to: rcpt.clone(),
                        auth_user: user.clone(),
                        data,
                        tls,
                    });
                    s.mails.len()
                };
                say!(&format!("250 2.0.0 Ok: queued as Q{n}"))?;
            }
            "RSET" => {
                from.clear();
                rcpt.clear();
                say!("250 2.0.0 Ok")?;
            }
            "NOOP" => say!("250 2.0.0 Ok")?,
            "QUIT" => {
                say!("221 2.0.0 Bye")?;
                return Ok(());
            }
            _ => say!("502 5.5.2 Command not recognized")?,
        }
    }
}
