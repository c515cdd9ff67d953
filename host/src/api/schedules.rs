//! `/v1/schedules`: for now, the preview of an unsaved rule (the durable scheduler and
//! schedule resources are the rest of issue 4).

use super::{ApiError, ApiResult};
use super::{AppState, Caller, MAX_BODY_BYTES, READERS, parse_json, read_body};
use crate::schedule::{Rule, Timing};
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

/// Most fire times one preview returns.
pub const MAX_PREVIEW: usize = 1440;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PreviewRequest {
    rule: Rule,
    #[serde(default = "utc")]
    timezone: String,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    /// Fire times after this instant (default: now).
    from: Option<DateTime<Utc>>,
    /// How many (1-1440, default 10).
    count: Option<usize>,
}

fn utc() -> String {
    "UTC".into()
}

pub(super) async fn preview(
    State(_state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    caller.require(READERS, "preview schedules")?;
    let body = read_body(body, MAX_BODY_BYTES).await?;
    let req: PreviewRequest = parse_json(&headers, &body)?;
    let count = req.count.unwrap_or(10);
    if !(1..=MAX_PREVIEW).contains(&count) {
        return Err(ApiError::bad_request(format!(
            "count: {count} is outside 1..={MAX_PREVIEW}"
        )));
    }
    let now = Utc::now();
    let from = req.from.unwrap_or(now);
    let timing = Timing::new(&req.rule, &req.timezone, req.start.unwrap_or(from), req.end, now)
        .map_err(ApiError::bad_request)?;
    let slots: Vec<Value> = timing
        .preview(from, count)
        .into_iter()
        .map(|s| json!({ "utc": s.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true), "local": s.local, "dst": s.dst }))
        .collect();
    Ok(Json(json!({ "timezone": req.timezone, "slots": slots })))
}
