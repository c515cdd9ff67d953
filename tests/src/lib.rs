//! Helpers for Sundial's workspace-level integration tests: where the real binary and
//! the real compiled plugins are, a shared runtime, and small loopback HTTP servers.

pub mod smtp;
pub mod vergeos;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use sundial::runtime::{
    Grants, Invocation, Limits, MemoryServices, NetworkPolicy, Plugin, PluginIdentity, RunReport, Runtime,
    RuntimeConfig,
};

/// Path of a compiled wasm plugin by crate name, e.g. `sundial-fixture-hostile`.
pub fn wasm(package: &str) -> PathBuf {
    let path = PathBuf::from(env!("SUNDIAL_WASM_DIR")).join(format!("{}.wasm", package.replace('-', "_")));
    assert!(
        path.exists(),
        "{} is missing: the tests crate's build script builds it",
        path.display()
    );
    path
}

/// Path of the `sundial` binary built by `cargo test` (or `cargo build`) at the
/// workspace root, next to the running test or tool.
pub fn sundial_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let name = format!("sundial{}", std::env::consts::EXE_SUFFIX);
    // target/<profile>/deps/<test> or target/<profile>/<tool>
    let candidates: Vec<PathBuf> = exe.ancestors().skip(1).take(2).map(|d| d.join(&name)).collect();
    match candidates.iter().find(|p| p.exists()) {
        Some(bin) => bin.clone(),
        None => panic!(
            "{} is missing: run the tests with `cargo test` at the workspace root (or `cargo build -p sundial` \
             in the same profile), which builds it",
            candidates[0].display()
        ),
    }
}

/// One runtime per test process (as the daemon has one), loopback allowed or not.
pub fn runtime(allow_loopback: bool) -> Runtime {
    static DENY: OnceLock<Runtime> = OnceLock::new();
    static ALLOW: OnceLock<Runtime> = OnceLock::new();
    let cell = if allow_loopback { &ALLOW } else { &DENY };
    cell.get_or_init(|| {
        Runtime::new(RuntimeConfig {
            network: NetworkPolicy {
                allow_loopback,
                ..NetworkPolicy::default()
            },
            max_instances: 16,
            ..RuntimeConfig::default()
        })
        .expect("runtime")
    })
    .clone()
}

/// Load a compiled plugin into `runtime`.
pub fn load(runtime: &Runtime, package: &str) -> Plugin {
    runtime.load_file(&wasm(package)).expect("plugin loads")
}

/// Run an action once with the given grants and limits and in-memory services.
pub async fn run(
    runtime: &Runtime,
    plugin: &Plugin,
    grants: Grants,
    limits: Limits,
    params: serde_json::Value,
) -> RunReport<serde_json::Value> {
    let identity = Arc::new(PluginIdentity {
        name: "test".into(),
        grants,
    });
    let services = Arc::new(MemoryServices::with_secrets([(
        "token".to_string(),
        "s3cret".to_string(),
    )]));
    let inv = Invocation::manual("test-task", params);
    runtime
        .run_action(plugin, identity, &limits, services, &inv)
        .await
}

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

/// A `sundial serve` process on a loopback port with its own data directory.
pub struct Daemon {
    /// The child process.
    pub child: std::process::Child,
    /// `127.0.0.1:PORT` it listens on.
    pub addr: String,
    /// The admin token it created.
    pub token: String,
    /// Its data directory.
    pub data: PathBuf,
    stderr: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Daemon {
    /// Start the daemon on `data` (created if needed) and wait until it listens.
    pub fn start(data: &std::path::Path, extra: &[&str]) -> Daemon {
        use std::io::BufRead;
        let mut child = std::process::Command::new(sundial_bin())
            .args(["serve", "--data"])
            .arg(data)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start sundial serve");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = std::io::BufReader::new(stderr).lines();
        let mut addr = None;
        for line in lines.by_ref() {
            let line = line.expect("read daemon stderr");
            if let Some(rest) = line.strip_prefix("sundial listening on http://") {
                addr = Some(rest.split_whitespace().next().unwrap_or_default().to_string());
                break;
            }
        }
        // Keep draining stderr (so the daemon never blocks on a full pipe) into a buffer
        // tests can read.
        let stderr_lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = stderr_lines.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().expect("stderr buffer").push(line);
            }
        });
        let addr = addr.expect("the daemon printed its address");
        let token = std::fs::read_to_string(data.join("admin.token"))
            .expect("admin token")
            .trim()
            .to_string();
        Daemon {
            child,
            addr,
            token,
            data: data.to_path_buf(),
            stderr: stderr_lines,
        }
    }

    /// Send a request with the admin token; returns (status, JSON body or Null).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        self.call_as(Some(&self.token), method, path, body)
    }

    /// Send a request with `token` (or none).
    pub fn call_as(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut headers = String::new();
        if let Some(t) = token {
            headers.push_str(&format!("authorization: Bearer {t}\r\n"));
        }
        if !body.is_empty() {
            headers.push_str("content-type: application/json\r\n");
        }
        let (status, text) = raw_http(&self.addr, method, path, &headers, body.as_bytes());
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }

    /// Install the component built from `package` as plugin `name`; `extra` adds fields
    /// to the request (grants, limits). Returns (status, body).
    pub fn install_plugin(
        &self,
        name: &str,
        package: &str,
        extra: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        use base64::Engine as _;
        let bytes = std::fs::read(wasm(package)).expect("built component");
        let mut body = serde_json::json!({
            "name": name,
            "wasm_base64": base64::engine::general_purpose::STANDARD.encode(bytes),
        });
        if let (serde_json::Value::Object(b), serde_json::Value::Object(e)) = (&mut body, extra) {
            b.extend(e);
        }
        self.call("POST", "/v1/plugins", Some(&body))
    }

    /// Every run matching `query` (e.g. `task=t&cause=schedule`), following cursors.
    pub fn all_runs(&self, query: &str) -> Vec<serde_json::Value> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/v1/runs?{query}&limit=1000&cursor={c}"),
                None => format!("/v1/runs?{query}&limit=1000"),
            };
            let (status, page) = self.call("GET", &path, None);
            assert_eq!(status, 200, "GET {path}: {page}");
            all.extend(page["runs"].as_array().expect("runs").iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return all,
            }
        }
    }

    /// What the daemon wrote to stderr so far (its log).
    pub fn stderr_text(&self) -> String {
        self.stderr.lock().map(|l| l.join("\n")).unwrap_or_default()
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL the daemon and reap it.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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

/// Like [`raw_http`], but returns the I/O error (a daemon killed mid-request).
pub fn try_raw_http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &str,
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
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
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    Ok((status, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
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
            let Ok((stream, _)) = listener.accept().await else {
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
                        });
                        if answer.hang {
                            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
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
                    },
                    Reply::Status(status, headers) => Answer {
                        status,
                        headers,
                        body: format!("answer {status}").into_bytes(),
                        hang: false,
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

/// Resident memory of process `pid` in KiB (`VmRSS` of `/proc/PID/status`; 0 where
/// that cannot be read).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// Sum of every Prometheus sample in `text` whose line starts with `name` (all label
/// sets of a metric, or one when `name` includes its labels).
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
