//! `/v1/events`: ingest CloudEvents (structured, batch or binary mode), the event log
//! with filters and pagination, one event with what it caused.

use super::{ApiError, ApiResult, AppState, Ingester, Reader};
use crate::answer::Accepted;
use crate::answer::Answers;
use crate::extract::{Page, QueryParams, QueueRoom};
use aide::generate::GenContext;
use aide::openapi::Operation;
use axum::Json;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use serde::Serialize;
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
    let essence = cloudevent::essence(content_type);
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
        if !sundial_core::json::fits(item, limit) {
            // Counted without building the text; built only to name the size.
            let size = serde_json::to_vec(item).map(|v| v.len()).unwrap_or(usize::MAX);
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
#[derive(Serialize, schemars::JsonSchema)]
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
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct EventPage {
    events: Vec<sundial_core::event::EventRecord>,
    next_cursor: Option<String>,
}

/// What ingest says of a batch.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct BatchOutcome<'a> {
    /// One outcome per event, in the batch's order.
    events: Vec<Outcome<'a>>,
}

/// The answer to an ingest: the stored events, shown as one [`Outcome`] or, for a
/// batch, a [`BatchOutcome`] (serialized from the records, nothing copied).
pub(super) struct Ingested {
    stored: Vec<Stored>,
    batch: bool,
}

impl Serialize for Ingested {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.stored.first() {
            Some(one) if !self.batch => outcome(one).serialize(s),
            _ => BatchOutcome {
                events: self.stored.iter().map(outcome).collect(),
            }
            .serialize(s),
        }
    }
}

/// How [`Ingested`] looks: one outcome, or a batch's.
#[derive(schemars::JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum IngestedShape<'a> {
    One(Outcome<'a>),
    Batch(BatchOutcome<'a>),
}

impl schemars::JsonSchema for Ingested {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Ingested".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        IngestedShape::json_schema(generator)
    }
}

/// The events of an ingest request, parsed and checked: 413 over the limits, 415 for
/// another content type, 400 naming the event and attribute.
pub(super) struct Events {
    events: Vec<CloudEvent>,
    batch: bool,
}

impl axum::extract::FromRequest<AppState> for Events {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &AppState) -> Result<Events, ApiError> {
        let (headers, body) = crate::extract::body_bytes(req, MAX_BATCH_BYTES).await?;
        let (events, batch) = parse(state, &headers, &body)?;
        Ok(Events { events, batch })
    }
}

/// The CloudEvents rules the parser checks (`cloudevent::parse_structured`): written
/// by hand, as the parser is (see docs/ARCHITECTURE.md).
fn cloud_event_schema() -> Value {
    serde_json::json!({ "type": "object", "required": ["specversion", "id", "source", "type"], "properties": {
        "specversion": { "const": "1.0" }, "id": { "type": "string", "minLength": 1 },
        "source": { "type": "string", "minLength": 1, "description": "`sundial` and `sundial/...` are reserved for events Sundial emits",
                    "not": { "pattern": "^sundial(/|$)" } },
        "type": { "type": "string", "minLength": 1 },
        "subject": { "type": ["string", "null"], "minLength": 1 }, "time": { "type": ["string", "null"], "format": "date-time" },
        "datacontenttype": { "type": ["string", "null"], "minLength": 1 }, "dataschema": { "type": ["string", "null"], "minLength": 1 }, "data": {},
        "data_base64": { "type": ["string", "null"], "minLength": 1, "pattern": "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$" } },
        "not": { "required": ["data", "data_base64"], "properties": { "data": { "not": { "type": "null" } }, "data_base64": { "type": "string" } } },
        "propertyNames": { "pattern": "^([a-z0-9]{1,20}|data_base64)$", "description": "extension attributes: 1-20 lower-case letters or digits" },
        "additionalProperties": { "type": ["string", "number", "boolean", "null"] } })
}

impl aide::OperationInput for Events {
    fn operation_input(ctx: &mut GenContext, operation: &mut Operation) {
        use aide::openapi::RequestBody;
        let one = cloud_event_schema();
        let batch =
            serde_json::json!({ "type": "array", "items": one, "minItems": 1, "maxItems": MAX_BATCH });
        let either = serde_json::json!({ "oneOf": [one, batch] });
        use crate::answer::media;
        let body = RequestBody {
            description: Some(
                "a CloudEvent (structured mode), a batch, or binary mode: the data as the body with ce-* headers".into(),
            ),
            content: [
                ("application/cloudevents+json".to_string(), media(one)),
                ("application/json".to_string(), media(either)),
                (BATCH_TYPE.to_string(), media(batch)),
            ]
            .into_iter()
            .collect(),
            required: true,
            extensions: Default::default(),
        };
        aide::operation::set_body(ctx, operation, body);
    }

    fn inferred_early_responses(ctx: &mut GenContext, _: &mut Operation) -> Answers {
        let mut error = |status, when| crate::answer::error_answer(ctx, status, when);
        vec![
            error(408, "the body did not arrive within body_timeout"),
            error(413, "an event over max_event_size, or a body over 16 MiB"),
            error(415, "unsupported content type"),
        ]
    }
}

pub(super) async fn ingest(
    Ingester(state, _): Ingester,
    _: QueueRoom,
    Events { events, batch }: Events,
) -> ApiResult<Accepted<Ingested>> {
    let stored = state.engines.outbox.ingest(events).await?;
    Ok(Accepted(Ingested { stored, batch }))
}

crate::extract::list_query! {
    /// `GET /v1/events`.
    pub(super) struct EventQuery {
        /// Event type, exact or glob (`sync.*`).
        #[serde(rename = "type")]
        kind: Option<String>,
        /// Event source (exact).
        source: Option<String>,
        /// Event subject, exact or glob.
        subject: Option<String>,
    }
    time = "Received"
}

pub(super) async fn list(
    Reader(state, _): Reader,
    QueryParams(q): QueryParams<EventQuery>,
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
    Reader(state, _): Reader,
    Path(seq): Path<String>,
) -> ApiResult<Json<sundial_core::event::EventRecord>> {
    let record = state
        .store
        .event(&seq)?
        .ok_or_else(|| ApiError::not_found(format!("event {seq:?} not found (use its seq)")))?;
    Ok(Json(record))
}
