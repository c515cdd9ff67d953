//! `/v1/calendars` (named sets of excluded days and ranges: create, list, get, replace,
//! delete, check an instant) and `/v1/maintenance` (one-off windows: start, list, end).
//! Every change is handed to the scheduler at once (see [`sundial_core::calendar`]).

use super::{ApiError, ApiResult, AppState, Operator, Reader};
use crate::answer::Answers;
use crate::answer::{Created, Deleted};
use crate::error::Found;
use crate::extract::{JsonBody, QueryParams};
use aide::generate::GenContext;
use aide::openapi::Operation;
use axum::Json;
use axum::extract::{FromRequest, Path, Request};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sundial_core::calendar::{CalendarSpec, Maintenance};

/// Largest calendar body: 2 MiB (room for a 1 MiB iCalendar text, escaped).
const MAX_CALENDAR_BODY: usize = 2 << 20;
/// Longest maintenance window: 30 days.
const MAX_MAINTENANCE_DAYS: i64 = 30;

/// A calendar body (at most `MAX_CALENDAR_BODY` bytes), parsed and validated; an
/// `exclude` entry of no known shape is refused naming the shapes.
pub(super) struct SpecBody(CalendarSpec);

impl FromRequest<AppState> for SpecBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<SpecBody, ApiError> {
        let JsonBody(spec) = JsonBody::<CalendarSpec, { MAX_CALENDAR_BODY }>::from_request(req, state)
            .await
            .map_err(|mut e| {
                if e.message.contains("did not match any variant") {
                    e.message = "exclude: every entry is {\"date\": \"YYYY-MM-DD\"}, {\"yearly\": \"MM-DD\"} or {\"from\": ..., \"to\": ...}, each with an optional \"note\"".into();
                }
                e
            })?;
        spec.validate().map_err(ApiError::invalid_field)?;
        Ok(SpecBody(spec))
    }
}

impl aide::OperationInput for SpecBody {
    fn operation_input(ctx: &mut GenContext, operation: &mut Operation) {
        JsonBody::<CalendarSpec>::operation_input(ctx, operation);
    }

    fn inferred_early_responses(ctx: &mut GenContext, operation: &mut Operation) -> Answers {
        JsonBody::<CalendarSpec>::inferred_early_responses(ctx, operation)
    }
}

/// Hand a calendar to the scheduler (`new`: one of that name must not exist yet) and
/// answer it.
async fn put(state: &AppState, spec: CalendarSpec, new: bool, who: &str) -> ApiResult<CalendarSpec> {
    state
        .engines
        .scheduler
        .put_calendar(spec.clone(), new, who)
        .await?;
    Ok(spec)
}

pub(super) async fn create(
    Operator(state, caller): Operator,
    SpecBody(spec): SpecBody,
) -> ApiResult<Created<CalendarSpec>> {
    Ok(Created(put(&state, spec, true, caller.who()).await?))
}

pub(super) async fn replace(
    Operator(state, caller): Operator,
    Path(name): Path<String>,
    SpecBody(spec): SpecBody,
) -> ApiResult<Json<CalendarSpec>> {
    if spec.name != name {
        return Err(ApiError::invalid_field(format!(
            "name: {:?} in the body is not {name:?} in the path (calendars are not renamed)",
            spec.name
        )));
    }
    Ok(Json(put(&state, spec, false, caller.who()).await?))
}

/// `GET /v1/calendars`.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct CalendarList {
    calendars: Vec<CalendarSpec>,
}

pub(super) async fn list(Reader(state, _): Reader) -> ApiResult<Json<CalendarList>> {
    Ok(Json(CalendarList {
        calendars: state.store.calendars()?,
    }))
}

pub(super) async fn get(Reader(state, _): Reader, Path(name): Path<String>) -> ApiResult<Json<CalendarSpec>> {
    state.store.calendar(&name)?.map(Json).found("calendar", &name)
}

pub(super) async fn delete(
    Operator(state, caller): Operator,
    Path(name): Path<String>,
) -> ApiResult<Deleted> {
    state
        .engines
        .scheduler
        .delete_calendar(&name, caller.who())
        .await?;
    Ok(Deleted)
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CheckQuery {
    #[serde(default, with = "sundial_core::timestamp::serde_millis_opt")]
    #[schemars(with = "Option<chrono::DateTime<chrono::Utc>>")]
    at: Option<DateTime<Utc>>,
    timezone: Option<String>,
}

/// The answer of a check: whether `at` is excluded, and by which window.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct CheckAnswer {
    at: String,
    excluded: bool,
    window: Option<WindowView>,
}

