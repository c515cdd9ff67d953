//! Connections kept alive between deliveries to the same endpoint.
//!
//! A delivery's connection goes to an address the SSRF guard vetted
//! ([`sundial_runtime::net::resolve_vetted`]); after a complete answer it is parked here
//! under its [`Endpoint`] (name, vetted address, TLS and whether certificates are
//! checked) and the next delivery whose own, fresh vetting arrives at the same address
//! takes it instead of connecting again. So a connection is only ever reused for an
//! address that passed the policy for this very attempt, and a webhook that accepts any
//! certificate never shares a connection with one that checks them.
//!
//! Bounds: at most [`MAX_IDLE_PER_ENDPOINT`] idle connections per endpoint and
//! [`MAX_IDLE`] in all; each kept at most [`IDLE_TIMEOUT`]. Parked last, taken first, so
//! the connections in use stay few and warm and the rest age out.

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Longest an idle connection is kept: 3 s (closed by the next sweep, at most a second
/// later), below the idle timeout of common servers (Node.js and Apache close idle
/// connections after 5 s), so a receiver rarely closes one just as a delivery reuses it.
/// One found closed before the request went out is replaced at once; one the receiver
/// closes after the request was written fails that attempt, which is retried as any.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(3);
/// How often idle connections are looked over: every second.
pub const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// Most idle connections kept per endpoint: 64 (a webhook's largest `max_concurrency`).
pub const MAX_IDLE_PER_ENDPOINT: usize = 64;
/// Most idle connections kept in all: 128. With the deliveries in flight
/// (`MAX_IN_FLIGHT`, 512) deliveries hold at most 640 sockets.
pub const MAX_IDLE: usize = 128;

/// What a kept connection may be reused for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// The name from the URL (the TLS server name, and the `Host` the connection was made for).
    pub host: String,
    /// The address the SSRF guard vetted and the connection went to.
    pub addr: SocketAddr,
    /// HTTPS.
    pub tls: bool,
    /// Certificates not checked (a webhook's `allow_insecure_tls`).
    pub insecure: bool,
}

/// A connection's request handle (its I/O runs on a task of its own).
pub type Sender = SendRequest<Full<Bytes>>;

/// The idle connections, by endpoint.
#[derive(Default)]
pub struct KeptConnections {
    idle: Mutex<Idle>,
}

#[derive(Default)]
struct Idle {
    by_endpoint: HashMap<Endpoint, Vec<(Sender, Instant)>>,
    count: usize,
}

impl KeptConnections {
    /// The most recently parked open connection to `endpoint`, if any.
    pub fn take(&self, endpoint: &Endpoint) -> Option<Sender> {
        let mut idle = crate::lock(&self.idle);
        let idle = &mut *idle;
        let list = idle.by_endpoint.get_mut(endpoint)?;
        let now = Instant::now();
        let mut found = None;
        while let Some((sender, parked)) = list.pop() {
            idle.count -= 1;
            if !sender.is_closed() && now.duration_since(parked) < IDLE_TIMEOUT {
                found = Some(sender);
                break;
            }
        }
        if list.is_empty() {
            idle.by_endpoint.remove(endpoint);
        }
        found
    }

    /// Park `sender` after a complete exchange, unless it is closed or the bounds are
    /// reached (then it is dropped, which closes it).
    pub fn park(&self, endpoint: &Endpoint, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        let mut idle = crate::lock(&self.idle);
        let idle = &mut *idle;
        let now = Instant::now();
        if idle.count >= MAX_IDLE {
            return;
        }
        let list = idle.by_endpoint.entry(endpoint.clone()).or_default();
        // The oldest are at the front: drop those too old to be taken any more.
        let stale = list
            .iter()
            .take_while(|(s, at)| s.is_closed() || now.duration_since(*at) >= IDLE_TIMEOUT)
            .count();
        list.drain(..stale);
        idle.count -= stale;
        if list.len() < MAX_IDLE_PER_ENDPOINT {
            list.push((sender, now));
            idle.count += 1;
        }
    }

