//! `/v1/tokens` (admin only): create (the secret is shown once), list, revoke.
//! `/v1/audit`: the audit log, with filters and cursor pagination.

use super::{ADMINS, AppState, Caller, MAX_BODY_BYTES, READERS, parse_json, read_body};
use super::{ApiError, ApiResult};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use sundial_core::timestamp::now;
use sundial_store::audit::AuditFilter;
use sundial_store::tokens::{Role, TokenRecord};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateToken {
    name: String,
    role: Role,
}

pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    caller.require(ADMINS, "manage tokens")?;
    let body = read_body(body, MAX_BODY_BYTES).await?;
    let req: CreateToken = parse_json(&headers, &body)?;
    sundial_core::task::validate_name("name", &req.name)?;
    let secret = sundial_store::tokens::new_token_secret().map_err(ApiError::internal)?;
    let record = TokenRecord {
        id: sundial_core::ids::new_id(),
        name: req.name,
        role: req.role,
        created_at: now(),
    };
    let record = state
        .store
        .insert_token(&secret, record, &caller.token.name)
        .await?;
    let mut v = serde_json::to_value(&record).map_err(|e| ApiError::internal(e.to_string()))?;
    v["secret"] = json!(secret);
    Ok((StatusCode::CREATED, Json(v)))
}

pub(super) async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.require(ADMINS, "manage tokens")?;
    Ok(Json(json!({ "tokens": state.store.tokens()? })))
}

pub(super) async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(ADMINS, "manage tokens")?;
    // Revoking the token in use would lock the caller out mid-session: another admin
    // token revokes it (and the last admin token cannot be revoked at all).
    if id == caller.token.id || id == caller.token.name {
        return Err(ApiError::conflict(format!(
            "token {:?} is the one making this request; revoke it with another admin token",
            caller.token.name
        )));
    }
    state.store.revoke_token(&id, &caller.token.name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AuditQuery {
    noun: Option<String>,
    actor: Option<String>,
    target: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

pub(super) async fn audit(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    caller.require(READERS, "read the audit log")?;
    let Query(q) = query.map_err(|e| ApiError::bad_request(format!("query: {}", e.body_text())))?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit: {limit} is outside 1..=1000"
        )));
    }
    super::check_cursor(&q.cursor)?;
    let filter = AuditFilter {
        noun: q.noun,
        actor: q.actor,
        target: q.target,
        since: super::runs::check_time("since", &q.since)?,
        until: super::runs::check_time("until", &q.until)?,
    };
    let (entries, next) = state.store.audit(&filter, q.cursor.as_deref(), limit)?;
    Ok(Json(json!({ "entries": entries, "next_cursor": next })))
}
