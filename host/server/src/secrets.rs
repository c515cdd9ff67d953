//! `/v1/secrets`: write-only values (set, list names, show metadata, delete). A value is
//! never returned, logged or written to the audit log.

use super::{ADMINS, ApiError, ApiResult, AppState, Caller, OPERATORS, parse_json, read_body};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use sundial_core::secret::{MAX_SECRET_BYTES, validate_name};
use sundial_store::secrets::SecretRecord;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SetRequest {
    value: String,
}

pub(super) async fn set(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require(ADMINS, "set secrets")?;
    validate_name(&name).map_err(ApiError::bad_request)?;
    let body = read_body(body, MAX_SECRET_BYTES * 2 + 1024).await?;
    // Parse errors from serde name the field and position, never the value.
    let req: SetRequest = parse_json(&headers, &body)?;
    let chars = req.value.chars().count();
    if chars == 0 || chars > MAX_SECRET_BYTES {
        return Err(ApiError::bad_request(format!(
            "value: must be 1-{MAX_SECRET_BYTES} characters, got {chars}"
        )));
    }
    let sealed = state
        .secret_key
        .seal(&name, req.value.as_bytes())
        .map_err(ApiError::internal)?;
    let stamp = sundial_core::timestamp::now();
    let record = SecretRecord {
        name,
        created_at: stamp.clone(),
        updated_at: stamp,
        size: req.value.len(),
        sealed,
    };
    let (info, created) = state.store.put_secret(record, &caller.token.name).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!(info))))
}

pub(super) async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.require(OPERATORS, "list secrets")?;
    Ok(Json(json!({ "secrets": state.store.secrets()? })))
}

pub(super) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require(OPERATORS, "read secrets")?;
    let record = state
        .store
        .secret(&name)?
        .ok_or_else(|| ApiError::not_found(format!("secret {name:?} not found")))?;
    Ok(Json(json!(record.info())))
}

pub(super) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(ADMINS, "delete secrets")?;
    state.store.delete_secret(&name, &caller.token.name).await?;
    Ok(StatusCode::NO_CONTENT)
}
