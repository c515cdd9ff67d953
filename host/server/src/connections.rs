//! Client connections: accepting them, capping how many are open, and closing those
//! that do not send a request.
//!
//! - A connection must deliver each request head within `header_timeout` of starting
//!   to wait for it (new connections and idle keep-alive ones alike); otherwise it is
//!   closed. A client trickling headers a byte a second holds a connection for at
//!   most that long.
//! - At most `max_connections` are open. When a new one arrives at the cap, the
//!   longest-open connection that is *idle* (waiting for a request head, so not in
//!   the middle of a request) is closed to make room (a request that began on it just
//!   before may finish, for up to 5 s): slow and idle clients give way to new ones, and
//!   `/healthz` and ordinary clients keep being served during a slow-client flood.
//!   When every open connection is in a request, the new one is answered `503` at
//!   once and closed (at most 64 such answers in flight; beyond them the socket is
//!   closed without one).
//!
//! A connection we close lingers (see [`super::linger`]) so an early answer is read.
//!
//! hyper's own `header_read_timeout` does the timing; the cap and the eviction are
//! here because neither hyper nor axum offers them (see ARCHITECTURE.md).

use axum::Router;
use axum::body::Body;
use http_body::{Frame, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

/// Connections open at once by default: 4096 (the daemon lowers it to a quarter of its
/// open-file limit).
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// Time a client has to send a request head: 10 s.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// The connection limits, and TLS.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Most connections open at once (at least 1).
    pub max_connections: usize,
    /// Time to send a request head, new or between keep-alive requests (and to finish
    /// the TLS handshake).
    pub header_timeout: Duration,
    /// With it, every connection is TLS (see [`super::tls`]).
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// What a connection reads and writes: a TCP stream, or TLS over one.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            tls: None,
        }
    }
}

/// One open connection, as the cap sees it.
struct Open {
    /// Requests in progress on it (from the handler's call until hyper has taken the
    /// last chunk of the response body).
    busy: Arc<AtomicUsize>,
    /// Told to close the connection.
    close: Arc<Notify>,
}

/// The connection limit as `/metrics` shows it.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionStats {
    /// Client connections open now.
    pub open: usize,
    /// The limit in force (`max_connections`).
    pub max: usize,
    /// Connections accepted since start.
    pub accepted: u64,
    /// Idle connections closed to make room for a new one at the limit.
    pub evicted: u64,
    /// Connections answered 503 because every open one was in a request.
    pub refused: u64,
}

/// The open connections and the counters `/metrics` shows. Cheap to share.
#[derive(Default)]
pub struct Connections {
    open: Mutex<BTreeMap<u64, Open>>,
    next_id: AtomicU64,
    max: AtomicUsize,
    refused: AtomicU64,
    evicted: AtomicU64,
    accepted: AtomicU64,
}

impl Connections {
    /// The connection limit now.
    pub fn stats(&self) -> ConnectionStats {
        ConnectionStats {
            open: self.open.lock().unwrap_or_else(|e| e.into_inner()).len(),
            max: self.max.load(Relaxed),
            accepted: self.accepted.load(Relaxed),
            evicted: self.evicted.load(Relaxed),
            refused: self.refused.load(Relaxed),
        }
    }

    /// Make room for one more connection: `Some(id)` registered, or `None` when every
    /// open connection is in a request.
    fn admit(&self, max: usize) -> Option<(u64, Arc<AtomicUsize>, Arc<Notify>)> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.len() >= max {
            // The oldest idle one gives way (ids grow with time). It leaves the map at
            // once; its socket closes a moment later (at most EVICTION_GRACE when a
            // request has just begun on it), so sockets may briefly exceed `max` by
            // the connections being closed.
            let idle = open
                .iter()
                .find(|(_, c)| c.busy.load(Relaxed) == 0)
                .map(|(id, _)| *id)?;
            if let Some(c) = open.remove(&idle) {
                c.close.notify_one();
                self.evicted.fetch_add(1, Relaxed);
            }
        }
        let id = self.next_id.fetch_add(1, Relaxed);
        let busy = Arc::new(AtomicUsize::new(0));
        let close = Arc::new(Notify::new());
        open.insert(
            id,
            Open {
                busy: busy.clone(),
                close: close.clone(),
            },
        );
        self.accepted.fetch_add(1, Relaxed);
        Some((id, busy, close))
    }

    fn remove(&self, id: u64) {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
    }
}

