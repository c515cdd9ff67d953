//! The event pages: the event log (newest first, filtered by type, source and subject,
//! keyset paged), one event with what it started (runs, timers, deliveries per matched
//! trigger), the triggers, and the pending timers with a cancel button.

use super::tasks::After;
use super::{Act, Browser, Chrome, page_error, render};
use crate::ApiError;
use crate::error::Found;
use askama::Template;
use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use sundial_core::event::{EventRecord, Matched};
use sundial_store::events::EventFilter;
use sundial_store::timers::Timer;

/// Items on one page of a list.
const PAGE: usize = 50;

/// The event log's filters and position, as the URL carries them.
#[derive(Deserialize, Default)]
pub(super) struct EventQuery {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    subject: String,
    /// The last seq of the page before (newer events).
    before: Option<String>,
}

impl EventQuery {
    fn query(&self) -> String {
        let mut out = String::new();
        for (k, v) in [
            ("kind", &self.kind),
            ("source", &self.source),
            ("subject", &self.subject),
        ] {
            if !v.is_empty() {
                out.push_str(&format!("&{k}={}", sundial_core::address::percent_encode(v)));
            }
        }
        out
    }
}

fn given(v: &str) -> Option<String> {
    Some(v.trim().to_string()).filter(|v| !v.is_empty())
}

/// An event as a row: seq, type, source, subject, when, what it started in numbers.
struct EventRow {
    seq: String,
    kind: String,
    source: String,
    subject: String,
    at: String,
    runs: usize,
    timers: usize,
    deliveries: usize,
    stopped: String,
}

impl EventRow {
    fn of(e: &EventRecord) -> EventRow {
        let sum = |f: fn(&Matched) -> usize| e.triggers.iter().map(f).sum();
        EventRow {
            seq: e.seq.clone(),
            kind: e.event.kind.clone(),
            source: e.event.source.clone(),
            subject: e.event.subject.clone().unwrap_or_default(),
            at: e.received_at.clone(),
            runs: sum(|m| m.runs.len()),
            timers: sum(|m| m.timers.len()),
            deliveries: sum(|m| m.deliveries.len()),
            stopped: e.stopped.clone().unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "events.html")]
struct EventsPage {
    chrome: Option<Chrome>,
    kind: String,
    source: String,
    subject: String,
    rows: Vec<EventRow>,
    next: Option<String>,
    filters: String,
}

/// `GET /events`.
pub(super) async fn list(browser: Browser, Query(q): Query<EventQuery>) -> Response {
    let state = &browser.state;
    let page = (|| -> Result<EventsPage, ApiError> {
        crate::extract::check_cursor(&q.before)?;
        let filter = EventFilter {
            kind: given(&q.kind),
            source: given(&q.source),
            subject: given(&q.subject),
            since: None,
            until: None,
        };
        let (events, next) = state.store.list_events(&filter, q.before.as_deref(), PAGE)?;
        Ok(EventsPage {
            chrome: Some(browser.chrome("events")),
            rows: events.iter().map(EventRow::of).collect(),
            next,
            filters: q.query(),
            kind: q.kind.clone(),
            source: q.source.clone(),
            subject: q.subject.clone(),
        })
    })();
    page.map_or_else(page_error, |p| render(&p))
}

#[derive(Template)]
#[template(path = "event.html")]
struct EventPage {
    chrome: Option<Chrome>,
    row: EventRow,
    id: String,
    depth: u32,
    caused_by: Option<String>,
    matched: Vec<Matched>,
    data: String,
}

/// `GET /events/{seq}`.
pub(super) async fn show(browser: Browser, Path(seq): Path<String>) -> Response {
    let state = &browser.state;
    let page = (|| -> Result<EventPage, ApiError> {
        let record = state.store.event(&seq)?.found("event", &seq)?;
        Ok(EventPage {
            chrome: Some(browser.chrome("events")),
            row: EventRow::of(&record),
            id: record.event.id.clone(),
            depth: record.depth,
            caused_by: record.caused_by.clone(),
            data: record
                .event
                .data
                .as_ref()
                .map(|d| serde_json::to_string_pretty(d).unwrap_or_default())
                .unwrap_or_default(),
            matched: record.triggers,
        })
    })();
    page.map_or_else(page_error, |p| render(&p))
}

/// A trigger as a row.
struct TriggerRow {
    id: String,
    name: String,
    enabled: bool,
    on: String,
    targets: String,
    delay: String,
}

#[derive(Template)]
#[template(path = "triggers.html")]
struct TriggersPage {
    chrome: Option<Chrome>,
    rows: Vec<TriggerRow>,
    next: Option<String>,
}

/// Compact JSON of a value, for a table cell.
fn compact<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// `GET /triggers`.
pub(super) async fn triggers(browser: Browser, Query(q): Query<After>) -> Response {
    let state = &browser.state;
    let page = (|| -> Result<TriggersPage, ApiError> {
        crate::extract::check_cursor(&q.after)?;
        let (records, next) = state.store.triggers_page(q.after.as_deref(), PAGE)?;
        Ok(TriggersPage {
            chrome: Some(browser.chrome("events")),
            rows: records
                .into_iter()
                .map(|t| TriggerRow {
                    on: compact(&t.spec.on),
                    targets: compact(&t.spec.targets),
                    delay: t.spec.delay.clone().unwrap_or_default(),
                    enabled: t.spec.enabled,
                    name: t.spec.name,
                    id: t.id,
                })
                .collect(),
            next,
        })
    })();
    page.map_or_else(page_error, |p| render(&p))
}

#[derive(Template)]
#[template(path = "timers.html")]
struct TimersPage {
    chrome: Option<Chrome>,
    rows: Vec<Timer>,
    next: Option<String>,
}

/// `GET /timers`: pending timers, in the order they were set.
pub(super) async fn timers(browser: Browser, Query(q): Query<After>) -> Response {
    let state = &browser.state;
    let page = (|| -> Result<TimersPage, ApiError> {
        crate::extract::check_cursor(&q.after)?;
        let (rows, next) = state.store.timers_page(None, None, q.after.as_deref(), PAGE)?;
        Ok(TimersPage {
            chrome: Some(browser.chrome("events")),
            rows,
            next,
        })
    })();
    page.map_or_else(page_error, |p| render(&p))
}

/// `POST /timers/{id}/cancel`.
pub(super) async fn cancel_timer(Path(id): Path<String>, act: Act) -> Response {
    match act
        .browser
        .state
        .store
        .cancel_timer(&id, act.browser.caller.who())
        .await
    {
        Ok(_) => Redirect::to("/timers").into_response(),
        Err(e) => page_error(e.into()),
    }
}
