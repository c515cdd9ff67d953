//! Lingering close: a connection the daemon closes first keeps reading (and discarding)
//! what the client still sends for a short while, so that the client reads our answer.
//!
//! Without it, answering early (a `413` for a body over the limit, a `408`, an error
//! before the body was read) and closing a socket with unread input makes the kernel
//! send a reset, and a client still writing its body gets `EPIPE`/`ECONNRESET` and
//! loses the answer that was already on its way. This is what nginx's
//! `lingering_close` and Apache's lingering close do; hyper does not, so the accepted
//! stream is wrapped here.
//!
//! Only a connection that answered a request lingers (it is "armed" when a response
//! is produced): slow clients cut at the header timeout and idle connections evicted
//! at the connection cap close at once, so a flood of them cannot hold descriptors.
//!
//! Bounds: at most [`LINGER_TIME`] per connection, at most [`LINGERING`] connections
//! lingering at once (beyond that a socket closes at once, as before).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

/// Longest a closed connection keeps draining its input: 2 s.
pub const LINGER_TIME: Duration = Duration::from_secs(2);
/// Connections lingering at once at most: 256.
pub const LINGERING: usize = 256;

/// A TCP stream that lingers when it is dropped (see the module documentation).
pub struct Lingering {
    stream: Option<TcpStream>,
    permits: Arc<Semaphore>,
    armed: Arc<std::sync::atomic::AtomicBool>,
}

impl Lingering {
    /// Wrap `stream`; `permits` bounds how many dropped streams linger at once, and it
    /// lingers only if `armed` is true when it is dropped.
    pub fn new(
        stream: TcpStream,
        permits: Arc<Semaphore>,
        armed: Arc<std::sync::atomic::AtomicBool>,
    ) -> Lingering {
        Lingering {
            stream: Some(stream),
            permits,
            armed,
        }
    }

    fn stream(&mut self) -> &mut TcpStream {
        self.stream.as_mut().expect("a live Lingering stream")
    }
}

/// A semaphore for [`Lingering::new`] holding [`LINGERING`] permits.
pub fn permits() -> Arc<Semaphore> {
    Arc::new(Semaphore::new(LINGERING))
}

impl Drop for Lingering {
    fn drop(&mut self) {
        let Some(mut stream) = self.stream.take() else {
            return;
        };
        if !self.armed.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let _ = tokio::time::timeout(LINGER_TIME, async {
                // Our answer is written; say so, then read until the client closes.
                let _ = stream.shutdown().await;
                let mut sink = [0u8; 8192];
                while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
            })
            .await;
            drop(permit);
        });
    }
}

impl AsyncRead for Lingering {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.get_mut().stream()).poll_read(cx, buf)
    }
}

impl AsyncWrite for Lingering {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(self.get_mut().stream()).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(self.get_mut().stream()).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.as_ref().is_some_and(|s| s.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.get_mut().stream()).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.get_mut().stream()).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// A server that answers before reading a large upload and closes: the client,
    /// still writing, must be able to read the answer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_early_answer_reaches_a_client_still_sending() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let permits = permits();
        let server = tokio::spawn(async move {
            for _ in 0..5 {
                let (stream, _) = listener.accept().await.unwrap();
                let armed = Arc::new(std::sync::atomic::AtomicBool::new(true));
                let mut s = Lingering::new(stream, permits.clone(), armed);
                let mut head = [0u8; 16];
                s.read_exact(&mut head).await.unwrap();
                s.write_all(b"413 too large\n").await.unwrap();
                drop(s);
            }
        });
        let client = tokio::task::spawn_blocking(move || {
            for _ in 0..5 {
                let mut c = std::net::TcpStream::connect(addr).unwrap();
                // 8 MiB: far more than the socket buffers hold, so the server closes
                // while we are still writing.
                c.write_all(&vec![b'x'; 8 << 20]).expect("the upload was not cut");
                let mut answer = String::new();
                c.read_to_string(&mut answer).unwrap();
                assert_eq!(answer, "413 too large\n");
            }
        });
        client.await.unwrap();
        server.await.unwrap();
    }
}
