//! The live log tail of a run, as server-sent events (`GET /runs/{id}/tail`).
//!
//! While the run's plugin runs, its lines are read from the executor's live log (the
//! same log the runtime writes into, see [`sundial_engine::executor::Executor::live_log`]);
//! once the run has ended they come from the stored run. The stream sends:
//! - `attempt` (data: the attempt number) when an attempt starts being shown: the page
//!   clears the lines it shows;
//! - `line` (data: the log line as JSON, `{at_ms, level, origin, message}`), each with
//!   the id `ATTEMPT:INDEX` so a reconnecting browser (`Last-Event-ID`) resumes after
//!   the last line it got instead of receiving the log again;
//! - `end` (data: the run's final status) once the run is terminal and every line was
//!   sent, after which the stream closes; the page stops listening.
//!
//! The tail polls every [`POLL`] (a run's log is in memory while it runs, so a poll is a
//! lock and a copy of the new lines) and gives up after [`MAX_TAIL`], sending `end`
//! with `gave-up` (a run can sit queued, or run, for a long time). At most
//! [`MAX_TAILS`] tails are open at once, [`MAX_TAILS_PER_SESSION`] per session; one
//! more is refused with 429.

use super::Browser;
use crate::ApiError;
use crate::error::Found;
use axum::extract::Path;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use std::convert::Infallible;
use std::time::Duration;
use sundial_core::log::LogLine;
use tokio::time::Instant;

/// How often the tail looks for new lines: 100 ms.
pub const POLL: Duration = Duration::from_millis(100);
/// How long one tail stays open at most: 1 hour.
pub const MAX_TAIL: Duration = Duration::from_secs(3600);
/// Most tails open at once: 256.
pub const MAX_TAILS: usize = 256;
/// Most tails one session has open at once: 8.
pub const MAX_TAILS_PER_SESSION: usize = 8;

/// The open tails, per session id (hashed as the sessions are).
#[derive(Debug, Default)]
pub struct Tails {
    open: std::sync::Mutex<std::collections::HashMap<String, usize>>,
}

impl Tails {
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, usize>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Count one more tail of `session`, unless a limit is reached.
    fn open(self: &std::sync::Arc<Self>, session: &str) -> Option<TailSlot> {
        let mut open = self.lock();
        let total: usize = open.values().sum();
        let mine = open.get(session).copied().unwrap_or(0);
        if total >= MAX_TAILS || mine >= MAX_TAILS_PER_SESSION {
            return None;
        }
        open.insert(session.to_string(), mine + 1);
        Some(TailSlot {
            tails: self.clone(),
            session: session.to_string(),
        })
    }
}

/// One open tail, counted until dropped (when the browser goes away, the stream is).
struct TailSlot {
    tails: std::sync::Arc<Tails>,
    session: String,
}

impl Drop for TailSlot {
    fn drop(&mut self) {
        let mut open = self.tails.lock();
        if let Some(n) = open.get_mut(&self.session) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.session);
            }
        }
    }
}

/// Where a tail is: the attempt it shows and how many of its lines were sent.
struct Tail {
    browser: Browser,
    id: String,
    attempt: u32,
    sent: usize,
    until: Instant,
    done: bool,
    /// Held while the tail is open.
    _slot: TailSlot,
}

impl Tail {
    /// What to send now (nothing yet: empty).
    fn step(&mut self) -> Result<Vec<Event>, ApiError> {
        let state = &self.browser.state;
        let mut out = Vec::new();
        if Instant::now() >= self.until {
            out.push(Event::default().event("end").data("gave-up"));
            self.done = true;
            return Ok(out);
        }
        if let Some((attempt, log)) = state.engines.executor.live_log(&self.id) {
            self.show_attempt(attempt, &mut out);
            let lines = log.lines_from(self.sent);
            self.send(&lines, &mut out);
            return Ok(out);
        }
        let run = state.store.run(&self.id)?.found("run", &self.id)?;
        if run.status.is_terminal() {
            self.show_attempt(run.attempt, &mut out);
            let rest = run.log.lines.get(self.sent..).unwrap_or_default();
            self.send(rest, &mut out);
            out.push(Event::default().event("end").data(run.status.as_str()));
            self.done = true;
        }
        Ok(out)
    }

