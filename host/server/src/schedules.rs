//! `/v1/schedules`: create, list, get, update, pause, resume, delete (refused while it
//! drives tasks unless `?force=true`), attach and detach tasks, and previews of saved and
//! unsaved rules.

use super::{ApiError, ApiResult, AppState, Operator, Reader};
use crate::extract::{JsonBody, Page, Patch, QueryParams};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use sundial_core::schedule::spec::ScheduleSpec;
use sundial_core::schedule::{Rule, Timing};
use sundial_store::schedules::ScheduleRecord;

/// Most fire times one preview returns.
pub const MAX_PREVIEW: usize = 1440;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PreviewRequest {
    rule: Rule,
    /// Default: the daemon's zone.
    #[serde(default)]
    timezone: String,
    #[serde(default, with = "sundial_core::timestamp::serde_millis_opt")]
    start: Option<DateTime<Utc>>,
    #[serde(default, with = "sundial_core::timestamp::serde_millis_opt")]
    end: Option<DateTime<Utc>>,
    /// Fire times after this instant (default: now).
    #[serde(default, with = "sundial_core::timestamp::serde_millis_opt")]
    from: Option<DateTime<Utc>>,
    /// How many (1-1440, default 10).
    count: Option<usize>,
}

pub(super) async fn preview(
    State(state): State<AppState>,
    _: Reader,
    JsonBody(mut req): JsonBody<PreviewRequest>,
) -> ApiResult<Json<Value>> {
    if req.timezone.is_empty() {
        req.timezone = state.default_timezone.clone();
    }
    let count = req.count.unwrap_or(10);
    if !(1..=MAX_PREVIEW).contains(&count) {
        return Err(ApiError::bad_request(format!(
            "count: {count} is outside 1..={MAX_PREVIEW}"
        )));
    }
    let now = state.engines.scheduler.clock().now();
    let from = req.from.unwrap_or(now);
    let timing = Timing::new(&req.rule, &req.timezone, req.start.unwrap_or(from), req.end, now)
        .map_err(ApiError::bad_request)?;
    let summary =
        sundial_core::schedule::words::describe(&req.rule, &req.timezone, req.start.unwrap_or(from));
    Ok(Json(slots_json(&req.timezone, &summary, &timing, from, count)))
}

fn slots_json(timezone: &str, summary: &str, timing: &Timing, from: DateTime<Utc>, count: usize) -> Value {
    let slots: Vec<Value> = timing
        .preview(from, count)
        .into_iter()
        .map(|s| json!({ "utc": sundial_core::timestamp::text(s.at), "local": s.local, "dst": s.dst }))
        .collect();
    json!({ "timezone": timezone, "summary": summary, "slots": slots })
}

/// A schedule as the API shows it: spec fields plus id, timestamps, tasks, next slot.
fn view(state: &AppState, record: &ScheduleRecord) -> ApiResult<Value> {
    let mut v = serde_json::to_value(&record.spec).map_err(|e| ApiError::internal(e.to_string()))?;
    let now = state.engines.scheduler.clock().now();
    let start = record.spec.start.unwrap_or(now);
    let next = Timing::new(
        &record.spec.rule,
        &record.spec.timezone,
        start,
        record.spec.end,
        DateTime::<Utc>::MIN_UTC,
    )
    .ok()
    .filter(|_| record.spec.enabled)
    .and_then(|t| t.next_after(record.last_slot.unwrap_or(now).max(now)));
    if let Value::Object(m) = &mut v {
        m.insert("id".into(), json!(record.id));
        m.insert("created_at".into(), json!(record.created_at));
        m.insert("updated_at".into(), json!(record.updated_at));
        m.insert(
            "last_slot".into(),
            json!(record.last_slot.map(sundial_core::timestamp::text)),
        );
        m.insert(
            "next_slot".into(),
            json!(next.as_ref().map(|s| sundial_core::timestamp::text(s.at))),
        );
        m.insert("next_slot_local".into(), json!(next.map(|s| s.local)));
        m.insert(
            "summary".into(),
            json!(sundial_core::schedule::words::describe(
                &record.spec.rule,
                &record.spec.timezone,
                start
            )),
        );
        let ids = state.store.schedule_tasks(&record.id)?;
        let mut names = Vec::with_capacity(ids.len());
        for id in &ids {
            names.push(
                state
                    .store
                    .task(id)?
                    .map(|t| t.spec.name)
                    .unwrap_or_else(|| id.clone()),
            );
        }
        m.insert("tasks".into(), json!(ids));
        m.insert("task_names".into(), json!(names));
    }
    Ok(v)
}

/// Every calendar a schedule names must exist (404 naming the first that does not).
fn check_calendars(state: &AppState, spec: &ScheduleSpec) -> ApiResult<()> {
    for (i, name) in spec.calendars.iter().enumerate() {
        if state.store.calendar(name)?.is_none() {
            return Err(ApiError::not_found(format!(
                "calendars[{i}]: calendar {name:?} not found"
            )));
        }
    }
    Ok(())
}

fn find(state: &AppState, id: &str) -> ApiResult<ScheduleRecord> {
    state
        .store
        .schedule(id)?
        .ok_or_else(|| ApiError::not_found(format!("schedule {id:?} not found")))
}

