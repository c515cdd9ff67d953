//! HTTP on loopback for tests: blocking clients (one-shot and keep-alive) and real
//! servers (hyper) that answer, hang, or record what they received.

use std::net::SocketAddr;

/// What a test HTTP server does with each request.
#[derive(Clone, Copy, Debug)]
pub enum Behaviour {
    /// Answer 200 with a JSON body echoing the method and path.
    Ok,
    /// Accept the connection and never answer.
    Hang,
}

/// Start a real HTTP/1.1 server on 127.0.0.1 (random port) in the background.
pub async fn http_server(behaviour: Behaviour) -> SocketAddr {
    use hyper::service::service_fn;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                if let Behaviour::Hang = behaviour {
                    let _keep = stream;
                    tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
                    return;
                }
                let service = service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                    let body = serde_json::json!({
                        "method": req.method().as_str(),
                        "path": req.uri().path(),
                        "idempotency_key": req.headers().get("idempotency-key").and_then(|v| v.to_str().ok()),
                    });
                    Ok::<_, std::convert::Infallible>(
                        hyper::Response::builder()
                            .header("content-type", "application/json")
                            .body(http_body_util::Full::new(bytes::Bytes::from(body.to_string())))
                            .expect("response"),
                    )
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// One keep-alive HTTP/1.1 connection, for load generators.
pub struct KeepAlive {
    reader: std::io::BufReader<std::net::TcpStream>,
    writer: std::net::TcpStream,
}

impl KeepAlive {
    /// Connect to `addr` (host:port).
    pub fn open(addr: &str) -> KeepAlive {
        let s = std::net::TcpStream::connect(addr).expect("connect");
        s.set_nodelay(true).ok();
        KeepAlive {
            reader: std::io::BufReader::new(s.try_clone().expect("clone")),
            writer: s,
        }
    }

    /// Send one request with a bearer token and an optional JSON body; returns
    /// (status, body).
    pub fn request(&mut self, method: &str, path: &str, token: &str, body: Option<&str>) -> (u16, String) {
        use std::io::{BufRead, Read, Write};
        let body = body.unwrap_or_default();
        let kind = if body.is_empty() {
            ""
        } else {
            "content-type: application/json\r\n"
        };
        let req = format!(
            "{method} {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\n{kind}content-length: {}\r\n\r\n{body}",
            body.len()
        );
        self.writer.write_all(req.as_bytes()).expect("send");
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("status line");
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut len = 0usize;
        loop {
            line.clear();
            self.reader.read_line(&mut line).expect("header");
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; len];
        self.reader.read_exact(&mut body).expect("body");
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}

/// A minimal blocking HTTP/1.1 request (Connection: close); returns (status, body).
/// Panics when the daemon cannot be reached; see [`try_raw_http`].
pub fn raw_http(addr: &str, method: &str, path: &str, headers: &str, body: &[u8]) -> (u16, String) {
    try_raw_http(addr, method, path, headers, body).expect("HTTP request to the daemon")
}

/// Like [`raw_http`], but returns the I/O error (a daemon killed mid-request). An
/// answer cut short (fewer body bytes than its `content-length`, or a chunked body
/// without its last chunk) is an error too, never a truncated success.
pub fn try_raw_http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &str,
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    try_raw_exchange(addr, method, path, headers, body).map(|(status, _, body)| (status, body))
}

/// Like [`raw_http`], with the answer's head too (status line and headers, in lower
/// case): (status, head, body).
pub fn raw_exchange(
    addr: &str,
    method: &str,
    path: &str,
    headers: &str,
    body: &[u8],
) -> (u16, String, String) {
    try_raw_exchange(addr, method, path, headers, body).expect("HTTP request to the daemon")
}

fn try_raw_exchange(
    addr: &str,
    method: &str,
    path: &str,
    headers: &str,
    body: &[u8],
) -> std::io::Result<(u16, String, String)> {
    use std::io::{Error, ErrorKind, Read, Write};
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(120)))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n{headers}\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let cut = |what: &str| {
        Error::new(
            ErrorKind::UnexpectedEof,
            format!("the answer was cut short: {what}"),
        )
    };
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| cut("no complete head"))?;
    let head = String::from_utf8_lossy(&response[..split]).to_ascii_lowercase();
    let rest = &response[split + 4..];
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| cut("no status"))?;
    let content_length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    let body = if head.contains("transfer-encoding: chunked") {
        dechunk(rest).ok_or_else(|| cut("no last chunk"))?
    } else if let Some(len) = content_length {
        if rest.len() < len {
            return Err(cut(&format!("{} of {len} body bytes", rest.len())));
        }
        String::from_utf8_lossy(&rest[..len]).into_owned()
    } else {
        String::from_utf8_lossy(rest).into_owned()
    };
    Ok((status, head, body))
}

