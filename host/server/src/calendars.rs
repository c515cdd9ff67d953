//! `/v1/calendars` (named sets of excluded days and ranges: create, list, get, replace,
//! delete, check an instant) and `/v1/maintenance` (one-off windows: start, list, end).
//! Every change is handed to the scheduler at once (see [`sundial_core::calendar`]).

use super::{ApiError, ApiResult, AppState, Caller, OPERATORS, READERS, parse_json, read_body};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use sundial_core::calendar::{CalendarSpec, Maintenance};

/// Largest calendar body: 2 MiB (room for a 1 MiB iCalendar text, escaped).
const MAX_CALENDAR_BODY: usize = 2 << 20;
/// Longest maintenance window: 30 days.
const MAX_MAINTENANCE_DAYS: i64 = 30;

fn invalid(message: String) -> ApiError {
    ApiError {
        status: StatusCode::BAD_REQUEST,
        code: "invalid_field",
        message,
    }
}

async fn read_spec(headers: &HeaderMap, body: Body) -> ApiResult<CalendarSpec> {
    let body = read_body(body, MAX_CALENDAR_BODY).await?;
    let spec: CalendarSpec = parse_json(headers, &body).map_err(|mut e| {
        if e.message.contains("did not match any variant") {
            e.message = "exclude: every entry is {\"date\": \"YYYY-MM-DD\"}, {\"yearly\": \"MM-DD\"} or {\"from\": ..., \"to\": ...}, each with an optional \"note\"".into();
        }
        e
    })?;
    spec.validate().map_err(invalid)?;
    Ok(spec)
}

fn changed(state: &AppState) {
    state.engines.scheduler.exclusions_changed();
}

pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<CalendarSpec>)> {
    caller.require(OPERATORS, "create calendars")?;
    let spec = read_spec(&headers, body).await?;
    state
        .store
        .put_calendar(spec.clone(), true, &caller.token.name)
        .await?;
    changed(&state);
    Ok((StatusCode::CREATED, Json(spec)))
}

pub(super) async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<CalendarSpec>> {
    caller.require(OPERATORS, "change calendars")?;
    let spec = read_spec(&headers, body).await?;
    if spec.name != name {
        return Err(invalid(format!(
            "name: {:?} in the body is not {name:?} in the path (calendars are not renamed)",
            spec.name
        )));
    }
    state
        .store
        .put_calendar(spec.clone(), false, &caller.token.name)
        .await?;
    changed(&state);
    Ok(Json(spec))
}

pub(super) async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.require(READERS, "read calendars")?;
    Ok(Json(json!({ "calendars": state.store.calendars()? })))
}

pub(super) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<CalendarSpec>> {
    caller.require(READERS, "read calendars")?;
    state
        .store
        .calendar(&name)?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("calendar {name:?} not found")))
}

pub(super) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(OPERATORS, "delete calendars")?;
    state.store.delete_calendar(&name, &caller.token.name).await?;
    changed(&state);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CheckQuery {
    #[serde(default, with = "sundial_core::timestamp::serde_millis_opt")]
    at: Option<DateTime<Utc>>,
    timezone: Option<String>,
}

/// `GET /v1/calendars/{name}/check?at=&timezone=`: is this instant excluded?
pub(super) async fn check(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    query: Result<Query<CheckQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    caller.require(READERS, "read calendars")?;
    let Query(q) = query.map_err(|e| ApiError::bad_request(format!("query: {}", e.body_text())))?;
    let spec = state
        .store
        .calendar(&name)?
        .ok_or_else(|| ApiError::not_found(format!("calendar {name:?} not found")))?;
    let zone = q.timezone.unwrap_or_else(|| state.default_timezone.clone());
    let tz = sundial_core::schedule::zone::parse_tz(&zone).map_err(|e| invalid(format!("timezone: {e}")))?;
    let at = q.at.unwrap_or_else(|| state.engines.scheduler.clock().now());
    let window = spec.window_at(at, tz).map(|w| {
        json!({ "start": sundial_core::timestamp::text(w.start), "end": sundial_core::timestamp::text(w.end), "reason": w.reason })
    });
    Ok(Json(
        json!({ "at": sundial_core::timestamp::text(at), "excluded": window.is_some(), "window": window }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StartMaintenance {
    /// How long: `2h`, `30m`, `1d` (1 minute to 30 days).
    #[serde(rename = "for")]
    duration: String,
    /// When it starts (default now).
    #[serde(default, with = "sundial_core::timestamp::serde_millis_opt")]
    from: Option<DateTime<Utc>>,
    /// The schedules it holds (names or ids); empty or absent: all.
    #[serde(default)]
    schedules: Vec<String>,
    #[serde(default)]
    reason: String,
}

pub(super) async fn start_maintenance(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require(OPERATORS, "start maintenance")?;
    let body = read_body(body, super::MAX_BODY_BYTES).await?;
    let req: StartMaintenance = parse_json(&headers, &body)?;
    let length =
        sundial_core::limits::parse_duration(&req.duration).map_err(|e| invalid(format!("for: {e}")))?;
    let length = chrono::Duration::from_std(length).map_err(|e| invalid(format!("for: {e}")))?;
    if length < chrono::Duration::minutes(1) || length > chrono::Duration::days(MAX_MAINTENANCE_DAYS) {
        return Err(invalid(format!(
            "for: {:?} is outside 1 minute to {MAX_MAINTENANCE_DAYS} days",
            req.duration
        )));
    }
    if req.reason.len() > 1000 {
        return Err(invalid("reason: over 1000 bytes".into()));
    }
    let mut names = Vec::new();
    for (i, s) in req.schedules.iter().enumerate() {
        let record = state
            .store
            .schedule(s)?
            .ok_or_else(|| ApiError::not_found(format!("schedules[{i}]: schedule {s:?} not found")))?;
        names.push(record.spec.name);
    }
    let now = state.engines.scheduler.clock().now();
    let from = req.from.unwrap_or(now);
    if from > now + chrono::Duration::days(366) || from < now - chrono::Duration::days(1) {
        return Err(invalid(
            "from: a maintenance window starts between a day ago and a year from now".into(),
        ));
    }
    let m = Maintenance {
        id: sundial_core::ids::new_id(),
        from,
        until: from + length,
        schedules: names,
        reason: req.reason,
        by: caller.token.name.clone(),
    };
    let m = state.store.add_maintenance(m, now, &caller.token.name).await?;
    changed(&state);
    Ok((StatusCode::CREATED, Json(maintenance_view(&state, &m))))
}

fn maintenance_view(state: &AppState, m: &Maintenance) -> Value {
    let now = state.engines.scheduler.clock().now();
    let mut v = json!(m);
    v["active"] = json!(m.from <= now && now < m.until);
    v
}

pub(super) async fn list_maintenance(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Value>> {
    caller.require(READERS, "read maintenance windows")?;
    let windows: Vec<Value> = state
        .store
        .maintenance()?
        .iter()
        .map(|m| maintenance_view(&state, m))
        .collect();
    Ok(Json(json!({ "windows": windows })))
}

pub(super) async fn end_maintenance(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require(OPERATORS, "end maintenance")?;
    let now = state.engines.scheduler.clock().now();
    let m = state.store.end_maintenance(&id, now, &caller.token.name).await?;
    changed(&state);
    Ok(Json(maintenance_view(&state, &m)))
}