pub(super) async fn create(
    State(state): State<AppState>,
    Operator(caller): Operator,
    JsonBody(mut spec): JsonBody<ScheduleSpec>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    if spec.timezone.is_empty() {
        spec.timezone = state.default_timezone.clone();
    }
    let now = state.engines.scheduler.clock().now();
    spec.start = Some(spec.start.unwrap_or(now));
    spec.timing(now).map_err(|e| ApiError {
        status: StatusCode::BAD_REQUEST,
        code: "invalid_field",
        message: e,
    })?;
    check_calendars(&state, &spec)?;
    let stamp = sundial_core::timestamp::now();
    let record = ScheduleRecord {
        id: sundial_core::ids::new_id(),
        created_at: stamp.clone(),
        updated_at: stamp,
        spec,
        last_slot: None,
    };
    let record = state.store.insert_schedule(record, caller.who()).await?;
    state.engines.scheduler.reload(&record.id);
    Ok((StatusCode::CREATED, Json(view(&state, &record)?)))
}

pub(super) async fn list(State(state): State<AppState>, _: Reader, page: Page) -> ApiResult<Json<Value>> {
    let (records, next) = state.store.schedules_page(page.cursor.as_deref(), page.limit)?;
    let mut out = Vec::new();
    for record in &records {
        out.push(view(&state, record)?);
    }
    Ok(Json(json!({ "schedules": out, "next_cursor": next })))
}

pub(super) async fn get(
    State(state): State<AppState>,
    _: Reader,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(view(&state, &find(&state, &id)?)?))
}

async fn change(
    state: &AppState,
    who: &str,
    id: &str,
    patch: serde_json::Map<String, Value>,
) -> ApiResult<Value> {
    let current = find(state, id)?;
    let fixed = [
        "id",
        "created_at",
        "updated_at",
        "last_slot",
        "next_slot",
        "next_slot_local",
        "summary",
        "tasks",
        "task_names",
    ];
    let mut spec: ScheduleSpec = super::merge_patch(&current.spec, patch, &fixed)?;
    if spec.timezone.is_empty() {
        spec.timezone = state.default_timezone.clone();
    }
    // Rules already active may have an `at` in the past; only check it when it changes.
    let now = if spec.rule == current.spec.rule {
        DateTime::<Utc>::MIN_UTC
    } else {
        state.engines.scheduler.clock().now()
    };
    spec.timing(now).map_err(|e| ApiError {
        status: StatusCode::BAD_REQUEST,
        code: "invalid_field",
        message: e,
    })?;
    check_calendars(state, &spec)?;
    let (_, after) = state
        .store
        .update_schedule(&current.id, spec, sundial_core::timestamp::now(), who)
        .await?;
    state.engines.scheduler.reload(&after.id);
    view(state, &after)
}

pub(super) async fn update(
    State(state): State<AppState>,
    Operator(caller): Operator,
    Path(id): Path<String>,
    Patch(patch): Patch,
) -> ApiResult<Json<Value>> {
    Ok(Json(change(&state, caller.who(), &id, patch).await?))
}

pub(super) async fn pause(
    State(state): State<AppState>,
    Operator(caller): Operator,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let mut patch = serde_json::Map::new();
    patch.insert("enabled".into(), json!(false));
    Ok(Json(change(&state, caller.who(), &id, patch).await?))
}

pub(super) async fn resume(
    State(state): State<AppState>,
    Operator(caller): Operator,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let mut patch = serde_json::Map::new();
    patch.insert("enabled".into(), json!(true));
    Ok(Json(change(&state, caller.who(), &id, patch).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DeleteQuery {
    #[serde(default)]
    force: bool,
}

pub(super) async fn delete(
    State(state): State<AppState>,
    Operator(caller): Operator,
    Path(id): Path<String>,
    QueryParams(q): QueryParams<DeleteQuery>,
) -> ApiResult<StatusCode> {
    let record = state.store.delete_schedule(&id, q.force, caller.who()).await?;
    state.engines.scheduler.reload(&record.id);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AttachRequest {
    task: String,
}

pub(super) async fn tasks(
    State(state): State<AppState>,
    _: Reader,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let record = find(&state, &id)?;
    Ok(Json(json!({ "tasks": state.store.schedule_tasks(&record.id)? })))
}

pub(super) async fn attach(
    State(state): State<AppState>,
    Operator(caller): Operator,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<AttachRequest>,
) -> ApiResult<Json<Value>> {
    let tasks = state.store.link_task(&id, &req.task, true, caller.who()).await?;
    Ok(Json(json!({ "tasks": tasks })))
}

pub(super) async fn detach(
    State(state): State<AppState>,
    Operator(caller): Operator,
    Path((id, task)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let tasks = state.store.link_task(&id, &task, false, caller.who()).await?;
    Ok(Json(json!({ "tasks": tasks })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PreviewQuery {
    count: Option<usize>,
    #[serde(default, with = "sundial_core::timestamp::serde_millis_opt")]
    from: Option<DateTime<Utc>>,
}

pub(super) async fn preview_saved(
    State(state): State<AppState>,
    _: Reader,
    Path(id): Path<String>,
    QueryParams(q): QueryParams<PreviewQuery>,
) -> ApiResult<Json<Value>> {
    let record = find(&state, &id)?;
    let count = q.count.unwrap_or(10);
    if !(1..=MAX_PREVIEW).contains(&count) {
        return Err(ApiError::bad_request(format!(
            "count: {count} is outside 1..={MAX_PREVIEW}"
        )));
    }
    let start = record
        .spec
        .start
        .unwrap_or_else(|| state.engines.scheduler.clock().now());
    let timing = Timing::new(
        &record.spec.rule,
        &record.spec.timezone,
        start,
        record.spec.end,
        DateTime::<Utc>::MIN_UTC,
    )
    .map_err(ApiError::bad_request)?;
    let summary = sundial_core::schedule::words::describe(&record.spec.rule, &record.spec.timezone, start);
    Ok(Json(slots_json(
        &record.spec.timezone,
        &summary,
        &timing,
        q.from.unwrap_or_else(|| state.engines.scheduler.clock().now()),
        count,
    )))
}
