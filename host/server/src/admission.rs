//! Admission control: what the API refuses rather than queue without bound.
//!
//! - At most `max_requests` requests are handled at once; one more is answered at
//!   once with `503 overloaded` and `Retry-After: 1` (no queue of waiting requests
//!   builds up in memory). `/healthz` and `/metrics` are never refused, so monitoring
//!   still sees an overloaded daemon.
//! - A request body must arrive within `body_timeout` of the request's head (an upload
//!   that stalls would otherwise hold its slot for as long as its connection lives);
//!   a later one is answered `408 body_timeout` and its slot freed.
//! - Work that queues runs (manual runs, events) is refused with `429 queue_full` while
//!   `max_queued_runs` runs already wait for a worker. Schedules are not refused: a
//!   slot's run is queued whatever the backlog (the exactly-once promise).

use super::{ApiError, AppState};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::Semaphore;

/// Requests handled at once by default: 512.
pub const DEFAULT_MAX_REQUESTS: usize = 512;
/// Runs waiting for a worker before manual runs and events are refused: 10 000 (the
/// run queue's limit).
pub use sundial_engine::queue::DEFAULT_MAX_QUEUED_RUNS;
/// Time a request body has to arrive, from the request's head: 60 s.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(60);

/// The limits and the permits of requests in progress.
#[derive(Clone)]
pub struct Admission {
    requests: Arc<Semaphore>,
    max_requests: usize,
    max_queued_runs: usize,
    body_timeout: Duration,
    /// Requests answered `503 overloaded` since start.
    refused_requests: Arc<AtomicU64>,
}

impl Admission {
    /// Limits of `max_requests` requests at once and `max_queued_runs` waiting runs
    /// (each at least 1), and `body_timeout` for a request body to arrive.
    pub fn new(max_requests: usize, max_queued_runs: usize, body_timeout: Duration) -> Admission {
        let max_requests = max_requests.max(1);
        Admission {
            requests: Arc::new(Semaphore::new(max_requests)),
            max_requests,
            max_queued_runs: max_queued_runs.max(1),
            body_timeout,
            refused_requests: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The request limit now: (requests in progress, monitoring endpoints not counted;
    /// the limit; requests refused since start).
    pub fn requests(&self) -> (usize, usize, u64) {
        let in_progress = self.max_requests - self.requests.available_permits();
        (
            in_progress,
            self.max_requests,
            self.refused_requests.load(Relaxed),
        )
    }

    /// Refuse with 429 when `backlog` runs already wait for a worker.
    pub fn check_queue(&self, backlog: usize) -> Result<(), ApiError> {
        if backlog < self.max_queued_runs {
            return Ok(());
        }
        Err(ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "queue_full",
            message: format!(
                "{backlog} runs are waiting for a worker (max_queued_runs is {}); retry later",
                self.max_queued_runs
            ),
        })
    }
}

/// Middleware: hold a permit for the whole request, or answer 503 at once.
pub async fn limit_requests(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if path == "/healthz" || path == "/metrics" {
        return next.run(request).await;
    }
    let admission = &state.admission;
    match admission.requests.clone().try_acquire_owned() {
        Ok(permit) => {
            // Requests without a body (most reads) need no deadline.
            let request = if http_body::Body::is_end_stream(request.body()) {
                request
            } else {
                let timeout = admission.body_timeout;
                request.map(|body| Body::new(Deadline::new(body, timeout)))
            };
            let response = next.run(request).await;
            drop(permit);
            response
        }
        Err(_) => {
            admission.refused_requests.fetch_add(1, Relaxed);
            ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "overloaded",
                message: format!(
                    "{} requests are in progress (max_requests); retry later",
                    admission.max_requests
                ),
            }
            .into_response()
        }
    }
}

/// The error a body read gets once [`Admission`]'s `body_timeout` has passed.
#[derive(Debug)]
pub struct BodyTimeout(pub Duration);

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the request body did not arrive within {} s (body_timeout)",
            self.0.as_secs_f64()
        )
    }
}

impl std::error::Error for BodyTimeout {}

/// A request body that fails with [`BodyTimeout`] when it has not ended by a deadline.
struct Deadline {
    body: Body,
    timeout: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl Deadline {
    fn new(body: Body, timeout: Duration) -> Deadline {
        Deadline {
            body,
            timeout,
            sleep: Box::pin(tokio::time::sleep(timeout)),
        }
    }
}

impl http_body::Body for Deadline {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<bytes::Bytes>, axum::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        match this.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(axum::Error::new(BodyTimeout(this.timeout))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