/// Serve `app` on `listener` until `stop` turns true; then stop accepting, let each
/// connection finish its request in progress, and return.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    connections: Arc<Connections>,
    mut stop: watch::Receiver<bool>,
) {
    let max = limits.max_connections.max(1);
    let tls = limits.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    connections.max.store(max, Relaxed);
    let mut tasks = tokio::task::JoinSet::new();
    let refusing = Arc::new(tokio::sync::Semaphore::new(REFUSING));
    let lingering = super::linger::permits();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stopped(&mut stop) => break,
        };
        let (stream, _) = match accepted {
            Ok(a) => a,
            // The peer gave up before we took it: nothing to do.
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Out of file descriptors: wait a moment rather than spin.
                tracing::warn!("accepting a connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let Some((id, busy, close)) = connections.admit(max) else {
            connections.refused.fetch_add(1, Relaxed);
            // At most REFUSING answers in flight; beyond that the socket is just closed.
            if let Ok(permit) = refusing.clone().try_acquire_owned() {
                tokio::spawn(async move {
                    refuse(stream, max).await;
                    drop(permit);
                });
            }
            continue;
        };
        let (app, connections, mut stop, tls) = (app.clone(), connections.clone(), stop.clone(), tls.clone());
        let header_timeout = limits.header_timeout;
        // Closed by us after an answer, it drains what the client still sends so the
        // answer is read (see [`super::linger`]).
        let armed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stream = super::linger::Lingering::new(stream, lingering.clone(), armed.clone());
        tasks.spawn(async move {
            // Leaves the open map however the task ends.
            let _registered = Registered(connections, id);
            let io: Box<dyn Io> = match tls {
                None => Box::new(stream),
                // The handshake has the header timeout, and gives way like an idle connection.
                Some(acceptor) => tokio::select! {
                    done = tokio::time::timeout(header_timeout, acceptor.accept(stream)) => match done {
                        Ok(Ok(tls)) => Box::new(tls),
                        _ => return,
                    },
                    _ = close.notified() => return,
                    _ = stopped(&mut stop) => return,
                },
            };
            let busy_now = busy.clone();
            let answered = armed.clone();
            let service =
                hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let guard = BusyGuard::new(busy.clone());
                    let call = tower_call(app.clone(), request);
                    let answered = answered.clone();
                    async move {
                        let response = call.await?;
                        answered.store(true, Relaxed);
                        Ok::<_, std::convert::Infallible>(
                            response.map(|body| Body::new(Guarded { body, _guard: guard })),
                        )
                    }
                });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .keep_alive(true);
            let conn = builder.serve_connection(TokioIo::new(io), service);
            let mut conn = std::pin::pin!(conn);
            let evicted = tokio::select! {
                _ = conn.as_mut() => return,
                _ = close.notified() => true,
                _ = stopped(&mut stop) => false,
            };
            if evicted {
                // This task alone polls the connection, so while it is here no request
                // can begin: with none in progress, closing cuts nothing. A request that
                // began just before the eviction may finish, for a bounded time.
                if busy_now.load(Relaxed) == 0 {
                    // Idle: nothing to drain, and descriptors are scarce at the cap.
                    armed.store(false, Relaxed);
                    return;
                }
                conn.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(EVICTION_GRACE, conn.as_mut()).await;
            } else {
                // Stopping: finish the request in progress; an idle connection closes.
                conn.as_mut().graceful_shutdown();
                let _ = conn.as_mut().await;
            }
        });
        // Reap finished connection tasks so the set does not grow.
        while tasks.try_join_next().is_some() {}
    }
    drop(listener);
    while tasks.join_next().await.is_some() {}
}

/// Refusals answered at once at most; more are closed without an answer.
const REFUSING: usize = 64;
/// Time an evicted connection has to finish a request in progress.
const EVICTION_GRACE: Duration = Duration::from_secs(5);

/// Removes a connection from the open map when its task ends.
struct Registered(Arc<Connections>, u64);

impl Drop for Registered {
    fn drop(&mut self) {
        self.0.remove(self.1);
    }
}

/// Errors of one connection that went away before it was accepted (as axum treats them).
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionRefused | ConnectionAborted | ConnectionReset)
}

/// Resolves once `stop` turns true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Call the router as a tower service.
fn tower_call(
    app: Router,
    request: hyper::Request<hyper::body::Incoming>,
) -> impl Future<Output = Result<axum::response::Response, std::convert::Infallible>> {
    use tower_service::Service;
    let mut app = app;
    app.call(request.map(Body::new))
}

/// Answer a connection beyond the limit with 503 and close it (at most 1 s spent,
/// reading what the client sent so that the close is not a reset).
async fn refuse(mut stream: tokio::net::TcpStream, max: usize) {
    let body = format!(
        "{{\"error\":{{\"code\":\"too_many_connections\",\"message\":\"{max} connections are open and busy (max_connections); retry later\"}}}}"
    );
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(answer.as_bytes()).await;
        let _ = stream.shutdown().await;
        let mut sink = [0u8; 1024];
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// Counts a request in progress on its connection until its response body is done.
struct BusyGuard(Arc<AtomicUsize>);

impl BusyGuard {
    fn new(busy: Arc<AtomicUsize>) -> BusyGuard {
        busy.fetch_add(1, Relaxed);
        BusyGuard(busy)
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// A response body that keeps its connection counted busy while it is sent.
struct Guarded {
    body: Body,
    _guard: BusyGuard,
}

impl http_body::Body for Guarded {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_cap_the_oldest_idle_connection_gives_way_and_busy_ones_never_do() {
        let c = Connections::default();
        let (a, busy_a, _) = c.admit(2).unwrap();
        let (b, _busy_b, close_b) = c.admit(2).unwrap();
        busy_a.fetch_add(1, Relaxed); // a is in a request
        let (third, busy_c, _) = c.admit(2).expect("b is idle: it gives way");
        assert_eq!(c.evicted.load(Relaxed), 1);
        let open: Vec<u64> = c.open.lock().unwrap().keys().copied().collect();
        assert_eq!(open, vec![a, third], "b was closed, a (busy) kept");
        // b's task is told to close.
        let notified = close_b.notified();
        let mut notified = std::pin::pin!(notified);
        let waker = std::task::Waker::noop();
        assert!(notified.as_mut().poll(&mut Context::from_waker(waker)).is_ready());
        let _ = b;
        busy_c.fetch_add(1, Relaxed);
        assert!(c.admit(2).is_none(), "every open connection is busy: refused");
        c.remove(a);
        assert!(c.admit(2).is_some(), "a closed: room again");
    }
}
