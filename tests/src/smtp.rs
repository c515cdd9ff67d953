//! A real SMTP server on loopback for tests: ESMTP with `AUTH PLAIN`/`LOGIN`, a list
//! of recipients it refuses with 550, and every accepted message kept (envelope,
//! authenticated user, raw data) for the test to read.

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
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind smtp");
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Mutex::new(Shared {
            mails: Vec::new(),
            refuse: refuse.iter().map(|s| s.to_string()).collect(),
            credentials: credentials.map(|(u, p)| (u.to_string(), p.to_string())),
        }));
        let s = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let s = s.clone();
                std::thread::spawn(move || {
                    let _ = session(stream, &s);
                });
            }
        });
        SmtpServer { port, shared }
    }

    /// Messages accepted so far.
    pub fn mails(&self) -> Vec<Mail> {
        self.shared.lock().unwrap().mails.clone()
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

fn session(stream: TcpStream, shared: &Mutex<Shared>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut out = stream.try_clone()?;
    let mut input = BufReader::new(stream);
    let (refuse, credentials) = {
        let s = shared.lock().unwrap();
        (s.refuse.clone(), s.credentials.clone())
    };
    let mut say = |text: &str| out.write_all(format!("{text}\r\n").as_bytes());
    say("220 mail.test ESMTP sundial-tests")?;
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
        match verb.as_str() {
            "EHLO" | "HELO" => {
                if credentials.is_some() {
                    say("250-mail.test")?;
                    say("250-AUTH PLAIN LOGIN")?;
                    say("250 8BITMIME")?;
                } else {
                    say("250-mail.test")?;
                    say("250 8BITMIME")?;
                }
            }
            "AUTH" => {
                let parts: Vec<&str> = cmd.split_whitespace().collect();
                let (u, p) = match parts.get(1).map(|m| m.to_ascii_uppercase()).as_deref() {
                    Some("PLAIN") => {
                        let blob = match parts.get(2) {
                            Some(b) => decode(b),
                            None => {
                                say("334 ")?;
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
                        say("334 VXNlcm5hbWU6")?;
                        let mut l = String::new();
                        input.read_line(&mut l)?;
                        let u = decode(&l);
                        say("334 UGFzc3dvcmQ6")?;
                        l.clear();
                        input.read_line(&mut l)?;
                        (u, decode(&l))
                    }
                    _ => {
                        say("504 5.5.4 mechanism not supported")?;
                        continue;
                    }
                };
                if credentials.as_ref() == Some(&(u.clone(), p)) {
                    user = Some(u);
                    say("235 2.7.0 Authentication successful")?;
                } else {
                    say("535 5.7.8 Authentication credentials invalid")?;
                }
            }
            "MAIL" => {
                if credentials.is_some() && user.is_none() {
                    say("530 5.7.0 Authentication required")?;
                    continue;
                }
                from = address(&cmd);
                rcpt.clear();
                say("250 2.1.0 Ok")?;
            }
            "RCPT" => {
                let to = address(&cmd);
                if refuse.iter().any(|r| r.eq_ignore_ascii_case(&to)) {
                    say(&format!(
                        "550 5.1.1 <{to}>: Recipient address rejected: User unknown"
                    ))?;
                } else {
                    rcpt.push(to);
                    say("250 2.1.5 Ok")?;
                }
            }
            "DATA" => {
                if rcpt.is_empty() {
                    say("554 5.5.1 No valid recipients")?;
                    continue;
                }
                say("354 End data with <CR><LF>.<CR><LF>")?;
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
                    });
                    s.mails.len()
                };
                say(&format!("250 2.0.0 Ok: queued as Q{n}"))?;
            }
            "RSET" => {
                from.clear();
                rcpt.clear();
                say("250 2.0.0 Ok")?;
            }
            "NOOP" => say("250 2.0.0 Ok")?,
            "QUIT" => {
                say("221 2.0.0 Bye")?;
                return Ok(());
            }
            _ => say("502 5.5.2 Command not recognized")?,
        }
    }
}