    fn show_attempt(&mut self, attempt: u32, out: &mut Vec<Event>) {
        if attempt != self.attempt {
            self.attempt = attempt;
            self.sent = 0;
            out.push(Event::default().event("attempt").data(attempt.to_string()));
        }
    }

    fn send(&mut self, lines: &[LogLine], out: &mut Vec<Event>) {
        for line in lines {
            let event = Event::default()
                .event("line")
                .id(format!("{}:{}", self.attempt, self.sent));
            // A log line always serializes; a failure would only drop that line.
            if let Ok(event) = event.json_data(line) {
                out.push(event);
            }
            self.sent += 1;
        }
    }
}

/// Where a reconnecting browser stopped: `ATTEMPT:INDEX` of the last line it got.
fn resume_at(headers: &HeaderMap) -> Option<(u32, usize)> {
    let last = headers.get("last-event-id")?.to_str().ok()?;
    let (attempt, index) = last.split_once(':')?;
    Some((
        attempt.parse().ok()?,
        index.parse::<usize>().ok()?.checked_add(1)?,
    ))
}

/// `GET /runs/{id}/tail`: the run's log lines as they come (server-sent events).
pub(super) async fn tail(browser: Browser, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Err(e) = browser
        .state
        .store
        .run(&id)
        .map_err(ApiError::from)
        .and_then(|r| r.found("run", &id))
    {
        return e.into_response();
    }
    let session = sundial_core::hash::digest(browser.id.as_bytes());
    let Some(slot) = browser.state.dashboard.tails.open(&session) else {
        return ApiError {
            status: axum::http::StatusCode::TOO_MANY_REQUESTS,
            code: "too_many_tails",
            message: format!(
                "too many live logs are open (at most {MAX_TAILS_PER_SESSION} per session, {MAX_TAILS} in all): close some pages"
            ),
        }
        .into_response();
    };
    let (attempt, sent) = resume_at(&headers).unwrap_or((0, 0));
    let tail = Tail {
        _slot: slot,
        browser,
        id,
        attempt,
        sent,
        until: Instant::now() + MAX_TAIL,
        done: false,
    };
    let events = futures::stream::unfold(tail, |mut tail| async move {
        if tail.done {
            return None;
        }
        loop {
            match tail.step() {
                Ok(events) if events.is_empty() => tokio::time::sleep(POLL).await,
                Ok(events) => return Some((events, tail)),
                Err(e) => {
                    tail.done = true;
                    let end = Event::default()
                        .event("end")
                        .data(format!("error: {}", e.message));
                    return Some((vec![end], tail));
                }
            }
        }
    })
    .flat_map(|events| futures::stream::iter(events.into_iter().map(Ok::<_, Infallible>)));
    Sse::new(events).keep_alive(KeepAlive::default()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn tails_are_counted_per_session_and_in_all_and_freed_when_dropped() {
        let tails = Arc::new(Tails::default());
        let mine: Vec<TailSlot> = (0..MAX_TAILS_PER_SESSION)
            .map(|_| tails.open("a").expect("under the session's limit"))
            .collect();
        assert!(tails.open("a").is_none(), "one more for the same session");
        let other = tails.open("b").expect("another session has its own limit");
        drop(mine);
        assert!(tails.open("a").is_some(), "freed when the streams went away");
        drop(other);
        assert!(tails.lock().is_empty());
        let all: Vec<TailSlot> = (0..MAX_TAILS)
            .map(|i| tails.open(&format!("s{}", i / MAX_TAILS_PER_SESSION)).unwrap())
            .collect();
        assert!(tails.open("fresh").is_none(), "the limit in all");
        drop(all);
    }
}
