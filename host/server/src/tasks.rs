//! `/v1/tasks`: create, list, get, update (JSON merge of top-level fields), delete,
//! enable, disable.

use super::{ApiError, ApiResult, AppState, Operator, Reader};
use crate::extract::{JsonBody, Page, Patch};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};
use sundial_core::task::TaskSpec;
use sundial_core::timestamp::now;
use sundial_store::tasks::TaskRecord;

/// A task as the API shows it: the spec's fields plus id and timestamps.
pub(crate) fn view(task: &TaskRecord) -> Value {
    let mut v = serde_json::to_value(&task.spec).unwrap_or_else(|_| json!({}));
    if let Value::Object(map) = &mut v {
        map.insert("id".into(), json!(task.id));
        map.insert("created_at".into(), json!(task.created_at));
        map.insert("updated_at".into(), json!(task.updated_at));
    }
    v
}

pub(super) async fn create(
    State(state): State<AppState>,
    Operator(caller): Operator,
    JsonBody(spec): JsonBody<TaskSpec>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    spec.validate()?;
    check_notify(&state, &spec)?;
    let stamp = now();
    let record = TaskRecord {
        id: sundial_core::ids::new_id(),
        created_at: stamp.clone(),
        updated_at: stamp,
        spec,
    };
    let record = state.store.insert_task(record, caller.who()).await?;
    Ok((StatusCode::CREATED, Json(view(&record))))
}

/// Every webhook a task notifies or sends to must exist (404 naming the field, as
/// every reference to a missing object is answered).
fn check_notify(state: &AppState, spec: &TaskSpec) -> ApiResult<()> {
    if let Some(w) = &spec.webhook
        && state.store.webhook(w)?.is_none()
    {
        return Err(ApiError::not_found(format!("webhook: webhook {w:?} not found")));
    }
    for (i, n) in spec.notify.iter().enumerate() {
        if state.store.webhook(&n.webhook)?.is_none() {
            return Err(ApiError::not_found(format!(
                "notify[{i}].webhook: webhook {:?} not found",
                n.webhook
            )));
        }
    }
    Ok(())
}

pub(super) async fn list(State(state): State<AppState>, _: Reader, page: Page) -> ApiResult<Json<Value>> {
    let (tasks, next) = state.store.tasks_page(page.cursor.as_deref(), page.limit)?;
    let tasks: Vec<Value> = tasks.iter().map(view).collect();
    Ok(Json(json!({ "tasks": tasks, "next_cursor": next })))
}

pub(super) async fn get(
    State(state): State<AppState>,
    _: Reader,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let task = state
        .store
        .task(&id)?
        .ok_or_else(|| ApiError::not_found(format!("task {id:?} not found")))?;
    Ok(Json(view(&task)))
}

pub(super) async fn update(
    State(state): State<AppState>,
    Operator(caller): Operator,
    Path(id): Path<String>,
    Patch(patch): Patch,
) -> ApiResult<Json<Value>> {
    let current = state
        .store
        .task(&id)?
        .ok_or_else(|| ApiError::not_found(format!("task {id:?} not found")))?;
    let spec: TaskSpec = super::merge_patch(&current.spec, patch, &["id", "created_at", "updated_at"])?;
    spec.validate()?;
    check_notify(&state, &spec)?;
    let (_before, after) = state
        .store
        .update_task(&current.id, Box::new(move |s| *s = spec), now(), caller.who())
        .await?;
    Ok(Json(view(&after)))
}

async fn set_enabled(state: AppState, who: &str, id: String, enabled: bool) -> ApiResult<Json<Value>> {
    let (_before, after) = state
        .store
        .update_task(&id, Box::new(move |s| s.enabled = enabled), now(), who)
        .await?;
    Ok(Json(view(&after)))
}

pub(super) async fn enable(
    State(state): State<AppState>,
    Operator(caller): Operator,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    set_enabled(state, caller.who(), id, true).await
}

pub(super) async fn disable(
    State(state): State<AppState>,
    Operator(caller): Operator,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    set_enabled(state, caller.who(), id, false).await
}

pub(super) async fn delete(
    State(state): State<AppState>,
    Operator(caller): Operator,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.store.delete_task(&id, caller.who()).await?;
    Ok(StatusCode::NO_CONTENT)
}