/// The body of a chunked answer, or `None` when its last (empty) chunk is missing.
fn dechunk(mut s: &[u8]) -> Option<String> {
    let mut out = Vec::new();
    loop {
        let line_end = s.windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(&s[..line_end]).ok()?;
        let n = usize::from_str_radix(size.trim(), 16).ok()?;
        let rest = &s[line_end + 2..];
        if n == 0 {
            return Some(String::from_utf8_lossy(&out).into_owned());
        }
        if rest.len() < n + 2 {
            return None;
        }
        out.extend_from_slice(&rest[..n]);
        s = rest[n..].strip_prefix(b"\r\n")?;
    }
}

/// How a [`Receiver`] answers one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// This status with these headers (and a short body).
    Status(u16, Vec<(String, String)>),
    /// Never answer.
    Hang,
}

/// A request a [`Receiver`] got.
#[derive(Debug, Clone)]
pub struct Received {
    /// Method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Headers, lower-case names, in order.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
    /// When it arrived.
    pub at: std::time::Instant,
    /// The client's address: the connection it came on.
    pub peer: SocketAddr,
}

impl Received {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What a loopback server answers one request with.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
    /// Never answer instead.
    pub hang: bool,
    /// Wait this long before answering, in milliseconds (0: answer at once).
    pub delay_ms: u64,
}

/// Decides the answer to each request a loopback server gets.
pub type Handler = std::sync::Arc<dyn Fn(Received) -> Answer + Send + Sync>;

/// A real HTTP/1.1 server on 127.0.0.1, on its own runtime, answering with `handler`.
/// Returns its address and the runtime (dropping it stops the server).
pub fn serve_http(handler: Handler) -> (SocketAddr, tokio::runtime::Runtime) {
    serve_http_on(0, handler)
}

/// [`serve_http`] on a given port (0: any free one).
pub fn serve_http_on(port: u16, handler: Handler) -> (SocketAddr, tokio::runtime::Runtime) {
    use hyper::service::service_fn;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("server runtime");
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(("127.0.0.1", port)))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    runtime.spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                return;
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let handler = handler.clone();
                    async move {
                        use http_body_util::BodyExt;
                        let method = req.method().to_string();
                        let path = req
                            .uri()
                            .path_and_query()
                            .map(|p| p.to_string())
                            .unwrap_or_default();
                        let headers = req
                            .headers()
                            .iter()
                            .map(|(k, v)| {
                                (k.as_str().to_string(), v.to_str().unwrap_or_default().to_string())
                            })
                            .collect();
                        let body = req
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes().to_vec())
                            .unwrap_or_default();
                        let answer = handler(Received {
                            method,
                            path,
                            headers,
                            body,
                            at: std::time::Instant::now(),
                            peer,
                        });
                        if answer.hang {
                            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
                        }
                        if answer.delay_ms > 0 {
                            tokio::time::sleep(std::time::Duration::from_millis(answer.delay_ms)).await;
                        }
                        let mut response = hyper::Response::builder().status(answer.status);
                        for (k, v) in answer.headers {
                            response = response.header(k, v);
                        }
                        Ok::<_, std::convert::Infallible>(
                            response
                                .body(http_body_util::Full::new(bytes::Bytes::from(answer.body)))
                                .expect("response"),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, runtime)
}

/// A real HTTP/1.1 webhook receiver on 127.0.0.1 that records every request and
/// answers from a script (then 200 once the script is used up), on its own runtime.
pub struct Receiver {
    /// Where it listens.
    pub addr: SocketAddr,
    requests: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Receiver {
    /// Start one answering `script` in order, then 200 (or `then` for every later request).
    pub fn start(script: Vec<Reply>, then: Reply) -> Receiver {
        Receiver::start_on(0, script, then)
    }

    /// [`Receiver::start`] on a given port (0: any free one).
    pub fn start_on(port: u16, script: Vec<Reply>, then: Reply) -> Receiver {
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let script = std::sync::Mutex::new(std::collections::VecDeque::from(script));
        let log = requests.clone();
        let (addr, runtime) = serve_http_on(
            port,
            std::sync::Arc::new(move |req: Received| {
                log.lock().expect("log").push(req);
                match script.lock().expect("script").pop_front().unwrap_or(then.clone()) {
                    Reply::Hang => Answer {
                        status: 500,
                        headers: Vec::new(),
                        body: Vec::new(),
                        hang: true,
                        delay_ms: 0,
                    },
                    Reply::Status(status, headers) => Answer {
                        status,
                        headers,
                        body: format!("answer {status}").into_bytes(),
                        hang: false,
                        delay_ms: 0,
                    },
                }
            }),
        );
        Receiver {
            addr,
            requests,
            _runtime: runtime,
        }
    }

    /// How many requests arrived so far.
    pub fn count(&self) -> usize {
        self.requests.lock().expect("log").len()
    }

    /// The requests so far.
    pub fn requests(&self) -> Vec<Received> {
        self.requests.lock().expect("log").clone()
    }

    /// Wait (up to 60 s) until at least `n` requests arrived; returns them.
    pub fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let got = self.requests();
            if got.len() >= n {
                return got;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the receiver got {} of {n} requests",
                got.len()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}