/// An excluded window around the instant checked.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct WindowView {
    start: String,
    end: String,
    reason: String,
}

/// `GET /v1/calendars/{name}/check?at=&timezone=`: is this instant excluded?
pub(super) async fn check(
    Reader(state, _): Reader,
    Path(name): Path<String>,
    QueryParams(q): QueryParams<CheckQuery>,
) -> ApiResult<Json<CheckAnswer>> {
    let spec = state.store.calendar(&name)?.found("calendar", &name)?;
    let zone = q.timezone.unwrap_or_else(|| state.default_timezone.clone());
    let tz = sundial_core::schedule::zone::parse_tz(&zone)
        .map_err(|e| ApiError::invalid_field(format!("timezone: {e}")))?;
    let at = q.at.unwrap_or_else(|| state.engines.scheduler.clock().now());
    let window = spec.window_at(at, tz).map(|w| WindowView {
        start: sundial_core::timestamp::text(w.start),
        end: sundial_core::timestamp::text(w.end),
        reason: w.reason.to_string(),
    });
    Ok(Json(CheckAnswer {
        at: sundial_core::timestamp::text(at),
        excluded: window.is_some(),
        window,
    }))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct StartMaintenance {
    /// How long: `2h`, `30m`, `1d` (1 minute to 30 days).
    #[serde(rename = "for")]
    duration: String,
    /// When it starts (default now).
    #[serde(default, with = "sundial_core::timestamp::serde_millis_opt")]
    #[schemars(with = "Option<chrono::DateTime<chrono::Utc>>")]
    from: Option<DateTime<Utc>>,
    /// The schedules it holds (names or ids); empty or absent: all.
    #[serde(default)]
    schedules: Vec<String>,
    /// Why (shown in the agenda and on skipped slots).
    #[serde(default)]
    #[schemars(length(max = 1000))]
    reason: String,
}

pub(super) async fn start_maintenance(
    Operator(state, caller): Operator,
    JsonBody(req): JsonBody<StartMaintenance>,
) -> ApiResult<Created<MaintenanceView>> {
    let length = sundial_core::limits::parse_duration(&req.duration)
        .map_err(|e| ApiError::invalid_field(format!("for: {e}")))?;
    let length =
        chrono::Duration::from_std(length).map_err(|e| ApiError::invalid_field(format!("for: {e}")))?;
    if length < chrono::Duration::minutes(1) || length > chrono::Duration::days(MAX_MAINTENANCE_DAYS) {
        return Err(ApiError::invalid_field(format!(
            "for: {:?} is outside 1 minute to {MAX_MAINTENANCE_DAYS} days",
            req.duration
        )));
    }
    if req.reason.len() > 1000 {
        return Err(ApiError::invalid_field("reason: over 1000 bytes"));
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
        return Err(ApiError::invalid_field(
            "from: a maintenance window starts between a day ago and a year from now",
        ));
    }
    let m = Maintenance {
        id: sundial_core::ids::new_id(),
        from,
        until: from + length,
        schedules: names,
        reason: req.reason,
        by: caller.who().to_string(),
    };
    let m = state.engines.scheduler.add_maintenance(m, caller.who()).await?;
    Ok(Created(MaintenanceView::new(&state, m)))
}

/// A maintenance window as the API shows it: whether it is in force now.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct MaintenanceView {
    #[serde(flatten)]
    window: Maintenance,
    active: bool,
}

impl MaintenanceView {
    fn new(state: &AppState, window: Maintenance) -> MaintenanceView {
        let now = state.engines.scheduler.clock().now();
        let active = window.from <= now && now < window.until;
        MaintenanceView { window, active }
    }
}

/// `GET /v1/maintenance`.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct MaintenanceList {
    windows: Vec<MaintenanceView>,
}

pub(super) async fn list_maintenance(Reader(state, _): Reader) -> ApiResult<Json<MaintenanceList>> {
    let windows = state
        .store
        .maintenance()?
        .into_iter()
        .map(|m| MaintenanceView::new(&state, m))
        .collect();
    Ok(Json(MaintenanceList { windows }))
}

pub(super) async fn end_maintenance(
    Operator(state, caller): Operator,
    Path(id): Path<String>,
) -> ApiResult<Json<MaintenanceView>> {
    let m = state.engines.scheduler.end_maintenance(&id, caller.who()).await?;
    Ok(Json(MaintenanceView::new(&state, m)))
}
