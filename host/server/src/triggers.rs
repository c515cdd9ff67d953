//! `/v1/triggers` (event pattern → tasks: create, list, get, update, enable, disable,
//! delete) and `/v1/timers` (pending delayed targets: list, cancel).

use super::{ApiError, ApiResult, AppState, Operator, Reader};
use crate::extract::{JsonBody, Page, Patch, QueryParams};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use sundial_core::trigger::{Target, TriggerSpec};
use sundial_store::triggers::TriggerRecord;

fn invalid(message: String) -> ApiError {
    ApiError {
        status: StatusCode::BAD_REQUEST,
        code: "invalid_field",
        message,
    }
}

/// Resolve the schedule and target task and webhook names to ids (404 naming an unknown
/// one) and validate.
fn resolve(state: &AppState, mut spec: TriggerSpec) -> ApiResult<TriggerSpec> {
    spec.compile("").map_err(invalid)?;
    if let Some(schedule) = &mut spec.on.schedule {
        let record = state
            .store
            .schedule(schedule)?
            .ok_or_else(|| ApiError::not_found(format!("on.schedule: schedule {schedule:?} not found")))?;
        *schedule = record.id;
    }
    for (i, name) in spec.calendars.iter().enumerate() {
        if state.store.calendar(name)?.is_none() {
            return Err(ApiError::not_found(format!(
                "calendars[{i}]: calendar {name:?} not found"
            )));
        }
    }
    let mut ids = Vec::with_capacity(spec.targets.len());
    for (i, target) in spec.targets.iter_mut().enumerate() {
        let id = if let Some(task) = &mut target.task {
            let record = state
                .store
                .task(task)?
                .ok_or_else(|| ApiError::not_found(format!("targets[{i}].task: task {task:?} not found")))?;
            *task = record.id.clone();
            record.id
        } else if let Some(hook) = &mut target.webhook {
            let record = state.store.webhook(hook)?.ok_or_else(|| {
                ApiError::not_found(format!("targets[{i}].webhook: webhook {hook:?} not found"))
            })?;
            *hook = record.id.clone();
            record.id
        } else {
            continue;
        };
        if ids.contains(&id) {
            return Err(invalid(format!("targets[{i}]: listed twice")));
        }
        ids.push(id);
    }
    Ok(spec)
}

/// A trigger as the API shows it: spec fields (targets with names) plus id and
/// timestamps.
fn view(state: &AppState, record: &TriggerRecord) -> ApiResult<Value> {
    let mut v = serde_json::to_value(&record.spec).map_err(|e| ApiError::internal(e.to_string()))?;
    let mut targets = Vec::new();
    for Target { task, webhook } in &record.spec.targets {
        if let Some(task) = task {
            let name = state.store.task(task)?.map(|t| t.spec.name);
            targets.push(json!({ "task": name.clone().unwrap_or_else(|| task.clone()), "task_id": task, "missing": name.is_none() }));
        }
        if let Some(hook) = webhook {
            let name = state.store.webhook(hook)?.map(|w| w.spec.name);
            targets.push(json!({ "webhook": name.clone().unwrap_or_else(|| hook.clone()), "webhook_id": hook, "missing": name.is_none() }));
        }
    }
    if let Value::Object(m) = &mut v {
        if let Some(id) = &record.spec.on.schedule {
            let name = state.store.schedule(id)?.map(|s| s.spec.name);
            let mut on = json!({ "schedule": name.clone().unwrap_or_else(|| id.clone()), "schedule_id": id,
                                 "missing": name.is_none() });
            if let Some(filter) = &record.spec.on.filter {
                on["filter"] = filter.clone();
            }
            m.insert("on".into(), on);
        }
        m.insert("targets".into(), Value::Array(targets));
        m.insert("id".into(), json!(record.id));
        m.insert("created_at".into(), json!(record.created_at));
        m.insert("updated_at".into(), json!(record.updated_at));
    }
    Ok(v)
}

fn find(state: &AppState, id: &str) -> ApiResult<TriggerRecord> {
    state
        .store
        .trigger(id)?
        .ok_or_else(|| ApiError::not_found(format!("trigger {id:?} not found")))
}

pub(super) async fn create(
    State(state): State<AppState>,
    Operator(caller): Operator,
    JsonBody(spec): JsonBody<TriggerSpec>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let spec = resolve(&state, spec)?;
    let stamp = sundial_core::timestamp::now();
    let record = TriggerRecord {
        id: sundial_core::ids::new_id(),
        created_at: stamp.clone(),
        updated_at: stamp,
        spec,
    };
    let record = state.store.insert_trigger(record, caller.who()).await?;
    state.engines.router().reload_trigger(&record.id)?;
    Ok((StatusCode::CREATED, Json(view(&state, &record)?)))
}

pub(super) async fn list(State(state): State<AppState>, _: Reader, page: Page) -> ApiResult<Json<Value>> {
    let (records, next) = state.store.triggers_page(page.cursor.as_deref(), page.limit)?;
    let mut out = Vec::new();
    for r in &records {
        out.push(view(&state, r)?);
    }
    Ok(Json(json!({ "triggers": out, "next_cursor": next })))
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
    let spec: TriggerSpec = super::merge_patch(&current.spec, patch, &["id", "created_at", "updated_at"])?;
    let spec = resolve(state, spec)?;
    let (_, after) = state
        .store
        .update_trigger(&current.id, spec, sundial_core::timestamp::now(), who)
        .await?;
    state.engines.router().reload_trigger(&after.id)?;
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

async fn set_enabled(state: &AppState, who: &str, id: &str, enabled: bool) -> ApiResult<Json<Value>> {
    let mut patch = serde_json::Map::new();
    patch.insert("enabled".into(), json!(enabled));
    Ok(Json(change(state, who, id, patch).await?))
}

pub(super) async fn enable(
    State(state): State<AppState>,
    Operator(caller): Operator,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    set_enabled(&state, caller.who(), &id, true).await
}

pub(super) async fn disable(
    State(state): State<AppState>,
    Operator(caller): Operator,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    set_enabled(&state, caller.who(), &id, false).await
}

pub(super) async fn delete(
    State(state): State<AppState>,
    Operator(caller): Operator,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let record = state.store.delete_trigger(&id, caller.who()).await?;
    state.engines.router().reload_trigger(&record.id)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TimerQuery {
    trigger: Option<String>,
    task: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

pub(super) async fn timers(
    State(state): State<AppState>,
    _: Reader,
    QueryParams(q): QueryParams<TimerQuery>,
) -> ApiResult<Json<Value>> {
    let page = Page::new(q.limit, q.cursor)?;
    let trigger = match &q.trigger {
        Some(t) => Some(find(&state, t)?.id),
        None => None,
    };
    let task = match &q.task {
        Some(t) => Some(
            state
                .store
                .task(t)?
                .map(|t| t.id)
                .ok_or_else(|| ApiError::not_found(format!("task {t:?} not found")))?,
        ),
        None => None,
    };
    let (timers, next) = state.store.timers_page(
        trigger.as_deref(),
        task.as_deref(),
        page.cursor.as_deref(),
        page.limit,
    )?;
    Ok(Json(json!({ "timers": timers, "next_cursor": next })))
}

pub(super) async fn cancel_timer(
    State(state): State<AppState>,
    Operator(caller): Operator,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.store.cancel_timer(&id, caller.who()).await?;
    Ok(StatusCode::NO_CONTENT)
}
