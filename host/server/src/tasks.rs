//! `/v1/tasks`: create, list, get, update (JSON merge of top-level fields), delete,
//! enable, disable.

use super::{ApiError, ApiResult};
use super::{AppState, Caller, MAX_BODY_BYTES, OPERATORS, READERS, parse_json, read_body};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
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
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require(OPERATORS, "create tasks")?;
    let body = read_body(body, MAX_BODY_BYTES).await?;
    let spec: TaskSpec = parse_json(&headers, &body)?;
    spec.validate()?;
    check_notify(&state, &spec)?;
    let stamp = now();
    let record = TaskRecord {
        id: sundial_core::ids::new_id(),
        created_at: stamp.clone(),
        updated_at: stamp,
        spec,
    };
    let record = state.store.insert_task(record, &caller.token.name).await?;
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

pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<super::PageQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    caller.require(READERS, "read tasks")?;
    let (cursor, limit) = super::PageQuery::check(query)?;
    let (tasks, next) = state.store.tasks_page(cursor.as_deref(), limit)?;
    let tasks: Vec<Value> = tasks.iter().map(view).collect();
    Ok(Json(json!({ "tasks": tasks, "next_cursor": next })))
}

pub(super) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require(READERS, "read tasks")?;
    let task = state
        .store
        .task(&id)?
        .ok_or_else(|| ApiError::not_found(format!("task {id:?} not found")))?;
    Ok(Json(view(&task)))
}

pub(super) async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    caller.require(OPERATORS, "change tasks")?;
    let body = read_body(body, MAX_BODY_BYTES).await?;
    let patch: Value = parse_json(&headers, &body)?;
    let Value::Object(patch) = patch else {
        return Err(ApiError::bad_request(
            "request body: expected a JSON object of fields to change",
        ));
    };
    let current = state
        .store
        .task(&id)?
        .ok_or_else(|| ApiError::not_found(format!("task {id:?} not found")))?;
    let spec: TaskSpec = super::merge_patch(&current.spec, patch, &["id", "created_at", "updated_at"])?;
    spec.validate()?;
    check_notify(&state, &spec)?;
    let (_before, after) = state
        .store
        .update_task(
            &current.id,
            Box::new(move |s| *s = spec),
            now(),
            &caller.token.name,
        )
        .await?;
    Ok(Json(view(&after)))
}

async fn set_enabled(state: AppState, caller: Caller, id: String, enabled: bool) -> ApiResult<Json<Value>> {
    caller.require(OPERATORS, "change tasks")?;
    let (_before, after) = state
        .store
        .update_task(
            &id,
            Box::new(move |s| s.enabled = enabled),
            now(),
            &caller.token.name,
        )
        .await?;
    Ok(Json(view(&after)))
}

pub(super) async fn enable(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    set_enabled(state, caller, id, true).await
}

pub(super) async fn disable(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    set_enabled(state, caller, id, false).await
}

pub(super) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(OPERATORS, "delete tasks")?;
    state.store.delete_task(&id, &caller.token.name).await?;
    Ok(StatusCode::NO_CONTENT)
}
