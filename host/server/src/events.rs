//! `/v1/events`: ingest CloudEvents (structured, batch or binary mode), the event log
//! with filters and pagination, one event with what it caused.

use super::{ApiError, ApiResult, AppState, Ingester, Reader, read_body};
use crate::extract::{Page, QueryParams, QueueRoom};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sundial_core::event::cloudevent;
use sundial_core::event::cloudevent::CloudEvent;
use sundial_store::events::{EventFilter, Stored};
/// Most events in one batch.
pub const MAX_BATCH: usize = 1000;
/// Largest batch body: 16 MiB.
pub const MAX_BATCH_BYTES: usize = 16 * 1024 * 1024;

const BATCH_TYPE: &str = "application/cloudevents-batch+json";

fn bad(message: impl std::fmt::Display) -> ApiError {
    ApiError {
        status: StatusCode::BAD_REQUEST,
        code: "invalid_event",
        message: message.to_string(),
    }
}

/// Parse the request into events and refuse reserved sources: (events, was it a batch).
fn parse(state: &AppState, headers: &HeaderMap, body: &[u8]) -> ApiResult<(Vec<CloudEvent>, bool)> {
    let (events, batch) = parse_body(state, headers, body)?;
    for (i, event) in events.iter().enumerate() {
        if sundial_core::event::is_reserved_source(&event.source) {
            let at = if batch {
                format!("events[{i}].")
            } else {
                String::new()
            };
            return Err(bad(format!(
                "{at}source: {:?} is reserved for events Sundial and its plugins emit",
                event.source
            )));
        }
    }
    Ok((events, batch))
}

/// Parse the request into events: (events, was it a batch).
fn parse_body(state: &AppState, headers: &HeaderMap, body: &[u8]) -> ApiResult<(Vec<CloudEvent>, bool)> {
    let limit = state.max_event_bytes;
    let too_large = |at: &str, n: usize| ApiError {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        code: "too_large",
        message: format!("{at}{n} bytes is over the limit of {limit} bytes per event (max_event_size)"),
    };
    if headers.contains_key("ce-specversion") {
        if body.len() > limit {
            return Err(too_large("event: ", body.len()));
        }
        let pairs: Vec<(String, String)> = headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_ascii_lowercase(), v.to_str().ok()?.to_string())))
            .collect();
        return Ok((vec![cloudevent::parse_binary(&pairs, body).map_err(bad)?], false));
    }
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let batch_declared = match essence.as_str() {
        BATCH_TYPE => true,
        "application/cloudevents+json" | "application/json" => false,
        other => {
            return Err(ApiError::media_type(format!(
                "content-type {other:?}: send application/cloudevents+json, {BATCH_TYPE} or application/json \
                 (or binary mode with ce-* headers)"
            )));
        }
    };
    let value: Value =
        sundial_core::json::parse(body).map_err(|e| bad(format!("request body: not JSON ({e})")))?;
    let (items, batch) = match value {
        Value::Array(items) => (items, true),
        other if batch_declared => {
            return Err(bad(format!(
                "request body: {BATCH_TYPE} needs a JSON array of events, got {}",
                if other.is_object() {
                    "an object"
                } else {
                    "another value"
                }
            )));
        }
        other => (vec![other], false),
    };
    if batch && (items.is_empty() || items.len() > MAX_BATCH) {
        return Err(bad(format!(
            "request body: a batch holds 1-{MAX_BATCH} events, got {}",
            items.len()
        )));
    }
    let mut events = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = if batch {
            format!("events[{i}].")
        } else {
            String::new()
        };
        let size = serde_json::to_vec(item).map(|v| v.len()).unwrap_or(usize::MAX);
        if size > limit {
            let at = if batch {
                format!("events[{i}]: ")
            } else {
                "event: ".to_string()
            };
            return Err(too_large(&at, size));
        }
        events.push(cloudevent::parse_structured(item).map_err(|e| bad(format!("{at}{e}")))?);
    }
    Ok((events, batch))
}

/// What ingest says of one event: its place in the log, whether it was a duplicate,
/// what its triggers started, and why it was not routed, if it was not.
#[derive(Serialize)]
pub(super) struct Outcome<'a> {
    seq: &'a str,
    id: &'a str,
    source: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    duplicate: bool,
    triggers: &'a [sundial_core::event::Matched],
    stopped: &'a Option<String>,
}

fn outcome(s: &Stored) -> Outcome<'_> {
    let r = &s.record;
    Outcome {
        seq: &r.seq,
        id: &r.event.id,
        source: &r.event.source,
        kind: &r.event.kind,
        duplicate: s.duplicate,
        triggers: &r.triggers,
        stopped: &r.stopped,
    }
}

/// `GET /v1/events`: one page, newest first.
#[derive(Serialize)]
pub(super) struct EventPage {
    events: Vec<sundial_core::event::EventRecord>,
    next_cursor: Option<String>,
}

/// What ingest says of a batch.
#[derive(Serialize)]
pub(super) struct BatchOutcome<'a> {
    events: Vec<Outcome<'a>>,
}

pub(super) async fn ingest(
    State(state): State<AppState>,
    _: Ingester,
    _: QueueRoom,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let body = read_body(body, MAX_BATCH_BYTES).await?;
    let (events, batch) = parse(&state, &headers, &body)?;
    let stored = state.engines.outbox.ingest(events).await?;
    let body = if batch {
        serde_json::to_value(BatchOutcome {
            events: stored.iter().map(outcome).collect(),
        })
    } else {
        serde_json::to_value(outcome(&stored[0]))
    };
    let body = body.map_err(|e| ApiError::internal(e.to_string()))?;
    Ok((StatusCode::ACCEPTED, Json(body)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    #[serde(rename = "type")]
    kind: Option<String>,
    source: Option<String>,
    subject: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

pub(super) async fn list(
    State(state): State<AppState>,
    _: Reader,
    QueryParams(q): QueryParams<ListQuery>,
) -> ApiResult<Json<EventPage>> {
    let page = Page::new(q.limit, q.cursor)?;
    let filter = EventFilter {
        kind: q.kind,
        source: q.source,
        subject: q.subject,
        since: super::runs::check_time("since", &q.since)?,
        until: super::runs::check_time("until", &q.until)?,
    };
    let (events, next) = state
        .store
        .list_events(&filter, page.cursor.as_deref(), page.limit)?;
    Ok(Json(EventPage {
        events,
        next_cursor: next,
    }))
}

pub(super) async fn get(
    State(state): State<AppState>,
    _: Reader,
    Path(seq): Path<String>,
) -> ApiResult<Json<Value>> {
    let record = state
        .store
        .event(&seq)?
        .ok_or_else(|| ApiError::not_found(format!("event {seq:?} not found (use its seq)")))?;
    Ok(Json(
        serde_json::to_value(record).map_err(|e| ApiError::internal(e.to_string()))?,
    ))
}