    /// Forget every idle connection to `endpoint` (one of them failed as it was reused:
    /// the receiver probably restarted or closed them all).
    pub fn forget(&self, endpoint: &Endpoint) {
        let mut idle = crate::lock(&self.idle);
        if let Some(list) = idle.by_endpoint.remove(endpoint) {
            idle.count -= list.len();
        }
    }

    /// Close the connections idle longer than [`IDLE_TIMEOUT`] (and those closed).
    pub fn sweep(&self) {
        let mut idle = crate::lock(&self.idle);
        let idle = &mut *idle;
        let now = Instant::now();
        let mut dropped = 0;
        idle.by_endpoint.retain(|_, list| {
            let before = list.len();
            list.retain(|(s, at)| !s.is_closed() && now.duration_since(*at) < IDLE_TIMEOUT);
            dropped += before - list.len();
            !list.is_empty()
        });
        idle.count -= dropped;
    }

    /// How many connections are idle now.
    pub fn idle(&self) -> usize {
        crate::lock(&self.idle).count
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::{TcpListener, TcpStream};

    /// A real connection to a loopback listener (the listener's side kept, to close it).
    async fn connection(listener: &TcpListener) -> (Sender, TcpStream) {
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(client))
            .await
            .unwrap();
        tokio::spawn(conn);
        (sender, server)
    }

    fn endpoint(listener: &TcpListener, insecure: bool) -> Endpoint {
        Endpoint {
            host: "receiver.test".into(),
            addr: listener.local_addr().unwrap(),
            tls: false,
            insecure,
        }
    }

    #[tokio::test]
    async fn kept_by_endpoint_and_bounded() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let kept = KeptConnections::default();
        let checked = endpoint(&listener, false);
        let mut servers = Vec::new();
        for _ in 0..MAX_IDLE_PER_ENDPOINT + 3 {
            let (sender, server) = connection(&listener).await;
            servers.push(server);
            kept.park(&checked, sender);
        }
        assert_eq!(kept.idle(), MAX_IDLE_PER_ENDPOINT, "bounded per endpoint");
        // Another TLS choice is another endpoint: nothing to take there.
        assert!(kept.take(&endpoint(&listener, true)).is_none());
        assert!(kept.take(&checked).is_some());
        assert_eq!(kept.idle(), MAX_IDLE_PER_ENDPOINT - 1);
        kept.forget(&checked);
        assert_eq!(kept.idle(), 0);
        assert!(kept.take(&checked).is_none());
    }

    #[tokio::test]
    async fn bounded_in_all_and_closed_ones_are_not_taken() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let kept = KeptConnections::default();
        let mut servers = Vec::new();
        // Endpoints that differ by name only, each filled to its bound.
        for n in 0..=MAX_IDLE / MAX_IDLE_PER_ENDPOINT {
            let e = Endpoint {
                host: format!("receiver-{n}.test"),
                ..endpoint(&listener, false)
            };
            for _ in 0..MAX_IDLE_PER_ENDPOINT {
                let (sender, server) = connection(&listener).await;
                servers.push(server);
                kept.park(&e, sender);
            }
        }
        assert_eq!(kept.idle(), MAX_IDLE, "bounded in all");
        kept.sweep();
        assert_eq!(kept.idle(), MAX_IDLE, "none closed or old yet");

        // The receiver closes one connection: it is never handed out again.
        let lone = Endpoint {
            host: "lone.test".into(),
            ..endpoint(&listener, false)
        };
        let kept = KeptConnections::default();
        let (sender, server) = connection(&listener).await;
        kept.park(&lone, sender);
        drop(server);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let taken = kept.take(&lone);
            match taken {
                None => break,
                Some(s) => {
                    // Not seen closed yet: put it back and look again.
                    assert!(Instant::now() < deadline, "a closed connection still handed out");
                    kept.park(&lone, s);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
        assert_eq!(kept.idle(), 0);
    }
}
